//! Discrete EBMs: spin and categorical factors of any order, and their Gibbs samplers.
//!
//! A [`DiscreteEBMFactor`] over spin groups `S_1..S_M` and categorical groups `C_1..C_N`
//! with weights `W` of shape `[b, K_1, …, K_N]` has energy
//!
//! ```text
//! E(x) = − Σ_b  s_1[b] ⋯ s_M[b] · W[b, c_1[b], …, c_N[b]]
//! ```
//!
//! with spins `s ∈ {−1, +1}` and categories `c ∈ 0..K`. Fixing every variable but one gives
//! the conditionals sampled by [`SpinGibbsConditional`] (a Bernoulli with field γ) and
//! [`CategoricalGibbsConditional`] (a softmax with logits θ).
//!
//! # Example
//!
//! ```
//! use ndarray::{arr1, arr2, ArrayD};
//! use thrml::*;
//!
//! // E = −0.5 · s₀ s₁ · W[c]   with W = [1, −1, 2]
//! let s = Node::many(NodeKind::SPIN, 2);
//! let c = Node::categorical();
//! let f = DiscreteEBMFactor::new(
//!     vec![Block::new(vec![s[0]])?, Block::new(vec![s[1]])?],
//!     vec![Block::new(vec![c])?],
//!     arr2(&[[0.5f32, -0.5, 1.0]]).into_dyn(),
//! )?;
//! let ebm = FactorizedEBM::new(vec![std::sync::Arc::new(f)]);
//! let blocks = vec![Block::new(s.clone())?, Block::new(vec![c])?];
//! let state = vec![
//!     vec![Tensor::from(arr1(&[true, false]).into_dyn())], // s₀ = +1, s₁ = −1
//!     vec![Tensor::from(arr1(&[2u8]).into_dyn())],          // c = 2
//! ];
//! let e = ebm.energy(&state, &blocks)?;
//! assert_eq!(e[0], 1.0); // −(+1)(−1)(1.0)
//! # Ok::<(), thrml::Error>(())
//! ```

use std::collections::BTreeMap;

use ndarray::{ArcArray, Array1, Array2, Array3, ArrayD, Axis, IxDyn};

use crate::block::{Block, BlockSpec, from_global_state};
use crate::error::{Error, Result};
use crate::factor::{AbstractFactor, WeightedFactor};
use crate::interaction::{Interaction, InteractionGroup};
use crate::models::continuous::{SpinContinuousInteraction, accumulate_spin_field, tail_dtypes};
use crate::models::ebm::{EBMFactor, batch_len};
use crate::pgm::{DType, NodeKind, StateLayout};
use crate::rng::ChainRng;
use crate::sampler::{
    AbstractParametricConditionalSampler, BernoulliConditional, BlockInteraction, SamplerInputs,
    SamplerState, SoftmaxConditional, expect_scalar, zero_gamma,
};
use crate::state::{State, Tensor};

/// The payload of the interaction groups of discrete factors.
///
/// The first `n_spin` tail blocks are spins, the rest categoricals. `weights` has one row
/// per head node; for a spin head its shape is `[rows, K_1, …, K_m]` (one axis per
/// categorical tail), for a categorical head `[rows, K_head, K_1, …, K_m]`.
///
/// The weights are shared, not copied: the groups of a factor's heads hold views of the
/// factor's one array, a categorical head's with its category axis moved to position 1
/// (so with permuted strides). Any layout whose elements form one contiguous block with
/// non-negative strides is accepted ([`Self::flat_weights`]); programs reject others.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use thrml::DiscreteEBMInteraction;
///
/// // W[b, x, y] = 10 b + 3 x + y, viewed with its two category axes swapped.
/// let w = ArrayD::from_shape_fn(IxDyn(&[2, 3, 3]), |i| (10 * i[0] + 3 * i[1] + i[2]) as f32);
/// let d = DiscreteEBMInteraction {
///     n_spin: 0,
///     weights: w.into_shared().permuted_axes(vec![0, 2, 1]),
/// };
/// let (flat, strides) = d.flat_weights().unwrap();
/// // The view's element [1, 2, 0] is W[1, 0, 2] = 12.
/// assert_eq!(flat[strides[0] + 2 * strides[1]], 12.0);
/// ```
#[derive(Clone, Debug)]
pub struct DiscreteEBMInteraction {
    /// Number of spin tails.
    pub n_spin: usize,
    /// The weights.
    pub weights: ArcArray<f32, IxDyn>,
}

