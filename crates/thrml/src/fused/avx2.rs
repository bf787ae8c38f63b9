//! The fused kernels written out in AVX2, FMA and AES instructions (x86-64).
//!
//! The portable kernel ([`super::kernel`]) is what LLVM makes of safe Rust: it extracts
//! each lane's spin with a shift and a compare, and computes the AES words in a separate
//! pass through a buffer. Here, per 8 chains (one `ymm` register):
//!
//! ```text
//! coupling j → i:   γ += permute([0, 2J, 0, 2J], bits_j >> lane)      3 instructions
//! random words:     AES-128 of 8 counters (VAES: 2 blocks per instruction), transposed
//!                   4 × 4 so that word w of chain c lands in lane c of node 4q + w
//! decision:         fma(k, 2ˣ, k) < 2²⁴, x = −2 log₂e · γ             17 instructions
//! ```
//!
//! A neighbour's 64 spins are one `u64` of the tile; its two halves are broadcast once per
//! coupling and every 8-lane group takes its bits with one variable shift, which leaves
//! the lane's spin in bit 0 of the permutation index (`vpermilps` reads bits 0–1, and the
//! table repeats `[0, 2J]`). Categorical logits add one `vpermps` table lookup per head
//! category and tail; the softmax draw repeats the portable `softmax_lanes` operation for
//! operation. With one chain the 8 lanes are 8 positions of a block, and each row of
//! neighbours is one blend by the positions' neighbour masks (`masks.rs`: the tile keeps
//! each position's neighbour spins packed in one `u32` and updates them only for the few
//! spins that change), or one gather for groups of more rows than a mask holds.
//!
//! Every operation is the IEEE operation of the portable kernel, in the same order, so the
//! output is bit-identical: `the_avx2_kernels_match_the_portable_one` checks it for every
//! kernel here, and the unit tests check the AES words and the decisions against their
//! scalar definitions. Two builds of the kernels exist, one with VAES (256-bit AES
//! instructions, Intel Ice Lake and AMD Zen 3 onwards) and one with AES-NI only; the CPU
//! picks at run time.

use std::arch::x86_64::*;
use std::ops::Range;

use super::kernel::{Draw, Out, TileState};
use super::masks::MASK_ROWS;
use super::plan::{FusedBlock, Head, NODE_LANES, Terms, cat_bias_at};
use crate::kernels::math::{
    C1, C2, C3, C4, C5, EXP2_CUTOFF, LOG2_E, ROUNDER, SPIN_EXP_MAX, SPIN_EXP_MIN, SPIN_EXP_SCALE,
};

/// Categories a categorical head may have on these kernels (its logits stay in
/// registers), and categories of its tails (a table row is one `ymm` register).
const MAX_K: usize = 8;

/// Where a block update on these kernels reads and writes.
pub(super) struct Job<'a> {
    pub terms: &'a Terms,
    /// The engine node of the block's position 0 (where its neighbour masks start).
    pub start: usize,
    pub draw: Draw<'a>,
    pub nodes: Range<usize>,
    pub state: TileState<'a>,
    pub out: Out<'a>,
}

/// Which build of the kernels this CPU runs, detected once and cached by the standard
/// library: `Some(true)` with VAES, `Some(false)` with AES-NI only, `None` without AVX2,
/// FMA or AES.
pub(super) fn detected() -> Option<bool> {
    let base = std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("aes");
    base.then(|| std::arch::is_x86_feature_detected!("vaes"))
}

/// Whether block `fb` in tiles of `W` chains runs here: spin blocks with pairwise terms
/// only (any tile), and categorical blocks of at most [`MAX_K`] categories with pairwise
/// categorical terms only, over tails of at most [`MAX_K`] categories.
pub(super) fn supports<const W: usize>(fb: &FusedBlock) -> bool {
    fb.terms.general.is_empty()
        && match fb.head {
            Head::Spin => W == 1 || W == 16 || W == 64,
            Head::Cat(k) => (W == 16 || W == 64) && k <= MAX_K && fb.terms.cat_tail_max <= MAX_K,
        }
}

/// Run `job` for block `fb` on these kernels if the block is [`supports`]ed and the CPU
/// has the features; `false` (nothing written) otherwise.
pub(super) fn try_update<const W: usize>(fb: &FusedBlock, job: Job<'_>) -> bool {
    if !supports::<W>(fb) {
        return false;
    }
    let Some(vaes) = detected() else {
        return false;
    };
    update_with::<W>(fb, job, vaes);
    true
}

/// Run `job` on the VAES build of the kernels (`vaes`) or the AES-NI build; the CPU must
/// have the build's features ([`detected`]).
fn update_with<const W: usize>(fb: &FusedBlock, job: Job<'_>, vaes: bool) {
    macro_rules! dispatch {
        ($m:ident) => {
            match fb.head {
                Head::Spin if W == 1 => run($m::spin_nodes_one_chain, job),
                Head::Spin => run($m::spin_nodes::<W>, job),
                Head::Cat(1) => run($m::cat_nodes::<W, 1>, job),
                Head::Cat(2) => run($m::cat_nodes::<W, 2>, job),
                Head::Cat(3) => run($m::cat_nodes::<W, 3>, job),
                Head::Cat(4) => run($m::cat_nodes::<W, 4>, job),
                Head::Cat(5) => run($m::cat_nodes::<W, 5>, job),
                Head::Cat(6) => run($m::cat_nodes::<W, 6>, job),
                Head::Cat(7) => run($m::cat_nodes::<W, 7>, job),
                Head::Cat(8) => run($m::cat_nodes::<W, 8>, job),
                Head::Cat(k) => unreachable!("{k} categories: not supported here"),
            }
        };
    }
    if vaes {
        dispatch!(with_vaes);
    } else {
        dispatch!(with_aesni);
    }
}

