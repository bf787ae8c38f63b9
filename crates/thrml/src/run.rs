//! Running a program: schedules, sweeps, and observation.
//!
//! A *sweep* updates every free superblock once, in order; the blocks of a superblock all
//! read the state from before the superblock's update. A [`SamplingSchedule`]
//! `(n_warmup, n_samples, steps_per_sample)` runs `n_warmup` sweeps, observes, then
//! `n_samples − 1` more times runs `steps_per_sample` sweeps and observes.
//!
//! Every run is over a batch of independent chains: initial free states have shape
//! `[chains, nodes] + leaf.shape`, and chain `c` draws from its own random stream
//! ([`Key::chain_rngs`]). Clamped states have shape `[chains, nodes]` (a value per chain) or
//! `[nodes]` (shared by all chains).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ndarray::Axis;

use crate::block::{Block, BlockSpec, verified_block_state_to_global, verify_block_state};
use crate::error::{Error, Result};
use crate::fused::Engine;
use crate::observer::{AbstractObserver, StateObserver};
use crate::program::BlockSamplingProgram;
use crate::rng::{ChainRng, Key};
use crate::sampler::{SamplerInputs, SamplerState};
use crate::state::{State, Tensor, dispatch};

/// How long to run and when to observe (THRML's `SamplingSchedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SamplingSchedule {
    /// Sweeps before the first observation.
    pub n_warmup: usize,
    /// Number of observations (at least 1).
    pub n_samples: usize,
    /// Sweeps between consecutive observations.
    pub steps_per_sample: usize,
}

impl SamplingSchedule {
    /// A schedule.
    ///
    /// # Errors
    /// [`Error::Schedule`] if `n_samples` is 0.
    pub fn new(
        n_warmup: usize,
        n_samples: usize,
        steps_per_sample: usize,
    ) -> Result<SamplingSchedule> {
        let s = SamplingSchedule {
            n_warmup,
            n_samples,
            steps_per_sample,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        if self.n_samples == 0 {
            return Err(Error::Schedule("n_samples must be at least 1".into()));
        }
        Ok(())
    }

    /// Total number of sweeps the schedule runs.
    #[must_use]
    pub fn total_sweeps(&self) -> usize {
        self.n_warmup + self.n_samples.saturating_sub(1) * self.steps_per_sample
    }
}

/// Run `f` with sampling on `threads` worker threads (`0`: one per logical CPU).
///
/// Runs use the fused kernels' thread pool: chains are split into tiles that run in
/// parallel, or, for a single tile, the nodes of each block are. The samples do not depend
/// on the thread count: every draw is a function of its chain, sweep, block and node
/// ([`crate::fused`]), and generic blocks use one stream per chain.
///
/// # Errors
/// [`Error::Threads`] if the thread pool cannot be created.
///
/// # Example
///
/// ```
/// use thrml::run::with_threads;
/// let n = with_threads(2, rayon::current_num_threads)?;
/// assert_eq!(n, 2);
/// # Ok::<(), thrml::Error>(())
/// ```
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Threads(e.to_string()))?;
    Ok(pool.install(f))
}

/// Broadcast an unbatched clamped state (`[nodes] + leaf`) to `[chains, nodes] + leaf`.
fn broadcast_clamp(state: &State, block: &Block, spec: &BlockSpec, n_chains: usize) -> State {
    let layout = &spec.node_shape_dtypes[&block.node_kind()];
    state
        .iter()
        .zip(layout.leaves())
        .map(|(t, leaf)| {
            if t.ndim() == leaf.shape.len() + 1 {
                let mut shape = vec![n_chains];
                shape.extend_from_slice(t.shape());
                dispatch!(t, a => a.broadcast(shape.as_slice()).expect("prepending an axis broadcasts").to_owned().into())
            } else {
                t.clone()
            }
        })
        .collect()
}

