//! The fused engine: built-in discrete blocks compiled to SIMD-across-chains kernels.
//!
//! [`BlockSamplingProgram::new`](crate::BlockSamplingProgram::new) compiles every free
//! block whose sampler is the built-in [`SpinGibbsConditional`](crate::SpinGibbsConditional)
//! or [`CategoricalGibbsConditional`](crate::CategoricalGibbsConditional) and whose
//! interactions are all [`DiscreteEBMInteraction`](crate::DiscreteEBMInteraction)s into a
//! flat plan: per node, a constant, pairwise spin couplings, pairwise categorical tables,
//! and general terms of any order. Other blocks (user samplers or interactions, or a tail
//! updated in the same superblock) keep the generic path, and both live in one run.
//!
//! # Layout
//!
//! Chains are processed in *tiles* of `W` lanes (`W = 64`, or 16 or 1 for small batches),
//! chain-minor: a spin node is one `u64` whose bit `l` is the spin of chain `c0 + l`, a
//! categorical node `W` bytes. A Pegasus(14) tile of 64 chains is 34 KiB of spins and stays
//! in L1 for a whole sweep. The field of a spin is
//!
//! ```text
//! γ = (h − Σ_j J_j) + Σ_j 2 J_j · b_j,    b_j = (1 + s_j) / 2 ∈ {0, 1},
//! ```
//!
//! so each coupling is one broadcast weight added under a lane mask. Categorical logits
//! add table entries `W[k, x_j]` under the masks `x_j = v`.
//!
//! # Randomness and threads
//!
//! Every draw uses the AES-128 word of its (chain, sweep, block, node)
//! ([`crate::kernels::aes`]), under a key derived from the run's key. Nothing depends
//! on the tile width, the SIMD level or the thread count, so results are bit-identical for
//! any number of threads, any batch size (a chain run alone draws what it draws in a batch)
//! and any SIMD level. Threads run over tiles when there are at least as many tiles as
//! threads (on AVX-512 CPUs over pairs of tiles, where there are at least twice as many
//! and the pairs still load the threads evenly: the AVX-512 spin kernel updates two
//! 64-chain tiles per call, which keeps twice as many independent add chains in flight),
//! and over the nodes
//! of each block otherwise: for runs of at least 2²⁰ flips whose blocks average at least
//! 2¹² flips a team of threads stays together for all the sweeps and meets at a spinning
//! barrier after each block (waking pool threads for every block of a thousand one-chain
//! nodes would cost more than the block); blocks of fewer flips run on one thread, and for
//! shorter runs the pool splits each block update of 2¹⁵ flips or more. A team whose
//! first thread spends more time waiting at the barriers than working (other processes
//! have the CPUs) gives up after that sweep, and the rest of the sweeps run block by
//! block. With a
//! single chain a tile is vectorised across the nodes of a block instead (ELL rows of
//! neighbours); where the AVX2 kernel runs it, the tile also keeps each spin's neighbours'
//! spins as a bit mask (`masks.rs`), which every write of a spin that changes updates
//! (about 3 % of the spins of an update on Pegasus(14)), so that a row of neighbours is
//! one blend instead of a gather.
//!
//! # Instruction sets
//!
//! The portable kernel (`kernel.rs`) is compiled by [`multiversion`] for AVX-512, AVX2,
//! NEON and baseline targets and picked at run time. On x86-64 CPUs with AVX2, FMA and
//! AES-NI, blocks with pairwise terms only (spins in any tile, and categoricals of up to 8
//! categories over tails of up to 8 in tiles of 16 or 64 chains) run on kernels written
//! with intrinsics instead (`avx2.rs`, in a VAES build and an AES-NI build): each 8-lane
//! group takes a neighbour's spins with one variable shift and adds its coupling with one
//! table permutation, the AES words and the decision stay in `ymm` registers, and
//! categorical tables are looked up with one permutation per row. They perform the
//! portable kernel's IEEE operations in the same order, so their output is bit-identical,
//! and the tests compare the two directly. On CPUs with AVX-512 (F, BW, VL, DQ) and VAES,
//! pairwise spin blocks in tiles of 16 or 64 chains run on a 512-bit kernel
//! (`avx512.rs`): a neighbour's 16 spins are a mask register and each coupling is one
//! masked add, and the decision lands straight in a mask (couplings of a spin to one
//! categorical each are one permutation of a weight row by its state bytes). Categorical
//! blocks with pairwise terms (and couplings to one spin each), of up to 16 categories
//! over tails of up to 16, in tiles of 16 or 64 chains, run on a 512-bit kernel of their
//! own there (`avx512_cat.rs`): a table row of 16 entries is one register, so each
//! category's lookup for 16 chains is one permutation by the tail's state bytes, the
//! softmax weights and their `f64` prefix sums stay in registers for two groups of 16
//! chains at a time, and the draw counts compares into masks. Its operations are again the portable kernel's, so its output is too.
//! Other categorical blocks keep the AVX2 kernel. One-chain spin tiles of at most 8,192
//! spins run on an AVX-512 one-chain kernel (`avx512.rs`, which also needs VBMI): the
//! tile's spins are packed into a bitmap of at most 16 registers, and 64 neighbours' spins
//! at a time are looked up with two-table byte permutations instead of gathers (on Zen 4
//! the gathers took 60 % of the AVX2 one-chain kernel's time); each 1,024-spin window is a
//! compare and one masked permutation per 64 neighbours, about 12 instructions per flip on
//! Pegasus(14). One-chain categorical tiles draw 16 nodes at a time in the lanes of one
//! softmax batch, each pairwise entry adding its table's column of the tail's state (`K`
//! adds, not `K · K'` masked ones). With AVX-512 and pairwise terms only they run on
//! `avx512_cat.rs`'s one-chain kernel, which transposes the biases (and a lattice's tails)
//! in registers and loads consecutive tails' states at once: Potts in one chain at
//! 0.17–0.21 flips/ns on one Zen 4 thread and 0.32–0.39 on two. Elsewhere the portable
//! kernel does the same in scalar lanes, at 0.05–0.07 and 0.08–0.13 there (a node at a
//! time with masked adds ran at 0.004 and 0.007).
//!
//! # Cost
//!
//! Measured with `thrml bench` on the development machine (2-vCPU AMD EPYC, Zen 3, AVX2
//! and VAES, no AVX-512; see `BENCHMARKS.md` for the table and the method): Pegasus(14),
//! 256 chains, about 0.5–0.6 flips/ns per thread, against 0.22 for the portable kernel.
//! A flip costs about 11 vector instructions there: 6.7 for the couplings (3 per 8 lanes
//! per coupling, 14.3 couplings per spin), 2.4 for the decision (19 per 8 lanes) and 1.8
//! for the AES word (11 rounds per 2 blocks, counters and the transpose).
//! On a 2-vCPU Intel Xeon with AVX-512 the 512-bit spin kernel does about 0.6 flips/ns per
//! thread (1.15 on two) on the same workload, against 0.38 for the AVX2 kernels there: per
//! flip about 0.9 masked adds, 1.1 operations of the decision and 0.7 AES rounds.
//! On a 2-vCPU AMD EPYC Zen 4, with tiles in pairs and the AES rounds beside the
//! couplings, the same workload runs at about 1.5 flips/ns on one thread and 2.3–2.9 on
//! two (≈ 2.7 cycles per flip and core, against ≈ 1.3 for its operation count). One
//! chain runs on the one-chain kernel at about 0.35–0.40 flips/ns, on one thread or two.
//! On a 2-vCPU AMD EPYC Zen 4 (AVX-512 double-pumped on 256-bit units) the 5-state Potts
//! workload (256×256 periodic grid, 4 tails per node, 256 chains) runs on the AVX-512
//! categorical kernel at about 0.3 flips/ns on one thread and 0.5–0.55 on two, against
//! 0.17–0.19 and 0.33–0.35 for the AVX2 kernel. Per 16 chains and node (K = 5) that kernel
//! is about 190 `zmm` instructions: 44 for the lookups (a zero-extension and 5
//! permutations and adds per tail), 70 for the weights (14 per category, 10 of them the
//! `exp2` polynomial), 25 for the `f64` sums, 16 for the draw's compares and counts, 14
//! for the AES words; a 64-chain tile of the grid is 4 MiB of states, larger than L2, but
//! the grid's rows stream through it and the out-to-state copy costs about 3 %.
//!
//! Nothing here allocates during sweeps: tiles, output rows and random-word buffers are
//! allocated when the run starts.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_cat;
mod kernel;
mod masks;
mod plan;
mod transpose;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;

