//! `thrml demo`: sample a built-in heterogeneous model and report what happened.
//!
//! The model is a periodic Ising grid (kind `spin`) coupled to a ring of three-state Potts
//! nodes (kind `potts`) through discrete spin–categorical factors, with `"auto"` blocks. It
//! is built as a [`ModelFile`], exactly as if read from JSON (`--print-model` shows it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use ndarray::{Array2, Axis, Ix3};
use thrml::graph::grid_edges;
use thrml::io::{
    CategoricalFactorSpec, DiscreteFactorSpec, FactorSpec, FreeBlocksSpec, IsingFactorSpec,
    KindSpec, Model, ModelFile, Samples, TensorSpec,
};
use thrml::{SamplingSchedule, Tensor};

use crate::{Failure, schedule, total_sweeps};

/// Side of the Ising grid.
const SIDE: usize = 12;
/// Ising coupling (the 2D critical point is J ≈ 0.4407).
const J: f64 = 0.35;
/// Potts ring coupling: energy −J_POTTS when neighbours agree.
const J_POTTS: f64 = 0.6;
/// Potts–spin coupling: category `k` contributes `−s · W[k]`.
const W_MIX: [f64; 3] = [-0.5, 0.0, 0.5];
/// Number of categories of the Potts nodes.
const K: usize = 3;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of chains.
    #[arg(long, default_value_t = 32)]
    chains: usize,
    /// Samples per chain.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Also write the samples to DIR (as `thrml sample --out DIR` would).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the built-in model as a thrml-model/1 JSON file and exit.
    #[arg(long)]
    print_model: bool,
}

/// The demo model as a model file.
pub(crate) fn demo_model() -> ModelFile {
    let n_grid = SIDE * SIDE;
    let potts: Vec<usize> = (n_grid..n_grid + SIDE).collect();
    let edges: Vec<[usize; 2]> = grid_edges(SIDE, SIDE, true)
        .into_iter()
        .map(|(a, b)| [a, b])
        .collect();
    let mut nodes = vec!["spin".to_owned(); n_grid];
    nodes.extend(std::iter::repeat_n("potts".to_owned(), SIDE));
    let identity: Vec<f64> = (0..SIDE)
        .flat_map(|_| (0..K * K).map(|i| if i / K == i % K { J_POTTS } else { 0.0 }))
        .collect();
    let ring_next: Vec<usize> = (0..SIDE).map(|i| potts[(i + 1) % SIDE]).collect();
    ModelFile {
        description: Some(format!(
            "thrml demo: a {SIDE}x{SIDE} periodic Ising grid (J = {J}) whose first column is coupled \
             to a ring of {SIDE} {K}-state Potts nodes (J = {J_POTTS})"
        )),
        kinds: BTreeMap::from([
            ("spin".to_owned(), KindSpec::Spin),
            ("potts".to_owned(), KindSpec::Categorical { categories: K }),
        ]),
        nodes,
        factors: vec![
            FactorSpec::Ising(IsingFactorSpec {
                nodes: (0..n_grid).collect(),
                biases: vec![0.0; n_grid],
                weights: vec![J; edges.len()],
                edges,
                beta: 1.0,
            }),
            FactorSpec::Categorical(CategoricalFactorSpec {
                groups: vec![potts.clone(), ring_next],
                weights: TensorSpec {
                    shape: vec![SIDE, K, K],
                    data: identity,
                },
                square: true,
            }),
            FactorSpec::Discrete(DiscreteFactorSpec {
                spin_groups: vec![(0..SIDE).map(|r| r * SIDE).collect()],
                categorical_groups: vec![potts],
                weights: TensorSpec {
                    shape: vec![SIDE, K],
                    data: (0..SIDE).flat_map(|_| W_MIX).collect(),
                },
                square: false,
            }),
        ],
        free_blocks: FreeBlocksSpec::Auto,
        clamped_blocks: Vec::new(),
        clamped_values: Vec::new(),
    }
}

/// `[chains, samples, n]` → `[chains · samples, n]`.
fn flatten_draws(t: &Tensor) -> Tensor {
    match t {
        Tensor::Bool(a) => {
            let (c, s, n) = (a.shape()[0], a.shape()[1], a.shape()[2]);
            Tensor::Bool(
                a.to_shape((c * s, n))
                    .expect("standard layout")
                    .to_owned()
                    .into_dyn(),
            )
        }
        Tensor::U8(a) => {
            let (c, s, n) = (a.shape()[0], a.shape()[1], a.shape()[2]);
            Tensor::U8(
                a.to_shape((c * s, n))
                    .expect("standard layout")
                    .to_owned()
                    .into_dyn(),
            )
        }
        other => other.clone(),
    }
}

