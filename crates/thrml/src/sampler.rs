//! Conditional samplers: the update rule of one free block.
//!
//! When a free block is updated, its sampler receives a [`SamplerInputs`]: for every
//! interaction group that has a head node in the block, a compiled [`BlockInteraction`]
//! saying which payload rows each node heads and where the tail states of those rows live in
//! the global state, plus the global state of *all chains*. A sampler draws the new state
//! of the block for every chain at once.
//!
//! * [`AbstractConditionalSampler`] is the general trait (THRML's
//!   `AbstractConditionalSampler`). Its state (`SamplerState`) is initialised once and
//!   carried across iterations.
//! * [`AbstractParametricConditionalSampler`] splits an update into
//!   `compute_parameters` and `sample_given_parameters`; every such sampler is a conditional
//!   sampler.
//! * [`BernoulliConditional`] draws spins with `P(s) ∝ exp(γ s)`, so `P(+1) = σ(2γ)`.
//! * [`SoftmaxConditional`] draws categories with `P(k) ∝ exp(θ_k)`.
//!
//! THRML passes padded arrays plus `active_flags`; here the storage is ragged, so every
//! entry a sampler sees is active.

use std::any::Any;
use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::RngExt;

use crate::block::{Block, BlockSpec};
use crate::interaction::Interaction;
use crate::pgm::{DType, StateLayout};
use crate::rng::ChainRng;
use crate::state::{Element, State};

/// The carried state of a sampler for one free block (THRML's `sampler_state`).
///
/// Most samplers are stateless and use [`SamplerState::none`].
#[derive(Debug, Default)]
pub struct SamplerState(pub Option<Box<dyn Any + Send + Sync>>);

impl SamplerState {
    /// No state.
    #[must_use]
    pub fn none() -> SamplerState {
        SamplerState(None)
    }

    /// Wrap a value.
    #[must_use]
    pub fn new<T: Any + Send + Sync>(value: T) -> SamplerState {
        SamplerState(Some(Box::new(value)))
    }

    /// Borrow the value as a `T`.
    #[must_use]
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|b| b.downcast_ref())
    }

    /// Mutably borrow the value as a `T`.
    pub fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.0.as_mut().and_then(|b| b.downcast_mut())
    }
}

/// Where one tail block of an interaction group lives in the global state, per entry.
#[derive(Clone, Debug)]
pub struct TailLocations {
    /// The global slot holding the tail nodes.
    pub slot: usize,
    /// Number of nodes in that slot (the stride between chains).
    pub slot_size: usize,
    /// For each entry of the [`BlockInteraction`], the tail node's position in the slot
    /// (`u32`, like THRML's `int32` index arrays; [`TailLocations::position`]).
    pub positions: Vec<u32>,
}

impl TailLocations {
    /// The tail node's position in the slot for entry `e`.
    #[must_use]
    #[inline]
    pub fn position(&self, e: usize) -> usize {
        self.positions[e] as usize
    }
}

/// An interaction group compiled for one free block.
///
/// Node `j` of the block heads the payload rows `rows[entries(j)]`; for entry `e` and tail
/// block `t`, the tail node's state is at position `tails[t].position(e)` of slot
/// `tails[t].slot` of the global state. Offsets, rows and positions are stored as `u32`
/// (a program holds fewer than 2^32 entries per group and nodes per slot).
#[derive(Clone, Debug)]
pub struct BlockInteraction {
    interaction: Arc<dyn Interaction>,
    offsets: Vec<u32>,
    rows: Vec<u32>,
    tails: Vec<TailLocations>,
}

impl BlockInteraction {
    pub(crate) fn new(
        interaction: Arc<dyn Interaction>,
        offsets: Vec<u32>,
        rows: Vec<u32>,
        tails: Vec<TailLocations>,
    ) -> Self {
        BlockInteraction {
            interaction,
            offsets,
            rows,
            tails,
        }
    }

    /// The payload.
    #[must_use]
    pub fn interaction(&self) -> &dyn Interaction {
        &*self.interaction
    }

    /// The payload as a `T`, if it is one.
    #[must_use]
    pub fn downcast<T: Interaction>(&self) -> Option<&T> {
        self.interaction.downcast_ref()
    }

    /// The entries headed by node `j` of the block.
    #[must_use]
    pub fn entries(&self, j: usize) -> Range<usize> {
        self.offsets[j] as usize..self.offsets[j + 1] as usize
    }

    /// The payload row of entry `e`.
    #[must_use]
    pub fn row(&self, e: usize) -> usize {
        self.rows[e] as usize
    }

    /// The payload row of every entry.
    #[must_use]
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// The tail blocks' locations.
    #[must_use]
    pub fn tails(&self) -> &[TailLocations] {
        &self.tails
    }

    /// Total number of entries.
    #[must_use]
    pub fn n_entries(&self) -> usize {
        self.rows.len()
    }

