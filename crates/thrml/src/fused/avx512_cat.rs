//! The pairwise categorical kernel written out in AVX-512 and VAES instructions (x86-64).
//!
//! A categorical head of `K ≤ 16` categories whose terms are pairwise categorical tables
//! over tails of `K' ≤ 16` categories and, in tiles of 16 or 64 chains, couplings to one
//! spin each (`Terms::gen_spin_rows`), per 16 chains (one `zmm` register per category):
//!
//! ```text
//! lookup j → i:     θ_c += permute(W_e[c, ·], x_j)       1 + 2K instructions per tail
//!                   (x_j: the tail's 16 state bytes, zero-extended to 32 bits)
//! spin s → i:       θ_c += s ? W[c] : −W[c]               2K, the blend by s's 16 bits
//! weights:          w_c = 2^{(θ_c − max) · log₂e}       13 per category
//! sums:             S_c = w_0 + … + w_c in f32 (and in two zmm of f64 where needed)
//! draw:             x = #{c < K − 1 : S_c ≤ u · S_{K−1}}, compares into masks
//! random words:     AES-128 of 16 counters, as in the spin kernel (`avx512.rs`)
//! ```
//!
//! Every operation is the portable `softmax_lanes` operation of the same IEEE kind on the
//! same operands, in the same order, so the output is the portable kernel's, bit for bit.
//! Three differences of form only, each exact:
//!
//! * The lookups add `W_e[c, x]` in every lane, where the portable kernel adds `W_e[c, v]`
//!   or `+0` for each `v` with a non-zero weight; they differ only in the sign of a zero
//!   logit, and the draw does not see it (`±0 == ±0` in the maximum and in `θ == max`,
//!   and `±0 − m = −m` otherwise), as in the AVX2 kernel.
//! * `exp2_nonpos` clamps `y = d · log₂e` into `[EXP2_CUTOFF, 0]` before `exp2_fma`, and
//!   zeroes the result below the cut-off and for NaN. Here `d = θ − max ≤ 0` or NaN (the
//!   maximum ignores NaN; `θ == max` gives `d = +0`), so `y ≤ 0` and the clamp changes
//!   only arguments whose result is then zeroed: it is left out and the zeroing kept.
//! * The draw compares the prefix sums `S_c` against `u · S_{K−1}`; the portable kernel
//!   adds the weights a second time, in the same order from the same zero, which gives
//!   the same `S_c`, so here the sums of the first pass are kept instead.
//!
//! Sums in `f32` alone, or in fixed point, would not do: the weights lie in `[2⁻¹²⁴, 1]`
//! (or are 0), so a sum of a few of them in `f64` already rounds, and any other order or
//! precision rounds differently. The `f64` sums cost two conversions and two adds per
//! category per 16 chains, so the kernel draws from `f32` sums where they provably give
//! the `f64` draw (all but about 10⁻⁵ of the lanes) and from the `f64` sums otherwise
//! (`softmax16`).
//!
//! One-chain tiles run on `cat_nodes_one_chain` instead: sixteen positions of the block
//! are the sixteen lanes, their biases are loaded as they are stored (sixteen positions
//! per category, `plan::cat_bias_at`), on lattices their tails are transposed in
//! registers, and their tails' states are loaded or gathered.
//!
//! `the_avx512_categorical_kernel_matches_the_portable_one` and
//! `the_one_chain_kernel_matches_the_portable_one` check the output against the portable
//! kernel's.

use std::arch::x86_64::*;

use super::avx2::Job;
use super::avx512::{
    chain_words, detected, exp2_fma16, node_blocks, node_words, round_keys, run, splat,
};
use super::plan::{CatTable, FusedBlock, Head, NODE_LANES, Terms, bias_len, cat_bias_at};
use crate::kernels::math::{EXP2_CUTOFF, LOG2_E};

/// Categories of the head (`K` logits per 16 chains stay in registers) and of its tails
/// (a table row is one `zmm` register, looked up by a 16-lane permutation).
const MAX_K: usize = NODE_LANES;

/// Groups of 16 chains whose draws one pass interleaves, so that their long dependency
/// chains (maximum, weights, sums) overlap: 2 in tiles of 64 chains, 1 in tiles of 16.
const MAX_GROUPS: usize = 2;

/// Whether block `fb` in tiles of `W` chains runs here: categorical blocks of at most
/// [`MAX_K`] categories with pairwise categorical terms over tails of at most [`MAX_K`]
/// categories, in tiles of one chain (`cat_nodes_one_chain`) or of 16 or 64 chains
/// (`cat_nodes`), where they may also couple to one spin each
/// ([`Terms::gen_spin_rows`](super::plan::Terms::gen_spin_rows)).
pub(super) fn supports<const W: usize>(fb: &FusedBlock) -> bool {
    let t = &fb.terms;
    matches!(fb.head, Head::Cat(k) if k <= MAX_K)
        && (W == 1 || W == 16 || W == 64)
        && (t.general.is_empty() || (W > 1 && t.gen_spin_rows))
        && t.cat_tail_max <= MAX_K
}

/// Whether the one-chain kernel's gathers, whose indices are `i32`, reach every entry,
/// table and row of `t` (`cat_rows` is indexed by float, 16 to a row) and every state of
/// a tile of `n_cats` categoricals.
fn gathers_index(t: &Terms, n_cats: usize) -> bool {
    let fits = |n: usize| i32::try_from(n).is_ok();
    fits(t.cat_idx.len())
        && fits(t.cat_tables.len() * size_of::<CatTable>())
        && fits(t.cat_rows.len() * NODE_LANES)
        && fits(n_cats)
}