/// Build the global state of a batch of chains from free and clamped block states, and
/// check it.
///
/// Returns the global state and the number of chains.
///
/// # Errors
/// [`Error::StateMismatch`] if a state does not fit its block or the chain counts differ,
/// [`Error::ValueOutOfRange`] if an integer state is out of its interactions' range.
///
/// The free states may be borrowed (`&init`) or handed over (`init`, a `Vec<State>`): an
/// owned block state is freed as soon as it has been copied into the global state.
pub fn init_global_state<'a>(
    program: &BlockSamplingProgram,
    init_state_free: impl Into<Cow<'a, [State]>>,
    state_clamp: &[State],
) -> Result<(Vec<State>, usize)> {
    let (blocks, n_chains) = checked_block_states(program, init_state_free.into(), state_clamp)?;
    let global = verified_block_state_to_global(blocks, &program.gibbs_spec)?;
    Ok((global, n_chains))
}

/// The states of all blocks of the program's spec (the free ones, then the clamped ones
/// broadcast to `[chains, nodes]`), checked as [`init_global_state`] checks them and in
/// standard layout, and the number of chains.
fn checked_block_states<'a>(
    program: &BlockSamplingProgram,
    init_state_free: Cow<'a, [State]>,
    state_clamp: &[State],
) -> Result<(Vec<Cow<'a, State>>, usize)> {
    let spec = &program.gibbs_spec;
    verify_block_state(
        &spec.free_blocks,
        &init_state_free,
        &spec.node_shape_dtypes,
        Some(-1),
    )?;
    // Number clamped blocks as the spec does (after the free blocks), like the checks below.
    verify_block_state(
        &spec.clamped_blocks,
        state_clamp,
        &spec.node_shape_dtypes,
        Some(-1),
    )
    .map_err(|e| match e {
        Error::StateMismatch { block, reason } => Error::StateMismatch {
            block: spec.free_blocks.len() + block,
            reason: format!("clamped block {block}: {reason}"),
        },
        other => other,
    })?;
    let batch_of = |state: &State, block: &Block| -> Vec<usize> {
        let leaf_rank = spec.node_shape_dtypes[&block.node_kind()].leaves()[0]
            .shape
            .len();
        state[0].shape()[..state[0].ndim() - leaf_rank - 1].to_vec()
    };
    let mut n_chains = None;
    for (b, (state, block)) in init_state_free.iter().zip(&spec.free_blocks).enumerate() {
        let batch = batch_of(state, block);
        let &[c] = batch.as_slice() else {
            return Err(Error::StateMismatch {
                block: b,
                reason: format!(
                    "a free state needs shape [chains, nodes, ...], got batch shape {batch:?}"
                ),
            });
        };
        match n_chains {
            None => n_chains = Some(c),
            Some(n) if n != c => {
                return Err(Error::StateMismatch {
                    block: b,
                    reason: format!("has {c} chains, block 0 has {n}"),
                });
            }
            Some(_) => {}
        }
    }
    let n_free = spec.free_blocks.len();
    for (b, (state, block)) in state_clamp.iter().zip(&spec.clamped_blocks).enumerate() {
        let batch = batch_of(state, block);
        match (batch.as_slice(), n_chains) {
            ([], _) => {}
            (&[c], None) => n_chains = Some(c),
            (&[c], Some(n)) if c == n => {}
            _ => {
                return Err(Error::StateMismatch {
                    block: n_free + b,
                    reason: format!(
                        "a clamped state needs shape [nodes, ...] or [chains, nodes, ...], got batch shape {batch:?}"
                    ),
                });
            }
        }
    }
    let n_chains = n_chains.unwrap_or(1);
    // Borrowed free states are read in place, not copied into one list, and owned ones are
    // passed on, to be freed as soon as they are read: at 4,096 chains of Pegasus(14) a
    // copy would be 17.5 MB, as much as the global state itself.
    let free: Vec<Cow<'a, State>> = match init_state_free {
        Cow::Borrowed(s) => s.iter().map(Cow::Borrowed).collect(),
        Cow::Owned(s) => s.into_iter().map(Cow::Owned).collect(),
    };
    let clamped = state_clamp
        .iter()
        .zip(&spec.clamped_blocks)
        .map(|(s, b)| Cow::Owned(broadcast_clamp(s, b, spec, n_chains)));
    let blocks: Vec<Cow<'a, State>> = free
        .into_iter()
        .chain(clamped)
        .map(|s| {
            if s.iter().all(Tensor::is_standard_layout) {
                s
            } else {
                Cow::Owned(s.iter().map(Tensor::to_standard_layout).collect())
            }
        })
        .collect();
    program.check_block_values(&blocks)?;
    Ok((blocks, n_chains))
}