impl DiscreteEBMInteraction {
    /// The weights' memory and strides: element `[i_0, i_1, …]` is
    /// `flat[Σ_a i_a · strides[a]]`. `None` if the elements are not one contiguous block
    /// or a stride is negative.
    #[must_use]
    pub fn flat_weights(&self) -> Option<(&[f32], Vec<usize>)> {
        let strides = self
            .weights
            .strides()
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<Vec<_>>>()?;
        Some((self.weights.as_slice_memory_order()?, strides))
    }

    /// Whether a group with `n_tails` tails has a categorical head (the weights have one
    /// more axis than the categorical tails need).
    #[must_use]
    pub fn head_is_categorical(&self, n_tails: usize) -> bool {
        self.weights.ndim() == 2 + n_tails.saturating_sub(self.n_spin)
    }
}

impl Interaction for DiscreteEBMInteraction {
    fn n_rows(&self) -> usize {
        self.weights.shape()[0]
    }

    fn value_limits(&self, n_tails: usize) -> (Option<usize>, Vec<Option<usize>>) {
        let cat_head = self.head_is_categorical(n_tails);
        let offset = 1 + usize::from(cat_head);
        let head = cat_head.then(|| self.weights.shape()[1]);
        let tails = (0..n_tails)
            .map(|t| {
                if t < self.n_spin {
                    None
                } else {
                    self.weights.shape().get(offset + t - self.n_spin).copied()
                }
            })
            .collect();
        (head, tails)
    }
}

/// Batches of energy terms `s_1 ⋯ s_M · W[c_1, …, c_N]` (THRML's `DiscreteEBMFactor`).
///
/// No variable should appear twice in one factor instance.
#[derive(Clone, Debug)]
pub struct DiscreteEBMFactor {
    /// The spin node groups.
    pub spin_node_groups: Vec<Block>,
    /// The categorical node groups.
    pub categorical_node_groups: Vec<Block>,
    weighted: WeightedFactor,
    /// Which node kinds this factor treats as spins (`true`) or categoricals (`false`).
    pub is_spin: BTreeMap<NodeKind, bool>,
}

impl DiscreteEBMFactor {
    /// A discrete factor with weights of shape `[b, K_1, …, K_N]`, `N` the number of
    /// categorical groups and `b` the group length.
    ///
    /// # Errors
    /// [`Error::FactorGroups`] (no groups, unequal lengths), [`Error::WeightShape`] (rank,
    /// leading dimension, a categorical axis of length 0 or over 256),
    /// [`Error::NonFiniteWeight`], [`Error::SpinAndCategorical`].
    pub fn new(
        spin_node_groups: Vec<Block>,
        categorical_node_groups: Vec<Block>,
        weights: ArrayD<f32>,
    ) -> Result<Self> {
        let groups: Vec<Block> = spin_node_groups
            .iter()
            .chain(&categorical_node_groups)
            .cloned()
            .collect();
        if weights.ndim() != 1 + categorical_node_groups.len() {
            return Err(Error::WeightShape(format!(
                "weights of shape {:?} have rank {}, but a factor with {} categorical groups needs rank {} ([b, K_1, ..., K_N])",
                weights.shape(),
                weights.ndim(),
                categorical_node_groups.len(),
                1 + categorical_node_groups.len()
            )));
        }
        let weighted = WeightedFactor::new(weights, groups)?;
        if let Some(&k) = weighted.weights.shape()[1..]
            .iter()
            .find(|&&k| k == 0 || k > 256)
        {
            return Err(Error::WeightShape(format!(
                "a categorical axis has length {k}; categorical nodes take 1 to 256 values"
            )));
        }
        let mut is_spin = BTreeMap::new();
        for g in &spin_node_groups {
            is_spin.insert(g.node_kind(), true);
        }
        for g in &categorical_node_groups {
            if is_spin.get(&g.node_kind()) == Some(&true) {
                return Err(Error::SpinAndCategorical(g.node_kind().name().to_owned()));
            }
            is_spin.insert(g.node_kind(), false);
        }
        Ok(DiscreteEBMFactor {
            spin_node_groups,
            categorical_node_groups,
            weighted,
            is_spin,
        })
    }

    /// The weight tensor `[b, K_1, …, K_N]`.
    #[must_use]
    pub fn weights(&self) -> &ArcArray<f32, IxDyn> {
        &self.weighted.weights
    }