/// Run `job` for block `fb` on this kernel if the block is [`supports`]ed and the CPU
/// has the features ([`detected`]); otherwise hand the job back untouched.
// The job handed back is a few slices, moved to the next kernel; boxing it would
// allocate in every block update.
#[allow(clippy::result_large_err)]
pub(super) fn try_update<'a, const W: usize>(fb: &FusedBlock, job: Job<'a>) -> Result<(), Job<'a>> {
    let gathered = W > 1 || gathers_index(&fb.terms, job.state.cats.len());
    if !supports::<W>(fb) || !gathered || !detected() {
        return Err(job);
    }
    macro_rules! dispatch {
        ($($k:literal)*) => {
            match fb.head {
                $(Head::Cat($k) if W == 1 => run(cat_nodes_one_chain::<$k>, job),)*
                $(Head::Cat($k) => run(cat_nodes::<W, $k>, job),)*
                _ => unreachable!("checked by `supports`"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    Ok(())
}

/// 16 state bytes zero-extended to the 16 `i32` lanes of a permutation index.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn bytes16(b: &[u8]) -> __m512i {
    let b: [u8; 16] = b[..16].try_into().expect("16 bytes");
    _mm512_cvtepu8_epi32(bytemuck::cast(b))
}

/// The portable `exp2_nonpos(y)` in 16 lanes for `y ≤ 0` or NaN (see the module docs:
/// the clamp is the identity where the result is not zeroed).
#[inline]
#[target_feature(enable = "avx512f")]
fn exp2_nonpos16(y: __m512) -> __m512 {
    let in_range = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(y, splat(EXP2_CUTOFF));
    _mm512_maskz_mov_ps(in_range, exp2_fma16(y))
}

/// The two 8-lane `f64` halves of 16 `f32` lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn widen(x: __m512) -> [__m512d; 2] {
    [
        _mm512_cvtps_pd(_mm512_castps512_ps256(x)),
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(x),
        ))),
    ]
}

/// The maximum of each group's `K` logits, lane by lane (`t > max ? t : max`: NaN
/// ignored, `−∞` where all are NaN or `−∞`).
#[inline]
#[target_feature(enable = "avx512f")]
fn max16<const K: usize, const G: usize>(theta: &[[__m512; K]; G]) -> [__m512; G] {
    let mut max = [splat(f32::NEG_INFINITY); G];
    for c in 0..K {
        for (m, th) in max.iter_mut().zip(theta) {
            *m = _mm512_max_ps(th[c], *m);
        }
    }
    max
}

/// The softmax weight `2^{d · log₂e}` of logits `th` against their maximum, where
/// `d = θ == max ? +0 : θ − max` (equal infinities give 1, NaN gives 0).
#[inline]
#[target_feature(enable = "avx512f")]
fn weight16(th: __m512, max: __m512) -> __m512 {
    let differ = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(th, max);
    let d = _mm512_maskz_sub_ps(differ, th, max);
    exp2_nonpos16(_mm512_mul_ps(d, splat(LOG2_E)))
}

/// `sample_softmax(θ_l, w_l)` in the 16 lanes of each of `G` groups (`theta[g][c]`
/// holds category `c` of group `g`), as the 16 bytes of each group: the draw of
/// [`softmax16_f64`], bit for bit, from `f32` prefix sums wherever they decide it.
///
/// With `T_c` the `f32` prefix sums of the same weights, `τ = u · T_{K−1}` in `f32` and
/// the margin `m = (4K + 8) · 2⁻²⁴ · T_{K−1}`, a lane is decided when no `T_c` lies in
/// `(τ − m, τ + m]`; its draw `#{c < K − 1 : T_c ≤ τ − m}` is then the `f64` one. Every
/// error lies well inside `m`: with `R` the exact sums (all terms non-negative) and
/// `ε = 2⁻²⁴`, `|T_c − R_c| ≤ c·ε·R_{K−1}` (`f64`: `c · 2⁻⁵³`), the `f32` target is off
/// the exact `u · R_{K−1}` by at most `(K + 1)·ε·R_{K−1}` (the word's rounding, the
/// product's and the total's), and forming `τ ± m` rounds once more, by `ε·R_{K−1}`: at
/// most `2K·ε·R_{K−1}` in all, half the margin. So `T_c ≤ τ − m` implies `S_c < u·S_{K−1}`
/// in `f64`, and `T_c > τ + m` implies `S_c > u·S_{K−1}`. Weights are never NaN (the
/// exponential zeroes it), and a zero total gives `τ = m = 0` and the `f64` draw. A lane
/// that is not decided (about 1.3·10⁻⁵ of them for `K = 5`: `K − 1` windows of `2m`)
/// sends its pass to [`softmax16_f64`]. This halves the arithmetic of the draw: one
/// `f32` add per category instead of two conversions and two `f64` adds.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn softmax16<const K: usize, const G: usize>(
    theta: &[[__m512; K]; G],
    words: &[__m512i; G],
) -> [[u8; 16]; G] {
    match softmax16_f32::<K, G>(theta, words) {
        Some(drawn) => drawn,
        None => softmax16_f64::<K, G>(theta, words),
    }
}

/// The draw of [`softmax16`] from `f32` sums, or `None` if they leave a lane undecided.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[allow(clippy::needless_range_loop)]
fn softmax16_f32<const K: usize, const G: usize>(
    theta: &[[__m512; K]; G],
    words: &[__m512i; G],
) -> Option<[[u8; 16]; G]> {
    let max = max16(theta);
    // sums[g][c]: the `f32` prefix sum T_c of group g.
    let mut sums = [[splat(0.0); K]; G];
    for c in 0..K {
        for g in 0..G {
            let w = weight16(theta[g][c], max[g]);
            sums[g][c] = if c == 0 {
                w
            } else {
                _mm512_add_ps(sums[g][c - 1], w)
            };
        }
    }
    let scale = splat(1.0 / 4_294_967_296.0);
    let margin = splat((4 * K + 8) as f32 / 16_777_216.0);
    let one = _mm512_set1_epi32(1);
    let mut count = [_mm512_setzero_si512(); G];
    let mut undecided = 0u16;
    for g in 0..G {
        let total = sums[g][K - 1];
        let tau = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepu32_ps(words[g]), scale), total);
        let m = _mm512_mul_ps(margin, total);
        let (below, above) = (_mm512_sub_ps(tau, m), _mm512_add_ps(tau, m));
        for c in 0..K - 1 {
            let surely = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(sums[g][c], below);
            let maybe = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(sums[g][c], above);
            undecided |= maybe & !surely;
            count[g] = _mm512_mask_add_epi32(count[g], surely, count[g], one);
        }
    }
    if undecided == 0 {
        Some(categories::<K, G>(&max, count, words))
    } else {
        None
    }
}