/// Call one of this module's kernels, which [`detected`] said this CPU can run.
///
/// Only the `#[target_feature]` functions of [`with_vaes`] and [`with_aesni`] are passed
/// here, after [`detected`] returned their build: safe functions whose one precondition
/// is the features, coerced to `unsafe fn` pointers. With the gathers of
/// `spin_nodes_one_chain` and the AVX-512 kernels' `run` (`avx512.rs`), the crate's only
/// `unsafe` code outside tests.
#[allow(unsafe_code)]
fn run<A>(f: unsafe fn(A), args: A) {
    // SAFETY: `f` is a safe function apart from its `#[target_feature]`s, and the CPU has
    // them (checked by the caller with `detected`).
    unsafe { f(args) }
}

/// One AES round on the two 128-bit blocks of a `ymm` register, with VAES.
#[inline]
#[target_feature(enable = "avx2,aes,vaes")]
fn enc_vaes(x: __m256i, k: __m256i) -> __m256i {
    _mm256_aesenc_epi128(x, k)
}

/// The last AES round (no `MixColumns`) on both blocks, with VAES.
#[inline]
#[target_feature(enable = "avx2,aes,vaes")]
fn enc_last_vaes(x: __m256i, k: __m256i) -> __m256i {
    _mm256_aesenclast_epi128(x, k)
}

/// One AES round on both blocks with the 128-bit AES-NI instruction.
#[inline]
#[target_feature(enable = "avx2,aes")]
fn enc_aesni(x: __m256i, k: __m256i) -> __m256i {
    let lo = _mm_aesenc_si128(_mm256_castsi256_si128(x), _mm256_castsi256_si128(k));
    let hi = _mm_aesenc_si128(
        _mm256_extracti128_si256::<1>(x),
        _mm256_extracti128_si256::<1>(k),
    );
    _mm256_set_m128i(hi, lo)
}

/// The last AES round on both blocks with AES-NI.
#[inline]
#[target_feature(enable = "avx2,aes")]
fn enc_last_aesni(x: __m256i, k: __m256i) -> __m256i {
    let lo = _mm_aesenclast_si128(_mm256_castsi256_si128(x), _mm256_castsi256_si128(k));
    let hi = _mm_aesenclast_si128(
        _mm256_extracti128_si256::<1>(x),
        _mm256_extracti128_si256::<1>(k),
    );
    _mm256_set_m128i(hi, lo)
}

/// One step of the AES-128 key schedule: the next round key from `k` and
/// `aeskeygenassist(k, rcon)`.
#[inline]
#[target_feature(enable = "avx2,aes")]
fn key_step(k: __m128i, assist: __m128i) -> __m128i {
    let mut k = k;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, _mm_shuffle_epi32::<0xff>(assist))
}

/// The 11 AES-128 round keys of `key` (FIPS-197 key expansion), each in both halves of a
/// `ymm` register.
#[inline]
#[target_feature(enable = "avx2,aes")]
fn round_keys(key: [u8; 16]) -> [__m256i; 11] {
    round_keys128(key).map(|k| _mm256_broadcastsi128_si256(k))
}

/// The 11 AES-128 round keys of `key` (FIPS-197 key expansion).
#[inline]
#[target_feature(enable = "avx2,aes")]
pub(super) fn round_keys128(key: [u8; 16]) -> [__m128i; 11] {
    let lo = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut rk = [_mm_set_epi64x(hi as i64, lo as i64); 11];
    macro_rules! step {
        ($r:literal, $rcon:literal) => {
            rk[$r] = key_step(rk[$r - 1], _mm_aeskeygenassist_si128::<$rcon>(rk[$r - 1]));
        };
    }
    step!(1, 0x01);
    step!(2, 0x02);
    step!(3, 0x04);
    step!(4, 0x08);
    step!(5, 0x10);
    step!(6, 0x20);
    step!(7, 0x40);
    step!(8, 0x80);
    step!(9, 0x1b);
    step!(10, 0x36);
    rk
}

/// Eight lanes of `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn splat(x: f32) -> __m256 {
    _mm256_set1_ps(x)
}

/// The portable `exp2_fma` in 8 lanes (`x ∈ [SPIN_EXP_MIN, SPIN_EXP_MAX]`), operation for
/// operation: rounding by `1.5 · 2²³`, Horner's rule in fused multiply-adds, `n` added to
/// the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp2_fma8(x: __m256) -> __m256 {
    let shifted = _mm256_add_ps(x, splat(ROUNDER));
    let n = _mm256_sub_ps(shifted, splat(ROUNDER));
    let f = _mm256_sub_ps(x, n);
    let mut p = _mm256_fmadd_ps(splat(C5), f, splat(C4));
    p = _mm256_fmadd_ps(p, f, splat(C3));
    p = _mm256_fmadd_ps(p, f, splat(C2));
    p = _mm256_fmadd_ps(p, f, splat(C1));
    p = _mm256_fmadd_ps(p, f, splat(1.0));
    let scale = _mm256_slli_epi32::<23>(_mm256_castps_si256(shifted));
    _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), scale))
}

/// `spin_up(γ_l, w_l)` in 8 lanes, as bit `l` of the result: operation for operation the
/// portable decision (`exp2_fma` of the clamped `γ · (−2 log₂e)`, then
/// `fma(k, t, k) < 2²⁴`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn spin_up8(gamma: __m256, words: __m256i) -> u8 {
    let x = _mm256_mul_ps(gamma, splat(SPIN_EXP_SCALE));
    // `x > MIN ? x : MIN`, then `x < MAX ? x : MAX` (NaN → MIN), as the portable selects.
    let x = _mm256_min_ps(_mm256_max_ps(x, splat(SPIN_EXP_MIN)), splat(SPIN_EXP_MAX));
    let t = exp2_fma8(x);
    let k = _mm256_cvtepi32_ps(_mm256_srli_epi32::<8>(words));
    let up = _mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_fmadd_ps(k, t, k), splat(16_777_216.0));
    _mm256_movemask_ps(up) as u8
}

/// The portable `exp2_nonpos` in 8 lanes, operation for operation: `exp2_fma` of the
/// clamped argument, 0 below the cut-off and for NaN.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp2_nonpos8(y: __m256) -> __m256 {
    let in_range = _mm256_cmp_ps::<_CMP_GE_OQ>(y, splat(EXP2_CUTOFF));
    // `y ≥ CUTOFF ? y : CUTOFF` (NaN → CUTOFF), then `y < 0 ? y : 0`.
    let y = _mm256_min_ps(_mm256_max_ps(y, splat(EXP2_CUTOFF)), _mm256_setzero_ps());
    _mm256_and_ps(exp2_fma8(y), in_range)
}

