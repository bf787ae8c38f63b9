//! No allocation in the sweep loop of the fused engine: a run's heap allocations (counted
//! by a global allocator, on every thread) do not depend on how many sweeps it does, for
//! every tile width (1, 16 and 64 chains), one and two threads (tiles over threads, block
//! splits and the thread team), spins and categoricals, with a progress callback, and with
//! a moment observer between observations.
//!
//! The checks share one process-wide counter, so they run one after another in a single
//! test.
#![allow(unsafe_code)] // the counting allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::ArrayD;
use thrml::graph::{checkerboard, grid_edges};
use thrml::run::sample_with_observation_and_progress;
use thrml::*;

/// Counts allocations and reallocations, then defers to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An observer that records nothing.
struct Nothing;

impl AbstractObserver for Nothing {
    type Carry = ();
    type Output = ();

    fn observe(&self, _: &BlockSamplingProgram, _: &[State], _: &mut (), _: usize) -> Result<()> {
        Ok(())
    }
}

/// A periodic `side × side` grid with checkerboard blocks, as spins (Ising, J = 0.3,
/// h = 0.1) or as 3-state categoricals (Potts tables), and its blocks.
fn grid(side: usize, categorical: bool) -> (FactorSamplingProgram, Vec<Block>) {
    let edges = grid_edges(side, side, true);
    let kind = if categorical {
        NodeKind::CATEGORICAL
    } else {
        NodeKind::SPIN
    };
    let nodes = Node::many(kind, side * side);
    let ends = |end: fn(&(usize, usize)) -> usize| {
        Block::new(edges.iter().map(|e| nodes[end(e)]).collect()).unwrap()
    };
    let (heads, tails) = (ends(|e| e.0), ends(|e| e.1));
    let all = Block::new(nodes.clone()).unwrap();
    let n = side * side;
    let factors: Vec<Arc<dyn EBMFactor>> = if categorical {
        let table = |i: usize| if i / 3 == i % 3 { 0.4 } else { -0.1 };
        let pairs = ArrayD::from_shape_fn(vec![edges.len(), 3, 3], |ix| table(ix[1] * 3 + ix[2]));
        let biases = ArrayD::from_shape_fn(vec![n, 3], |ix| 0.05 * ix[1] as f32);
        vec![
            Arc::new(CategoricalEBMFactor::new(vec![heads, tails], pairs).unwrap()),
            Arc::new(CategoricalEBMFactor::new(vec![all], biases).unwrap()),
        ]
    } else {
        let j = ArrayD::from_elem(vec![edges.len()], 0.3);
        let h = ArrayD::from_elem(vec![n], 0.1);
        vec![
            Arc::new(SpinEBMFactor::new(vec![heads, tails], j).unwrap()),
            Arc::new(SpinEBMFactor::new(vec![all], h).unwrap()),
        ]
    };
    let mut classes = vec![Vec::new(), Vec::new()];
    for (i, c) in checkerboard(side, side).into_iter().enumerate() {
        classes[c].push(nodes[i]);
    }
    let blocks: Vec<Block> = classes
        .into_iter()
        .map(|c| Block::new(c).unwrap())
        .collect();
    let sampler: Arc<dyn AbstractConditionalSampler> = if categorical {
        Arc::new(CategoricalGibbsConditional::new(3))
    } else {
        Arc::new(SpinGibbsConditional)
    };
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes()).unwrap();
    let program = FactorSamplingProgram::new(spec, vec![sampler; 2], &factors, vec![]).unwrap();
    (program, blocks)
}

/// Initial states of `blocks`: every spin up, every category 1.
fn init(blocks: &[Block], chains: usize, categorical: bool) -> Vec<State> {
    blocks
        .iter()
        .map(|b| {
            let shape = vec![chains, b.len()];
            vec![if categorical {
                Tensor::from(ArrayD::from_elem(shape, 1u8))
            } else {
                Tensor::from(ArrayD::from_elem(shape, true))
            }]
        })
        .collect()
}

/// Allocations made by `run` (the process's, on every thread).
fn allocations(run: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// The allocations of a run of `schedule(sweeps)` with each of two sweep counts (the
/// fewest of three runs each), after runs that warm up the pool and any lazily built
/// state.
fn per_sweep_counts<O: AbstractObserver>(
    program: &FactorSamplingProgram,
    init: &[State],
    observer: &O,
    carry: impl Fn() -> O::Carry,
    schedule: impl Fn(usize) -> SamplingSchedule,
    sweeps: [usize; 2],
    progress: bool,
) -> [usize; 2] {
    let run = |n: usize| {
        let mut reports = 0usize;
        let mut count = |_: Progress| reports += 1;
        let callback: Option<&mut dyn FnMut(Progress)> =
            if progress { Some(&mut count) } else { None };
        sample_with_observation_and_progress(
            Key::new(3),
            program,
            &schedule(n),
            init,
            &[],
            carry(),
            observer,
            callback,
        )
        .unwrap();
    };
    // Warm up with the longer run, three times, so that every pool thread has taken part
    // (a thread's first job registers its thread-locals, which allocates once).
    for _ in 0..3 {
        run(sweeps[1]);
    }
    // The fewest of three runs: the counter sees every thread of the process, and the test
    // harness allocates now and then on its own (its "running for over 60 seconds" notice,
    // under an emulator), which one run can catch; an allocation of the sweep loop would
    // show in all three.
    sweeps.map(|n| {
        (0..3)
            .map(|_| allocations(|| run(n)))
            .min()
            .expect("three runs")
    })
}

#[test]
fn the_sweep_loop_allocates_nothing() {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            // (side, chains, categorical, sweeps): tiles of 64, 16 and 1 chains; one
            // chain of a 128 × 128 grid runs long enough for the thread team.
            let cases = [
                (16, 200, false, [3, 60]),
                (16, 16, false, [3, 60]),
                (16, 1, false, [3, 60]),
                (128, 1, false, [70, 300]),
                (16, 100, true, [3, 60]),
                (64, 1, true, [3, 60]),
            ];
            for (side, chains, categorical, sweeps) in cases {
                let (program, blocks) = grid(side, categorical);
                assert!(program.fused_blocks().iter().all(|&f| f));
                let init = init(&blocks, chains, categorical);
                let warmup = |n: usize| SamplingSchedule::new(n, 1, 0).unwrap();
                for progress in [false, true] {
                    let counts = per_sweep_counts(
                        &program,
                        &init,
                        &Nothing,
                        || (),
                        warmup,
                        sweeps,
                        progress,
                    );
                    assert_eq!(
                        counts[0], counts[1],
                        "{threads} threads, side {side}, {chains} chains, categorical \
                         {categorical}, progress {progress}: allocations for {sweeps:?} sweeps"
                    );
                }
                // A moment observer: 4 observations, with 1 or 40 sweeps between them.
                let observer = MomentAccumulatorObserver::new(
                    vec![blocks[0].nodes().iter().map(|&n| vec![n]).collect()],
                    identity_transform(),
                )
                .unwrap();
                let steps = |n: usize| SamplingSchedule::new(2, 4, n).unwrap();
                let zero = || observer.init(chains);
                let counts =
                    per_sweep_counts(&program, &init, &observer, zero, steps, [1, 40], false);
                assert_eq!(
                    counts[0], counts[1],
                    "{threads} threads, side {side}, {chains} chains, moments: allocations \
                     for 1 and 40 sweeps between observations"
                );
            }
        });
    }
}
