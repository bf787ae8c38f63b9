//! The KL gradient of any discrete EBM, by two-phase sampling.
//!
//! For a model `p(v, h | c) ∝ exp(−E(v, h, c))` over visible (data) nodes `v`, latent nodes
//! `h` and conditioning nodes `c`, and a data distribution `q(v)`, the gradient of
//! `KL(q(v) ‖ p(v | c))` with respect to any weight tensor `W` is
//!
//! ```text
//! ∂KL/∂W = ⟨∂E/∂W⟩₊ − ⟨∂E/∂W⟩₋
//! ```
//!
//! where `⟨·⟩₊` averages over data items `v ~ q` and `h ~ p(h | v, c)` (the *positive
//! phase*: data and conditioning blocks clamped) and `⟨·⟩₋` over `(v, h) ~ p(· | c)` (the
//! *negative phase*: only the conditioning blocks clamped). For discrete factors
//! `−∂E/∂W` is the factor's sufficient statistic ([`FactorStatistics`]), summed in place
//! while the chains run.
//!
//! [`TrainingSpec`] holds the trainable factors, the blocks of both phases and their
//! schedules, and the two compiled programs (built-in samplers, so both phases run on the
//! fused engine); [`estimate_kl_gradient`] runs both phases.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn};
use rand::RngExt;

use crate::block::{Block, BlockSpec, block_state_to_global};
use crate::error::{Error, Result};
use crate::factor::{AbstractFactor, FactorSamplingProgram};
use crate::models::discrete::{
    CategoricalGibbsConditional, DiscreteEBMFactor, SpinGibbsConditional,
};
use crate::pgm::{DType, Node, NodeKind, NodeShapeDtypes, StateLayout, default_node_shape_dtypes};
use crate::program::{BlockGibbsSpec, BlockSamplingProgram, SuperBlock};
use crate::rng::Key;
use crate::run::{SamplingSchedule, sample_with_observation};
use crate::sampler::AbstractConditionalSampler;
use crate::state::{State, Tensor, concatenate};
use crate::train::statistics::{FactorStatistics, StatisticSums};

