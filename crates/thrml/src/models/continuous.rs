//! Continuous (Gaussian) nodes, their factors, and mixed spin/continuous models.
//!
//! Continuous nodes have kind [`NodeKind::CONTINUOUS`](crate::NodeKind::CONTINUOUS) and hold
//! one `f32` each. Four factor types cover Gaussian PGMs and their coupling to spins:
//!
//! | factor | energy | payload |
//! |---|---|---|
//! | [`LinearFactor`] | `E = Σ_b b[b] x[b]` | [`LinearInteraction`] |
//! | [`QuadraticFactor`] | `E = ½ Σ_b a[b] x[b]²`, `a > 0` | [`QuadraticInteraction`] |
//! | [`CouplingFactor`] | `E = Σ_b w[b] x_i[b] x_j[b]` | [`CouplingInteraction`] |
//! | [`SpinContinuousFactor`] | `E = −Σ_b w[b] s[b] x[b]`, `s ∈ {−1, +1}` | [`SpinContinuousInteraction`] |
//!
//! A Gaussian model `E(x) = ½ xᵀA x + bᵀx` is one linear factor (`b`), one quadratic factor
//! (the diagonal `A_ii`) and one coupling factor per set of edges (`A_ij`, each edge once).
//! Its density `p(x) ∝ exp(−E)` is `N(−A⁻¹b, A⁻¹)`, and fixing everything but `x_i` gives
//!
//! ```text
//! x_i | rest ~ N(μ_i, 1 / A_ii),   μ_i = −(b_i + Σ_{j≠i} A_ij x_j − Σ_k w_ik s_k) / A_ii,
//! ```
//!
//! the update of [`GaussianGibbsConditional`] (the last sum is over spin–continuous factors).
//! The built-in spin sampler [`SpinGibbsConditional`](crate::SpinGibbsConditional) reads
//! continuous neighbours too: a spin–continuous factor adds `w x` to the spin's field γ
//! (`P(s) ∝ exp(γ s)`).
//!
//! Blocks updated by these samplers always run on the generic (per-chain ChaCha) path: the
//! fused kernels only compile blocks whose interactions are all discrete.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use thrml::*;
//!
//! // Two coupled Gaussians: E = ½(2 x₀² + 2 x₁²) + 0.5 x₀ x₁ + x₀.
//! let x = Node::many(NodeKind::CONTINUOUS, 2);
//! let all = Block::new(x.clone())?;
//! let factors: Vec<Arc<dyn EBMFactor>> = vec![
//!     Arc::new(LinearFactor::new(all.clone(), vec![1.0, 0.0])?),
//!     Arc::new(QuadraticFactor::new(all, vec![2.0, 2.0])?),
//!     Arc::new(CouplingFactor::new(Block::new(vec![x[0]])?, Block::new(vec![x[1]])?, vec![0.5])?),
//! ];
//! // x₀ and x₁ interact, so they are updated in two blocks.
//! let blocks = vec![Block::new(vec![x[0]])?, Block::new(vec![x[1]])?];
//! let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes())?;
//! let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
//! let program = FactorSamplingProgram::new(spec, vec![gauss.clone(), gauss], &factors, vec![])?;
//! let init = make_empty_block_state(&blocks, &default_node_shape_dtypes(), Some(&[64]))?;
//! let schedule = SamplingSchedule::new(20, 50, 1)?;
//! let samples = sample_states(Key::new(0), &program, &schedule, &init, &[], &blocks)?;
//! let x0 = samples[0][0].view::<f32>().unwrap();
//! // E[x₀] = −(A⁻¹ b)₀ = −2 / 3.75 ≈ −0.53.
//! let mean = x0.iter().map(|&v| f64::from(v)).sum::<f64>() / x0.len() as f64;
//! assert!((mean + 0.533).abs() < 0.1, "{mean}");
//! # Ok::<(), thrml::Error>(())
//! ```

use ndarray::{Array1, Array2};
use rand_distr::{Distribution, StandardNormal};

use crate::block::{Block, BlockSpec, from_global_state};
use crate::error::{Error, Result};
use crate::factor::{AbstractFactor, check_node_groups};
use crate::interaction::{Interaction, InteractionGroup};
use crate::models::ebm::{EBMFactor, batch_len};
use crate::pgm::{DType, StateLayout};
use crate::rng::ChainRng;
use crate::sampler::{AbstractConditionalSampler, BlockInteraction, SamplerInputs, SamplerState};
use crate::state::{Element, State};

// ---------------------------------------------------------------------------------------
// Interaction payloads
// ---------------------------------------------------------------------------------------