pub(crate) fn run(args: &DemoArgs, quiet: bool) -> Result<(), Failure> {
    let file = demo_model();
    if args.print_model {
        println!("{}", file.to_json());
        return Ok(());
    }
    if args.chains == 0 {
        return Err(crate::usage("--chains must be at least 1"));
    }
    let schedule: SamplingSchedule = schedule(100, args.samples, 2)?;
    let sweeps = total_sweeps(&schedule).unwrap_or(usize::MAX);
    let start = Instant::now();
    let model = Model::new(file, "<built-in demo model>")?;
    let compile = start.elapsed().as_secs_f64();

    println!(
        "{}",
        model.file().description.as_deref().unwrap_or("thrml demo")
    );
    let kinds: Vec<String> = model
        .kinds()
        .iter()
        .map(|k| match k.spec() {
            KindSpec::Categorical { categories } => {
                format!(
                    "{} `{}` (categorical, K = {categories})",
                    k.nodes().len(),
                    k.name()
                )
            }
            _ => format!(
                "{} `{}` ({})",
                k.nodes().len(),
                k.name(),
                k.spec().type_name()
            ),
        })
        .collect();
    println!(
        "model:  {} nodes: {}; {} factors in the file, {} compiled; compiled in {:.1} ms",
        model.n_nodes(),
        kinds.join(", "),
        model.file().factors.len(),
        model.factors().len(),
        compile * 1e3
    );
    let superblocks: Vec<String> = model
        .free_superblocks()
        .iter()
        .map(|sb| {
            let blocks: Vec<String> = sb
                .iter()
                .map(|b| format!("{} {}", b.len(), model.kind_of(b[0]).name()))
                .collect();
            format!("[{}]", blocks.join(" + "))
        })
        .collect();
    println!(
        "blocks: \"auto\" (DSATUR colouring, split by kind) gave {} superblocks: {}",
        superblocks.len(),
        superblocks.join(" ")
    );

    let bar = crate::sweep_bar(sweeps, quiet);
    let start = Instant::now();
    let mut report = |p: thrml::Progress| bar.set_position(p.sweeps_done as u64);
    let samples = model.sample_with_progress(args.seed, args.chains, &schedule, Some(&mut report));
    bar.finish_and_clear();
    let samples = samples?;
    let elapsed = start.elapsed().as_secs_f64();
    let updates = (sweeps as f64) * (args.chains as f64) * (model.n_nodes() as f64);
    println!(
        "run:    {} chains × {} samples (seed {}), {sweeps} sweeps per chain ({} warmup + {} × {}); \
         {:.2e} node updates in {elapsed:.3} s ({:.1} M updates/s, {:.4} flips/ns)",
        args.chains,
        args.samples,
        args.seed,
        schedule.n_warmup,
        schedule.n_samples - 1,
        schedule.steps_per_sample,
        updates,
        updates / elapsed.max(1e-9) / 1e6,
        crate::flips_per_ns(model.n_nodes(), args.chains, sweeps, elapsed)
    );
    report_statistics(&model, &samples)?;
    if let Some(dir) = &args.out {
        let path = samples.write_dir(dir)?;
        println!("wrote  {}", path.display());
    }
    Ok(())
}

fn report_statistics(model: &Model, samples: &Samples) -> Result<(), Failure> {
    let draws = samples.n_chains * samples.n_samples;
    for ks in &samples.kinds {
        match &ks.states {
            Tensor::Bool(a) => {
                let a = a.view().into_dimensionality::<Ix3>().expect("rank 3");
                let pm: Array2<f64> = a
                    .to_shape((draws, ks.node_ids.len()))
                    .expect("standard layout")
                    .mapv(|s| if s { 1.0 } else { -1.0 });
                let m = pm.mean_axis(Axis(1)).expect("nodes");
                let mean_m = m.mean().unwrap_or(0.0);
                let mean_abs = m.mapv(f64::abs).mean().unwrap_or(0.0);
                let edges = grid_edges(SIDE, SIDE, true);
                let nn: f64 = edges
                    .iter()
                    .map(|&(i, j)| (&pm.column(i) * &pm.column(j)).mean().unwrap_or(0.0))
                    .sum::<f64>()
                    / edges.len() as f64;
                println!(
                    "{:<7} magnetisation ⟨m⟩ = {mean_m:+.4}, ⟨|m|⟩ = {mean_abs:.4}; nearest-neighbour ⟨s_i s_j⟩ = {nn:.4}",
                    format!("{}:", ks.kind)
                );
            }
            Tensor::U8(a) => {
                let a = a.view().into_dimensionality::<Ix3>().expect("rank 3");
                let mut counts = [0usize; K];
                for &v in &a {
                    counts[usize::from(v).min(K - 1)] += 1;
                }
                let total = a.len().max(1) as f64;
                let occ: Vec<String> = counts
                    .iter()
                    .map(|&c| format!("{:.3}", c as f64 / total))
                    .collect();
                let n = ks.node_ids.len();
                let mut agree = 0usize;
                for lane in a.lanes(Axis(2)) {
                    agree += (0..n).filter(|&i| lane[i] == lane[(i + 1) % n]).count();
                }
                println!(
                    "{:<7} category occupation [{}]; ring neighbours agree {:.3} of the time (independent: {:.3})",
                    format!("{}:", ks.kind),
                    occ.join(", "),
                    agree as f64 / (draws * n).max(1) as f64,
                    1.0 / K as f64
                );
            }
            _ => {}
        }
    }
    let arrays: BTreeMap<String, Tensor> = samples
        .kinds
        .iter()
        .map(|k| (k.kind.clone(), flatten_draws(&k.states)))
        .collect();
    let energies = model.energy(&arrays, model.source())?;
    let mean = energies.mean().unwrap_or(0.0);
    let sd = energies.std(0.0);
    println!(
        "energy: E = {mean:.2} ± {sd:.2} (mean ± sd over {draws} sampled states), {:.4} per node",
        mean / model.n_nodes() as f64
    );
    Ok(())
}