/// The two 4-lane `f64` halves of 8 `f32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn widen(x: __m256) -> [__m256d; 2] {
    [
        _mm256_cvtps_pd(_mm256_castps256_ps128(x)),
        _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)),
    ]
}

/// `u01_f64(w_l) · total_l` in the two `f64` halves: `w` as an unsigned integer, exact.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn targets(words: __m256i, total: [__m256d; 2]) -> [__m256d; 2] {
    // `w − 2³¹` as a signed integer converts exactly; adding `2³¹` back is exact too.
    let signed = _mm256_xor_si256(words, _mm256_set1_epi32(i32::MIN));
    let half = _mm256_set1_pd(2_147_483_648.0);
    let scale = _mm256_set1_pd(1.0 / 4_294_967_296.0);
    let lo = _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(signed)), half);
    let hi = _mm256_add_pd(
        _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(signed)),
        half,
    );
    [
        _mm256_mul_pd(_mm256_mul_pd(lo, scale), total[0]),
        _mm256_mul_pd(_mm256_mul_pd(hi, scale), total[1]),
    ]
}

/// `sample_softmax(θ_l, w_l)` in the 8 lanes of each of `G` groups (`theta[g][c]` holds
/// category `c` of group `g`), operation for operation the portable `softmax_lanes`: `f32`
/// weights `exp(θ_c − max)`, `f64` sums, the category is the count of prefix sums
/// `≤ u · total`; uniform when every logit is `−∞`. The groups' operations interleave, so
/// that their long dependency chains overlap.
#[inline]
#[target_feature(enable = "avx2,fma")]
// Category-outer, group-inner loops are the point: they interleave the groups.
#[allow(clippy::needless_range_loop)]
fn softmax8<const K: usize, const G: usize>(
    theta: &[[__m256; K]; G],
    words: &[__m256i; G],
) -> [[u8; 8]; G] {
    let mut max = [splat(f32::NEG_INFINITY); G];
    for c in 0..K {
        for (m, th) in max.iter_mut().zip(theta) {
            // `t > max ? t : max`, NaN ignored.
            *m = _mm256_max_ps(th[c], *m);
        }
    }
    let mut weights = [[_mm256_setzero_ps(); K]; G];
    let mut total = [[_mm256_setzero_pd(); 2]; G];
    for c in 0..K {
        for g in 0..G {
            // `θ == max ? 0 : θ − max` (equal infinities give 0, NaN gives NaN).
            let th = theta[g][c];
            let same = _mm256_cmp_ps::<_CMP_EQ_OQ>(th, max[g]);
            let d = _mm256_andnot_ps(same, _mm256_sub_ps(th, max[g]));
            weights[g][c] = exp2_nonpos8(_mm256_mul_ps(d, splat(LOG2_E)));
            let [lo, hi] = widen(weights[g][c]);
            total[g] = [
                _mm256_add_pd(total[g][0], lo),
                _mm256_add_pd(total[g][1], hi),
            ];
        }
    }
    let target: [[__m256d; 2]; G] = std::array::from_fn(|g| targets(words[g], total[g]));
    let mut acc = [[_mm256_setzero_pd(); 2]; G];
    let mut count = [[_mm256_setzero_si256(); 2]; G];
    for c in 0..K - 1 {
        for g in 0..G {
            let [lo, hi] = widen(weights[g][c]);
            acc[g] = [_mm256_add_pd(acc[g][0], lo), _mm256_add_pd(acc[g][1], hi)];
            for h in 0..2 {
                // A true comparison is all ones, −1 as an integer.
                let below = _mm256_cmp_pd::<_CMP_LE_OQ>(acc[g][h], target[g][h]);
                count[g][h] = _mm256_sub_epi64(count[g][h], _mm256_castpd_si256(below));
            }
        }
    }
    std::array::from_fn(|g| {
        let mut out = [0u8; 8];
        for (h, c) in count[g].iter().enumerate() {
            out[4 * h] = _mm256_extract_epi64::<0>(*c) as u8;
            out[4 * h + 1] = _mm256_extract_epi64::<1>(*c) as u8;
            out[4 * h + 2] = _mm256_extract_epi64::<2>(*c) as u8;
            out[4 * h + 3] = _mm256_extract_epi64::<3>(*c) as u8;
        }
        let all_neg_inf = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(
            max[g],
            splat(f32::NEG_INFINITY),
        ));
        if all_neg_inf != 0 {
            let w = u32_lanes(words[g]);
            for (l, o) in out.iter_mut().enumerate() {
                if all_neg_inf >> l & 1 == 1 {
                    // The portable `uniform_category`.
                    *o = ((u64::from(w[l]) * K as u64) >> 32) as u8;
                }
            }
        }
        out
    })
}

/// The 8 lanes of a vector of `u32`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn u32_lanes(x: __m256i) -> [u32; 8] {
    [
        _mm256_extract_epi32::<0>(x) as u32,
        _mm256_extract_epi32::<1>(x) as u32,
        _mm256_extract_epi32::<2>(x) as u32,
        _mm256_extract_epi32::<3>(x) as u32,
        _mm256_extract_epi32::<4>(x) as u32,
        _mm256_extract_epi32::<5>(x) as u32,
        _mm256_extract_epi32::<6>(x) as u32,
        _mm256_extract_epi32::<7>(x) as u32,
    ]
}

/// Eight `f32` as a vector (one unaligned load).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn vec8(a: &[f32]) -> __m256 {
    // A cast of the array, rather than `_mm256_set_ps` of its elements, which LLVM does
    // not always fold into one load.
    let a: [f32; 8] = a[..8].try_into().expect("8 lanes");
    bytemuck::cast(a)
}

