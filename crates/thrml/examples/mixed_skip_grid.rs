//! The second half of THRML's "All of THRML" notebook: a heterogeneous model on a grid with
//! skip connections, whose nodes are randomly spins or continuous variables, sampled with
//! mixed superblocks.
//!
//! * **Graph.** A `side × side` open grid (30×30; 12×12 in small mode), each node joined to
//!   the nodes at offsets 1, 3 and 5 to its right and below
//!   ([`thrml::graph::grid_skip_edges`]). Each node is a spin (`s ∈ {−1, +1}`) or a
//!   continuous node with probability ½ (seeded).
//! * **Energy.** `E = −Σ h_k s_k − Σ J_kl s_k s_l + ½ xᵀA x + bᵀx − Σ W_ki s_k x_i`, one
//!   built-in factor per term: [`SpinEBMFactor`] (biases `h ∈ [−0.2, 0.2]`, spin–spin
//!   `J ∈ ±[0.05, 0.25]`), [`LinearFactor`] (`b ∈ [−0.5, 0.5]`), [`CouplingFactor`]
//!   (`A_ij ∈ ±[0.1, 0.4]`), [`SpinContinuousFactor`] (`W ∈ ±[0.2, 0.6]`) and
//!   [`QuadraticFactor`] with `A_ii = 1 + Σ_j |A_ij|`, so `A` is strictly diagonally
//!   dominant and positive definite (the density is normalisable for every spin state).
//! * **Probe.** One continuous node `p` with a spin neighbour `q` gets a strong link
//!   `W_qp = 2.5 √A_pp`, and the other couplings of `p` and `q` are scaled by 0.1. Then
//!   `x_p | s_q ~ N(≈ W s_q / A_pp, 1 / A_pp)`: the two modes lie about 2.5 standard
//!   deviations either side of 0, and the marginal of `x_p` is a two-humped mixture.
//! * **Blocks.** The graph is coloured with [`dsatur_colouring`] (odd offsets keep it
//!   bipartite, so two colours); each colour class is split by kind into a spin block and a
//!   continuous block, joined in one [`SuperBlock`]. Spin blocks use [`SpinGibbsConditional`]
//!   (which reads continuous neighbours: `W x` adds to the spin's field), continuous blocks
//!   [`GaussianGibbsConditional`].
//! * **Checks.** Every sampled value is finite; every spin value is exactly ±1; and the
//!   probe's marginal is not Gaussian: both signs of `x_p` hold at least 20 % of the draws,
//!   and its excess kurtosis is below −0.5. A Gaussian of any mean and variance has excess
//!   kurtosis 0 (sampling error ≈ `√(24 / draws)`, a few hundredths here), while an even
//!   mixture of `N(±m, σ²)` with `m = 2.5 σ` has `−2 m⁴ / (σ² + m²)² ≈ −1.5`; the check
//!   fails if the spin–continuous coupling were ignored. The probe spin `q` must also take
//!   both values in at least 20 % of the draws.
//! * **Plot.** `pca.png`: every sample projected on the first two principal components of
//!   the centred samples (power iteration with deflation on their covariance), coloured by
//!   the probe spin.
//!
//! ```text
//! cargo run --release -p thrml --example mixed_skip_grid -- [--seed 0] [--out DIR]
//! THRML_EXAMPLE_SMALL=1 cargo run --release -p thrml --example mixed_skip_grid
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array1, Array2, ArrayD, Axis};
use rand::RngExt;
use thrml::graph::{Adjacency, colour_classes, dsatur_colouring, grid_skip_edges, n_colours};
use thrml::{
    AbstractConditionalSampler, Block, BlockGibbsSpec, CouplingFactor, EBMFactor,
    FactorSamplingProgram, GaussianGibbsConditional, Key, LinearFactor, Node, NodeKind,
    QuadraticFactor, SamplingSchedule, SpinContinuousFactor, SpinEBMFactor, SpinGibbsConditional,
    State, SuperBlock, Tensor, sample_states,
};

/// The skip offsets of the grid.
pub const SKIPS: [usize; 3] = [1, 3, 5];
/// The probe's link, in units of `√A_pp`.
pub const PROBE_STRENGTH: f32 = 2.5;
/// The asserted bound on the probe's excess kurtosis.
pub const MAX_PROBE_KURTOSIS: f64 = -0.5;
/// The least share of draws each sign of the probe (and each value of its spin) must take.
pub const MIN_MODE_SHARE: f64 = 0.2;

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The grid is `side × side`.
    pub side: usize,
    /// Parallel chains.
    pub chains: usize,
    /// Burn-in, samples and steps per sample.
    pub schedule: SamplingSchedule,
    /// The seed of the kinds, the weights and the sampling.
    pub seed: u64,
    /// Where the PNG goes.
    pub out_dir: PathBuf,
    /// Print what was checked.
    pub verbose: bool,
}