macro_rules! payload {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            /// One value per head node (row) of the interaction group.
            pub $field: Vec<f32>,
        }

        impl Interaction for $name {
            fn n_rows(&self) -> usize {
                self.$field.len()
            }
        }
    };
}

payload!(
    /// `b x_head`, no tails: the payload of [`LinearFactor`].
    LinearInteraction,
    weights
);
payload!(
    /// `½ a x_head²`, no tails: the payload of [`QuadraticFactor`]; `a` is the head's
    /// precision contribution.
    QuadraticInteraction,
    precisions
);
payload!(
    /// `w x_head x_tail`, one continuous tail: the payload of [`CouplingFactor`].
    CouplingInteraction,
    weights
);
payload!(
    /// `−w s x`, one tail: a spin tail for a continuous head, a continuous tail for a spin
    /// head. The payload of [`SpinContinuousFactor`].
    SpinContinuousInteraction,
    weights
);

// ---------------------------------------------------------------------------------------
// Factors
// ---------------------------------------------------------------------------------------

/// Check `n_groups` groups of one length, one finite weight per instance.
fn check_factor(
    factor: &'static str,
    groups: &[Block],
    n_groups: usize,
    weights: &[f32],
) -> Result<()> {
    check_node_groups(groups)?;
    if groups.len() != n_groups {
        return Err(Error::FactorGroups(format!(
            "{factor} needs {n_groups} node groups, got {}",
            groups.len()
        )));
    }
    if weights.len() != groups[0].len() {
        return Err(Error::WeightShape(format!(
            "{factor}: {} weights for {} factor instances",
            weights.len(),
            groups[0].len()
        )));
    }
    if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
        return Err(Error::NonFiniteFactorWeight {
            factor,
            index,
            value: f64::from(weights[index]),
        });
    }
    Ok(())
}

/// The scalar states of `block` in a batched global state, as `[M, len(block)]` `f64`s.
fn gather<T: Element>(
    global: &[State],
    spec: &BlockSpec,
    block: &Block,
    value: impl Fn(T) -> f64,
) -> Result<Array2<f64>> {
    let m = batch_len(global);
    let state = from_global_state(global, spec, std::slice::from_ref(block))?
        .pop()
        .expect("one block");
    let view = state[0].view::<T>().ok_or_else(|| {
        Error::Invalid(format!(
            "nodes of kind `{}` must hold scalar {} states, got {}",
            block.node_kind(),
            T::DTYPE,
            state[0].dtype()
        ))
    })?;
    let view = view
        .to_shape((m, block.len()))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(view.mapv(value))
}

fn x_value(x: f32) -> f64 {
    f64::from(x)
}

fn s_value(s: bool) -> f64 {
    if s { 1.0 } else { -1.0 }
}

/// `Σ_b w[b] Π_g v_g[m, b]` for every batch row `m`.
fn weighted_products(weights: &[f32], values: &[Array2<f64>]) -> Array1<f64> {
    let m = values[0].nrows();
    Array1::from_shape_fn(m, |r| {
        weights
            .iter()
            .enumerate()
            .map(|(b, &w)| f64::from(w) * values.iter().map(|v| v[[r, b]]).product::<f64>())
            .sum()
    })
}

/// Linear terms `E = Σ_b b[b] x[b]` over one group of continuous nodes (the `bᵀx` of a
/// Gaussian model).
#[derive(Clone, Debug)]
pub struct LinearFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl LinearFactor {
    /// Linear terms with one weight per node of `nodes`.
    ///
    /// # Errors
    /// [`Error::WeightShape`] if the lengths differ, [`Error::NonFiniteFactorWeight`].
    pub fn new(nodes: Block, weights: Vec<f32>) -> Result<Self> {
        let groups = vec![nodes];
        check_factor("LinearFactor", &groups, 1, &weights)?;
        Ok(LinearFactor { groups, weights })
    }

    /// The weights `b`.
    #[must_use]
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

impl AbstractFactor for LinearFactor {
    fn node_groups(&self) -> &[Block] {
        &self.groups
    }

    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        let payload = LinearInteraction {
            weights: self.weights.clone(),
        };
        vec![InteractionGroup::new(payload, self.groups[0].clone(), vec![]).expect("checked")]
    }
}

impl EBMFactor for LinearFactor {
    fn energy(&self, global: &[State], spec: &BlockSpec) -> Result<Array1<f64>> {
        let x = gather(global, spec, &self.groups[0], x_value)?;
        Ok(weighted_products(&self.weights, &[x]))
    }
}