/// The categories drawn (`count`, one `i32` per lane) as bytes, with the portable
/// `uniform_category` in lanes whose logits are all `−∞`.
#[inline]
#[target_feature(enable = "avx512f")]
fn categories<const K: usize, const G: usize>(
    max: &[__m512; G],
    mut count: [__m512i; G],
    words: &[__m512i; G],
) -> [[u8; 16]; G] {
    std::array::from_fn(|g| {
        let all_neg_inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(max[g], splat(f32::NEG_INFINITY));
        if all_neg_inf != 0 {
            // The portable `uniform_category`: ⌊w · K / 2³²⌋.
            let w: [u32; 16] = bytemuck::cast(words[g]);
            let uniform: [u32; 16] = w.map(|w| ((u64::from(w) * K as u64) >> 32) as u32);
            count[g] = _mm512_mask_mov_epi32(count[g], all_neg_inf, bytemuck::cast(uniform));
        }
        bytemuck::cast(_mm512_cvtepi32_epi8(count[g]))
    })
}

/// `sample_softmax(θ_l, w_l)` in the 16 lanes of each of `G` groups (`theta[g][c]`
/// holds category `c` of group `g`), as the 16 bytes of each group: the portable
/// `softmax_lanes`, operation for operation (see the module docs), with `f64` prefix
/// sums. The groups' operations interleave. [`softmax16`] draws the same from `f32` sums
/// wherever they decide the draw.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
// Category-outer, group-inner loops are the point: they interleave the groups.
#[allow(clippy::needless_range_loop)]
fn softmax16_f64<const K: usize, const G: usize>(
    theta: &[[__m512; K]; G],
    words: &[__m512i; G],
) -> [[u8; 16]; G] {
    let max = max16(theta);
    // sums[g][c]: the prefix sum S_c of group g, in two halves of 8 chains.
    let mut sums = [[[_mm512_setzero_pd(); 2]; K]; G];
    for c in 0..K {
        for g in 0..G {
            let [lo, hi] = widen(weight16(theta[g][c], max[g]));
            sums[g][c] = if c == 0 {
                // `0 + w = w` for the weights (`+0` or positive).
                [lo, hi]
            } else {
                [
                    _mm512_add_pd(sums[g][c - 1][0], lo),
                    _mm512_add_pd(sums[g][c - 1][1], hi),
                ]
            };
        }
    }
    // `u01_f64(w) · total`: `w` converts exactly, and the scaling by 2⁻³² is exact.
    let scale = _mm512_set1_pd(1.0 / 4_294_967_296.0);
    let target: [[__m512d; 2]; G] = std::array::from_fn(|g| {
        let w = words[g];
        let lo = _mm512_cvtepu32_pd(_mm512_castsi512_si256(w));
        let hi = _mm512_cvtepu32_pd(_mm512_extracti64x4_epi64::<1>(w));
        [
            _mm512_mul_pd(_mm512_mul_pd(lo, scale), sums[g][K - 1][0]),
            _mm512_mul_pd(_mm512_mul_pd(hi, scale), sums[g][K - 1][1]),
        ]
    });
    let one = _mm512_set1_epi32(1);
    let mut count = [_mm512_setzero_si512(); G];
    for c in 0..K - 1 {
        for g in 0..G {
            let lo = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(sums[g][c][0], target[g][0]);
            let hi = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(sums[g][c][1], target[g][1]);
            let below = _mm512_kunpackb(u16::from(hi), u16::from(lo));
            count[g] = _mm512_mask_add_epi32(count[g], below, count[g], one);
        }
    }
    categories::<K, G>(&max, count, words)
}

/// New states of positions `nodes` of a categorical block of `K ≤ MAX_K` categories with
/// pairwise categorical terms only: `W` bytes per position in `out.cats`, exactly as the
/// portable kernel computes them.
///
/// Per node quad and pair of 16-chain groups, the AES words of the 4 nodes are drawn
/// once (4 blocks per register), then each node's logits start at its bias and add one
/// table-row permutation per category and tail.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
fn cat_nodes<const W: usize, const K: usize>(job: Job<'_>) {
    assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
    let groups = W / 16;
    let Job {
        terms: t,
        start: _,
        draw,
        nodes,
        state,
        out,
    } = job;
    let rk = round_keys(draw.key.bytes());
    let hi = draw.update.counter_hi();
    let mut j = nodes.start;
    while j < nodes.end {
        let quad = (j / 4) as u32;
        let quad_end = (j / 4 * 4 + 4).min(nodes.end);
        for g0 in (0..groups).step_by(MAX_GROUPS) {
            macro_rules! pass {
                ($g:literal) => {
                    quad_groups::<W, K, $g>(
                        t,
                        state,
                        &rk,
                        hi,
                        draw.chain0,
                        quad,
                        g0,
                        j..quad_end,
                        &mut *out.cats,
                        nodes.start,
                    )
                };
            }
            if groups - g0 >= 2 {
                pass!(2);
            } else {
                pass!(1);
            }
        }
        j = quad_end;
    }
}

/// Positions `js` (within node quad `quad`) of [`cat_nodes`] in the `G` groups of 16
/// chains from group `g0`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
#[allow(clippy::too_many_arguments)]
fn quad_groups<const W: usize, const K: usize, const G: usize>(
    t: &super::plan::Terms,
    state: super::kernel::TileState<'_>,
    rk: &[__m512i; 11],
    hi: [u32; 2],
    chain0: u32,
    quad: u32,
    g0: usize,
    js: std::ops::Range<usize>,
    out: &mut [u8],
    first: usize,
) {
    let words: [[__m512i; 4]; G] = std::array::from_fn(|h| {
        chain_words(rk, chain0.wrapping_add(16 * (g0 + h) as u32), quad, hi)
    });
    for j in js {
        let mut theta: [[__m512; K]; G] =
            [std::array::from_fn(|c| splat(t.bias[cat_bias_at(j, c, K)])); G];
        let (e0, e1) = (t.cat_off[j] as usize, t.cat_off[j + 1] as usize);
        for e in e0..e1 {
            // θ_c[l] += W_e[c, x_l]: a lookup by permutation in each row.
            let node = t.cat_idx[e] as usize;
            let rows = &t.cat_rows[t.cat_table(e).row as usize..][..K];
            for (h, th) in theta.iter_mut().enumerate() {
                let x = bytes16(&state.cats[node * W + 16 * (g0 + h)..]);
                for (th, row) in th.iter_mut().zip(rows) {
                    let v = _mm512_permutexvar_ps(x, bytemuck::cast(*row));
                    *th = _mm512_add_ps(*th, v);
                }
            }
        }
        // Couplings to a spin: `±W[c]` by the sign of its 16 chains' spins.
        for gt in &t.general[t.gen_off[j] as usize..t.gen_off[j + 1] as usize] {
            let spins = state.bits[t.gen_spin[gt.spins.0 as usize] as usize];
            let weights = &t.gen_w[gt.w_off as usize..];
            for c in 0..K {
                let w = splat(weights[c * gt.head_stride as usize]);
                let minus_w = _mm512_xor_ps(w, splat(-0.0));
                for (h, th) in theta.iter_mut().enumerate() {
                    let up = (spins >> (16 * (g0 + h))) as u16;
                    th[c] = _mm512_add_ps(th[c], _mm512_mask_blend_ps(up, minus_w, w));
                }
            }
        }
        let w: [__m512i; G] = std::array::from_fn(|h| words[h][j % 4]);
        let drawn = softmax16::<K, G>(&theta, &w);
        let o = (j - first) * W + 16 * g0;
        for (h, d) in drawn.iter().enumerate() {
            out[o + 16 * h..o + 16 * h + 16].copy_from_slice(d);
        }
    }
}

