//! The crate's one error type.
//!
//! Every fallible constructor and runner in `thrml` returns [`Result<T>`]. Messages name
//! the offending node, block, factor, field or file so that a user can find the mistake
//! without a debugger.

use std::path::PathBuf;

/// Everything that can go wrong when building or running a `thrml` program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A block contains nodes of more than one kind.
    #[error(
        "block of kind `{kind}` contains node {node} of kind `{node_kind}`; a block holds nodes of one kind"
    )]
    MixedBlock {
        /// The block's kind (that of its first node, or the one asked for).
        kind: String,
        /// The first node of another kind.
        node: u64,
        /// That node's kind.
        node_kind: String,
    },
    /// A block was empty where nodes were required.
    #[error("empty block: {0}")]
    EmptyBlock(String),
    /// A node appears more than once in the blocks of one spec.
    #[error(
        "node {node} (kind `{kind}`) appears in more than one block (blocks {first_block} and {second_block})"
    )]
    DuplicateNode {
        /// The duplicated node id.
        node: u64,
        /// Its kind.
        kind: String,
        /// The first block holding it.
        first_block: usize,
        /// The second block holding it.
        second_block: usize,
    },
    /// A node kind has no state layout in `node_shape_dtypes`.
    #[error("node kind `{0}` has no state layout in node_shape_dtypes")]
    UnknownKind(String),
    /// A node was looked up in a spec that does not contain it.
    #[error("node {node} (kind `{kind}`) is not part of this block spec")]
    UnknownNode {
        /// The node id.
        node: u64,
        /// Its kind.
        kind: String,
    },
    /// A state does not fit its block: wrong number of leaves, dtype, shape or batch shape.
    #[error("state does not fit block {block}: {reason}")]
    StateMismatch {
        /// Index of the block in the list that was checked.
        block: usize,
        /// What did not fit.
        reason: String,
    },
    /// A factor's node groups are malformed.
    #[error("factor node groups: {0}")]
    FactorGroups(String),
    /// A weight tensor has the wrong shape for its factor.
    #[error("weight tensor: {0}")]
    WeightShape(String),
    /// A weight is NaN or infinite.
    #[error("weight tensor: entry {index} is {value}, weights must be finite")]
    NonFiniteWeight {
        /// Flat (row-major) index of the bad entry.
        index: usize,
        /// The bad value.
        value: f64,
    },
    /// A weight of a named factor is NaN or infinite.
    #[error("{factor}: weight {index} is {value}, weights must be finite")]
    NonFiniteFactorWeight {
        /// The factor type, e.g. `QuadraticFactor`.
        factor: &'static str,
        /// Index of the bad weight (the factor instance).
        index: usize,
        /// The bad value.
        value: f64,
    },
    /// A quadratic (precision) term is not positive, so the node's conditional is not a
    /// normalisable Gaussian.
    #[error(
        "QuadraticFactor: node {node} (kind `{kind}`, instance {index}) has precision {value}; precisions must be positive"
    )]
    NonPositivePrecision {
        /// The node's id.
        node: u64,
        /// The node's kind.
        kind: String,
        /// The factor instance.
        index: usize,
        /// The bad value.
        value: f64,
    },
    /// A node kind is used both as a spin and as a categorical variable.
    #[error("node kind `{0}` is used both as spin and as categorical")]
    SpinAndCategorical(String),
    /// A Square factor got a non-square weight tensor.
    #[error(
        "weight tensor of shape {0:?} is not square: every axis after the first must have the same length"
    )]
    NotSquare(Vec<usize>),
    /// An interaction group is malformed.
    #[error("interaction group: {0}")]
    InteractionGroup(String),
    /// The number of samplers differs from the number of free blocks.
    #[error("expected {expected} samplers (one per free block), got {got}")]
    SamplerCount {
        /// The number of free blocks.
        expected: usize,
        /// The number of samplers given.
        got: usize,
    },
    /// A sampler cannot handle the interactions or block it was given.
    #[error("sampler for free block {block}: {reason}")]
    Sampler {
        /// The free block index.
        block: usize,
        /// Why.
        reason: String,
    },
    /// Two nodes that interact are updated at the same algorithmic time.
    #[error(
        "nodes {a} (kind `{a_kind}`) and {b} (kind `{b_kind}`) interact through interaction \
         group {group} but are both in superblock {superblock}; a Gibbs superblock must not \
         contain interacting nodes (colour the nodes with thrml::graph::colour_superblocks, or \
         opt out with BlockSamplingProgram::new_allowing_interacting_superblocks)"
    )]
    InteractingBlock {
        /// One node.
        a: u64,
        /// Its kind.
        a_kind: String,
        /// The other node.
        b: u64,
        /// Its kind.
        b_kind: String,
        /// Index of the interaction group joining them, in the program's list (for a
        /// [`FactorSamplingProgram`](crate::FactorSamplingProgram): the extra groups first,
        /// then each factor's groups in order).
        group: usize,
        /// The superblock both belong to.
        superblock: usize,
    },
    /// A categorical node is given inconsistent numbers of categories.
    #[error("categorical node {node}: {reason}")]
    Categories {
        /// The node id.
        node: u64,
        /// What is inconsistent.
        reason: String,
    },
    /// A state value is out of range for its node.
    #[error("value out of range: {0}")]
    ValueOutOfRange(String),
    /// The sampling schedule is invalid.
    #[error("sampling schedule: {0}")]
    Schedule(String),
    /// The worker thread pool could not be created.
    #[error("thread pool: {0}")]
    Threads(String),
    /// A generic invalid argument.
    #[error("{0}")]
    Invalid(String),
    /// A model file could not be parsed or validated.
    #[error("{file}: {field}: {message}")]
    Model {
        /// The file that was read.
        file: PathBuf,
        /// The JSON field path, e.g. `factors[2].weights`.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// An I/O error with the file it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An array file (`.npy` / `.npz`) could not be read or written.
    #[error("{path}: {message}")]
    Array {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
