//! Energy-based models.
//!
//! An EBM assigns an energy `E(x)` to every state; its Boltzmann distribution is
//! `P(x) ∝ exp(−E(x))`. A *factorized* EBM is a sum of factor energies,
//! `E(x) = Σ_i E^i(x)`.
//!
//! Energies are batched: every leaf has shape `[M, nodes] + leaf.shape` (or
//! `[nodes] + leaf.shape` for a single state, treated as `M = 1`), and the result has one
//! `f64` per batch element.

use std::fmt::Debug;
use std::sync::Arc;

use ndarray::Array1;

use crate::block::{Block, BlockSpec, block_state_to_global};
use crate::error::Result;
use crate::factor::AbstractFactor;
use crate::pgm::{NodeShapeDtypes, default_node_shape_dtypes};
use crate::state::State;

/// Something with an energy function (THRML's `AbstractEBM`).
pub trait AbstractEBM {
    /// The energy of each state in the batch. `state[i]` is the state of `blocks[i]`.
    ///
    /// # Errors
    /// If the states do not fit the blocks, or a factor's nodes are missing from them.
    fn energy(&self, state: &[State], blocks: &[Block]) -> Result<Array1<f64>>;
}

/// A factor with an energy (THRML's `EBMFactor`).
pub trait EBMFactor: AbstractFactor {
    /// The factor's energy for each state of a batched global state built with `block_spec`.
    ///
    /// # Errors
    /// If a node of the factor is missing from `block_spec`.
    fn energy(&self, global_state: &[State], block_spec: &BlockSpec) -> Result<Array1<f64>>;
}

/// An EBM whose energy is a sum over factors (THRML's `AbstractFactorizedEBM`).
///
/// Every implementor is an [`AbstractEBM`].
pub trait AbstractFactorizedEBM {
    /// The layout of each node kind.
    fn node_shape_dtypes(&self) -> &NodeShapeDtypes;

    /// The factors that make up the energy.
    fn factors(&self) -> Vec<Arc<dyn EBMFactor>>;
}

impl<T: AbstractFactorizedEBM + ?Sized> AbstractEBM for T {
    fn energy(&self, state: &[State], blocks: &[Block]) -> Result<Array1<f64>> {
        let spec = BlockSpec::new(blocks.to_vec(), self.node_shape_dtypes())?;
        let global = block_state_to_global(state, &spec)?;
        let mut total: Option<Array1<f64>> = None;
        for f in self.factors() {
            let e = f.energy(&global, &spec)?;
            total = Some(match total {
                None => e,
                Some(t) => t + e,
            });
        }
        Ok(total.unwrap_or_else(|| Array1::zeros(batch_len(&global))))
    }
}

/// The batch size `M` of a global state (1 for unbatched scalars).
pub(crate) fn batch_len(global: &[State]) -> usize {
    global
        .first()
        .map_or(1, |s| if s[0].ndim() >= 2 { s[0].shape()[0] } else { 1 })
}

/// An EBM defined by a list of factors (THRML's `FactorizedEBM`).
#[derive(Clone, Debug)]
pub struct FactorizedEBM {
    factors: Vec<Arc<dyn EBMFactor>>,
    node_shape_dtypes: NodeShapeDtypes,
}

impl FactorizedEBM {
    /// An EBM from factors, with THRML's default node layouts.
    #[must_use]
    pub fn new(factors: Vec<Arc<dyn EBMFactor>>) -> FactorizedEBM {
        FactorizedEBM {
            factors,
            node_shape_dtypes: default_node_shape_dtypes(),
        }
    }

    /// An EBM from factors with the given node layouts.
    #[must_use]
    pub fn with_node_shape_dtypes(
        factors: Vec<Arc<dyn EBMFactor>>,
        node_shape_dtypes: NodeShapeDtypes,
    ) -> FactorizedEBM {
        FactorizedEBM {
            factors,
            node_shape_dtypes,
        }
    }
}

impl AbstractFactorizedEBM for FactorizedEBM {
    fn node_shape_dtypes(&self) -> &NodeShapeDtypes {
        &self.node_shape_dtypes
    }

    fn factors(&self) -> Vec<Arc<dyn EBMFactor>> {
        self.factors.clone()
    }
}