/// Copy the block output `out` (`[chains, n] + leaf`) into slot positions
/// `start..start + n` of the global leaves.
fn scatter_block(out: &State, global: &mut State, slot_size: usize, start: usize, n: usize) {
    for (src, dst) in out.iter().zip(global.iter_mut()) {
        let inner: usize = src.shape()[2..].iter().product();
        let width = n * inner;
        macro_rules! copy {
            ($s:expr, $d:expr) => {{
                let s = $s.as_slice().expect("standard layout");
                let d = $d.as_slice_mut().expect("standard layout");
                if width > 0 {
                    for (c, chunk) in s.chunks_exact(width).enumerate() {
                        let at = (c * slot_size + start) * inner;
                        d[at..at + width].copy_from_slice(chunk);
                    }
                }
            }};
        }
        match (src, dst) {
            (Tensor::Bool(s), Tensor::Bool(d)) => copy!(s, d),
            (Tensor::U8(s), Tensor::U8(d)) => copy!(s, d),
            (Tensor::I32(s), Tensor::I32(d)) => copy!(s, d),
            (Tensor::F32(s), Tensor::F32(d)) => copy!(s, d),
            (Tensor::F64(s), Tensor::F64(d)) => copy!(s, d),
            _ => unreachable!("sampler output dtype matches the layout (checked by verify)"),
        }
    }
}

/// Reusable buffers for the sweeps of one run.
struct Sweeper {
    outs: Vec<State>,
}

impl Sweeper {
    /// Buffers for the blocks that call their sampler (`fused[b]`: block `b` runs in the
    /// fused engine and needs none).
    fn new(program: &BlockSamplingProgram, n_chains: usize, fused: &[bool]) -> Sweeper {
        let spec = &program.gibbs_spec;
        let outs = spec
            .free_blocks
            .iter()
            .zip(&spec.all_block_sds)
            .enumerate()
            .map(|(i, (b, layout))| {
                if fused.get(i).copied().unwrap_or(false) {
                    return State::new();
                }
                layout
                    .leaves()
                    .iter()
                    .map(|l| Tensor::zeros_for(l, &[n_chains], b.len()))
                    .collect()
            })
            .collect();
        Sweeper { outs }
    }

    /// One sweep (number `sweep`). With an `engine`, it holds the discrete states: fused
    /// blocks run in it, and the others call their samplers on the global state, which is
    /// synchronised before and after each superblock that has such a block.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &mut self,
        rngs: &mut [ChainRng],
        program: &BlockSamplingProgram,
        global: &mut [State],
        sampler_states: &mut [SamplerState],
        n_chains: usize,
        mut engine: Option<&mut Engine<'_>>,
        sweep: u64,
    ) {
        let spec = &program.gibbs_spec;
        for order in &spec.sampling_order {
            if let Some(e) = engine.as_deref_mut() {
                let all_fused = order.iter().all(|&b| e.is_fused(b));
                // Every block of the superblock reads the state from before it.
                if !all_fused && e.dirty {
                    e.export(global);
                }
                e.update_blocks(order, sweep);
                if all_fused {
                    continue;
                }
            }
            for &b in order {
                if !engine.as_deref().is_some_and(|e| e.is_fused(b)) {
                    self.sample_block(rngs, program, global, sampler_states, n_chains, b);
                }
            }
            for &b in order {
                match engine.as_deref_mut() {
                    Some(e) if e.is_fused(b) => {}
                    Some(e) => {
                        self.scatter(program, global, b);
                        let (slot, start) = spec.block_offsets[b];
                        e.import(
                            &global[slot][0],
                            0,
                            slot,
                            start..start + spec.free_blocks[b].len(),
                        );
                    }
                    None => self.scatter(program, global, b),
                }
            }
        }
    }

    fn sample_block(
        &mut self,
        rngs: &mut [ChainRng],
        program: &BlockSamplingProgram,
        global: &[State],
        sampler_states: &mut [SamplerState],
        n_chains: usize,
        b: usize,
    ) {
        let spec = &program.gibbs_spec;
        let inputs = SamplerInputs {
            block: &spec.free_blocks[b],
            block_index: b,
            interactions: &program.per_block_interactions[b],
            global_state: global,
            n_chains,
            output_layout: &spec.all_block_sds[b],
        };
        program.samplers[b].sample(rngs, &inputs, &mut sampler_states[b], &mut self.outs[b]);
    }

    fn scatter(&self, program: &BlockSamplingProgram, global: &mut [State], b: usize) {
        let spec = &program.gibbs_spec;
        let (slot, start) = spec.block_offsets[b];
        scatter_block(
            &self.outs[b],
            &mut global[slot],
            spec.slot_sizes[slot],
            start,
            spec.free_blocks[b].len(),
        );
    }
}

