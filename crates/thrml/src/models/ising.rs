//! The Ising model and its training helpers.
//!
//! ```text
//! E(s) = −β ( Σ_{i∈S₁} b_i s_i + Σ_{(i,j)∈S₂} J_ij s_i s_j )
//! ```
//!
//! The gradient of the KL divergence between a data distribution and the model (with
//! latent nodes marginalised) is estimated by the two-phase Monte Carlo estimator
//!
//! ```text
//! ∂KL/∂J_ij = −β (⟨s_i s_j⟩₊ − ⟨s_i s_j⟩₋),     ∂KL/∂b_i = −β (⟨s_i⟩₊ − ⟨s_i⟩₋)
//! ```
//!
//! where `⟨·⟩₊` averages over the model with data (and conditioning) nodes clamped to each
//! data item, and `⟨·⟩₋` over the model with only the conditioning nodes clamped.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{Array1, Array2, Array3, ArrayD, Axis, IxDyn};
use rand::RngExt;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::factor::FactorSamplingProgram;
use crate::models::discrete::{SpinEBMFactor, SpinGibbsConditional};
use crate::models::ebm::{AbstractFactorizedEBM, EBMFactor};
use crate::observer::{MomentAccumulatorObserver, spin_transform};
use crate::pgm::{DType, Node, NodeShapeDtypes, StateLayout};
use crate::program::{BlockGibbsSpec, BlockSamplingProgram, SuperBlock};
use crate::rng::Key;
use crate::run::{SamplingSchedule, init_global_state, sample_with_observation};
use crate::sampler::AbstractConditionalSampler;
use crate::state::{State, Tensor};

/// A pair of nodes coupled by a weight.
pub type Edge = (Node, Node);

/// An Ising model (THRML's `IsingEBM`).
#[derive(Clone, Debug)]
pub struct IsingEBM {
    /// Nodes with a bias (`S₁`).
    pub nodes: Vec<Node>,
    /// Coupled pairs (`S₂`).
    pub edges: Vec<Edge>,
    /// One bias per node.
    pub biases: Array1<f32>,
    /// One weight per edge.
    pub weights: Array1<f32>,
    /// Inverse temperature.
    pub beta: f32,
    node_shape_dtypes: NodeShapeDtypes,
    factors: Vec<Arc<dyn EBMFactor>>,
}

impl IsingEBM {
    /// An Ising model. All nodes must be of one kind, whose state is a `bool`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if there are no nodes, or the lengths of `biases` / `weights`
    /// differ from `nodes` / `edges`; [`Error::NonFiniteWeight`]; [`Error::MixedBlock`].
    pub fn new(
        nodes: Vec<Node>,
        edges: Vec<Edge>,
        biases: Vec<f32>,
        weights: Vec<f32>,
        beta: f32,
    ) -> Result<IsingEBM> {
        let Some(first) = nodes.first() else {
            return Err(Error::Invalid(
                "an Ising model needs at least one node".into(),
            ));
        };
        if biases.len() != nodes.len() {
            return Err(Error::Invalid(format!(
                "{} biases for {} nodes",
                biases.len(),
                nodes.len()
            )));
        }
        if weights.len() != edges.len() {
            return Err(Error::Invalid(format!(
                "{} weights for {} edges",
                weights.len(),
                edges.len()
            )));
        }
        if !beta.is_finite() {
            return Err(Error::Invalid(format!("beta is {beta}, must be finite")));
        }
        let kind = first.kind();
        let node_shape_dtypes = NodeShapeDtypes::from([(kind, StateLayout::scalar(DType::Bool))]);
        let biases = Array1::from(biases);
        let weights = Array1::from(weights);
        let bias_factor = SpinEBMFactor::new(
            vec![Block::of_kind(kind, nodes.clone())?],
            (&biases * beta).into_dyn(),
        )?;
        let edge_factor = SpinEBMFactor::new(
            vec![
                Block::of_kind(kind, edges.iter().map(|e| e.0).collect())?,
                Block::of_kind(kind, edges.iter().map(|e| e.1).collect())?,
            ],
            (&weights * beta).into_dyn(),
        );
        let mut factors: Vec<Arc<dyn EBMFactor>> = vec![Arc::new(bias_factor)];
        // An Ising model without edges has only the bias factor.
        if !edges.is_empty() {
            factors.push(Arc::new(edge_factor?));
        }
        Ok(IsingEBM {
            nodes,
            edges,
            biases,
            weights,
            beta,
            node_shape_dtypes,
            factors,
        })
    }
}