/// Eight `u32` as a vector (one unaligned load).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn vec8_epi32(a: &[u32]) -> __m256i {
    let a: [u32; 8] = a[..8].try_into().expect("8 lanes");
    bytemuck::cast(a)
}

/// Eight bytes, zero-extended to 8 `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bytes8(b: &[u8]) -> __m256i {
    let x = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(x as i64))
}

/// The kernels, built once per AES instruction set: `$features` is the `target_feature`
/// list, `$enc` / `$enc_last` the AES rounds on two blocks.
macro_rules! kernels {
    ($m:ident, $features:literal, $enc:ident, $enc_last:ident) => {
        pub(super) mod $m {
            use super::*;

            /// AES-128 of the four `ymm` registers of two counter blocks each.
            #[inline]
            #[target_feature(enable = $features)]
            pub(super) fn encrypt4(rk: &[__m256i; 11], x: [__m256i; 4]) -> [__m256i; 4] {
                let mut x = x.map(|b| _mm256_xor_si256(b, rk[0]));
                for k in &rk[1..10] {
                    x = x.map(|b| $enc(b, *k));
                }
                x.map(|b| $enc_last(b, rk[10]))
            }

            /// The words of node quad `quad` for chains `c0 .. c0 + 8`: lane `l` of
            /// `result[w]` is the word of node `4 · quad + w` in chain `c0 + l`.
            #[inline]
            #[target_feature(enable = $features)]
            pub(super) fn chain_words(
                rk: &[__m256i; 11],
                c0: u32,
                quad: u32,
                hi: [u32; 2],
            ) -> [__m256i; 4] {
                let [h0, h1] = hi.map(|h| h as i32);
                // Register i holds the blocks of chains c0 + i and c0 + 4 + i.
                let base = _mm256_setr_epi32(
                    c0 as i32,
                    quad as i32,
                    h0,
                    h1,
                    c0.wrapping_add(4) as i32,
                    quad as i32,
                    h0,
                    h1,
                );
                let x = std::array::from_fn(|i| {
                    _mm256_add_epi32(
                        base,
                        _mm256_setr_epi32(i as i32, 0, 0, 0, i as i32, 0, 0, 0),
                    )
                });
                let [x0, x1, x2, x3] = encrypt4(rk, x);
                // A 4 × 4 transpose in each 128-bit half: word w of the four chains.
                let t0 = _mm256_unpacklo_epi32(x0, x1);
                let t1 = _mm256_unpacklo_epi32(x2, x3);
                let t2 = _mm256_unpackhi_epi32(x0, x1);
                let t3 = _mm256_unpackhi_epi32(x2, x3);
                [
                    _mm256_unpacklo_epi64(t0, t1),
                    _mm256_unpackhi_epi64(t0, t1),
                    _mm256_unpacklo_epi64(t2, t3),
                    _mm256_unpackhi_epi64(t2, t3),
                ]
            }

            /// The words of nodes `4 · quad .. 4 · quad + 8` in chain `chain`, in order.
            #[inline]
            #[target_feature(enable = $features)]
            pub(super) fn node_words(
                rk: &[__m256i; 11],
                chain: u32,
                quad: u32,
                hi: [u32; 2],
            ) -> __m256i {
                let [h0, h1] = hi.map(|h| h as i32);
                let c = chain as i32;
                let q = quad as i32;
                let x = _mm256_setr_epi32(c, q, h0, h1, c, q.wrapping_add(1), h0, h1);
                let [w, ..] = encrypt4(rk, [x; 4]);
                w
            }

            /// `f(j, words)` for every position `j` of `nodes` in order, where
            /// `words[g][j % 4]` holds the words of `j` for chains `c0 + 8g ..
            /// c0 + 8g + 8`, `g < groups`: one AES block per chain and node quad.
            #[inline]
            #[target_feature(enable = $features)]
            fn for_each_node(
                draw: Draw<'_>,
                groups: usize,
                nodes: Range<usize>,
                mut f: impl FnMut(usize, &[[__m256i; 4]; 8]),
            ) {
                let rk = round_keys(draw.key.bytes());
                let hi = draw.update.counter_hi();
                let mut j = nodes.start;
                while j < nodes.end {
                    let mut words = [[_mm256_setzero_si256(); 4]; 8];
                    for (g, w) in words.iter_mut().enumerate().take(groups) {
                        let c0 = draw.chain0.wrapping_add(8 * g as u32);
                        *w = chain_words(&rk, c0, (j / 4) as u32, hi);
                    }
                    let quad_end = (j / 4 * 4 + 4).min(nodes.end);
                    for jj in j..quad_end {
                        f(jj, &words);
                    }
                    j = quad_end;
                }
            }

            /// New lane masks of positions `nodes` of a spin block with pairwise terms
            /// only: `out.bits[j − nodes.start]` is the mask of position `j`, exactly as
            /// the portable kernel computes it.
            #[target_feature(enable = $features)]
            pub(super) fn spin_nodes<const W: usize>(job: Job<'_>) {
                assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
                let groups = W / 8;
                let Job {
                    terms: t,
                    start: _,
                    draw,
                    nodes,
                    state,
                    out,
                } = job;
                // Lane l of group g reads bit 8g + l: shift counts within a 32-bit half.
                let shifts: [__m256i; 4] = std::array::from_fn(|q| {
                    let s = 8 * q as i32;
                    _mm256_setr_epi32(s, s + 1, s + 2, s + 3, s + 4, s + 5, s + 6, s + 7)
                });
                let zero = _mm256_setzero_ps();
                // The masks as 32-bit halves (little-endian: low half first), so that each
                // half is broadcast straight from memory.
                let halves: &[u32] = bytemuck::cast_slice(state.bits);
                for_each_node(draw, groups, nodes.clone(), |j, words| {
                    let mut acc = [_mm256_set1_ps(t.bias[j]); 8];
                    let (e0, e1) = (t.spin_off[j] as usize, t.spin_off[j + 1] as usize);
                    for (&i, &w2) in t.spin_idx[e0..e1].iter().zip(&t.spin_w2[e0..e1]) {
                        let i = 2 * i as usize;
                        let halves = [
                            _mm256_set1_epi32(halves[i] as i32),
                            _mm256_set1_epi32(halves[i + 1] as i32),
                        ];
                        // [0, 2J, 0, 2J]: bit 0 of the index picks 2J.
                        let table = _mm256_blend_ps::<0b1010_1010>(zero, _mm256_set1_ps(w2));
                        for (g, a) in acc.iter_mut().enumerate().take(groups) {
                            let index = _mm256_srlv_epi32(halves[g / 4], shifts[g % 4]);
                            *a = _mm256_add_ps(*a, _mm256_permutevar_ps(table, index));
                        }
                    }
                    let mut mask = 0u64;
                    for g in 0..groups {
                        mask |= u64::from(spin_up8(acc[g], words[g][j % 4])) << (8 * g);
                    }
                    out.bits[j - nodes.start] = mask;
                });
            }

            /// New spins (`out.bits[j − nodes.start]` is 0 or 1) of positions `nodes` of a
            /// spin block with pairwise terms only in a one-chain tile: 8 positions are
            /// the 8 lanes. Each ELL row of neighbours is one blend of its weights by the
            /// positions' neighbour masks (`state.masks`, see `masks.rs`) when the tile
            /// keeps them and the group has at most `MASK_ROWS` rows, and one gather per
            /// 8 positions otherwise. Two whole groups on masks are summed together, so
            /// that four chains of dependent adds overlap. Exactly the portable kernel's
            /// bits.
            #[target_feature(enable = $features)]
            pub(super) fn spin_nodes_one_chain(job: Job<'_>) {
                const L: usize = NODE_LANES;
                let Job {
                    terms: t,
                    start,
                    draw,
                    nodes,
                    state,
                    out,
                } = job;
                let rk = round_keys(draw.key.bytes());
                let hi = draw.update.counter_hi();
                let len = t.bias.len();
                let masks = (!state.masks.is_empty()).then(|| &state.masks[start..]);
                let rows = |g: usize| (t.ell_off[g + 1] - t.ell_off[g]) as usize;
                // A whole group inside `nodes` whose rows fit its masks.
                let fast = |g: usize| {
                    g * L >= nodes.start
                        && (g + 1) * L <= nodes.end.min(len)
                        && masks.is_some()
                        && rows(g) <= MASK_ROWS
                };
                let end = nodes.end.div_ceil(L);
                let mut g = nodes.start / L;
                while g < end {
                    let pair = g + 1 < end && fast(g) && fast(g + 1);
                    let n = if pair { 2 } else { 1 };
                    // The words first, so that their AES rounds can overlap the fields'
                    // adds.
                    let mut words = [[_mm256_setzero_si256(); 2]; 2];
                    for (i, w) in words.iter_mut().enumerate().take(n) {
                        let quad = ((g + i) * L / 4) as u32;
                        *w = [
                            node_words(&rk, draw.chain0, quad, hi),
                            node_words(&rk, draw.chain0, quad + 2, hi),
                        ];
                    }
                    let fields = match masks {
                        Some(m) if pair => masked_fields(t, [g, g + 1], m),
                        _ => {
                            let m = masks.filter(|_| rows(g) <= MASK_ROWS);
                            [group_field(t, g, state, m), [_mm256_setzero_ps(); 2]]
                        }
                    };
                    for i in 0..n {
                        decide(g + i, fields[i], words[i], nodes.clone(), out.bits);
                    }
                    g += n;
                }
            }

            /// The pairwise fields of the `G` whole one-chain groups `g` from their
            /// neighbour masks `m` (indexed by block position), their rows interleaved.
            #[inline]
            #[target_feature(enable = $features)]
            fn masked_fields<const G: usize>(
                t: &Terms,
                g: [usize; G],
                m: &[u32],
            ) -> [[__m256; 2]; G] {
                const L: usize = NODE_LANES;
                // Loops rather than closures, which would not inherit the target features.
                let mut rows = [(0, 0); G];
                let mut field = [[_mm256_setzero_ps(); 2]; G];
                let mut on = [[_mm256_setzero_si256(); 2]; G];
                for i in 0..G {
                    let g0 = g[i] * L;
                    rows[i] = (t.ell_off[g[i]] as usize, t.ell_off[g[i] + 1] as usize);
                    field[i] = [vec8(&t.bias[g0..]), vec8(&t.bias[g0 + 8..])];
                    on[i] = [vec8_epi32(&m[g0..]), vec8_epi32(&m[g0 + 8..])];
                }
                let common = rows.iter().map(|(a, b)| b - a).min().unwrap_or(0);
                for r in 0..common {
                    for i in 0..G {
                        masked_row(&mut field[i], &mut on[i], &t.ell_w2[rows[i].0 + r]);
                    }
                }
                for i in 0..G {
                    for w2 in &t.ell_w2[rows[i].0 + common..rows[i].1] {
                        masked_row(&mut field[i], &mut on[i], w2);
                    }
                }
                field
            }

            /// The pairwise field of one-chain group `g` (positions past the block's end
            /// padded with 0), from its neighbour masks `m` when given, by gathers from
            /// the spins otherwise.
            #[inline]
            #[target_feature(enable = $features)]
            fn group_field(
                t: &Terms,
                g: usize,
                state: TileState<'_>,
                m: Option<&[u32]>,
            ) -> [__m256; 2] {
                const L: usize = NODE_LANES;
                let g0 = g * L;
                let bias: [f32; L] =
                    std::array::from_fn(|l| t.bias.get(g0 + l).copied().unwrap_or(0.0));
                let mut field = [vec8(&bias[..8]), vec8(&bias[8..])];
                let rows = t.ell_off[g] as usize..t.ell_off[g + 1] as usize;
                let w2s = &t.ell_w2[rows.clone()];
                if let Some(m) = m {
                    let m: [u32; L] =
                        std::array::from_fn(|l| if g0 + l < t.bias.len() { m[g0 + l] } else { 0 });
                    let mut on = [vec8_epi32(&m[..8]), vec8_epi32(&m[8..])];
                    for w2 in w2s {
                        masked_row(&mut field, &mut on, w2);
                    }
                } else {
                    let zero = _mm256_setzero_ps();
                    for (idx, w2) in t.ell_idx[rows].iter().zip(w2s) {
                        for (h, f) in field.iter_mut().enumerate() {
                            let b = gather_low_words(vec8_epi32(&idx[8 * h..]), state.bits);
                            // Bit 0 (the spin) to the sign: the blend's selector.
                            let on = _mm256_castsi256_ps(_mm256_slli_epi32::<31>(b));
                            let add = _mm256_blendv_ps(zero, vec8(&w2[8 * h..]), on);
                            *f = _mm256_add_ps(*f, add);
                        }
                    }
                }
                field
            }

            /// Add one ELL row's weights `w2` to the two halves of a group's `field`
            /// where the sign bits of `on` (the row's neighbour spins) are set, and move
            /// the next row's spins to the sign bits.
            #[inline]
            #[target_feature(enable = $features)]
            fn masked_row(field: &mut [__m256; 2], on: &mut [__m256i; 2], w2: &[f32; NODE_LANES]) {
                for h in 0..2 {
                    let sel = _mm256_castsi256_ps(on[h]);
                    let add = _mm256_blendv_ps(_mm256_setzero_ps(), vec8(&w2[8 * h..]), sel);
                    field[h] = _mm256_add_ps(field[h], add);
                    on[h] = _mm256_add_epi32(on[h], on[h]);
                }
            }

            /// Draw the spins of one-chain group `g` from its `field` and random `words`
            /// (of its two halves), and write those of its positions inside `nodes` to
            /// `out` (indexed from `nodes.start`).
            #[inline]
            #[target_feature(enable = $features)]
            fn decide(
                g: usize,
                field: [__m256; 2],
                words: [__m256i; 2],
                nodes: Range<usize>,
                out: &mut [u64],
            ) {
                const L: usize = NODE_LANES;
                let g0 = g * L;
                let up = u16::from(spin_up8(field[0], words[0]))
                    | u16::from(spin_up8(field[1], words[1])) << 8;
                if g0 >= nodes.start && g0 + L <= nodes.end {
                    let o: &mut [u64; L] = (&mut out[g0 - nodes.start..][..L])
                        .try_into()
                        .expect("a whole group");
                    for (k, o) in o.iter_mut().enumerate() {
                        *o = u64::from(up >> k & 1);
                    }
                } else {
                    for j in g0.max(nodes.start)..(g0 + L).min(nodes.end) {
                        out[j - nodes.start] = u64::from(up >> (j - g0) & 1);
                    }
                }
            }

            /// New states of positions `nodes` of a categorical block of `K ≤ MAX_K`
            /// categories with pairwise categorical terms only: `W` bytes per position in
            /// `out.cats`, exactly as the portable kernel computes them.
            #[target_feature(enable = $features)]
            pub(super) fn cat_nodes<const W: usize, const K: usize>(job: Job<'_>) {
                assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
                let groups = W / 8;
                let Job {
                    terms: t,
                    start: _,
                    draw,
                    nodes,
                    state,
                    out,
                } = job;
                for_each_node(draw, groups, nodes.clone(), |j, words| {
                    let (e0, e1) = (t.cat_off[j] as usize, t.cat_off[j + 1] as usize);
                    // `CAT_GROUPS` groups of 8 chains at a time, their softmax draws
                    // interleaved.
                    const G: usize = CAT_GROUPS;
                    for g0 in (0..groups).step_by(G) {
                        let mut theta: [[__m256; K]; G] =
                            [std::array::from_fn(|c| _mm256_set1_ps(t.bias[cat_bias_at(j, c, K)]));
                                G];
                        for e in e0..e1 {
                            // θ_c[l] += W_e[c, x_l]: a lookup by permutation in each row.
                            let node = t.cat_idx[e] as usize;
                            let rows = &t.cat_rows[t.cat_table(e).row as usize..][..K];
                            for (h, th) in theta.iter_mut().enumerate() {
                                let x = bytes8(&state.cats[node * W + 8 * (g0 + h)..]);
                                for (th, row) in th.iter_mut().zip(rows) {
                                    let v = _mm256_permutevar8x32_ps(vec8(&row[..8]), x);
                                    *th = _mm256_add_ps(*th, v);
                                }
                            }
                        }
                        let w: [__m256i; G] = std::array::from_fn(|h| words[g0 + h][j % 4]);
                        let o = (j - nodes.start) * W + 8 * g0;
                        let drawn = softmax8(&theta, &w);
                        for (h, d) in drawn.iter().enumerate() {
                            out.cats[o + 8 * h..o + 8 * h + 8].copy_from_slice(d);
                        }
                    }
                });
            }
        }
    };
}