    /// Number of nodes of the block (the valid `j` of [`Self::entries`]).
    ///
    /// Lets a sampler's `validate` check that every node heads some entry of a kind it
    /// needs (a Gaussian sampler needs a precision term for each node, say).
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Everything a sampler sees when it updates one free block for all chains.
#[derive(Clone, Copy, Debug)]
pub struct SamplerInputs<'a> {
    /// The block being updated.
    pub block: &'a Block,
    /// Index of the block among the program's free blocks.
    pub block_index: usize,
    /// The compiled interaction groups that have head nodes in this block.
    pub interactions: &'a [BlockInteraction],
    /// The global state of every chain: slot `g`, leaf `l` has shape
    /// `[chains, slot_size(g)] + leaf.shape`, in standard layout.
    pub global_state: &'a [State],
    /// Number of chains.
    pub n_chains: usize,
    /// The layout of the block's nodes (THRML's `output_sd`, without the node axis).
    pub output_layout: &'a StateLayout,
}

impl<'a> SamplerInputs<'a> {
    /// Number of nodes in the block.
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.block.len()
    }

    /// Leaf `leaf` of global slot `slot`, flattened row-major: the element `k` of the node
    /// at position `p` in chain `c` is at `(c * slot_size + p) * leaf_size + k`.
    ///
    /// # Panics
    /// If the leaf is not of type `T`; check dtypes in
    /// [`AbstractConditionalSampler::validate`].
    #[must_use]
    pub fn leaf<T: Element>(&self, slot: usize, leaf: usize) -> &'a [T] {
        self.global_state[slot][leaf]
            .as_slice::<T>()
            .unwrap_or_else(|| {
                panic!(
                    "slot {slot} leaf {leaf} is not a contiguous {} array",
                    T::DTYPE
                )
            })
    }
}

/// Draws a free block's new state given its interactions and the current global state.
///
/// Implement this for a sampler with its own logic; implement
/// [`AbstractParametricConditionalSampler`] instead when the update is "compute the
/// parameters of a distribution, then sample from it".
pub trait AbstractConditionalSampler: Any + Send + Sync + Debug {
    /// Check, once when the program is built, that this sampler can update a block with
    /// these interactions and output layout. The message names what is unsupported.
    ///
    /// # Errors
    /// A description of the problem.
    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        let _ = (interactions, spec, output_layout);
        Ok(())
    }

    /// The initial sampler state for `block` across `n_chains` chains.
    fn init(&self, block: &Block, n_chains: usize) -> SamplerState {
        let _ = (block, n_chains);
        SamplerState::none()
    }

    /// Exclusive bound on the integer values this sampler draws (`n_categories` for a
    /// categorical sampler), or `None`. The program checks it against the range that every
    /// interaction reading the block's nodes accepts, so that a node that heads no
    /// interaction cannot be drawn out of range of one that reads it.
    fn value_limit(&self) -> Option<usize> {
        None
    }

    /// Draw the block's new state for every chain into `out` (leaf shapes
    /// `[chains, nodes] + leaf.shape`), updating `sampler_state`. Chain `c` draws its
    /// randomness from `rngs[c]` only.
    fn sample(
        &self,
        rngs: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        sampler_state: &mut SamplerState,
        out: &mut State,
    );
}

/// A sampler that computes the parameters of a distribution and then samples from it.
///
/// Every implementor is an [`AbstractConditionalSampler`].
pub trait AbstractParametricConditionalSampler: Any + Send + Sync + Debug {
    /// The distribution's parameters for all chains and nodes of the block.
    type Parameters;

    /// As [`AbstractConditionalSampler::validate`].
    ///
    /// # Errors
    /// A description of the problem.
    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        let _ = (interactions, spec, output_layout);
        Ok(())
    }

    /// As [`AbstractConditionalSampler::init`].
    fn init(&self, block: &Block, n_chains: usize) -> SamplerState {
        let _ = (block, n_chains);
        SamplerState::none()
    }

    /// As [`AbstractConditionalSampler::value_limit`].
    fn value_limit(&self) -> Option<usize> {
        None
    }

    /// Compute the parameters from the interactions and neighbour states.
    fn compute_parameters(
        &self,
        rngs: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        sampler_state: &SamplerState,
    ) -> Self::Parameters;

    /// Draw a state for every chain and node given the parameters.
    fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        parameters: &Self::Parameters,
        sampler_state: &mut SamplerState,
        out: &mut State,
    );
}

impl<T: AbstractParametricConditionalSampler> AbstractConditionalSampler for T {
    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        AbstractParametricConditionalSampler::validate(self, interactions, spec, output_layout)
    }

    fn init(&self, block: &Block, n_chains: usize) -> SamplerState {
        AbstractParametricConditionalSampler::init(self, block, n_chains)
    }

    fn value_limit(&self) -> Option<usize> {
        AbstractParametricConditionalSampler::value_limit(self)
    }

    fn sample(
        &self,
        rngs: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        sampler_state: &mut SamplerState,
        out: &mut State,
    ) {
        let parameters = self.compute_parameters(rngs, inputs, sampler_state);
        self.sample_given_parameters(rngs, &parameters, sampler_state, out);
    }
}