impl AbstractFactorizedEBM for IsingEBM {
    fn node_shape_dtypes(&self) -> &NodeShapeDtypes {
        &self.node_shape_dtypes
    }

    fn factors(&self) -> Vec<Arc<dyn EBMFactor>> {
        self.factors.clone()
    }
}

/// A [`FactorSamplingProgram`] for an Ising model, with [`SpinGibbsConditional`] on every
/// free block (THRML's `IsingSamplingProgram`).
#[derive(Debug)]
pub struct IsingSamplingProgram(FactorSamplingProgram);

impl IsingSamplingProgram {
    /// The program for `ebm` with these free superblocks and clamped blocks.
    ///
    /// # Errors
    /// As [`BlockGibbsSpec::new`] and [`BlockSamplingProgram::new`].
    pub fn new<S: Into<SuperBlock>>(
        ebm: &IsingEBM,
        free_blocks: impl IntoIterator<Item = S>,
        clamped_blocks: Vec<Block>,
    ) -> Result<IsingSamplingProgram> {
        let spec = BlockGibbsSpec::new(free_blocks, clamped_blocks, &ebm.node_shape_dtypes)?;
        let sampler: Arc<dyn AbstractConditionalSampler> = Arc::new(SpinGibbsConditional);
        let samplers = vec![sampler; spec.free_blocks.len()];
        FactorSamplingProgram::new(spec, samplers, &ebm.factors(), vec![]).map(IsingSamplingProgram)
    }
}

impl std::ops::Deref for IsingSamplingProgram {
    type Target = BlockSamplingProgram;
    fn deref(&self) -> &BlockSamplingProgram {
        &self.0
    }
}

/// Everything needed to estimate KL gradients of an Ising model (THRML's
/// `IsingTrainingSpec`): the positive-phase program clamps data and conditioning blocks,
/// the negative-phase program only the conditioning blocks.
#[derive(Debug)]
pub struct IsingTrainingSpec {
    /// The model.
    pub ebm: IsingEBM,
    /// The blocks clamped to data in the positive phase.
    pub data_blocks: Vec<Block>,
    /// The blocks clamped in both phases.
    pub conditioning_blocks: Vec<Block>,
    /// Positive phase program (free: latent nodes).
    pub program_positive: IsingSamplingProgram,
    /// Negative phase program (free: data and latent nodes).
    pub program_negative: IsingSamplingProgram,
    /// Positive phase schedule.
    pub schedule_positive: SamplingSchedule,
    /// Negative phase schedule.
    pub schedule_negative: SamplingSchedule,
}

impl IsingTrainingSpec {
    /// A training spec.
    ///
    /// # Errors
    /// As [`IsingSamplingProgram::new`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ebm: IsingEBM,
        data_blocks: Vec<Block>,
        conditioning_blocks: Vec<Block>,
        positive_sampling_blocks: Vec<SuperBlock>,
        negative_sampling_blocks: Vec<SuperBlock>,
        schedule_positive: SamplingSchedule,
        schedule_negative: SamplingSchedule,
    ) -> Result<IsingTrainingSpec> {
        let clamped_pos: Vec<Block> = data_blocks
            .iter()
            .chain(&conditioning_blocks)
            .cloned()
            .collect();
        let program_positive =
            IsingSamplingProgram::new(&ebm, positive_sampling_blocks, clamped_pos)?;
        let program_negative =
            IsingSamplingProgram::new(&ebm, negative_sampling_blocks, conditioning_blocks.clone())?;
        Ok(IsingTrainingSpec {
            ebm,
            data_blocks,
            conditioning_blocks,
            program_positive,
            program_negative,
            schedule_positive,
            schedule_negative,
        })
    }
}

