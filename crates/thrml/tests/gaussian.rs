//! The extension API as an external user sees it: Gaussian and mixed spin/continuous PGMs.
//!
//! Both models are built from user node kinds, factors, interactions and samplers, and
//! checked against closed-form Gaussian results.
//!
//! This ports the Gaussian PGM of THRML's "All of THRML" notebook. Nothing here is built into
//! the library: the `continuous` node kind, the linear / quadratic / coupling factors (and
//! their interaction payloads), and the Gaussian conditional sampler are all user code,
//! plugged in through [`NodeShapeDtypes`], [`AbstractFactor`] / [`EBMFactor`],
//! [`Interaction`] and [`AbstractConditionalSampler`].
//!
//! The density is `p(x) ∝ exp(−½ xᵀA x − bᵀx)`, so the conditional of `x_i` is normal with
//! precision `A_ii` and mean `−(b_i + Σ_{j≠i} A_ij x_j) / A_ii`; the stationary covariance
//! is `A⁻¹`, computed here by Gauss–Jordan elimination.
//!
//! The mixed model adds spins with a spin–continuous coupling `E = −Σ w s x`. Integrating
//! the Gaussian out analytically gives the exact spin marginal
//! `P(s) ∝ exp(−E_spin(s) + ½ h(s)ᵀ A⁻¹ h(s))` with `h(s) = b − W s`, and the exact
//! conditional `x | s ~ N(−A⁻¹ h(s), A⁻¹)`.

mod common;

use common::linalg::{invert, mat_vec};

use std::sync::Arc;

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;
use thrml::graph::{checkerboard, grid_edges};
use thrml::*;

// ---------------------------------------------------------------------------------------
// The user node kind
// ---------------------------------------------------------------------------------------

/// The user-defined continuous node kind.
fn continuous() -> NodeKind {
    NodeKind::new("continuous")
}

/// THRML's default layouts plus continuous nodes holding one `f32`.
fn layouts() -> NodeShapeDtypes {
    let mut l = default_node_shape_dtypes();
    l.insert(continuous(), StateLayout::scalar(DType::F32));
    l
}

// ---------------------------------------------------------------------------------------
// User interaction payloads (one row per head node)
// ---------------------------------------------------------------------------------------

/// `b x_head`: no tails.
#[derive(Debug)]
struct LinearInteraction {
    weights: Vec<f32>,
}

/// `½ a x_head²`: no tails; `a` is the precision contribution.
#[derive(Debug)]
struct QuadraticInteraction {
    precisions: Vec<f32>,
}

/// `w x_head x_tail`: one continuous tail.
#[derive(Debug)]
struct CouplingInteraction {
    weights: Vec<f32>,
}

/// `−w s x`: one tail, a spin for a continuous head and a continuous node for a spin head.
#[derive(Debug)]
struct SpinContinuousInteraction {
    weights: Vec<f32>,
}

impl Interaction for LinearInteraction {
    fn n_rows(&self) -> usize {
        self.weights.len()
    }
}

impl Interaction for QuadraticInteraction {
    fn n_rows(&self) -> usize {
        self.precisions.len()
    }
}

impl Interaction for CouplingInteraction {
    fn n_rows(&self) -> usize {
        self.weights.len()
    }
}

impl Interaction for SpinContinuousInteraction {
    fn n_rows(&self) -> usize {
        self.weights.len()
    }
}

// ---------------------------------------------------------------------------------------
// User factors
// ---------------------------------------------------------------------------------------

/// Check that a factor has `n_groups` groups of one length and one weight per instance.
fn check_factor(groups: &[Block], n_groups: usize, weights: &[f32]) -> thrml::Result<()> {
    thrml::factor::check_node_groups(groups)?;
    if groups.len() != n_groups {
        return Err(Error::FactorGroups(format!(
            "expected {n_groups} node groups, got {}",
            groups.len()
        )));
    }
    if weights.len() != groups[0].len() {
        return Err(Error::WeightShape(format!(
            "{} weights for {} factor instances",
            weights.len(),
            groups[0].len()
        )));
    }
    if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
        return Err(Error::NonFiniteWeight {
            index,
            value: f64::from(weights[index]),
        });
    }
    Ok(())
}

/// The scalar states of `block` in a batched global state, as `[M, len(block)]`.
fn gather<T: Element>(
    global: &[State],
    spec: &BlockSpec,
    block: &Block,
) -> thrml::Result<Array2<T>> {
    let state = from_global_state(global, spec, std::slice::from_ref(block))?
        .pop()
        .expect("one block");
    let view = state[0].view::<T>().ok_or_else(|| {
        Error::Invalid(format!(
            "nodes of kind `{}` must hold {} states, got {}",
            block.node_kind(),
            T::DTYPE,
            state[0].dtype()
        ))
    })?;
    let m = if view.ndim() >= 2 { view.shape()[0] } else { 1 };
    Ok(view
        .to_shape((m, block.len()))
        .map_err(|e| Error::Invalid(e.to_string()))?
        .to_owned())
}

fn pm1(s: bool) -> f64 {
    if s { 1.0 } else { -1.0 }
}