pub(crate) use plan::FusedPlan;

/// The instruction set the fused kernels run on this CPU: `"avx512+vaes"` (the
/// pairwise spin kernels and the pairwise categorical kernel in AVX-512, the rest in
/// AVX2), `"avx2+vaes"` or `"avx2+aes-ni"`
/// for the hand-written x86-64 kernels, otherwise the level the portable
/// kernel was dispatched to (`"avx512"`, `"avx2"`, `"neon"` or `"baseline"`). Printed by
/// `thrml bench`, so that figures can be compared across machines.
///
/// # Example
///
/// ```
/// let isa = thrml::fused::kernel_isa();
/// assert!(["avx512+vaes", "avx2+vaes", "avx2+aes-ni", "avx512", "avx2", "neon", "baseline"].contains(&isa));
/// ```
#[must_use]
pub fn kernel_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        match avx2::detected() {
            Some(true) if avx512::detected() => return "avx512+vaes",
            Some(true) => return "avx2+vaes",
            Some(false) => return "avx2+aes-ni",
            None => {}
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "neon";
        }
    }
    "baseline"
}
use plan::{FusedBlock, Head, SlotKind};

use crate::block::BlockSpec;
use crate::kernels::aes::{BlockUpdate, WordKey};
use crate::rng::Key;
use crate::state::{State, Tensor};
use kernel::{Draw, Out, Scratch, TileState, update_nodes};
use masks::NeighbourMasks;

/// `fold_in` tag that separates the fused engine's AES key from the run's ChaCha streams.
const WORD_STREAM: u64 = 0x6165_7331_3238;

/// Smallest block update (nodes × lanes) split over threads: below it, waking the other
/// threads costs more than the work (a Pegasus(14) block of ~1,000 nodes in one chain).
const SPLIT_MIN_FLIPS: usize = 1 << 15;

/// Fewest flips of a node-parallel [`Engine::run_sweeps`] call that starts a team of
/// threads for it (`Engine::run_sweeps_team`): starting the threads costs some tens of
/// microseconds.
const TEAM_MIN_FLIPS: u64 = 1 << 20;

/// Fewest flips of the average block update that a team of threads splits. Below it a
/// block is a few microseconds of work, and a team that meets after each one stalls
/// whenever a teammate's CPU is taken. Pegasus(14) in one chain (~1,070 nodes a block) on
/// a noisy 2-vCPU machine, one thread against a team of two:
///
/// - quiet: 0.38 against 0.39 flips/ns;
/// - a slower phase: 0.27–0.32 against 0.35–0.38, or 0.13–0.14 in two runs of five;
/// - beside a compile job: 0.21–0.28 against 0.02–0.09.
///
/// In 16 chains (17,000 flips a block) the team of two is 1.6× faster.
const TEAM_MIN_BLOCK_FLIPS: usize = 1 << 12;

