//! Node-level colouring: free superblocks, split by node kind, from nodes and edges.

use std::collections::HashMap;

use super::{Adjacency, GraphError, colour_classes, dsatur_colouring, greedy_colouring};
use crate::block::Block;
use crate::pgm::{Node, NodeKind};
use crate::program::SuperBlock;

/// Which colouring heuristic [`colour_superblocks`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colouring {
    /// [`greedy_colouring`]: nodes in the given order, `O(n + m)`.
    Greedy,
    /// [`dsatur_colouring`]: usually fewer colours.
    Dsatur,
}

/// Colours the interaction graph of `nodes` (two nodes interact when an edge joins them)
/// and returns one free superblock per colour, holding one [`Block`] per node kind present
/// in that colour (kinds in order of first appearance in `nodes`, nodes in `nodes` order).
///
/// No two interacting nodes share a superblock, so the result can be passed straight to
/// [`BlockGibbsSpec::new`](crate::BlockGibbsSpec::new). Every node is in exactly one block.
/// For factors with more than two nodes, pass every pair of a factor instance's nodes.
///
/// # Errors
/// [`GraphError::UnknownNode`] naming the edge and node if an edge endpoint is not in
/// `nodes`.
///
/// # Example
///
/// ```
/// use thrml::graph::{Colouring, colour_superblocks};
/// use thrml::{BlockGibbsSpec, Node, NodeKind, default_node_shape_dtypes};
///
/// // A spin chain s0 - s1 - s2 with a categorical c attached to s1.
/// let s = Node::many(NodeKind::SPIN, 3);
/// let c = Node::categorical();
/// let mut nodes = s.clone();
/// nodes.push(c);
/// let edges = [(s[0], s[1]), (s[1], s[2]), (s[1], c)];
/// let superblocks = colour_superblocks(&nodes, &edges, Colouring::Dsatur).unwrap();
/// assert_eq!(superblocks.len(), 2);
/// // One colour holds s1 alone; the other s0, s2 (spins) and c (categorical).
/// assert_eq!(superblocks.iter().map(|sb| sb.0.len()).max(), Some(2));
/// BlockGibbsSpec::new(superblocks, vec![], &default_node_shape_dtypes()).unwrap();
/// ```
pub fn colour_superblocks(
    nodes: &[Node],
    edges: &[(Node, Node)],
    method: Colouring,
) -> Result<Vec<SuperBlock>, GraphError> {
    let index: HashMap<Node, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut pairs = Vec::with_capacity(edges.len());
    for (e, &(a, b)) in edges.iter().enumerate() {
        let find = |n: Node| {
            index.get(&n).copied().ok_or(GraphError::UnknownNode {
                edge: e,
                node: n.id(),
                kind: n.kind().name().to_owned(),
            })
        };
        pairs.push((find(a)?, find(b)?));
    }
    let adj = Adjacency::from_edges(nodes.len(), pairs)?;
    let colours = match method {
        Colouring::Greedy => greedy_colouring(&adj),
        Colouring::Dsatur => dsatur_colouring(&adj),
    };
    let mut kinds: Vec<NodeKind> = Vec::new();
    for n in nodes {
        if !kinds.contains(&n.kind()) {
            kinds.push(n.kind());
        }
    }
    Ok(colour_classes(&colours)
        .into_iter()
        .filter(|class| !class.is_empty())
        .map(|class| {
            SuperBlock(
                kinds
                    .iter()
                    .filter_map(|&k| {
                        let members: Vec<Node> = class
                            .iter()
                            .map(|&i| nodes[i])
                            .filter(|n| n.kind() == k)
                            .collect();
                        (!members.is_empty())
                            .then(|| Block::of_kind(k, members).expect("every member has kind k"))
                    })
                    .collect(),
            )
        })
        .collect())
}