kernels!(with_vaes, "avx2,fma,aes,vaes", enc_vaes, enc_last_vaes);
kernels!(with_aesni, "avx2,fma,aes", enc_aesni, enc_last_aesni);

/// Groups of 8 chains whose softmax draws one categorical kernel call interleaves (a
/// divisor of 2, the groups of a 16-chain tile).
const CAT_GROUPS: usize = 2;

/// The low 32 bits of `bits[idx_l]` in each lane, indices clamped into `bits`.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
fn gather_low_words(idx: __m256i, bits: &[u64]) -> __m256i {
    assert!(!bits.is_empty(), "a gather from an empty state");
    let last = _mm256_set1_epi32(i32::try_from(bits.len() - 1).unwrap_or(i32::MAX));
    let idx = _mm256_min_epu32(idx, last);
    // SAFETY: every lane of `idx` is at most `bits.len() − 1` (the unsigned minimum above;
    // `i32::MAX < bits.len()` when saturated), so each 4-byte read at byte offset `8 · idx`
    // from the start of `bits` lies inside `bits` (the element's low word, little-endian).
    unsafe { _mm256_i32gather_epi32::<8>(bits.as_ptr().cast(), idx) }
}

#[cfg(test)]
pub(super) mod tests {
    use std::arch::x86_64::{__m256i, _mm256_castps_si256, _mm256_cmpeq_epi32, _mm256_movemask_ps};