/// Initialise spins independently from their biases: `P(s_i = +1) = σ(β b_i)` (Hinton's
/// heuristic, as THRML). Returns one `bool` array per block, of shape
/// `batch_shape + [len(block)]`.
///
/// # Errors
/// [`Error::UnknownNode`] if a block holds a node without a bias in `model`.
pub fn hinton_init(
    key: Key,
    model: &IsingEBM,
    blocks: &[Block],
    batch_shape: &[usize],
) -> Result<Vec<ArrayD<bool>>> {
    let index: HashMap<Node, usize> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, i))
        .collect();
    let batch: usize = batch_shape.iter().product();
    blocks
        .iter()
        .zip(key.split(blocks.len()))
        .map(|(block, k)| {
            let probs = block
                .nodes()
                .iter()
                .map(|n| {
                    let i = *index.get(n).ok_or_else(|| Error::UnknownNode {
                        node: n.id(),
                        kind: n.kind().name().to_owned(),
                    })?;
                    let x = f64::from(model.beta * model.biases[i]);
                    Ok(1.0 / (1.0 + (-x).exp()))
                })
                .collect::<Result<Vec<f64>>>()?;
            let mut rng = k.chain_rngs(1).pop().expect("one generator");
            let mut data = Vec::with_capacity(batch * probs.len());
            for _ in 0..batch {
                data.extend(probs.iter().map(|&p| rng.random::<f64>() < p));
            }
            let mut shape = batch_shape.to_vec();
            shape.push(block.len());
            Ok(ArrayD::from_shape_vec(IxDyn(&shape), data).expect("shape matches"))
        })
        .collect()
}

/// Estimate the first and second moments of spins (as ±1) by sampling, per chain.
///
/// Returns `(node_moments [chains, nodes], edge_moments [chains, edges])`, averaged over the
/// schedule's samples.
///
/// # Errors
/// As [`sample_with_observation`].
pub fn estimate_moments(
    key: Key,
    first_moment_nodes: &[Node],
    second_moment_edges: &[Edge],
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init_state: &[State],
    clamped_data: &[State],
) -> Result<(Array2<f64>, Array2<f64>)> {
    let spec = vec![
        first_moment_nodes.iter().map(|&n| vec![n]).collect(),
        second_moment_edges
            .iter()
            .map(|&(a, b)| vec![a, b])
            .collect(),
    ];
    let observer = MomentAccumulatorObserver::new(spec, spin_transform())?;
    // The chain count as the runner sees it: a clamped state may be shared ([nodes]).
    let (_, n_chains) = init_global_state(program, init_state, clamped_data)?;
    let carry = observer.init(n_chains);
    let (mut sums, _) = sample_with_observation(
        key,
        program,
        schedule,
        init_state,
        clamped_data,
        carry,
        &observer,
    )?;
    let n = schedule.n_samples as f64;
    let edges = sums.pop().expect("two moment types") / n;
    let nodes = sums.pop().expect("two moment types") / n;
    Ok((nodes, edges))
}

/// The result of [`estimate_kl_grad`].
#[derive(Clone, Debug)]
pub struct KlGrad {
    /// `∂KL/∂J` for each weight edge.
    pub grad_w: Array1<f64>,
    /// `∂KL/∂b` for each bias node.
    pub grad_b: Array1<f64>,
    /// Positive-phase `(node moments, edge moments)` per positive chain
    /// (`[chains_per_item · batch, ·]`, chain index `p · batch + item`).
    pub moments_positive: (Array2<f64>, Array2<f64>),
    /// Negative-phase `(node moments, edge moments)` per negative chain.
    pub moments_negative: (Array2<f64>, Array2<f64>),
}

fn bool_state(a: ArrayD<bool>) -> State {
    vec![Tensor::Bool(a)]
}

