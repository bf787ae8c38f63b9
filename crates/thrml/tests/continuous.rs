//! The built-in continuous nodes, factors and samplers ([`thrml::models::continuous`]):
//! exact Gaussian covariances, a mixed spin/continuous model against its exact marginals,
//! the fused planner keeping mixed blocks on the generic path, energies and typed errors.
//!
//! `tests/gaussian.rs` builds the same models as user code through the extension API; this
//! file uses only the library's built-ins.
//!
//! The Gaussian density is `p(x) ∝ exp(−½ xᵀA x − bᵀx)`, so the stationary covariance is
//! `A⁻¹` and the mean `−A⁻¹ b`. With spins coupled by `E = −Σ w s x`, integrating the
//! Gaussian out gives `P(s) ∝ exp(−E_spin(s) + ½ h(s)ᵀ A⁻¹ h(s))` with `h(s) = b − W s`, and
//! `x | s ~ N(−A⁻¹ h(s), A⁻¹)`.

mod common;

use common::linalg::{invert, mat_vec};

use std::sync::Arc;

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;
use thrml::graph::{checkerboard, grid_edges};
use thrml::*;

fn layouts() -> NodeShapeDtypes {
    default_node_shape_dtypes()
}

/// A Gaussian PGM on a `side × side` open grid, `E = ½ xᵀA x + bᵀx`, from built-in factors.
struct GaussianGrid {
    nodes: Vec<Node>,
    edges: Vec<(usize, usize)>,
    colours: Vec<usize>,
    diag: Vec<f32>,
    off: Vec<f32>,
    bias: Vec<f32>,
}

impl GaussianGrid {
    /// Couplings `A_ij ∈ ±[0.1, 0.5]`, biases in `[−1, 1]`, `A_ii = 1 + Σ_j |A_ij|`
    /// (strictly diagonally dominant, so positive definite).
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
            nodes: Node::many(NodeKind::CONTINUOUS, n),
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

fn zero_init(blocks: &[Block], chains: usize) -> Vec<State> {
    make_empty_block_state(blocks, &layouts(), Some(&[chains])).expect("layouts known")
}

fn pm1(s: bool) -> f64 {
    if s { 1.0 } else { -1.0 }
}

/// The grid plus four "linked" spins in a ring, each coupled to two grid nodes of the other
/// colour (so colour `c` = {linked spins of colour `c`, grid nodes of colour `c`} is a valid
/// mixed superblock), and optionally two "outer" spins coupled only to linked spins, updated
/// in a third, purely discrete superblock that the fused kernels take.
struct MixedModel {
    grid: GaussianGrid,
    spins: Vec<Node>,
    n_linked: usize,
    spin_bias: Vec<f32>,
    /// Spin–spin couplings (indices into `spins`).
    spin_edges: Vec<(usize, usize)>,
    spin_weights: Vec<f32>,
    /// (linked spin, grid node) pairs of the spin–continuous factor.
    links: Vec<(usize, usize)>,
    link_weights: Vec<f32>,
}

impl MixedModel {
    fn new(outer: bool) -> MixedModel {
        let grid = GaussianGrid::new(5, 23);
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
        let mut spin_edges = vec![(0, 1), (1, 2), (2, 3), (3, 0)];
        let mut spin_weights = vec![0.5, -0.4, 0.3, 0.6];
        let mut spin_bias = vec![0.2, -0.3, 0.1, 0.25];
        let n_spins = if outer {
            spin_edges.extend([(4, 0), (4, 1), (5, 2), (5, 3)]);
            spin_weights.extend([0.7, -0.5, 0.4, 0.6]);
            spin_bias.extend([-0.2, 0.3]);
            6
        } else {
            4
        };
        MixedModel {
            grid,
            spins: Node::many(NodeKind::SPIN, n_spins),
            n_linked: 4,
            spin_bias,
            spin_edges,
            spin_weights,
            links,
            link_weights: vec![0.6, -0.5, 0.7, 0.4, -0.6, 0.5, 0.8, -0.4],
        }
    }

