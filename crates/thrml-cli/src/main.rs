//! The `thrml` command-line tool: sample and evaluate THRML models stored in files.
//!
//! ```text
//! thrml sample MODEL.json --chains N --warmup W --samples S --steps-per-sample K --seed X --out DIR [--threads T]
//! thrml energy MODEL.json --states STATES.npz --out ENERGIES.npy
//! thrml train MODEL.json --data DATA.npz --visible IDS --epochs E --batch B --lr LR --seed X --out TRAINED.json [...]
//! thrml demo [--seed X] [--chains N] [--samples S] [--out DIR]
//! thrml bench [--workload NAME,...] [--chains 1,16,256] [--threads 1,2] [--engine fused|generic] [--sweeps N] [--repeats R] [--json]
//! ```
//!
//! The model format is documented in `docs/model-format.md`, the commands in `docs/cli.md`.
//! On failure every command prints one line, `error: …`, to stderr and exits with 1 (a file
//! could not be read or written) or 2 (invalid arguments or invalid file contents).
//! Long runs (`sample`, `train`, `demo`) draw a progress bar on stderr when it is a
//! terminal; `--quiet` (any command) turns it off.

mod bench;
mod demo;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array1;
use thrml::io::{Model, read_npz, write_npy};
use thrml::{Error, Progress, SamplingSchedule, Tensor};

/// Block Gibbs sampling for probabilistic graphical models and energy-based models.
///
/// Models are JSON files in the `thrml-model/1` format (see docs/model-format.md): node
/// kinds (spin, categorical), nodes, factors (ising, spin, categorical, discrete), free
/// superblocks and clamped nodes. Arrays are read and written as NumPy .npy / .npz files.
#[derive(Debug, Parser)]
#[command(name = "thrml", version)]
struct Cli {
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sample a model with block Gibbs sampling and write the samples to DIR/samples.npz.
    ///
    /// Every chain starts from a uniformly random state drawn from the seed, runs WARMUP
    /// sweeps, is observed, and then SAMPLES − 1 more times runs STEPS_PER_SAMPLE sweeps and
    /// is observed. A sweep updates every free superblock once, in order. The output is
    /// DIR/samples.npz, one array per node kind with free nodes, named after the kind, of
    /// shape [chains, samples, nodes] (spins bool with true = +1, categoricals uint8),
    /// columns in ascending node id; and DIR/nodes.json, mapping each kind to the node ids of
    /// its columns. The same seed gives byte-identical output.
    Sample(SampleArgs),
    /// Evaluate the model's energy E(x) for a batch of states.
    ///
    /// STATES.npz holds one array per node kind of the model, named after the kind, of shape
    /// [M, nodes of that kind] with columns in ascending node id; every node is included,
    /// clamped ones too (the model's clamped values are ignored). Spins are bool (true = +1),
    /// categoricals uint8. The M energies are written as a float64 .npy file.
    Energy(EnergyArgs),
    /// Train a model's weights on data by KL-gradient descent and write the trained model.
    ///
    /// The visible nodes (--visible) are clamped to each data item in the positive phase,
    /// the model's other free nodes are latent, and its clamped blocks condition both
    /// phases. Each step estimates ∂KL/∂W = ⟨∂E/∂W⟩₊ − ⟨∂E/∂W⟩₋ for every factor weight from
    /// a shuffled minibatch (positive chains per item, negative chains fresh or persistent)
    /// and takes an Adam or SGD step. TRAINED.json is a thrml-model/1 file with the learned
    /// weights, ready for `thrml sample`. A progress bar shows the steps, the gradient norm
    /// and the held-out pseudo-log-likelihood (--holdout); --checkpoint/--resume continue a
    /// killed run exactly.
    Train(Box<train::TrainArgs>),
    /// Sample a built-in model and report what was done.
    ///
    /// The model is a 12×12 periodic Ising grid coupled to a ring of 12 three-state Potts
    /// nodes, with automatic blocks. The report gives the model size, the superblocks, the
    /// run length and time, and summary statistics of the samples (magnetisation,
    /// correlations, category occupation, energy).
    Demo(demo::DemoArgs),
    /// Measure sampling speed on standard workloads (flips/ns, wall time, chains, SIMD level).
    ///
    /// Workloads: Ising models with N(0,1) weights and biases (β = 1, DSATUR colour blocks)
    /// on D-Wave's Pegasus P(14) and P(16), Zephyr Z(12,4) and Chimera C(16) graphs, read
    /// from DATA/topologies/; a 5-state Potts model on a 256×256 periodic grid
    /// (checkerboard blocks); and a mixed model, a 128×128 periodic spin grid coupled to a
    /// 64×64 grid of 4-state categoricals. A flip is one node update in one chain. Each
    /// point runs once untimed, then REPEATS times; the median is reported. The engine is
    /// the fused SIMD path (or `--engine generic`) on each of `--threads`.
    Bench(bench::BenchArgs),
}

