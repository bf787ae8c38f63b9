//! Observers: what a run records at each observation.
//!
//! An observer is called after warmup and after every `steps_per_sample` sweeps with the
//! global state of all chains. It keeps a *carry* across calls (running sums, say) and may
//! return an output per call, which the runner collects.
//!
//! * [`StateObserver`] returns the states of some blocks.
//! * [`MomentAccumulatorObserver`] adds products `f(x₁)·…·f(x_k)` of transformed node
//!   values into per-chain running sums, without storing samples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ndarray::Array2;

use crate::block::{Block, from_global_state};
use crate::error::{Error, Result};
use crate::pgm::{Node, NodeKind};
use crate::program::BlockSamplingProgram;
use crate::state::{State, Tensor};

/// Inspects a running program at each observation (THRML's `AbstractObserver`).
pub trait AbstractObserver {
    /// The memory kept across observations.
    type Carry;
    /// What one observation returns.
    type Output;

    /// Check, before the run, that the observer fits the program.
    ///
    /// # Errors
    /// A description of the mismatch.
    fn check(&self, program: &BlockSamplingProgram) -> Result<()> {
        let _ = program;
        Ok(())
    }

    /// Record an observation. `global_state` holds every chain (leaves
    /// `[chains, slot_size] + leaf.shape`, free blocks then clamped blocks, as laid out by
    /// the program's [`BlockGibbsSpec`](crate::BlockGibbsSpec)); `iteration` counts
    /// observations from 0.
    ///
    /// # Errors
    /// Whatever the observer cannot do.
    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global_state: &[State],
        carry: &mut Self::Carry,
        iteration: usize,
    ) -> Result<Self::Output>;
}

/// Records the raw states of some blocks at each observation.
#[derive(Clone, Debug)]
pub struct StateObserver {
    /// The blocks whose states are recorded.
    pub blocks_to_sample: Vec<Block>,
}

impl StateObserver {
    /// An observer of `blocks_to_sample`.
    #[must_use]
    pub fn new(blocks_to_sample: Vec<Block>) -> StateObserver {
        StateObserver { blocks_to_sample }
    }
}

impl AbstractObserver for StateObserver {
    type Carry = ();
    type Output = Vec<State>;

    fn check(&self, program: &BlockSamplingProgram) -> Result<()> {
        for b in &self.blocks_to_sample {
            for &n in b.nodes() {
                program.gibbs_spec.location(n)?;
            }
        }
        Ok(())
    }

    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global_state: &[State],
        _: &mut (),
        _: usize,
    ) -> Result<Vec<State>> {
        from_global_state(global_state, &program.gibbs_spec, &self.blocks_to_sample)
    }
}

/// Maps the extracted state of a block (leaves `[chains, nodes] + leaf`) to one `f64` per
/// chain and node.
pub type MomentTransform = Arc<dyn Fn(&State, &Block) -> Array2<f64> + Send + Sync>;

/// Scalar node values as `f64` (`bool` as 0/1): THRML's default identity transform.
#[must_use]
pub fn identity_transform() -> MomentTransform {
    Arc::new(|state: &State, _: &Block| scalar_values(&state[0], |x| x))
}

/// Spins as ±1 (`true` → +1, `false` → −1); other scalars as their value.
#[must_use]
pub fn spin_transform() -> MomentTransform {
    Arc::new(|state: &State, _: &Block| match &state[0] {
        Tensor::Bool(_) => scalar_values(&state[0], |x| 2.0 * x - 1.0),
        other => scalar_values(other, |x| x),
    })
}

fn scalar_values(t: &Tensor, f: impl Fn(f64) -> f64) -> Array2<f64> {
    let shape = t.shape();
    let (c, n) = (shape[0], shape[1]);
    let t = t.to_standard_layout();
    Array2::from_shape_fn((c, n), |(i, j)| f(t.get_f64(i * n + j)))
}

/// Accumulates moments `Σ_samples f(x₁)·…·f(x_k)` for lists of node tuples, per chain.
///
/// `moment_spec[t][m]` is the `m`-th moment of type `t`, a tuple of nodes; all moments of a
/// type have the same order. The carry holds one `[chains, moments]` array of sums per
/// type; divide by the number of samples to get averages.
///
/// # Example
///
/// ```
/// use thrml::{MomentAccumulatorObserver, Node, spin_transform};
/// let (a, b) = (Node::spin(), Node::spin());
/// let observer = MomentAccumulatorObserver::new(
///     vec![vec![vec![a], vec![b]], vec![vec![a, b]]],
///     spin_transform(),
/// )?;
/// assert_eq!(observer.n_moments(), vec![2, 1]);
/// # Ok::<(), thrml::Error>(())
/// ```
#[derive(Clone)]
pub struct MomentAccumulatorObserver {
    /// One block per node kind, holding every node that appears in a moment.
    pub blocks_to_sample: Vec<Block>,
    /// For each block of `blocks_to_sample`, the flat index of each of its nodes.
    flat_index: Vec<Vec<usize>>,
    n_flat: usize,
    /// For each moment type, `[moments, order]` flat node indices.
    moment_slices: Vec<Array2<usize>>,
    f_transform: MomentTransform,
}