/// Dispatch on the lane count with `W` a constant.
macro_rules! with_lanes {
    ($lanes:expr, $w:ident => $body:expr) => {
        match $lanes {
            1 => {
                const $w: usize = 1;
                $body
            }
            16 => {
                const $w: usize = 16;
                $body
            }
            _ => {
                const $w: usize = 64;
                $body
            }
        }
    };
}

/// One tile of chains: its state and buffers.
#[derive(Debug)]
struct Tile {
    chain0: u32,
    bits: Vec<u64>,
    cats: Vec<u8>,
    /// The spins' neighbour masks, kept by one-chain tiles for the AVX2 kernel (empty
    /// otherwise).
    masks: Vec<u32>,
    out_bits: Vec<u64>,
    out_cats: Vec<u8>,
    scratch: Scratch,
}

/// Nodes of a categorical block that one tile updates before it writes them back, when
/// threads run over tiles: 1,024 nodes of 64 chains are 64 KiB of output rows.
const CAT_STRIP: usize = 1024;

/// A run of the fused engine over a batch of chains.
#[derive(Debug)]
pub(crate) struct Engine<'p> {
    plan: &'p FusedPlan,
    key: WordKey,
    n_chains: usize,
    lanes: usize,
    tiles: Vec<Tile>,
    /// Where each spin sits in the tiles' neighbour masks, when they keep them.
    neighbours: Option<NeighbourMasks>,
    /// Node-parallel workers' buffers (empty when threads run over tiles).
    par_scratch: Vec<Scratch>,
    /// Tiles per task when threads run over tiles: 2 where the tiles are many enough to
    /// be updated in pairs ([`update_tiles`]) without idling a thread, else 1.
    tiles_per_task: usize,
    /// Whether engine states changed since the last [`Engine::export`].
    pub(crate) dirty: bool,
}

impl<'p> Engine<'p> {
    /// Start a run of `n_chains` chains from `global` (as built by `init_global_state`).
    pub(crate) fn new(plan: &'p FusedPlan, key: Key, n_chains: usize, global: &[State]) -> Self {
        let mut engine = Engine::empty(plan, key, n_chains);
        for (slot, m) in plan.slots.iter().enumerate() {
            if m.kind != SlotKind::Other {
                engine.import(&global[slot][0], 0, slot, 0..m.size);
            }
        }
        engine
    }

    /// Whether the engine holds every slot of the program's global state, so that a run of
    /// fused blocks only can start from block states ([`Engine::from_blocks`]) and build
    /// the global state from the engine ([`Engine::new_global`]).
    pub(crate) fn holds_every_slot(plan: &FusedPlan) -> bool {
        plan.slots.iter().all(|m| m.kind != SlotKind::Other)
    }

    /// Start a run of `n_chains` chains straight from the states of the spec's blocks
    /// (`blocks[b]` of `spec.blocks[b]`, checked, batch shape `[n_chains]`), without a
    /// global state: each block state is dropped (freed, when owned) once it is imported.
    /// Needs [`Engine::holds_every_slot`].
    pub(crate) fn from_blocks(
        plan: &'p FusedPlan,
        key: Key,
        n_chains: usize,
        spec: &BlockSpec,
        blocks: Vec<Cow<'_, State>>,
    ) -> Self {
        let mut engine = Engine::empty(plan, key, n_chains);
        for (b, state) in blocks.into_iter().enumerate() {
            let (slot, start) = spec.block_offsets[b];
            let len = spec.blocks[b].len();
            engine.import(&state[0], start, slot, start..start + len);
        }
        engine
    }

    /// An engine whose tiles hold all-zero states.
    fn empty(plan: &'p FusedPlan, key: Key, n_chains: usize) -> Self {
        let lanes = match n_chains {
            1 => 1,
            2..=16 => 16,
            _ => 64,
        };
        let n_tiles = n_chains.div_ceil(lanes);
        let neighbours = if lanes == 1 {
            kernel::one_chain_masks(plan)
        } else {
            None
        };
        let threads = rayon::current_num_threads();
        // Categorical output rows for a whole block where its nodes are split over the
        // threads (fewer tiles than threads), else for a strip of it ([`update_tile`]).
        let cat_rows = if n_tiles < threads {
            plan.max_cat_len
        } else {
            plan.max_cat_len.min(CAT_STRIP)
        };
        let tiles = (0..n_tiles)
            .map(|t| Tile {
                chain0: u32::try_from(t * lanes).expect("fewer than 2^32 chains"),
                bits: vec![0; plan.n_spin],
                cats: vec![0; plan.n_cat * lanes],
                masks: neighbours
                    .as_ref()
                    .map_or_else(Vec::new, NeighbourMasks::zeros),
                out_bits: vec![0; plan.max_spin_len],
                out_cats: vec![0; cat_rows * lanes],
                scratch: Scratch::new(lanes, plan.max_k),
            })
            .collect();
        let par_scratch = if n_tiles < threads {
            (0..threads)
                .map(|_| Scratch::new(lanes, plan.max_k))
                .collect()
        } else {
            Vec::new()
        };
        // Pairs of tiles, when the pairs still give every thread the same number of
        // tasks (or so many that the last round hardly matters).
        let pairs = lanes > 1
            && kernel::pairs_tiles()
            && n_tiles >= 2 * threads
            && (n_tiles.div_ceil(2) % threads == 0 || n_tiles >= 8 * threads);
        Engine {
            plan,
            key: WordKey::from(key.fold_in(WORD_STREAM)),
            n_chains,
            lanes,
            tiles,
            neighbours,
            par_scratch,
            tiles_per_task: if pairs { 2 } else { 1 },
            dirty: false,
        }
    }