/// `E = Σ_b w_b x_b` over one group of continuous nodes.
#[derive(Debug)]
struct LinearFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl LinearFactor {
    fn new(nodes: Block, weights: Vec<f32>) -> thrml::Result<Self> {
        let groups = vec![nodes];
        check_factor(&groups, 1, &weights)?;
        Ok(LinearFactor { groups, weights })
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
    fn energy(&self, global: &[State], spec: &BlockSpec) -> thrml::Result<Array1<f64>> {
        let x = gather::<f32>(global, spec, &self.groups[0])?;
        Ok(x.rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .zip(&self.weights)
                    .map(|(&x, &w)| f64::from(w) * f64::from(x))
                    .sum()
            })
            .collect())
    }
}

/// `E = ½ Σ_b a_b x_b²` over one group of continuous nodes: the diagonal of `A`.
#[derive(Debug)]
struct QuadraticFactor {
    groups: Vec<Block>,
    precisions: Vec<f32>,
}

impl QuadraticFactor {
    fn new(nodes: Block, precisions: Vec<f32>) -> thrml::Result<Self> {
        let groups = vec![nodes];
        check_factor(&groups, 1, &precisions)?;
        if let Some(&a) = precisions.iter().find(|&&a| a <= 0.0) {
            return Err(Error::Invalid(format!(
                "a quadratic factor needs positive precisions, got {a}"
            )));
        }
        Ok(QuadraticFactor { groups, precisions })
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
    fn energy(&self, global: &[State], spec: &BlockSpec) -> thrml::Result<Array1<f64>> {
        let x = gather::<f32>(global, spec, &self.groups[0])?;
        Ok(x.rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .zip(&self.precisions)
                    .map(|(&x, &a)| 0.5 * f64::from(a) * f64::from(x).powi(2))
                    .sum()
            })
            .collect())
    }
}

/// `E = Σ_b w_b x_a[b] x_b[b]` over two groups of continuous nodes: the off-diagonal of `A`.
#[derive(Debug)]
struct CouplingFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl CouplingFactor {
    fn new(a: Block, b: Block, weights: Vec<f32>) -> thrml::Result<Self> {
        let groups = vec![a, b];
        check_factor(&groups, 2, &weights)?;
        Ok(CouplingFactor { groups, weights })
    }
}

impl AbstractFactor for CouplingFactor {
    fn node_groups(&self) -> &[Block] {
        &self.groups
    }

    /// One group per direction: each end is updated from the other.
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
    fn energy(&self, global: &[State], spec: &BlockSpec) -> thrml::Result<Array1<f64>> {
        let xa = gather::<f32>(global, spec, &self.groups[0])?;
        let xb = gather::<f32>(global, spec, &self.groups[1])?;
        Ok(Array1::from_shape_fn(xa.nrows(), |m| {
            self.weights
                .iter()
                .enumerate()
                .map(|(k, &w)| f64::from(w) * f64::from(xa[[m, k]]) * f64::from(xb[[m, k]]))
                .sum()
        }))
    }
}

/// `E = −Σ_b w_b s[b] x[b]` between a group of spins and a group of continuous nodes.
#[derive(Debug)]
struct SpinContinuousFactor {
    groups: Vec<Block>,
    weights: Vec<f32>,
}

