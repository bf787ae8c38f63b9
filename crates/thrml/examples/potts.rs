//! THRML's first notebook: a `q`-state Potts model on a periodic square grid.
//!
//! * **Model.** `q = 5` categories per site, identity couplings between nearest neighbours:
//!
//!   ```text
//!   E(s) = −β Σ_⟨ij⟩ δ(s_i, s_j)
//!   ```
//!
//!   built as one [`SquareCategoricalEBMFactor`] with weights `β · I` per edge, sampled by
//!   block Gibbs with the two checkerboard colours as blocks ([`thrml::graph::checkerboard`]).
//! * **Runs.** Uniformly random starts; β = 1 (THRML's setting) and a sweep of β across
//!   the ordering transition of the square-lattice Potts model, `β_c = ln(1 + √q)`
//!   (≈ 1.174 for `q = 5`). The state of every chain is recorded after every sweep.
//! * **Figures** (in `--out`, default `target/examples/potts/`):
//!   `potts_chains.png`, the final states of several chains at a β above the transition
//!   (domains); `potts_beta_sweep.png`, one final state per β; and
//!   `potts_energy.png`, the mean energy per site, `E / N`, against the sweep, one line per β.
//! * **Checks.** The nearest-neighbour agreement fraction (the mean of `δ(s_i, s_j)` over
//!   edges, chains and the second half of the sweeps) is printed for every β; the run fails
//!   unless it is high in the ordered phase (largest β) and close to the
//!   infinite-temperature value `1/q` in the disordered phase (smallest β).
//!
//! ```text
//! cargo run --release -p thrml --example potts -- [--out DIR] [--seed 0] [--threads 0]
//! THRML_EXAMPLE_SMALL=1 cargo run --release -p thrml --example potts   # a CI-sized run
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use rand::RngExt;
use thrml::graph::{checkerboard, grid_edges};
use thrml::{
    AbstractConditionalSampler, Block, BlockGibbsSpec, CategoricalGibbsConditional, EBMFactor,
    FactorSamplingProgram, Key, Node, NodeKind, SamplingSchedule, SquareCategoricalEBMFactor,
    State, Tensor, default_node_shape_dtypes, sample_states,
};
use thrml_plot::{Palette, Panel, Plot};

/// Categories per site.
pub const Q: usize = 5;

/// The ordering transition of the square-lattice `Q`-state Potts model, `ln(1 + √Q)`.
#[must_use]
pub fn beta_c() -> f64 {
    (1.0 + (Q as f64).sqrt()).ln()
}

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Grid side (even, for the checkerboard colouring of the torus).
    pub side: usize,
    /// Chains per β.
    pub chains: usize,
    /// Sweeps per β (the state is recorded after each).
    pub sweeps: usize,
    /// The β of the sweep (ascending); THRML's β = 1 is run as well.
    pub betas: Vec<f64>,
    /// The β whose chains are drawn in `potts_chains.png` (above the transition).
    pub show_beta: f64,
    /// Chains drawn in `potts_chains.png`.
    pub show_chains: usize,
    /// Seed of the starts and of the sampling.
    pub seed: u64,
    /// Where the PNGs go.
    pub out: PathBuf,
    /// Print the table.
    pub verbose: bool,
}

impl Config {
    /// THRML's setting: 20×20, 100 chains; 1,000 sweeps per β.
    #[must_use]
    pub fn full(out: PathBuf) -> Config {
        Config {
            side: 20,
            chains: 100,
            sweeps: 1000,
            betas: vec![0.5, 0.9, 1.1, 1.3, 1.6, 2.0],
            show_beta: 1.6,
            show_chains: 8,
            seed: 0,
            out,
            verbose: true,
        }
    }

    /// A CI-sized run: 12×12, 16 chains, 200 sweeps.
    #[must_use]
    pub fn small(out: PathBuf) -> Config {
        Config {
            side: 12,
            chains: 16,
            sweeps: 200,
            ..Config::full(out)
        }
    }
}

/// What one β gave.
#[derive(Clone, Debug)]
pub struct BetaRun {
    /// The inverse temperature.
    pub beta: f64,
    /// Mean of `δ(s_i, s_j)` over edges, chains and the second half of the sweeps.
    pub agreement: f64,
    /// Mean energy per site over chains, after each sweep (`E / N`, with β).
    pub energy: Vec<f64>,
    /// Final state (categories, row-major) of each chain.
    pub finals: Vec<Vec<u8>>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// β = 1 (THRML's setting).
    pub thrml: BetaRun,
    /// The β sweep.
    pub sweep: Vec<BetaRun>,
    /// The PNGs written: chains, β sweep, energy.
    pub pngs: Vec<PathBuf>,
    /// Seconds sampling.
    pub sample_s: f64,
}