/// Draw a new state for free block `block` of every chain, without changing the global
/// state. Returns the block's new state, `[chains, nodes] + leaf.shape` per leaf.
///
/// `global_state` is as built by [`init_global_state`]; `rngs` has one generator per chain.
#[must_use]
pub fn sample_single_block(
    rngs: &mut [ChainRng],
    program: &BlockSamplingProgram,
    block: usize,
    global_state: &[State],
    sampler_state: &mut SamplerState,
) -> State {
    let spec = &program.gibbs_spec;
    let n_chains = rngs.len();
    let mut out: State = spec.all_block_sds[block]
        .leaves()
        .iter()
        .map(|l| Tensor::zeros_for(l, &[n_chains], spec.free_blocks[block].len()))
        .collect();
    let inputs = SamplerInputs {
        block: &spec.free_blocks[block],
        block_index: block,
        interactions: &program.per_block_interactions[block],
        global_state,
        n_chains,
        output_layout: &spec.all_block_sds[block],
    };
    program.samplers[block].sample(rngs, &inputs, sampler_state, &mut out);
    out
}

/// One sweep: update every free superblock once, in order, in place.
///
/// `rngs` has one generator per chain; `sampler_states` one state per free block.
pub fn sample_blocks(
    rngs: &mut [ChainRng],
    program: &BlockSamplingProgram,
    global_state: &mut [State],
    sampler_states: &mut [SamplerState],
) {
    let n_chains = rngs.len();
    Sweeper::new(program, n_chains, &[]).sweep(
        rngs,
        program,
        global_state,
        sampler_states,
        n_chains,
        None,
        0,
    );
}

/// Run the schedule on a batch of chains and call `observer` at every observation.
///
/// Returns the final carry and the observer's outputs, one per observation.
///
/// The initial free states may be borrowed (`&init`) or handed over (`init`, a
/// `Vec<State>`), much as JAX donates a buffer. When every block runs on the fused
/// kernels, the engine starts straight from the block states and builds the global state
/// only for the first observation. Handed-over states are freed as soon as they are read,
/// so the run never holds two copies of the state in the API's layout. At 4,096 chains of
/// Pegasus(14), that lowers the peak resident memory from about 2 × 17.5 MB of state to
/// about 1 ×.
///
/// # Errors
/// Bad states ([`init_global_state`]), or an error from the observer.
pub fn sample_with_observation<'a, O: AbstractObserver>(
    key: Key,
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init_state_free: impl Into<Cow<'a, [State]>>,
    state_clamp: &[State],
    carry: O::Carry,
    observer: &O,
) -> Result<(O::Carry, Vec<O::Output>)> {
    sample_with_observation_and_progress(
        key,
        program,
        schedule,
        init_state_free,
        state_clamp,
        carry,
        observer,
        None,
    )
}

