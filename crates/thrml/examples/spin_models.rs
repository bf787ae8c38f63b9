//! THRML's third notebook: spin models.
//!
//! * **Pegasus Ising model.** D-Wave's Pegasus P(14) graph (`DATA/topologies/pegasus14.txt`)
//!   with seeded N(0, 1) biases and couplings, `E(s) = −β (Σ_i b_i s_i + Σ_ij J_ij s_i s_j)`,
//!   blocked by a DSATUR colouring. The first 100 nodes are visible, the rest latent; a
//!   small random data batch gives a KL-gradient estimate ([`estimate_kl_grad`], chains
//!   started by [`hinton_init`]), whose shapes and norms are printed and checked.
//! * **Speed.** Flips per nanosecond (node updates × chains / wall time) against the number
//!   of chains, sampled by the fused engine; printed and drawn (`spin_fps.png` in `--out`,
//!   default `target/examples/spin_models/`).
//! * **Higher-order factors.** A small model with biases and 3-spin terms
//!   `E = −Σ_t w_t s_a s_b s_c` ([`SpinEBMFactor`] with three node groups), sampled and
//!   compared with exact enumeration ([`thrml::exact::ExactDistribution`]).
//!
//! ```text
//! cargo run --release -p thrml --example spin_models -- [--out DIR] [--seed 0] [--threads 0] [--data-dir ../shared/data]
//! THRML_EXAMPLE_SMALL=1 cargo run --release -p thrml --example spin_models   # a CI-sized run
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};
use rand::RngExt;
use thrml::exact::{DiscreteVar, ExactDistribution, sampled_values};
use thrml::graph::{Adjacency, colour_classes, dsatur_colouring, read_edge_list};
use thrml::{
    AbstractConditionalSampler, Block, BlockGibbsSpec, ChainRng, EBMFactor, FactorSamplingProgram,
    FactorizedEBM, IsingEBM, IsingSamplingProgram, IsingTrainingSpec, Key, Node, NodeKind,
    SamplingSchedule, SpinEBMFactor, SpinGibbsConditional, State, SuperBlock, Tensor,
    default_node_shape_dtypes, estimate_kl_grad, hinton_init, sample_states,
};
use thrml_plot::Plot;

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The folder holding `topologies/pegasus14.txt`.
    pub data_dir: PathBuf,
    /// Where the PNG goes.
    pub out: PathBuf,
    /// Seed of the weights, the data and the sampling.
    pub seed: u64,
    /// Visible nodes (the first ones of the graph).
    pub visible: usize,
    /// Data items.
    pub batch: usize,
    /// Positive chains per data item, negative chains.
    pub chains_pos: usize,
    /// Negative chains.
    pub chains_neg: usize,
    /// The schedule of both phases.
    pub schedule: SamplingSchedule,
    /// Chain counts of the speed measurement.
    pub fps_chains: Vec<usize>,
    /// Sweeps per speed measurement.
    pub fps_sweeps: usize,
    /// Chains and samples of the exact check.
    pub exact_chains: usize,
    /// Samples per chain of the exact check.
    pub exact_samples: usize,
    /// Print tables.
    pub verbose: bool,
}

impl Config {
    /// The full run.
    #[must_use]
    pub fn full(data_dir: PathBuf, out: PathBuf) -> Config {
        Config {
            data_dir,
            out,
            seed: 0,
            visible: 100,
            batch: 8,
            chains_pos: 2,
            chains_neg: 16,
            schedule: SamplingSchedule::new(50, 20, 2).expect("valid"),
            fps_chains: vec![1, 16, 64, 256, 1024],
            fps_sweeps: 20,
            exact_chains: 2048,
            exact_samples: 400,
            verbose: true,
        }
    }