    fn spin_block(&self, ix: impl Iterator<Item = usize>) -> Block {
        Block::new(ix.map(|k| self.spins[k]).collect()).expect("spins")
    }

    fn factors(&self) -> Vec<Arc<dyn EBMFactor>> {
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
                    self.spin_block(self.spin_edges.iter().map(|e| e.0)),
                    self.spin_block(self.spin_edges.iter().map(|e| e.1)),
                ],
                Array1::from(self.spin_weights.clone()).into_dyn(),
            )
            .unwrap(),
        ));
        f.push(Arc::new(
            SpinContinuousFactor::new(
                self.spin_block(self.links.iter().map(|l| l.0)),
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

    /// The exact spin marginal `P(s)` (bit `k` set when spin `k` is +1) and the conditional
    /// means `E[x | s] = −A⁻¹ h(s)`, `h(s) = b − W s`.
    fn exact(&self, sigma: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n_configs = 1 << self.spins.len();
        let mut log_w = Vec::with_capacity(n_configs);
        let mut means = Vec::with_capacity(n_configs);
        for config in 0..n_configs {
            let s = |k: usize| Self::spin_value(config, k);
            let mut h: Vec<f64> = self.grid.bias.iter().map(|&b| f64::from(b)).collect();
            for (&(k, i), &w) in self.links.iter().zip(&self.link_weights) {
                h[i] -= f64::from(w) * s(k);
            }
            let sh = mat_vec(sigma, &h);
            let gauss: f64 = 0.5 * h.iter().zip(&sh).map(|(a, b)| a * b).sum::<f64>();
            let bias: f64 = (0..self.spins.len())
                .map(|k| f64::from(self.spin_bias[k]) * s(k))
                .sum();
            let pairs: f64 = self
                .spin_edges
                .iter()
                .zip(&self.spin_weights)
                .map(|(&(a, b), &w)| f64::from(w) * s(a) * s(b))
                .sum();
            log_w.push(bias + pairs + gauss);
            means.push(sh.iter().map(|v| -v).collect());
        }
        let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = w.iter().sum();
        (w.iter().map(|w| w / z).collect(), means)
    }

    /// Colour `c` = [linked spins of colour `c`, grid nodes of colour `c`], then the outer
    /// spins alone.
    fn superblocks(&self) -> Vec<SuperBlock> {
        let grid_blocks = self.grid.colour_blocks();
        let mut sb: Vec<SuperBlock> = (0..2)
            .map(|col| {
                let spins = self.spin_block((0..self.n_linked).filter(|k| k % 2 == col));
                SuperBlock::from(vec![spins, grid_blocks[col].clone()])
            })
            .collect();
        if self.spins.len() > self.n_linked {
            sb.push(SuperBlock::from(
                self.spin_block(self.n_linked..self.spins.len()),
            ));
        }
        sb
    }

    fn samplers(&self) -> Vec<Arc<dyn AbstractConditionalSampler>> {
        let spin: Arc<dyn AbstractConditionalSampler> = Arc::new(SpinGibbsConditional);
        let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
        let mut v = vec![spin.clone(), gauss.clone(), spin.clone(), gauss];
        if self.spins.len() > self.n_linked {
            v.push(spin);
        }
        v
    }

    fn program(&self) -> (FactorSamplingProgram, Vec<Block>) {
        let spec = BlockGibbsSpec::new(self.superblocks(), vec![], &layouts()).unwrap();
        let free = spec.free_blocks.clone();
        let program =
            FactorSamplingProgram::new(spec, self.samplers(), &self.factors(), vec![]).unwrap();
        (program, free)
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
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn gaussian_grid_covariance_matches_exact_inverse() {
    let grid = GaussianGrid::new(5, 17);
    let a = grid.precision();
    let sigma = invert(&a);
    for (i, row) in a.iter().enumerate() {
        for j in 0..grid.n() {
            let v: f64 = row.iter().zip(&sigma).map(|(a, s)| a * s[j]).sum();
            assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
        }
    }

    let blocks = grid.colour_blocks();
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &layouts()).unwrap();
    let sampler: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
    let program =
        FactorSamplingProgram::new(spec, vec![sampler; 2], &grid.factors(), vec![]).unwrap();
    assert_eq!(program.fused_blocks(), vec![false, false]);

    let chains = 2000;
    let schedule = SamplingSchedule::new(40, 400, 2).unwrap();
    let observer = GaussianMomentObserver::new(&program, &grid.nodes, &[], grid.pairs()).unwrap();
    let start = std::time::Instant::now();
    let (moments, _) = sample_with_observation(
        Key::new(31),
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
    let exact_mean = mat_vec(
        &sigma,
        &grid.bias.iter().map(|&b| -f64::from(b)).collect::<Vec<_>>(),
    );
    let cov_err = rel_max_error(&cov, &exact_cov);
    let mean_err = rel_max_error(&mean, &exact_mean);
    eprintln!(
        "built-in gaussian grid: {} draws in {elapsed:.2?}; covariance error {:.3}%, mean error {:.3}%",
        moments[0].count,
        100.0 * cov_err,
        100.0 * mean_err
    );
    assert!(
        cov_err < 0.01,
        "covariance error {:.3}% ≥ 1%",
        100.0 * cov_err
    );
    assert!(mean_err < 0.01, "mean error {:.3}% ≥ 1%", 100.0 * mean_err);
    // The check can fail: the wrong covariance (the precision's inverse diagonal alone,
    // ignoring the couplings) is far off.
    let naive: Vec<f64> = pairs
        .iter()
        .map(|&(i, j)| if i == j { 1.0 / a[i][i] } else { 0.0 })
        .collect();
    assert!(rel_max_error(&cov, &naive) > 0.05);
}

#[test]
fn mixed_spin_gaussian_model_matches_exact_marginals() {
    let model = MixedModel::new(true);
    let sigma = invert(&model.grid.precision());
    let (p_spins, exact_means) = model.exact(&sigma);
    let (program, free_blocks) = model.program();
    // Spin blocks with continuous tails stay on the generic path; the purely discrete
    // outer block is fused.
    assert_eq!(
        program.fused_blocks(),
        vec![false, false, false, false, true]
    );

    let pairs = model.grid.pairs();
    let observer =
        GaussianMomentObserver::new(&program, &model.grid.nodes, &model.spins, pairs.clone())
            .unwrap();
    let chains = 2000;
    let schedule = SamplingSchedule::new(40, 200, 3).unwrap();
    let start = std::time::Instant::now();
    let (moments, _) = sample_with_observation(
        Key::new(19),
        &program,
        &schedule,
        zero_init(&free_blocks, chains),
        &[],
        observer.init(),
        &observer,
    )
    .unwrap();
    let elapsed = start.elapsed();

    let counts: Vec<u64> = moments.iter().map(|m| m.count as u64).collect();
    let c = common::compare(&p_spins, &counts);
    eprintln!(
        "built-in mixed spins: n = {} in {elapsed:.2?}, TV = {:.5} (noise {:.5}), G-test p = {:.3e}",
        c.n, c.tv, c.tv_noise, c.p_value
    );
    assert!(
        c.tv <= common::TV_FACTOR * c.tv_noise,
        "spin TV {:.5}",
        c.tv
    );
    assert!(
        c.p_value >= common::MIN_P_VALUE,
        "G-test p = {:.3e}",
        c.p_value
    );

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
    let total: f64 = moments.iter().map(|m| m.count).sum();
    let mut within = vec![0.0; pairs.len()];
    for m in moments.iter().filter(|m| m.count > 1.0) {
        let (_, cov) = mean_and_pair_cov(m, &pairs);
        for (w, c) in within.iter_mut().zip(cov) {
            *w += c * m.count / total;
        }
    }
    let exact_cov: Vec<f64> = pairs.iter().map(|&(i, j)| sigma[i][j]).collect();
    let cov_err = rel_max_error(&within, &exact_cov);
    eprintln!(
        "built-in mixed continuous: max |z| of E[x|s] = {max_z:.2}, within-config covariance error {:.3}%",
        100.0 * cov_err
    );
    assert!(max_z < 5.0, "a conditional mean is {max_z:.2} sd off");
    assert!(
        cov_err < 0.02,
        "conditional covariance error {:.3}%",
        100.0 * cov_err
    );
}

#[test]
fn mixed_blocks_are_not_fused_and_match_with_fused_kernels_off() {
    let model = MixedModel::new(false);
    let (program, free_blocks) = model.program();
    assert!(program.fused_blocks().iter().all(|&f| !f));
    let schedule = SamplingSchedule::new(5, 10, 2).unwrap();
    let init = zero_init(&free_blocks, 16);
    let run = || sample_states(Key::new(4), &program, &schedule, &init, &[], &free_blocks).unwrap();
    let on = run();
    program.set_fused_kernels(false);
    let off = run();
    program.set_fused_kernels(true);
    assert_eq!(on.len(), off.len());
    for (a, b) in on.iter().zip(&off) {
        assert_eq!(a[0], b[0]);
    }
    let xs = on[1][0].view::<f32>().unwrap();
    assert!(xs.iter().all(|x| x.is_finite()));
    assert!(xs.iter().any(|&x| x != 0.0));
}

#[test]
fn built_in_factor_energies_match_hand_computation() {
    let model = MixedModel::new(false);
    let grid = &model.grid;
    let a = grid.precision();
    let m = 4;
    let mut rng = Key::new(3).chain_rngs(1).pop().unwrap();
    let x = Array2::from_shape_fn((m, grid.n()), |_| rng.sample::<f32, _>(StandardNormal));
    let s = Array2::from_shape_fn((m, 4), |_| rng.random::<bool>());
    let blocks = vec![
        Block::new(grid.nodes.clone()).unwrap(),
        Block::new(model.spins.clone()).unwrap(),
    ];
    let state = vec![
        vec![Tensor::from(x.clone().into_dyn())],
        vec![Tensor::from(s.clone().into_dyn())],
    ];
    let ebm = FactorizedEBM::new(model.factors());
    let e = ebm.energy(&state, &blocks).unwrap();
    for r in 0..m {
        let xr: Vec<f64> = x.row(r).iter().map(|&v| f64::from(v)).collect();
        let ax = mat_vec(&a, &xr);
        let sv = |k: usize| pm1(s[[r, k]]);
        let mut want: f64 = 0.5 * xr.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>()
            + grid
                .bias
                .iter()
                .zip(&xr)
                .map(|(&b, x)| f64::from(b) * x)
                .sum::<f64>();
        want -= (0..4)
            .map(|k| f64::from(model.spin_bias[k]) * sv(k))
            .sum::<f64>();
        for (&(i, j), &w) in model.spin_edges.iter().zip(&model.spin_weights) {
            want -= f64::from(w) * sv(i) * sv(j);
        }
        for (&(k, i), &w) in model.links.iter().zip(&model.link_weights) {
            want -= f64::from(w) * sv(k) * xr[i];
        }
        assert!(
            (e[r] - want).abs() < 1e-9 * want.abs().max(1.0),
            "{} vs {want}",
            e[r]
        );
    }
}

#[test]
fn built_in_continuous_factors_give_typed_errors() {
    let x = Node::many(NodeKind::CONTINUOUS, 3);
    let all = Block::new(x.clone()).unwrap();
    // Non-finite weights name the factor and the instance.
    let err = LinearFactor::new(all.clone(), vec![0.0, f32::NAN, 1.0]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteFactorWeight {
                factor: "LinearFactor",
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("LinearFactor"), "{err}");
    let pair = |i: usize| Block::new(vec![x[i]]).unwrap();
    let err = CouplingFactor::new(pair(0), pair(1), vec![f32::INFINITY]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteFactorWeight {
                factor: "CouplingFactor",
                ..
            }
        ),
        "{err}"
    );
    let err = SpinContinuousFactor::new(
        Block::new(vec![Node::spin()]).unwrap(),
        pair(0),
        vec![f32::NEG_INFINITY],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteFactorWeight {
                factor: "SpinContinuousFactor",
                ..
            }
        ),
        "{err}"
    );
    let err = QuadraticFactor::new(all.clone(), vec![1.0, 1.0, f32::NAN]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteFactorWeight {
                factor: "QuadraticFactor",
                index: 2,
                ..
            }
        ),
        "{err}"
    );
    // Non-positive precision names the node.
    let err = QuadraticFactor::new(all.clone(), vec![1.0, 0.0, 1.0]).unwrap_err();
    match &err {
        Error::NonPositivePrecision { node, index, .. } => {
            assert_eq!((*node, *index), (x[1].id(), 1));
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains(&format!("node {}", x[1].id())),
        "{err}"
    );
    // Lengths.
    assert!(matches!(
        LinearFactor::new(all.clone(), vec![1.0]).unwrap_err(),
        Error::WeightShape(_)
    ));
    assert!(matches!(
        CouplingFactor::new(pair(0), all.clone(), vec![1.0]).unwrap_err(),
        Error::FactorGroups(_)
    ));

    // Sampler validation: a node without a quadratic term, and samplers on the wrong kind.
    let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
    let build = |factors: Vec<Arc<dyn EBMFactor>>,
                 blocks: Vec<Block>,
                 samplers: Vec<Arc<dyn AbstractConditionalSampler>>| {
        let spec = BlockGibbsSpec::new(blocks, vec![], &layouts()).unwrap();
        FactorSamplingProgram::new(spec, samplers, &factors, vec![]).map(|_| ())
    };
    let err = build(
        vec![
            Arc::new(QuadraticFactor::new(pair(0), vec![1.0]).unwrap()),
            Arc::new(
                LinearFactor::new(Block::new(vec![x[0], x[2]]).unwrap(), vec![1.0, 1.0]).unwrap(),
            ),
        ],
        vec![Block::new(vec![x[0], x[2]]).unwrap()],
        vec![gauss.clone()],
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Sampler { block: 0, reason } if reason.contains("position 1") && reason.contains("precision")),
        "{err}"
    );
    let err = build(
        vec![Arc::new(LinearFactor::new(pair(0), vec![1.0]).unwrap())],
        vec![pair(0)],
        vec![gauss.clone()],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Sampler { block: 0, .. }), "{err}");
    let spins = Node::many(NodeKind::SPIN, 1);
    let sblock = Block::new(spins.clone()).unwrap();
    let err = build(
        vec![Arc::new(
            SpinEBMFactor::new(vec![sblock.clone()], ndarray::arr1(&[0.5f32]).into_dyn()).unwrap(),
        )],
        vec![sblock.clone()],
        vec![gauss.clone()],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Sampler { block: 0, .. }), "{err}");
    // The Gaussian sampler does not accept discrete interactions, nor the spin sampler
    // continuous couplings.
    let err = build(
        vec![
            Arc::new(QuadraticFactor::new(pair(0), vec![1.0]).unwrap()),
            Arc::new(QuadraticFactor::new(pair(1), vec![1.0]).unwrap()),
            Arc::new(CouplingFactor::new(pair(0), pair(1), vec![0.2]).unwrap()),
        ],
        vec![pair(0), pair(1)],
        vec![gauss.clone(), Arc::new(SpinGibbsConditional)],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Sampler { block: 1, .. }), "{err}");
}