    use super::{
        Job, detected, exp2_nonpos8, round_keys, spin_up8, supports, try_update, u32_lanes,
        update_with, vec8, vec8_epi32, with_aesni, with_vaes,
    };
    use crate::fused::kernel::tests::random_block;
    use crate::fused::kernel::{Draw, Out, Scratch, TileState, update_nodes_portable};
    use crate::fused::masks::NeighbourMasks;
    use crate::fused::plan::{FusedBlock, Head};
    use crate::kernels::aes::{BlockUpdate, WordKey, site_word};
    use crate::kernels::math::{exp2_nonpos, spin_up};
    use crate::rng::Key;
    use rand::rand_core::Rng;

    /// `f(args)` if this CPU runs the AVX2 kernels (no VAES needed), else `None`.
    #[allow(unsafe_code)]
    fn if_avx2<A, R>(f: unsafe fn(A) -> R, args: A) -> Option<R> {
        // SAFETY: only this module's `avx2,fma,aes` functions are passed here.
        detected().map(|_| unsafe { f(args) })
    }

    /// The words of `chain_words` and `node_words` in both builds, against `site_word`.
    #[target_feature(enable = "avx2,fma,aes")]
    fn aes_words_agree((key, at, chain0, quad): (WordKey, BlockUpdate, u32, u32)) -> bool {
        let rk = round_keys(key.bytes());
        let hi = at.counter_hi();
        let mut ok = true;
        let check = |v: __m256i, expect: [u32; 8]| u32_lanes(v) == expect;
        let chains = with_aesni::chain_words(&rk, chain0, quad, hi);
        for (w, &v) in chains.iter().enumerate() {
            let expect = std::array::from_fn(|l| {
                site_word(
                    &key,
                    at,
                    chain0.wrapping_add(l as u32),
                    4 * u64::from(quad) + w as u64,
                )
            });
            ok &= check(v, expect);
        }
        let nodes = with_aesni::node_words(&rk, chain0, quad, hi);
        let expect =
            std::array::from_fn(|l| site_word(&key, at, chain0, 4 * u64::from(quad) + l as u64));
        ok &= check(nodes, expect);
        ok
    }