    /// Whether free block `b` runs on the fused kernels.
    pub(crate) fn is_fused(&self, b: usize) -> bool {
        self.plan.blocks[b].is_some()
    }

    /// Copy positions `positions` of `slot` into the engine from `src`, a `[chains, n]`
    /// leaf whose column `p − first` holds slot position `p` (the slot's leaf in the global
    /// state, with `first = 0`, or the leaf of a block starting at position `first`).
    pub(crate) fn import(
        &mut self,
        src: &Tensor,
        first: usize,
        slot: usize,
        positions: std::ops::Range<usize>,
    ) {
        let m = self.plan.slots[slot];
        let (n_chains, lanes) = (self.n_chains, self.lanes);
        let n = src.shape().get(1).copied().unwrap_or(0);
        let cols = positions.start - first..positions.end - first;
        let neighbours = self.neighbours.as_ref();
        self.tiles.par_iter_mut().for_each(|tile| {
            let c0 = tile.chain0 as usize;
            let valid = lanes.min(n_chains - c0);
            match m.kind {
                SlotKind::Spin => {
                    let g = src.as_slice::<bool>().expect("a bool leaf");
                    if let Some(nb) = neighbours {
                        // One chain, whose neighbour masks follow its spins.
                        let new = g[cols.clone()].iter().map(|&x| u64::from(x));
                        nb.write(
                            &mut tile.bits,
                            m.base + positions.start,
                            new,
                            &mut tile.masks,
                        );
                        return;
                    }
                    let bits = &mut tile.bits[m.base + positions.start..m.base + positions.end];
                    transpose::spins_to_lanes(bits, valid, |l| {
                        &g[(c0 + l) * n + cols.start..(c0 + l) * n + cols.end]
                    });
                }
                SlotKind::Cat => {
                    let g = src.as_slice::<u8>().expect("a u8 leaf");
                    let cats = &mut tile.cats
                        [(m.base + positions.start) * lanes..(m.base + positions.end) * lanes];
                    transpose::cats_to_lanes(cats, lanes, valid, |l| {
                        &g[(c0 + l) * n + cols.start..(c0 + l) * n + cols.end]
                    });
                }
                SlotKind::Other => {}
            }
        });
    }

    /// A new global state of `spec` (the program's), written from the engine: needs
    /// [`Engine::holds_every_slot`].
    pub(crate) fn new_global(&mut self, spec: &BlockSpec) -> Vec<State> {
        let mut global = self.zero_global(spec);
        self.export(&mut global);
        global
    }

    /// The global state of a run that needs the engine no more, as
    /// [`Engine::new_global`] builds it, but with each tile freed once it is copied out
    /// (a thread's worth at a time), so that the engine and the global state are never
    /// both whole.
    pub(crate) fn into_global(mut self, spec: &BlockSpec) -> Vec<State> {
        let mut global = self.zero_global(spec);
        let batch = rayon::current_num_threads().max(1);
        let mut tiles = std::mem::take(&mut self.tiles).into_iter();
        let mut first = 0;
        loop {
            let some: Vec<Tile> = tiles.by_ref().take(batch).collect();
            if some.is_empty() {
                break;
            }
            self.export_tiles(&some, first, &mut global);
            first += some.len();
        }
        global
    }

    /// A global state of the spec's layout with all-zero leaves, for this engine's chains.
    fn zero_global(&self, spec: &BlockSpec) -> Vec<State> {
        spec.global_sd_order
            .iter()
            .zip(&spec.slot_sizes)
            .map(|(layout, &size)| {
                layout
                    .leaves()
                    .iter()
                    .map(|leaf| Tensor::zeros_for(leaf, &[self.n_chains], size))
                    .collect()
            })
            .collect()
    }

    /// Write every engine-held state into the global state.
    pub(crate) fn export(&mut self, global: &mut [State]) {
        let tiles = std::mem::take(&mut self.tiles);
        self.export_tiles(&tiles, 0, global);
        self.tiles = tiles;
        self.dirty = false;
    }

    /// Write the engine-held states of `tiles`, the engine's tiles from number `first`
    /// on, into the global state.
    fn export_tiles(&self, tiles: &[Tile], first: usize, global: &mut [State]) {
        let lanes = self.lanes;
        for (slot, m) in self.plan.slots.iter().enumerate() {
            let size = m.size;
            if size == 0 {
                continue;
            }
            match m.kind {
                SlotKind::Spin => {
                    let g = global[slot][0].as_slice_mut::<bool>().expect("a bool leaf");
                    g[first * lanes * size..]
                        .par_chunks_mut(lanes * size)
                        .zip(tiles.par_iter())
                        .for_each(|(rows, tile)| {
                            transpose::lanes_to_spins(&tile.bits[m.base..m.base + size], rows);
                        });
                }
                SlotKind::Cat => {
                    let g = global[slot][0].as_slice_mut::<u8>().expect("a u8 leaf");
                    g[first * lanes * size..]
                        .par_chunks_mut(lanes * size)
                        .zip(tiles.par_iter())
                        .for_each(|(rows, tile)| {
                            let cats = &tile.cats[m.base * lanes..(m.base + size) * lanes];
                            transpose::lanes_to_cats(cats, lanes, rows);
                        });
                }
                SlotKind::Other => {}
            }
        }
    }