    /// The factor batch size `b`.
    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.weighted.weights.shape()[0]
    }

    fn spin_groups_share_kind(&self) -> bool {
        self.spin_node_groups
            .windows(2)
            .all(|w| w[0].node_kind() == w[1].node_kind())
    }

    /// The interaction groups: the spin heads' groups ([`Self::spin_groups`]) and one
    /// group per categorical head, whose weights are a view of the factor's weights with
    /// the head's category axis moved to position 1 (no copy).
    fn interaction_groups(&self) -> Vec<InteractionGroup> {
        let n_spin = self.spin_node_groups.len();
        let n_cat = self.categorical_node_groups.len();
        let mut groups = self.spin_groups();
        for h in 0..n_cat {
            let mut perm = vec![0, 1 + h];
            perm.extend((0..n_cat).filter(|&i| i != h).map(|i| 1 + i));
            groups.push(group(
                n_spin,
                self.weighted.weights.clone().permuted_axes(perm),
                self.categorical_node_groups[h].clone(),
                self.tails_of(None, Some(h)).into_iter().cloned().collect(),
            ));
        }
        groups
    }

    /// The tails of a head: the spin groups, then the categorical groups, each but the
    /// head's own (`spin` or `cat`, its index in its list).
    fn tails_of(&self, spin: Option<usize>, cat: Option<usize>) -> Vec<&Block> {
        fn others(groups: &[Block], own: Option<usize>) -> impl Iterator<Item = &Block> {
            groups
                .iter()
                .enumerate()
                .filter(move |&(i, _)| Some(i) != own)
                .map(|(_, g)| g)
        }
        others(&self.spin_node_groups, spin)
            .chain(others(&self.categorical_node_groups, cat))
            .collect()
    }

    /// The spin heads' interaction groups. With one spin group, or spin groups of
    /// different kinds, one group per spin head, each holding the factor's weights (shared,
    /// not copied). Spin groups of one kind make one group: every spin group in turn is
    /// the head, and the weights are tiled once per head.
    fn spin_groups(&self) -> Vec<InteractionGroup> {
        let n_spin = self.spin_node_groups.len();
        let w = &self.weighted.weights;
        let tails_for = |head: usize| self.tails_of(Some(head), None);
        if n_spin > 1 && self.spin_groups_share_kind() {
            let kind = self.spin_node_groups[0].node_kind();
            let heads: Vec<_> = self
                .spin_node_groups
                .iter()
                .flat_map(|g| g.nodes().iter().copied())
                .collect();
            let mut tails: Vec<Vec<_>> =
                vec![Vec::new(); n_spin - 1 + self.categorical_node_groups.len()];
            for h in 0..n_spin {
                for (t, g) in tails_for(h).into_iter().enumerate() {
                    tails[t].extend_from_slice(g.nodes());
                }
            }
            let views: Vec<_> = (0..n_spin).map(|_| w.view()).collect();
            let tiled = ndarray::concatenate(Axis(0), &views).expect("same shapes");
            // Tail `t` of every head has the kind of head 0's tail `t` (the spin groups
            // share a kind, the categorical tails are the same for every head).
            let block = |kind, nodes| Block::of_kind(kind, nodes).expect("nodes of one kind");
            let tails = tails
                .into_iter()
                .zip(tails_for(0))
                .map(|(t, g)| block(g.node_kind(), t))
                .collect();
            return vec![group(
                n_spin - 1,
                tiled.into_shared(),
                block(kind, heads),
                tails,
            )];
        }
        (0..n_spin)
            .map(|h| {
                let tails = tails_for(h).into_iter().cloned().collect();
                group(
                    n_spin - 1,
                    w.clone(),
                    self.spin_node_groups[h].clone(),
                    tails,
                )
            })
            .collect()
    }
}

/// A discrete interaction group (`n_spin` spin tails).
fn group(
    n_spin: usize,
    weights: ArcArray<f32, IxDyn>,
    head: Block,
    tails: Vec<Block>,
) -> InteractionGroup {
    InteractionGroup::new(DiscreteEBMInteraction { n_spin, weights }, head, tails)
        .expect("factor groups have equal lengths")
}

impl AbstractFactor for DiscreteEBMFactor {
    fn node_groups(&self) -> &[Block] {
        &self.weighted.node_groups
    }

    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        self.interaction_groups()
    }
}

/// Gather the scalar state of `blocks` as `[M, b]` arrays of `T`.
fn gather_scalars<T: crate::state::Element>(
    global: &[State],
    spec: &BlockSpec,
    blocks: &[Block],
    what: &str,
) -> Result<Vec<Array2<T>>> {
    let m = batch_len(global);
    from_global_state(global, spec, blocks)?
        .into_iter()
        .zip(blocks)
        .map(|(s, b)| {
            let t = &s[0];
            let view = t.view::<T>().ok_or_else(|| {
                Error::Invalid(format!(
                    "{what} nodes of kind `{}` must have {} states, got {}",
                    b.node_kind(),
                    T::DTYPE,
                    t.dtype()
                ))
            })?;
            Ok(view
                .to_shape((m, b.len()))
                .map_err(|e| Error::Invalid(e.to_string()))?
                .to_owned())
        })
        .collect()
}