/// Everything needed to estimate KL gradients of a discrete EBM: its trainable factors, the
/// blocks and schedules of both phases, and the compiled programs.
///
/// * Positive phase: `data_blocks` and `conditioning_blocks` clamped, `positive_superblocks`
///   (the latent nodes) sampled. With no latent nodes, pass no positive superblocks: the
///   positive statistics are then those of the data itself.
/// * Negative phase: `conditioning_blocks` clamped, `negative_superblocks` (data and latent
///   nodes) sampled.
///
/// Spin nodes are sampled with [`SpinGibbsConditional`], categorical nodes with
/// [`CategoricalGibbsConditional`] for the number of categories their factors give them.
/// [`TrainingSpec::set_weights`] swaps in new weights and recompiles both programs.
///
/// # Example
///
/// ```
/// use ndarray::{arr1, arr2};
/// use thrml::*;
/// use thrml::train::{TrainingSpec, estimate_kl_gradient};
///
/// // Two coupled spins, s0 visible and s1 latent.
/// let s = Node::many(NodeKind::SPIN, 2);
/// let bias = DiscreteEBMFactor::new(vec![Block::new(s.clone())?], vec![], arr1(&[0.0f32, 0.0]).into_dyn())?;
/// let pair = DiscreteEBMFactor::new(
///     vec![Block::new(vec![s[0]])?, Block::new(vec![s[1]])?], vec![], arr1(&[0.5f32]).into_dyn())?;
/// let visible = Block::new(vec![s[0]])?;
/// let latent = Block::new(vec![s[1]])?;
/// let spec = TrainingSpec::new(
///     vec![bias, pair],
///     vec![visible.clone()],
///     vec![],
///     vec![SuperBlock::from(latent.clone())],
///     vec![SuperBlock::from(visible), SuperBlock::from(latent)],
///     SamplingSchedule::new(5, 20, 1)?,
///     SamplingSchedule::new(20, 20, 2)?,
/// )?;
/// // Data: s0 = +1 twice. Two positive chains per item, 64 negative chains.
/// let data = vec![vec![Tensor::from(arr2(&[[true], [true]]).into_dyn())]];
/// let init_pos = spec.hinton_init(Key::new(0), &spec.positive_free_blocks(), 4);
/// let init_neg = spec.hinton_init(Key::new(1), &spec.negative_free_blocks(), 64);
/// let g = estimate_kl_gradient(Key::new(2), &spec, &data, &[], &init_pos, &init_neg)?;
/// // The data pull the bias of s0 up: its gradient is negative.
/// assert!(g.gradient[0][[0]] < 0.0);
/// # Ok::<(), thrml::Error>(())
/// ```
#[derive(Debug)]
pub struct TrainingSpec {
    factors: Vec<DiscreteEBMFactor>,
    /// The blocks clamped to data in the positive phase.
    pub data_blocks: Vec<Block>,
    /// The blocks clamped in both phases.
    pub conditioning_blocks: Vec<Block>,
    /// The free superblocks of the positive phase (latent nodes).
    pub positive_superblocks: Vec<SuperBlock>,
    /// The free superblocks of the negative phase (data and latent nodes).
    pub negative_superblocks: Vec<SuperBlock>,
    /// The positive phase schedule.
    pub schedule_positive: SamplingSchedule,
    /// The negative phase schedule.
    pub schedule_negative: SamplingSchedule,
    node_shape_dtypes: NodeShapeDtypes,
    categories: HashMap<Node, usize>,
    gibbs_positive: Option<BlockGibbsSpec>,
    gibbs_negative: BlockGibbsSpec,
    /// Data and conditioning blocks, for positive statistics without latent nodes.
    data_spec: BlockSpec,
    program_positive: Option<BlockSamplingProgram>,
    program_negative: BlockSamplingProgram,
    stats_positive: FactorStatistics,
    stats_negative: FactorStatistics,
}

/// The node layouts of the factors' kinds: spins `bool`, categoricals `u8`.
fn layouts_of(factors: &[DiscreteEBMFactor]) -> Result<NodeShapeDtypes> {
    let mut layouts = default_node_shape_dtypes();
    let mut is_spin: BTreeMap<NodeKind, bool> = BTreeMap::new();
    for f in factors {
        for (&kind, &spin) in &f.is_spin {
            if is_spin.insert(kind, spin).is_some_and(|prev| prev != spin) {
                return Err(Error::SpinAndCategorical(kind.name().to_owned()));
            }
            let dtype = if spin { DType::Bool } else { DType::U8 };
            layouts.insert(kind, StateLayout::scalar(dtype));
        }
    }
    Ok(layouts)
}

