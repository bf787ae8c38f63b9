//! # thrml
//!
//! Block Gibbs sampling for sparse, heterogeneous probabilistic graphical models and
//! energy-based models: a Rust implementation of Extropic's
//! [THRML](https://github.com/extropic-ai/thrml).
//!
//! A model is a set of **nodes** (spins, categoricals, or kinds of your own with any state
//! layout) connected by **factors**. Factors compile to directed **interaction groups**; a
//! **block Gibbs spec** splits the free nodes into blocks (one graph colour per block,
//! updated in turn) and fixes the clamped ones; a **program** is compiled once from the
//! spec, one **conditional sampler** per free block and the interaction groups; the runner
//! executes a **schedule** on a batch of independent chains and hands each observation to
//! an **observer**. The sampled distribution is the Boltzmann distribution
//! `P(x) ∝ exp(−E(x))`.
//!
#![doc = include_str!("tour.md")]
//!
//! ## Every THRML concept, by name
//!
//! | THRML | here | module |
//! |---|---|---|
//! | `AbstractNode`, `SpinNode`, `CategoricalNode` | [`Node`], [`NodeKind`] (`SPIN`, `CATEGORICAL`, or [`NodeKind::new`]) | [`pgm`] |
//! | PyTree of `ShapeDtypeStruct` | [`StateLayout`] of [`LeafSpec`]s; [`NodeShapeDtypes`], [`default_node_shape_dtypes`] | [`pgm`] |
//! | state arrays / PyTrees | [`Tensor`], [`State`] (one tensor per leaf) | [`state`] |
//! | `Block`, `BlockSpec` | [`Block`], [`BlockSpec`] | [`block`] |
//! | `block_state_to_global`, `from_global_state`, `get_node_locations`, `make_empty_block_state`, `verify_block_state` | same names | [`block`] |
//! | `InteractionGroup` (payload, head, tails) | [`InteractionGroup`], payload trait [`Interaction`] | [`interaction`] |
//! | `AbstractFactor`, `WeightedFactor`, `FactorSamplingProgram` | [`AbstractFactor`], [`WeightedFactor`], [`FactorSamplingProgram`] | [`factor`] |
//! | `AbstractEBM`, `EBMFactor`, `AbstractFactorizedEBM`, `FactorizedEBM` | same names | [`models::ebm`] |
//! | `DiscreteEBMFactor`, `SquareDiscreteEBMFactor`, `SpinEBMFactor`, `CategoricalEBMFactor`, `SquareCategoricalEBMFactor`, `DiscreteEBMInteraction` | same names | [`models::discrete`] |
//! | `AbstractConditionalSampler`, `AbstractParametricConditionalSampler` | same names (traits) | [`sampler`] |
//! | `BernoulliConditional`, `SoftmaxConditional` | [`BernoulliConditional`], [`SoftmaxConditional`] | [`sampler`] |
//! | `SpinGibbsConditional`, `CategoricalGibbsConditional` | same names, extensible via `accumulate` | [`models::discrete`] |
//! | `BlockGibbsSpec`, `SuperBlock`, `BlockSamplingProgram` | [`BlockGibbsSpec`], [`SuperBlock`], [`BlockSamplingProgram`] | [`program`] |
//! | `SamplingSchedule`, `sample_single_block`, `sample_blocks`, `sample_with_observation`, `sample_states` | same names | [`run`] |
//! | `AbstractObserver`, `StateObserver`, `MomentAccumulatorObserver` | same names | [`observer`] |
//! | `IsingEBM`, `IsingSamplingProgram`, `IsingTrainingSpec`, `hinton_init`, `estimate_moments`, `estimate_kl_grad` | same names | [`models::ising`] |
//! | KL-gradient training of any discrete EBM, optimizers, training loop (beyond THRML) | [`train::TrainingSpec`], [`train::estimate_kl_gradient`], [`train::Trainer`], [`train::Optimizer`] | [`train`] |
//! | JAX `Key`, `vmap` over chains | [`Key`] (splittable), one [`ChainRng`] stream per chain; every state has a chain axis | [`rng`], [`run`] |
//! | XLA's compiled, vectorised sweep | built-in discrete blocks compiled to SIMD kernels across chains, threads via [`with_threads`]; [`BlockSamplingProgram::fused_blocks`], [`BlockSamplingProgram::set_fused_kernels`] | [`fused`], [`kernels`] |
//!
//! Where Python passes padded arrays with `active_flags`, a compiled program here stores
//! ragged per-node lists ([`BlockInteraction`]), so every entry a sampler sees is active.
//! Where JAX `vmap`s a single-chain program, every state here carries a leading chain axis
//! and samplers update all chains of a block in one call.
//!
//! Beyond THRML: [`exact`] enumerates small models exactly (the reference every sampler is
//! tested against), [`graph`] colours interaction graphs into valid blocks and builds
//! topologies, and programs refuse blocks in which two nodes interact.
//!
//! ## Example: an Ising chain with a clamped end
//!
//! ```
//! use thrml::*;
//!
//! // E(s) = −β (Σ b_i s_i + Σ J_ij s_i s_j) on a chain of 4 spins.
//! let s = Node::many(NodeKind::SPIN, 4);
//! let edges = vec![(s[0], s[1]), (s[1], s[2]), (s[2], s[3])];
//! let ebm = IsingEBM::new(s.clone(), edges, vec![0.1, 0.0, 0.0, -0.1], vec![0.8, 0.8, 0.8], 1.0)?;
//!
//! // Two-colour the free spins 0..3; clamp spin 3 to +1.
//! let free = vec![Block::new(vec![s[0], s[2]])?, Block::new(vec![s[1]])?];
//! let clamped = vec![Block::new(vec![s[3]])?];
//! let program = IsingSamplingProgram::new(&ebm, free.clone(), clamped)?;
//!
//! // 32 chains, random start; 100 warmup sweeps then 50 samples, 2 sweeps apart.
//! let init: Vec<State> = hinton_init(Key::new(0), &ebm, &free, &[32])?
//!     .into_iter()
//!     .map(|a| vec![Tensor::from(a)])
//!     .collect();
//! let clamp = vec![vec![Tensor::from(ndarray::arr1(&[true]).into_dyn())]];
//! let schedule = SamplingSchedule::new(100, 50, 2)?;
//! let samples = sample_states(Key::new(1), &program, &schedule, &init, &clamp, &free)?;
//! assert_eq!(samples[1][0].shape(), &[32, 50, 1]); // [chains, samples, nodes]
//!
//! // Ferromagnetic couplings pull spin 2 towards the clamped +1.
//! let up = samples[0][0].view::<bool>().unwrap().iter().skip(1).step_by(2).filter(|&&x| x).count();
//! assert!(up > 32 * 50 / 2);
//! # Ok::<(), thrml::Error>(())
//! ```

