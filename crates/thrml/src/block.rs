//! Blocks, block specs, and conversion between block and global states.
//!
//! A [`Block`] is a list of nodes of one kind that are sampled together. A *block state* is a
//! list with one [`State`] per block. The *global state* is the compact form a sampler
//! gathers from: one [`State`] per distinct [`StateLayout`] (a "slot"), holding all blocks
//! of that layout concatenated along the node axis. [`BlockSpec`] records where every node
//! lives in the global state.
//!
//! Leaf tensors have shape `batch_shape + [nodes] + leaf.shape`; every function here works
//! for any batch shape.
//!
//! # Example
//!
//! ```
//! use ndarray::{arr1, ArrayD};
//! use thrml::{Block, BlockSpec, Node, Tensor, block_state_to_global, default_node_shape_dtypes,
//!             from_global_state};
//!
//! let nodes = thrml::Node::many(thrml::NodeKind::SPIN, 3);
//! let a = Block::new(nodes[..2].to_vec())?;
//! let b = Block::new(nodes[2..].to_vec())?;
//! let spec = BlockSpec::new(vec![a.clone(), b.clone()], &default_node_shape_dtypes())?;
//! // Both blocks are spins, so the global state has one slot of 3 nodes.
//! let block_state = vec![
//!     vec![Tensor::from(arr1(&[true, false]).into_dyn())],
//!     vec![Tensor::from(arr1(&[true]).into_dyn())],
//! ];
//! let global = block_state_to_global(&block_state, &spec)?;
//! assert_eq!(global.len(), 1);
//! assert_eq!(global[0][0].shape(), &[3]);
//! let back = from_global_state(&global, &spec, &[b])?;
//! assert_eq!(back[0], block_state[1]);
//! # Ok::<(), thrml::Error>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pgm::{Node, NodeKind, NodeShapeDtypes, StateLayout};
use crate::state::{State, Tensor, concatenate, select};

/// An ordered list of nodes of one kind: the unit of Gibbs sampling.
///
/// Cloning is cheap (the node list is shared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Block {
    nodes: Arc<[Node]>,
    kind: NodeKind,
}

impl Block {
    /// A block of `nodes`, which must be non-empty and all of one kind.
    ///
    /// # Errors
    /// [`Error::EmptyBlock`] or [`Error::MixedBlock`].
    pub fn new(nodes: Vec<Node>) -> Result<Block> {
        let Some(first) = nodes.first() else {
            return Err(Error::EmptyBlock(
                "Block::new needs at least one node; use Block::of_kind for an empty block".into(),
            ));
        };
        Block::of_kind(first.kind(), nodes)
    }

    /// A block of `kind`, possibly empty; every node must be of `kind`.
    ///
    /// # Errors
    /// [`Error::MixedBlock`] if a node has another kind.
    pub fn of_kind(kind: NodeKind, nodes: Vec<Node>) -> Result<Block> {
        if let Some(bad) = nodes.iter().find(|n| n.kind() != kind) {
            return Err(Error::MixedBlock {
                kind: kind.name().to_owned(),
                node: bad.id(),
                node_kind: bad.kind().name().to_owned(),
            });
        }
        Ok(Block {
            nodes: nodes.into(),
            kind,
        })
    }