impl SpinContinuousFactor {
    fn new(spins: Block, xs: Block, weights: Vec<f32>) -> thrml::Result<Self> {
        let groups = vec![spins, xs];
        check_factor(&groups, 2, &weights)?;
        Ok(SpinContinuousFactor { groups, weights })
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
    fn energy(&self, global: &[State], spec: &BlockSpec) -> thrml::Result<Array1<f64>> {
        let s = gather::<bool>(global, spec, &self.groups[0])?;
        let x = gather::<f32>(global, spec, &self.groups[1])?;
        Ok(Array1::from_shape_fn(s.nrows(), |m| {
            -self
                .weights
                .iter()
                .enumerate()
                .map(|(k, &w)| f64::from(w) * pm1(s[[m, k]]) * f64::from(x[[m, k]]))
                .sum::<f64>()
        }))
    }
}

// ---------------------------------------------------------------------------------------
// User samplers
// ---------------------------------------------------------------------------------------

/// The scalar dtype of each tail of `bi`.
fn tail_dtypes(bi: &BlockInteraction, spec: &BlockSpec) -> Vec<Option<DType>> {
    bi.tails()
        .iter()
        .map(|t| spec.global_sd_order[t.slot].scalar_dtype())
        .collect()
}

/// Scratch buffers kept in the sampler state, so a sweep does not allocate.
#[derive(Debug)]
struct GaussianScratch {
    precision: Vec<f32>,
    /// `1 / √precision`.
    sd: Vec<f32>,
    /// `b_i + Σ_j A_ij x_j − Σ_k w_k s_k`, `[chains, nodes]`.
    field: Vec<f32>,
}

/// Gibbs update of continuous nodes: `x_i ~ N(−field_i / a_i, 1 / a_i)`, where `a_i` sums the
/// quadratic terms and `field_i` the linear, coupling and spin–continuous terms.
#[derive(Debug)]
struct GaussianSampler;

impl AbstractConditionalSampler for GaussianSampler {
    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> std::result::Result<(), String> {
        if output_layout.scalar_dtype() != Some(DType::F32) {
            return Err(format!(
                "GaussianSampler needs nodes holding one f32, got {output_layout:?}"
            ));
        }
        let mut has_precision: Option<Vec<bool>> = None;
        for bi in interactions {
            let tails = tail_dtypes(bi, spec);
            let ok = if let Some(q) = bi.downcast::<QuadraticInteraction>() {
                let covered = has_precision.get_or_insert_with(|| vec![false; bi.n_nodes()]);
                for (j, c) in covered.iter_mut().enumerate() {
                    *c |= bi.entries(j).any(|e| q.precisions[bi.row(e)] > 0.0);
                }
                tails.is_empty()
            } else if bi.downcast::<LinearInteraction>().is_some() {
                tails.is_empty()
            } else if bi.downcast::<CouplingInteraction>().is_some() {
                tails == [Some(DType::F32)]
            } else if bi.downcast::<SpinContinuousInteraction>().is_some() {
                tails == [Some(DType::Bool)]
            } else {
                return Err(format!(
                    "GaussianSampler cannot handle interactions of type {:?}",
                    bi.interaction()
                ));
            };
            if !ok {
                return Err(format!(
                    "interaction {:?} has tails of dtypes {tails:?}",
                    bi.interaction()
                ));
            }
        }
        match has_precision {
            Some(covered) if covered.iter().all(|&c| c) => Ok(()),
            Some(covered) => Err(format!(
                "node {} of the block has no positive quadratic term: its conditional is not normalisable",
                covered.iter().position(|&c| !c).expect("one uncovered")
            )),
            None => {
                Err("the block has no quadratic terms: its conditional is not normalisable".into())
            }
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
        let scratch = sampler_state
            .get_mut::<GaussianScratch>()
            .expect("state made by init");
        scratch.precision.fill(0.0);
        scratch.field.fill(0.0);
        let GaussianScratch {
            precision,
            sd,
            field,
        } = scratch;
        for bi in inputs.interactions {
            if let Some(q) = bi.downcast::<QuadraticInteraction>() {
                for (j, p) in precision.iter_mut().enumerate() {
                    *p += bi.entries(j).map(|e| q.precisions[bi.row(e)]).sum::<f32>();
                }
            } else if let Some(l) = bi.downcast::<LinearInteraction>() {
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
            } else {
                unreachable!("validate rejects other interactions");
            }
        }
        let xs = out[0].as_slice_mut::<f32>().expect("f32 output");
        for (s, p) in sd.iter_mut().zip(precision.iter()) {
            *s = p.sqrt().recip();
        }
        for (c, rng) in rngs.iter_mut().enumerate().take(chains) {
            for j in 0..n {
                let z: f32 = rng.sample(StandardNormal);
                xs[c * n + j] = -field[c * n + j] / precision[j] + z * sd[j];
            }
        }
    }
}

/// Gibbs update of spins that also feel continuous nodes: the discrete interactions go
/// through [`SpinGibbsConditional::accumulate`], the spin–continuous ones add `w x` to the
/// field γ here, and the draw is [`BernoulliConditional`]'s.
#[derive(Debug)]
struct MixedSpinSampler;

impl AbstractParametricConditionalSampler for MixedSpinSampler {
    type Parameters = Array2<f32>;

    fn validate(
        &self,
        interactions: &[BlockInteraction],
        spec: &BlockSpec,
        output_layout: &StateLayout,
    ) -> std::result::Result<(), String> {
        if output_layout.scalar_dtype() != Some(DType::Bool) {
            return Err(format!(
                "MixedSpinSampler needs spin nodes, got {output_layout:?}"
            ));
        }
        for bi in interactions {
            if SpinGibbsConditional::check_interaction(bi, spec)? {
                continue;
            }
            if bi.downcast::<SpinContinuousInteraction>().is_none()
                || tail_dtypes(bi, spec) != [Some(DType::F32)]
            {
                return Err(format!(
                    "MixedSpinSampler cannot handle interaction {:?}",
                    bi.interaction()
                ));
            }
        }
        Ok(())
    }

    fn compute_parameters(
        &self,
        _: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        _: &SamplerState,
    ) -> Array2<f32> {
        let mut gamma = Array2::zeros((inputs.n_chains, inputs.n_nodes()));
        for bi in inputs.interactions {
            if SpinGibbsConditional::accumulate(bi, inputs, &mut gamma) {
                continue;
            }
            let k = bi
                .downcast::<SpinContinuousInteraction>()
                .expect("validated");
            let t = &bi.tails()[0];
            let xs = inputs.leaf::<f32>(t.slot, 0);
            for c in 0..inputs.n_chains {
                for j in 0..inputs.n_nodes() {
                    gamma[[c, j]] += bi
                        .entries(j)
                        .map(|e| k.weights[bi.row(e)] * xs[c * t.slot_size + t.position(e)])
                        .sum::<f32>();
                }
            }
        }
        gamma
    }

    fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        gamma: &Array2<f32>,
        _: &mut SamplerState,
        out: &mut State,
    ) {
        BernoulliConditional.sample_given_parameters(rngs, gamma.view(), out);
    }
}

// ---------------------------------------------------------------------------------------
// A user observer: moments of the continuous nodes, split by the joint spin configuration
// ---------------------------------------------------------------------------------------

/// Pooled sums over chains and observations for one spin configuration.
#[derive(Clone, Debug)]
struct ConfigMoments {
    count: f64,
    sum: Vec<f64>,
    /// `Σ x_i x_j` for each pair of the observer.
    sum_pairs: Vec<f64>,
}

/// Accumulates `Σ x`, `Σ x_i x_j` (for chosen pairs) of continuous nodes, separately for each
/// joint configuration of some spins (configuration index: bit `k` set when spin `k` is +1).
#[derive(Debug)]
struct GaussianMomentObserver {
    x_slot: usize,
    x_pos: Vec<usize>,
    spin_slot: usize,
    spin_pos: Vec<usize>,
    pairs: Vec<(usize, usize)>,
}

impl GaussianMomentObserver {
    fn new(
        program: &BlockSamplingProgram,
        xs: &[Node],
        spins: &[Node],
        pairs: Vec<(usize, usize)>,
    ) -> thrml::Result<Self> {
        let locate = |nodes: &[Node]| -> thrml::Result<(usize, Vec<usize>)> {
            let mut slot = None;
            let pos = nodes
                .iter()
                .map(|&n| {
                    let (s, p) = program.gibbs_spec.location(n)?;
                    if *slot.get_or_insert(s) != s {
                        return Err(Error::Invalid(format!("{n:?} is in another slot")));
                    }
                    Ok(p)
                })
                .collect::<thrml::Result<_>>()?;
            Ok((slot.unwrap_or(0), pos))
        };
        let (x_slot, x_pos) = locate(xs)?;
        let (spin_slot, spin_pos) = locate(spins)?;
        Ok(GaussianMomentObserver {
            x_slot,
            x_pos,
            spin_slot,
            spin_pos,
            pairs,
        })
    }

