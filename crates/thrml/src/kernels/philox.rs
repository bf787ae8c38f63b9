//! Philox4x32-10: counter-based random words for the fused kernels.
//!
//! Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel Random Numbers: As Easy as 1, 2,
//! 3", SC'11) is a keyed bijection of a 128-bit counter: ten rounds of two 32 × 32 → 64-bit
//! multiplies and xors, with a Weyl-sequence key schedule. It passes TestU01's BigCrush.
//! There is no generator state: every output is a pure function of `(key, counter)`, which
//! is what lets a kernel draw the random bits of any chain, sweep, block and node on any
//! thread, in any order, and get the same answer.
//!
//! # Randomness is a function of position
//!
//! The 32 random bits that update node `j` of free block `b` in chain `c` during sweep `t`
//! are
//!
//! ```text
//! key     = [k0, k1]                 the first 8 bytes of the run's Key, little-endian
//! counter = [c, j / 4, t mod 2³², (t >> 32) | (b << 16)]
//! word    = philox4x32_10(counter, key)[j % 4]
//! ```
//!
//! One Philox call yields four words; they go to **four consecutive nodes** `4q .. 4q + 4`
//! of the block (same chain, sweep and block). Consecutive chains are consecutive counters
//! (word 0), so a SIMD batch of Philox calls runs across chains and lands directly in the
//! chain-minor layout of the state: lane `i` of output word `w` is the draw of node
//! `4q + w` in chain `c0 + i`, with no transpose. A single chain uses all four words too.
//!
//! Limits: chains `< 2³²`, nodes per block `< 2³⁴`, sweeps `< 2⁴⁸`, blocks `< 2¹⁶`
//! ([`BlockUpdate::new`] checks the last two). A sampler that needs more than one word per
//! site derives another key (`PhiloxKey::from(key.fold_in(i))`).
//!
//! The words do not depend on the number of chains, on how chains or nodes are split over
//! threads or tiles, or on the SIMD width: [`fill_words`] on any sub-rectangle of (nodes ×
//! chains) returns exactly the corresponding [`site_word`]s. A split of a block's nodes at a
//! boundary that is not a multiple of 4 only costs a recomputed Philox call.
//!
//! # Uniforms
//!
//! [`u01_f32`] keeps the top 24 bits of a word: `k · 2⁻²⁴` with `k` uniform in
//! `0 .. 2²⁴`, every value exact in `f32`, range `[0, 1 − 2⁻²⁴]`. For any `p ∈ [0, 1]`,
//! `P(u01_f32(w) < p) = ⌈p · 2²⁴⌉ / 2²⁴`, within `2⁻²⁴ ≈ 6.0e-8` of `p`, exactly 0 for
//! `p = 0` and exactly 1 for `p = 1`. It is the same decision as the integer test
//! `(w >> 8) < ⌈p · 2²⁴⌉`. [`u01_f64`] uses all 32 bits: `w · 2⁻³²`, resolution
//! `2⁻³² ≈ 2.3e-10`.
//!
//! # Cost
//!
//! Ten rounds of two 32 × 32 → 64-bit multiplies per four words. [`philox4x32_10_lanes`]
//! vectorises them (`vpmuludq` + `vpshufd` + `vpermt2d` for the high halves, `vpmulld` for
//! the low ones, `vpternlogd` for the xors: about 30 uops per round for 16 lanes under
//! AVX2/AVX-512VL), so the multiply ports bound it at roughly 1.3 cycles per word with
//! 256-bit vectors and half that with 512-bit ones. Baseline x86-64 (SSE2) has no
//! `pmulld`, and there the vector form is no faster than scalar code.
//!
//! Measured on one core of the development machine (Intel Xeon, Emerald Rapids, 3.1 GHz,
//! a 2-vCPU VM shared with other builds: best of 400 samples, so upper bounds), ns per
//! 32-bit word; `cargo bench -p thrml --bench kernels -- philox` reproduces them:
//!
//! | form | baseline x86-64 | `-C target-cpu=x86-64-v3` | `-C target-cpu=native` |
//! |---|---|---|---|
//! | [`philox4x32_10`] in a loop over counters | 1.9 | 1.1 | 0.6–0.7 |
//! | [`fill_words`], 4 nodes × 1024 chains | 2.4 | 0.97 | 0.86–0.94 |
//! | [`fill_words`], 256 nodes × 16 chains | 2.4 | 0.96 | 0.99 |
//! | [`fill_words`], 4096 nodes × 1 chain | 3.6 | 1.7 | 1.2 |
//!
//! (LLVM vectorises the plain loop over [`philox4x32_10`] calls itself, with 64-bit lanes
//! in `zmm` registers, which is why it keeps up; it writes the words chain-major, though.)
//! For comparison, the crate's per-chain ChaCha8 stream costs about 1 ns per 32-bit word.

