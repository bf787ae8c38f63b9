//! `thrml bench`: build standard workloads and measure how fast the sampler runs them.
//!
//! Every workload is built through the library (Ising models with [`IsingEBM`] and
//! [`IsingSamplingProgram`], the others with discrete EBM factors and a
//! [`FactorSamplingProgram`]). For every chain count the same call is run once untimed
//! (warmup) and then `--repeats` times timed; the figures are the median (and min / max) of
//! the timed runs.
//!
//! **What is timed:** one call of [`sample_with_observation`] with schedule
//! `(n_warmup = sweeps, n_samples = 1, steps_per_sample = 0)` and an observer that does
//! nothing. That is `sweeps` full sweeps plus the call's set-up (checking the initial state
//! and copying it into the global state, building the per-chain generators and sampler
//! buffers). The set-up alone is measured separately, once, with a 0-sweep schedule and
//! reported as `setup`; it is not subtracted.
//!
//! A *flip* is one node update in one chain, so a run does `nodes × chains × sweeps` flips.
//! The engine is the library's fused SIMD path (`--engine fused`, the default: what
//! `sample_with_observation` runs for these built-in models) or its generic per-block path
//! (`--engine generic`), on each thread count of `--threads`. The samples do not depend on
//! the thread count.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use ndarray::{Array1, ArrayD, IxDyn};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde_json::{Value, json};
use thrml::graph::{
    Adjacency, checkerboard, colour_classes, dsatur_colouring, grid_edges, n_colours,
    read_edge_list,
};
use thrml::{
    AbstractConditionalSampler, AbstractObserver, Block, BlockGibbsSpec, BlockSamplingProgram,
    CategoricalEBMFactor, CategoricalGibbsConditional, ChainRng, DiscreteEBMFactor, EBMFactor,
    FactorSamplingProgram, IsingEBM, IsingSamplingProgram, Key, Node, NodeKind, SamplingSchedule,
    SpinEBMFactor, SpinGibbsConditional, SquareCategoricalEBMFactor, State, SuperBlock, Tensor,
    default_node_shape_dtypes, hinton_init, sample_with_observation,
};

use crate::{Failure, usage};

/// With no `--sweeps`, each run does about this many flips (at least [`AUTO_MIN_SWEEPS`]):
/// about 0.2 s at 2.5 flips/ns, so that the call's set-up (at 4,096 chains of Pegasus(14)
/// about 10 ms, mostly the kernel faulting in the 17 MiB output state) stays near 5 %.
const AUTO_FLIPS: f64 = 5e8;
/// With no `--sweeps`, at least this many sweeps, so that the call's set-up stays small.
const AUTO_MIN_SWEEPS: usize = 10;
/// With no `--sweeps`, at most this many sweeps.
const AUTO_MAX_SWEEPS: usize = 10_000;
/// Side of the Potts grid.
const POTTS_SIDE: usize = 256;
/// States of a Potts node.
const POTTS_STATES: usize = 5;
/// Side of the spin grid of the mixed model.
const MIXED_SIDE: usize = 128;
/// Categories of the categorical nodes of the mixed model.
const MIXED_CATEGORIES: usize = 4;