impl EBMFactor for DiscreteEBMFactor {
    fn energy(&self, global_state: &[State], block_spec: &BlockSpec) -> Result<Array1<f64>> {
        let spins =
            gather_scalars::<bool>(global_state, block_spec, &self.spin_node_groups, "spin")?;
        let cats = gather_scalars::<u8>(
            global_state,
            block_spec,
            &self.categorical_node_groups,
            "categorical",
        )?;
        let m = batch_len(global_state);
        let w = &self.weighted.weights;
        let w_flat = w.as_slice().expect("standard layout");
        let strides: Vec<usize> = w.strides().iter().map(|&s| s.unsigned_abs()).collect();
        let mut out = Array1::zeros(m);
        for (i, e) in out.iter_mut().enumerate() {
            let mut total = 0.0f64;
            for b in 0..self.batch_size() {
                let sign = spins
                    .iter()
                    .fold(1.0, |p, s| if s[[i, b]] { p } else { -p });
                let mut idx = b * strides[0];
                for (k, c) in cats.iter().enumerate() {
                    let v = usize::from(c[[i, b]]);
                    if v >= w.shape()[1 + k] {
                        return Err(Error::ValueOutOfRange(format!(
                            "categorical node {} has state {v}, but the factor's axis has {} categories",
                            self.categorical_node_groups[k][b].id(),
                            w.shape()[1 + k]
                        )));
                    }
                    idx += v * strides[1 + k];
                }
                total += sign * f64::from(w_flat[idx]);
            }
            *e = -total;
        }
        Ok(out)
    }
}

/// A discrete factor whose weight tensor is square, `[b, x, x, …, x]`
/// (THRML's `SquareDiscreteEBMFactor`).
///
/// THRML merges the interaction groups of such a factor's heads into one, concatenating
/// one (transposed) copy of the weights per head, so that JAX runs fewer, larger gathers.
/// Here the groups of the categorical heads stay separate, each a view of the factor's
/// one weight array, since the program compiles every group to per-block gather plans
/// anyway and merging would only copy the weights once per head. The samples are the same:
/// each node's terms are summed in the same order either way. The spin heads' groups
/// merge as in [`DiscreteEBMFactor`].
#[derive(Clone, Debug)]
pub struct SquareDiscreteEBMFactor(DiscreteEBMFactor);

impl SquareDiscreteEBMFactor {
    /// A square discrete factor.
    ///
    /// # Errors
    /// As [`DiscreteEBMFactor::new`], and [`Error::NotSquare`].
    pub fn new(
        spin_node_groups: Vec<Block>,
        categorical_node_groups: Vec<Block>,
        weights: ArrayD<f32>,
    ) -> Result<Self> {
        let f = DiscreteEBMFactor::new(spin_node_groups, categorical_node_groups, weights)?;
        let shape = f.weights().shape();
        if shape.len() > 2 && shape[2..].iter().any(|&k| k != shape[1]) {
            return Err(Error::NotSquare(shape.to_vec()));
        }
        Ok(SquareDiscreteEBMFactor(f))
    }

    /// The underlying discrete factor.
    #[must_use]
    pub fn discrete(&self) -> &DiscreteEBMFactor {
        &self.0
    }
}

impl AbstractFactor for SquareDiscreteEBMFactor {
    fn node_groups(&self) -> &[Block] {
        self.0.node_groups()
    }

    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        self.0.interaction_groups()
    }
}

impl EBMFactor for SquareDiscreteEBMFactor {
    fn energy(&self, global_state: &[State], block_spec: &BlockSpec) -> Result<Array1<f64>> {
        self.0.energy(global_state, block_spec)
    }
}

