//! Interaction graphs, graph colouring and standard sampler topologies.
//!
//! Block Gibbs sampling updates every node of one *block* at the same time,
//! which is only exact when no two nodes of a block interact. Partitioning
//! the nodes into such blocks is a graph-colouring problem: the nodes are the
//! random variables, and two nodes are adjacent when they appear together in
//! at least one factor instance. Each colour class is then one block.
//!
//! * [`colouring`] holds the [`Adjacency`] graph (compressed sparse rows,
//!   built from edges or from factor cliques), the [`greedy_colouring`] and
//!   [`dsatur_colouring`] heuristics and helpers to validate and group
//!   colourings.
//! * [`topology`] builds regular topologies ([`grid_edges`],
//!   [`grid_skip_edges`], [`double_grid`]), the trivial [`checkerboard`]
//!   colouring, and reads edge-list files ([`read_edge_list`],
//!   [`parse_edge_list`]) such as the D-Wave Pegasus, Zephyr and Chimera
//!   hardware graphs.
//!
//! All fallible operations return [`GraphError`].
//!
//! ```
//! use thrml::graph::{Adjacency, check_colouring, colour_classes, dsatur_colouring, grid_edges};
//!
//! let edges = grid_edges(4, 4, true);
//! let adj = Adjacency::from_edges(16, edges).unwrap();
//! let colours = dsatur_colouring(&adj);
//! check_colouring(&adj, &colours).unwrap();
//! // An even torus is bipartite: two blocks of 8 nodes each.
//! let blocks = colour_classes(&colours);
//! assert_eq!(blocks.len(), 2);
//! assert!(blocks.iter().all(|b| b.len() == 8));
//! ```

pub mod blocks;
pub mod colouring;
pub mod topology;

pub use blocks::{Colouring, colour_superblocks};
pub use colouring::{
    Adjacency, check_colouring, colour_classes, dsatur_colouring, greedy_colouring, n_colours,
};
pub use topology::{
    checkerboard, double_grid, grid_edges, grid_skip_edges, parse_edge_list, read_edge_list,
};

/// Errors produced while building, colouring or reading graphs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// An edge passed to [`Adjacency::from_edges`] has an endpoint outside `0..n_nodes`.
    #[error("edge {edge}: node {node} is out of range for a graph with {n_nodes} nodes")]
    EdgeOutOfRange {
        /// Zero-based position of the offending edge in the input.
        edge: usize,
        /// The offending endpoint.
        node: usize,
        /// Number of nodes in the graph.
        n_nodes: usize,
    },
    /// A clique passed to [`Adjacency::from_cliques`] contains a node outside `0..n_nodes`.
    #[error("clique {clique}: node {node} is out of range for a graph with {n_nodes} nodes")]
    CliqueOutOfRange {
        /// Zero-based position of the offending clique in the input.
        clique: usize,
        /// The offending node.
        node: usize,
        /// Number of nodes in the graph.
        n_nodes: usize,
    },
    /// A colouring does not have exactly one colour per node.
    #[error("colouring has {found} entries but the graph has {n_nodes} nodes")]
    ColouringLength {
        /// Number of nodes in the graph.
        n_nodes: usize,
        /// Length of the colouring.
        found: usize,
    },
    /// Two adjacent nodes share a colour.
    #[error("invalid colouring: adjacent nodes {u} and {v} both have colour {colour}")]
    InvalidColouring {
        /// First node of the conflicting edge (`u < v`).
        u: usize,
        /// Second node of the conflicting edge.
        v: usize,
        /// The shared colour.
        colour: usize,
    },
    /// An edge passed to [`colour_superblocks`] joins a node that is not in the node list.
    #[error("edge {edge}: node {node} (kind `{kind}`) is not in the node list")]
    UnknownNode {
        /// Zero-based position of the offending edge.
        edge: usize,
        /// The node id.
        node: u64,
        /// Its kind.
        kind: String,
    },
    /// An edge-list file could not be read.
    #[error("cannot read edge list {file}: {source}")]
    Io {
        /// Path of the file.
        file: String,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// An edge-list text is malformed.
    #[error("{file}:{line}: {kind}")]
    Parse {
        /// Name of the file (or other source) being parsed.
        file: String,
        /// One-based line number of the problem.
        line: usize,
        /// What was wrong.
        kind: ParseErrorKind,
    },
}

/// What was wrong with an edge-list line; carried by [`GraphError::Parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text ended before the `n m` header line.
    MissingHeader,
    /// A line does not have exactly two whitespace-separated fields.
    FieldCount {
        /// Which line this is (`"header"` or `"edge"`).
        what: &'static str,
        /// Number of fields found.
        found: usize,
    },
    /// A field is not a non-negative integer.
    BadInteger {
        /// The offending token.
        token: String,
    },
    /// An edge endpoint is not below the declared node count.
    NodeOutOfRange {
        /// The offending node id.
        node: usize,
        /// The declared node count.
        n_nodes: usize,
    },
    /// An edge joins a node to itself.
    SelfLoop {
        /// The node.
        node: usize,
    },
    /// An edge (in either orientation) already appeared earlier.
    DuplicateEdge {
        /// Smaller endpoint.
        u: usize,
        /// Larger endpoint.
        v: usize,
        /// One-based line where the edge first appeared.
        first_line: usize,
    },
    /// More edge lines than the header declares.
    TooManyEdges {
        /// Edge count declared in the header.
        declared: usize,
    },
    /// Fewer edge lines than the header declares (reported at the header line).
    TooFewEdges {
        /// Edge count declared in the header.
        declared: usize,
        /// Number of edge lines found.
        found: usize,
    },
}

impl std::fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingHeader => write!(f, "missing `n m` header line"),
            Self::FieldCount { what, found } => {
                write!(
                    f,
                    "expected 2 integers on the {what} line, found {found} fields"
                )
            }
            Self::BadInteger { token } => {
                write!(f, "bad integer {token:?} (expected a non-negative integer)")
            }
            Self::NodeOutOfRange { node, n_nodes } => {
                write!(
                    f,
                    "node {node} is out of range (the header declares {n_nodes} nodes)"
                )
            }
            Self::SelfLoop { node } => write!(f, "self-loop on node {node}"),
            Self::DuplicateEdge { u, v, first_line } => {
                write!(
                    f,
                    "duplicate edge {u} {v} (first seen on line {first_line})"
                )
            }
            Self::TooManyEdges { declared } => {
                write!(
                    f,
                    "more edge lines than the {declared} declared in the header"
                )
            }
            Self::TooFewEdges { declared, found } => {
                write!(
                    f,
                    "header declares {declared} edges but only {found} edge lines follow"
                )
            }
        }
    }
}