/// A standard workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Workload {
    /// Ising model on D-Wave's Pegasus P(14) (`topologies/pegasus14.txt`).
    Pegasus14,
    /// Ising model on D-Wave's Pegasus P(16) (`topologies/pegasus16.txt`).
    Pegasus16,
    /// Ising model on D-Wave's Zephyr Z(12, 4) (`topologies/zephyr12_4.txt`).
    Zephyr,
    /// Ising model on D-Wave's Chimera C(16) (`topologies/chimera16.txt`).
    Chimera,
    /// 5-state Potts model on a 256×256 periodic grid, checkerboard blocks.
    Potts,
    /// 128×128 periodic spin grid coupled to a 64×64 periodic grid of 4-state categoricals.
    Mixed,
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Pegasus14,
        Workload::Pegasus16,
        Workload::Zephyr,
        Workload::Chimera,
        Workload::Potts,
        Workload::Mixed,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Pegasus14 => "pegasus14",
            Workload::Pegasus16 => "pegasus16",
            Workload::Zephyr => "zephyr",
            Workload::Chimera => "chimera",
            Workload::Potts => "potts",
            Workload::Mixed => "mixed",
        }
    }

    /// The topology file, relative to the data directory, for the Ising workloads.
    fn topology(self) -> Option<&'static str> {
        match self {
            Workload::Pegasus14 => Some("topologies/pegasus14.txt"),
            Workload::Pegasus16 => Some("topologies/pegasus16.txt"),
            Workload::Zephyr => Some("topologies/zephyr12_4.txt"),
            Workload::Chimera => Some("topologies/chimera16.txt"),
            Workload::Potts | Workload::Mixed => None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Workloads to run: pegasus14, pegasus16, zephyr, chimera, potts, mixed. Repeat the
    /// option or give a comma-separated list; default all.
    #[arg(long = "workload", value_name = "NAME", value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Chain counts to run, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,16,256"
    )]
    chains: Vec<usize>,
    /// Sweeps per timed run. Default: enough for about 5·10⁸ flips, at least 10.
    #[arg(long, value_name = "N")]
    sweeps: Option<usize>,
    /// Timed runs per point (after one untimed warmup run); the median is reported.
    #[arg(long, value_name = "R", default_value_t = 5)]
    repeats: usize,
    /// Seed of the model weights, the initial states and the runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The shared data folder holding `topologies/`. Default: `../shared/data` relative to
    /// the current directory, else the one beside the repository this binary was built from.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Thread counts to run, comma-separated. Default: the number of logical CPUs.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    threads: Vec<usize>,
    /// The engine: the fused SIMD kernels or the generic per-block path.
    #[arg(long, value_enum, default_value_t = Engine::Fused)]
    engine: Engine,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Which sampling path to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Engine {
    /// The fused SIMD kernels (the default path of the library for built-in models).
    Fused,
    /// The generic path: every block calls its sampler.
    Generic,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Fused => "fused",
            Engine::Generic => "generic",
        }
    }
}

/// The instruction set of the fused kernels on this CPU ([`thrml::fused::kernel_isa`]),
/// printed so that figures can be compared.
pub(crate) fn simd_level() -> &'static str {
    thrml::fused::kernel_isa()
}

