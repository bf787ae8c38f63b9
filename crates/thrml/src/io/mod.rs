//! Files: the model format, NumPy arrays, and atomic writes.
//!
//! * [`model_file`] is the JSON model format `thrml-model/1` as data ([`ModelFile`]: spin and
//!   categorical node kinds; Ising, spin, categorical and general discrete factors; free
//!   superblocks, given or coloured automatically; clamped blocks) and its parser.
//!   `docs/model-format.md` is the contract.
//! * [`model`] validates a [`ModelFile`] and compiles it into a [`Model`] that samples,
//!   evaluates energies and enumerates its exact distribution.
//! * [`samples`] holds sample output ([`Samples`]) and writes and reads `samples.npz` and
//!   `nodes.json`.
//! * [`parameters`] turns a model's factors into trainable weight tensors and writes trained
//!   weights back into a model file ([`ModelParameters`]).
//! * [`npz`] reads and writes `.npy` / `.npz` files of [`Tensor`](crate::Tensor)s with
//!   errors that name the file and array, and writes files atomically.
//!
//! The `thrml` command-line tool (`thrml sample`, `thrml energy`) is a thin layer over this
//! module.

pub(crate) mod json;
pub mod model;
pub mod model_file;
pub mod npz;
pub mod parameters;
pub mod samples;

pub use model::{MAX_SAMPLE_VALUES, Model, ModelKind};
pub use model_file::{
    CategoricalFactorSpec, ContinuousPairFactorSpec, DiscreteFactorSpec, FactorSpec,
    FreeBlocksSpec, IsingFactorSpec, KindSpec, LinearFactorSpec, MAX_CATEGORIES, MODEL_FORMAT,
    ModelFile, QuadraticFactorSpec, SpinFactorSpec, SuperBlockSpec, TensorSpec,
};
pub use npz::{describe_descriptor, read_npy, read_npz, write_atomic, write_npy, write_npz};
pub use parameters::ModelParameters;
pub use samples::{KindSamples, NODES_FILE, SAMPLES_FILE, Samples};