/// Estimate the KL gradient of an Ising model with respect to the weights of
/// `weight_edges` and the biases of `bias_nodes`.
///
/// * `data[i]`: `[batch, len(data_blocks[i])]`, the data items.
/// * `conditioning_values[i]`: `[len(conditioning_blocks[i])]`, shared by all chains.
/// * `init_state_positive[i]`: `[n_chains_pos, batch, len(free block i)]`; several chains
///   per data item. If the positive program has no free blocks, pass an empty list and the
///   positive moments are computed from the data directly.
/// * `init_state_negative[i]`: `[n_chains_neg, len(free block i)]`.
///
/// # Errors
/// Shape mismatches, or as [`estimate_moments`].
#[allow(clippy::too_many_arguments)]
pub fn estimate_kl_grad(
    key: Key,
    training_spec: &IsingTrainingSpec,
    bias_nodes: &[Node],
    weight_edges: &[Edge],
    data: &[Array2<bool>],
    conditioning_values: &[Array1<bool>],
    init_state_positive: &[Array3<bool>],
    init_state_negative: &[Array2<bool>],
) -> Result<KlGrad> {
    let [key_pos, key_neg] = <[Key; 2]>::try_from(key.split(2)).expect("two keys");
    if data.len() != training_spec.data_blocks.len() {
        return Err(Error::Invalid(format!(
            "{} data arrays for {} data blocks",
            data.len(),
            training_spec.data_blocks.len()
        )));
    }
    let batch = data.first().map_or(0, |d| d.nrows());
    if let Some((i, d)) = data.iter().enumerate().find(|(_, d)| d.nrows() != batch) {
        return Err(Error::Invalid(format!(
            "data array {i} has {} rows, data array 0 has {batch}",
            d.nrows()
        )));
    }
    let cond_states: Vec<State> = conditioning_values
        .iter()
        .map(|c| bool_state(c.clone().into_dyn()))
        .collect();

    let moments_positive = if training_spec
        .program_positive
        .gibbs_spec
        .free_blocks
        .is_empty()
    {
        positive_moments_from_data(
            training_spec,
            bias_nodes,
            weight_edges,
            data,
            conditioning_values,
        )?
    } else {
        let n_pos = init_state_positive.first().map_or(0, |a| a.shape()[0]);
        let chains = n_pos * batch;
        let init: Vec<State> = init_state_positive
            .iter()
            .map(|a| {
                let (p, b, n) = a.dim();
                if p != n_pos || b != batch {
                    return Err(Error::Invalid(format!(
                        "init_state_positive arrays must be [{n_pos}, {batch}, nodes], got [{p}, {b}, {n}]"
                    )));
                }
                Ok(bool_state(a.to_shape((chains, n)).expect("contiguous").to_owned().into_dyn()))
            })
            .collect::<Result<_>>()?;
        let mut clamp: Vec<State> = data
            .iter()
            .map(|d| {
                let views: Vec<_> = (0..n_pos).map(|_| d.view()).collect();
                bool_state(
                    ndarray::concatenate(Axis(0), &views)
                        .expect("same shapes")
                        .into_dyn(),
                )
            })
            .collect();
        clamp.extend(cond_states.iter().cloned());
        estimate_moments(
            key_pos,
            bias_nodes,
            weight_edges,
            &training_spec.program_positive,
            &training_spec.schedule_positive,
            &init,
            &clamp,
        )?
    };
    let init_neg: Vec<State> = init_state_negative
        .iter()
        .map(|a| bool_state(a.clone().into_dyn()))
        .collect();
    let moments_negative = estimate_moments(
        key_neg,
        bias_nodes,
        weight_edges,
        &training_spec.program_negative,
        &training_spec.schedule_negative,
        &init_neg,
        &cond_states,
    )?;
    let beta = f64::from(training_spec.ebm.beta);
    let mean = |a: &Array2<f64>| {
        a.mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(a.ncols()))
    };
    let grad_b = (mean(&moments_positive.0) - mean(&moments_negative.0)) * -beta;
    let grad_w = (mean(&moments_positive.1) - mean(&moments_negative.1)) * -beta;
    Ok(KlGrad {
        grad_w,
        grad_b,
        moments_positive,
        moments_negative,
    })
}

/// Positive moments when every node is clamped: products of the data itself.
fn positive_moments_from_data(
    spec: &IsingTrainingSpec,
    bias_nodes: &[Node],
    weight_edges: &[Edge],
    data: &[Array2<bool>],
    conditioning_values: &[Array1<bool>],
) -> Result<(Array2<f64>, Array2<f64>)> {
    let batch = data.first().map_or(0, |d| d.nrows());
    let mut column: HashMap<Node, (usize, usize, bool)> = HashMap::new();
    for (i, b) in spec.data_blocks.iter().enumerate() {
        for (j, &n) in b.nodes().iter().enumerate() {
            column.insert(n, (i, j, true));
        }
    }
    for (i, b) in spec.conditioning_blocks.iter().enumerate() {
        for (j, &n) in b.nodes().iter().enumerate() {
            column.insert(n, (i, j, false));
        }
    }
    let value = |n: Node, item: usize| -> Result<f64> {
        let &(i, j, is_data) = column.get(&n).ok_or_else(|| Error::UnknownNode {
            node: n.id(),
            kind: n.kind().name().to_owned(),
        })?;
        let s = if is_data {
            data[i][[item, j]]
        } else {
            conditioning_values[i][j]
        };
        Ok(if s { 1.0 } else { -1.0 })
    };
    let mut nodes = Array2::zeros((batch, bias_nodes.len()));
    let mut edges = Array2::zeros((batch, weight_edges.len()));
    for item in 0..batch {
        for (k, &n) in bias_nodes.iter().enumerate() {
            nodes[[item, k]] = value(n, item)?;
        }
        for (k, &(a, b)) in weight_edges.iter().enumerate() {
            edges[[item, k]] = value(a, item)? * value(b, item)?;
        }
    }
    Ok((nodes, edges))
}