/// The CPU model name from `/proc/cpuinfo`, where there is one.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The data directory: `--data-dir`, else `../shared/data` if it exists, else the shared
/// folder beside the repository the binary was built from.
fn data_dir(arg: Option<&Path>) -> PathBuf {
    if let Some(dir) = arg {
        return dir.to_path_buf();
    }
    let local = PathBuf::from("../shared/data");
    if local.is_dir() {
        return local;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if repo.is_dir() { repo } else { local }
}

/// A built workload, ready to run.
struct Built {
    nodes: usize,
    /// Pairwise couplings (factor instances between two nodes).
    edges: usize,
    /// Colours (sequential superblocks per sweep).
    colours: usize,
    /// The compiled program (an `IsingSamplingProgram` or a `FactorSamplingProgram`).
    program: Box<dyn Deref<Target = BlockSamplingProgram> + Send + Sync>,
    /// Initial states for a number of chains.
    init: Box<dyn Fn(usize) -> Vec<State> + Send + Sync>,
    /// Build phases in order, seconds: (name, time).
    phases: Vec<(&'static str, f64)>,
    /// Program compile times of every repeat, seconds.
    program_times: Vec<f64>,
}

/// An observer that records nothing.
struct NoObserver;

impl AbstractObserver for NoObserver {
    type Carry = ();
    type Output = ();

    fn observe(
        &self,
        _: &BlockSamplingProgram,
        _: &[State],
        _: &mut (),
        _: usize,
    ) -> thrml::Result<()> {
        Ok(())
    }
}

fn lib(e: thrml::Error) -> Failure {
    Failure::from(e)
}

fn weights_rng(seed: u64, workload: Workload) -> ChainRng {
    Key::new(seed)
        .fold_in(workload as u64)
        .chain_rngs(1)
        .pop()
        .expect("one generator")
}

fn normals(rng: &mut ChainRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

fn seconds_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Compile a program `repeats` times (at least once); returns the last one and all times.
fn compile_repeatedly<P>(
    repeats: usize,
    mut compile: impl FnMut() -> thrml::Result<P>,
) -> Result<(P, Vec<f64>), Failure> {
    let mut times = Vec::new();
    loop {
        let t = Instant::now();
        let p = compile().map_err(lib)?;
        times.push(seconds_since(t));
        if times.len() >= repeats.max(1) {
            return Ok((p, times));
        }
    }
}

/// An Ising model with N(0, 1) weights and biases, β = 1, on a topology file, with DSATUR
/// colour blocks.
fn build_ising(
    workload: Workload,
    path: &Path,
    seed: u64,
    repeats: usize,
) -> Result<Built, Failure> {
    let t = Instant::now();
    let (n, edge_list) = read_edge_list(path).map_err(|e| Failure {
        code: if matches!(e, thrml::graph::GraphError::Io { .. }) {
            1
        } else {
            2
        },
        message: e.to_string(),
    })?;
    let read = seconds_since(t);

    let t = Instant::now();
    let adj =
        Adjacency::from_edges(n, edge_list.iter().copied()).map_err(|e| usage(e.to_string()))?;
    let colours = dsatur_colouring(&adj);
    let classes = colour_classes(&colours);
    let colour = seconds_since(t);

    let t = Instant::now();
    let mut rng = weights_rng(seed, workload);
    let biases = normals(&mut rng, n);
    let weights = normals(&mut rng, edge_list.len());
    let nodes = Node::many(NodeKind::SPIN, n);
    let edges = edge_list
        .iter()
        .map(|&(a, b)| (nodes[a], nodes[b]))
        .collect();
    let ebm = IsingEBM::new(nodes.clone(), edges, biases, weights, 1.0).map_err(lib)?;
    let blocks: Vec<Block> = classes
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| Block::new(c.iter().map(|&i| nodes[i]).collect()))
        .collect::<thrml::Result<_>>()
        .map_err(lib)?;
    let model = seconds_since(t);

    let (program, program_times) = compile_repeatedly(repeats, || {
        IsingSamplingProgram::new(&ebm, blocks.clone(), vec![])
    })?;
    let init_key = Key::new(seed).fold_in(1000);
    let init_blocks = blocks.clone();
    let init = Box::new(move |chains: usize| -> Vec<State> {
        hinton_init(init_key, &ebm, &init_blocks, &[chains])
            .expect("the blocks are the model's nodes")
            .into_iter()
            .map(|a| vec![Tensor::from(a)])
            .collect()
    });
    Ok(Built {
        nodes: n,
        edges: edge_list.len(),
        colours: n_colours(&colours),
        program: Box::new(program),
        init,
        phases: vec![
            ("read", read),
            ("colour", colour),
            ("model", model),
            ("program", median(&program_times)),
        ],
        program_times,
    })
}

/// Uniformly random initial states of `blocks` (`values[b]` values per node of block `b`).
fn uniform_init(key: Key, blocks: &[Block], values: &[usize], chains: usize) -> Vec<State> {
    /// `len` draws of `draw` per chain, chain-major, in a buffer of exactly that size.
    fn draws<T>(
        rngs: &mut [ChainRng],
        len: usize,
        mut draw: impl FnMut(&mut ChainRng) -> T,
    ) -> Vec<T> {
        let mut data = Vec::with_capacity(rngs.len() * len);
        for r in rngs {
            data.extend((0..len).map(|_| draw(r)));
        }
        data
    }
    let mut rngs = key.chain_rngs(chains);
    blocks
        .iter()
        .zip(values)
        .map(|(b, &k)| {
            let shape = IxDyn(&[chains, b.len()]);
            let t = if b.node_kind() == NodeKind::SPIN {
                let data = draws(&mut rngs, b.len(), |r| r.random::<bool>());
                Tensor::Bool(ArrayD::from_shape_vec(shape, data).expect("shape matches"))
            } else {
                let data = draws(&mut rngs, b.len(), |r| {
                    u8::try_from(r.random_range(0..k)).expect("k ≤ 256")
                });
                Tensor::U8(ArrayD::from_shape_vec(shape, data).expect("shape matches"))
            };
            vec![t]
        })
        .collect()
}

/// A 5-state Potts model, `E = −Σ_{⟨ij⟩} [c_i = c_j]` (J = 1, β = 1), on a 256×256
/// periodic grid with checkerboard blocks.
fn build_potts(seed: u64, repeats: usize) -> Result<Built, Failure> {
    let t = Instant::now();
    let side = POTTS_SIDE;
    let k = POTTS_STATES;
    let n = side * side;
    let edge_list = grid_edges(side, side, true);
    let nodes = Node::many(NodeKind::CATEGORICAL, n);
    let heads = Block::new(edge_list.iter().map(|&(a, _)| nodes[a]).collect()).map_err(lib)?;
    let tails = Block::new(edge_list.iter().map(|&(_, b)| nodes[b]).collect()).map_err(lib)?;
    let identity: Vec<f32> = (0..k * k)
        .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
        .collect();
    let n_edges = edge_list.len();
    drop(edge_list); // the blocks hold the edges now; not kept through compile
    let weights = ArrayD::from_shape_vec(IxDyn(&[n_edges, k, k]), identity.repeat(n_edges))
        .expect("shape matches");
    let factor = SquareCategoricalEBMFactor::new(vec![heads, tails], weights).map_err(lib)?;
    let factors: Vec<Arc<dyn EBMFactor>> = vec![Arc::new(factor)];
    let mut classes = vec![Vec::new(), Vec::new()];
    for (i, c) in checkerboard(side, side).into_iter().enumerate() {
        classes[c].push(nodes[i]);
    }
    let blocks: Vec<Block> = classes
        .into_iter()
        .map(Block::new)
        .collect::<thrml::Result<_>>()
        .map_err(lib)?;
    let model = seconds_since(t);

    let sampler: Arc<dyn AbstractConditionalSampler> =
        Arc::new(CategoricalGibbsConditional::new(k));
    let (program, program_times) = compile_repeatedly(repeats, || {
        let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes())?;
        FactorSamplingProgram::new(spec, vec![sampler.clone(); 2], &factors, vec![])
    })?;
    let init_key = Key::new(seed).fold_in(1000);
    let init = Box::new(move |chains: usize| uniform_init(init_key, &blocks, &[k, k], chains));
    Ok(Built {
        nodes: n,
        edges: n_edges,
        colours: 2,
        program: Box::new(program),
        init,
        phases: vec![("model", model), ("program", median(&program_times))],
        program_times,
    })
}

/// A mixed model: a 128×128 periodic spin grid (N(0, 1) biases and couplings) and a 64×64
/// periodic grid of 4-state categoricals (N(0, 1) bias tables and pair tables); each
/// categorical is coupled to the four spins of its 2×2 plaquette by an order-2
/// spin–categorical [`DiscreteEBMFactor`] with N(0, 1) weights. Blocks: DSATUR colouring of
/// the whole graph, each colour class split by kind into one superblock.
fn build_mixed(seed: u64, repeats: usize) -> Result<Built, Failure> {
    let t = Instant::now();
    let side = MIXED_SIDE;
    let half = side / 2;
    let k = MIXED_CATEGORIES;
    let n_spin = side * side;
    let n_cat = half * half;
    let n = n_spin + n_cat;
    let spins = Node::many(NodeKind::SPIN, n_spin);
    let cats = Node::many(NodeKind::CATEGORICAL, n_cat);
    let mut rng = weights_rng(seed, Workload::Mixed);
    let block = |ns: Vec<Node>| Block::new(ns).map_err(lib);
    let tensor = |shape: &[usize], data: Vec<f32>| {
        ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape matches")
    };

    // Spin–spin: biases and grid couplings.
    let spin_edges = grid_edges(side, side, true);
    let spin_bias = SpinEBMFactor::new(
        vec![block(spins.clone())?],
        Array1::from(normals(&mut rng, n_spin)).into_dyn(),
    )
    .map_err(lib)?;
    let spin_pairs = SpinEBMFactor::new(
        vec![
            block(spin_edges.iter().map(|&(a, _)| spins[a]).collect())?,
            block(spin_edges.iter().map(|&(_, b)| spins[b]).collect())?,
        ],
        Array1::from(normals(&mut rng, spin_edges.len())).into_dyn(),
    )
    .map_err(lib)?;
    // Categorical: bias tables and grid pair tables.
    let cat_edges = grid_edges(half, half, true);
    let cat_bias = CategoricalEBMFactor::new(
        vec![block(cats.clone())?],
        tensor(&[n_cat, k], normals(&mut rng, n_cat * k)),
    )
    .map_err(lib)?;
    let cat_pairs = CategoricalEBMFactor::new(
        vec![
            block(cat_edges.iter().map(|&(a, _)| cats[a]).collect())?,
            block(cat_edges.iter().map(|&(_, b)| cats[b]).collect())?,
        ],
        tensor(
            &[cat_edges.len(), k, k],
            normals(&mut rng, cat_edges.len() * k * k),
        ),
    )
    .map_err(lib)?;
    // Spin–categorical: categorical (r, c) of the half grid to spins (2r + dr, 2c + dc).
    let mut mixed_edges = Vec::with_capacity(4 * n_cat);
    for r in 0..half {
        for c in 0..half {
            for (dr, dc) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                mixed_edges.push(((2 * r + dr) * side + 2 * c + dc, r * half + c));
            }
        }
    }
    let mixed = DiscreteEBMFactor::new(
        vec![block(mixed_edges.iter().map(|&(s, _)| spins[s]).collect())?],
        vec![block(mixed_edges.iter().map(|&(_, c)| cats[c]).collect())?],
        tensor(
            &[mixed_edges.len(), k],
            normals(&mut rng, mixed_edges.len() * k),
        ),
    )
    .map_err(lib)?;
    let factors: Vec<Arc<dyn EBMFactor>> = vec![
        Arc::new(spin_bias),
        Arc::new(spin_pairs),
        Arc::new(cat_bias),
        Arc::new(cat_pairs),
        Arc::new(mixed),
    ];
    let model = seconds_since(t);

    // Colour the whole interaction graph (spins 0.., categoricals n_spin..).
    let t = Instant::now();
    let all_edges = spin_edges
        .iter()
        .copied()
        .chain(cat_edges.iter().map(|&(a, b)| (n_spin + a, n_spin + b)))
        .chain(mixed_edges.iter().map(|&(s, c)| (s, n_spin + c)));
    let adj = Adjacency::from_edges(n, all_edges).map_err(|e| usage(e.to_string()))?;
    let colours = dsatur_colouring(&adj);
    let node_of = |i: usize| {
        if i < n_spin {
            spins[i]
        } else {
            cats[i - n_spin]
        }
    };
    let mut superblocks = Vec::new();
    let mut values = Vec::new();
    let mut samplers: Vec<Arc<dyn AbstractConditionalSampler>> = Vec::new();
    for class in colour_classes(&colours) {
        let (s, c): (Vec<usize>, Vec<usize>) = class.into_iter().partition(|&i| i < n_spin);
        let mut sb = Vec::new();
        if !s.is_empty() {
            sb.push(block(s.into_iter().map(node_of).collect())?);
            values.push(2);
            samplers.push(Arc::new(SpinGibbsConditional));
        }
        if !c.is_empty() {
            sb.push(block(c.into_iter().map(node_of).collect())?);
            values.push(k);
            samplers.push(Arc::new(CategoricalGibbsConditional::new(k)));
        }
        if !sb.is_empty() {
            superblocks.push(SuperBlock(sb));
        }
    }
    let colour = seconds_since(t);

    let (program, program_times) = compile_repeatedly(repeats, || {
        let spec = BlockGibbsSpec::new(superblocks.clone(), vec![], &default_node_shape_dtypes())?;
        FactorSamplingProgram::new(spec, samplers.clone(), &factors, vec![])
    })?;
    let blocks: Vec<Block> = superblocks.iter().flat_map(|sb| sb.0.clone()).collect();
    let init_key = Key::new(seed).fold_in(1000);
    let init = Box::new(move |chains: usize| uniform_init(init_key, &blocks, &values, chains));
    Ok(Built {
        nodes: n,
        edges: spin_edges.len() + cat_edges.len() + mixed_edges.len(),
        colours: n_colours(&colours),
        program: Box::new(program),
        init,
        phases: vec![
            ("model", model),
            ("colour", colour),
            ("program", median(&program_times)),
        ],
        program_times,
    })
}