/// Quadratic terms `E = ½ Σ_b a[b] x[b]²`, `a > 0`, over one group of continuous nodes (the
/// diagonal `A_ii` of a Gaussian model; several quadratic terms on one node add up).
#[derive(Clone, Debug)]
pub struct QuadraticFactor {
    groups: Vec<Block>,
    precisions: Vec<f32>,
}

impl QuadraticFactor {
    /// Quadratic terms with one precision per node of `nodes`.
    ///
    /// # Errors
    /// [`Error::WeightShape`], [`Error::NonFiniteFactorWeight`], and
    /// [`Error::NonPositivePrecision`] naming the node whose precision is `≤ 0`.
    pub fn new(nodes: Block, precisions: Vec<f32>) -> Result<Self> {
        let groups = vec![nodes];
        check_factor("QuadraticFactor", &groups, 1, &precisions)?;
        if let Some(index) = precisions.iter().position(|&a| a <= 0.0) {
            let node = groups[0][index];
            return Err(Error::NonPositivePrecision {
                node: node.id(),
                kind: node.kind().name().to_owned(),
                index,
                value: f64::from(precisions[index]),
            });
        }
        Ok(QuadraticFactor { groups, precisions })
    }

    /// The precisions `a`.
    #[must_use]
    pub fn precisions(&self) -> &[f32] {
        &self.precisions
    }
}

impl AbstractFactor for QuadraticFactor {
    fn node_groups(&self) -> &[Block] {
        &self.groups
    }

    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        let payload = QuadraticInteraction {
            precisions: self.precisions.clone(),
        };
        vec![InteractionGroup::new(payload, self.groups[0].clone(), vec![]).expect("checked")]
    }
}

impl EBMFactor for QuadraticFactor {
    fn energy(&self, global: &[State], spec: &BlockSpec) -> Result<Array1<f64>> {
        let x = gather(global, spec, &self.groups[0], |v: f32| f64::from(v).powi(2))?;
        Ok(weighted_products(&self.precisions, &[x]) * 0.5)
    }
}

/// Pairwise couplings `E = Σ_b w[b] x_i[b] x_j[b]` between two groups of continuous nodes
/// (the off-diagonal `A_ij` of a Gaussian model, each edge once).
#[derive(Clone, Debug)]
pub struct CouplingFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl CouplingFactor {
    /// Couplings between `a[b]` and `b[b]` with weight `weights[b]`.
    ///
    /// # Errors
    /// [`Error::FactorGroups`] if the groups differ in length, [`Error::WeightShape`],
    /// [`Error::NonFiniteFactorWeight`].
    pub fn new(a: Block, b: Block, weights: Vec<f32>) -> Result<Self> {
        let groups = vec![a, b];
        check_factor("CouplingFactor", &groups, 2, &weights)?;
        Ok(CouplingFactor { groups, weights })
    }

    /// The weights `w`.
    #[must_use]
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

impl AbstractFactor for CouplingFactor {
    fn node_groups(&self) -> &[Block] {
        &self.groups
    }

    /// One interaction group per direction: each end is updated from the other.
    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        let [a, b] = [&self.groups[0], &self.groups[1]];
        [(a, b), (b, a)]
            .into_iter()
            .map(|(head, tail)| {
                let payload = CouplingInteraction {
                    weights: self.weights.clone(),
                };
                InteractionGroup::new(payload, head.clone(), vec![tail.clone()]).expect("checked")
            })
            .collect()
    }
}

impl EBMFactor for CouplingFactor {
    fn energy(&self, global: &[State], spec: &BlockSpec) -> Result<Array1<f64>> {
        let xa = gather(global, spec, &self.groups[0], x_value)?;
        let xb = gather(global, spec, &self.groups[1], x_value)?;
        Ok(weighted_products(&self.weights, &[xa, xb]))
    }
}

/// Spin–continuous couplings `E = −Σ_b w[b] s[b] x[b]` between a group of spins
/// (`s ∈ {−1, +1}`) and a group of continuous nodes.
///
/// Given the spins, `x` feels the linear term `−w s`, so its conditional mean shifts by
/// `w s / A_ii`; given `x`, the spin's field γ gains `w x`.
#[derive(Clone, Debug)]
pub struct SpinContinuousFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl SpinContinuousFactor {
    /// Couplings between `spins[b]` and `xs[b]` with weight `weights[b]`.
    ///
    /// # Errors
    /// [`Error::FactorGroups`] if the groups differ in length, [`Error::WeightShape`],
    /// [`Error::NonFiniteFactorWeight`].
    pub fn new(spins: Block, xs: Block, weights: Vec<f32>) -> Result<Self> {
        let groups = vec![spins, xs];
        check_factor("SpinContinuousFactor", &groups, 2, &weights)?;
        Ok(SpinContinuousFactor { groups, weights })
    }