/// Check that a block's layout is one scalar of `dtype`.
pub(crate) fn expect_scalar(
    output_layout: &StateLayout,
    dtype: DType,
    what: &str,
) -> Result<(), String> {
    match output_layout.scalar_dtype() {
        Some(d) if d == dtype => Ok(()),
        _ => Err(format!(
            "{what} needs nodes whose state is one {dtype} scalar, got layout {output_layout:?}"
        )),
    }
}

/// The spin-valued Bernoulli distribution `P(s) ∝ exp(γ s)`, `s ∈ {−1, +1}`.
///
/// So `P(s = +1) = e^γ / (e^γ + e^{−γ}) = σ(2γ)`; `true` stands for +1. This is the
/// `sample_given_parameters` half of THRML's `BernoulliConditional`: a sampler that computes
/// γ (such as [`SpinGibbsConditional`](crate::SpinGibbsConditional) or your own) delegates
/// the draw to it.
///
/// # Example
///
/// ```
/// use ndarray::Array2;
/// use thrml::{BernoulliConditional, Key, Tensor, DType};
///
/// let gamma = Array2::from_elem((1, 10_000), 0.5f32);
/// let mut out = vec![Tensor::zeros(DType::Bool, &[1, 10_000])];
/// let mut rngs = Key::new(0).chain_rngs(1);
/// BernoulliConditional.sample_given_parameters(&mut rngs, gamma.view(), &mut out);
/// let ups = out[0].as_slice::<bool>().unwrap().iter().filter(|&&s| s).count();
/// let p = 1.0 / (1.0 + (-1.0f64).exp()); // σ(2 · 0.5)
/// assert!((ups as f64 / 10_000.0 - p).abs() < 0.02);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BernoulliConditional;

impl BernoulliConditional {
    /// `P(+1) = σ(2γ)`, computed without overflow for any finite γ.
    #[must_use]
    pub fn probability_up(gamma: f32) -> f64 {
        let x = 2.0 * f64::from(gamma);
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    /// Draw spins for `gamma` of shape `[chains, nodes]` into `out[0]` (`bool`, same shape).
    ///
    /// # Panics
    /// If `out` is not one contiguous `bool` leaf of `gamma`'s size.
    pub fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        gamma: ArrayView2<'_, f32>,
        out: &mut State,
    ) {
        let (n_chains, n) = gamma.dim();
        let spins = out[0]
            .as_slice_mut::<bool>()
            .expect("spin output is a contiguous bool array");
        assert_eq!(spins.len(), n_chains * n, "output size");
        for (c, rng) in rngs.iter_mut().enumerate().take(n_chains) {
            for j in 0..n {
                let u: f64 = rng.random();
                spins[c * n + j] = u < Self::probability_up(gamma[[c, j]]);
            }
        }
    }
}

/// The softmax (categorical) distribution `P(k) ∝ exp(θ_k)`, `k ∈ 0..n_categories`.
///
/// The `sample_given_parameters` half of THRML's `SoftmaxConditional`.
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxConditional {
    /// Number of categories.
    pub n_categories: usize,
}

impl SoftmaxConditional {
    /// Draw categories for `theta` of shape `[chains, nodes, n_categories]` into `out[0]`
    /// (`u8`, shape `[chains, nodes]`), by inverting the cumulative distribution.
    ///
    /// # Panics
    /// If `out` is not one contiguous `u8` leaf of the right size.
    pub fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        theta: ArrayView3<'_, f32>,
        out: &mut State,
    ) {
        let (n_chains, n, k) = theta.dim();
        let cats = out[0]
            .as_slice_mut::<u8>()
            .expect("categorical output is a contiguous u8 array");
        assert_eq!(cats.len(), n_chains * n, "output size");
        let mut weights = vec![0f64; k];
        for (c, rng) in rngs.iter_mut().enumerate().take(n_chains) {
            for j in 0..n {
                let row = theta.slice(ndarray::s![c, j, ..]);
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                let mut total = 0.0;
                for (w, &t) in weights.iter_mut().zip(row.iter()) {
                    *w = f64::from(t - max).exp();
                    total += *w;
                }
                let u: f64 = rng.random::<f64>() * total;
                let mut acc = 0.0;
                let mut pick = k - 1;
                for (i, &w) in weights.iter().enumerate() {
                    acc += w;
                    if u < acc {
                        pick = i;
                        break;
                    }
                }
                cats[c * n + j] = u8::try_from(pick).expect("at most 256 categories");
            }
        }
    }

    /// Zero-filled parameters for `n_chains × n_nodes`.
    #[must_use]
    pub fn zeros(&self, n_chains: usize, n_nodes: usize) -> Array3<f32> {
        Array3::zeros((n_chains, n_nodes, self.n_categories))
    }
}

/// Zero-filled Bernoulli parameters γ for `n_chains × n_nodes`.
#[must_use]
pub fn zero_gamma(n_chains: usize, n_nodes: usize) -> Array2<f32> {
    Array2::zeros((n_chains, n_nodes))
}
