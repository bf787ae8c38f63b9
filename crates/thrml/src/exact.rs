//! Exact Boltzmann distributions of small discrete models, by enumeration.
//!
//! For a model with energy `E`, free discrete variables `x` and clamped variables `y`,
//!
//! ```text
//! P(x | y) = exp(−E(x, y)) / Σ_x' exp(−E(x', y))
//! ```
//!
//! [`ExactDistribution::new`] enumerates every joint state of the free variables (so keep
//! them to a few million states at most) and evaluates the energy in one batch. It is the
//! reference that samplers are tested against, and a handy tool for checking estimators on
//! toy models.
//!
//! States are indexed row-major in the order of the free variables: the last variable
//! varies fastest. A spin's value is 1 for `true` (+1) and 0 for `false` (−1); a
//! categorical's value is its category.
//!
//! # Example
//!
//! ```
//! use thrml::exact::{DiscreteVar, ExactDistribution};
//! use thrml::{IsingEBM, Node};
//!
//! // One spin with bias b: P(+1) = e^b / (e^b + e^−b).
//! let s = Node::spin();
//! let ebm = IsingEBM::new(vec![s], vec![], vec![0.5], vec![], 1.0)?;
//! let exact = ExactDistribution::new(&ebm, &[DiscreteVar::Spin(s)], &[])?;
//! let p_up = 1.0 / (1.0 + (-1.0f64).exp());
//! assert!((exact.probabilities[1] - p_up).abs() < 1e-6);
//! # Ok::<(), thrml::Error>(())
//! ```

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayD};

use crate::block::Block;
use crate::error::{Error, Result};
use crate::models::ebm::AbstractEBM;
use crate::pgm::{Node, NodeKind};
use crate::state::{State, Tensor};

/// A discrete variable of an enumerated model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscreteVar {
    /// A spin node (`bool` state): values 0 (−1) and 1 (+1).
    Spin(Node),
    /// A categorical node (`u8` state) with this many categories.
    Categorical(Node, usize),
}

impl DiscreteVar {
    /// The node.
    #[must_use]
    pub fn node(self) -> Node {
        match self {
            DiscreteVar::Spin(n) | DiscreteVar::Categorical(n, _) => n,
        }
    }

    /// Number of values.
    #[must_use]
    pub fn n_values(self) -> usize {
        match self {
            DiscreteVar::Spin(_) => 2,
            DiscreteVar::Categorical(_, k) => k,
        }
    }

    /// The value as a spin in ±1 (spins) or the category (categoricals), as `f64`.
    #[must_use]
    pub fn numeric(self, value: usize) -> f64 {
        match self {
            DiscreteVar::Spin(_) => {
                if value == 1 {
                    1.0
                } else {
                    -1.0
                }
            }
            DiscreteVar::Categorical(..) => value as f64,
        }
    }
}

/// The exact distribution of the free variables given the clamped ones.
#[derive(Clone, Debug)]
pub struct ExactDistribution {
    /// The free variables, in index order.
    pub vars: Vec<DiscreteVar>,
    /// `P(state)` for every state index.
    pub probabilities: Vec<f64>,
    /// `E(state)` for every state index.
    pub energies: Vec<f64>,
}

/// Number of joint states of `vars`.
///
/// # Errors
/// [`Error::Invalid`] if it overflows `usize`.
pub fn n_states(vars: &[DiscreteVar]) -> Result<usize> {
    vars.iter()
        .try_fold(1usize, |acc, v| acc.checked_mul(v.n_values()))
        .ok_or_else(|| Error::Invalid("too many joint states to enumerate".into()))
}

/// The values of `vars` in joint state `index`.
#[must_use]
pub fn index_to_values(vars: &[DiscreteVar], mut index: usize) -> Vec<usize> {
    let mut values = vec![0; vars.len()];
    for (i, v) in vars.iter().enumerate().rev() {
        values[i] = index % v.n_values();
        index /= v.n_values();
    }
    values
}

/// The joint state index of `values`.
#[must_use]
pub fn values_to_index(vars: &[DiscreteVar], values: &[usize]) -> usize {
    vars.iter()
        .zip(values)
        .fold(0, |acc, (v, &x)| acc * v.n_values() + x)
}