    /// The weights `w`.
    #[must_use]
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

impl AbstractFactor for SpinContinuousFactor {
    fn node_groups(&self) -> &[Block] {
        &self.groups
    }

    fn to_interaction_groups(&self) -> Vec<InteractionGroup> {
        let [s, x] = [&self.groups[0], &self.groups[1]];
        [(s, x), (x, s)]
            .into_iter()
            .map(|(head, tail)| {
                let payload = SpinContinuousInteraction {
                    weights: self.weights.clone(),
                };
                InteractionGroup::new(payload, head.clone(), vec![tail.clone()]).expect("checked")
            })
            .collect()
    }
}

impl EBMFactor for SpinContinuousFactor {
    fn energy(&self, global: &[State], spec: &BlockSpec) -> Result<Array1<f64>> {
        let s = gather(global, spec, &self.groups[0], s_value)?;
        let x = gather(global, spec, &self.groups[1], x_value)?;
        Ok(-weighted_products(&self.weights, &[s, x]))
    }
}

// ---------------------------------------------------------------------------------------
// The Gaussian sampler
// ---------------------------------------------------------------------------------------

/// The scalar dtype of each tail of `bi`.
pub(crate) fn tail_dtypes(bi: &BlockInteraction, spec: &BlockSpec) -> Vec<Option<DType>> {
    bi.tails()
        .iter()
        .map(|t| spec.global_sd_order[t.slot].scalar_dtype())
        .collect()
}

/// Add `w x` of every spin–continuous entry to the spin fields `gamma` (`[chains, nodes]`).
pub(crate) fn accumulate_spin_field(
    bi: &BlockInteraction,
    k: &SpinContinuousInteraction,
    inputs: &SamplerInputs<'_>,
    gamma: &mut Array2<f32>,
) {
    let t = &bi.tails()[0];
    let xs = inputs.leaf::<f32>(t.slot, 0);
    for (c, mut row) in gamma.rows_mut().into_iter().enumerate() {
        let base = c * t.slot_size;
        for (j, g) in row.iter_mut().enumerate() {
            *g += bi
                .entries(j)
                .map(|e| k.weights[bi.row(e)] * xs[base + t.position(e)])
                .sum::<f32>();
        }
    }
}

/// Scratch buffers kept in the sampler state, so that a sweep does not allocate.
#[derive(Debug)]
struct GaussianScratch {
    precision: Vec<f32>,
    /// `1 / √precision`.
    sd: Vec<f32>,
    /// `b_i + Σ_j A_ij x_j − Σ_k w_ik s_k`, `[chains, nodes]`.
    field: Vec<f32>,
}

/// Gibbs update of continuous nodes (one `f32` each) from the built-in continuous factors.
///
/// For node `i` of the block, with `A_ii` the sum of its quadratic terms,
///
/// ```text
/// h_i = b_i + Σ_j A_ij x_j − Σ_k w_ik s_k      (linear, coupling, spin–continuous terms)
/// x_i ~ N(−h_i / A_ii, 1 / A_ii)
/// ```
///
/// which is the exact conditional of `p ∝ exp(−E)` for
/// `E = Σ b x + ½ Σ a x² + Σ w x_i x_j − Σ w s x`.
///
/// `validate` rejects any other interaction type, tails of the wrong dtype, and any node
/// whose total precision is not positive (naming its position in the block).
#[derive(Clone, Copy, Debug, Default)]
pub struct GaussianGibbsConditional;

impl GaussianGibbsConditional {
    /// Validate one compiled interaction for a continuous block: `Ok(true)` if it is a
    /// well-formed built-in continuous interaction, `Ok(false)` if it is some other type.
    ///
    /// # Errors
    /// A built-in continuous interaction whose tails do not fit a continuous head.
    pub fn check_interaction(bi: &BlockInteraction, spec: &BlockSpec) -> Result<bool, String> {
        let tails = tail_dtypes(bi, spec);
        let (want, what): (&[Option<DType>], &str) = if bi.downcast::<LinearInteraction>().is_some()
        {
            (&[], "a linear")
        } else if bi.downcast::<QuadraticInteraction>().is_some() {
            (&[], "a quadratic")
        } else if bi.downcast::<CouplingInteraction>().is_some() {
            (&[Some(DType::F32)], "a coupling")
        } else if bi.downcast::<SpinContinuousInteraction>().is_some() {
            (&[Some(DType::Bool)], "a spin–continuous")
        } else {
            return Ok(false);
        };
        if tails == want {
            Ok(true)
        } else {
            Err(format!(
                "{what} interaction on a continuous head needs tails of dtypes {want:?}, got {tails:?}"
            ))
        }
    }