use crate::rng::Key;

/// Philox4x32 round multipliers (Random123 `PHILOX_M4x32_0`, `PHILOX_M4x32_1`).
pub(crate) const M0: u32 = 0xD251_1F53;
pub(crate) const M1: u32 = 0xCD9E_8D57;
/// Key schedule increments: the golden ratio and √3 − 1 in 0.32 fixed point (Random123
/// `PHILOX_W32_0`, `PHILOX_W32_1`).
pub(crate) const W0: u32 = 0x9E37_79B9;
pub(crate) const W1: u32 = 0xBB67_AE85;

/// Chains evaluated together by [`fill_words`]: 16 `u32` lanes fill one AVX-512 register
/// or two AVX2 registers. The value never changes any output, only speed.
pub const FILL_LANES: usize = 16;

/// Exclusive bound on a sweep index in a [`BlockUpdate`].
pub const MAX_SWEEPS: u64 = 1 << 48;
/// Exclusive bound on a block index in a [`BlockUpdate`].
pub const MAX_BLOCKS: u32 = 1 << 16;

/// Philox4x32-10 of one 128-bit `counter` under a 64-bit `key`.
///
/// Bit-identical to Random123's `philox4x32(ctr, key)` with 10 rounds.
///
/// # Example
///
/// ```
/// use thrml::kernels::philox::philox4x32_10;
/// // Random123 tests/kat_vectors, all-zero counter and key.
/// assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
/// ```
#[inline]
#[must_use]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(x0);
        let p1 = u64::from(M1) * u64::from(x2);
        (x0, x1, x2, x3) = (
            (p1 >> 32) as u32 ^ x1 ^ k0,
            p1 as u32,
            (p0 >> 32) as u32 ^ x3 ^ k1,
            p0 as u32,
        );
    }
    [x0, x1, x2, x3]
}

/// Philox4x32-10 of `L` counters at once, struct-of-arrays: `counter[w][l]` is word `w` of
/// lane `l`'s counter, and word `w` of the result's lane `l` is
/// `philox4x32_10(lane l's counter, key)[w]`.
///
/// The lane loops are written so that LLVM vectorises them (`vpmuludq` for the high
/// product halves, `vpmulld` for the low ones); `L` a multiple of the vector width is best.
#[inline(always)]
#[must_use]
pub fn philox4x32_10_lanes<const L: usize>(counter: [[u32; L]; 4], key: [u32; 2]) -> [[u32; L]; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let mut y = [[0u32; L]; 4];
        for l in 0..L {
            let hi0 = ((u64::from(M0) * u64::from(x0[l])) >> 32) as u32;
            let hi1 = ((u64::from(M1) * u64::from(x2[l])) >> 32) as u32;
            y[0][l] = hi1 ^ x1[l] ^ k0;
            // The low halves as 32-bit multiplies: one `vpmulld` instead of extracting the
            // odd lanes of two `vpmuludq` results.
            y[1][l] = x2[l].wrapping_mul(M1);
            y[2][l] = hi0 ^ x3[l] ^ k1;
            y[3][l] = x0[l].wrapping_mul(M0);
        }
        [x0, x1, x2, x3] = y;
    }
    [x0, x1, x2, x3]
}

/// The 64-bit Philox key of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhiloxKey([u32; 2]);

