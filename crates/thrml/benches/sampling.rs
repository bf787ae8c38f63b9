//! Benchmarks of the sampling paths on mid-size models:
//! `cargo bench -p thrml --bench sampling`.
//!
//! * `run/ising-double-grid-40/{fused,generic}` — 10 sweeps through
//!   `sample_with_observation` (what users call; the fused SIMD engine by default, or the
//!   generic path), for 1, 16 and 256 chains on the current thread pool.
//! * `sweep/ising-double-grid-40` — one sweep ([`sample_blocks`], always the generic path) of an Ising model on the
//!   two-layer torus `double_grid(40, [1, 4, 15])` (3,200 spins, 20,800 couplers, degree 13,
//!   two colour blocks; N(0, 1) weights), for 1, 16 and 256 chains.
//! * `sweep/potts5-64x64` — one sweep of a 5-state Potts model on a 64×64 periodic grid
//!   (checkerboard blocks), for 1 and 16 chains.
//! * `build/ising-double-grid-40` — compiling the `IsingSamplingProgram`.
//!
//! Throughput is in elements = flips (one node update in one chain), so criterion's
//! `Gelem/s` is flips/ns. No data files are needed. For the standard workloads (Pegasus,
//! Zephyr, Chimera, 256×256 Potts, mixed) use `thrml bench` instead.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use ndarray::{ArrayD, IxDyn};
use rand::RngExt;
use rand_distr::StandardNormal;
use thrml::graph::{checkerboard, double_grid, grid_edges};
use thrml::{
    AbstractConditionalSampler, Block, BlockGibbsSpec, BlockSamplingProgram,
    CategoricalGibbsConditional, EBMFactor, FactorSamplingProgram, IsingEBM, IsingSamplingProgram,
    Key, Node, NodeKind, SamplerState, SamplingSchedule, SquareCategoricalEBMFactor, State, Tensor,
    default_node_shape_dtypes, hinton_init, init_global_state, sample_blocks,
    sample_with_observation,
};

/// An Ising model on `double_grid(40, [1, 4, 15])` with N(0, 1) weights and biases, and its
/// two layers as blocks.
fn ising() -> (IsingEBM, Vec<Block>) {
    let (n, edges) = double_grid(40, &[1, 4, 15]);
    let nodes = Node::many(NodeKind::SPIN, n);
    let mut rng = Key::new(0).chain_rngs(1).pop().unwrap();
    let mut normal = || rng.sample::<f32, _>(StandardNormal);
    let biases = (0..n).map(|_| normal()).collect();
    let weights = (0..edges.len()).map(|_| normal()).collect();
    let ebm = IsingEBM::new(
        nodes.clone(),
        edges.iter().map(|&(a, b)| (nodes[a], nodes[b])).collect(),
        biases,
        weights,
        1.0,
    )
    .unwrap();
    let layer = n / 2;
    let blocks = vec![
        Block::new(nodes[..layer].to_vec()).unwrap(),
        Block::new(nodes[layer..].to_vec()).unwrap(),
    ];
    (ebm, blocks)
}

/// Hinton initial block states for `chains` chains of the Ising model.
fn ising_init(ebm: &IsingEBM, blocks: &[Block], chains: usize) -> Vec<State> {
    hinton_init(Key::new(1), ebm, blocks, &[chains])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect()
}

/// Global state and sampler states for `chains` chains, ready for [`sample_blocks`].
fn prepare(program: &BlockSamplingProgram, init: &[State]) -> (Vec<State>, Vec<SamplerState>) {
    let (global, chains) = init_global_state(program, init, &[]).unwrap();
    let states = program
        .samplers
        .iter()
        .zip(&program.gibbs_spec.free_blocks)
        .map(|(s, b)| s.init(b, chains))
        .collect();
    (global, states)
}

fn sweep_ising(c: &mut Criterion) {
    let (ebm, blocks) = ising();
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let n = ebm.nodes.len();
    let mut g = c.benchmark_group("sweep/ising-double-grid-40");
    for chains in [1usize, 16, 256] {
        let init = ising_init(&ebm, &blocks, chains);
        let (mut global, mut states) = prepare(&program, &init);
        let mut rngs = Key::new(2).chain_rngs(chains);
        g.throughput(Throughput::Elements((n * chains) as u64));
        g.bench_function(
            BenchmarkId::from_parameter(format!("{chains} chains")),
            |b| {
                b.iter(|| {
                    sample_blocks(&mut rngs, &program, &mut global, &mut states);
                    black_box(&global);
                });
            },
        );
    }
    g.finish();
}