/// For [`transposed`]: register `c`'s two-register permutation (`D · l + c mod 32` in
/// lane `l`) and the lanes that the second pair of loaded registers supplies
/// (`⌊(D · l + c) / 32⌋ = 1`).
const fn transpose_plan<const D: usize>() -> ([[u32; 16]; D], [u16; D]) {
    let mut index = [[0; 16]; D];
    let mut second = [0; D];
    let mut c = 0;
    while c < D {
        let mut l = 0;
        while l < 16 {
            let flat = D * l + c;
            index[c][l] = (flat % 32) as u32;
            if flat >= 32 {
                second[c] |= 1 << l;
            }
            l += 1;
        }
        c += 1;
    }
    (index, second)
}

/// The `n ≤ 16 · D` values at `src` (`D ≤ 4`) as `D` registers of 16 lanes, transposed:
/// lane `l` of register `c` is `src[D · l + c]` (0 where `D · l + c ≥ n`). Each register
/// is one two-register permutation of the first two loaded registers and, for `D > 2`,
/// one of the other two, merged by a mask: `2D` permutations in all, where one masked
/// permutation per loaded register took `D²`.
///
/// # Safety
/// `src .. src + n` must be readable.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
unsafe fn transposed<const D: usize>(src: *const u32, n: usize) -> [__m512i; D] {
    let (index, second) = const {
        assert!(D >= 1 && D <= 4);
        transpose_plan::<D>()
    };
    let mut loaded = [_mm512_setzero_si512(); 4];
    for (r, reg) in loaded.iter_mut().enumerate().take(D) {
        let left = n.saturating_sub(16 * r).min(16);
        let mask = ((1u32 << left) - 1) as u16;
        // SAFETY: the lanes of `mask` are values `16r + i < n`.
        *reg = unsafe { _mm512_maskz_loadu_epi32(mask, src.add(16 * r).cast()) };
    }
    std::array::from_fn(|c| {
        let index: __m512i = bytemuck::cast(index[c]);
        let low = _mm512_permutex2var_epi32(loaded[0], index, loaded[1]);
        if D > 2 {
            let high = _mm512_permutex2var_epi32(loaded[2], index, loaded[3]);
            _mm512_mask_mov_epi32(low, second[c], high)
        } else {
            low
        }
    })
}