impl PhiloxKey {
    /// A key from its two words, used verbatim.
    #[must_use]
    pub const fn new(words: [u32; 2]) -> PhiloxKey {
        PhiloxKey(words)
    }

    /// The key of `Key::new(seed)`.
    #[must_use]
    pub fn from_seed(seed: u64) -> PhiloxKey {
        PhiloxKey::from(Key::new(seed))
    }

    /// The two key words.
    #[must_use]
    pub const fn words(self) -> [u32; 2] {
        self.0
    }
}

impl From<Key> for PhiloxKey {
    /// The first 8 bytes of the key, as two little-endian words. Keys derived with
    /// [`Key::fold_in`] give independent Philox keys.
    fn from(key: Key) -> PhiloxKey {
        let b = key.bytes();
        PhiloxKey([
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        ])
    }
}

/// One update of one free block: sweep `t`, block `b` (the sweep-and-block half of a
/// draw's position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockUpdate {
    sweep: u64,
    block: u32,
}

impl BlockUpdate {
    /// The update of block `block` in sweep `sweep`.
    ///
    /// # Panics
    /// If `sweep >= MAX_SWEEPS` or `block >= MAX_BLOCKS`; a program with more blocks must
    /// be refused when it is built.
    #[must_use]
    pub fn new(sweep: u64, block: u32) -> BlockUpdate {
        assert!(sweep < MAX_SWEEPS, "sweep {sweep} ≥ 2^48");
        assert!(block < MAX_BLOCKS, "block {block} ≥ 2^16");
        BlockUpdate { sweep, block }
    }

    /// The sweep index.
    #[must_use]
    pub fn sweep(self) -> u64 {
        self.sweep
    }

    /// The block index.
    #[must_use]
    pub fn block(self) -> u32 {
        self.block
    }

    /// Counter words 2 and 3: `[t mod 2³², (t >> 32) | (b << 16)]`.
    #[inline]
    #[must_use]
    pub fn counter_hi(self) -> [u32; 2] {
        [
            self.sweep as u32,
            (self.sweep >> 32) as u32 | (self.block << 16),
        ]
    }

    /// The Philox counter of node quad `node_quad` (nodes `4q .. 4q + 4`) in chain `chain`.
    #[inline]
    #[must_use]
    pub fn counter(self, chain: u32, node_quad: u32) -> [u32; 4] {
        let [h0, h1] = self.counter_hi();
        [chain, node_quad, h0, h1]
    }
}

/// The 32 random bits of node `node` (position in its block) in chain `chain` at `update`.
///
/// This is the definition every batched form reproduces.
///
/// # Example
///
/// ```
/// use thrml::kernels::philox::{BlockUpdate, PhiloxKey, fill_words, site_word};
/// let key = PhiloxKey::from_seed(7);
/// let at = BlockUpdate::new(3, 1);
/// // Nodes 5..7 × chains 10..13, chain-minor.
/// let mut words = [0u32; 2 * 3];
/// fill_words(key, at, 5..7, 10..13, &mut words);
/// assert_eq!(words[3 + 2], site_word(key, at, 12, 6));
/// ```
#[inline]
#[must_use]
pub fn site_word(key: PhiloxKey, update: BlockUpdate, chain: u32, node: u64) -> u32 {
    let quad = u32::try_from(node >> 2).expect("node index < 2^34");
    philox4x32_10(update.counter(chain, quad), key.0)[(node & 3) as usize]
}