    /// The nodes, in order.
    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The kind of every node in the block (THRML's `node_type`).
    #[must_use]
    pub fn node_kind(&self) -> NodeKind {
        self.kind
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the block has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Block").field(&self.nodes).finish()
    }
}

impl std::ops::Index<usize> for Block {
    type Output = Node;
    fn index(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

/// Where a set of blocks lives in the global state.
///
/// Fields mirror THRML's `BlockSpec`. The global slot order is the order in which layouts
/// first appear in `blocks`, so it is deterministic.
#[derive(Clone, Debug)]
pub struct BlockSpec {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// The layout of each block (parallel to `blocks`).
    pub all_block_sds: Vec<StateLayout>,
    /// The layout of each global slot: the source of truth for the global order.
    pub global_sd_order: Vec<StateLayout>,
    /// Slot index of each layout.
    pub sd_index_map: HashMap<StateLayout, usize>,
    /// For each node: (slot index, position within the slot).
    pub node_global_location_map: NodeLocations,
    /// For each slot: the indices of the blocks stored in it, in order.
    pub block_to_global_slice_spec: Vec<Vec<usize>>,
    /// The layout of every node kind.
    pub node_shape_dtypes: NodeShapeDtypes,
    /// For each block: (slot index, first position in the slot). Blocks are contiguous.
    pub block_offsets: Vec<(usize, usize)>,
    /// Number of nodes in each slot.
    pub slot_sizes: Vec<usize>,
}

impl BlockSpec {
    /// Build the spec for `blocks`, which must not share nodes.
    ///
    /// # Errors
    /// [`Error::EmptyBlock`], [`Error::UnknownKind`] or [`Error::DuplicateNode`].
    pub fn new(blocks: Vec<Block>, node_shape_dtypes: &NodeShapeDtypes) -> Result<BlockSpec> {
        let mut global_sd_order: Vec<StateLayout> = Vec::new();
        let mut sd_index_map = HashMap::new();
        let mut all_block_sds = Vec::with_capacity(blocks.len());
        let mut block_to_global_slice_spec: Vec<Vec<usize>> = Vec::new();
        let mut slot_sizes: Vec<usize> = Vec::new();
        let mut block_offsets: Vec<(usize, usize)> = Vec::with_capacity(blocks.len());
        let mut node_global_location_map = NodeLocations::for_nodes(
            blocks.iter().map(Block::len).sum(),
            blocks.iter().flat_map(|b| b.nodes().iter().map(|n| n.id())),
        );
        for (bi, block) in blocks.iter().enumerate() {
            if block.is_empty() {
                return Err(Error::EmptyBlock(format!(
                    "block {bi} of the block spec has no nodes"
                )));
            }
            let layout = node_shape_dtypes
                .get(&block.node_kind())
                .ok_or_else(|| Error::UnknownKind(block.node_kind().name().to_owned()))?
                .clone();
            check_has_leaves(block.node_kind(), &layout)?;
            let slot = *sd_index_map.entry(layout.clone()).or_insert_with(|| {
                global_sd_order.push(layout.clone());
                block_to_global_slice_spec.push(Vec::new());
                slot_sizes.push(0);
                global_sd_order.len() - 1
            });
            let start = slot_sizes[slot];
            for (k, &node) in block.nodes().iter().enumerate() {
                if let Some((_, prev)) = node_global_location_map.insert(node, slot, start + k) {
                    return Err(Error::DuplicateNode {
                        node: node.id(),
                        kind: node.kind().name().to_owned(),
                        first_block: block_holding(
                            &block_to_global_slice_spec[slot],
                            &block_offsets,
                            &blocks,
                            prev,
                        )
                        .map_or(bi, |(b, _)| b),
                        second_block: bi,
                    });
                }
            }
            slot_sizes[slot] += block.len();
            block_to_global_slice_spec[slot].push(bi);
            block_offsets.push((slot, start));
            all_block_sds.push(layout);
        }
        Ok(BlockSpec {
            blocks,
            all_block_sds,
            global_sd_order,
            sd_index_map,
            node_global_location_map,
            block_to_global_slice_spec,
            node_shape_dtypes: node_shape_dtypes.clone(),
            block_offsets,
            slot_sizes,
        })
    }

    /// The (slot, position) of `node`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if the node is not in the spec.
    pub fn location(&self, node: Node) -> Result<(usize, usize)> {
        self.node_global_location_map
            .get(node)
            .ok_or_else(|| Error::UnknownNode {
                node: node.id(),
                kind: node.kind().name().to_owned(),
            })
    }

    /// The node at position `pos` of slot `slot` (the inverse of [`Self::location`]), or
    /// `None` if the spec has no such position.
    #[must_use]
    pub fn node_at(&self, slot: usize, pos: usize) -> Option<Node> {
        let slot_blocks = self.block_to_global_slice_spec.get(slot)?;
        let (b, i) = block_holding(slot_blocks, &self.block_offsets, &self.blocks, pos)?;
        Some(self.blocks[b][i])
    }
}

/// Of the blocks `slot_blocks` of one slot (with their `(slot, first position)` offsets),
/// the one holding position `pos`, and `pos`'s index in it.
fn block_holding(
    slot_blocks: &[usize],
    offsets: &[(usize, usize)],
    blocks: &[Block],
    pos: usize,
) -> Option<(usize, usize)> {
    slot_blocks.iter().find_map(|&b| {
        let first = offsets[b].1;
        (first..first + blocks[b].len())
            .contains(&pos)
            .then(|| (b, pos - first))
    })
}

/// The (slot, position) of every node of a [`BlockSpec`], looked up by node id.
///
/// Nodes made one after another have consecutive ids, so the ids of a model's nodes
/// usually fill a range little wider than their number: then the locations are a table
/// indexed by `id − min id`, eight bytes per id, and a lookup is one load. Ids spread wider
/// than twice their number (nodes picked from several models) fall back to a hash map.
#[derive(Clone, Debug)]
pub struct NodeLocations {
    form: LocationForm,
    /// Number of nodes.
    len: usize,
}

/// How [`NodeLocations`] stores the packed locations (`slot << 32 | position`).
#[derive(Clone, Debug)]
enum LocationForm {
    /// The location of id `base + i` at `i`, [`NodeLocations::ABSENT`] where no node has
    /// that id.
    Dense { base: u64, table: Vec<u64> },
    /// Locations by id.
    Sparse(HashMap<u64, u64>),
}

impl NodeLocations {
    /// The packed location of an id that no node of the spec has.
    const ABSENT: u64 = u64::MAX;

    /// An empty map for `n` nodes with these ids.
    fn for_nodes(n: usize, ids: impl Iterator<Item = u64> + Clone) -> NodeLocations {
        let (lo, hi) = ids
            .clone()
            .fold((u64::MAX, 0), |(lo, hi), id| (lo.min(id), hi.max(id)));
        let span = if n == 0 { 0 } else { hi - lo + 1 };
        let form = if span <= 2 * n as u64 + 64 {
            LocationForm::Dense {
                base: lo,
                table: vec![Self::ABSENT; span as usize],
            }
        } else {
            LocationForm::Sparse(HashMap::with_capacity(n))
        };
        NodeLocations { form, len: 0 }
    }

    /// Whether the locations are a table by id (rather than a hash map).
    #[must_use]
    pub fn is_dense(&self) -> bool {
        matches!(self.form, LocationForm::Dense { .. })
    }

    /// Record `node` at (`slot`, `pos`); if it already had a location, keep that one and
    /// return it.
    fn insert(&mut self, node: Node, slot: usize, pos: usize) -> Option<(usize, usize)> {
        let entry = match &mut self.form {
            LocationForm::Dense { base, table } => &mut table[(node.id() - *base) as usize],
            LocationForm::Sparse(map) => map.entry(node.id()).or_insert(Self::ABSENT),
        };
        if *entry != Self::ABSENT {
            return Some(Self::unpack(*entry));
        }
        *entry = (u64::from(to_u32(slot)) << 32) | u64::from(to_u32(pos));
        self.len += 1;
        None
    }

    /// The (slot, position) of `node`, if it is in the spec.
    #[must_use]
    pub fn get(&self, node: Node) -> Option<(usize, usize)> {
        let packed = match &self.form {
            LocationForm::Dense { base, table } => {
                *table.get(usize::try_from(node.id().checked_sub(*base)?).ok()?)?
            }
            LocationForm::Sparse(map) => *map.get(&node.id())?,
        };
        (packed != Self::ABSENT).then(|| Self::unpack(packed))
    }

    /// Whether `node` is in the spec.
    #[must_use]
    pub fn contains(&self, node: Node) -> bool {
        self.get(node).is_some()
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the spec has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn unpack(packed: u64) -> (usize, usize) {
        (
            (packed >> 32) as usize,
            (packed & u64::from(u32::MAX)) as usize,
        )
    }
}

/// `x` as `u32`: the index structures of specs, programs and fused plans count nodes,
/// entries, weights and groups in `u32`.
pub(crate) fn to_u32(x: usize) -> u32 {
    u32::try_from(x).expect("a model holds fewer than 2^32 nodes, entries, weights and groups")
}

/// A node state needs at least one leaf (the node axis lives in the leaves).
fn check_has_leaves(kind: NodeKind, layout: &StateLayout) -> Result<()> {
    if layout.leaves().is_empty() {
        return Err(Error::Invalid(format!(
            "node kind `{kind}` has a state layout with no leaves; a node state needs at least one"
        )));
    }
    Ok(())
}

/// Number of batch dimensions of a leaf tensor given its per-node leaf rank.
fn node_axis(t: &Tensor, leaf_rank: usize) -> Option<usize> {
    t.ndim().checked_sub(leaf_rank + 1)
}

/// Convert a block state (one [`State`] per block of `spec`) to the global state.
///
/// # Errors
/// [`Error::StateMismatch`] if a state does not fit its block.
pub fn block_state_to_global(block_state: &[State], spec: &BlockSpec) -> Result<Vec<State>> {
    verify_block_state(&spec.blocks, block_state, &spec.node_shape_dtypes, Some(-1))?;
    verified_block_state_to_global(block_state.iter().map(Cow::Borrowed).collect(), spec)
}

/// [`block_state_to_global`] of block states already checked against their blocks, each
/// borrowed or owned: an owned block state is freed as soon as it has been copied into its
/// slot (or becomes the slot, when it is the slot's only block).
pub(crate) fn verified_block_state_to_global(
    block_state: Vec<Cow<'_, State>>,
    spec: &BlockSpec,
) -> Result<Vec<State>> {
    for (slot, layout) in spec.global_sd_order.iter().enumerate() {
        let members = &spec.block_to_global_slice_spec[slot];
        let leaf_rank = layout.leaves()[0].shape.len();
        let first = &block_state[members[0]][0];
        let first_batch = &first.shape()[..node_axis(first, leaf_rank).unwrap_or(0)];
        for &m in members {
            let t = &block_state[m][0];
            let axis = node_axis(t, leaf_rank).unwrap_or(0);
            if &t.shape()[..axis] != first_batch {
                return Err(Error::StateMismatch {
                    block: m,
                    reason: format!(
                        "batch shape {:?} differs from block {}'s {:?}",
                        &t.shape()[..axis],
                        members[0],
                        first_batch
                    ),
                });
            }
        }
    }
    // Leaf `li` of block `b`, taken (once) when its slot is built.
    let mut leaves: Vec<Vec<Option<Cow<'_, Tensor>>>> = block_state
        .into_iter()
        .map(|s| match s {
            Cow::Borrowed(s) => s.iter().map(|t| Some(Cow::Borrowed(t))).collect(),
            Cow::Owned(s) => s.into_iter().map(|t| Some(Cow::Owned(t))).collect(),
        })
        .collect();
    let mut global = Vec::with_capacity(spec.global_sd_order.len());
    for (slot, layout) in spec.global_sd_order.iter().enumerate() {
        let members = &spec.block_to_global_slice_spec[slot];
        let state: State = layout
            .leaves()
            .iter()
            .enumerate()
            .map(|(li, leaf)| {
                let parts: Vec<Cow<'_, Tensor>> = members
                    .iter()
                    .map(|&m| leaves[m][li].take().expect("a block is in one slot"))
                    .collect();
                let axis = node_axis(&parts[0], leaf.shape.len()).unwrap_or(0);
                concatenate(axis, parts)
            })
            .collect();
        global.push(state);
    }
    Ok(global)
}

/// Locate `nodes` in the global state: (slot index, position of each node in that slot).
///
/// # Errors
/// [`Error::UnknownNode`] if a node is not in the spec, or [`Error::UnknownKind`].
pub fn get_node_locations(nodes: &Block, spec: &BlockSpec) -> Result<(usize, Vec<usize>)> {
    let layout = spec
        .node_shape_dtypes
        .get(&nodes.node_kind())
        .ok_or_else(|| Error::UnknownKind(nodes.node_kind().name().to_owned()))?;
    let Some(&slot) = spec.sd_index_map.get(layout) else {
        return Err(match nodes.nodes().first() {
            Some(n) => Error::UnknownNode {
                node: n.id(),
                kind: n.kind().name().to_owned(),
            },
            None => Error::UnknownKind(nodes.node_kind().name().to_owned()),
        });
    };
    let positions = nodes
        .nodes()
        .iter()
        .map(|&n| spec.location(n).map(|(_, p)| p))
        .collect::<Result<Vec<_>>>()?;
    Ok((slot, positions))
}

/// Extract the states of `blocks_to_extract` from a global state built with `spec_from`.
///
/// # Errors
/// [`Error::UnknownNode`] if a block holds a node that `spec_from` does not know.
pub fn from_global_state(
    global_state: &[State],
    spec_from: &BlockSpec,
    blocks_to_extract: &[Block],
) -> Result<Vec<State>> {
    blocks_to_extract
        .iter()
        .map(|block| {
            let (slot, positions) = get_node_locations(block, spec_from)?;
            let layout = &spec_from.global_sd_order[slot];
            let state = global_state.get(slot).ok_or_else(|| {
                Error::Invalid(format!(
                    "global state has {} slots, the spec needs {}",
                    global_state.len(),
                    slot + 1
                ))
            })?;
            if state.len() != layout.leaves().len() {
                return Err(Error::Invalid(format!(
                    "global state slot {slot} has {} leaves, the spec's layout has {}",
                    state.len(),
                    layout.leaves().len()
                )));
            }
            let needed = positions.iter().max().map_or(0, |&p| p + 1);
            layout
                .leaves()
                .iter()
                .zip(state)
                .enumerate()
                .map(|(li, (leaf, t))| {
                    let axis = node_axis(t, leaf.shape.len());
                    match axis.map(|a| t.shape()[a]) {
                        Some(n) if t.dtype() == leaf.dtype && n >= needed => {}
                        _ => {
                            return Err(Error::Invalid(format!(
                                "global state slot {slot} leaf {li} is {} of shape {:?}, but the spec needs {} with at least {needed} nodes",
                                t.dtype(),
                                t.shape(),
                                leaf.dtype
                            )));
                        }
                    }
                    Ok(select(t, axis.unwrap_or(0), &positions))
                })
                .collect()
        })
        .collect()
}

/// A zero-filled block state for `blocks`, each leaf of shape
/// `batch_shape + [len(block)] + leaf.shape`.
///
/// # Errors
/// [`Error::UnknownKind`] if a block's kind has no layout.
pub fn make_empty_block_state(
    blocks: &[Block],
    node_shape_dtypes: &NodeShapeDtypes,
    batch_shape: Option<&[usize]>,
) -> Result<Vec<State>> {
    let batch = batch_shape.unwrap_or(&[]);
    blocks
        .iter()
        .map(|block| {
            let layout = node_shape_dtypes
                .get(&block.node_kind())
                .ok_or_else(|| Error::UnknownKind(block.node_kind().name().to_owned()))?;
            Ok(layout
                .leaves()
                .iter()
                .map(|leaf| Tensor::zeros_for(leaf, batch, block.len()))
                .collect())
        })
        .collect()
}

/// Check that `states` fit `blocks`: one state per block, one tensor per leaf, matching
/// dtypes and per-node shapes, and one batch shape per block.
///
/// If `block_axis` is given, the dimension at that index of the batch shape (the shape
/// before the per-node leaf shape; negative counts from the end, so `-1` is the node axis)
/// must equal the block's length.
///
/// # Errors
/// [`Error::StateMismatch`] naming the block and what does not fit, or
/// [`Error::UnknownKind`].
pub fn verify_block_state(
    blocks: &[Block],
    states: &[State],
    node_shape_dtypes: &NodeShapeDtypes,
    block_axis: Option<isize>,
) -> Result<()> {
    if blocks.len() != states.len() {
        return Err(Error::StateMismatch {
            block: blocks.len().min(states.len()),
            reason: format!("got {} states for {} blocks", states.len(), blocks.len()),
        });
    }
    for (bi, (block, state)) in blocks.iter().zip(states).enumerate() {
        let mismatch = |reason: String| Error::StateMismatch { block: bi, reason };
        let layout = node_shape_dtypes
            .get(&block.node_kind())
            .ok_or_else(|| Error::UnknownKind(block.node_kind().name().to_owned()))?;
        check_has_leaves(block.node_kind(), layout)?;
        if layout.leaves().len() != state.len() {
            return Err(mismatch(format!(
                "kind `{}` has {} leaves but the state has {}",
                block.node_kind(),
                layout.leaves().len(),
                state.len()
            )));
        }
        let mut batch: Option<&[usize]> = None;
        for (li, (leaf, t)) in layout.leaves().iter().zip(state).enumerate() {
            if t.dtype() != leaf.dtype {
                return Err(mismatch(format!(
                    "leaf {li} has dtype {} but kind `{}` needs {}",
                    t.dtype(),
                    block.node_kind(),
                    leaf.dtype
                )));
            }
            let shape = t.shape();
            let Some(split) = shape.len().checked_sub(leaf.shape.len()) else {
                return Err(mismatch(format!(
                    "leaf {li} has shape {shape:?}, too few dimensions for leaf shape {:?}",
                    leaf.shape
                )));
            };
            if shape[split..] != leaf.shape[..] {
                return Err(mismatch(format!(
                    "leaf {li} has shape {shape:?}, which does not end in the leaf shape {:?}",
                    leaf.shape
                )));
            }
            let this_batch = &shape[..split];
            match batch {
                None => batch = Some(this_batch),
                Some(b) if b != this_batch => {
                    return Err(mismatch(format!(
                        "leaves have different batch shapes {b:?} and {this_batch:?}"
                    )));
                }
                Some(_) => {}
            }
        }
        if let (Some(axis), Some(b)) = (block_axis, batch) {
            let idx = if axis < 0 {
                b.len().checked_sub(axis.unsigned_abs())
            } else {
                Some(axis.unsigned_abs())
            };
            match idx.and_then(|i| b.get(i)) {
                Some(&n) if n == block.len() => {}
                Some(&n) => {
                    return Err(mismatch(format!(
                        "the node axis has length {n} but the block has {} nodes",
                        block.len()
                    )));
                }
                None => {
                    return Err(mismatch(format!(
                        "batch shape {b:?} has no axis {axis} for the block's {} nodes",
                        block.len()
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgm::{DType, LeafSpec, default_node_shape_dtypes};
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn locations_and_slices() {
        let s = Node::many(NodeKind::SPIN, 3);
        let c = Node::many(NodeKind::CATEGORICAL, 2);
        let blocks = vec![
            Block::new(s[..2].to_vec()).unwrap(),
            Block::new(c.clone()).unwrap(),
            Block::new(s[2..].to_vec()).unwrap(),
        ];
        let spec = BlockSpec::new(blocks, &default_node_shape_dtypes()).unwrap();
        assert_eq!(spec.block_to_global_slice_spec, vec![vec![0, 2], vec![1]]);
        assert_eq!(spec.location(s[2]).unwrap(), (0, 2));
        assert_eq!(spec.location(c[1]).unwrap(), (1, 1));
        assert_eq!(spec.block_offsets, vec![(0, 0), (1, 0), (0, 2)]);
    }

    /// Both forms of [`NodeLocations`] (ids close together, and ids spread over more than
    /// twice their number) find every node, answer `None` for others, and name the right
    /// earlier block of a duplicate.
    #[test]
    fn node_locations_dense_and_sparse() {
        let outside = Node::spin();
        let near = Node::many(NodeKind::SPIN, 6);
        let spread: Vec<Node> = (0..6)
            .map(|_| {
                let n = Node::spin();
                let _gap = Node::many(NodeKind::SPIN, 100);
                n
            })
            .collect();
        for nodes in [&near, &spread] {
            let blocks = vec![
                Block::new(nodes[..2].to_vec()).unwrap(),
                Block::new(nodes[2..4].to_vec()).unwrap(),
                Block::new(nodes[4..].to_vec()).unwrap(),
            ];
            let spec = BlockSpec::new(blocks.clone(), &default_node_shape_dtypes()).unwrap();
            let map = &spec.node_global_location_map;
            // (Other tests make nodes meanwhile, so `near`'s span is read, not assumed.)
            let span = nodes.last().unwrap().id() - nodes[0].id() + 1;
            assert_eq!(map.is_dense(), span <= 2 * 6 + 64);
            assert!(!(map.is_dense() && std::ptr::eq(nodes, &spread)));
            assert_eq!(map.len(), 6);
            for (i, &n) in nodes.iter().enumerate() {
                assert_eq!(map.get(n), Some((0, i)));
                assert_eq!(spec.node_at(0, i), Some(n));
            }
            assert!(!map.contains(outside) && !map.contains(Node::spin()));
            assert_eq!((spec.node_at(0, 6), spec.node_at(1, 0)), (None, None));
            assert!(matches!(
                spec.location(outside),
                Err(Error::UnknownNode { .. })
            ));
            let mut twice = blocks;
            twice.push(Block::new(vec![nodes[3]]).unwrap());
            assert_duplicate(twice, 1, 3);
        }
    }

    /// The spec of `blocks` is refused: a node of block `second` is in block `first`.
    fn assert_duplicate(blocks: Vec<Block>, first: usize, second: usize) {
        let err = BlockSpec::new(blocks, &default_node_shape_dtypes()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DuplicateNode { first_block, second_block, .. }
                    if (first_block, second_block) == (first, second)
            ),
            "{err}"
        );
    }

    #[test]
    fn duplicate_node_rejected() {
        let s = Node::many(NodeKind::SPIN, 2);
        let blocks = vec![
            Block::new(s.clone()).unwrap(),
            Block::new(vec![s[1]]).unwrap(),
        ];
        assert_duplicate(blocks, 0, 1);
    }

    #[test]
    fn mixed_block_rejected() {
        let err = Block::new(vec![Node::spin(), Node::categorical()]).unwrap_err();
        assert!(matches!(err, Error::MixedBlock { .. }), "{err}");
    }

    #[test]
    fn multi_leaf_round_trip_with_batch() {
        let kind = NodeKind::new("block-test-vec");
        let mut sd = default_node_shape_dtypes();
        sd.insert(
            kind,
            StateLayout::new(vec![
                LeafSpec::new(DType::F32, vec![2]),
                LeafSpec::scalar(DType::Bool),
            ]),
        );
        let n = Node::many(kind, 3);
        let blocks = vec![
            Block::new(n[..1].to_vec()).unwrap(),
            Block::new(n[1..].to_vec()).unwrap(),
        ];
        let spec = BlockSpec::new(blocks.clone(), &sd).unwrap();
        let mut state = make_empty_block_state(&blocks, &sd, Some(&[4])).unwrap();
        assert_eq!(state[1][0].shape(), &[4, 2, 2]);
        state[1][0] = Tensor::F32(ArrayD::from_shape_fn(IxDyn(&[4, 2, 2]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2]) as f32
        }));
        let global = block_state_to_global(&state, &spec).unwrap();
        assert_eq!(global[0][0].shape(), &[4, 3, 2]);
        let back = from_global_state(&global, &spec, &[blocks[1].clone()]).unwrap();
        assert_eq!(back[0], state[1]);
    }

    #[test]
    fn verify_catches_dtype_and_shape() {
        let sd = default_node_shape_dtypes();
        let b = Block::new(Node::many(NodeKind::SPIN, 2)).unwrap();
        let wrong_dtype = vec![vec![Tensor::zeros(DType::U8, &[2])]];
        assert!(matches!(
            verify_block_state(std::slice::from_ref(&b), &wrong_dtype, &sd, Some(-1)),
            Err(Error::StateMismatch { .. })
        ));
        let wrong_len = vec![vec![Tensor::zeros(DType::Bool, &[5, 3])]];
        let err =
            verify_block_state(std::slice::from_ref(&b), &wrong_len, &sd, Some(-1)).unwrap_err();
        assert!(err.to_string().contains("node axis has length 3"), "{err}");
        let ok = vec![vec![Tensor::zeros(DType::Bool, &[5, 2])]];
        verify_block_state(&[b], &ok, &sd, Some(-1)).unwrap();
    }
}