    /// A CI-sized run.
    #[must_use]
    pub fn small(data_dir: PathBuf, out: PathBuf) -> Config {
        Config {
            batch: 4,
            chains_neg: 8,
            schedule: SamplingSchedule::new(10, 5, 1).expect("valid"),
            fps_chains: vec![1, 16, 64],
            fps_sweeps: 5,
            exact_chains: 1024,
            exact_samples: 200,
            ..Config::full(data_dir, out)
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Pegasus nodes and edges.
    pub nodes: usize,
    /// Pegasus edges.
    pub edges: usize,
    /// DSATUR colours.
    pub colours: usize,
    /// Length and L2 norm of the bias gradient.
    pub grad_b: (usize, f64),
    /// Length and L2 norm of the weight gradient.
    pub grad_w: (usize, f64),
    /// Every gradient entry is finite.
    pub grad_finite: bool,
    /// `(chains, flips per ns)`.
    pub fps: Vec<(usize, f64)>,
    /// Largest |sampled − exact| over the means of the 3-spin model.
    pub exact_err: f64,
    /// The tolerance it was checked against.
    pub exact_tol: f64,
    /// The PNG written.
    pub png: PathBuf,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChainRng) -> f32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

fn invalid(msg: String) -> thrml::Error {
    thrml::Error::Invalid(msg)
}

/// Run the three parts.
///
/// # Errors
/// If the topology cannot be read, from the library or the plotting, or
/// [`thrml::Error::Invalid`] if a check fails.
pub fn run(config: &Config) -> thrml::Result<Outcome> {
    let key = Key::new(config.seed);
    let mut rng = key.fold_in(7).chain_rngs(1).pop().expect("one");

    // Part 1: Pegasus, DSATUR blocks, a KL gradient.
    let path = config.data_dir.join("topologies/pegasus14.txt");
    let (n, edges) = read_edge_list(&path).map_err(|e| invalid(e.to_string()))?;
    let adj =
        Adjacency::from_edges(n, edges.iter().copied()).map_err(|e| invalid(e.to_string()))?;
    let classes = colour_classes(&dsatur_colouring(&adj));
    let nodes = Node::many(NodeKind::SPIN, n);
    let biases: Vec<f32> = (0..n).map(|_| normal(&mut rng)).collect();
    let weights: Vec<f32> = (0..edges.len()).map(|_| normal(&mut rng)).collect();
    let ising_edges: Vec<(Node, Node)> = edges.iter().map(|&(a, b)| (nodes[a], nodes[b])).collect();
    let ebm = IsingEBM::new(nodes.clone(), ising_edges.clone(), biases, weights, 1.0)?;
    let pick = |ix: &[usize]| Block::new(ix.iter().map(|&i| nodes[i]).collect());
    let visible: Vec<usize> = (0..config.visible.min(n)).collect();
    let all_blocks: Vec<Block> = classes
        .iter()
        .map(|c| pick(c))
        .collect::<thrml::Result<_>>()?;
    let latent_blocks: Vec<Block> = classes
        .iter()
        .map(|c| {
            c.iter()
                .copied()
                .filter(|&i| i >= visible.len())
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .map(|c| pick(&c))
        .collect::<thrml::Result<_>>()?;
    let spec = IsingTrainingSpec::new(
        ebm.clone(),
        vec![pick(&visible)?],
        vec![],
        latent_blocks
            .iter()
            .cloned()
            .map(SuperBlock::from)
            .collect(),
        all_blocks.iter().cloned().map(SuperBlock::from).collect(),
        config.schedule,
        config.schedule,
    )?;
    let data = Array2::from_shape_fn((config.batch, visible.len()), |_| rng.random::<bool>());
    let init_pos: Vec<Array3<bool>> = hinton_init(
        key.fold_in(1),
        &ebm,
        &latent_blocks,
        &[config.chains_pos, config.batch],
    )?
    .into_iter()
    .map(|a| a.into_dimensionality().map_err(|e| invalid(e.to_string())))
    .collect::<thrml::Result<_>>()?;
    let init_neg: Vec<Array2<bool>> =
        hinton_init(key.fold_in(2), &ebm, &all_blocks, &[config.chains_neg])?
            .into_iter()
            .map(|a| a.into_dimensionality().map_err(|e| invalid(e.to_string())))
            .collect::<thrml::Result<_>>()?;
    let grad = estimate_kl_grad(
        key.fold_in(3),
        &spec,
        &nodes,
        &ising_edges,
        &[data],
        &[],
        &init_pos,
        &init_neg,
    )?;
    let norm = |a: &Array1<f64>| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let grad_finite = grad
        .grad_b
        .iter()
        .chain(&grad.grad_w)
        .all(|x| x.is_finite());
    let grad_b = (grad.grad_b.len(), norm(&grad.grad_b));
    let grad_w = (grad.grad_w.len(), norm(&grad.grad_w));
    if config.verbose {
        println!(
            "Pegasus P(14): {n} nodes, {} edges, {} DSATUR colours; {} visible, batch {}",
            edges.len(),
            classes.len(),
            visible.len(),
            config.batch
        );
        println!(
            "KL gradient: grad_b [{}] norm {:.4}, grad_w [{}] norm {:.4}, all finite: {grad_finite}",
            grad_b.0, grad_b.1, grad_w.0, grad_w.1
        );
    }
    if grad_b.0 != n || grad_w.0 != edges.len() || !grad_finite {
        return Err(invalid(format!(
            "bad gradient: grad_b [{}] for {n} nodes, grad_w [{}] for {} edges, finite {grad_finite}",
            grad_b.0,
            grad_w.0,
            edges.len()
        )));
    }

    // Part 2: flips per ns against chains.
    let program = IsingSamplingProgram::new(&ebm, all_blocks.clone(), vec![])?;
    let schedule = SamplingSchedule::new(config.fps_sweeps, 1, 0)?;
    let probe = vec![Block::new(vec![nodes[0]])?];
    let mut fps = Vec::new();
    for &chains in &config.fps_chains {
        let init: Vec<State> = hinton_init(key.fold_in(4), &ebm, &all_blocks, &[chains])?
            .into_iter()
            .map(|a| vec![Tensor::Bool(a)])
            .collect();
        // One untimed run, then the best of three.
        let mut best = f64::INFINITY;
        for rep in 0..4 {
            let t = Instant::now();
            sample_states(key.fold_in(5), &program, &schedule, &init, &[], &probe)?;
            if rep > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        let flips = (n * chains * config.fps_sweeps) as f64;
        fps.push((chains, flips / (best * 1e9)));
    }
    if config.verbose {
        println!(
            "chains   flips/ns  ({} sweeps, best of 3)",
            config.fps_sweeps
        );
        for (c, f) in &fps {
            println!("{c:<8} {f:.4}");
        }
    }
    let pts: Vec<(f64, f64)> = fps.iter().map(|&(c, f)| (c as f64, f)).collect();
    let png = config.out.join("spin_fps.png");
    Plot::new("Pegasus P(14) Ising: sampling speed")
        .x_label("chains")
        .y_label("flips / ns")
        .log_x()
        .line("fused engine", &pts)
        .save(&png)
        .map_err(|e| invalid(format!("plot: {e}")))?;

    // Part 3: 3-spin factors against exact enumeration.
    let (exact_err, exact_tol) = three_spin_check(config, key.fold_in(6), &mut rng)?;
    if config.verbose {
        println!(
            "3-spin model: max |sampled - exact| mean = {exact_err:.4} (tolerance {exact_tol:.4})"
        );
    }
    if exact_err > exact_tol {
        return Err(invalid(format!(
            "3-spin model: sampled means are {exact_err:.4} from exact, above {exact_tol:.4}"
        )));
    }
    Ok(Outcome {
        nodes: n,
        edges: edges.len(),
        colours: classes.len(),
        grad_b,
        grad_w,
        grad_finite,
        fps,
        exact_err,
        exact_tol,
        png,
    })
}

/// Six spins, biases and four 3-spin terms; returns the largest error of the sampled means
/// and the tolerance (6 standard errors, from the per-chain spread of the means).
fn three_spin_check(config: &Config, key: Key, rng: &mut ChainRng) -> thrml::Result<(f64, f64)> {
    let m = 6;
    let s = Node::many(NodeKind::SPIN, m);
    let triples = [(0, 1, 2), (1, 3, 4), (2, 4, 5), (0, 3, 5)];
    let group = |f: fn(&(usize, usize, usize)) -> usize| {
        Block::new(triples.iter().map(|t| s[f(t)]).collect())
    };
    let w3: Vec<f32> = (0..triples.len()).map(|_| 0.8 * normal(rng)).collect();
    let b: Vec<f32> = (0..m).map(|_| 0.5 * normal(rng)).collect();
    let factors: Vec<Arc<dyn EBMFactor>> = vec![
        Arc::new(SpinEBMFactor::new(
            vec![Block::new(s.clone())?],
            ArrayD::from_shape_vec(IxDyn(&[m]), b).map_err(|e| invalid(e.to_string()))?,
        )?),
        Arc::new(SpinEBMFactor::new(
            vec![group(|t| t.0)?, group(|t| t.1)?, group(|t| t.2)?],
            ArrayD::from_shape_vec(IxDyn(&[triples.len()]), w3)
                .map_err(|e| invalid(e.to_string()))?,
        )?),
    ];
    // One node per block: every pair of nodes shares a term or may, so sample them in turn.
    let blocks: Vec<Block> = s
        .iter()
        .map(|&x| Block::new(vec![x]))
        .collect::<thrml::Result<_>>()?;
    let sampler: Arc<dyn AbstractConditionalSampler> = Arc::new(SpinGibbsConditional);
    let gspec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes())?;
    let program = FactorSamplingProgram::new(gspec, vec![sampler; m], &factors, vec![])?;
    let chains = config.exact_chains;
    let mut init_rngs = key.fold_in(0).chain_rngs(chains);
    let init: Vec<State> = (0..m)
        .map(|_| {
            let a =
                ArrayD::from_shape_fn(IxDyn(&[chains, 1]), |ix| init_rngs[ix[0]].random::<bool>());
            vec![Tensor::Bool(a)]
        })
        .collect();
    let all = vec![Block::new(s.clone())?];
    let schedule = SamplingSchedule::new(20, config.exact_samples, 1)?;
    let samples = sample_states(key.fold_in(1), &program, &schedule, &init, &[], &all)?;
    let vars: Vec<DiscreteVar> = s.iter().map(|&x| DiscreteVar::Spin(x)).collect();
    let values = sampled_values(&vars, &all, &samples)?;
    let exact = ExactDistribution::new(&FactorizedEBM::new(factors), &vars, &[])?.means();
    // values: chain-major, exact_samples draws per chain.
    let per = config.exact_samples;
    let (mut err, mut tol) = (0.0f64, 0.0f64);
    for (i, &mu) in exact.iter().enumerate() {
        let chain_means: Vec<f64> = (0..chains)
            .map(|c| {
                values[c * per..(c + 1) * per]
                    .iter()
                    .map(|v| if v[i] == 1 { 1.0 } else { -1.0 })
                    .sum::<f64>()
                    / per as f64
            })
            .collect();
        let mean = chain_means.iter().sum::<f64>() / chains as f64;
        let var = chain_means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (chains - 1) as f64;
        let se = (var / chains as f64).sqrt();
        err = err.max((mean - mu).abs());
        tol = tol.max(6.0 * se + 0.005);
    }
    Ok((err, tol))
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut data_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    let mut out = PathBuf::from("target/examples/spin_models");
    let (mut seed, mut threads) = (None, 0usize);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--out" => out = PathBuf::from(value()),
            "--seed" => seed = value().parse().ok(),
            "--threads" => threads = value().parse().unwrap_or(0),
            "--data-dir" => data_dir = PathBuf::from(value()),
            other => {
                eprintln!("error: unknown argument {other:?}; see the example's docs");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let small = std::env::var("THRML_EXAMPLE_SMALL").is_ok_and(|v| v == "1");
    let mut config = if small {
        Config::small(data_dir, out)
    } else {
        Config::full(data_dir, out)
    };
    config.seed = seed.unwrap_or(config.seed);
    match thrml::with_threads(threads, || run(&config)) {
        Ok(Ok(o)) => {
            println!("flips/ns against chains: {}", o.png.display());
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