/// The agreement above which the largest β counts as ordered.
pub const ORDERED_ABOVE: f64 = 0.7;
/// The agreement below which the smallest β counts as disordered (`1/Q = 0.2` at β = 0).
pub const DISORDERED_BELOW: f64 = 0.35;

/// Sample one β: returns the agreement, the energy trace and the final states.
fn run_beta(config: &Config, beta: f64, key: Key) -> thrml::Result<BetaRun> {
    let side = config.side;
    let n = side * side;
    let edges = grid_edges(side, side, true);
    let nodes = Node::many(NodeKind::CATEGORICAL, n);
    let heads = Block::new(edges.iter().map(|&(a, _)| nodes[a]).collect())?;
    let tails = Block::new(edges.iter().map(|&(_, b)| nodes[b]).collect())?;
    let identity: Vec<f32> = (0..Q * Q)
        .map(|i| if i / Q == i % Q { beta as f32 } else { 0.0 })
        .collect();
    let weights = ArrayD::from_shape_vec(IxDyn(&[edges.len(), Q, Q]), identity.repeat(edges.len()))
        .map_err(|e| thrml::Error::Invalid(e.to_string()))?;
    let factor = SquareCategoricalEBMFactor::new(vec![heads, tails], weights)?;
    let factors: Vec<Arc<dyn EBMFactor>> = vec![Arc::new(factor)];
    let mut classes = vec![Vec::new(), Vec::new()];
    for (i, c) in checkerboard(side, side).into_iter().enumerate() {
        classes[c].push(nodes[i]);
    }
    let blocks: Vec<Block> = classes
        .into_iter()
        .map(Block::new)
        .collect::<thrml::Result<_>>()?;
    let sampler: Arc<dyn AbstractConditionalSampler> =
        Arc::new(CategoricalGibbsConditional::new(Q));
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes())?;
    let program = FactorSamplingProgram::new(spec, vec![sampler; 2], &factors, vec![])?;

    // Uniformly random starts, one generator per chain.
    let mut rngs = key.fold_in(0).chain_rngs(config.chains);
    let init: Vec<State> = blocks
        .iter()
        .map(|b| {
            let data: Vec<u8> = rngs
                .iter_mut()
                .flat_map(|r| {
                    (0..b.len())
                        .map(|_| r.random_range(0..Q as u8))
                        .collect::<Vec<_>>()
                })
                .collect();
            let a = ArrayD::from_shape_vec(IxDyn(&[config.chains, b.len()]), data)
                .expect("shape matches");
            vec![Tensor::U8(a)]
        })
        .collect();

    // Record every node (in grid order) after every sweep.
    let all = Block::new(nodes.clone())?;
    let schedule = SamplingSchedule::new(1, config.sweeps, 1)?;
    let samples = sample_states(key.fold_in(1), &program, &schedule, &init, &[], &[all])?;
    let states = samples[0][0]
        .as_slice::<u8>()
        .ok_or_else(|| thrml::Error::Invalid("expected u8 samples".into()))?;
    let at = |c: usize, t: usize| &states[(c * config.sweeps + t) * n..][..n];

    let mut energy = vec![0.0; config.sweeps];
    let (mut agree, mut counted) = (0usize, 0usize);
    for c in 0..config.chains {
        for (t, e) in energy.iter_mut().enumerate() {
            let s = at(c, t);
            let same = edges.iter().filter(|&&(a, b)| s[a] == s[b]).count();
            *e += -beta * same as f64 / n as f64 / config.chains as f64;
            if 2 * t >= config.sweeps {
                agree += same;
                counted += edges.len();
            }
        }
    }
    let finals = (0..config.chains)
        .map(|c| at(c, config.sweeps - 1).to_vec())
        .collect();
    Ok(BetaRun {
        beta,
        agreement: agree as f64 / counted as f64,
        energy,
        finals,
    })
}

fn plot_err(e: thrml_plot::PlotError) -> thrml::Error {
    thrml::Error::Invalid(format!("plot: {e}"))
}

fn as_f32(s: &[u8]) -> Vec<f32> {
    s.iter().map(|&v| f32::from(v)).collect()
}