macro_rules! specialised_factor {
    ($(#[$doc:meta])* $name:ident, $inner:ident, |$groups:ident, $weights:ident| $build:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name($inner);

        impl $name {
            /// The factor over `node_groups` with `weights`.
            ///
            /// # Errors
            /// As the general discrete factor's constructor.
            pub fn new($groups: Vec<Block>, $weights: ArrayD<f32>) -> Result<Self> {
                $build.map($name)
            }

            /// The underlying discrete factor.
            #[must_use]
            pub fn discrete(&self) -> &DiscreteEBMFactor {
                specialised_factor!(@discrete self.0, $inner)
            }
        }

        impl AbstractFactor for $name {
            fn node_groups(&self) -> &[Block] {
                self.0.node_groups()
            }
            fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
                self.0.to_interaction_groups()
            }
        }

        impl EBMFactor for $name {
            fn energy(&self, global_state: &[State], block_spec: &BlockSpec) -> Result<Array1<f64>> {
                self.0.energy(global_state, block_spec)
            }
        }
    };
    (@discrete $e:expr, DiscreteEBMFactor) => { &$e };
    (@discrete $e:expr, SquareDiscreteEBMFactor) => { $e.discrete() };
}

specialised_factor!(
    /// A discrete factor over spins only: `E = −Σ_b w[b] Π_k s_k[b]` (THRML's
    /// `SpinEBMFactor`). Weights have shape `[b]`.
    SpinEBMFactor, SquareDiscreteEBMFactor, |node_groups, weights| SquareDiscreteEBMFactor::new(node_groups, vec![], weights)
);
specialised_factor!(
    /// A discrete factor over categoricals only: `E = −Σ_b W[b, c_1[b], …, c_N[b]]`
    /// (THRML's `CategoricalEBMFactor`).
    CategoricalEBMFactor, DiscreteEBMFactor, |node_groups, weights| DiscreteEBMFactor::new(vec![], node_groups, weights)
);
specialised_factor!(
    /// A categorical-only factor with a square weight tensor (THRML's
    /// `SquareCategoricalEBMFactor`).
    SquareCategoricalEBMFactor, SquareDiscreteEBMFactor, |node_groups, weights| SquareDiscreteEBMFactor::new(vec![], node_groups, weights)
);

// ---------------------------------------------------------------------------------------
// Samplers
// ---------------------------------------------------------------------------------------

/// Check a compiled interaction against the discrete-EBM rules for a head of the given kind.
/// `Ok(false)`: not a [`DiscreteEBMInteraction`].
fn check_discrete(
    bi: &BlockInteraction,
    spec: &BlockSpec,
    head_categories: Option<usize>,
) -> Result<bool, String> {
    let Some(d) = bi.downcast::<DiscreteEBMInteraction>() else {
        return Ok(false);
    };
    let n_tails = bi.tails().len();
    if d.n_spin > n_tails {
        return Err(format!(
            "a discrete interaction declares {} spin tails but has {n_tails} tails",
            d.n_spin
        ));
    }
    for (t, tail) in bi.tails().iter().enumerate() {
        let layout: &StateLayout = &spec.global_sd_order[tail.slot];
        let (want, what) = if t < d.n_spin {
            (DType::Bool, "spin")
        } else {
            (DType::U8, "categorical")
        };
        if layout.scalar_dtype() != Some(want) {
            return Err(format!(
                "{what} tail {t} of a discrete interaction must hold scalar {want} states, got {layout:?}"
            ));
        }
    }
    if d.flat_weights().is_none() {
        return Err(format!(
            "discrete weights of shape {:?} with strides {:?} are not one contiguous block with non-negative strides; pass them in standard layout",
            d.weights.shape(),
            d.weights.strides()
        ));
    }
    let n_cat_tails = n_tails - d.n_spin;
    match head_categories {
        None if d.weights.ndim() != 1 + n_cat_tails => Err(format!(
            "a spin head needs discrete weights of rank {} but got shape {:?}; is a categorical node in a spin block?",
            1 + n_cat_tails,
            d.weights.shape()
        )),
        Some(k) if d.weights.ndim() != 2 + n_cat_tails || d.weights.shape()[1] != k => {
            Err(format!(
                "a categorical head with {k} categories needs discrete weights of shape [rows, {k}, ...] and rank {}, got {:?}",
                2 + n_cat_tails,
                d.weights.shape()
            ))
        }
        _ => Ok(true),
    }
}

/// A categorical tail: its slot's states, slot size, position per entry, and the weight
/// axis it indexes (stride, number of categories).
struct CatTail<'a> {
    states: &'a [u8],
    slot_size: usize,
    positions: &'a [u32],
    stride: usize,
    n: usize,
}

/// Gathers tail values of one discrete interaction for every chain and entry.
///
/// Each tail is flattened to `(states of its slot, slot size, position per entry)` once per
/// call, so the per-entry work is a few indexed loads.
struct DiscreteGather<'a> {
    rows: &'a [u32],
    spins: Vec<(&'a [bool], usize, &'a [u32])>,
    cats: Vec<CatTail<'a>>,
    weights: &'a [f32],
    row_stride: usize,
    /// The stride of the head's category axis (categorical heads; 0 for spin heads).
    head_stride: usize,
}

