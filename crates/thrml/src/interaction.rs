//! Interaction groups: the directed, compiled form of factors.
//!
//! An [`InteractionGroup`] says: to update any node of `head_nodes`, a sampler needs the
//! payload row of that node (`interaction`, one row per head node) and the current states of
//! the nodes at the same position in each of `tail_nodes`. Factors compile to interaction
//! groups ([`AbstractFactor::to_interaction_groups`](crate::AbstractFactor)), and a
//! [`BlockSamplingProgram`](crate::BlockSamplingProgram) is compiled from them.
//!
//! The payload is any type implementing [`Interaction`]; samplers recover it with
//! [`downcast_ref`](trait.Interaction.html#method.downcast_ref).

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use crate::block::Block;
use crate::error::{Error, Result};

/// The payload of an interaction group: static data with one row per head node.
///
/// This is THRML's `interaction` PyTree. Implement it for your own types to give your
/// samplers the parameters they need.
pub trait Interaction: Any + Send + Sync + Debug {
    /// Number of rows (one per head node of the group).
    fn n_rows(&self) -> usize;

    /// Exclusive upper bounds on integer state values that this payload indexes with:
    /// `(head, tails)` for a group with `n_tails` tail blocks. `None` means "no bound".
    ///
    /// The program uses these to reject initial and clamped states that would index out of
    /// range, and to check that every use of a categorical node agrees on its number of
    /// categories. The default is no bounds.
    fn value_limits(&self, n_tails: usize) -> (Option<usize>, Vec<Option<usize>>) {
        (None, vec![None; n_tails])
    }
}

impl dyn Interaction {
    /// The payload as a `T`, if it is one.
    #[must_use]
    pub fn downcast_ref<T: Interaction>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }
}

/// A batch of directed interactions: payload, head block and tail blocks.
#[derive(Clone, Debug)]
pub struct InteractionGroup {
    /// The payload, one row per head node.
    pub interaction: Arc<dyn Interaction>,
    /// The nodes this group helps to update.
    pub head_nodes: Block,
    /// The nodes whose states the update reads; each block is as long as `head_nodes`.
    pub tail_nodes: Vec<Block>,
}

impl InteractionGroup {
    /// An interaction group.
    ///
    /// # Errors
    /// [`Error::InteractionGroup`] if a tail block's length or the payload's row count
    /// differs from the head block's length.
    pub fn new(
        interaction: impl Interaction,
        head_nodes: Block,
        tail_nodes: Vec<Block>,
    ) -> Result<InteractionGroup> {
        InteractionGroup::from_arc(Arc::new(interaction), head_nodes, tail_nodes)
    }

    /// An interaction group with a shared payload.
    ///
    /// # Errors
    /// As [`InteractionGroup::new`].
    pub fn from_arc(
        interaction: Arc<dyn Interaction>,
        head_nodes: Block,
        tail_nodes: Vec<Block>,
    ) -> Result<InteractionGroup> {
        let n = head_nodes.len();
        if let Some((t, b)) = tail_nodes.iter().enumerate().find(|(_, b)| b.len() != n) {
            return Err(Error::InteractionGroup(format!(
                "tail block {t} has {} nodes but the head block has {n}",
                b.len()
            )));
        }
        if interaction.n_rows() != n {
            return Err(Error::InteractionGroup(format!(
                "the payload has {} rows but the head block has {n} nodes",
                interaction.n_rows()
            )));
        }
        Ok(InteractionGroup {
            interaction,
            head_nodes,
            tail_nodes,
        })
    }
}