    /// The VAES build's words against the AES-NI build's and `site_word`.
    #[target_feature(enable = "avx2,fma,aes,vaes")]
    fn vaes_words_agree((key, at, chain0, quad): (WordKey, BlockUpdate, u32, u32)) -> bool {
        let rk = &round_keys(key.bytes());
        let key = &key;
        let hi = at.counter_hi();
        let a = with_vaes::chain_words(rk, chain0, quad, hi);
        let b = with_aesni::chain_words(rk, chain0, quad, hi);
        let same = (0..4).all(|w| u32_lanes(a[w]) == u32_lanes(b[w]));
        let n = with_vaes::node_words(rk, chain0, quad, hi);
        let expect: [u32; 8] =
            std::array::from_fn(|l| site_word(key, at, chain0, 4 * u64::from(quad) + l as u64));
        same && u32_lanes(n) == expect
    }

    /// `spin_up8` as bits, against the scalar decisions.
    #[target_feature(enable = "avx2,fma")]
    fn decisions((gamma, words): ([f32; 8], [u32; 8])) -> (u8, u8) {
        let got = spin_up8(vec8(&gamma), vec8_epi32(&words));
        let expect = (0..8).fold(0u8, |m, l| m | u8::from(spin_up(gamma[l], words[l])) << l);
        (got, expect)
    }

    /// Lanes where `exp2_nonpos8(y)` has the bits of the scalar `exp2_nonpos(y)`.
    #[target_feature(enable = "avx2,fma")]
    fn exp2_agrees(y: [f32; 8]) -> u8 {
        let got = _mm256_castps_si256(exp2_nonpos8(vec8(&y)));
        let want = vec8_epi32(&y.map(|y| exp2_nonpos(y).to_bits()));
        _mm256_movemask_ps(std::arch::x86_64::_mm256_castsi256_ps(_mm256_cmpeq_epi32(
            got, want,
        ))) as u8
    }

    #[test]
    fn exp2_matches_the_scalar_one() {
        // Every multiple of 1/16 down to below the cut-off (ties of the rounding to the
        // nearest integer included), then random points, −∞ and NaN.
        let mut rng = Key::new(6).chain_rngs(1).remove(0);
        let mut points: Vec<f32> = (0..=2_100).map(|i| -(i as f32) / 16.0).collect();
        points.extend((0..200_000).map(|_| -(rng.next_u32() as f32 / u32::MAX as f32) * 130.0));
        points.extend([
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            f32::MIN,
            -1e-30,
            0.5,
            f32::INFINITY,
        ]);
        for chunk in points.chunks(8) {
            let y: [f32; 8] = std::array::from_fn(|l| chunk.get(l).copied().unwrap_or(0.0));
            if let Some(agree) = if_avx2(exp2_agrees, y) {
                assert_eq!(agree, u8::MAX, "y = {y:?}");
            }
        }
    }

    #[test]
    fn aes_words_match_the_scalar_definition() {
        for (seed, sweep, block, chain0, quad) in [
            (0u64, 0u64, 0u32, 0u32, 0u32),
            (11, 0x1_2345_6789, 7, 48, 3),
            (12, (1 << 48) - 1, (1 << 16) - 1, u32::MAX - 5, u32::MAX - 1),
        ] {
            let args = (
                WordKey::from_seed(seed),
                BlockUpdate::new(sweep, block),
                chain0,
                quad,
            );
            if let Some(ok) = if_avx2(aes_words_agree, args.clone()) {
                assert!(ok, "seed {seed}, sweep {sweep}, block {block}");
            }
            if detected() == Some(true) {
                // SAFETY: the CPU has VAES and the AVX2 build's features.
                #[allow(unsafe_code)]
                let ok = unsafe { vaes_words_agree(args) };
                assert!(ok, "VAES: seed {seed}, sweep {sweep}, block {block}");
            }
        }
    }