    /// Update the fused blocks among `blocks` (one superblock) at sweep `sweep`.
    pub(crate) fn update_blocks(&mut self, blocks: &[usize], sweep: u64) {
        let (plan, key, lanes) = (self.plan, &self.key, self.lanes);
        let nb = self.neighbours.as_ref();
        let fused = || plan.fused(blocks);
        if self.par_scratch.is_empty() {
            self.tiles
                .par_chunks_mut(self.tiles_per_task)
                .for_each(|tiles| {
                    for fb in fused() {
                        with_lanes!(lanes, W => update_tiles::<W>(tiles, fb, key, nb, sweep));
                    }
                });
        } else {
            for tile in &mut self.tiles {
                for fb in fused() {
                    if fb.len * lanes < SPLIT_MIN_FLIPS {
                        with_lanes!(lanes, W => update_tile::<W>(tile, fb, key, nb, sweep));
                    } else {
                        with_lanes!(lanes, W => update_tile_split::<W>(tile, fb, key, nb, sweep, &mut self.par_scratch));
                    }
                }
            }
        }
        self.dirty = true;
    }

    /// Whether [`Engine::run_sweeps`] of `n` sweeps in `order` runs a thread team, which
    /// starts threads and copies the tiles: a caller reporting progress then hands it the
    /// whole stretch and gets its reports from `tick`, rather than a team per report.
    pub(crate) fn runs_a_team(&self, order: &[Vec<usize>], n: u64) -> bool {
        if self.par_scratch.is_empty() {
            return false;
        }
        let (per_sweep, n_blocks) = self
            .plan
            .fused(order.iter().flatten())
            .fold((0, 0), |(f, b), fb| (f + fb.len * self.lanes, b + 1));
        n.saturating_mul(per_sweep as u64) >= TEAM_MIN_FLIPS
            && per_sweep >= TEAM_MIN_BLOCK_FLIPS * n_blocks
    }

    /// Run `n` whole sweeps, numbered from `first`, when every free block is fused.
    /// `tick(s)` is called on the calling thread with the number `s` of the next sweep to
    /// run: after every sweep where the threads meet after each block (a team, or blocks
    /// split over the pool), and after the last one where they run over tiles.
    pub(crate) fn run_sweeps(
        &mut self,
        order: &[Vec<usize>],
        first: u64,
        n: u64,
        tick: &mut dyn FnMut(u64),
    ) {
        if !self.par_scratch.is_empty() {
            let (mut first, mut n) = (first, n);
            if self.runs_a_team(order, n) {
                let done = self.run_sweeps_team(order, first, n, &team_is_slow, tick);
                // The rest of the sweeps, if the team gave up, block by block.
                (first, n) = (first + done, n - done);
            }
            for s in first..first + n {
                for blocks in order {
                    self.update_blocks(blocks, s);
                }
                tick(s + 1);
            }
            return;
        }
        let (plan, key, lanes) = (self.plan, &self.key, self.lanes);
        let nb = self.neighbours.as_ref();
        self.tiles
            .par_chunks_mut(self.tiles_per_task)
            .for_each(|tiles| {
                for s in first..first + n {
                    for blocks in order {
                        for fb in plan.fused(blocks) {
                            with_lanes!(lanes, W => update_tiles::<W>(tiles, fb, key, nb, s));
                        }
                    }
                }
            });
        self.dirty = true;
        tick(first + n);
    }
}

