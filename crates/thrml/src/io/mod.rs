//! Files: the model format, NumPy arrays, and atomic writes.
//!
//! * [`model`] reads the JSON model format `thrml-model/1` (spin and categorical node
//!   kinds; Ising, spin, categorical and general discrete factors; free superblocks, given
//!   or coloured automatically; clamped blocks) into a [`Model`] that samples, evaluates
//!   energies and enumerates its exact distribution. `docs/model-format.md` is the
//!   contract.
//! * [`npz`] reads and writes `.npy` / `.npz` files of [`Tensor`](crate::Tensor)s with
//!   errors that name the file and array, and writes files atomically.
//!
//! The `thrml` command-line tool (`thrml sample`, `thrml energy`) is a thin layer over this
//! module.

pub(crate) mod json;
pub mod model;
pub mod npz;

pub use model::{
    CategoricalFactorSpec, DiscreteFactorSpec, FactorSpec, FreeBlocksSpec, IsingFactorSpec,
    KindSamples, KindSpec, MAX_CATEGORIES, MAX_SAMPLE_VALUES, MODEL_FORMAT, Model, ModelFile,
    ModelKind, NODES_FILE, SAMPLES_FILE, Samples, SpinFactorSpec, SuperBlockSpec, TensorSpec,
};
pub use npz::{describe_descriptor, read_npy, read_npz, write_atomic, write_npy, write_npz};