    #[test]
    fn spin_decisions_match_the_scalar_ones() {
        let special = [
            0.0f32,
            -0.0,
            1e-40,
            -1e-40,
            43.3,
            -43.7,
            1e4,
            -1e4,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.5,
            -0.5,
            8.3,
        ];
        // The decision is monotone in the word: test the two words either side of the scalar
        // threshold (the smallest `k` with `spin_up(γ, k << 8)` false), which pins the
        // product and the bound exactly; plus random words.
        let threshold = |g: f32| {
            let (mut lo, mut hi) = (0u32, 1u32 << 24);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if spin_up(g, mid << 8) {
                    lo = mid + 1
                } else {
                    hi = mid
                }
            }
            lo
        };
        let mut rng = Key::new(5).chain_rngs(1).remove(0);
        for round in 0..4_000 {
            let gamma: [f32; 8] = if round < 16 {
                std::array::from_fn(|l| special[(l / 2 + round) % 16])
            } else {
                let g: [f32; 4] = std::array::from_fn(|l| {
                    let scale = [0.01f32, 1.0, 10.0, 60.0][(round + l) % 4];
                    (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
                });
                std::array::from_fn(|l| g[l / 2])
            };
            let words: [u32; 8] = std::array::from_fn(|l| {
                let k = threshold(gamma[l]);
                let k = if l % 2 == 0 {
                    k.saturating_sub(1)
                } else {
                    k.min((1 << 24) - 1)
                };
                if round % 2 == 0 {
                    k << 8 | (rng.next_u32() & 0xff)
                } else {
                    rng.next_u32()
                }
            });
            if let Some((got, expect)) = if_avx2(decisions, (gamma, words)) {
                assert_eq!(got, expect, "fields {gamma:?}");
            }
        }
    }

    fn kernels_agree<const W: usize>(fb: &FusedBlock, n_tails: usize, seed: u64) {
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let bits: Vec<u64> = (0..n_tails)
            .map(|_| rng.next_u64() & (u64::MAX >> (64 - W)))
            .collect();
        let cats: Vec<u8> = (0..n_tails * W)
            .map(|x| (rng.next_u32() % (2 + (x / W) as u32 % 7)) as u8)
            .collect();
        let state = TileState {
            bits: &bits,
            cats: &cats,
            masks: &[],
        };
        // One-chain kernels also run from neighbour masks, of the block placed at engine
        // node 7 (it reads its masks from there on).
        let start = 7;
        let masks = if W == 1 {
            let placed = FusedBlock {
                start,
                ..fb.clone()
            };
            let nb = NeighbourMasks::new(n_tails, [&placed].into_iter()).expect("small");
            let mut masks = nb.zeros();
            nb.rebuild(&bits, &mut masks);
            masks
        } else {
            Vec::new()
        };
        let key = WordKey::from_seed(seed);
        // The one-chain kernels take ranges starting at a multiple of 16 (as the engine
        // passes them); the others any range.
        let (a, b) = if W == 1 { (16, 32) } else { (3, 5) };
        for (chain0, nodes) in [(0, 0..fb.len), (48, a..fb.len - 2), (1000, b..b + 1)] {
            let draw = Draw {
                key: &key,
                update: BlockUpdate::new(9, 3),
                chain0,
            };
            let n = nodes.len();
            let (mut bits_a, mut cats_a) = (vec![0u64; n], vec![0u8; n * W]);
            let (mut bits_b, mut cats_b) = (vec![0u64; n], vec![0u8; n * W]);
            let mut scratch = Scratch::new(W, 8);
            update_nodes_portable::<W>(
                fb,
                draw,
                nodes.clone(),
                state,
                Out {
                    bits: &mut bits_a,
                    cats: &mut cats_a,
                },
                &mut scratch,
            );
            assert!(supports::<W>(fb));
            let Some(vaes) = detected() else {
                return;
            };
            let with_masks = TileState {
                masks: &masks,
                ..state
            };
            for (build, state) in [false, true]
                .into_iter()
                .flat_map(|b| [(b, state), (b, with_masks)])
            {
                let job = Job {
                    terms: &fb.terms,
                    start,
                    draw,
                    nodes: nodes.clone(),
                    state,
                    out: Out {
                        bits: &mut bits_b,
                        cats: &mut cats_b,
                    },
                };
                if build && !vaes {
                    continue;
                }
                if build == vaes {
                    assert!(try_update::<W>(fb, job));
                } else {
                    update_with::<W>(fb, job, build);
                }
                let which = match (build, state.masks.is_empty()) {
                    (true, true) => "VAES",
                    (true, false) => "VAES, neighbour masks",
                    (false, true) => "AES-NI",
                    (false, false) => "AES-NI, neighbour masks",
                };
                assert_eq!(
                    bits_a, bits_b,
                    "spin masks, {which}, W = {W}, nodes {nodes:?}"
                );
                assert_eq!(
                    cats_a, cats_b,
                    "categories, {which}, W = {W}, nodes {nodes:?}"
                );
                bits_b.fill(0);
                cats_b.fill(0);
            }
            // Not vacuous: the outputs vary.
            let distinct = |v: &[u8]| v.iter().collect::<std::collections::HashSet<_>>().len();
            if n > 10 {
                let full = u64::MAX >> (64 - W);
                let mixed = if W == 1 {
                    bits_a.contains(&0) && bits_a.contains(&1)
                } else {
                    bits_a.iter().any(|&m| m != 0 && m != full)
                };
                assert!(fb.head != Head::Spin || mixed);
                assert!(fb.head == Head::Spin || distinct(&cats_a) >= 2);
            }
        }
    }

    #[test]
    fn the_avx2_kernels_match_the_portable_one() {
        for (seed, k) in [(1, None), (2, Some(5)), (3, Some(2)), (4, Some(8))] {
            let fb = random_block(seed, 37, 50, k);
            if k.is_none() {
                kernels_agree::<1>(&fb, 50, seed + 30);
                // Enough groups for pairs of whole groups on neighbour masks.
                kernels_agree::<1>(&random_block(seed, 83, 120, k), 120, seed + 40);
            }
            kernels_agree::<16>(&fb, 50, seed + 10);
            kernels_agree::<64>(&fb, 50, seed + 20);
        }
    }
}