/// Sample β = 1 and the β sweep, draw the three PNGs and check the two phases.
///
/// # Errors
/// From the library or the plotting, or [`thrml::Error::Invalid`] if a phase check fails.
pub fn run(config: &Config) -> thrml::Result<Outcome> {
    let key = Key::new(config.seed);
    let start = Instant::now();
    let thrml = run_beta(config, 1.0, key.fold_in(1000))?;
    let sweep: Vec<BetaRun> = config
        .betas
        .iter()
        .enumerate()
        .map(|(i, &b)| run_beta(config, b, key.fold_in(i as u64)))
        .collect::<thrml::Result<_>>()?;
    let sample_s = start.elapsed().as_secs_f64();
    let side = config.side;

    if config.verbose {
        println!(
            "{Q}-state Potts, {side}x{side} torus, {} chains, {} sweeps; beta_c = ln(1 + sqrt 5) = {:.3}",
            config.chains,
            config.sweeps,
            beta_c()
        );
        println!("beta   agreement   E/N (last sweep)");
        for r in std::iter::once(&thrml).chain(&sweep) {
            println!(
                "{:<6} {:<11.4} {:.4}",
                r.beta,
                r.agreement,
                r.energy.last().copied().unwrap_or(f64::NAN)
            );
        }
    }

    // PNG 1: several chains at a β above the transition.
    let shown = sweep
        .iter()
        .find(|r| (r.beta - config.show_beta).abs() < 1e-9)
        .unwrap_or_else(|| sweep.last().expect("at least one beta"));
    let mut chains = Panel::new(
        format!(
            "Potts q={Q}, beta = {} (> beta_c = {:.3}): final states",
            shown.beta,
            beta_c()
        ),
        4,
    );
    for (c, s) in shown.finals.iter().take(config.show_chains).enumerate() {
        chains = chains.tile(
            format!("chain {c}"),
            side,
            side,
            &as_f32(s),
            Palette::Categorical(Q),
        );
    }
    // PNG 2: one final state per β.
    let mut betas = Panel::new(
        format!("Potts q={Q}: final state per beta"),
        sweep.len().min(6),
    );
    for r in &sweep {
        betas = betas.tile(
            format!("beta = {}", r.beta),
            side,
            side,
            &as_f32(&r.finals[0]),
            Palette::Categorical(Q),
        );
    }
    // PNG 3: energy per site against sweep.
    let mut energy = Plot::new(format!("Potts q={Q}: mean energy per site"))
        .x_label("sweep")
        .y_label("E / N");
    for r in &sweep {
        let pts: Vec<(f64, f64)> = r
            .energy
            .iter()
            .enumerate()
            .map(|(t, &e)| ((t + 1) as f64, e))
            .collect();
        energy = energy.line(format!("beta = {}", r.beta), &pts);
    }
    let pngs = vec![
        config.out.join("potts_chains.png"),
        config.out.join("potts_beta_sweep.png"),
        config.out.join("potts_energy.png"),
    ];
    chains.save(&pngs[0]).map_err(plot_err)?;
    betas.save(&pngs[1]).map_err(plot_err)?;
    energy.save(&pngs[2]).map_err(plot_err)?;

    let low = sweep.first().expect("at least one beta");
    let high = sweep.last().expect("at least one beta");
    if high.agreement <= ORDERED_ABOVE {
        return Err(thrml::Error::Invalid(format!(
            "beta = {}: agreement {:.4} is not above {ORDERED_ABOVE} (not ordered)",
            high.beta, high.agreement
        )));
    }
    if low.agreement >= DISORDERED_BELOW {
        return Err(thrml::Error::Invalid(format!(
            "beta = {}: agreement {:.4} is not below {DISORDERED_BELOW} (not disordered)",
            low.beta, low.agreement
        )));
    }
    Ok(Outcome {
        thrml,
        sweep,
        pngs,
        sample_s,
    })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("target/examples/potts");
    let (mut seed, mut threads) = (None, 0usize);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--out" => out = PathBuf::from(value()),
            "--seed" => seed = value().parse().ok(),
            "--threads" => threads = value().parse().unwrap_or(0),
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
    match thrml::with_threads(threads, || run(&config)) {
        Ok(Ok(o)) => {
            println!("sampling took {:.2} s", o.sample_s);
            println!(
                "beta = {} (above the transition): domains in {}",
                config.show_beta,
                o.pngs[0].display()
            );
            println!("one state per beta: {}", o.pngs[1].display());
            println!("energy per site against sweep: {}", o.pngs[2].display());
            println!(
                "checks passed: agreement {:.3} > {ORDERED_ABOVE} at beta = {}, {:.3} < {DISORDERED_BELOW} at beta = {}",
                o.sweep.last().map_or(f64::NAN, |r| r.agreement),
                o.sweep.last().map_or(f64::NAN, |r| r.beta),
                o.sweep.first().map_or(f64::NAN, |r| r.agreement),
                o.sweep.first().map_or(f64::NAN, |r| r.beta),
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