#[derive(Debug, Args)]
struct SampleArgs {
    /// The model file (JSON, format thrml-model/1).
    model: PathBuf,
    /// Number of independent chains.
    #[arg(long, default_value_t = 1)]
    chains: usize,
    /// Sweeps before the first sample.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Samples per chain (at least 1).
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Sweeps between consecutive samples (thinning).
    #[arg(long, default_value_t = 1)]
    steps_per_sample: usize,
    /// Random seed; it determines the initial states and the whole run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing) for samples.npz and nodes.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Worker threads (0: one per logical CPU). The samples do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Args)]
struct EnergyArgs {
    /// The model file (JSON, format thrml-model/1).
    model: PathBuf,
    /// The states: an .npz file with one array per node kind, [M, nodes of the kind].
    #[arg(long, value_name = "STATES.npz")]
    states: PathBuf,
    /// Where to write the energies: a float64 .npy file with one energy per state.
    #[arg(long, value_name = "ENERGIES.npy")]
    out: PathBuf,
}

/// A failure of a command, with its exit code.
#[derive(Debug)]
struct Failure {
    message: String,
    code: u8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::Io { .. } => 1,
            _ => 2,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

/// One line: newlines (which no message should contain) become spaces.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// clap's message in one line: the error and its tips, without the usage block.
fn clap_one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if line.starts_with("tip:") { "; " } else { " " });
        }
        out.push_str(line);
    }
    if !out.starts_with("error:") {
        out.insert_str(0, "error: ");
    }
    out.push_str(" (see 'thrml --help')");
    out
}

/// Have glibc map every allocation of 128 KiB or more on its own and unmap it when freed.
///
/// By default glibc raises that threshold whenever such a block is freed (up to 32 MiB),
/// so after a program is compiled the large buffers of a run (initial states, engine
/// tiles, samples) come from the heap, where memory that one phase frees is kept for the
/// next. Measured (`thrml bench`, 2 threads): Potts at 4,096 chains peaked at 557 MiB
/// with the default and at 426 MiB with the fixed threshold; at 256 chains, 72 and 59 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_large_buffers() {
    // SAFETY: `mallopt` sets one allocator parameter and has no other effect; this runs
    // first in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_large_buffers() {}

/// Let a closed output pipe end the process quietly, as it ends other Unix tools
/// (`thrml bench | head -1`). Rust programs start with `SIGPIPE` ignored, so a write to a
/// closed pipe fails instead, and `println!` panics on the failure. Files are never
/// affected: they are written to a temporary name and renamed when complete.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: restores the default action of one signal; this runs first in `main`,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    release_large_buffers();
    // Never show a raw panic or backtrace; a panic is a bug, reported in one line.
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{at}: {}; this is a bug in thrml",
            one_line(&payload)
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    if e.use_stderr() {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                _ => {
                    eprintln!("{}", clap_one_line(&e.render().to_string()));
                    ExitCode::from(2)
                }
            };
        }
    };
    let result = match cli.command {
        Command::Sample(args) => sample(&args, cli.quiet),
        Command::Energy(args) => energy(&args),
        Command::Train(args) => train::run(&args, cli.quiet),
        Command::Demo(args) => demo::run(&args, cli.quiet),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", one_line(&f.message));
            ExitCode::from(f.code)
        }
    }
}