/// How far a run has got: passed to the callback of
/// [`sample_with_observation_and_progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Sweeps run so far.
    pub sweeps_done: usize,
    /// Sweeps the schedule runs in all ([`SamplingSchedule::total_sweeps`]).
    pub total_sweeps: usize,
    /// Observations recorded so far.
    pub observations_done: usize,
    /// Number of chains.
    pub n_chains: usize,
}

/// Wall time a run aims to spend between two progress reports.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Call `progress`, if any, with `at` when [`PROGRESS_INTERVAL`] has passed since
/// `last_report` (which it then resets).
fn report_if_due(
    progress: &mut Option<&mut dyn FnMut(Progress)>,
    last_report: &mut Instant,
    at: Progress,
) {
    if let Some(report) = progress.as_deref_mut()
        && last_report.elapsed() >= PROGRESS_INTERVAL
    {
        *last_report = Instant::now();
        report(at);
    }
}

/// As [`sample_with_observation`], calling `progress` (if given) about every 100 ms and
/// after the last sweep.
///
/// To report, the runner splits the schedule's stretches of sweeps into segments whose
/// length adapts to their wall time (doubling from one sweep while a segment takes under
/// 50 ms); a fused run on a thread team instead takes each stretch whole, and its first
/// thread checks the time after every sweep. The samples are bit-identical with and
/// without a callback: every draw is a function of the key, chain, sweep number, block
/// and node, not of how the sweeps are grouped, and the sweep loop allocates nothing for
/// the reports.
///
/// # Errors
/// As [`sample_with_observation`].
///
/// # Example
///
/// ```
/// use thrml::*;
/// use thrml::run::{Progress, sample_with_observation_and_progress};
///
/// let s = Node::many(NodeKind::SPIN, 2);
/// let ebm = IsingEBM::new(s.clone(), vec![(s[0], s[1])], vec![0.0, 0.0], vec![1.0], 1.0)?;
/// let blocks = vec![Block::new(vec![s[0]])?, Block::new(vec![s[1]])?];
/// let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![])?;
/// let init: Vec<State> = hinton_init(Key::new(0), &ebm, &blocks, &[8])?
///     .into_iter()
///     .map(|a| vec![Tensor::from(a)])
///     .collect();
/// let schedule = SamplingSchedule::new(10, 5, 2)?;
/// let mut last = None;
/// let observer = StateObserver::new(blocks.clone());
/// sample_with_observation_and_progress(
///     Key::new(1), &program, &schedule, &init, &[], (), &observer,
///     Some(&mut |p: Progress| last = Some(p)),
/// )?;
/// let last = last.unwrap();
/// assert_eq!((last.sweeps_done, last.total_sweeps, last.observations_done), (18, 18, 5));
/// # Ok::<(), thrml::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn sample_with_observation_and_progress<'a, O: AbstractObserver>(
    key: Key,
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init_state_free: impl Into<Cow<'a, [State]>>,
    state_clamp: &[State],
    mut carry: O::Carry,
    observer: &O,
    mut progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<(O::Carry, Vec<O::Output>)> {
    schedule.validate()?;
    let (blocks, n_chains) = checked_block_states(program, init_state_free.into(), state_clamp)?;
    observer.check(program)?;
    let fused = program.fused_blocks();
    let plan = program.fused_plan();
    let all_fused = plan.is_some() && fused.iter().all(|&f| f);
    // When the fused engine runs every block and holds every slot, it starts straight from
    // the block states and the global state is only built, from the engine, for the first
    // observation: handed-over initial states are then freed before it exists, and the run
    // never holds two copies of the state in the API's one-byte layout.
    let (mut global, mut engine) = match plan {
        Some(plan) if all_fused && Engine::holds_every_slot(plan) => {
            let engine = Engine::from_blocks(plan, key, n_chains, &program.gibbs_spec, blocks);
            (None, Some(engine))
        }
        _ => {
            let global = verified_block_state_to_global(blocks, &program.gibbs_spec)?;
            let engine = plan.map(|plan| Engine::new(plan, key, n_chains, &global));
            (Some(global), engine)
        }
    };
    // The generic path's generators, sampler states and output buffers, only when some
    // block takes it (4096 ChaCha generators alone are 1.2 MB).
    let n_generic = if all_fused { 0 } else { n_chains };
    let mut rngs = key.chain_rngs(n_generic);
    let mut sampler_states: Vec<SamplerState> = if all_fused {
        Vec::new()
    } else {
        program
            .samplers
            .iter()
            .zip(&program.gibbs_spec.free_blocks)
            .map(|(s, b)| s.init(b, n_chains))
            .collect()
    };
    let mut sweeper = Sweeper::new(program, n_chains, &fused);
    let mut sweep = 0u64;
    let total_sweeps = schedule.total_sweeps();
    // Segment length (sweeps) and the time of the last report, when reporting.
    let mut segment = 1u64;
    let mut last_report = Instant::now();
    // Run `n` sweeps and bring the global state up to date; with a progress callback, in
    // segments with a report after each one that ends at least PROGRESS_INTERVAL after the
    // last report. A fused run on a thread team takes the whole stretch at once (a team
    // per segment would start threads for each) and reports from the engine's ticks.
    let n_samples = schedule.n_samples;
    let order = &program.gibbs_spec.sampling_order;
    let mut advance = |n: usize,
                       global: &mut Option<Vec<State>>,
                       observations_done: usize,
                       progress: &mut Option<&mut dyn FnMut(Progress)>| {
        let end = sweep + n as u64;
        let at = |sweeps: u64| Progress {
            sweeps_done: usize::try_from(sweeps).unwrap_or(usize::MAX),
            total_sweeps,
            observations_done,
            n_chains,
        };
        while sweep < end {
            let team = all_fused
                && engine
                    .as_ref()
                    .is_some_and(|e| e.runs_a_team(order, end - sweep));
            let len = if progress.is_some() && !team {
                segment.min(end - sweep)
            } else {
                end - sweep
            };
            let t = Instant::now();
            if let (true, Some(engine)) = (all_fused, engine.as_mut()) {
                let mut tick = |s: u64| report_if_due(progress, &mut last_report, at(s));
                engine.run_sweeps(order, sweep, len, &mut tick);
            } else {
                let global = global
                    .as_mut()
                    .expect("a global state unless the engine runs every block");
                for s in sweep..sweep + len {
                    sweeper.sweep(
                        &mut rngs,
                        program,
                        global,
                        &mut sampler_states,
                        n_chains,
                        engine.as_mut(),
                        s,
                    );
                }
            }
            sweep += len;
            if progress.is_some() {
                if t.elapsed() < PROGRESS_INTERVAL / 2 {
                    segment = segment.saturating_mul(2);
                } else if t.elapsed() > PROGRESS_INTERVAL * 2 {
                    segment = (segment / 2).max(1);
                }
                report_if_due(progress, &mut last_report, at(sweep));
            }
        }
        if let Some(e) = engine.as_mut() {
            match global {
                Some(g) if e.dirty => e.export(g),
                Some(_) => {}
                // The last observation needs the engine no more: its tiles are freed as
                // they are copied out, so the two copies of the state never coexist.
                None if observations_done + 1 == n_samples => {
                    *global = engine.take().map(|e| e.into_global(&program.gibbs_spec));
                }
                None => *global = Some(e.new_global(&program.gibbs_spec)),
            }
        }
    };
    let mut outputs = Vec::with_capacity(schedule.n_samples);
    for i in 0..schedule.n_samples {
        let sweeps = if i == 0 {
            schedule.n_warmup
        } else {
            schedule.steps_per_sample
        };
        advance(sweeps, &mut global, i, &mut progress);
        let g = global.as_deref().expect("built by `advance`");
        outputs.push(observer.observe(program, g, &mut carry, i)?);
    }
    if let Some(report) = progress {
        report(Progress {
            sweeps_done: total_sweeps,
            total_sweeps,
            observations_done: schedule.n_samples,
            n_chains,
        });
    }
    Ok((carry, outputs))
}

