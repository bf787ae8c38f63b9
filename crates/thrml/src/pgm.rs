//! Nodes, node kinds and their state layouts.
//!
//! A PGM node is a random variable. THRML gives every node a Python class
//! (`SpinNode`, `CategoricalNode`, or a user's own subclass of `AbstractNode`) and maps each
//! class to a PyTree of `jax.ShapeDtypeStruct`s that describes its state. Here:
//!
//! * a [`NodeKind`] plays the role of the node class: a small interned name;
//! * a [`Node`] is a cheap, copyable handle with a process-unique id and a kind;
//! * a [`StateLayout`] is the PyTree of shape/dtype structs: a list of [`LeafSpec`]s, so a
//!   node state may have several leaves of different dtypes and shapes;
//! * [`NodeShapeDtypes`] maps each kind to its layout, and
//!   [`default_node_shape_dtypes`] gives THRML's defaults: spins are one `bool`
//!   (`true` = +1, `false` = −1) and categoricals one `u8` in `0..K`; the built-in
//!   continuous kind (beyond THRML's defaults) is one `f32`.
//!
//! # Example
//!
//! ```
//! use thrml::{DType, LeafSpec, Node, NodeKind, StateLayout, default_node_shape_dtypes};
//!
//! // A user-defined kind whose state is a position (3 × f32) and a flag (bool).
//! let particle = NodeKind::new("particle");
//! let mut layouts = default_node_shape_dtypes();
//! layouts.insert(
//!     particle,
//!     StateLayout::new(vec![LeafSpec::new(DType::F32, vec![3]), LeafSpec::scalar(DType::Bool)]),
//! );
//! let a = Node::new(particle);
//! let s = Node::spin();
//! assert_ne!(a, s);
//! assert_eq!(a.kind().name(), "particle");
//! assert_eq!(layouts[&NodeKind::SPIN], StateLayout::scalar(DType::Bool));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The kind (type) of a node: THRML's node class.
///
/// Kinds are interned by name: `NodeKind::new("x") == NodeKind::new("x")`. The two built-in
/// kinds are [`NodeKind::SPIN`], [`NodeKind::CATEGORICAL`] and [`NodeKind::CONTINUOUS`].
/// A process holds at most 2^16 kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKind(u16);

fn kind_names() -> &'static Mutex<Vec<&'static str>> {
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(|| Mutex::new(vec!["spin", "categorical", "continuous"]))
}

impl NodeKind {
    /// Spin nodes: state `bool`, `true` = +1, `false` = −1 (THRML's `SpinNode`).
    pub const SPIN: NodeKind = NodeKind(0);
    /// Categorical nodes: state `u8` in `0..K` (THRML's `CategoricalNode`).
    pub const CATEGORICAL: NodeKind = NodeKind(1);
    /// Continuous (Gaussian) nodes: state one `f32`
    /// ([`models::continuous`](crate::models::continuous)).
    pub const CONTINUOUS: NodeKind = NodeKind(2);

    /// The kind with this name, created on first use.
    ///
    /// `"spin"`, `"categorical"` and `"continuous"` name the built-in kinds.
    ///
    /// # Panics
    /// If 2^16 kinds already exist.
    #[must_use]
    pub fn new(name: &str) -> NodeKind {
        let mut names = kind_names()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = names.iter().position(|n| *n == name) {
            return NodeKind(u16::try_from(i).expect("fewer than 2^16 node kinds"));
        }
        names.push(Box::leak(name.to_owned().into_boxed_str()));
        NodeKind(u16::try_from(names.len() - 1).expect("fewer than 2^16 node kinds"))
    }

    /// The kind's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        kind_names()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[self.0 as usize]
    }
}

impl fmt::Debug for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKind({})", self.name())
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node of a PGM: a process-unique id and a [`NodeKind`].
///
/// Like THRML's `AbstractNode`, two nodes are equal only if they are the same node; every
/// call to [`Node::new`] makes a new one. Nodes are `Copy`, eight bytes (the id and the
/// kind packed in one word, so that the node lists of large models stay small) and cheap
/// to hash. Nodes order by id, that is by creation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node(u64);

/// Bits of [`Node`]'s word below the id: the kind.
const KIND_BITS: u32 = u16::BITS;

/// The next node id; ids are below 2^48.
static NEXT_NODE_ID: AtomicU64 = AtomicU64::new(0);

impl Node {
    /// A fresh node of `kind`.
    ///
    /// # Panics
    /// After 2^48 nodes in one process.
    #[must_use]
    pub fn new(kind: NodeKind) -> Node {
        let id = NEXT_NODE_ID.fetch_add(1, Ordering::Relaxed);
        assert!(id >> (u64::BITS - KIND_BITS) == 0, "fewer than 2^48 nodes");
        Node((id << KIND_BITS) | u64::from(kind.0))
    }

    /// A fresh spin node.
    #[must_use]
    pub fn spin() -> Node {
        Node::new(NodeKind::SPIN)
    }