impl<'a> DiscreteGather<'a> {
    fn new(
        bi: &'a BlockInteraction,
        d: &'a DiscreteEBMInteraction,
        inputs: &SamplerInputs<'a>,
        head_axes: usize,
    ) -> Self {
        let tails = bi.tails();
        let (weights, strides) = d
            .flat_weights()
            .expect("programs accept only contiguous discrete weights");
        let spins = tails[..d.n_spin]
            .iter()
            .map(|t| {
                (
                    inputs.leaf::<bool>(t.slot, 0),
                    t.slot_size,
                    t.positions.as_slice(),
                )
            })
            .collect();
        let cats = tails[d.n_spin..]
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let axis = 1 + head_axes + k;
                CatTail {
                    states: inputs.leaf::<u8>(t.slot, 0),
                    slot_size: t.slot_size,
                    positions: t.positions.as_slice(),
                    stride: strides[axis],
                    n: d.weights.shape()[axis],
                }
            })
            .collect();
        DiscreteGather {
            rows: bi.rows(),
            spins,
            cats,
            weights,
            row_stride: strides[0],
            head_stride: if head_axes == 1 { strides[1] } else { 0 },
        }
    }

    /// `(Π spins, flat weight index without the head axis)` for chain `c`, entry `e`.
    #[inline(always)]
    fn entry(&self, c: usize, e: usize) -> (f32, usize) {
        let mut negative = false;
        for &(states, size, positions) in &self.spins {
            negative ^= !states[c * size + positions[e] as usize];
        }
        let mut idx = self.rows[e] as usize * self.row_stride;
        for t in &self.cats {
            let v = usize::from(t.states[c * t.slot_size + t.positions[e] as usize]);
            assert!(v < t.n, "categorical state {v} out of range 0..{}", t.n);
            idx += v * t.stride;
        }
        (if negative { -1.0 } else { 1.0 }, idx)
    }
}

/// Gibbs update of spins from discrete-EBM interactions (THRML's `SpinGibbsConditional`).
///
/// The field of a spin is
///
/// ```text
/// γ = Σ_i s_1^i ⋯ s_K^i · W^i[c_1^i, …, c_M^i]
/// ```
///
/// over the discrete interactions `i` it heads, plus `Σ_k w_k x_k` over the built-in
/// spin–continuous interactions ([`SpinContinuousFactor`](crate::SpinContinuousFactor),
/// `E = −w s x`) with continuous tails `x_k`, and the spin is drawn with `P(+1) = σ(2γ)`
/// ([`BernoulliConditional`]). Blocks with continuous tails run on the generic path (the
/// fused kernels take only blocks whose interactions are all discrete).
///
/// **Extending it.** A sampler for spins that also feel interactions of your own types adds
/// the discrete part with [`SpinGibbsConditional::accumulate`], its own part by hand, and
/// delegates the draw to [`BernoulliConditional`]; use
/// [`SpinGibbsConditional::check_interaction`] in its `validate`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinGibbsConditional;

impl SpinGibbsConditional {
    /// Validate one compiled interaction for a spin block: `Ok(true)` if it is a well-formed
    /// discrete interaction, `Ok(false)` if it is some other type.
    ///
    /// # Errors
    /// A discrete interaction whose tails or weights do not fit a spin head.
    ///
    /// Besides discrete interactions, it accepts the built-in
    /// [`SpinContinuousInteraction`] with one scalar `f32` tail.
    pub fn check_interaction(bi: &BlockInteraction, spec: &BlockSpec) -> Result<bool, String> {
        if bi.downcast::<SpinContinuousInteraction>().is_some() {
            let tails = tail_dtypes(bi, spec);
            return if tails == [Some(DType::F32)] {
                Ok(true)
            } else {
                Err(format!(
                    "a spin–continuous interaction on a spin head needs one f32 (continuous) tail, got tails of dtypes {tails:?}"
                ))
            };
        }
        check_discrete(bi, spec, None)
    }