pub mod block;
pub mod error;
pub mod exact;
pub mod factor;
pub mod fused;
pub mod graph;
pub mod interaction;
pub mod io;
pub mod kernels;
pub mod models;
pub mod observer;
pub mod pgm;
pub mod program;
pub mod rng;
pub mod run;
pub mod sampler;
pub mod state;
pub mod train;

/// The README's library example, compiled and run as a doctest.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use block::{
    Block, BlockSpec, NodeLocations, block_state_to_global, from_global_state, get_node_locations,
    make_empty_block_state, verify_block_state,
};
pub use error::{Error, Result};
pub use factor::{AbstractFactor, FactorSamplingProgram, WeightedFactor};
pub use interaction::{Interaction, InteractionGroup};
pub use models::continuous::{
    CouplingFactor, CouplingInteraction, GaussianGibbsConditional, LinearFactor, LinearInteraction,
    QuadraticFactor, QuadraticInteraction, SpinContinuousFactor, SpinContinuousInteraction,
};
pub use models::discrete::{
    CategoricalEBMFactor, CategoricalGibbsConditional, DiscreteEBMFactor, DiscreteEBMInteraction,
    SpinEBMFactor, SpinGibbsConditional, SquareCategoricalEBMFactor, SquareDiscreteEBMFactor,
};
pub use models::ebm::{AbstractEBM, AbstractFactorizedEBM, EBMFactor, FactorizedEBM};
pub use models::ising::{
    Edge, IsingEBM, IsingSamplingProgram, IsingTrainingSpec, KlGrad, estimate_kl_grad,
    estimate_moments, hinton_init,
};
pub use observer::{
    AbstractObserver, MomentAccumulatorObserver, MomentTransform, StateObserver,
    identity_transform, spin_transform,
};
pub use pgm::{
    DType, LeafSpec, Node, NodeKind, NodeShapeDtypes, StateLayout, default_node_shape_dtypes,
};
pub use program::{BlockGibbsSpec, BlockSamplingProgram, SuperBlock, ValueLimit};
pub use rng::{ChainRng, Key};
pub use run::{
    Progress, SamplingSchedule, init_global_state, sample_blocks, sample_single_block,
    sample_states, sample_states_with_progress, sample_with_observation,
    sample_with_observation_and_progress, with_threads,
};
pub use sampler::{
    AbstractConditionalSampler, AbstractParametricConditionalSampler, BernoulliConditional,
    BlockInteraction, SamplerInputs, SamplerState, SoftmaxConditional, TailLocations,
};
pub use state::{Element, State, Tensor};