    /// A fresh categorical node.
    #[must_use]
    pub fn categorical() -> Node {
        Node::new(NodeKind::CATEGORICAL)
    }

    /// A fresh continuous node.
    #[must_use]
    pub fn continuous() -> Node {
        Node::new(NodeKind::CONTINUOUS)
    }

    /// `n` fresh nodes of `kind`.
    #[must_use]
    pub fn many(kind: NodeKind, n: usize) -> Vec<Node> {
        (0..n).map(|_| Node::new(kind)).collect()
    }

    /// The node's unique id.
    #[must_use]
    pub fn id(self) -> u64 {
        self.0 >> KIND_BITS
    }

    /// The node's kind.
    #[must_use]
    pub fn kind(self) -> NodeKind {
        NodeKind(self.0 as u16)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.kind().name(), self.id())
    }
}

/// Element type of a state leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `bool`
    Bool,
    /// `u8`
    U8,
    /// `i32`
    I32,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl DType {
    /// numpy's name for the dtype.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I32 => "int32",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The dtype and per-node shape of one leaf of a node state: JAX's `ShapeDtypeStruct`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafSpec {
    /// Element type.
    pub dtype: DType,
    /// Shape of this leaf for one node (empty for a scalar).
    pub shape: Vec<usize>,
}

impl LeafSpec {
    /// A leaf of the given dtype and per-node shape.
    #[must_use]
    pub fn new(dtype: DType, shape: Vec<usize>) -> LeafSpec {
        LeafSpec { dtype, shape }
    }

    /// A scalar leaf.
    #[must_use]
    pub fn scalar(dtype: DType) -> LeafSpec {
        LeafSpec {
            dtype,
            shape: Vec::new(),
        }
    }

    /// Number of elements per node.
    #[must_use]
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The structure of a node's state: one [`LeafSpec`] per leaf, in a fixed order.
///
/// This is THRML's "PyTree of `ShapeDtypeStruct`": the flattened leaves of the tree.
/// Node kinds with equal layouts share one slot of the global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateLayout(Vec<LeafSpec>);

impl StateLayout {
    /// A layout from its leaves.
    #[must_use]
    pub fn new(leaves: Vec<LeafSpec>) -> StateLayout {
        StateLayout(leaves)
    }

    /// A layout with one scalar leaf.
    #[must_use]
    pub fn scalar(dtype: DType) -> StateLayout {
        StateLayout(vec![LeafSpec::scalar(dtype)])
    }

    /// The leaves.
    #[must_use]
    pub fn leaves(&self) -> &[LeafSpec] {
        &self.0
    }

    /// The single scalar leaf's dtype, if the layout is one scalar.
    #[must_use]
    pub fn scalar_dtype(&self) -> Option<DType> {
        match self.0.as_slice() {
            [leaf] if leaf.shape.is_empty() => Some(leaf.dtype),
            _ => None,
        }
    }
}

/// Maps every node kind to its state layout (THRML's `node_shape_dtypes`).
pub type NodeShapeDtypes = BTreeMap<NodeKind, StateLayout>;

/// THRML's `DEFAULT_NODE_SHAPE_DTYPES` (spin → `bool`, categorical → `u8`), plus the
/// built-in continuous kind → `f32`.
#[must_use]
pub fn default_node_shape_dtypes() -> NodeShapeDtypes {
    BTreeMap::from([
        (NodeKind::SPIN, StateLayout::scalar(DType::Bool)),
        (NodeKind::CATEGORICAL, StateLayout::scalar(DType::U8)),
        (NodeKind::CONTINUOUS, StateLayout::scalar(DType::F32)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_interned_by_name() {
        assert_eq!(NodeKind::new("spin"), NodeKind::SPIN);
        assert_eq!(NodeKind::new("categorical"), NodeKind::CATEGORICAL);
        assert_eq!(NodeKind::new("continuous"), NodeKind::CONTINUOUS);
        assert_eq!(NodeKind::CONTINUOUS.name(), "continuous");
        let a = NodeKind::new("pgm-test-kind");
        assert_eq!(a, NodeKind::new("pgm-test-kind"));
        assert_eq!(a.name(), "pgm-test-kind");
        assert_ne!(a, NodeKind::SPIN);
    }

    #[test]
    fn nodes_are_unique() {
        let v = Node::many(NodeKind::SPIN, 100);
        let set: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(set.len(), 100);
    }

    /// The packed word gives back the id and the kind, and nodes order by id.
    #[test]
    fn nodes_pack_id_and_kind() {
        assert_eq!(std::mem::size_of::<Node>(), 8);
        let k = NodeKind::new("pgm-test-pack");
        let (a, b) = (Node::new(k), Node::spin());
        assert_eq!((a.kind(), b.kind()), (k, NodeKind::SPIN));
        assert!(b.id() > a.id() && b > a);
        assert_eq!(format!("{a:?}"), format!("pgm-test-pack#{}", a.id()));
    }
}
