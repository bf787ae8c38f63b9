//! # thrml
//!
//! Block Gibbs sampling for sparse, heterogeneous probabilistic graphical models and
//! energy-based models: a Rust implementation of Extropic's THRML.
//!
//! (The full tour lives in the README and `docs/`; each module's docs cover its concept.)

pub mod block;
pub mod error;
pub mod exact;
pub mod factor;
pub mod graph;
pub mod interaction;
pub mod models;
pub mod observer;
pub mod pgm;
pub mod program;
pub mod rng;
pub mod run;
pub mod sampler;
pub mod state;

pub use block::{
    Block, BlockSpec, block_state_to_global, from_global_state, get_node_locations,
    make_empty_block_state, verify_block_state,
};
pub use error::{Error, Result};
pub use factor::{AbstractFactor, FactorSamplingProgram, WeightedFactor};
pub use interaction::{Interaction, InteractionGroup};
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
pub use program::{BlockGibbsSpec, BlockSamplingProgram, SuperBlock};
pub use rng::{ChainRng, Key};
pub use run::{
    SamplingSchedule, init_global_state, sample_blocks, sample_single_block, sample_states,
    sample_with_observation,
};
pub use sampler::{
    AbstractConditionalSampler, AbstractParametricConditionalSampler, BernoulliConditional,
    BlockInteraction, SamplerInputs, SamplerState, SoftmaxConditional, TailLocations,
};
pub use state::{Element, State, Tensor};