impl Engine<'_> {
    /// [`Engine::run_sweeps`] with the nodes of every block split over a team of threads
    /// that stays together for all `n` sweeps (fewer tiles than threads).
    ///
    /// Waking the thread pool for each block update costs more than the update itself
    /// when a block is a thousand nodes of one chain, so the team's threads instead meet
    /// at a spinning [`Barrier`] after each block. Worker `t` keeps its own copy of the
    /// tiles' states, updates its share of the block's positions into its output buffer,
    /// and after the barrier copies every worker's share into its copy, so the copies stay
    /// equal. The output buffers alternate between two sets, so that a worker writing the
    /// next block's share never overwrites one that another worker is still copying:
    /// writing set `b mod 2` again needs the barrier after block `b + 1`, which every
    /// worker reaches only after it has copied block `b`. The draws are those of
    /// [`Engine::update_blocks`], whatever the team size.
    ///
    /// A team whose first thread waits at the barriers longer than it works (other
    /// processes taking the teammates' CPUs) runs slower than that thread alone would:
    /// `give_up(sweeps done, waited, worked)`, asked at the end of each sweep with the
    /// first thread's times since the last window of [`TEAM_WINDOW`], stops the team after
    /// that sweep. Returns the sweeps done (`n` unless it gave up); the caller runs the
    /// rest without the team, with the same draws. The first thread (the caller's) calls
    /// `tick` after each sweep, as [`Engine::run_sweeps`] does; the others wait for it at
    /// the next barrier.
    fn run_sweeps_team(
        &mut self,
        order: &[Vec<usize>],
        first: u64,
        n: u64,
        give_up: &(dyn Fn(u64, Duration, Duration) -> bool + Sync),
        tick: &mut dyn FnMut(u64),
    ) -> u64 {
        let (plan, key, lanes) = (self.plan, &self.key, self.lanes);
        let threads = self.par_scratch.len();
        let n_tiles = self.tiles.len();
        let chain0: Vec<u32> = self.tiles.iter().map(|t| t.chain0).collect();
        let nb = self.neighbours.as_ref();
        let states: Vec<TileCopy> = self
            .tiles
            .iter()
            .map(|t| (t.bits.clone(), t.cats.clone(), t.masks.clone()))
            .collect();
        // The share of worker `t` among the positions of a block of `len`.
        let part = |len: usize| {
            len.div_ceil(threads)
                .next_multiple_of(kernel::CHUNK)
                .max(kernel::CHUNK)
        };
        let share = |len: usize, t: usize| {
            let part = part(len);
            (t * part).min(len)..((t + 1) * part).min(len)
        };
        // outs[set][worker][tile]: a worker's share of the last block, from its first
        // position.
        let outs: [Vec<RwLock<Vec<TileStates>>>; 2] = std::array::from_fn(|_| {
            (0..threads)
                .map(|_| {
                    RwLock::new(vec![
                        (
                            vec![0; part(plan.max_spin_len).min(plan.max_spin_len)],
                            vec![0; part(plan.max_cat_len).min(plan.max_cat_len) * lanes]
                        );
                        n_tiles
                    ])
                })
                .collect()
        });
        let barrier = Barrier::new(threads);
        let fused: Vec<&FusedBlock> = plan.fused(order.iter().flatten()).collect();
        let work = |t: usize,
                    scratch: &mut Scratch,
                    mut states: Vec<TileCopy>,
                    tick: &mut dyn FnMut(u64)| {
            let _poison = PoisonOnPanic(&barrier);
            let mut set = 0;
            // Thread 0's time at the barriers and between them, in the current window.
            let (mut waited, mut worked) = (Duration::ZERO, Duration::ZERO);
            let mut left = Instant::now();
            let mut done = 0;
            for s in first..first + n {
                for (b, &fb) in fused.iter().enumerate() {
                    let mine = share(fb.len, t);
                    {
                        let mut out = outs[set][t].write().unwrap_or_else(PoisonError::into_inner);
                        for (i, ((bits, cats, masks), (ob, oc))) in
                            states.iter().zip(out.iter_mut()).enumerate()
                        {
                            with_lanes!(lanes, W => update_nodes::<W>(
                                fb,
                                draw(key, fb, s, chain0[i]),
                                mine.clone(),
                                TileState { bits, cats, masks },
                                Out::of(fb.head, ob, oc, 0..mine.len(), lanes),
                                scratch,
                            ));
                        }
                    }
                    // Only thread 0 asks, at the last block of a sweep; the barrier gives
                    // every thread its answer.
                    let arrived = (t == 0).then(Instant::now);
                    let mut ask = false;
                    if let Some(at) = arrived {
                        worked += at - left;
                        if b + 1 == fused.len() {
                            ask = give_up(done + 1, waited, worked);
                            if waited + worked >= TEAM_WINDOW {
                                (waited, worked) = (Duration::ZERO, Duration::ZERO);
                            }
                        }
                    }
                    let stop = barrier.wait(ask);
                    if let Some(at) = arrived {
                        let now = Instant::now();
                        waited += now - at;
                        left = now;
                    }
                    for (u, out) in outs[set].iter().enumerate() {
                        let theirs = share(fb.len, u);
                        let out = out.read().unwrap_or_else(PoisonError::into_inner);
                        for ((bits, cats, masks), (ob, oc)) in states.iter_mut().zip(out.iter()) {
                            with_lanes!(lanes, W => write_block::<W>(
                                fb,
                                nb,
                                (bits, cats, masks),
                                theirs.clone(),
                                (ob, oc),
                            ));
                        }
                    }
                    set ^= 1;
                    if stop {
                        tick(s + 1);
                        return (states, done + 1);
                    }
                }
                done += 1;
                tick(s + 1);
            }
            (states, done)
        };
        let (first_scratch, rest) = self
            .par_scratch
            .split_first_mut()
            .expect("a team of at least one");
        let states = std::thread::scope(|scope| {
            for (t, scratch) in rest.iter_mut().enumerate() {
                let states = states.clone();
                let work = &work;
                scope.spawn(move || work(t + 1, scratch, states, &mut |_| {}));
            }
            work(0, first_scratch, states, tick)
        });
        let (states, done) = states;
        for (tile, (bits, cats, masks)) in self.tiles.iter_mut().zip(states) {
            tile.bits = bits;
            tile.cats = cats;
            tile.masks = masks;
        }
        self.dirty = true;
        done
    }
}

/// Window of thread 0's time over which a team is judged ([`Engine::run_sweeps_team`]).
const TEAM_WINDOW: Duration = Duration::from_millis(2);

/// Whether a team ran slower than its first thread would alone over a window: that
/// thread waited at the barriers longer than it worked.
fn team_is_slow(_sweeps: u64, waited: Duration, worked: Duration) -> bool {
    waited + worked >= TEAM_WINDOW && waited > worked
}

/// A buffer of block outputs: spins (lane masks) and categoricals (`W` bytes per node).
type TileStates = (Vec<u64>, Vec<u8>);

/// A worker's copy of a tile: its spins, categoricals and neighbour masks.
type TileCopy = (Vec<u64>, Vec<u8>, Vec<u32>);

/// A barrier for a team of threads that meets thousands of times a second: waiting
/// threads spin (then yield, should the team outnumber the free CPUs) instead of
/// sleeping, since waking a sleeping thread costs more than a block update.
///
/// A thread that panics poisons it ([`PoisonOnPanic`]), and the threads waiting at it or
/// arriving later then panic too, instead of waiting forever for the one that is gone;
/// the scope that runs the team then passes the first panic on.
///
/// A thread may ask the team to stop as it arrives; every thread of that generation gets
/// the same answer (whether any asked), so that they all stop at the same barrier.
#[derive(Debug)]
struct Barrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
    /// Whether a thread of the current generation asked to stop.
    asked: AtomicBool,
    /// The answer of the last generation.
    stop: AtomicBool,
}

/// Poisons `0` if dropped while its thread panics.
struct PoisonOnPanic<'a>(&'a Barrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison();
        }
    }
}