/// The random words of nodes `nodes` and chains `chains` at `update`, chain-minor:
/// `out[(j − nodes.start) · chains.len() + (c − chains.start)] == site_word(key, update, c, j)`.
///
/// Runs [`FILL_LANES`] Philox calls per batch: across chains (one node quad, consecutive
/// chains) when there are at least [`FILL_LANES`] chains, otherwise across node quads of
/// one chain. Either way every Philox word is used unless `nodes` starts or ends inside
/// a quad.
///
/// # Panics
/// If `out.len() != nodes.len() · chains.len()`, or `nodes.end > 2³⁴`.
#[inline(always)]
pub fn fill_words(
    key: PhiloxKey,
    update: BlockUpdate,
    nodes: std::ops::Range<u64>,
    chains: std::ops::Range<u32>,
    out: &mut [u32],
) {
    let n_chains = chains.len();
    let n_nodes = usize::try_from(nodes.end.saturating_sub(nodes.start)).expect("node count");
    assert_eq!(out.len(), n_nodes * n_chains, "output size");
    assert!(nodes.end <= 1 << 34, "node index < 2^34");
    if n_chains == 0 || n_nodes == 0 {
        return;
    }
    if n_chains >= FILL_LANES {
        fill_across_chains(key, update, &nodes, chains.start, n_chains, out);
    } else {
        fill_across_nodes(key, update, &nodes, chains.start, n_chains, out);
    }
}

/// [`fill_words`] with the Philox lanes on consecutive chains.
#[inline(always)]
fn fill_across_chains(
    key: PhiloxKey,
    update: BlockUpdate,
    nodes: &std::ops::Range<u64>,
    chain0: u32,
    n_chains: usize,
    out: &mut [u32],
) {
    const L: usize = FILL_LANES;
    let [h0, h1] = update.counter_hi();
    let mut quad_start = nodes.start & !3;
    while quad_start < nodes.end {
        let quad = (quad_start >> 2) as u32;
        // Words `w_lo..w_hi` of this quad fall inside `nodes`; word `w` goes to row
        // `quad_start + w − nodes.start` of `out`.
        let w_lo = nodes.start.saturating_sub(quad_start) as usize;
        let w_hi = (nodes.end - quad_start).min(4) as usize;
        let row_of = |w: usize| (quad_start + w as u64 - nodes.start) as usize * n_chains;
        let full = n_chains - n_chains % L;
        for i in (0..full).step_by(L) {
            let words = chain_batch(key, quad, h0, h1, chain0.wrapping_add(i as u32));
            for (w, row) in words.iter().enumerate().take(w_hi).skip(w_lo) {
                // Fixed-size copies compile to vector moves, not `memcpy` calls.
                let at = row_of(w) + i;
                out[at..at + L].copy_from_slice(row);
            }
        }
        if full < n_chains {
            let words = chain_batch(key, quad, h0, h1, chain0.wrapping_add(full as u32));
            let m = n_chains - full;
            for (w, row) in words.iter().enumerate().take(w_hi).skip(w_lo) {
                let at = row_of(w) + full;
                out[at..at + m].copy_from_slice(&row[..m]);
            }
        }
        quad_start += 4;
    }
}

/// Philox words of node quad `quad` for [`FILL_LANES`] consecutive chains from `first`.
#[inline(always)]
fn chain_batch(key: PhiloxKey, quad: u32, h0: u32, h1: u32, first: u32) -> [[u32; FILL_LANES]; 4] {
    let ctr = [
        std::array::from_fn(|l| first.wrapping_add(l as u32)),
        [quad; FILL_LANES],
        [h0; FILL_LANES],
        [h1; FILL_LANES],
    ];
    philox4x32_10_lanes(ctr, key.0)
}

/// [`fill_words`] with the Philox lanes on consecutive node quads of one chain.
#[inline(always)]
fn fill_across_nodes(
    key: PhiloxKey,
    update: BlockUpdate,
    nodes: &std::ops::Range<u64>,
    chain0: u32,
    n_chains: usize,
    out: &mut [u32],
) {
    const L: usize = FILL_LANES;
    let [h0, h1] = update.counter_hi();
    let first_quad = nodes.start >> 2;
    let end_quad = nodes.end.div_ceil(4);
    for i in 0..n_chains {
        let chain = chain0.wrapping_add(i as u32);
        let mut q = first_quad;
        while q < end_quad {
            let ctr = [
                [chain; L],
                std::array::from_fn(|l| (q + l as u64) as u32),
                [h0; L],
                [h1; L],
            ];
            let words = philox4x32_10_lanes(ctr, key.0);
            let first_node = 4 * q;
            if first_node >= nodes.start && first_node + 4 * L as u64 <= nodes.end {
                // All 4L words fall inside `nodes`.
                let base = (first_node - nodes.start) as usize * n_chains + i;
                for l in 0..L {
                    for (w, row) in words.iter().enumerate() {
                        out[base + (4 * l + w) * n_chains] = row[l];
                    }
                }
            } else {
                for l in 0..L {
                    for (w, row) in words.iter().enumerate() {
                        let node = first_node + (4 * l + w) as u64;
                        if nodes.contains(&node) {
                            out[(node - nodes.start) as usize * n_chains + i] = row[l];
                        }
                    }
                }
            }
            q += L as u64;
        }
    }
}