    /// The total precision `A_ii` of each node of a block (`n_nodes` of them).
    fn precisions(interactions: &[BlockInteraction], n_nodes: usize, out: &mut [f32]) {
        out[..n_nodes].fill(0.0);
        for bi in interactions {
            if let Some(q) = bi.downcast::<QuadraticInteraction>() {
                for (j, p) in out.iter_mut().enumerate().take(n_nodes) {
                    *p += bi.entries(j).map(|e| q.precisions[bi.row(e)]).sum::<f32>();
                }
            }
        }
    }
}

impl AbstractConditionalSampler for GaussianGibbsConditional {
    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> Result<(), String> {
        if output_layout.scalar_dtype() != Some(DType::F32) {
            return Err(format!(
                "GaussianGibbsConditional needs nodes holding one f32, got {output_layout:?}"
            ));
        }
        for bi in interactions {
            if !Self::check_interaction(bi, spec)? {
                return Err(format!(
                    "GaussianGibbsConditional cannot handle interactions of type {:?}",
                    bi.interaction()
                ));
            }
        }
        let n = interactions.first().map_or(0, BlockInteraction::n_nodes);
        let mut precision = vec![0.0; n];
        Self::precisions(interactions, n, &mut precision);
        if n == 0 {
            return Err(
                "the block has no quadratic terms: its conditional is not normalisable".into(),
            );
        }
        match precision.iter().position(|&p| !(p > 0.0 && p.is_finite())) {
            Some(j) => Err(format!(
                "node at position {j} of the block has total precision {} (the sum of its quadratic terms); it must be positive, or the conditional is not normalisable",
                precision[j]
            )),
            None => Ok(()),
        }
    }

    fn init(&self, block: &Block, n_chains: usize) -> SamplerState {
        SamplerState::new(GaussianScratch {
            precision: vec![0.0; block.len()],
            sd: vec![0.0; block.len()],
            field: vec![0.0; n_chains * block.len()],
        })
    }

    fn sample(
        &self,
        rngs: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        sampler_state: &mut SamplerState,
        out: &mut State,
    ) {
        let (n, chains) = (inputs.n_nodes(), inputs.n_chains);
        if sampler_state.get::<GaussianScratch>().is_none() {
            *sampler_state = self.init(inputs.block, chains);
        }
        let GaussianScratch {
            precision,
            sd,
            field,
        } = sampler_state
            .get_mut::<GaussianScratch>()
            .expect("made above");
        field.resize(chains * n, 0.0);
        field.fill(0.0);
        Self::precisions(inputs.interactions, n, precision);
        for bi in inputs.interactions {
            if let Some(l) = bi.downcast::<LinearInteraction>() {
                for j in 0..n {
                    let b: f32 = bi.entries(j).map(|e| l.weights[bi.row(e)]).sum();
                    for c in 0..chains {
                        field[c * n + j] += b;
                    }
                }
            } else if let Some(k) = bi.downcast::<CouplingInteraction>() {
                let t = &bi.tails()[0];
                let xs = inputs.leaf::<f32>(t.slot, 0);
                for c in 0..chains {
                    let base = c * t.slot_size;
                    for j in 0..n {
                        field[c * n + j] += bi
                            .entries(j)
                            .map(|e| k.weights[bi.row(e)] * xs[base + t.position(e)])
                            .sum::<f32>();
                    }
                }
            } else if let Some(k) = bi.downcast::<SpinContinuousInteraction>() {
                let t = &bi.tails()[0];
                let spins = inputs.leaf::<bool>(t.slot, 0);
                for c in 0..chains {
                    let base = c * t.slot_size;
                    for j in 0..n {
                        field[c * n + j] -= bi
                            .entries(j)
                            .map(|e| {
                                let w = k.weights[bi.row(e)];
                                if spins[base + t.position(e)] { w } else { -w }
                            })
                            .sum::<f32>();
                    }
                }
            }
        }
        for (s, p) in sd.iter_mut().zip(precision.iter()) {
            *s = p.sqrt().recip();
        }
        let xs = out[0].as_slice_mut::<f32>().expect("f32 output");
        for (c, rng) in rngs.iter_mut().enumerate().take(chains) {
            for j in 0..n {
                let z: f32 = StandardNormal.sample(rng);
                xs[c * n + j] = -field[c * n + j] / precision[j] + z * sd[j];
            }
        }
    }
}