impl Barrier {
    fn new(n: usize) -> Barrier {
        Barrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            asked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// Release every waiting thread with a panic, now and at every later `wait`.
    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// Return once all `n` threads have called `wait` (for this generation), with whether
    /// any of them asked to stop (`ask`).
    ///
    /// # Panics
    /// If the barrier is poisoned: another thread of the team panicked.
    fn wait(&self, ask: bool) -> bool {
        /// Spins before each wait yields the CPU.
        const SPINS: u32 = 1 << 12;
        let generation = self.generation.load(Ordering::Acquire);
        if ask {
            // Published to the last arriver by the `AcqRel` count below.
            self.asked.store(true, Ordering::Relaxed);
        }
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // The last to arrive: record the answer and reset the count before releasing
            // the others, who see both once they see the new generation. (No thread can
            // overwrite the answer before all have read it: that takes a generation that
            // all of them arrive at.)
            let stop = self.asked.swap(false, Ordering::Relaxed);
            self.stop.store(stop, Ordering::Relaxed);
            self.arrived.store(0, Ordering::Relaxed);
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            return stop;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            assert!(
                !self.poisoned.load(Ordering::Acquire),
                "another thread of the sampling team panicked"
            );
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.stop.load(Ordering::Relaxed)
    }
}

fn draw<'k>(key: &'k WordKey, fb: &FusedBlock, sweep: u64, chain0: u32) -> Draw<'k> {
    Draw {
        key,
        update: BlockUpdate::new(sweep, u32::try_from(fb.block).expect("checked by the plan")),
        chain0,
    }
}

/// Update block `fb` of one tile in place (`nb`: where its neighbour masks are, if it
/// keeps them).
fn update_tile<const W: usize>(
    tile: &mut Tile,
    fb: &FusedBlock,
    key: &WordKey,
    nb: Option<&NeighbourMasks>,
    sweep: u64,
) {
    let draw = draw(key, fb, sweep, tile.chain0);
    // A categorical block is updated a strip of its nodes at a time, as many as the
    // output rows hold (the tails of a fused block lie outside it, so writing a strip back
    // before the next is drawn changes nothing).
    let strip = match fb.head {
        Head::Spin => fb.len,
        Head::Cat(_) => tile.out_cats.len() / W,
    };
    for start in (0..fb.len).step_by(strip.max(1)) {
        let nodes = start..(start + strip).min(fb.len);
        let (state, out, scratch) = tile.parts(fb.head, nodes.clone(), W);
        update_nodes::<W>(fb, draw, nodes.clone(), state, out, scratch);
        tile.write_back::<W>(fb, nb, nodes);
    }
}

/// Update block `fb` of each of `tiles` in place: both at once when they are two and a
/// kernel updates pairs (`kernel::update_pair`, the same bits), else one by one.
fn update_tiles<const W: usize>(
    tiles: &mut [Tile],
    fb: &FusedBlock,
    key: &WordKey,
    nb: Option<&NeighbourMasks>,
    sweep: u64,
) {
    if let [a, b] = tiles
        && fb.head == Head::Spin
    {
        let draws = [a.chain0, b.chain0].map(|c0| draw(key, fb, sweep, c0));
        let (sa, oa, _) = a.parts(fb.head, 0..fb.len, W);
        let (sb, ob, _) = b.parts(fb.head, 0..fb.len, W);
        if kernel::update_pair::<W>(fb, draws, 0..fb.len, [sa, sb], [oa, ob]) {
            a.write_back::<W>(fb, nb, 0..fb.len);
            b.write_back::<W>(fb, nb, 0..fb.len);
            return;
        }
    }
    for tile in tiles {
        update_tile::<W>(tile, fb, key, nb, sweep);
    }
}

impl Tile {
    /// What an update of positions `nodes` of a block with head `head` reads (the tile's
    /// state), where it writes (the output rows, from the first) and its scratch buffers.
    fn parts(
        &mut self,
        head: Head,
        nodes: std::ops::Range<usize>,
        lanes: usize,
    ) -> (TileState<'_>, Out<'_>, &mut Scratch) {
        let state = TileState {
            bits: &self.bits,
            cats: &self.cats,
            masks: &self.masks,
        };
        let rows = 0..nodes.len();
        let out = Out::of(head, &mut self.out_bits, &mut self.out_cats, rows, lanes);
        (state, out, &mut self.scratch)
    }

    /// Copy the new states of positions `nodes` of block `fb` from the output rows into
    /// the tile.
    fn write_back<const W: usize>(
        &mut self,
        fb: &FusedBlock,
        nb: Option<&NeighbourMasks>,
        nodes: std::ops::Range<usize>,
    ) {
        let state = (&mut self.bits[..], &mut self.cats[..], &mut self.masks[..]);
        write_block::<W>(fb, nb, state, nodes, (&self.out_bits, &self.out_cats));
    }
}

/// Copy positions `part` of block `fb`'s new states (`out`, whose first row is position
/// `part.start`) into a tile's spins, categoricals and neighbour masks (`nb`, where it
/// keeps them).
fn write_block<const W: usize>(
    fb: &FusedBlock,
    nb: Option<&NeighbourMasks>,
    (bits, cats, masks): (&mut [u64], &mut [u8], &mut [u32]),
    part: std::ops::Range<usize>,
    (out_bits, out_cats): (&[u64], &[u8]),
) {
    let at = fb.start + part.start;
    let n = part.len();
    match fb.head {
        Head::Spin => masks::write_spins(nb, bits, at, &out_bits[..n], masks),
        Head::Cat(_) => cats[at * W..(at + n) * W].copy_from_slice(&out_cats[..n * W]),
    }
}