/// The median of a non-empty sample.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// One measured point.
struct Point {
    chains: usize,
    sweeps: usize,
    times: Vec<f64>,
    setup: f64,
}

impl Point {
    fn flips(&self, nodes: usize) -> f64 {
        nodes as f64 * self.chains as f64 * self.sweeps as f64
    }
}

fn run_point(
    built: &Built,
    chains: usize,
    sweeps: usize,
    repeats: usize,
    seed: u64,
) -> Result<Point, Failure> {
    let key = Key::new(seed).fold_in(2000);
    // Each run is handed its own initial states (drawn untimed), so that it can reuse
    // their memory for the global state.
    let run = |schedule: &SamplingSchedule, k: Key| -> Result<f64, Failure> {
        let init = (built.init)(chains);
        let t = Instant::now();
        sample_with_observation(k, &built.program, schedule, init, &[], (), &NoObserver)
            .map_err(lib)?;
        Ok(seconds_since(t))
    };
    let schedule = SamplingSchedule::new(sweeps, 1, 0).map_err(lib)?;
    run(&schedule, key)?; // warmup, untimed
    let setup = run(&SamplingSchedule::new(0, 1, 0).map_err(lib)?, key)?;
    let times = (0..repeats)
        .map(|r| run(&schedule, key.fold_in(r as u64 + 1)))
        .collect::<Result<Vec<f64>, Failure>>()?;
    Ok(Point {
        chains,
        sweeps,
        times,
        setup,
    })
}