impl Config {
    /// A 30×30 grid, 64 chains × 100 samples.
    #[must_use]
    pub fn full(out_dir: PathBuf) -> Config {
        Config {
            side: 30,
            chains: 64,
            schedule: SamplingSchedule::new(100, 100, 2).expect("valid"),
            seed: 0,
            out_dir,
            verbose: true,
        }
    }

    /// A CI-sized run: a 12×12 grid, 64 chains × 60 samples.
    #[must_use]
    pub fn small(out_dir: PathBuf) -> Config {
        Config {
            side: 12,
            schedule: SamplingSchedule::new(50, 60, 2).expect("valid"),
            ..Config::full(out_dir)
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Spin nodes.
    pub n_spins: usize,
    /// Continuous nodes.
    pub n_continuous: usize,
    /// Edges of the skip grid.
    pub n_edges: usize,
    /// Colours of the graph (superblocks).
    pub n_colours: usize,
    /// Draws (chains × samples).
    pub draws: usize,
    /// Every sampled value is finite.
    pub all_finite: bool,
    /// Every spin value is exactly −1 or +1.
    pub spins_pm1: bool,
    /// Share of draws with `x_p > 0`.
    pub probe_positive_share: f64,
    /// Share of draws with `s_q = +1`.
    pub probe_spin_up_share: f64,
    /// Excess kurtosis of `x_p`.
    pub probe_kurtosis: f64,
    /// Share of the total variance on PC1 and PC2.
    pub explained: [f64; 2],
    /// The PCA scatter plot.
    pub pca_png: PathBuf,
    /// Seconds spent sampling.
    pub sample_s: f64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// Building or running the sampler failed.
    #[error(transparent)]
    Thrml(#[from] thrml::Error),
    /// The graph helpers failed.
    #[error(transparent)]
    Graph(#[from] thrml::graph::GraphError),
    /// Writing the plot failed.
    #[error(transparent)]
    Plot(#[from] thrml_plot::PlotError),
    /// A check failed.
    #[error("check failed: {0}")]
    Check(String),
}

/// The node kinds, weights and probe of one random model.
struct Model {
    /// `true` for a spin, per grid node.
    is_spin: Vec<bool>,
    /// The thrml node of each grid node.
    nodes: Vec<Node>,
    edges: Vec<(usize, usize)>,
    /// One weight per edge: `J`, `A_ij` or `W`, by the kinds of its ends.
    weights: Vec<f32>,
    /// `h` for spins, `b` for continuous nodes.
    bias: Vec<f32>,
    /// `A_ii` for continuous nodes (0 for spins).
    precision: Vec<f32>,
    /// The probe continuous node and its spin.
    probe: (usize, usize),
}

impl Model {
    fn new(side: usize, seed: u64) -> Result<Model, ExampleError> {
        let n = side * side;
        let mut rng = Key::new(seed)
            .fold_in(0x6d69_7864)
            .chain_rngs(1)
            .pop()
            .expect("one");
        let is_spin: Vec<bool> = (0..n).map(|_| rng.random::<bool>()).collect();
        let nodes: Vec<Node> = is_spin
            .iter()
            .map(|&s| {
                Node::new(if s {
                    NodeKind::SPIN
                } else {
                    NodeKind::CONTINUOUS
                })
            })
            .collect();
        let edges = grid_skip_edges(side, side, &SKIPS, false);
        let mut signed = |lo: f32, hi: f32| {
            let m: f32 = rng.random_range(lo..hi);
            if rng.random::<bool>() { m } else { -m }
        };
        let mut weights: Vec<f32> = edges
            .iter()
            .map(|&(i, j)| match (is_spin[i], is_spin[j]) {
                (true, true) => signed(0.05, 0.25),
                (false, false) => signed(0.1, 0.4),
                _ => signed(0.2, 0.6),
            })
            .collect();
        let mut bias: Vec<f32> = is_spin
            .iter()
            .map(|&s| {
                let m = if s { 0.2 } else { 0.5 };
                rng.random_range(-m..m)
            })
            .collect();
        // The probe: the continuous node nearest the centre with a spin neighbour.
        let centre = (side / 2) * side + side / 2;
        let probe = (0..n)
            .map(|d| [centre.saturating_sub(d), centre + d])
            .flat_map(|c| c.into_iter())
            .filter(|&p| p < n && !is_spin[p])
            .find_map(|p| {
                edges.iter().find_map(|&(i, j)| match (i == p, j == p) {
                    (true, _) if is_spin[j] => Some((p, j)),
                    (_, true) if is_spin[i] => Some((p, i)),
                    _ => None,
                })
            })
            .ok_or_else(|| ExampleError::Check("no continuous node has a spin neighbour".into()))?;
        let (p, q) = probe;
        for (e, w) in edges.iter().zip(&mut weights) {
            let touches = |v: usize| e.0 == v || e.1 == v;
            if (touches(p) || touches(q)) && !(touches(p) && touches(q)) {
                *w *= 0.1;
            }
        }
        bias[p] *= 0.1;
        bias[q] = 0.0;
        let mut precision: Vec<f32> = is_spin.iter().map(|&s| if s { 0.0 } else { 1.0 }).collect();
        for (&(i, j), &w) in edges.iter().zip(&weights) {
            if !is_spin[i] && !is_spin[j] {
                precision[i] += w.abs();
                precision[j] += w.abs();
            }
        }
        let link = edges
            .iter()
            .position(|&e| e == (p.min(q), p.max(q)))
            .expect("the probe edge");
        weights[link] = PROBE_STRENGTH * precision[p].sqrt();
        Ok(Model {
            is_spin,
            nodes,
            edges,
            weights,
            bias,
            precision,
            probe,
        })
    }

    fn factors(&self) -> thrml::Result<Vec<Arc<dyn EBMFactor>>> {
        let pick = |ix: &[usize]| Block::new(ix.iter().map(|&i| self.nodes[i]).collect());
        let (spins, xs): (Vec<usize>, Vec<usize>) =
            (0..self.nodes.len()).partition(|&i| self.is_spin[i]);
        let mut f: Vec<Arc<dyn EBMFactor>> = Vec::new();
        if !spins.is_empty() {
            let h: Vec<f32> = spins.iter().map(|&i| self.bias[i]).collect();
            f.push(Arc::new(SpinEBMFactor::new(
                vec![pick(&spins)?],
                ArrayD::from_shape_vec(vec![h.len()], h).expect("1-d"),
            )?));
        }
        if !xs.is_empty() {
            let b = xs.iter().map(|&i| self.bias[i]).collect();
            let a = xs.iter().map(|&i| self.precision[i]).collect();
            f.push(Arc::new(LinearFactor::new(pick(&xs)?, b)?));
            f.push(Arc::new(QuadraticFactor::new(pick(&xs)?, a)?));
        }
        // Edges by kind; spin–continuous edges are ordered (spin, continuous).
        let (mut ss, mut cc, mut sc) = (
            (vec![], vec![], vec![]),
            (vec![], vec![], vec![]),
            (vec![], vec![], vec![]),
        );
        for (&(i, j), &w) in self.edges.iter().zip(&self.weights) {
            let (list, a, b) = match (self.is_spin[i], self.is_spin[j]) {
                (true, true) => (&mut ss, i, j),
                (false, false) => (&mut cc, i, j),
                (true, false) => (&mut sc, i, j),
                (false, true) => (&mut sc, j, i),
            };
            list.0.push(a);
            list.1.push(b);
            list.2.push(w);
        }
        if !ss.2.is_empty() {
            let n = ss.2.len();
            f.push(Arc::new(SpinEBMFactor::new(
                vec![pick(&ss.0)?, pick(&ss.1)?],
                ArrayD::from_shape_vec(vec![n], ss.2).expect("1-d"),
            )?));
        }
        if !cc.2.is_empty() {
            f.push(Arc::new(CouplingFactor::new(
                pick(&cc.0)?,
                pick(&cc.1)?,
                cc.2,
            )?));
        }
        if !sc.2.is_empty() {
            f.push(Arc::new(SpinContinuousFactor::new(
                pick(&sc.0)?,
                pick(&sc.1)?,
                sc.2,
            )?));
        }
        Ok(f)
    }
}

/// The excess kurtosis `m₄ / m₂² − 3` of `v` (central moments).
fn excess_kurtosis(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    m4 / (m2 * m2) - 3.0
}

/// The top `k` eigenpairs of the symmetric positive semi-definite `c`, by power iteration
/// with deflation.
fn top_eigenvectors(c: &Array2<f64>, k: usize) -> Vec<(f64, Array1<f64>)> {
    let n = c.nrows();
    let mut c = c.clone();
    let mut out = Vec::with_capacity(k);
    for e in 0..k {
        // A fixed, generic start vector.
        let mut v = Array1::from_shape_fn(n, |i| 1.0 + ((i * 7 + e * 13) % 11) as f64 / 11.0);
        v /= v.dot(&v).sqrt();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let w = c.dot(&v);
            let norm = w.dot(&w).sqrt();
            if norm == 0.0 {
                break;
            }
            let next = w / norm;
            let done = (&next - &v).mapv(f64::abs).sum() < 1e-10 * n as f64;
            v = next;
            lambda = norm;
            if done {
                break;
            }
        }
        let vv = v.clone().insert_axis(Axis(1));
        c = c - lambda * vv.dot(&vv.t());
        out.push((lambda, v));
    }
    out
}

/// Build the model, sample it, check the marginals and write the PCA plot.
///
/// # Errors
/// [`ExampleError::Check`] naming the failed check; sampler, graph and plot errors.
pub fn run(config: &Config) -> Result<Outcome, ExampleError> {
    let model = Model::new(config.side, config.seed)?;
    let n = model.nodes.len();
    let adj = Adjacency::from_edges(n, model.edges.iter().copied())?;
    let colours = dsatur_colouring(&adj);
    thrml::graph::check_colouring(&adj, &colours)?;

    // One mixed superblock per colour: its spin block and its continuous block.
    let spin: Arc<dyn AbstractConditionalSampler> = Arc::new(SpinGibbsConditional);
    let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
    let mut superblocks = Vec::new();
    let mut samplers = Vec::new();
    for class in colour_classes(&colours) {
        let mut parts = Vec::new();
        for kind_is_spin in [true, false] {
            let ix: Vec<Node> = class
                .iter()
                .filter(|&&i| model.is_spin[i] == kind_is_spin)
                .map(|&i| model.nodes[i])
                .collect();
            if !ix.is_empty() {
                parts.push(Block::new(ix)?);
                samplers.push(if kind_is_spin {
                    spin.clone()
                } else {
                    gauss.clone()
                });
            }
        }
        superblocks.push(SuperBlock::from(parts));
    }
    let layouts = thrml::default_node_shape_dtypes();
    let spec = BlockGibbsSpec::new(superblocks, vec![], &layouts)?;
    let free = spec.free_blocks.clone();
    let program = FactorSamplingProgram::new(spec, samplers, &model.factors()?, vec![])?;

    // Random ±1 spins, continuous nodes at 0.
    let mut rng = Key::new(config.seed)
        .fold_in(1)
        .chain_rngs(1)
        .pop()
        .expect("one");
    let init: Vec<State> = free
        .iter()
        .map(|b| {
            let shape = (config.chains, b.len());
            if b.node_kind() == NodeKind::SPIN {
                let s = Array2::from_shape_fn(shape, |_| rng.random::<bool>());
                vec![Tensor::from(s.into_dyn())]
            } else {
                vec![Tensor::from(Array2::<f32>::zeros(shape).into_dyn())]
            }
        })
        .collect();
    let start = Instant::now();
    let samples = sample_states(
        Key::new(config.seed),
        &program,
        &config.schedule,
        &init,
        &[],
        &free,
    )?;
    let sample_s = start.elapsed().as_secs_f64();

    // Gather the draws into one [draws, n] matrix in grid order (spins as ±1).
    let n_samples = config.schedule.n_samples;
    let draws = config.chains * n_samples;
    let mut data = Array2::<f64>::zeros((draws, n));
    let (mut all_finite, mut spins_pm1) = (true, true);
    for (block, state) in free.iter().zip(&samples) {
        let column: Vec<usize> = block
            .nodes()
            .iter()
            .map(|v| {
                model
                    .nodes
                    .iter()
                    .position(|u| u == v)
                    .expect("a model node")
            })
            .collect();
        let t = &state[0];
        let values: Vec<f64> = if let Some(s) = t.as_slice::<bool>() {
            s.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect()
        } else if let Some(x) = t.as_slice::<f32>() {
            x.iter().map(|&x| f64::from(x)).collect()
        } else {
            return Err(ExampleError::Check(format!(
                "block of kind `{}` holds {} states",
                block.node_kind(),
                t.dtype()
            )));
        };
        // [chains, samples, nodes] → rows chain-major.
        for (k, v) in values.iter().enumerate() {
            let (row, node) = (k / block.len(), k % block.len());
            data[[row, column[node]]] = *v;
        }
        all_finite &= values.iter().all(|v| v.is_finite());
        if block.node_kind() == NodeKind::SPIN {
            spins_pm1 &= values.iter().all(|&v| v == 1.0 || v == -1.0);
        }
    }

    let (p, q) = model.probe;
    let xp: Vec<f64> = data.column(p).to_vec();
    let probe_positive_share = xp.iter().filter(|&&x| x > 0.0).count() as f64 / draws as f64;
    let probe_spin_up_share =
        data.column(q).iter().filter(|&&s| s > 0.0).count() as f64 / draws as f64;
    let probe_kurtosis = excess_kurtosis(&xp);

    // PCA of the centred draws.
    let mean = data.mean_axis(Axis(0)).expect("draws");
    let centred = &data - &mean;
    let cov = centred.t().dot(&centred) / (draws as f64 - 1.0);
    let total: f64 = cov.diag().sum();
    let pcs = top_eigenvectors(&cov, 2);
    let explained = [pcs[0].0 / total, pcs[1].0 / total];
    let proj1 = centred.dot(&pcs[0].1);
    let proj2 = centred.dot(&pcs[1].1);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for r in 0..draws {
        let pt = (proj1[r], proj2[r]);
        if data[[r, q]] > 0.0 {
            up.push(pt)
        } else {
            down.push(pt)
        }
    }
    let pca_png = config.out_dir.join("pca.png");
    let mut plot = thrml_plot::Plot::new(format!(
        "Mixed {0}x{0} skip grid: samples on PC1/PC2",
        config.side
    ))
    .x_label(format!("PC1 ({:.1} % of variance)", 100.0 * explained[0]))
    .y_label(format!("PC2 ({:.1} %)", 100.0 * explained[1]));
    for (name, pts) in [("probe spin +1", &up), ("probe spin -1", &down)] {
        if !pts.is_empty() {
            plot = plot.scatter(name, pts);
        }
    }
    plot.save(&pca_png)?;

    let n_spins = model.is_spin.iter().filter(|&&s| s).count();
    let outcome = Outcome {
        n_spins,
        n_continuous: n - n_spins,
        n_edges: model.edges.len(),
        n_colours: n_colours(&colours),
        draws,
        all_finite,
        spins_pm1,
        probe_positive_share,
        probe_spin_up_share,
        probe_kurtosis,
        explained,
        pca_png,
        sample_s,
    };
    if config.verbose {
        println!(
            "{} spins + {} continuous nodes, {} edges (skips {SKIPS:?}), {} colours -> {} mixed superblocks; {draws} draws in {sample_s:.2} s",
            outcome.n_spins,
            outcome.n_continuous,
            outcome.n_edges,
            outcome.n_colours,
            outcome.n_colours
        );
        println!("all values finite: {all_finite}; spins exactly +-1: {spins_pm1}");
        println!(
            "probe x_{p} (linked to spin {q}): share > 0 = {probe_positive_share:.3}, spin +1 share = {probe_spin_up_share:.3} (each side >= {MIN_MODE_SHARE}), excess kurtosis = {probe_kurtosis:.3} (< {MAX_PROBE_KURTOSIS}; Gaussian: 0)"
        );
        println!(
            "PC1/PC2 explain {:.1} % / {:.1} % of the variance; plot: {}",
            100.0 * explained[0],
            100.0 * explained[1],
            outcome.pca_png.display()
        );
    }
    if !all_finite {
        return Err(ExampleError::Check("a sampled value is not finite".into()));
    }
    if !spins_pm1 {
        return Err(ExampleError::Check("a spin value is not +-1".into()));
    }
    for (what, share) in [
        ("x_p > 0", probe_positive_share),
        ("s_q = +1", probe_spin_up_share),
    ] {
        if !(MIN_MODE_SHARE..=1.0 - MIN_MODE_SHARE).contains(&share) {
            return Err(ExampleError::Check(format!(
                "probe: share of {what} is {share:.3}, not in [{MIN_MODE_SHARE}, {}]",
                1.0 - MIN_MODE_SHARE
            )));
        }
    }
    if probe_kurtosis >= MAX_PROBE_KURTOSIS {
        return Err(ExampleError::Check(format!(
            "probe x_{p}: excess kurtosis {probe_kurtosis:.3} is not below {MAX_PROBE_KURTOSIS}"
        )));
    }
    Ok(outcome)
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("target/examples/mixed_skip_grid");
    let mut seed = None;
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--seed" => seed = value().parse().ok(),
            "--out" => out = PathBuf::from(value()),
            other => {
                eprintln!("error: unknown argument {other:?}; see the example's docs");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let small = std::env::var("THRML_EXAMPLE_SMALL").is_ok_and(|v| v == "1");
    let mut config = if small {
        Config::small(out)
    } else {
        Config::full(out)
    };
    config.seed = seed.unwrap_or(config.seed);
    match run(&config) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