/// The number of categories of every categorical node, from its factors' weight axes.
fn categories_of(factors: &[DiscreteEBMFactor]) -> Result<HashMap<Node, usize>> {
    let mut out: HashMap<Node, usize> = HashMap::new();
    for (fi, f) in factors.iter().enumerate() {
        for (k, g) in f.categorical_node_groups.iter().enumerate() {
            let n = f.weights().shape()[1 + k];
            for &node in g.nodes() {
                if let Some(prev) = out.insert(node, n)
                    && prev != n
                {
                    return Err(Error::Categories {
                        node: node.id(),
                        reason: format!(
                            "factor {fi} gives it {n} categories, an earlier factor {prev}"
                        ),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The factor as the programs take it. Its weights are shared, not copied (a square
/// factor would compile to the same interaction groups).
fn built(f: &DiscreteEBMFactor) -> Arc<dyn AbstractFactor> {
    Arc::new(f.clone())
}

impl TrainingSpec {
    /// A training spec over `factors` (whose weights are the starting point).
    ///
    /// # Errors
    /// [`Error::Invalid`] if a block of one phase is missing from it (every factor node must
    /// be free or clamped in both phases); [`Error::Categories`] for a categorical node with
    /// inconsistent or unknown numbers of categories; as [`BlockGibbsSpec::new`] and
    /// [`BlockSamplingProgram::new`] (for example interacting nodes in one superblock).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        factors: Vec<DiscreteEBMFactor>,
        data_blocks: Vec<Block>,
        conditioning_blocks: Vec<Block>,
        positive_superblocks: Vec<SuperBlock>,
        negative_superblocks: Vec<SuperBlock>,
        schedule_positive: SamplingSchedule,
        schedule_negative: SamplingSchedule,
    ) -> Result<TrainingSpec> {
        let node_shape_dtypes = layouts_of(&factors)?;
        let categories = categories_of(&factors)?;
        let clamped_pos: Vec<Block> = data_blocks
            .iter()
            .chain(&conditioning_blocks)
            .cloned()
            .collect();
        let gibbs_positive = if positive_superblocks.is_empty() {
            None
        } else {
            Some(BlockGibbsSpec::new(
                positive_superblocks.clone(),
                clamped_pos.clone(),
                &node_shape_dtypes,
            )?)
        };
        let gibbs_negative = BlockGibbsSpec::new(
            negative_superblocks.clone(),
            conditioning_blocks.clone(),
            &node_shape_dtypes,
        )?;
        let data_spec = BlockSpec::new(clamped_pos, &node_shape_dtypes)?;
        let stats_spec: &BlockSpec = gibbs_positive.as_deref().unwrap_or(&data_spec);
        let phase_error = |phase: &'static str| {
            move |e: Error| match e {
                Error::UnknownNode { node, kind } => Error::Invalid(format!(
                    "node {node} (kind `{kind}`) of a factor is neither free nor clamped in the {phase} phase"
                )),
                other => other,
            }
        };
        let stats_positive = FactorStatistics::new(&factors, stats_spec)
            .map_err(phase_error("positive"))?
            .capturing_final_state();
        let stats_negative = FactorStatistics::new(&factors, &gibbs_negative)
            .map_err(phase_error("negative"))?
            .capturing_final_state();
        let built: Vec<_> = factors.iter().map(built).collect();
        let program_positive = gibbs_positive
            .as_ref()
            .map(|g| compile(g, &built, &node_shape_dtypes, &categories))
            .transpose()?;
        let program_negative = compile(&gibbs_negative, &built, &node_shape_dtypes, &categories)?;
        Ok(TrainingSpec {
            factors,
            data_blocks,
            conditioning_blocks,
            positive_superblocks,
            negative_superblocks,
            schedule_positive,
            schedule_negative,
            node_shape_dtypes,
            categories,
            gibbs_positive,
            gibbs_negative,
            data_spec,
            program_positive,
            program_negative,
            stats_positive,
            stats_negative,
        })
    }

    /// The trainable factors, with their current weights.
    #[must_use]
    pub fn factors(&self) -> &[DiscreteEBMFactor] {
        &self.factors
    }

    /// The current weight tensors, one per factor.
    #[must_use]
    pub fn weights(&self) -> Vec<ArrayD<f32>> {
        self.factors
            .iter()
            .map(|f| f.weights().to_owned())
            .collect()
    }

    /// The node layouts the programs use.
    #[must_use]
    pub fn node_shape_dtypes(&self) -> &NodeShapeDtypes {
        &self.node_shape_dtypes
    }

    /// Replace every factor's weights (same shapes) and recompile both programs.
    ///
    /// # Errors
    /// [`Error::WeightShape`] for a count or shape mismatch, [`Error::NonFiniteWeight`].
    pub fn set_weights(&mut self, weights: Vec<ArrayD<f32>>) -> Result<()> {
        if weights.len() != self.factors.len() {
            return Err(Error::WeightShape(format!(
                "{} weight tensors for {} factors",
                weights.len(),
                self.factors.len()
            )));
        }
        for (i, (w, f)) in weights.iter().zip(&self.factors).enumerate() {
            if w.shape() != f.weights().shape() {
                return Err(Error::WeightShape(format!(
                    "factor {i}: new weights have shape {:?}, the factor has {:?}",
                    w.shape(),
                    f.weights().shape()
                )));
            }
        }
        let mut built = Vec::with_capacity(weights.len());
        let mut factors = Vec::with_capacity(weights.len());
        for (w, f) in weights.into_iter().zip(&self.factors) {
            let f = DiscreteEBMFactor::new(
                f.spin_node_groups.clone(),
                f.categorical_node_groups.clone(),
                w,
            )?;
            built.push(self::built(&f));
            factors.push(f);
        }
        self.program_positive = self
            .gibbs_positive
            .as_ref()
            .map(|g| compile(g, &built, &self.node_shape_dtypes, &self.categories))
            .transpose()?;
        self.program_negative = compile(
            &self.gibbs_negative,
            &built,
            &self.node_shape_dtypes,
            &self.categories,
        )?;
        self.factors = factors;
        Ok(())
    }

    /// The positive phase program (`None` without latent nodes).
    #[must_use]
    pub fn program_positive(&self) -> Option<&BlockSamplingProgram> {
        self.program_positive.as_ref()
    }

    /// The negative phase program.
    #[must_use]
    pub fn program_negative(&self) -> &BlockSamplingProgram {
        &self.program_negative
    }

    /// The free blocks of the positive phase, in program order.
    #[must_use]
    pub fn positive_free_blocks(&self) -> Vec<Block> {
        self.gibbs_positive
            .as_ref()
            .map_or_else(Vec::new, |g| g.free_blocks.clone())
    }

    /// The free blocks of the negative phase, in program order.
    #[must_use]
    pub fn negative_free_blocks(&self) -> Vec<Block> {
        self.gibbs_negative.free_blocks.clone()
    }

    /// The number of categories of a categorical node (`None` for spins and unknown nodes).
    #[must_use]
    pub fn n_categories(&self, node: Node) -> Option<usize> {
        self.categories.get(&node).copied()
    }

    /// Initial states of `blocks` for `n_chains` chains from the single-node factors alone
    /// (Hinton's heuristic, generalised): a spin with unary weight sum `h` is +1 with
    /// probability `σ(h)` (THRML's `hinton_init` with β folded in); a categorical with unary
    /// logits `θ` takes `k` with probability `softmax(θ)_k`; nodes without a unary factor
    /// are uniform. Chain `c` draws its nodes in block order from stream `c` of `key`, so the
    /// state of a chain does not depend on the number of chains.
    #[must_use]
    pub fn hinton_init(&self, key: Key, blocks: &[Block], n_chains: usize) -> Vec<State> {
        let mut spin_field: HashMap<Node, f64> = HashMap::new();
        let mut logits: HashMap<Node, Vec<f64>> = HashMap::new();
        for f in &self.factors {
            let n_groups = f.spin_node_groups.len() + f.categorical_node_groups.len();
            if n_groups != 1 {
                continue;
            }
            let w = f.weights();
            if let Some(g) = f.spin_node_groups.first() {
                for (b, &n) in g.nodes().iter().enumerate() {
                    *spin_field.entry(n).or_default() += f64::from(w[[b]]);
                }
            } else if let Some(g) = f.categorical_node_groups.first() {
                for (b, &n) in g.nodes().iter().enumerate() {
                    let entry = logits.entry(n).or_insert_with(|| vec![0.0; w.shape()[1]]);
                    for (k, e) in entry.iter_mut().enumerate() {
                        *e += f64::from(w[[b, k]]);
                    }
                }
            }
        }
        let mut rngs = key.chain_rngs(n_chains);
        let mut spins: Vec<Array2<bool>> = Vec::new();
        let mut cats: Vec<Array2<u8>> = Vec::new();
        let is_spin: Vec<bool> = blocks
            .iter()
            .map(|b| {
                self.node_shape_dtypes
                    .get(&b.node_kind())
                    .and_then(StateLayout::scalar_dtype)
                    == Some(DType::Bool)
            })
            .collect();
        for (b, &spin) in blocks.iter().zip(&is_spin) {
            if spin {
                spins.push(Array2::from_elem((n_chains, b.len()), false));
            } else {
                cats.push(Array2::zeros((n_chains, b.len())));
            }
        }
        for (c, rng) in rngs.iter_mut().enumerate() {
            let (mut si, mut ci) = (0, 0);
            for (b, &spin) in blocks.iter().zip(&is_spin) {
                for (j, &n) in b.nodes().iter().enumerate() {
                    if spin {
                        let h = spin_field.get(&n).copied().unwrap_or(0.0);
                        let p = 1.0 / (1.0 + (-h).exp());
                        spins[si][[c, j]] = rng.random::<f64>() < p;
                    } else {
                        let k = self.categories.get(&n).copied().unwrap_or(1);
                        let theta = logits.get(&n).cloned().unwrap_or_else(|| vec![0.0; k]);
                        let max = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let weights: Vec<f64> = theta.iter().map(|t| (t - max).exp()).collect();
                        let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
                        let mut pick = k - 1;
                        for (i, w) in weights.iter().enumerate() {
                            if u < *w {
                                pick = i;
                                break;
                            }
                            u -= w;
                        }
                        cats[ci][[c, j]] = u8::try_from(pick).unwrap_or(u8::MAX);
                    }
                }
                if spin {
                    si += 1;
                } else {
                    ci += 1;
                }
            }
        }
        let (mut spins, mut cats) = (spins.into_iter(), cats.into_iter());
        is_spin
            .iter()
            .map(|&spin| {
                let t = if spin {
                    Tensor::from(spins.next().expect("one per spin block").into_dyn())
                } else {
                    Tensor::from(cats.next().expect("one per categorical block").into_dyn())
                };
                vec![t]
            })
            .collect()
    }
}

/// Compile `gibbs` with the built-in sampler of every free block.
fn compile(
    gibbs: &BlockGibbsSpec,
    factors: &[Arc<dyn AbstractFactor>],
    layouts: &NodeShapeDtypes,
    categories: &HashMap<Node, usize>,
) -> Result<BlockSamplingProgram> {
    let samplers = gibbs
        .free_blocks
        .iter()
        .map(|b| sampler_for(b, layouts, categories))
        .collect::<Result<Vec<_>>>()?;
    Ok(FactorSamplingProgram::new(gibbs.clone(), samplers, factors, vec![])?.into_inner())
}

/// [`SpinGibbsConditional`] for spin blocks, [`CategoricalGibbsConditional`] for the
/// block's number of categories otherwise.
fn sampler_for(
    block: &Block,
    layouts: &NodeShapeDtypes,
    categories: &HashMap<Node, usize>,
) -> Result<Arc<dyn AbstractConditionalSampler>> {
    if layouts
        .get(&block.node_kind())
        .and_then(StateLayout::scalar_dtype)
        == Some(DType::Bool)
    {
        return Ok(Arc::new(SpinGibbsConditional));
    }
    let mut k = None;
    for &n in block.nodes() {
        let Some(&kn) = categories.get(&n) else {
            return Err(Error::Categories {
                node: n.id(),
                reason: "it is free but in no factor, so its number of categories is unknown"
                    .into(),
            });
        };
        if let Some(k) = k
            && k != kn
        {
            return Err(Error::Categories {
                node: n.id(),
                reason: format!("it has {kn} categories, other nodes of its block {k}"),
            });
        }
        k = Some(kn);
    }
    Ok(Arc::new(CategoricalGibbsConditional::new(k.unwrap_or(1))))
}

/// The result of [`estimate_kl_gradient`].
#[derive(Clone, Debug)]
pub struct KlGradient {
    /// `∂KL/∂W = ⟨∂E/∂W⟩₊ − ⟨∂E/∂W⟩₋`, one tensor per factor (of its weight shape).
    pub gradient: Vec<ArrayD<f64>>,
    /// The positive phase sums of `−∂E/∂W` (over chains and observations).
    pub positive: StatisticSums,
    /// The negative phase sums of `−∂E/∂W`.
    pub negative: StatisticSums,
    /// The positive chains' final states, one per positive free block (empty without
    /// latent nodes).
    pub final_positive: Vec<State>,
    /// The negative chains' final states, one per negative free block: the next step's
    /// starting point in persistent contrastive divergence.
    pub final_negative: Vec<State>,
}

impl KlGradient {
    /// The Euclidean norm of the whole gradient.
    #[must_use]
    pub fn norm(&self) -> f64 {
        self.gradient
            .iter()
            .flat_map(|g| g.iter())
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
    }
}

/// Repeat a `[n, ...]` state `reps` times along the chain axis (chain `r · n + i` is row
/// `i`).
pub(crate) fn tile_chains(state: &State, reps: usize) -> State {
    state
        .iter()
        .map(|t| concatenate(0, vec![Cow::Borrowed(t); reps]))
        .collect()
}

/// A `[nodes]` state as `[rows, nodes]`.
fn broadcast_rows(state: &State, rows: usize) -> State {
    state
        .iter()
        .map(|t| {
            if t.ndim() != 1 {
                return t.clone();
            }
            let mut shape = vec![1];
            shape.extend_from_slice(t.shape());
            let one: Tensor = match t {
                Tensor::Bool(a) => {
                    Tensor::Bool(a.to_shape(IxDyn(&shape)).expect("reshape").to_owned())
                }
                Tensor::U8(a) => Tensor::U8(a.to_shape(IxDyn(&shape)).expect("reshape").to_owned()),
                Tensor::I32(a) => {
                    Tensor::I32(a.to_shape(IxDyn(&shape)).expect("reshape").to_owned())
                }
                Tensor::F32(a) => {
                    Tensor::F32(a.to_shape(IxDyn(&shape)).expect("reshape").to_owned())
                }
                Tensor::F64(a) => {
                    Tensor::F64(a.to_shape(IxDyn(&shape)).expect("reshape").to_owned())
                }
            };
            concatenate(0, vec![Cow::Borrowed(&one); rows])
        })
        .collect()
}

/// The number of rows (chains or items) of a list of states, checked to agree.
fn rows_of(states: &[State], what: &str) -> Result<Option<usize>> {
    let mut rows = None;
    for (i, s) in states.iter().enumerate() {
        let Some(t) = s.first() else {
            return Err(Error::Invalid(format!("{what} {i} has no leaves")));
        };
        if t.ndim() < 2 {
            return Err(Error::Invalid(format!(
                "{what} {i} has shape {:?}; expected [rows, nodes]",
                t.shape()
            )));
        }
        let n = t.shape()[0];
        match rows {
            None => rows = Some(n),
            Some(r) if r != n => {
                return Err(Error::Invalid(format!(
                    "{what} {i} has {n} rows, {what} 0 has {r}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(rows)
}

/// Estimate `∂KL/∂W` for every factor of `spec` by sampling both phases.
///
/// * `data[i]`: the state of `data_blocks[i]` for every item of the batch, `[batch, nodes]`.
/// * `conditioning[i]`: the state of `conditioning_blocks[i]`, `[nodes]`, shared by all
///   chains of both phases.
/// * `init_positive[i]`: the initial state of positive free block `i`
///   ([`TrainingSpec::positive_free_blocks`]), `[chains_per_item · batch, nodes]`; chain
///   `p · batch + item` serves data item `item`. Empty without latent nodes.
/// * `init_negative[i]`: the initial state of negative free block `i`, `[chains, nodes]`.
///
/// The two phases use independent streams of `key`. The statistics are summed in place
/// ([`FactorStatistics`]); no sample is stored.
///
/// # Errors
/// [`Error::Invalid`] for a wrong number of states or mismatched batch sizes; as
/// [`sample_with_observation`] for states that do not fit their blocks or values out of
/// range.
pub fn estimate_kl_gradient(
    key: Key,
    spec: &TrainingSpec,
    data: &[State],
    conditioning: &[State],
    init_positive: &[State],
    init_negative: &[State],
) -> Result<KlGradient> {
    if data.len() != spec.data_blocks.len() {
        return Err(Error::Invalid(format!(
            "{} data states for {} data blocks",
            data.len(),
            spec.data_blocks.len()
        )));
    }
    if conditioning.len() != spec.conditioning_blocks.len() {
        return Err(Error::Invalid(format!(
            "{} conditioning states for {} conditioning blocks",
            conditioning.len(),
            spec.conditioning_blocks.len()
        )));
    }
    let batch = rows_of(data, "data state")?.unwrap_or(0);
    if batch == 0 {
        return Err(Error::Invalid("the data batch is empty".into()));
    }
    let key_pos = key.fold_in(0);
    let key_neg = key.fold_in(1);

    let (positive, final_positive) =
        positive_phase(key_pos, spec, data, conditioning, init_positive, batch)?;
    let schedule = &spec.schedule_negative;
    let (carry, _) = sample_with_observation(
        key_neg,
        &spec.program_negative,
        schedule,
        init_negative,
        conditioning,
        spec.stats_negative.init(schedule.n_samples),
        &spec.stats_negative,
    )?;
    let negative = carry.sums;
    let gradient = negative
        .means()
        .into_iter()
        .zip(positive.means())
        .map(|(n, p)| n - p)
        .collect();
    Ok(KlGradient {
        gradient,
        positive,
        negative,
        final_positive,
        final_negative: carry.final_state,
    })
}

/// Run the positive phase (or, without latent nodes, take the data's own statistics).
/// Returns the statistic sums and the final states of the positive free blocks.
pub(crate) fn positive_phase(
    key_pos: Key,
    spec: &TrainingSpec,
    data: &[State],
    conditioning: &[State],
    init_positive: &[State],
    batch: usize,
) -> Result<(StatisticSums, Vec<State>)> {
    match &spec.program_positive {
        Some(program) => {
            let chains = rows_of(init_positive, "positive initial state")?.unwrap_or(0);
            if chains == 0 || chains % batch != 0 {
                return Err(Error::Invalid(format!(
                    "the positive phase has {chains} chains for a batch of {batch}; it needs a positive multiple of the batch (chains per item × batch)"
                )));
            }
            let mut clamp: Vec<State> = data
                .iter()
                .map(|d| tile_chains(d, chains / batch))
                .collect();
            clamp.extend(conditioning.iter().cloned());
            let schedule = &spec.schedule_positive;
            let (carry, _) = sample_with_observation(
                key_pos,
                program,
                schedule,
                init_positive,
                &clamp,
                spec.stats_positive.init(schedule.n_samples),
                &spec.stats_positive,
            )?;
            Ok((carry.sums, carry.final_state))
        }
        None => {
            let mut states: Vec<State> = data.to_vec();
            states.extend(conditioning.iter().map(|c| broadcast_rows(c, batch)));
            crate::block::verify_block_state(
                &spec.data_spec.blocks,
                &states,
                &spec.node_shape_dtypes,
                Some(-1),
            )?;
            let global = block_state_to_global(&states, &spec.data_spec)?;
            let mut sums = spec.stats_positive.zeros();
            spec.stats_positive.accumulate(&global, &mut sums)?;
            Ok((sums, Vec::new()))
        }
    }
}