    /// Add the γ contribution of `bi` to `gamma` (`[chains, nodes]`) if it is a
    /// [`DiscreteEBMInteraction`] or a built-in [`SpinContinuousInteraction`] (which adds
    /// `w x` for each continuous tail `x`); returns whether it was.
    pub fn accumulate(
        bi: &BlockInteraction,
        inputs: &SamplerInputs<'_>,
        gamma: &mut Array2<f32>,
    ) -> bool {
        if let Some(k) = bi.downcast::<SpinContinuousInteraction>() {
            accumulate_spin_field(bi, k, inputs, gamma);
            return true;
        }
        let Some(d) = bi.downcast::<DiscreteEBMInteraction>() else {
            return false;
        };
        let g = DiscreteGather::new(bi, d, inputs, 0);
        for (c, mut row) in gamma.rows_mut().into_iter().enumerate() {
            for (j, field) in row.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for e in bi.entries(j) {
                    let (sign, idx) = g.entry(c, e);
                    sum += sign * g.weights[idx];
                }
                *field += sum;
            }
        }
        true
    }
}

impl AbstractParametricConditionalSampler for SpinGibbsConditional {
    type Parameters = Array2<f32>;

    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        expect_scalar(output_layout, DType::Bool, "SpinGibbsConditional")?;
        for bi in interactions {
            if !Self::check_interaction(bi, spec)? {
                return Err(format!(
                    "SpinGibbsConditional cannot handle interactions of type {:?}",
                    bi.interaction()
                ));
            }
        }
        Ok(())
    }

    fn compute_parameters(
        &self,
        _: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        _: &SamplerState,
    ) -> Array2<f32> {
        let mut gamma = zero_gamma(inputs.n_chains, inputs.n_nodes());
        for bi in inputs.interactions {
            Self::accumulate(bi, inputs, &mut gamma);
        }
        gamma
    }

    fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        gamma: &Array2<f32>,
        _: &mut SamplerState,
        out: &mut State,
    ) {
        BernoulliConditional.sample_given_parameters(rngs, gamma.view(), out);
    }
}

/// Gibbs update of categoricals from discrete-EBM interactions (THRML's
/// `CategoricalGibbsConditional`).
///
/// The logits are
///
/// ```text
/// θ = Σ_i s_1^i ⋯ s_K^i · W^i[:, c_1^i, …, c_M^i]
/// ```
///
/// and the category is drawn with `P(k) ∝ exp(θ_k)` ([`SoftmaxConditional`]). Extend it as
/// [`SpinGibbsConditional`], with [`CategoricalGibbsConditional::accumulate`].
#[derive(Clone, Copy, Debug)]
pub struct CategoricalGibbsConditional {
    /// Number of categories of the block's nodes.
    pub n_categories: usize,
}

impl CategoricalGibbsConditional {
    /// A sampler for nodes with `n_categories` categories.
    #[must_use]
    pub fn new(n_categories: usize) -> Self {
        CategoricalGibbsConditional { n_categories }
    }

    /// Validate one compiled interaction for this block, as
    /// [`SpinGibbsConditional::check_interaction`].
    ///
    /// # Errors
    /// A discrete interaction whose tails or weights do not fit this head.
    pub fn check_interaction(
        &self,
        bi: &BlockInteraction,
        spec: &BlockSpec,
    ) -> Result<bool, String> {
        check_discrete(bi, spec, Some(self.n_categories))
    }

    /// Add the θ contribution of `bi` to `theta` (`[chains, nodes, categories]`) if it is a
    /// [`DiscreteEBMInteraction`]; returns whether it was.
    pub fn accumulate(
        bi: &BlockInteraction,
        inputs: &SamplerInputs<'_>,
        theta: &mut Array3<f32>,
    ) -> bool {
        let Some(d) = bi.downcast::<DiscreteEBMInteraction>() else {
            return false;
        };
        let g = DiscreteGather::new(bi, d, inputs, 1);
        let k = d.weights.shape()[1];
        let head_stride = g.head_stride;
        for c in 0..inputs.n_chains {
            for j in 0..inputs.n_nodes() {
                for e in bi.entries(j) {
                    let (sign, idx) = g.entry(c, e);
                    for cat in 0..k {
                        theta[[c, j, cat]] += sign * g.weights[idx + cat * head_stride];
                    }
                }
            }
        }
        true
    }

    fn softmax(&self) -> SoftmaxConditional {
        SoftmaxConditional {
            n_categories: self.n_categories,
        }
    }
}