fn sweep_potts(c: &mut Criterion) {
    let (side, k) = (64, 5);
    let edges = grid_edges(side, side, true);
    let nodes = Node::many(NodeKind::CATEGORICAL, side * side);
    let identity: Vec<f32> = (0..k * k)
        .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
        .collect();
    let weights =
        ArrayD::from_shape_vec(IxDyn(&[edges.len(), k, k]), identity.repeat(edges.len())).unwrap();
    let factor = SquareCategoricalEBMFactor::new(
        vec![
            Block::new(edges.iter().map(|&(a, _)| nodes[a]).collect()).unwrap(),
            Block::new(edges.iter().map(|&(_, b)| nodes[b]).collect()).unwrap(),
        ],
        weights,
    )
    .unwrap();
    let factors: Vec<Arc<dyn EBMFactor>> = vec![Arc::new(factor)];
    let mut classes = vec![Vec::new(), Vec::new()];
    for (i, colour) in checkerboard(side, side).into_iter().enumerate() {
        classes[colour].push(nodes[i]);
    }
    let blocks: Vec<Block> = classes
        .into_iter()
        .map(|c| Block::new(c).unwrap())
        .collect();
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes()).unwrap();
    let sampler: Arc<dyn AbstractConditionalSampler> =
        Arc::new(CategoricalGibbsConditional::new(k));
    let program = FactorSamplingProgram::new(spec, vec![sampler; 2], &factors, vec![]).unwrap();
    let mut g = c.benchmark_group("sweep/potts5-64x64");
    for chains in [1usize, 16] {
        let mut rngs = Key::new(3).chain_rngs(chains);
        let init: Vec<State> = blocks
            .iter()
            .map(|b| {
                let data = (0..chains * b.len())
                    .map(|i| rngs[i % chains].random_range(0..k as u8))
                    .collect();
                vec![Tensor::U8(
                    ArrayD::from_shape_vec(IxDyn(&[chains, b.len()]), data).unwrap(),
                )]
            })
            .collect();
        let (mut global, mut states) = prepare(&program, &init);
        g.throughput(Throughput::Elements((side * side * chains) as u64));
        g.bench_function(
            BenchmarkId::from_parameter(format!("{chains} chains")),
            |b| {
                b.iter(|| {
                    sample_blocks(&mut rngs, &program, &mut global, &mut states);
                    black_box(&global);
                });
            },
        );
    }
    g.finish();
}

fn run_ising(c: &mut Criterion) {
    let (ebm, blocks) = ising();
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let n = ebm.nodes.len();
    let sweeps = 10;
    let schedule = SamplingSchedule::new(sweeps, 1, 0).unwrap();
    for (engine, fused) in [("fused", true), ("generic", false)] {
        program.set_fused_kernels(fused);
        let mut g = c.benchmark_group(format!("run/ising-double-grid-40/{engine}"));
        for chains in [1usize, 16, 256] {
            let init = ising_init(&ebm, &blocks, chains);
            g.throughput(Throughput::Elements((n * chains * sweeps) as u64));
            g.bench_function(
                BenchmarkId::from_parameter(format!("{chains} chains")),
                |b| {
                    b.iter(|| {
                        black_box(
                            sample_with_observation(
                                Key::new(2),
                                &program,
                                &schedule,
                                &init,
                                &[],
                                (),
                                &thrml::StateObserver::new(vec![]),
                            )
                            .unwrap(),
                        )
                    });
                },
            );
        }
        g.finish();
    }
    program.set_fused_kernels(true);
}

fn build_ising(c: &mut Criterion) {
    let (ebm, blocks) = ising();
    c.bench_function("build/ising-double-grid-40", |b| {
        b.iter(|| black_box(IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap()));
    });
}

/// The benchmark group, in a module so that the function `criterion_group!` generates is
/// not public API (and needs no docs).
mod group {
    use super::{Criterion, Duration, build_ising, run_ising, sweep_ising, sweep_potts};

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        targets = run_ising, sweep_ising, sweep_potts, build_ising
    }
}
criterion_main!(group::benches);