fn schedule(
    warmup: usize,
    samples: usize,
    steps_per_sample: usize,
) -> Result<SamplingSchedule, Failure> {
    if samples == 0 {
        return Err(usage("--samples must be at least 1"));
    }
    SamplingSchedule::new(warmup, samples, steps_per_sample).map_err(Failure::from)
}

/// `W + (S − 1) · K`, or `None` on overflow.
fn total_sweeps(s: &SamplingSchedule) -> Option<usize> {
    s.n_samples
        .saturating_sub(1)
        .checked_mul(s.steps_per_sample)?
        .checked_add(s.n_warmup)
}

/// A progress bar of `total` sweeps on stderr, with the rate and the time left; hidden
/// with `--quiet` (indicatif also draws nothing when stderr is not a terminal).
pub(crate) fn sweep_bar(total: usize, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} sweeps ({per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Flips (node updates in one chain) per nanosecond.
pub(crate) fn flips_per_ns(nodes: usize, chains: usize, sweeps: usize, seconds: f64) -> f64 {
    nodes as f64 * chains as f64 * sweeps as f64 / (seconds.max(1e-12) * 1e9)
}

fn sample(args: &SampleArgs, quiet: bool) -> Result<(), Failure> {
    if args.chains == 0 {
        return Err(usage("--chains must be at least 1"));
    }
    let schedule = schedule(args.warmup, args.samples, args.steps_per_sample)?;
    let sweeps = total_sweeps(&schedule)
        .ok_or_else(|| usage("--warmup + (--samples − 1) × --steps-per-sample overflows"))?;
    let model = Model::from_path(&args.model)?;
    let bar = sweep_bar(sweeps, quiet);
    let start = Instant::now();
    let samples = thrml::with_threads(args.threads, || {
        let mut report = |p: Progress| bar.set_position(p.sweeps_done as u64);
        model.sample_with_progress(args.seed, args.chains, &schedule, Some(&mut report))
    });
    bar.finish_and_clear();
    let samples = samples??;
    let elapsed = start.elapsed().as_secs_f64();
    let rate = flips_per_ns(model.free_nodes().len(), args.chains, sweeps, elapsed);
    let path = samples.write_dir(&args.out)?;
    let kinds: Vec<String> = samples
        .kinds
        .iter()
        .map(|k| format!("{} `{}`", k.node_ids.len(), k.kind))
        .collect();
    println!(
        "sampled {} ({}) in {}: {} chains × {} samples, {sweeps} sweeps per chain ({} warmup + {} × {}), {elapsed:.3} s, {rate:.4} flips/ns; wrote {}",
        plural(model.free_nodes().len(), "free node", "free nodes"),
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        plural(model.free_superblocks().len(), "superblock", "superblocks"),
        args.chains,
        args.samples,
        args.warmup,
        args.samples - 1,
        args.steps_per_sample,
        path.display()
    );
    Ok(())
}

/// "1 thing", "2 things".
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn energy(args: &EnergyArgs) -> Result<(), Failure> {
    let model = Model::from_path(&args.model)?;
    let arrays = read_npz(&args.states)?;
    let energies = model.energy(&arrays, &args.states)?;
    write_npy(&args.out, &Tensor::F64(energies.clone().into_dyn()))?;
    println!("{}", energy_summary(&energies, &args.out));
    Ok(())
}

fn energy_summary(energies: &Array1<f64>, out: &Path) -> String {
    let m = energies.len();
    if m == 0 {
        return format!("wrote 0 energies to {}", out.display());
    }
    let min = energies.iter().copied().fold(f64::INFINITY, f64::min);
    let max = energies.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = energies.sum() / m as f64;
    format!(
        "wrote {m} energies to {} (min {min:.6}, mean {mean:.6}, max {max:.6})",
        out.display()
    )
}