/// Update block `fb` of one tile with its nodes split over the thread pool.
fn update_tile_split<const W: usize>(
    tile: &mut Tile,
    fb: &FusedBlock,
    key: &WordKey,
    nb: Option<&NeighbourMasks>,
    sweep: u64,
    scratch: &mut [Scratch],
) {
    let len = fb.len;
    let part = len
        .div_ceil(scratch.len())
        .next_multiple_of(kernel::CHUNK)
        .max(kernel::CHUNK);
    let d = draw(key, fb, sweep, tile.chain0);
    let state = TileState {
        bits: &tile.bits,
        cats: &tile.cats,
        masks: &tile.masks,
    };
    match fb.head {
        Head::Spin => tile.out_bits[..len]
            .par_chunks_mut(part)
            .zip(scratch.par_iter_mut())
            .enumerate()
            .for_each(|(i, (out, sc))| {
                let nodes = i * part..i * part + out.len();
                update_nodes::<W>(
                    fb,
                    d,
                    nodes,
                    state,
                    Out {
                        bits: out,
                        cats: &mut [],
                    },
                    sc,
                );
            }),
        Head::Cat(_) => tile.out_cats[..len * W]
            .par_chunks_mut(part * W)
            .zip(scratch.par_iter_mut())
            .enumerate()
            .for_each(|(i, (out, sc))| {
                let nodes = i * part..i * part + out.len() / W;
                update_nodes::<W>(
                    fb,
                    d,
                    nodes,
                    state,
                    Out {
                        bits: &mut [],
                        cats: out,
                    },
                    sc,
                );
            }),
    }
    write_block::<W>(
        fb,
        nb,
        (&mut tile.bits, &mut tile.cats, &mut tile.masks),
        0..len,
        (&tile.out_bits, &tile.out_cats),
    );
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Barrier, Engine, PoisonOnPanic};
    use crate::{Block, IsingEBM, IsingSamplingProgram, Key, Node, NodeKind, hinton_init};

    /// The global states after `n` sweeps of 5 chains of a 64 × 64 periodic Ising grid
    /// (checkerboard blocks), on a team of two threads asked to give up after `give_up`
    /// sweeps (`None`: never) and block by block after that, or block by block throughout
    /// (`team = false`).
    fn grid_after(n: u64, team: bool, give_up: Option<u64>) -> Vec<crate::State> {
        let side = 64;
        let s = Node::many(NodeKind::SPIN, side * side);
        let at = |r: usize, c: usize| s[(r % side) * side + c % side];
        let mut edges = Vec::new();
        for r in 0..side {
            for c in 0..side {
                edges.push((at(r, c), at(r, c + 1)));
                edges.push((at(r, c), at(r + 1, c)));
            }
        }
        let weights: Vec<f32> = (0..edges.len())
            .map(|e| (e % 7) as f32 * 0.1 - 0.3)
            .collect();
        let biases: Vec<f32> = (0..s.len()).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
        let ebm = IsingEBM::new(s.clone(), edges, biases, weights, 1.0).unwrap();
        let colour = |i: usize| (i / side + i % side) % 2;
        let blocks: Vec<Block> = (0..2)
            .map(|b| {
                Block::new(
                    (0..s.len())
                        .filter(|&i| colour(i) == b)
                        .map(|i| s[i])
                        .collect(),
                )
            })
            .collect::<crate::Result<_>>()
            .unwrap();
        let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
        let init = hinton_init(Key::new(3), &ebm, &blocks, &[5]).unwrap();
        crate::with_threads(2, || {
            let plan = program.fused_plan().expect("fused");
            let spec = &program.gibbs_spec;
            let states: Vec<Cow<'_, crate::State>> = init
                .iter()
                .map(|a| Cow::Owned(vec![crate::Tensor::from(a.clone())]))
                .collect();
            let mut engine = Engine::from_blocks(plan, Key::new(9), 5, spec, states);
            assert!(!engine.par_scratch.is_empty(), "fewer tiles than threads");
            let order = &spec.sampling_order;
            let mut first = 0;
            if team {
                let stop = |done: u64, _, _| Some(done) == give_up;
                let mut ticks = Vec::new();
                first = engine.run_sweeps_team(order, 0, n, &stop, &mut |s| ticks.push(s));
                assert_eq!(first, give_up.unwrap_or(n));
                assert_eq!(ticks, (1..=first).collect::<Vec<_>>(), "a tick per sweep");
            }
            for sweep in first..n {
                for blocks in order {
                    engine.update_blocks(blocks, sweep);
                }
            }
            engine.into_global(spec)
        })
        .unwrap()
    }

    #[test]
    fn a_team_that_gives_up_leaves_the_same_states() {
        let alone = grid_after(8, false, None);
        assert_eq!(grid_after(8, true, None), alone, "the whole team");
        for stop in [1, 3, 8] {
            assert_eq!(
                grid_after(8, true, Some(stop)),
                alone,
                "gave up after {stop}"
            );
        }
        assert_ne!(grid_after(7, false, None), alone, "not vacuous");
    }

    #[test]
    fn a_panicking_team_thread_releases_the_others() {
        // Two threads meet at a barrier of three: the third panics instead of arriving,
        // and the two waiting ones must panic too rather than wait forever.
        let barrier = Barrier::new(3);
        std::thread::scope(|scope| {
            let waiting: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| barrier.wait(false)))
                .collect();
            let failing = scope.spawn(|| {
                let _poison = PoisonOnPanic(&barrier);
                panic!("a kernel bug");
            });
            assert!(failing.join().is_err());
            for w in waiting {
                assert!(w.join().is_err(), "a waiting thread returned");
            }
        });
        // A team that meets normally is not poisoned.
        let barrier = Barrier::new(2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                let _poison = PoisonOnPanic(&barrier);
                barrier.wait(false);
            });
            barrier.wait(false);
            assert!(other.join().is_ok());
        });
    }
}