impl std::fmt::Debug for MomentAccumulatorObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentAccumulatorObserver")
            .field("blocks_to_sample", &self.blocks_to_sample)
            .field("moment_slices", &self.moment_slices)
            .finish_non_exhaustive()
    }
}

impl MomentAccumulatorObserver {
    /// An observer for `moment_spec` with value transform `f_transform`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the moments of one type differ in order.
    pub fn new(
        moment_spec: Vec<Vec<Vec<Node>>>,
        f_transform: MomentTransform,
    ) -> Result<MomentAccumulatorObserver> {
        let mut flat: HashMap<Node, usize> = HashMap::new();
        let mut by_kind: BTreeMap<NodeKind, (Vec<Node>, Vec<usize>)> = BTreeMap::new();
        let mut moment_slices = Vec::with_capacity(moment_spec.len());
        for (t, moments) in moment_spec.iter().enumerate() {
            let order = moments.first().map_or(0, Vec::len);
            let mut slice = Array2::zeros((moments.len(), order));
            for (m, nodes) in moments.iter().enumerate() {
                if nodes.len() != order {
                    return Err(Error::Invalid(format!(
                        "moment type {t}: moment {m} has {} nodes but moment 0 has {order}",
                        nodes.len()
                    )));
                }
                for (k, &node) in nodes.iter().enumerate() {
                    let next = flat.len();
                    let idx = *flat.entry(node).or_insert_with(|| {
                        let e = by_kind.entry(node.kind()).or_default();
                        e.0.push(node);
                        e.1.push(next);
                        next
                    });
                    slice[[m, k]] = idx;
                }
            }
            moment_slices.push(slice);
        }
        let mut blocks_to_sample = Vec::new();
        let mut flat_index = Vec::new();
        for (kind, (nodes, idx)) in by_kind {
            blocks_to_sample.push(Block::of_kind(kind, nodes)?);
            flat_index.push(idx);
        }
        Ok(MomentAccumulatorObserver {
            blocks_to_sample,
            flat_index,
            n_flat: flat.len(),
            moment_slices,
            f_transform,
        })
    }

    /// Number of moments of each type.
    #[must_use]
    pub fn n_moments(&self) -> Vec<usize> {
        self.moment_slices.iter().map(|s| s.nrows()).collect()
    }

    /// A zero carry for `n_chains` chains: one `[chains, moments]` array per moment type.
    #[must_use]
    pub fn init(&self, n_chains: usize) -> Vec<Array2<f64>> {
        self.moment_slices
            .iter()
            .map(|s| Array2::zeros((n_chains, s.nrows())))
            .collect()
    }
}

impl AbstractObserver for MomentAccumulatorObserver {
    type Carry = Vec<Array2<f64>>;
    type Output = ();

    fn check(&self, program: &BlockSamplingProgram) -> Result<()> {
        for b in &self.blocks_to_sample {
            for &n in b.nodes() {
                program.gibbs_spec.location(n)?;
            }
        }
        Ok(())
    }

    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global_state: &[State],
        carry: &mut Self::Carry,
        _: usize,
    ) -> Result<()> {
        let states = from_global_state(global_state, &program.gibbs_spec, &self.blocks_to_sample)?;
        let n_chains = global_state.first().map_or(0, |s| s[0].shape()[0]);
        // The carry comes from the caller: check it fits this run (see `init`).
        let shapes: Vec<(usize, usize)> = carry.iter().map(Array2::dim).collect();
        let want: Vec<(usize, usize)> = self
            .moment_slices
            .iter()
            .map(|s| (n_chains, s.nrows()))
            .collect();
        if shapes != want {
            return Err(Error::Invalid(format!(
                "moment carry has shapes {shapes:?} but this run needs {want:?} ([chains, moments] per moment type); build it with init({n_chains})"
            )));
        }
        let mut flat = Array2::<f64>::zeros((n_chains, self.n_flat));
        for ((state, block), idx) in states
            .iter()
            .zip(&self.blocks_to_sample)
            .zip(&self.flat_index)
        {
            let values = (self.f_transform)(state, block);
            if values.dim() != (n_chains, block.len()) {
                return Err(Error::Invalid(format!(
                    "moment transform returned shape {:?} for a block of {} nodes and {n_chains} chains",
                    values.shape(),
                    block.len()
                )));
            }
            for c in 0..n_chains {
                for (j, &i) in idx.iter().enumerate() {
                    flat[[c, i]] = values[[c, j]];
                }
            }
        }
        for (sums, slice) in carry.iter_mut().zip(&self.moment_slices) {
            for c in 0..n_chains {
                for (m, nodes) in slice.rows().into_iter().enumerate() {
                    sums[[c, m]] += nodes.iter().map(|&i| flat[[c, i]]).product::<f64>();
                }
            }
        }
        Ok(())
    }
}
