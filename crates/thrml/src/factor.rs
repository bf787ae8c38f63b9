//! Factors: batches of undirected interactions, and programs built from them.
//!
//! A factor acts on parallel node groups: factor instance `b` couples
//! `node_groups[0][b], node_groups[1][b], …`. It compiles to directed
//! [`InteractionGroup`]s, one set per choice of head group
//! ([`AbstractFactor::to_interaction_groups`]). [`FactorSamplingProgram`] turns a list of
//! factors into a [`BlockSamplingProgram`].

use std::fmt::Debug;
use std::sync::Arc;

use ndarray::{ArcArray, ArrayBase, ArrayD, Data, Dimension, IxDyn};

use crate::block::Block;
use crate::error::{Error, Result};
use crate::interaction::InteractionGroup;
use crate::program::{BlockGibbsSpec, BlockSamplingProgram};
use crate::sampler::AbstractConditionalSampler;

/// A batch of undirected interactions between parallel groups of nodes.
pub trait AbstractFactor: Send + Sync + Debug {
    /// The node groups; all have the same length, the factor batch size.
    fn node_groups(&self) -> &[Block];

    /// Compile the factor to directed interaction groups.
    fn to_interaction_groups(&self) -> Vec<InteractionGroup>;
}

/// Check factor node groups: at least one group, all of one length.
///
/// # Errors
/// [`Error::FactorGroups`] naming the group whose length differs.
pub fn check_node_groups(node_groups: &[Block]) -> Result<()> {
    let Some(first) = node_groups.first() else {
        return Err(Error::FactorGroups(
            "a factor needs at least one node group".into(),
        ));
    };
    if let Some((i, g)) = node_groups
        .iter()
        .enumerate()
        .find(|(_, g)| g.len() != first.len())
    {
        return Err(Error::FactorGroups(format!(
            "every node group must have the same length: group 0 has {} nodes, group {i} has {}",
            first.len(),
            g.len()
        )));
    }
    Ok(())
}

/// Check that every weight is finite.
///
/// # Errors
/// [`Error::NonFiniteWeight`] with the flat index of the first bad entry.
pub fn check_finite<S: Data<Elem = f32>, D: Dimension>(weights: &ArrayBase<S, D>) -> Result<()> {
    match weights.iter().position(|w| !w.is_finite()) {
        Some(index) => Err(Error::NonFiniteWeight {
            index,
            value: f64::from(weights.iter().nth(index).copied().unwrap_or(f32::NAN)),
        }),
        None => Ok(()),
    }
}

/// A factor parameterised by a weight tensor whose leading dimension is the factor batch.
///
/// Concrete weighted factors (such as [`DiscreteEBMFactor`](crate::DiscreteEBMFactor))
/// embed one; its constructor enforces THRML's rules and rejects non-finite weights.
#[derive(Clone, Debug)]
pub struct WeightedFactor {
    /// The weights, `[batch, …]`, in standard layout. They are shared: the interaction
    /// groups a factor compiles to hold views of this one array, not copies.
    pub weights: ArcArray<f32, IxDyn>,
    /// The node groups.
    pub node_groups: Vec<Block>,
}

impl WeightedFactor {
    /// A weighted factor.
    ///
    /// # Errors
    /// [`Error::FactorGroups`] for bad groups, [`Error::WeightShape`] if the leading
    /// dimension differs from the group length, [`Error::NonFiniteWeight`].
    pub fn new(weights: ArrayD<f32>, node_groups: Vec<Block>) -> Result<WeightedFactor> {
        check_node_groups(&node_groups)?;
        let batch = node_groups[0].len();
        match weights.shape().first() {
            Some(&b) if b == batch => {}
            _ => {
                return Err(Error::WeightShape(format!(
                    "the leading dimension of weights (shape {:?}) must equal the number of nodes in each node group ({batch})",
                    weights.shape()
                )));
            }
        }
        check_finite(&weights)?;
        let weights = if weights.is_standard_layout() {
            weights
        } else {
            weights.as_standard_layout().into_owned()
        };
        Ok(WeightedFactor {
            weights: weights.into_shared(),
            node_groups,
        })
    }
}

/// A sampling program built from factors: a thin wrapper over [`BlockSamplingProgram`].
///
/// It dereferences to the [`BlockSamplingProgram`], so it runs wherever one is expected.
#[derive(Debug)]
pub struct FactorSamplingProgram(BlockSamplingProgram);

impl FactorSamplingProgram {
    /// Compile every factor to interaction groups, add `other_interaction_groups`, and build
    /// the program.
    ///
    /// # Errors
    /// As [`BlockSamplingProgram::new`].
    pub fn new<F: AbstractFactor + ?Sized>(
        gibbs_spec: BlockGibbsSpec,
        samplers: Vec<Arc<dyn AbstractConditionalSampler>>,
        factors: &[Arc<F>],
        other_interaction_groups: Vec<InteractionGroup>,
    ) -> Result<FactorSamplingProgram> {
        let mut groups = other_interaction_groups;
        for f in factors {
            groups.extend(f.to_interaction_groups());
        }
        BlockSamplingProgram::new(gibbs_spec, samplers, groups).map(FactorSamplingProgram)
    }

    /// The underlying program.
    #[must_use]
    pub fn into_inner(self) -> BlockSamplingProgram {
        self.0
    }
}

impl std::ops::Deref for FactorSamplingProgram {
    type Target = BlockSamplingProgram;
    fn deref(&self) -> &BlockSamplingProgram {
        &self.0
    }
}

impl From<FactorSamplingProgram> for BlockSamplingProgram {
    fn from(p: FactorSamplingProgram) -> Self {
        p.0
    }
}