/// A uniform in `[0, 1 − 2⁻²⁴]` with resolution `2⁻²⁴`: the top 24 bits of `word`.
///
/// `P(u01_f32(w) < p) = ⌈p · 2²⁴⌉ / 2²⁴` for `p ∈ [0, 1]`: exactly 0 and 1 at the ends,
/// within `2⁻²⁴ ≈ 6.0e-8` everywhere.
#[inline]
#[must_use]
pub fn u01_f32(word: u32) -> f32 {
    // `word >> 8 < 2^24` converts exactly, and as a signed integer (`cvtdq2ps`, no
    // unsigned-conversion fix-up).
    ((word >> 8) as i32) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform in `[0, 1 − 2⁻³²]` with resolution `2⁻³²`: `word · 2⁻³²`, exact in `f64`.
#[inline]
#[must_use]
pub fn u01_f64(word: u32) -> f64 {
    f64::from(word) * (1.0 / 4_294_967_296.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for `philox4x32 10`: `tests/kat_vectors` of
    /// <https://github.com/DEShawResearch/random123> (counter words, key words, expected
    /// output words), the same three lines reproduced by rand_philox 0.2.1's
    /// `philox_known_answer_vectors` test.
    const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0; 4],
            [0; 2],
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
        ),
        (
            [0xffff_ffff; 4],
            [0xffff_ffff; 2],
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
        ),
        (
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0],
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
        ),
    ];

    /// SplitMix64, for test inputs only.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn known_answers() {
        for (ctr, key, want) in KAT {
            assert_eq!(
                philox4x32_10(ctr, key),
                want,
                "ctr {ctr:08x?} key {key:08x?}"
            );
            assert_eq!(rand_philox::philox4x32_10(ctr, key), want);
            let lanes = philox4x32_10_lanes::<3>(ctr.map(|w| [w; 3]), key);
            assert_eq!(lanes.map(|w| w[2]), want);
        }
    }

    #[test]
    fn matches_rand_philox_and_lanes_match_scalar() {
        let mut s = 1u64;
        for _ in 0..2000 {
            let key = [splitmix(&mut s) as u32, splitmix(&mut s) as u32];
            let mut ctr = [[0u32; 16]; 4];
            for l in 0..16 {
                for w in &mut ctr {
                    w[l] = splitmix(&mut s) as u32;
                }
            }
            let lanes = philox4x32_10_lanes(ctr, key);
            let odd = philox4x32_10_lanes::<5>(
                std::array::from_fn(|w| std::array::from_fn(|l| ctr[w][l])),
                key,
            );
            for l in 0..16 {
                let c = [ctr[0][l], ctr[1][l], ctr[2][l], ctr[3][l]];
                let want = rand_philox::philox4x32_10(c, key);
                assert_eq!(philox4x32_10(c, key), want);
                assert_eq!([lanes[0][l], lanes[1][l], lanes[2][l], lanes[3][l]], want);
                if l < 5 {
                    assert_eq!([odd[0][l], odd[1][l], odd[2][l], odd[3][l]], want);
                }
            }
        }
    }

    #[test]
    fn counter_layout_is_as_documented() {
        let key = PhiloxKey::new([0x1234_5678, 0x9abc_def0]);
        let at = BlockUpdate::new(0x0000_abcd_0123_4567, 0x2f);
        assert_eq!(at.counter(9, 5), [9, 5, 0x0123_4567, 0x002f_abcd]);
        let block = philox4x32_10([9, 5, 0x0123_4567, 0x002f_abcd], key.words());
        for w in 0..4 {
            assert_eq!(site_word(key, at, 9, 20 + w), block[w as usize]);
        }
    }

    #[test]
    fn fill_words_matches_site_word_for_any_tiling() {
        let key = PhiloxKey::from_seed(11);
        let at = BlockUpdate::new(77, 3);
        let (nodes, chains) = (3u64..22, 5u32..46);
        let (nn, nc) = (nodes.end - nodes.start, chains.len());
        let mut full = vec![0u32; nn as usize * nc];
        fill_words(key, at, nodes.clone(), chains.clone(), &mut full);
        for j in nodes.clone() {
            for c in chains.clone() {
                let at_out = (j - nodes.start) as usize * nc + (c - chains.start) as usize;
                assert_eq!(full[at_out], site_word(key, at, c, j), "node {j} chain {c}");
            }
        }
        // Any split of nodes and chains (as threads or tiles would make) gives the same words.
        for (node_cut, chain_cut) in [(4u64, 16u32), (9, 7), (13, 33), (21, 45)] {
            for (ns, cs) in [
                (nodes.start..node_cut, chains.start..chain_cut),
                (node_cut..nodes.end, chain_cut..chains.end),
                (nodes.start..node_cut, chain_cut..chains.end),
            ] {
                let mut part = vec![0u32; (ns.end - ns.start) as usize * cs.len()];
                fill_words(key, at, ns.clone(), cs.clone(), &mut part);
                for j in ns.clone() {
                    for c in cs.clone() {
                        let p = (j - ns.start) as usize * cs.len() + (c - cs.start) as usize;
                        let f = (j - nodes.start) as usize * nc + (c - chains.start) as usize;
                        assert_eq!(part[p], full[f]);
                    }
                }
            }
        }
        fill_words(key, at, 4..4, 0..9, &mut []);
    }

    #[test]
    fn fill_words_long_node_runs_match_site_word() {
        // Few chains: Philox lanes run across node quads, many full batches of them.
        let key = PhiloxKey::from_seed(12);
        let at = BlockUpdate::new(1 << 40, 9);
        for (nodes, chains) in [(0u64..200, 0u32..1), (5..301, 7..10), (64..128, 2..4)] {
            let nc = chains.len();
            let mut out = vec![0u32; (nodes.end - nodes.start) as usize * nc];
            fill_words(key, at, nodes.clone(), chains.clone(), &mut out);
            for j in nodes.clone() {
                for c in chains.clone() {
                    let i = (j - nodes.start) as usize * nc + (c - chains.start) as usize;
                    assert_eq!(out[i], site_word(key, at, c, j), "node {j} chain {c}");
                }
            }
        }
    }

    /// Value stability: the first words of seed 0, so a change to the streams is deliberate.
    #[test]
    fn value_stability() {
        let key = PhiloxKey::from_seed(0);
        let at = BlockUpdate::new(0, 0);
        let mut words = [0u32; 4 * 2];
        fill_words(key, at, 0..4, 0..2, &mut words);
        // Stored node-major: transpose to chain-major for reading.
        let words: [u32; 8] = std::array::from_fn(|i| words[(i % 4) * 2 + i / 4]);
        let later = [
            site_word(key, BlockUpdate::new(1, 0), 0, 0),
            site_word(key, BlockUpdate::new(0, 1), 0, 0),
            site_word(
                key,
                BlockUpdate::new(123_456_789_012, 65_535),
                4_000_000_000,
                17_179_869_183,
            ),
        ];
        assert_eq!(key.words(), [0xa79a_3b6c, 0xb585_f767]);
        // Nodes 0..4 of chain 0, then of chain 1.
        assert_eq!(
            words,
            [
                0x34ff_c960,
                0x06c1_2b29,
                0xc420_612b,
                0x38d8_e7aa, //
                0x703e_db0d,
                0x78d9_5ae7,
                0x319e_e4df,
                0xc4f1_e76f,
            ]
        );
        assert_eq!(later, [0xe576_748f, 0x5051_de9c, 0xdfdc_ca13]);
        // The last site, by hand: counter [chain, node / 4, sweep mod 2^32, sweep >> 32 | block << 16].
        let ctr = [4_000_000_000, 4_294_967_295, 0xbe99_1a14, 0xffff_001c];
        assert_eq!(rand_philox::philox4x32_10(ctr, key.words())[3], later[2]);
    }

    #[test]
    fn uniforms_cover_their_ranges_exactly() {
        assert_eq!(u01_f32(0), 0.0);
        assert_eq!(u01_f32(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
        assert_eq!(u01_f32(0x0000_01ff), 1.0 / 16_777_216.0);
        assert_eq!(u01_f64(0), 0.0);
        assert_eq!(u01_f64(u32::MAX), 1.0 - 1.0 / 4_294_967_296.0);
        // `u < p` is the integer test `(w >> 8) < ceil(p · 2^24)`.
        for p in [0.0f32, 1e-9, 5.9e-8, 6.0e-8, 0.25, 0.3, 0.999_999_9, 1.0] {
            let threshold = (f64::from(p) * 16_777_216.0).ceil() as u32;
            for k in [0u32, 1, 2, 4_194_303, 4_194_304, 5_033_165, 16_777_215] {
                let w = k << 8 | 0xa5;
                assert_eq!(u01_f32(w) < p, k < threshold, "p {p} k {k}");
            }
        }
    }

    #[test]
    fn uniform_statistics() {
        // 2^20 words over a tile of 1024 nodes × 1024 chains; mean, variance, 256-bin χ².
        let key = PhiloxKey::from_seed(2024);
        let mut words = vec![0u32; 1 << 20];
        fill_words(key, BlockUpdate::new(5, 2), 0..1024, 0..1024, &mut words);
        let n = words.len() as f64;
        let (mut sum, mut sum2) = (0.0, 0.0);
        let mut bins = [0u32; 256];
        for &w in &words {
            let u = u01_f64(w);
            sum += u;
            sum2 += u * u;
            bins[(w >> 24) as usize] += 1;
        }
        let mean = sum / n;
        let var = sum2 / n - mean * mean;
        // Standard errors: 1/sqrt(12 n) ≈ 2.8e-4 for the mean, ≈ 8.7e-5 for the variance.
        assert!((mean - 0.5).abs() < 6.0 * 2.9e-4, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 6.0 * 8.7e-5, "variance {var}");
        let expected = n / 256.0;
        let chi2: f64 = bins
            .iter()
            .map(|&b| (f64::from(b) - expected).powi(2) / expected)
            .sum();
        // 255 degrees of freedom: mean 255, sd 22.6; P(χ² > 370) ≈ 3e-6, P(χ² < 160) ≈ 1e-6.
        assert!((160.0..370.0).contains(&chi2), "chi2 {chi2}");
        // Word 0 of chain c and word 0 of chain c + 1 are uncorrelated (lag-1 across lanes).
        let lag: f64 = words
            .windows(2)
            .map(|p| (u01_f64(p[0]) - 0.5) * (u01_f64(p[1]) - 0.5))
            .sum::<f64>()
            / n;
        assert!(lag.abs() < 6.0 / 12.0 / n.sqrt(), "lag-1 covariance {lag}");
    }

    #[test]
    fn block_update_limits() {
        let at = BlockUpdate::new(MAX_SWEEPS - 1, MAX_BLOCKS - 1);
        assert_eq!((at.sweep(), at.block()), (MAX_SWEEPS - 1, MAX_BLOCKS - 1));
        assert_eq!(at.counter_hi(), [u32::MAX, u32::MAX]);
    }

    #[test]
    #[should_panic(expected = "sweep")]
    fn too_many_sweeps() {
        let _ = BlockUpdate::new(MAX_SWEEPS, 0);
    }

    #[test]
    #[should_panic(expected = "block")]
    fn too_many_blocks() {
        let _ = BlockUpdate::new(0, MAX_BLOCKS);
    }
}