impl ExactDistribution {
    /// Enumerate `free` with `clamped` variables fixed to the given values.
    ///
    /// The energy is evaluated with [`AbstractEBM::energy`] on blocks made of one block per
    /// node kind (free and clamped nodes together), so every node of every factor of the
    /// model must be among `free` and `clamped`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if a value is out of range or there are too many states, or any
    /// error from the energy.
    pub fn new(
        ebm: &dyn AbstractEBM,
        free: &[DiscreteVar],
        clamped: &[(DiscreteVar, usize)],
    ) -> Result<ExactDistribution> {
        for &(v, x) in clamped {
            if x >= v.n_values() {
                return Err(Error::Invalid(format!(
                    "clamped node {:?} has value {x}, out of 0..{}",
                    v.node(),
                    v.n_values()
                )));
            }
        }
        let m = n_states(free)?;
        // One block per kind; columns hold free then clamped nodes of that kind.
        let mut kinds: BTreeMap<NodeKind, Vec<(DiscreteVar, Option<usize>)>> = BTreeMap::new();
        for (i, &v) in free.iter().enumerate() {
            kinds.entry(v.node().kind()).or_default().push((v, Some(i)));
        }
        for &(v, _) in clamped {
            kinds.entry(v.node().kind()).or_default().push((v, None));
        }
        let clamped_value = |n: Node| {
            clamped
                .iter()
                .find(|(v, _)| v.node() == n)
                .map(|&(_, x)| x)
                .unwrap_or(0)
        };
        let all_values: Vec<Vec<usize>> = (0..m).map(|s| index_to_values(free, s)).collect();
        let mut blocks = Vec::new();
        let mut state: Vec<State> = Vec::new();
        for (kind, members) in &kinds {
            blocks.push(Block::of_kind(
                *kind,
                members.iter().map(|(v, _)| v.node()).collect(),
            )?);
            let value = |s: usize, j: usize| -> usize {
                let (v, free_index) = members[j];
                free_index.map_or_else(|| clamped_value(v.node()), |i| all_values[s][i])
            };
            let n = members.len();
            let tensor = match members[0].0 {
                DiscreteVar::Spin(_) => Tensor::Bool(
                    Array2::from_shape_fn((m, n), |(s, j)| value(s, j) == 1).into_dyn(),
                ),
                DiscreteVar::Categorical(..) => Tensor::U8(
                    Array2::from_shape_fn((m, n), |(s, j)| {
                        u8::try_from(value(s, j)).unwrap_or(u8::MAX)
                    })
                    .into_dyn(),
                ),
            };
            state.push(vec![tensor]);
        }
        let energies = ebm.energy(&state, &blocks)?.to_vec();
        let min = energies.iter().copied().fold(f64::INFINITY, f64::min);
        let weights: Vec<f64> = energies.iter().map(|e| (min - e).exp()).collect();
        let z: f64 = weights.iter().sum();
        Ok(ExactDistribution {
            vars: free.to_vec(),
            probabilities: weights.iter().map(|w| w / z).collect(),
            energies,
        })
    }

    /// `E[f(values)]` under the distribution.
    pub fn expectation(&self, mut f: impl FnMut(&[usize]) -> f64) -> f64 {
        self.probabilities
            .iter()
            .enumerate()
            .map(|(s, p)| p * f(&index_to_values(&self.vars, s)))
            .sum()
    }

    /// `E[x_i]` of each variable, with spins as ±1 and categoricals as their category.
    #[must_use]
    pub fn means(&self) -> Vec<f64> {
        (0..self.vars.len())
            .map(|i| self.expectation(|v| self.vars[i].numeric(v[i])))
            .collect()
    }

    /// The joint state index of every sample in `states`, given per-variable values
    /// (`values[sample][var]`).
    #[must_use]
    pub fn indices(&self, values: &[Vec<usize>]) -> Vec<usize> {
        values
            .iter()
            .map(|v| values_to_index(&self.vars, v))
            .collect()
    }
}

/// Turn sampled block states (leaves `[chains, samples, nodes]`, as returned by
/// [`sample_states`](crate::sample_states)) into per-draw values of `vars`.
///
/// `blocks[i]` is the block of `states[i]`; every var must be in some block.
///
/// # Errors
/// [`Error::UnknownNode`] if a var is in no block, [`Error::Invalid`] for a non-discrete
/// state.
pub fn sampled_values(
    vars: &[DiscreteVar],
    blocks: &[Block],
    states: &[State],
) -> Result<Vec<Vec<usize>>> {
    let mut columns = Vec::with_capacity(vars.len());
    for v in vars {
        let n = v.node();
        let (b, j) = blocks
            .iter()
            .enumerate()
            .find_map(|(b, blk)| blk.nodes().iter().position(|&x| x == n).map(|j| (b, j)))
            .ok_or_else(|| Error::UnknownNode {
                node: n.id(),
                kind: n.kind().name().to_owned(),
            })?;
        let t: &Tensor = &states[b][0];
        let values: ArrayD<usize> = match t {
            Tensor::Bool(a) => a.mapv(usize::from),
            Tensor::U8(a) => a.mapv(usize::from),
            other => {
                return Err(Error::Invalid(format!(
                    "node {:?} has a {} state, not discrete",
                    n,
                    other.dtype()
                )));
            }
        };
        let shape = values.shape();
        let (chains, samples) = (shape[0], shape[1]);
        let col: Vec<usize> = (0..chains)
            .flat_map(|c| (0..samples).map(move |s| (c, s)))
            .map(|(c, s)| values[[c, s, j]])
            .collect();
        columns.push(col);
    }
    let draws = columns.first().map_or(0, Vec::len);
    Ok((0..draws)
        .map(|d| columns.iter().map(|c| c[d]).collect())
        .collect())
}