impl AbstractParametricConditionalSampler for CategoricalGibbsConditional {
    type Parameters = Array3<f32>;

    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        expect_scalar(output_layout, DType::U8, "CategoricalGibbsConditional")?;
        if self.n_categories == 0 || self.n_categories > 256 {
            return Err(format!(
                "n_categories is {}, must be 1 to 256",
                self.n_categories
            ));
        }
        for bi in interactions {
            if !self.check_interaction(bi, spec)? {
                return Err(format!(
                    "CategoricalGibbsConditional cannot handle interactions of type {:?}",
                    bi.interaction()
                ));
            }
        }
        Ok(())
    }

    fn value_limit(&self) -> Option<usize> {
        Some(self.n_categories)
    }

    fn compute_parameters(
        &self,
        _: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        _: &SamplerState,
    ) -> Array3<f32> {
        let mut theta = self.softmax().zeros(inputs.n_chains, inputs.n_nodes());
        for bi in inputs.interactions {
            Self::accumulate(bi, inputs, &mut theta);
        }
        theta
    }

    fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        theta: &Array3<f32>,
        _: &mut SamplerState,
        out: &mut State,
    ) {
        self.softmax()
            .sample_given_parameters(rngs, theta.view(), out);
    }
}

/// Convert a spin tensor to ±1 values.
#[must_use]
pub fn spins_to_pm1(t: &Tensor) -> Option<ArrayD<f64>> {
    t.view::<bool>()
        .map(|a| a.mapv(|s| if s { 1.0 } else { -1.0 }))
}

#[cfg(test)]
mod tests {
    use super::{DiscreteEBMInteraction, SquareCategoricalEBMFactor};
    use crate::factor::AbstractFactor;
    use crate::interaction::InteractionGroup;
    use crate::{Block, Node, NodeKind};
    use ndarray::{ArrayD, IxDyn};

    fn payload(g: &InteractionGroup) -> &DiscreteEBMInteraction {
        g.interaction
            .downcast_ref::<DiscreteEBMInteraction>()
            .expect("a discrete payload")
    }

    #[test]
    fn square_groups_are_views_of_the_factor_weights() {
        // Three categorical groups of 4 nodes, 3 categories: one group per head, each a
        // view of the factor's one weight array with the head's axis moved to position 1.
        let c = Node::many(NodeKind::CATEGORICAL, 12);
        let groups: Vec<Block> = c
            .chunks(4)
            .map(|g| Block::new(g.to_vec()).unwrap())
            .collect();
        let value =
            |b: usize, x: [usize; 3]| (b * 27 + x[0] * 9 + x[1] * 3 + x[2]) as f32 * 0.25 - 5.0;
        let w = ArrayD::from_shape_fn(IxDyn(&[4, 3, 3, 3]), |i| value(i[0], [i[1], i[2], i[3]]));
        let square = SquareCategoricalEBMFactor::new(groups.clone(), w).unwrap();
        let out = square.to_interaction_groups();
        assert_eq!(out.len(), 3);
        let weights = square.discrete().weights();
        for (h, g) in out.iter().enumerate() {
            let d = payload(g);
            assert_eq!(d.n_spin, 0);
            assert_eq!(
                d.weights.as_ptr(),
                weights.as_ptr(),
                "head {h} copied the weights"
            );
            assert_eq!(g.head_nodes, groups[h]);
            let others: Vec<usize> = (0..3).filter(|&i| i != h).collect();
            for (t, &o) in others.iter().enumerate() {
                assert_eq!(g.tail_nodes[t], groups[o], "head {h}, tail {t}");
            }
            let (flat, strides) = d.flat_weights().unwrap();
            for b in 0..4 {
                for x in 0..27 {
                    let x = [x / 9, x / 3 % 3, x % 3];
                    // The group's element [b, x_h, x_others...] is W[b, x_0, x_1, x_2].
                    let mut at = b * strides[0] + x[h] * strides[1];
                    for (t, &o) in others.iter().enumerate() {
                        at += x[o] * strides[2 + t];
                    }
                    assert_eq!(flat[at], value(b, x), "head {h}, row {b}, {x:?}");
                }
            }
        }
        // The discrete factor with the same weights compiles to the same groups.
        let plain = square.discrete().to_interaction_groups();
        for (a, b) in out.iter().zip(&plain) {
            assert_eq!(payload(a).weights, payload(b).weights);
            assert_eq!(payload(a).weights.strides(), payload(b).weights.strides());
        }
    }

    #[test]
    fn discrete_weights_must_be_one_block_with_non_negative_strides() {
        let w = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| (3 * i[0] + i[1]) as f32).into_shared();
        let ok = |weights| {
            DiscreteEBMInteraction { n_spin: 0, weights }
                .flat_weights()
                .is_some()
        };
        assert!(ok(w.clone()));
        assert!(ok(w.clone().reversed_axes()));
        let mut flipped = w.clone();
        flipped.invert_axis(ndarray::Axis(1));
        assert!(!ok(flipped));
        let strided = w.slice_move(ndarray::s![..;2, ..]).into_dyn();
        assert!(!ok(strided));
    }
}