/// Run the schedule and collect the states of `nodes_to_sample`.
///
/// Returns one state per block; each leaf has shape
/// `[chains, n_samples, nodes] + leaf.shape`.
///
/// # Errors
/// As [`sample_with_observation`]; [`Error::UnknownNode`] if a
/// block holds a node the program does not know.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use ndarray::ArrayD;
/// use thrml::*;
///
/// // Two coupled spins, sampled in two blocks.
/// let s = Node::many(NodeKind::SPIN, 2);
/// let ebm = IsingEBM::new(s.clone(), vec![(s[0], s[1])], vec![0.0, 0.0], vec![1.0], 1.0)?;
/// let blocks = vec![Block::new(vec![s[0]])?, Block::new(vec![s[1]])?];
/// let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![])?;
/// let init = hinton_init(Key::new(0), &ebm, &blocks, &[64])?;
/// let init: Vec<State> = init.into_iter().map(|a| vec![Tensor::from(a)]).collect();
/// let schedule = SamplingSchedule::new(10, 100, 1)?;
/// let samples = sample_states(Key::new(1), &program, &schedule, &init, &[], &blocks)?;
/// assert_eq!(samples[0][0].shape(), &[64, 100, 1]);
/// # Ok::<(), thrml::Error>(())
/// ```
pub fn sample_states<'a>(
    key: Key,
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init_state_free: impl Into<Cow<'a, [State]>>,
    state_clamp: &[State],
    nodes_to_sample: &[Block],
) -> Result<Vec<State>> {
    sample_states_with_progress(
        key,
        program,
        schedule,
        init_state_free,
        state_clamp,
        nodes_to_sample,
        None,
    )
}