fn auto_sweeps(nodes: usize, chains: usize) -> usize {
    let per_sweep = (nodes * chains).max(1) as f64;
    ((AUTO_FLIPS / per_sweep).ceil() as usize).clamp(AUTO_MIN_SWEEPS, AUTO_MAX_SWEEPS)
}

fn build(w: Workload, dir: &Path, seed: u64, repeats: usize) -> Result<Built, Failure> {
    match w.topology() {
        Some(rel) => build_ising(w, &dir.join(rel), seed, repeats),
        None if w == Workload::Potts => build_potts(seed, repeats),
        None => build_mixed(seed, repeats),
    }
}

fn out(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.repeats == 0 {
        return Err(usage("--repeats must be at least 1"));
    }
    if args.chains.contains(&0) {
        return Err(usage("--chains must be at least 1"));
    }
    if args.threads.contains(&0) {
        return Err(usage("--threads must be at least 1"));
    }
    if args.sweeps == Some(0) {
        return Err(usage("--sweeps must be at least 1"));
    }
    let mut workloads: Vec<Workload> = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    workloads.sort();
    workloads.dedup();
    let dir = data_dir(args.data_dir.as_deref());
    // Check every topology file before running anything.
    for w in &workloads {
        if let Some(rel) = w.topology() {
            let path = dir.join(rel);
            if !path.is_file() {
                return Err(Failure {
                    message: format!(
                        "topology file {} not found (workload {}); pass --data-dir DIR, the folder that holds topologies/",
                        path.display(),
                        w.name()
                    ),
                    code: 1,
                });
            }
        }
    }

    let simd = simd_level();
    let cpu = cpu_model();
    let logical = std::thread::available_parallelism().map_or(1, usize::from);
    let thread_counts = if args.threads.is_empty() {
        vec![logical]
    } else {
        args.threads.clone()
    };
    let engine = args.engine.name();
    if !args.json {
        out(&format!(
            "# thrml bench {}: {engine} engine, threads {thread_counts:?}; \
             cpu: {}, {logical} logical CPUs, SIMD level {simd}",
            env!("CARGO_PKG_VERSION"),
            cpu.as_deref().unwrap_or("unknown")
        ));
        out(
            "# timed: sample_with_observation(sweeps, 1 sample, no-op observer) incl. its set-up; \
             median of repeats after one warmup run; flip = one node update in one chain",
        );
    }
    let mut builds = Vec::new();
    let mut runs = Vec::new();
    let mut header_done = false;
    for &w in &workloads {
        let built = build(w, &dir, args.seed, args.repeats)?;
        built
            .program
            .set_fused_kernels(args.engine == Engine::Fused);
        let phases: BTreeMap<&str, f64> = built.phases.iter().copied().collect();
        if args.json {
            builds.push(json!({
                "workload": w.name(),
                "nodes": built.nodes,
                "edges": built.edges,
                "colours": built.colours,
                "blocks": built.program.gibbs_spec.free_blocks.len(),
                "phases_ms": phases.iter().map(|(k, v)| ((*k).to_owned(), json!(v * 1e3))).collect::<serde_json::Map<String, Value>>(),
                "program_ms_median": median(&built.program_times) * 1e3,
                "program_ms_all": built.program_times.iter().map(|t| t * 1e3).collect::<Vec<f64>>(),
            }));
        } else {
            let phase_text: Vec<String> = built
                .phases
                .iter()
                .map(|(k, v)| format!("{k} {:.1} ms", v * 1e3))
                .collect();
            out(&format!(
                "build {:<9} {} nodes, {} edges, {} colours, {} blocks: {} (program: median of {})",
                w.name(),
                built.nodes,
                built.edges,
                built.colours,
                built.program.gibbs_spec.free_blocks.len(),
                phase_text.join(", "),
                built.program_times.len()
            ));
        }
        for (&chains, &threads) in args
            .chains
            .iter()
            .flat_map(|c| thread_counts.iter().map(move |t| (c, t)))
        {
            if !args.json && !header_done {
                out(&format!(
                    "{:<10} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10} {:>9} {:>7} {:<8}",
                    "workload",
                    "nodes",
                    "edges",
                    "chains",
                    "sweeps",
                    "median_s",
                    "setup_s",
                    "flips/ns",
                    "threads",
                    "simd"
                ));
                header_done = true;
            }
            let sweeps = args
                .sweeps
                .unwrap_or_else(|| auto_sweeps(built.nodes, chains));
            let p = thrml::with_threads(threads, || {
                run_point(&built, chains, sweeps, args.repeats, args.seed)
            })
            .map_err(lib)??;
            let med = median(&p.times);
            let rate = p.flips(built.nodes) / (med * 1e9);
            if args.json {
                let min = p.times.iter().copied().fold(f64::INFINITY, f64::min);
                let max = p.times.iter().copied().fold(0.0, f64::max);
                runs.push(json!({
                    "workload": w.name(),
                    "nodes": built.nodes,
                    "edges": built.edges,
                    "chains": p.chains,
                    "sweeps": p.sweeps,
                    "repeats": p.times.len(),
                    "flips": p.flips(built.nodes),
                    "median_s": med,
                    "min_s": min,
                    "max_s": max,
                    "times_s": p.times,
                    "setup_s": p.setup,
                    "flips_per_ns": rate,
                    "threads": threads,
                    "engine": engine,
                    "simd": simd,
                }));
            } else {
                out(&format!(
                    "{:<10} {:>6} {:>6} {:>6} {:>6} {:>10.4} {:>10.4} {:>9.4} {:>7} {:<8}",
                    w.name(),
                    built.nodes,
                    built.edges,
                    p.chains,
                    p.sweeps,
                    med,
                    p.setup,
                    rate,
                    threads,
                    simd
                ));
            }
        }
        drop(built);
    }
    if args.json {
        let doc = json!({
            "thrml_version": env!("CARGO_PKG_VERSION"),
            "engine": engine,
            "threads": thread_counts,
            "simd": simd,
            "cpu": cpu,
            "logical_cpus": logical,
            "seed": args.seed,
            "repeats": args.repeats,
            "data_dir": dir.display().to_string(),
            "timed": "sample_with_observation with schedule (sweeps, 1, 0) and a no-op observer, including its set-up; median of repeats after one untimed warmup run",
            "builds": builds,
            "runs": runs,
        });
        out(&serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
    }
    Ok(())
}