/// New states of positions `nodes` of a one-chain categorical block of `K ≤ MAX_K`
/// categories with pairwise categorical terms only (`out.cats[j − nodes.start]`), exactly
/// as the portable kernel's one-chain path computes them.
///
/// Sixteen consecutive positions are the sixteen lanes of a batch, as in the portable
/// path, and the CSR entries are taken in step, entry `e` of every lane at once:
///
/// * the biases are `K` loads: the plan stores them grouped by sixteen positions,
///   category-major ([`cat_bias_at`]);
/// * where all 16 positions have the same `d ≤ 4` entries, stored one position after
///   another (a lattice, recognised from the group's first and last offsets and one
///   compare of the lanes' offsets), their tails are `d` transposed rows of `cat_idx`
///   ([`transposed`]); otherwise each entry's tails are gathered;
/// * consecutive tails (about 90 % of the rows of the Potts workload's blocks) are one
///   16-byte load of their states; others are gathered, four bytes each;
/// * where every entry names one table (Potts), its `K` rows stay in registers and each
///   category's column is one permutation; otherwise each lane's table row is gathered,
///   `K + 2` gathers. A lane without entry `e` looks up column 16, past the rows, which
///   the two-table permutation (or the masked gather) answers with `+0`.
///
/// The logits are then those of the portable path, which adds the same column values in
/// the same order; it adds nothing where this adds `+0` (a lane without the entry, or a
/// state outside the table, whose row is zero-padded), which differs at most in the
/// sign of a zero logit. [`softmax16`] then draws the portable path's categories.
///
/// Potts (5 states, 256×256) in one chain on Zen 4: 0.27–0.28 flips/ns on one thread and
/// 0.52–0.54 on two, where the portable path ran at 0.05–0.07 and 0.08–0.13. (With the
/// biases transposed in registers and a vector reduction for the lattice test, the kernel
/// ran at 0.21 and 0.42.)
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
#[allow(unsafe_code)]
fn cat_nodes_one_chain<const K: usize>(job: Job<'_>) {
    const L: usize = NODE_LANES;
    let Job {
        terms: t,
        start: _,
        draw,
        nodes,
        state,
        out,
    } = job;
    let len = t.cat_off.len() - 1;
    assert!(
        t.bias.len() >= bias_len(Head::Cat(K), len),
        "grouped biases"
    );
    let rk = round_keys(draw.key.bytes());
    let blocks = node_blocks(draw.chain0, draw.update.counter_hi());
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // `d · l` in lane `l`, for `d ≤ 4`.
    let lane_times: [__m512i; 5] =
        std::array::from_fn(|d| _mm512_mullo_epi32(lane, _mm512_set1_epi32(d as i32)));
    let shared = t.cat_table.is_empty();
    // The one table's rows (zero where the block has no entries).
    let rows: [__m512; K] = std::array::from_fn(|c| match t.cat_tables.first() {
        Some(table) if shared => bytemuck::cast(t.cat_rows[table.row as usize + c]),
        _ => _mm512_setzero_ps(),
    });
    let cats = state.cats;
    // Tails below this one can be gathered as the low byte of four (`cats` has room).
    let whole = _mm512_set1_epi32(i32::try_from(cats.len().saturating_sub(3)).expect("checked"));
    let low_byte = _mm512_set1_epi32(0xff);
    let past_rows = _mm512_set1_epi32(L as i32);
    // Per table, the `i32` index of its `row` field.
    let table_size = _mm512_set1_epi32((size_of::<CatTable>() / 4) as i32);
    let row_field = _mm512_set1_epi32((std::mem::offset_of!(CatTable, row) / 4) as i32);
    for g in nodes.start / L..nodes.end.div_ceil(L) {
        let g0 = g * L;
        // Lanes of positions in the block (the others are drawn from zeros, not stored).
        let live: u16 = if g0 + L <= len {
            u16::MAX
        } else {
            (1u16 << (len - g0)) - 1
        };
        // SAFETY (every gather and load below): the bias loads read whole groups of
        // `bias` (`⌈len / 16⌉ · 16 · K` values). The others read only their mask's lanes,
        // at indices inside the slice it names: positions `g0 + l < len` of `cat_off`
        // (`len + 1`), entries below `cat_off[len] =
        // cat_idx.len() = cat_table.len()` (or `cat_table` is empty and unread), the
        // tables their ids name, rows `row + c` of 16 floats (the index clamped to
        // `cat_rows`), and tails, engine nodes of the tile, below `cats.len() − 3` (four
        // bytes) or, consecutive, below `cats.len()` (one byte each).
        let n_live = live.count_ones() as usize;
        // The group's biases, one vector per category ([`cat_bias_at`]; zero past `len`).
        let mut theta: [__m512; K] = std::array::from_fn(|c| unsafe {
            _mm512_loadu_ps(t.bias.as_ptr().add(cat_bias_at(g0, c, K)))
        });
        let (off, end) = unsafe {
            let at = t.cat_off.as_ptr().add(g0);
            (
                _mm512_maskz_loadu_epi32(live, at.cast()),
                _mm512_maskz_loadu_epi32(live, at.add(1).cast()),
            )
        };
        // Where the live lanes' entries follow one another, `d ≤ 4` each (a lattice),
        // the tails are `d` rows of one block of `cat_idx`: the lanes' offsets are
        // `o₀ + d · l` and the group's entries end at `o₀ + d · n_live` (so every lane
        // has `d`), checked with no reduction.
        let (o0, on) = (t.cat_off[g0] as usize, t.cat_off[g0 + n_live] as usize);
        let guess = (on - o0) / n_live;
        let regular = guess <= 4
            && on - o0 == guess * n_live
            && _mm512_mask_cmpneq_epi32_mask(
                live,
                off,
                _mm512_add_epi32(_mm512_set1_epi32(o0 as i32), lane_times[guess]),
            ) == 0;
        // The most entries of a lane.
        let most = if regular {
            guess
        } else {
            _mm512_reduce_max_epu32(_mm512_sub_epi32(end, off)) as usize
        };
        let mut tails = [_mm512_setzero_si512(); 4];
        if regular {
            let at = unsafe { t.cat_idx.as_ptr().add(o0) };
            let n = n_live * most;
            unsafe {
                match most {
                    1 => tails[..1].copy_from_slice(&transposed::<1>(at, n)),
                    2 => tails[..2].copy_from_slice(&transposed::<2>(at, n)),
                    3 => tails[..3].copy_from_slice(&transposed::<3>(at, n)),
                    4 => tails = transposed::<4>(at, n),
                    _ => {}
                }
            }
        }
        for e in 0..most as i32 {
            let pos = _mm512_add_epi32(off, _mm512_set1_epi32(e));
            let m = _mm512_cmplt_epu32_mask(pos, end);
            let zero = _mm512_setzero_si512();
            let tail = if regular {
                tails[e as usize]
            } else {
                unsafe { _mm512_mask_i32gather_epi32::<4>(zero, m, pos, t.cat_idx.as_ptr().cast()) }
            };
            // Tails that follow one another (most rows of a lattice's block) are one
            // load of 16 bytes; others are gathered.
            let t0 = _mm512_cvtsi512_si32(tail) as usize;
            let consecutive = m & 1 == 1
                && _mm512_mask_cmpneq_epi32_mask(
                    m,
                    tail,
                    _mm512_add_epi32(_mm512_set1_epi32(t0 as i32), lane),
                ) == 0;
            let near = if consecutive {
                m
            } else {
                _mm512_mask_cmplt_epi32_mask(m, tail, whole)
            };
            // `x` is 16 in the lanes without entry `e`: a lookup past every table row,
            // which the two-table permutation below answers with `+0`.
            let mut x = if consecutive {
                _mm512_mask_cvtepu8_epi32(past_rows, m, unsafe {
                    _mm_maskz_loadu_epi8(m, cats.as_ptr().add(t0).cast())
                })
            } else {
                let four = unsafe {
                    _mm512_mask_i32gather_epi32::<1>(past_rows, near, tail, cats.as_ptr().cast())
                };
                _mm512_and_si512(four, low_byte)
            };
            if near != m {
                // Tails among the last three bytes: one by one.
                let mut lanes: [u32; L] = bytemuck::cast(x);
                let tails: [u32; L] = bytemuck::cast(tail);
                for l in (0..L).filter(|&l| (m & !near) >> l & 1 == 1) {
                    lanes[l] = u32::from(cats[tails[l] as usize]);
                }
                x = bytemuck::cast(lanes);
            }
            if shared {
                for (th, row) in theta.iter_mut().zip(&rows) {
                    let v = _mm512_permutex2var_ps(*row, x, _mm512_setzero_ps());
                    *th = _mm512_add_ps(*th, v);
                }
            } else {
                let row = unsafe {
                    let id =
                        _mm512_mask_i32gather_epi32::<4>(zero, m, pos, t.cat_table.as_ptr().cast());
                    let at = _mm512_add_epi32(_mm512_mullo_epi32(id, table_size), row_field);
                    _mm512_mask_i32gather_epi32::<4>(zero, m, at, t.cat_tables.as_ptr().cast())
                };
                // (Clamped to the rows, so that no state, however wrong, reads past them.)
                let last = _mm512_set1_epi32((t.cat_rows.len() * L).saturating_sub(1) as i32);
                let mut at = _mm512_add_epi32(_mm512_slli_epi32::<4>(row), x);
                for th in &mut theta {
                    let v = unsafe {
                        _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            m,
                            _mm512_min_epu32(at, last),
                            t.cat_rows.as_ptr().cast(),
                        )
                    };
                    *th = _mm512_add_ps(*th, v);
                    at = _mm512_add_epi32(at, _mm512_set1_epi32(L as i32));
                }
            }
        }
        let words = node_words(&rk, blocks, (g0 / 4) as u32);
        let [drawn] = softmax16::<K, 1>(&[theta], &[words]);
        let (lo, hi) = (g0.max(nodes.start), (g0 + L).min(nodes.end));
        out.cats[lo - nodes.start..hi - nodes.start].copy_from_slice(&drawn[lo - g0..hi - g0]);
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_K, detected, supports, try_update};
    use super::{softmax16, softmax16_f32, softmax16_f64};
    use crate::fused::avx2::Job;
    use crate::fused::kernel::tests::random_block;
    use crate::fused::kernel::{Draw, Out, Scratch, TileState, update_nodes_portable};
    use crate::fused::plan::{FusedBlock, GenTerm, Head, Terms};
    use crate::kernels::aes::{BlockUpdate, WordKey};
    use crate::rng::Key;
    use rand::rand_core::Rng;
    use std::arch::x86_64::*;

    /// Categories of tail node `node` in [`wide_block`]: 1 to 16.
    fn wide_tail_k(node: usize) -> usize {
        1 + (node * 7) % MAX_K
    }

    /// Categories of tail node `node` in `random_block`: 2 to 8.
    fn narrow_tail_k(node: usize) -> usize {
        2 + node % 7
    }

    /// Uniform values in `(−s, s)` from `seed`, and the terms of a categorical block of
    /// `len` positions with no entries yet.
    fn new_cat_block(seed: u64, len: usize) -> (impl FnMut(f32) -> f32, Terms) {
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let uniform = move |s: f32| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0 * s;
        let t = Terms {
            gen_off: vec![0; len + 1],
            cat_off: vec![0],
            ..Terms::default()
        };
        (uniform, t)
    }

    /// A random categorical block of `len` positions and `k` categories over `n_tails`
    /// tail nodes of 1–16 categories ([`wide_tail_k`]), with logits of size up to
    /// `scale`: zero table entries, `−∞` entries, positions whose biases are all `−∞`
    /// (with and without tails), and a position without tails.
    fn wide_block(seed: u64, len: usize, n_tails: usize, k: usize, scale: f32) -> FusedBlock {
        let (mut uniform, mut t) = new_cat_block(seed, len);
        for j in 0..len {
            let b: Vec<f32> = (0..k)
                .map(|c| match j % 9 {
                    4 | 7 => f32::NEG_INFINITY,
                    5 if c % 2 == 1 => f32::NEG_INFINITY,
                    _ => uniform(scale),
                })
                .collect();
            t.set_cat_bias(j, &b);
            let n_edges = if j % 9 == 4 { 0 } else { (j * 5) % 7 };
            for e in 0..n_edges {
                let node = (j * 13 + e * 7) % n_tails;
                let kp = wide_tail_k(node);
                let w: Vec<f32> = (0..k * kp)
                    .map(|i| {
                        let (c, v) = (i / kp, i % kp);
                        match (c + 2 * v + e) % 11 {
                            0 | 5 => 0.0,
                            3 if j % 4 == 1 => f32::NEG_INFINITY,
                            7 => -0.0,
                            _ => uniform(scale),
                        }
                    })
                    .collect();
                t.push_cat_entry(node, k, kp, &w);
            }
            t.cat_off.push(t.cat_idx.len() as u32);
        }
        FusedBlock {
            block: 5,
            head: Head::Cat(k),
            start: 0,
            len,
            terms: t,
        }
    }

    /// The kernel's output against the portable kernel's for positions `nodes` of `fb`
    /// in tiles of `W` chains, states of tail node `n` drawn from `0..tail_k(n)`; `None`
    /// where the CPU lacks the features.
    fn kernel_agrees<const W: usize>(
        fb: &FusedBlock,
        n_tails: usize,
        tail_k: fn(usize) -> usize,
        seed: u64,
    ) -> Option<()> {
        let Head::Cat(k) = fb.head else {
            unreachable!("a categorical block")
        };
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let cats: Vec<u8> = (0..n_tails * W)
            .map(|x| (rng.next_u32() % tail_k(x / W) as u32) as u8)
            .collect();
        let bits: Vec<u64> = (0..SPIN_TAILS)
            .map(|_| rng.next_u64() & (u64::MAX >> (64 - W)))
            .collect();
        let state = TileState {
            bits: &bits,
            cats: &cats,
            masks: &[],
        };
        let key = WordKey::from_seed(seed);
        let len = fb.len;
        // Whole blocks, and ranges that start and end inside a node quad.
        for (chain0, nodes) in [
            (0, 0..len),
            (48, 3..len - 2),
            (1000, 5..6),
            (1 << 20, 1..len - 1),
            (7, 6..11),
        ] {
            let draw = Draw {
                key: &key,
                update: BlockUpdate::new(9, 3),
                chain0,
            };
            let n = nodes.len();
            let (mut a, mut b) = (vec![0u8; n * W], vec![0u8; n * W]);
            let mut scratch = Scratch::new(W, k);
            update_nodes_portable::<W>(
                fb,
                draw,
                nodes.clone(),
                state,
                Out {
                    bits: &mut [],
                    cats: &mut a,
                },
                &mut scratch,
            );
            let job = Job {
                terms: &fb.terms,
                start: fb.start,
                draw,
                nodes: nodes.clone(),
                state,
                out: Out {
                    bits: &mut [],
                    cats: &mut b,
                },
            };
            assert!(supports::<W>(fb), "k = {k}, W = {W}");
            if try_update::<W>(fb, job).is_err() {
                assert!(!detected(), "a supported block handed back");
                return None;
            }
            assert_eq!(a, b, "k = {k}, W = {W}, nodes {nodes:?}");
            assert!(
                b.iter().all(|&x| usize::from(x) < k),
                "categories below {k}"
            );
            if n > 10 && k > 1 {
                let distinct = b.iter().collect::<std::collections::HashSet<_>>().len();
                assert!(distinct >= 2, "not vacuous");
            }
        }
        Some(())
    }

    /// Spin nodes that [`with_spin_couplings`] couples to.
    const SPIN_TAILS: usize = 13;

    /// `fb` with couplings to spins: position `j` gets `j mod 4` general terms `±W[·]`,
    /// each by the sign of one of [`SPIN_TAILS`] spins (some weights 0, and a head
    /// stride of 1 or 2).
    fn with_spin_couplings(mut fb: FusedBlock, seed: u64) -> FusedBlock {
        let Head::Cat(k) = fb.head else {
            unreachable!("a categorical block")
        };
        let mut rng = Key::new(seed ^ 0x5917).chain_rngs(1).remove(0);
        let t = &mut fb.terms;
        t.gen_off = vec![0];
        for j in 0..fb.len {
            for e in 0..j % 4 {
                let stride = 1 + (j + e) % 2;
                t.gen_spin.push(((j * 5 + e * 3) % SPIN_TAILS) as u32);
                t.general.push(GenTerm {
                    w_off: t.gen_w.len() as u32,
                    head_stride: stride as u32,
                    spins: (t.gen_spin.len() as u32 - 1, t.gen_spin.len() as u32),
                    cats: (0, 0),
                });
                for i in 0..k * stride {
                    let w = (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 6.0;
                    t.gen_w.push(if i % 5 == 2 { 0.0 } else { w });
                }
            }
            t.gen_off.push(t.general.len() as u32);
        }
        t.classify_general();
        assert!(t.gen_spin_rows, "signs of one spin");
        fb
    }

    /// `fb` with every pairwise entry naming its first table (as in a Potts model): the
    /// tails of other sizes then have states outside the table, or beyond its columns.
    fn shared_table(fb: &FusedBlock) -> FusedBlock {
        let mut fb = fb.clone();
        fb.terms.cat_table.clear();
        fb
    }

    #[test]
    fn the_avx512_categorical_kernel_matches_the_portable_one() {
        // The AVX2 kernel's blocks (tails of 2–8 categories), every k up to 8.
        for k in 1..=8 {
            let fb = random_block(40 + k as u64, 37, 50, Some(k));
            kernel_agrees::<16>(&fb, 50, narrow_tail_k, k as u64);
            kernel_agrees::<64>(&fb, 50, narrow_tail_k, 100 + k as u64);
        }
        // Up to 16 categories over tails of up to 16, with moderate and extreme logits.
        for k in 1..=MAX_K {
            for (i, scale) in [3.0f32, 60.0, 1e4].into_iter().enumerate() {
                let seed = 1000 + 10 * k as u64 + i as u64;
                let fb = wide_block(seed, 45, 61, k, scale);
                assert_eq!(fb.terms.cat_tail_max, MAX_K);
                kernel_agrees::<16>(&fb, 61, wide_tail_k, seed);
                kernel_agrees::<64>(&fb, 61, wide_tail_k, seed + 5);
            }
        }
        // Couplings to spins as well (the mixed workload's categoricals).
        for k in [1, 2, 4, 7, 16] {
            let fb = with_spin_couplings(wide_block(3000 + k as u64, 45, 61, k, 3.0), k as u64);
            kernel_agrees::<16>(&fb, 61, wide_tail_k, 3100 + k as u64);
            kernel_agrees::<64>(&fb, 61, wide_tail_k, 3200 + k as u64);
        }
    }

    /// A categorical block of `len` positions and `k` categories in which position `j` has
    /// `d(j)` pairwise entries (`d` for all: a lattice), stored one position after
    /// another: entry `e` of position `j` is tail `(stride · j + 5e) mod n_tails`
    /// (consecutive tails for `stride` 1, wrapping at the end), with its own random table.
    fn lattice_block(
        seed: u64,
        len: usize,
        n_tails: usize,
        k: usize,
        d: &dyn Fn(usize) -> usize,
        stride: usize,
    ) -> FusedBlock {
        let (mut uniform, mut t) = new_cat_block(seed, len);
        for j in 0..len {
            let b: Vec<f32> = (0..k).map(|_| uniform(3.0)).collect();
            t.set_cat_bias(j, &b);
            for e in 0..d(j) {
                let node = (stride * j + 5 * e) % n_tails;
                let kp = narrow_tail_k(node);
                let w: Vec<f32> = (0..k * kp).map(|_| uniform(2.0)).collect();
                t.push_cat_entry(node, k, kp, &w);
            }
            t.cat_off.push(t.cat_idx.len() as u32);
        }
        FusedBlock {
            block: 2,
            head: Head::Cat(k),
            start: 0,
            len,
            terms: t,
        }
    }

    #[test]
    fn the_one_chain_kernel_matches_the_portable_one() {
        // Lattice-like blocks: the tails as rows of `cat_idx` (degree up to 4; 5 gathers),
        // consecutive tails as one load (stride 1) or gathered (stride 3).
        for k in [1, 3, 5, 8, 11] {
            for d in 1..=5 {
                for stride in [1, 3] {
                    let seed = 500 + 100 * k as u64 + 10 * d as u64 + stride as u64;
                    let fb = lattice_block(seed, 45, 50, k, &|_| d, stride);
                    kernel_agrees::<1>(&fb, 50, narrow_tail_k, seed);
                    kernel_agrees::<1>(&shared_table(&fb), 50, narrow_tail_k, seed + 1);
                }
            }
        }
        // Lattices but for the last position of each group of 16 (a whole group's and the
        // partial last group's), which has one entry more or fewer: the lanes' offsets
        // still step by `d`, but the group is no lattice.
        for (d, more) in [(1, true), (2, true), (3, false), (4, true), (4, false)] {
            let len = 45;
            let odd = |j: usize| j % 16 == 15 || j == len - 1;
            let degree = |j: usize| match (odd(j), more) {
                (false, _) => d,
                (true, true) => d + 1,
                (true, false) => d - 1,
            };
            let seed = 4000 + 10 * d as u64 + u64::from(more);
            let fb = lattice_block(seed, len, 50, 5, &degree, 1);
            kernel_agrees::<1>(&fb, 50, narrow_tail_k, seed);
            kernel_agrees::<1>(&shared_table(&fb), 50, narrow_tail_k, seed + 1);
        }
        // Per-entry tables (gathered rows) and one shared table (rows in registers); the
        // last three tail nodes' states are read one by one.
        for k in 1..=8 {
            let fb = random_block(60 + k as u64, 37, 50, Some(k));
            kernel_agrees::<1>(&fb, 50, narrow_tail_k, 300 + k as u64);
            kernel_agrees::<1>(&shared_table(&fb), 50, narrow_tail_k, 400 + k as u64);
        }
        for k in 1..=MAX_K {
            for (i, scale) in [3.0f32, 60.0, 1e4].into_iter().enumerate() {
                let seed = 2000 + 10 * k as u64 + i as u64;
                // Longer than a batch, and not a multiple of one.
                let fb = wide_block(seed, 45, 61, k, scale);
                kernel_agrees::<1>(&fb, 61, wide_tail_k, seed);
                kernel_agrees::<1>(&shared_table(&fb), 61, wide_tail_k, seed + 5);
            }
        }
    }

    #[test]
    fn other_blocks_are_handed_back() {
        let fb = wide_block(1, 20, 30, 16, 1.0);
        assert!(supports::<1>(&fb) && supports::<16>(&fb) && supports::<64>(&fb));
        assert!(!supports::<4>(&fb), "tiles of 4 chains");
        let wide_head = wide_block(2, 20, 30, 17, 1.0);
        assert!(!supports::<64>(&wide_head), "17 categories");
        let mut wide_tail = wide_block(3, 20, 30, 4, 1.0);
        wide_tail.terms.cat_tail_max = 17;
        assert!(!supports::<64>(&wide_tail), "a tail of 17 categories");
        let mut general = wide_block(4, 20, 30, 4, 1.0);
        general.terms.general.push(GenTerm {
            w_off: 0,
            head_stride: 1,
            spins: (0, 0),
            cats: (0, 0),
        });
        assert!(!supports::<64>(&general), "general terms");
        assert!(!supports::<64>(&random_block(5, 20, 30, None)), "spins");
        let job_fb = general;
        let mut out = vec![0u8; 20 * 64];
        let key = WordKey::from_seed(1);
        let job = Job {
            terms: &job_fb.terms,
            start: job_fb.start,
            draw: Draw {
                key: &key,
                update: BlockUpdate::new(0, 5),
                chain0: 0,
            },
            nodes: 0..20,
            state: TileState {
                bits: &[],
                cats: &[0; 30 * 64],
                masks: &[],
            },
            out: Out {
                bits: &mut [],
                cats: &mut out,
            },
        };
        assert!(try_update::<64>(&job_fb, job).is_err());
        assert!(out.iter().all(|&x| x == 0), "nothing written");
    }

    /// Logits of `K` categories for `G` groups of 16 lanes from `next` (N(0, 1)-like
    /// values times a scale per lane, with ties, `−∞` and NaN mixed in), and words, one in
    /// 48 of which puts `u · S_{K−1}` within a few units of the last place of a prefix sum
    /// `S_c`, where the `f32` sums may not decide the draw.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn near_boundaries<const K: usize, const G: usize>(
        next: &mut impl FnMut() -> u64,
    ) -> ([[__m512; K]; G], [__m512i; G]) {
        let scales = [0.0f32, 1e-7, 0.5, 3.0, 30.0, 300.0];
        let mut theta = [[[0f32; 16]; K]; G];
        let mut words = [[0u32; 16]; G];
        for g in 0..G {
            for l in 0..16 {
                let scale = scales[(next() % scales.len() as u64) as usize];
                for c in 0..K {
                    let r = next();
                    theta[g][c][l] = match r % 23 {
                        0 => f32::NEG_INFINITY,
                        1 => f32::NAN,
                        2 => theta[g][c.saturating_sub(1)][l],
                        _ => scale * ((r >> 8) as u32 as f32 / 2_147_483_648.0 - 1.0),
                    };
                }
                // The f64 prefix sums of the weights, as the kernel forms them.
                let th = &theta[g];
                let max = th
                    .iter()
                    .map(|t| t[l])
                    .fold(f32::NEG_INFINITY, |m, t| if t > m { t } else { m });
                let w: Vec<f64> = th
                    .iter()
                    .map(|t| {
                        let (t, m) = (_mm512_set1_ps(t[l]), _mm512_set1_ps(max));
                        let e: [f32; 16] = bytemuck::cast(super::weight16(t, m));
                        f64::from(e[0])
                    })
                    .collect();
                let sums: Vec<f64> = w
                    .iter()
                    .scan(0.0, |s, &x| {
                        *s += x;
                        Some(*s)
                    })
                    .collect();
                let total = sums[K - 1];
                let c = (next() % K as u64) as usize;
                let delta = (next() % 9) as i64 - 4;
                let at = if total > 0.0 {
                    sums[c] / total * 4_294_967_296.0
                } else {
                    0.0
                };
                words[g][l] = if next().is_multiple_of(48) {
                    (at as i64 + delta).clamp(0, i64::from(u32::MAX)) as u32
                } else {
                    next() as u32
                };
            }
        }
        let theta = theta.map(|g| g.map(bytemuck::cast::<[f32; 16], __m512>));
        (theta, words.map(bytemuck::cast::<[u32; 16], __m512i>))
    }

    /// The `f32` prefix sums draw what the `f64` sums draw wherever they decide, and
    /// inputs near the boundaries do reach the `f64` fallback.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn f32_draws_match_f64<const K: usize, const G: usize>(seed: u64) -> (usize, usize) {
        let mut s = seed;
        let mut next = move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let (mut decided, mut undecided) = (0, 0);
        for _ in 0..4000 {
            let (theta, words) = near_boundaries::<K, G>(&mut next);
            let exact = softmax16_f64::<K, G>(&theta, &words);
            match softmax16_f32::<K, G>(&theta, &words) {
                Some(drawn) => {
                    assert_eq!(drawn, exact, "K = {K}");
                    decided += 1;
                }
                None => undecided += 1,
            }
            assert_eq!(softmax16::<K, G>(&theta, &words), exact, "K = {K}");
        }
        (decided, undecided)
    }

    #[test]
    #[allow(unsafe_code)]
    fn f32_sums_draw_what_f64_sums_draw() {
        if !detected() {
            return;
        }
        // SAFETY: `detected` checked the CPU features.
        let counts = unsafe {
            [
                f32_draws_match_f64::<2, 1>(1),
                f32_draws_match_f64::<3, 2>(2),
                f32_draws_match_f64::<5, 2>(3),
                f32_draws_match_f64::<16, 2>(4),
            ]
        };
        for (decided, undecided) in counts {
            assert!(decided > 100 && undecided > 100, "{counts:?}");
        }
    }
}