/// As [`sample_states`], reporting progress as
/// [`sample_with_observation_and_progress`] does; the samples are bit-identical.
///
/// # Errors
/// As [`sample_states`].
pub fn sample_states_with_progress<'a>(
    key: Key,
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init_state_free: impl Into<Cow<'a, [State]>>,
    state_clamp: &[State],
    nodes_to_sample: &[Block],
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<Vec<State>> {
    let observer = StateObserver::new(nodes_to_sample.to_vec());
    let (_, outputs) = sample_with_observation_and_progress(
        key,
        program,
        schedule,
        init_state_free,
        state_clamp,
        (),
        &observer,
        progress,
    )?;
    Ok(stack_observations(&outputs, nodes_to_sample.len()))
}

/// Stack per-observation block states (`[chains, nodes] + leaf`) into
/// `[chains, n_obs, nodes] + leaf`.
pub(crate) fn stack_observations(outputs: &[Vec<State>], n_blocks: usize) -> Vec<State> {
    (0..n_blocks)
        .map(|b| {
            let n_leaves = outputs[0][b].len();
            (0..n_leaves)
                .map(|l| {
                    let parts: Vec<&Tensor> = outputs.iter().map(|o| &o[b][l]).collect();
                    stack_axis1(&parts)
                })
                .collect()
        })
        .collect()
}

fn stack_axis1(parts: &[&Tensor]) -> Tensor {
    macro_rules! stack {
        ($variant:ident) => {{
            let views: Vec<_> = parts
                .iter()
                .map(|t| match t {
                    Tensor::$variant(a) => a.view(),
                    _ => unreachable!("observations share a dtype"),
                })
                .collect();
            let stacked = ndarray::stack(Axis(1), &views).expect("observations share a shape");
            // `stack` lays the new axis out outermost in memory; callers (and
            // `Tensor::as_slice` / `get_f64`) expect row-major samples.
            Tensor::$variant(if stacked.is_standard_layout() {
                stacked
            } else {
                stacked.as_standard_layout().into_owned()
            })
        }};
    }
    match parts[0] {
        Tensor::Bool(_) => stack!(Bool),
        Tensor::U8(_) => stack!(U8),
        Tensor::I32(_) => stack!(I32),
        Tensor::F32(_) => stack!(F32),
        Tensor::F64(_) => stack!(F64),
    }
}