    fn init(&self) -> Vec<ConfigMoments> {
        let m = ConfigMoments {
            count: 0.0,
            sum: vec![0.0; self.x_pos.len()],
            sum_pairs: vec![0.0; self.pairs.len()],
        };
        vec![m; 1 << self.spin_pos.len()]
    }
}

impl AbstractObserver for GaussianMomentObserver {
    type Carry = Vec<ConfigMoments>;
    type Output = ();

    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global: &[State],
        carry: &mut Vec<ConfigMoments>,
        _: usize,
    ) -> thrml::Result<()> {
        let x_size = program.gibbs_spec.slot_sizes[self.x_slot];
        let xs = global[self.x_slot][0]
            .as_slice::<f32>()
            .ok_or_else(|| Error::Invalid("continuous slot is not f32".into()))?;
        let chains = xs.len() / x_size;
        let spins: &[bool] = if self.spin_pos.is_empty() {
            &[]
        } else {
            global[self.spin_slot][0]
                .as_slice::<bool>()
                .ok_or_else(|| Error::Invalid("spin slot is not bool".into()))?
        };
        let spin_size = program.gibbs_spec.slot_sizes[self.spin_slot];
        let mut x = vec![0f64; self.x_pos.len()];
        for c in 0..chains {
            let config = self
                .spin_pos
                .iter()
                .enumerate()
                .filter(|&(_, &p)| spins[c * spin_size + p])
                .fold(0usize, |acc, (k, _)| acc | (1 << k));
            for (v, &p) in x.iter_mut().zip(&self.x_pos) {
                *v = f64::from(xs[c * x_size + p]);
            }
            let m = &mut carry[config];
            m.count += 1.0;
            for (s, v) in m.sum.iter_mut().zip(&x) {
                *s += v;
            }
            for (s, &(i, j)) in m.sum_pairs.iter_mut().zip(&self.pairs) {
                *s += x[i] * x[j];
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The model and its closed-form statistics
// ---------------------------------------------------------------------------------------

/// A Gaussian PGM on a `side × side` open grid: `E = ½ xᵀA x + bᵀx`.
struct GaussianGrid {
    nodes: Vec<Node>,
    edges: Vec<(usize, usize)>,
    colours: Vec<usize>,
    diag: Vec<f32>,
    off: Vec<f32>,
    bias: Vec<f32>,
}

impl GaussianGrid {
    /// Random couplings `A_ij ∈ ±[0.1, 0.5]` and biases in `[−1, 1]` from a fixed seed;
    /// `A_ii = 1 + Σ_j |A_ij|`, so `A` is strictly diagonally dominant, hence positive
    /// definite.
    fn new(side: usize, seed: u64) -> GaussianGrid {
        let n = side * side;
        let mut rng = Key::new(seed).chain_rngs(1).pop().expect("one generator");
        let edges = grid_edges(side, side, false);
        let off: Vec<f32> = edges
            .iter()
            .map(|_| {
                let m: f32 = rng.random_range(0.1..0.5);
                if rng.random::<bool>() { m } else { -m }
            })
            .collect();
        let mut diag = vec![1.0f32; n];
        for (&(i, j), &w) in edges.iter().zip(&off) {
            diag[i] += w.abs();
            diag[j] += w.abs();
        }
        let bias = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        GaussianGrid {
            nodes: Node::many(continuous(), n),
            edges,
            colours: checkerboard(side, side),
            diag,
            off,
            bias,
        }
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    /// `A`, in `f64`, from the model's `f32` parameters.
    fn precision(&self) -> Vec<Vec<f64>> {
        let mut a = vec![vec![0.0; self.n()]; self.n()];
        for (i, &d) in self.diag.iter().enumerate() {
            a[i][i] = f64::from(d);
        }
        for (&(i, j), &w) in self.edges.iter().zip(&self.off) {
            a[i][j] = f64::from(w);
            a[j][i] = f64::from(w);
        }
        a
    }

    fn factors(&self) -> Vec<Arc<dyn EBMFactor>> {
        let all = Block::new(self.nodes.clone()).expect("nodes");
        let ends = |pick: fn(&(usize, usize)) -> usize| {
            Block::new(self.edges.iter().map(|e| self.nodes[pick(e)]).collect()).expect("edges")
        };
        vec![
            Arc::new(LinearFactor::new(all.clone(), self.bias.clone()).expect("linear")),
            Arc::new(QuadraticFactor::new(all, self.diag.clone()).expect("quadratic")),
            Arc::new(
                CouplingFactor::new(ends(|e| e.0), ends(|e| e.1), self.off.clone())
                    .expect("coupling"),
            ),
        ]
    }

    /// The checkerboard colour classes as blocks.
    fn colour_blocks(&self) -> Vec<Block> {
        (0..2)
            .map(|col| {
                Block::new(
                    (0..self.n())
                        .filter(|&i| self.colours[i] == col)
                        .map(|i| self.nodes[i])
                        .collect(),
                )
                .expect("non-empty colour")
            })
            .collect()
    }

    /// Observed pairs: the diagonal `(i, i)` then every edge.
    fn pairs(&self) -> Vec<(usize, usize)> {
        (0..self.n())
            .map(|i| (i, i))
            .chain(self.edges.iter().copied())
            .collect()
    }
}

/// Sample mean and covariance (on the observer's pairs) from pooled moments.
fn mean_and_pair_cov(m: &ConfigMoments, pairs: &[(usize, usize)]) -> (Vec<f64>, Vec<f64>) {
    let mean: Vec<f64> = m.sum.iter().map(|s| s / m.count).collect();
    let cov = pairs
        .iter()
        .zip(&m.sum_pairs)
        .map(|(&(i, j), s)| s / m.count - mean[i] * mean[j])
        .collect();
    (mean, cov)
}

/// `max |est − exact| / max |exact|`.
fn rel_max_error(est: &[f64], exact: &[f64]) -> f64 {
    let err = est
        .iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    err / exact.iter().map(|x| x.abs()).fold(0.0, f64::max)
}

fn zero_init(blocks: &[Block], chains: usize) -> Vec<State> {
    make_empty_block_state(blocks, &layouts(), Some(&[chains])).expect("layouts known")
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn gaussian_grid_covariance_matches_inverse_precision() {
    let grid = GaussianGrid::new(5, 11);
    let a = grid.precision();
    let sigma = invert(&a);
    // The reference inverse really is one.
    for (i, row) in a.iter().enumerate() {
        for j in 0..grid.n() {
            let v: f64 = row.iter().zip(&sigma).map(|(a, s)| a * s[j]).sum();
            assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
        }
    }

    let blocks = grid.colour_blocks();
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &layouts()).unwrap();
    let sampler: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianSampler);
    let program =
        FactorSamplingProgram::new(spec, vec![sampler; 2], &grid.factors(), vec![]).unwrap();

    let chains = 2000;
    let schedule = SamplingSchedule::new(40, 400, 2).unwrap();
    let observer = GaussianMomentObserver::new(&program, &grid.nodes, &[], grid.pairs()).unwrap();
    let start = std::time::Instant::now();
    let (moments, _) = sample_with_observation(
        Key::new(5),
        &program,
        &schedule,
        zero_init(&blocks, chains),
        &[],
        observer.init(),
        &observer,
    )
    .unwrap();
    let elapsed = start.elapsed();

    let pairs = grid.pairs();
    let (mean, cov) = mean_and_pair_cov(&moments[0], &pairs);
    let exact_cov: Vec<f64> = pairs.iter().map(|&(i, j)| sigma[i][j]).collect();
    let exact_mean: Vec<f64> = mat_vec(
        &sigma,
        &grid.bias.iter().map(|&b| -f64::from(b)).collect::<Vec<_>>(),
    );
    let cov_err = rel_max_error(&cov, &exact_cov);
    let mean_err = rel_max_error(&mean, &exact_mean);
    let n_diag = grid.n();
    let diag_err = rel_max_error(&cov[..n_diag], &exact_cov[..n_diag]);
    let edge_err = cov[n_diag..]
        .iter()
        .zip(&exact_cov[n_diag..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / exact_cov.iter().map(|x| x.abs()).fold(0.0, f64::max);
    eprintln!(
        "gaussian grid: {} draws in {elapsed:.2?}; covariance error {:.3}% (diagonal {:.3}%, edges {:.3}%), mean error {:.3}%; max |A⁻¹| {:.3}, max |edge cov| {:.3}",
        moments[0].count,
        100.0 * cov_err,
        100.0 * diag_err,
        100.0 * edge_err,
        100.0 * mean_err,
        exact_cov.iter().map(|x| x.abs()).fold(0.0, f64::max),
        exact_cov[n_diag..]
            .iter()
            .map(|x| x.abs())
            .fold(0.0, f64::max),
    );
    assert!(
        cov_err < 0.01,
        "covariance error {:.3}% ≥ 1%",
        100.0 * cov_err
    );
    assert!(mean_err < 0.01, "mean error {:.3}% ≥ 1%", 100.0 * mean_err);
}

/// The grid plus four spins in a ring, each spin coupled to two grid nodes of the other
/// colour, so that colour `c` = {spins of colour `c`, grid nodes of colour `c`} is a valid
/// mixed superblock.
struct MixedModel {
    grid: GaussianGrid,
    spins: Vec<Node>,
    spin_colours: Vec<usize>,
    spin_bias: Vec<f32>,
    ring: Vec<(usize, usize)>,
    ring_weights: Vec<f32>,
    /// (spin, grid node) pairs of the spin–continuous factor.
    links: Vec<(usize, usize)>,
    link_weights: Vec<f32>,
}

impl MixedModel {
    fn new() -> MixedModel {
        let grid = GaussianGrid::new(5, 11);
        // Grid node r·5 + c has colour (r + c) % 2; spins 0, 2 have colour 0, spins 1, 3
        // colour 1, and each links only to grid nodes of the other colour.
        let links = vec![
            (0, 1),
            (0, 5),
            (1, 4),
            (1, 12),
            (2, 19),
            (2, 23),
            (3, 20),
            (3, 8),
        ];
        for &(k, i) in &links {
            assert_ne!(k % 2, grid.colours[i], "links join different colours");
        }
        MixedModel {
            grid,
            spins: Node::many(NodeKind::SPIN, 4),
            spin_colours: vec![0, 1, 0, 1],
            spin_bias: vec![0.2, -0.3, 0.1, 0.25],
            ring: vec![(0, 1), (1, 2), (2, 3), (3, 0)],
            ring_weights: vec![0.5, -0.4, 0.3, 0.6],
            links,
            link_weights: vec![0.6, -0.5, 0.7, 0.4, -0.6, 0.5, 0.8, -0.4],
        }
    }

    fn factors(&self) -> Vec<Arc<dyn EBMFactor>> {
        let spin_block = |ix: &mut dyn Iterator<Item = usize>| {
            Block::new(ix.map(|k| self.spins[k]).collect()).expect("spins")
        };
        let mut f = self.grid.factors();
        f.push(Arc::new(
            SpinEBMFactor::new(
                vec![Block::new(self.spins.clone()).unwrap()],
                Array1::from(self.spin_bias.clone()).into_dyn(),
            )
            .unwrap(),
        ));
        f.push(Arc::new(
            SpinEBMFactor::new(
                vec![
                    spin_block(&mut self.ring.iter().map(|e| e.0)),
                    spin_block(&mut self.ring.iter().map(|e| e.1)),
                ],
                Array1::from(self.ring_weights.clone()).into_dyn(),
            )
            .unwrap(),
        ));
        f.push(Arc::new(
            SpinContinuousFactor::new(
                spin_block(&mut self.links.iter().map(|l| l.0)),
                Block::new(self.links.iter().map(|l| self.grid.nodes[l.1]).collect()).unwrap(),
                self.link_weights.clone(),
            )
            .unwrap(),
        ));
        f
    }

    fn spin_value(config: usize, k: usize) -> f64 {
        if config >> k & 1 == 1 { 1.0 } else { -1.0 }
    }

    /// `h(s) = b − W s`: the linear term of the continuous part given the spins.
    fn linear_term(&self, config: usize) -> Vec<f64> {
        let mut h: Vec<f64> = self.grid.bias.iter().map(|&b| f64::from(b)).collect();
        for (&(k, i), &w) in self.links.iter().zip(&self.link_weights) {
            h[i] -= f64::from(w) * Self::spin_value(config, k);
        }
        h
    }

    /// The exact spin marginal `P(s)` (index: bit `k` set when spin `k` is +1) and the
    /// conditional means `E[x | s] = −A⁻¹ h(s)`.
    fn exact(&self, sigma: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n_configs = 1 << self.spins.len();
        let mut log_w = Vec::with_capacity(n_configs);
        let mut means = Vec::with_capacity(n_configs);
        for config in 0..n_configs {
            let s = |k: usize| Self::spin_value(config, k);
            let h = self.linear_term(config);
            let sh = mat_vec(sigma, &h);
            let gauss: f64 = 0.5 * h.iter().zip(&sh).map(|(a, b)| a * b).sum::<f64>();
            let bias: f64 = (0..4).map(|k| f64::from(self.spin_bias[k]) * s(k)).sum();
            let ring: f64 = self
                .ring
                .iter()
                .zip(&self.ring_weights)
                .map(|(&(a, b), &w)| f64::from(w) * s(a) * s(b))
                .sum();
            log_w.push(bias + ring + gauss);
            means.push(sh.iter().map(|v| -v).collect());
        }
        let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = w.iter().sum();
        (w.iter().map(|w| w / z).collect(), means)
    }

    /// Mixed superblocks: colour `c` = [spins of colour `c`, grid nodes of colour `c`].
    fn superblocks(&self) -> Vec<SuperBlock> {
        let grid_blocks = self.grid.colour_blocks();
        (0..2)
            .map(|col| {
                let spins = (0..4)
                    .filter(|&k| self.spin_colours[k] == col)
                    .map(|k| self.spins[k])
                    .collect();
                SuperBlock::from(vec![Block::new(spins).unwrap(), grid_blocks[col].clone()])
            })
            .collect()
    }

    fn samplers() -> Vec<Arc<dyn AbstractConditionalSampler>> {
        let spin: Arc<dyn AbstractConditionalSampler> = Arc::new(MixedSpinSampler);
        let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianSampler);
        vec![spin.clone(), gauss.clone(), spin, gauss]
    }
}

#[test]
fn mixed_spin_gaussian_model_matches_analytic_marginals() {
    let model = MixedModel::new();
    let sigma = invert(&model.grid.precision());
    let (p_spins, exact_means) = model.exact(&sigma);

    let spec = BlockGibbsSpec::new(model.superblocks(), vec![], &layouts()).unwrap();
    let free_blocks = spec.free_blocks.clone();
    let program =
        FactorSamplingProgram::new(spec, MixedModel::samplers(), &model.factors(), vec![]).unwrap();
    let pairs = model.grid.pairs();
    let observer =
        GaussianMomentObserver::new(&program, &model.grid.nodes, &model.spins, pairs.clone())
            .unwrap();
    let chains = 2000;
    let schedule = SamplingSchedule::new(40, 200, 3).unwrap();
    let start = std::time::Instant::now();
    let (moments, _) = sample_with_observation(
        Key::new(9),
        &program,
        &schedule,
        zero_init(&free_blocks, chains),
        &[],
        observer.init(),
        &observer,
    )
    .unwrap();
    let elapsed = start.elapsed();

    // The spin joint distribution against the analytic marginal.
    let counts: Vec<u64> = moments.iter().map(|m| m.count as u64).collect();
    let c = common::compare(&p_spins, &counts);
    eprintln!(
        "mixed spins: n = {} in {elapsed:.2?}, TV = {:.5} (noise {:.5}, ratio {:.2}), G = {:.1} on {} dof, p = {:.3e}",
        c.n,
        c.tv,
        c.tv_noise,
        c.tv / c.tv_noise,
        c.g,
        c.dof,
        c.p_value
    );
    assert!(
        c.tv <= common::TV_FACTOR * c.tv_noise,
        "spin TV {:.5} too large",
        c.tv
    );
    assert!(
        c.p_value >= common::MIN_P_VALUE,
        "spin G-test p = {:.3e}",
        c.p_value
    );

    // Conditional means E[x | s] = −A⁻¹ h(s): z-scores against the exact conditional sd.
    let mut max_z = 0.0f64;
    for (m, mu) in moments.iter().zip(&exact_means) {
        if m.count < 100.0 {
            continue;
        }
        for (i, mu_i) in mu.iter().enumerate() {
            let z = (m.sum[i] / m.count - mu_i) / (sigma[i][i] / m.count).sqrt();
            max_z = max_z.max(z.abs());
        }
    }
    // Conditional covariance: Cov(x | s) = A⁻¹ for every s; pool the within-config estimates.
    let total: f64 = moments.iter().map(|m| m.count).sum();
    let mut within = vec![0.0; pairs.len()];
    for m in moments.iter().filter(|m| m.count > 0.0) {
        let (_, cov) = mean_and_pair_cov(m, &pairs);
        for (w, c) in within.iter_mut().zip(cov) {
            *w += c * m.count / total;
        }
    }
    let exact_cov: Vec<f64> = pairs.iter().map(|&(i, j)| sigma[i][j]).collect();
    let cov_err = rel_max_error(&within, &exact_cov);
    // The unconditional mean E[x] = Σ_s P(s) E[x | s].
    let mean: Vec<f64> = (0..model.grid.n())
        .map(|i| moments.iter().map(|m| m.sum[i]).sum::<f64>() / total)
        .collect();
    let exact_mean: Vec<f64> = (0..model.grid.n())
        .map(|i| {
            p_spins
                .iter()
                .zip(&exact_means)
                .map(|(p, mu)| p * mu[i])
                .sum()
        })
        .collect();
    let mean_err = rel_max_error(&mean, &exact_mean);
    eprintln!(
        "mixed continuous: max |z| of E[x|s] = {max_z:.2}, within-config covariance error {:.3}%, mean error {:.3}%",
        100.0 * cov_err,
        100.0 * mean_err
    );
    assert!(max_z < 5.0, "a conditional mean is {max_z:.2} sd off");
    assert!(
        cov_err < 0.015,
        "conditional covariance error {:.3}%",
        100.0 * cov_err
    );
    assert!(mean_err < 0.015, "mean error {:.3}%", 100.0 * mean_err);
}

#[test]
fn user_factor_energies_match_hand_computation() {
    let model = MixedModel::new();
    let grid = &model.grid;
    let a = grid.precision();
    let m = 4;
    let mut rng = Key::new(3).chain_rngs(1).pop().unwrap();
    let x = Array2::from_shape_fn((m, grid.n()), |_| rng.sample::<f32, _>(StandardNormal));
    let s = Array2::from_shape_fn((m, 4), |_| rng.random::<bool>());

    let gauss_energy = |r: usize| -> f64 {
        let xr: Vec<f64> = x.row(r).iter().map(|&v| f64::from(v)).collect();
        let ax = mat_vec(&a, &xr);
        let quad: f64 = 0.5 * xr.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>();
        quad + grid
            .bias
            .iter()
            .zip(&xr)
            .map(|(&b, x)| f64::from(b) * x)
            .sum::<f64>()
    };

    // Gaussian part alone, with the continuous nodes split over the two colour blocks.
    let blocks = grid.colour_blocks();
    let split = |block: &Block| -> State {
        let cols: Vec<usize> = block
            .nodes()
            .iter()
            .map(|n| grid.nodes.iter().position(|g| g == n).unwrap())
            .collect();
        vec![Tensor::from(
            Array2::from_shape_fn((m, cols.len()), |(r, j)| x[[r, cols[j]]]).into_dyn(),
        )]
    };
    let state: Vec<State> = blocks.iter().map(split).collect();
    let ebm = FactorizedEBM::with_node_shape_dtypes(grid.factors(), layouts());
    let e = ebm.energy(&state, &blocks).unwrap();
    for r in 0..m {
        let want = gauss_energy(r);
        assert!(
            (e[r] - want).abs() < 1e-9 * want.abs().max(1.0),
            "{} vs {want}",
            e[r]
        );
    }

    // The mixed model, spins and continuous nodes in one block each.
    let blocks = vec![
        Block::new(grid.nodes.clone()).unwrap(),
        Block::new(model.spins.clone()).unwrap(),
    ];
    let state = vec![
        vec![Tensor::from(x.clone().into_dyn())],
        vec![Tensor::from(s.clone().into_dyn())],
    ];
    let ebm = FactorizedEBM::with_node_shape_dtypes(model.factors(), layouts());
    let e = ebm.energy(&state, &blocks).unwrap();
    for r in 0..m {
        let sv = |k: usize| pm1(s[[r, k]]);
        let mut want = gauss_energy(r);
        want -= (0..4)
            .map(|k| f64::from(model.spin_bias[k]) * sv(k))
            .sum::<f64>();
        for (&(i, j), &w) in model.ring.iter().zip(&model.ring_weights) {
            want -= f64::from(w) * sv(i) * sv(j);
        }
        for (&(k, i), &w) in model.links.iter().zip(&model.link_weights) {
            want -= f64::from(w) * sv(k) * f64::from(x[[r, i]]);
        }
        assert!(
            (e[r] - want).abs() < 1e-9 * want.abs().max(1.0),
            "{} vs {want}",
            e[r]
        );
    }

    // An unbatched state is one batch element.
    let single = vec![
        vec![Tensor::from(x.row(0).to_owned().into_dyn())],
        vec![Tensor::from(s.row(0).to_owned().into_dyn())],
    ];
    let e1 = ebm.energy(&single, &blocks).unwrap();
    assert_eq!(e1.len(), 1);
    assert!((e1[0] - e[0]).abs() < 1e-12);
}

#[test]
fn user_samplers_reject_what_they_cannot_sample() {
    let model = MixedModel::new();
    let grid = &model.grid;
    let blocks = grid.colour_blocks();
    let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianSampler);
    let build = |factors: &[Arc<dyn EBMFactor>],
                 superblocks: Vec<SuperBlock>,
                 samplers: Vec<Arc<dyn AbstractConditionalSampler>>| {
        let spec = BlockGibbsSpec::new(superblocks, vec![], &layouts()).unwrap();
        FactorSamplingProgram::new(spec, samplers, factors, vec![]).map(|_| ())
    };
    let as_superblocks = |b: &[Block]| b.iter().cloned().map(SuperBlock::from).collect::<Vec<_>>();

    // No quadratic factor: the conditional of x is not normalisable.
    let no_quadratic: Vec<_> = grid
        .factors()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f)
        .collect();
    let err = build(
        &no_quadratic,
        as_superblocks(&blocks),
        vec![gauss.clone(); 2],
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Sampler { .. }) && err.to_string().contains("quadratic"),
        "{err}"
    );

    // THRML's spin sampler does not know the user's spin–continuous interaction.
    let spin: Arc<dyn AbstractConditionalSampler> = Arc::new(SpinGibbsConditional);
    let err = build(
        &model.factors(),
        model.superblocks(),
        vec![
            spin,
            gauss.clone(),
            Arc::new(MixedSpinSampler),
            gauss.clone(),
        ],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Sampler { block: 0, .. }), "{err}");

    // The Gaussian sampler does not sample spins.
    let err = build(
        &model.factors(),
        model.superblocks(),
        vec![gauss.clone(); 4],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Sampler { block: 0, .. }), "{err}");

    // A superblock whose spin and continuous blocks interact is refused.
    let sb = model.superblocks();
    let swapped = vec![
        SuperBlock::from(vec![sb[0].0[0].clone(), sb[1].0[1].clone()]),
        SuperBlock::from(vec![sb[1].0[0].clone(), sb[0].0[1].clone()]),
    ];
    let err = build(&model.factors(), swapped, MixedModel::samplers()).unwrap_err();
    assert!(matches!(err, Error::InteractingBlock { .. }), "{err}");
}
