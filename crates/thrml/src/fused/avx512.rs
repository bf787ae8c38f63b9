//! The spin kernel written out in AVX-512 for tiles of 16 or 64 chains.
//!
//! LLVM compiles the portable kernel in [`super::kernel`] to 256-bit vectors even when
//! AVX-512 is present (it prefers 256-bit vectors on Intel server cores), and extracts each
//! lane's spin from the neighbour's mask with shifts and compares. Here the 64 chains of a
//! tile are four `zmm` registers, and a neighbour's lane mask *is* the AVX-512 write mask
//! of the coupling add:
//!
//! ```text
//! γ[16g .. 16g + 16] = mask_add(γ, bits[i] >> 16g, γ, broadcast(2J))   one µop per 16 lanes
//! ```
//!
//! The Philox words are computed in registers, 16 chains per call (`vpmuludq` on the even
//! and odd lanes, one masked `vpshufd` each to gather the high and the low product
//! halves, `vpternlogd` for the three-way xors), and the decision `u · (1 + t) < bound`
//! of [`spin_up`](crate::kernels::math::spin_up) is evaluated in 512-bit lanes.
//!
//! Every operation is the IEEE operation of the portable kernel, in the same order (no
//! fused multiply-adds, no approximate reciprocals), so the output is bit-identical to
//! [`super::kernel`]'s: `the_avx512_kernel_matches_the_portable_one` checks it, and the
//! unit tests check the Philox words and the decisions against their scalar definitions.

use std::arch::x86_64::*;
use std::ops::Range;

use super::kernel::CHUNK;
use super::kernel::{Draw, Out, TileState};
use super::plan::{FusedBlock, Head, NODE_LANES, Terms};
use crate::kernels::math::{C1, C2, C3, C4, C5, EXP2_CUTOFF, LOG2_E};
use crate::kernels::philox::{M0, M1, PhiloxKey, W0, W1, fill_words};

/// Whether this CPU has AVX-512 Foundation, the one feature the functions here enable;
/// detected once and cached by the standard library.
fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

/// Categories a categorical head may have on this kernel (its logits stay in registers).
const MAX_K: usize = 8;

/// `f(args)` when this CPU has AVX-512F, `None` otherwise.
///
/// Only this module's `#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]` functions are passed here:
/// safe functions whose one precondition is the feature, coerced to `unsafe fn` pointers.
/// With [`gather_low_words`], one of the crate's two `unsafe` blocks.
#[allow(unsafe_code)]
fn if_detected<A, R>(f: unsafe fn(A) -> R, args: A) -> Option<R> {
    if detected() {
        // SAFETY: `f` is a safe function apart from `#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]`,
        // and the CPU has AVX-512F.
        Some(unsafe { f(args) })
    } else {
        None
    }
}

/// 16 lanes `0, 1, …, 15`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn iota() -> __m512i {
    _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
}

/// The 20 round keys of a Philox4x32-10 key: `[k0, k1]` of round `r` at `2r`, `2r + 1`.
fn round_keys(key: PhiloxKey) -> [u32; 20] {
    let [mut k0, mut k1] = key.words();
    let mut rk = [0; 20];
    for r in 0..10 {
        rk[2 * r] = k0;
        rk[2 * r + 1] = k1;
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    rk
}

/// The high and low 32-bit halves of `x · m` in each of 16 lanes (`m` in the low half of
/// every 64-bit lane).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn mul_hi_lo(x: __m512i, m: __m512i) -> (__m512i, __m512i) {
    // Products of the even lanes, and of the odd lanes moved down.
    let even = _mm512_mul_epu32(x, m);
    let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(x), m);
    // Swapping the halves of each 64-bit lane of `even` puts its high halves on the even
    // lanes; `odd` already has its high halves on the odd lanes. Likewise for the lows.
    let hi = _mm512_mask_shuffle_epi32::<_MM_PERM_CDAB>(odd, 0x5555, even);
    let lo = _mm512_mask_shuffle_epi32::<_MM_PERM_CDAB>(even, 0xAAAA, odd);
    (hi, lo)
}

/// Philox4x32-10 of 16 counters `[chain_l, quad, h0, h1]`: word `w` of lane `l` is
/// `philox4x32_10([chain_l, quad, h0, h1], key)[w]`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn philox16(rk: &[u32; 20], chains: __m512i, quad: u32, hi: [u32; 2]) -> [__m512i; 4] {
    let m0 = _mm512_set1_epi64(i64::from(M0));
    let m1 = _mm512_set1_epi64(i64::from(M1));
    let mut x0 = chains;
    let mut x1 = _mm512_set1_epi32(quad as i32);
    let mut x2 = _mm512_set1_epi32(hi[0] as i32);
    let mut x3 = _mm512_set1_epi32(hi[1] as i32);
    for r in 0..10 {
        let (hi0, lo0) = mul_hi_lo(x0, m0);
        let (hi1, lo1) = mul_hi_lo(x2, m1);
        // 0x96: a ^ b ^ c.
        x0 = _mm512_ternarylogic_epi32::<0x96>(hi1, x1, _mm512_set1_epi32(rk[2 * r] as i32));
        x2 = _mm512_ternarylogic_epi32::<0x96>(hi0, x3, _mm512_set1_epi32(rk[2 * r + 1] as i32));
        x1 = lo1;
        x3 = lo0;
    }
    [x0, x1, x2, x3]
}

/// `2ʸ` for `y ≤ 0` or NaN: the portable `exp2_nonpos`, operation for operation in the
/// lanes where `y ≥ EXP2_CUTOFF`, and 0 in the others (below the cut-off, and NaN).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn exp2_nonpos16(y: __m512) -> __m512 {
    let c = _mm512_set1_ps;
    let in_range = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(y, c(EXP2_CUTOFF));
    // Out-of-range lanes compute garbage that the final masked scaling discards; the
    // portable code clamps them first, which changes nothing in the lanes kept.
    // `n = round(y)` (nearest, ties to even) and `f = y − n` exactly, as the portable
    // `1.5 · 2²³` trick computes them.
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
    let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
    let f2 = _mm512_mul_ps(f, f);
    let lo = _mm512_add_ps(
        _mm512_add_ps(c(1.0), _mm512_mul_ps(c(C1), f)),
        _mm512_mul_ps(f2, _mm512_add_ps(c(C2), _mm512_mul_ps(c(C3), f))),
    );
    let hi = _mm512_add_ps(c(C4), _mm512_mul_ps(c(C5), f));
    let p = _mm512_add_ps(lo, _mm512_mul_ps(_mm512_mul_ps(f2, f2), hi));
    // `p · 2ⁿ`, exact: the result is a normal number for `n ≥ −124`.
    _mm512_maskz_scalef_ps(in_range, p, n)
}

/// `spin_up(γ_l, w_l)` in 16 lanes, as bit `l` of the result.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn spin_up16(gamma: __m512, words: __m512i) -> __mmask16 {
    let c = _mm512_set1_ps;
    let zero = _mm512_setzero_ps();
    // t = e^{−2|γ|}; `min` puts a NaN field at y = 0 (t = 1, a fair coin) as the portable
    // select does.
    let y = _mm512_min_ps(_mm512_mul_ps(_mm512_abs_ps(gamma), c(-2.0 * LOG2_E)), zero);
    let t = exp2_nonpos16(y);
    let bound = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(gamma, zero), t, c(1.0));
    let u = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(words)),
        c(1.0 / 16_777_216.0),
    );
    _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_mul_ps(u, _mm512_add_ps(c(1.0), t)), bound)
}

/// The 8-lane `f64` halves of 16 `f32` lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn widen(x: __m512) -> [__m512d; 2] {
    [
        _mm512_cvtps_pd(_mm512_castps512_ps256(x)),
        _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(x)),
    ]
}

/// `sample_softmax(θ_l, w_l)` in 16 lanes (`theta[c]` holds category `c`), operation for
/// operation the portable `softmax_lanes`: `f32` weights `exp(θ_c − max)`, `f64` sums,
/// the category is the count of prefix sums `≤ u · total`, uniform when every logit is
/// `−∞`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn softmax16<const K: usize>(theta: &[__m512; K], words: __m512i) -> __m512i {
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for th in theta {
        // `t > max ? t : max`, NaN ignored.
        max = _mm512_max_ps(*th, max);
    }
    let mut weights = [_mm512_setzero_ps(); K];
    let mut total = [_mm512_setzero_pd(); 2];
    for (w, th) in weights.iter_mut().zip(theta) {
        // `θ == max ? 0 : θ − max` (equal infinities give 0, NaN gives NaN).
        let d = _mm512_maskz_sub_ps(_mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(*th, max), *th, max);
        *w = exp2_nonpos16(_mm512_mul_ps(d, _mm512_set1_ps(LOG2_E)));
        let [lo, hi] = widen(*w);
        total = [_mm512_add_pd(total[0], lo), _mm512_add_pd(total[1], hi)];
    }
    let u = [
        _mm512_cvtepu32_pd(_mm512_castsi512_si256(words)),
        _mm512_cvtepu32_pd(_mm512_extracti64x4_epi64::<1>(words)),
    ];
    let scale = _mm512_set1_pd(1.0 / 4_294_967_296.0);
    let target = [
        _mm512_mul_pd(_mm512_mul_pd(u[0], scale), total[0]),
        _mm512_mul_pd(_mm512_mul_pd(u[1], scale), total[1]),
    ];
    let mut acc = [_mm512_setzero_pd(); 2];
    let mut category = _mm512_setzero_si512();
    for w in &weights[..K - 1] {
        let [lo, hi] = widen(*w);
        acc = [_mm512_add_pd(acc[0], lo), _mm512_add_pd(acc[1], hi)];
        let below = u16::from(_mm512_cmp_pd_mask::<_CMP_LE_OQ>(acc[0], target[0]))
            | u16::from(_mm512_cmp_pd_mask::<_CMP_LE_OQ>(acc[1], target[1])) << 8;
        category = _mm512_mask_add_epi32(category, below, category, _mm512_set1_epi32(1));
    }
    let (uniform, _) = mul_hi_lo(words, _mm512_set1_epi64(K as i64));
    let all_neg_inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(max, _mm512_set1_ps(f32::NEG_INFINITY));
    _mm512_mask_blend_epi32(all_neg_inf, category, uniform)
}

/// Sixteen `f32` as a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn vec16(a: &[f32; 16]) -> __m512 {
    _mm512_set_ps(
        a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8], a[7], a[6], a[5], a[4], a[3], a[2],
        a[1], a[0],
    )
}

/// Sixteen bytes as a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn load16(bytes: &[u8]) -> __m128i {
    let x = u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes"));
    _mm_set_epi64x((x >> 64) as i64, x as i64)
}

/// The low bytes of 16 `i32` lanes, written to `out[..16]`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn store16(x: __m512i, out: &mut [u8]) {
    let b = _mm512_cvtepi32_epi8(x);
    out[..8].copy_from_slice(&_mm_extract_epi64::<0>(b).to_le_bytes());
    out[8..16].copy_from_slice(&_mm_extract_epi64::<1>(b).to_le_bytes());
}

/// Where a block update on this kernel reads and writes.
pub(super) struct Job<'a> {
    pub terms: &'a Terms,
    pub draw: Draw,
    pub nodes: Range<usize>,
    pub state: TileState<'a>,
    pub out: Out<'a>,
}

/// The Philox words of a tile's 16-lane groups, one node quad at a time.
struct QuadWords {
    rk: [u32; 20],
    hi: [u32; 2],
    chains: [__m512i; 4],
    groups: usize,
}

impl QuadWords {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn new(draw: Draw, groups: usize) -> QuadWords {
        let iota = iota();
        let mut chains = [iota; 4];
        for (g, c) in chains.iter_mut().enumerate().take(groups) {
            *c = _mm512_add_epi32(
                iota,
                _mm512_set1_epi32(draw.chain0.wrapping_add(16 * g as u32) as i32),
            );
        }
        QuadWords {
            rk: round_keys(draw.key),
            hi: draw.update.counter_hi(),
            chains,
            groups,
        }
    }

    /// `f(j, words)` for every position `j` of `nodes` in order, where `words[g]` holds
    /// the words of `j`'s node quad in group `g` (node `j` uses `words[g][j % 4]`); one
    /// Philox call per quad and group.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn for_each_node(&self, nodes: Range<usize>, mut f: impl FnMut(usize, &[[__m512i; 4]; 4])) {
        let mut j = nodes.start;
        while j < nodes.end {
            let mut words = [[_mm512_setzero_si512(); 4]; 4];
            for (w, &chains) in words.iter_mut().zip(&self.chains).take(self.groups) {
                *w = philox16(&self.rk, chains, (j / 4) as u32, self.hi);
            }
            let quad_end = (j / 4 * 4 + 4).min(nodes.end);
            for jj in j..quad_end {
                f(jj, &words);
            }
            j = quad_end;
        }
    }
}

/// Whether block `fb` in tiles of `W` chains runs here: spin blocks with pairwise terms
/// only (any tile), and categorical blocks of at most [`MAX_K`] categories with pairwise
/// categorical terms only, over tails of at most 16 categories.
pub(super) fn supports<const W: usize>(fb: &FusedBlock) -> bool {
    fb.terms.general.is_empty()
        && match fb.head {
            Head::Spin => W == 1 || W == 16 || W == 64,
            Head::Cat(k) => (W == 16 || W == 64) && k <= MAX_K && fb.terms.cat_rows_fit,
        }
}

/// Run `job` for block `fb` on this kernel if the block is [`supports`]ed and the CPU has
/// the features; `false` (nothing written) otherwise.
pub(super) fn try_update<const W: usize>(fb: &FusedBlock, job: Job<'_>) -> bool {
    if !supports::<W>(fb) {
        return false;
    }
    match fb.head {
        Head::Spin if W == 1 => if_detected(spin_nodes_one_chain, job),
        Head::Spin => if_detected(spin_nodes::<W>, job),
        Head::Cat(1) => if_detected(cat_nodes::<W, 1>, job),
        Head::Cat(2) => if_detected(cat_nodes::<W, 2>, job),
        Head::Cat(3) => if_detected(cat_nodes::<W, 3>, job),
        Head::Cat(4) => if_detected(cat_nodes::<W, 4>, job),
        Head::Cat(5) => if_detected(cat_nodes::<W, 5>, job),
        Head::Cat(6) => if_detected(cat_nodes::<W, 6>, job),
        Head::Cat(7) => if_detected(cat_nodes::<W, 7>, job),
        Head::Cat(8) => if_detected(cat_nodes::<W, 8>, job),
        Head::Cat(k) => unreachable!("{k} categories: not supported here"),
    }
    .is_some()
}

/// New lane masks of positions `nodes` of a spin block with pairwise terms only:
/// `out.bits[j − nodes.start]` is the mask of position `j`, exactly as the portable kernel
/// computes it.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn spin_nodes<const W: usize>(job: Job<'_>) {
    assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
    let groups = W / 16;
    let Job {
        terms: t,
        draw,
        nodes,
        state,
        out,
    } = job;
    QuadWords::new(draw, groups).for_each_node(nodes.clone(), |j, words| {
        let mut acc = [_mm512_set1_ps(t.bias[j]); 4];
        let (e0, e1) = (t.spin_off[j] as usize, t.spin_off[j + 1] as usize);
        for (&i, &w2) in t.spin_idx[e0..e1].iter().zip(&t.spin_w2[e0..e1]) {
            let m = state.bits[i as usize];
            let w = _mm512_set1_ps(w2);
            for (g, a) in acc.iter_mut().enumerate().take(groups) {
                *a = _mm512_mask_add_ps(*a, (m >> (16 * g)) as __mmask16, *a, w);
            }
        }
        let mut mask = 0u64;
        for g in 0..groups {
            mask |= u64::from(spin_up16(acc[g], words[g][j % 4])) << (16 * g);
        }
        out.bits[j - nodes.start] = mask;
    });
}

/// The low 32 bits of `bits[idx_l]` in each lane, indices clamped into `bits`.
///
/// One gather per row of 16 neighbours. (Scalar loads into a mask were slower: LLVM turns
/// them into `vpgatherqq` plus packing, and hiding the loads from it costs more.)
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[allow(unsafe_code)]
fn gather_low_words(idx: __m512i, bits: &[u64]) -> __m512i {
    assert!(!bits.is_empty(), "a gather from an empty state");
    let last = _mm512_set1_epi32(i32::try_from(bits.len() - 1).unwrap_or(i32::MAX));
    let idx = _mm512_min_epu32(idx, last);
    // SAFETY: every lane of `idx` is at most `bits.len() − 1` (the unsigned minimum above;
    // `i32::MAX < bits.len()` when saturated), so each 4-byte read at byte offset `8 · idx`
    // from the start of `bits` lies inside `bits` (the element's low word, little-endian).
    unsafe { _mm512_i32gather_epi32::<8>(idx, bits.as_ptr().cast()) }
}

/// New spins (`out.bits[j − nodes.start]` is 0 or 1) of positions `nodes` of a spin block
/// with pairwise terms only in a one-chain tile: 16 positions are the 16 lanes, and each
/// ELL row of neighbours is one gather and one masked add. Exactly the portable kernel's
/// bits.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn spin_nodes_one_chain(job: Job<'_>) {
    const L: usize = NODE_LANES;
    let Job {
        terms: t,
        draw,
        nodes,
        state,
        out,
    } = job;
    let mut words = [0u32; CHUNK];
    let mut j0 = nodes.start;
    while j0 < nodes.end {
        let j1 = ((j0 / CHUNK + 1) * CHUNK).min(nodes.end);
        fill_words(
            draw.key,
            draw.update,
            j0 as u64..j1 as u64,
            draw.chain0..draw.chain0 + 1,
            &mut words[..j1 - j0],
        );
        for g in j0 / L..j1.div_ceil(L) {
            let g0 = g * L;
            let bias: [f32; L] =
                std::array::from_fn(|l| t.bias.get(g0 + l).copied().unwrap_or(0.0));
            let mut field = vec16(&bias);
            let rows = t.ell_off[g] as usize..t.ell_off[g + 1] as usize;
            for (idx, w2) in t.ell_idx[rows.clone()].iter().zip(&t.ell_w2[rows]) {
                let b = gather_low_words(vec_epi32(idx), state.bits);
                let on = _mm512_test_epi32_mask(b, _mm512_set1_epi32(1));
                field = _mm512_mask_add_ps(field, on, field, vec16(w2));
            }
            let w: [u32; L] = std::array::from_fn(|l| {
                (g0 + l)
                    .checked_sub(j0)
                    .and_then(|i| words[..j1 - j0].get(i))
                    .copied()
                    .unwrap_or(0)
            });
            let up = spin_up16(field, vec_epi32(&w));
            for j in g0.max(j0)..(g0 + L).min(j1) {
                out.bits[j - nodes.start] = u64::from(up >> (j - g0) & 1);
            }
        }
        j0 = j1;
    }
}

/// Sixteen `u32` as a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn vec_epi32(a: &[u32; 16]) -> __m512i {
    let a = a.map(|x| x as i32);
    _mm512_set_epi32(
        a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8], a[7], a[6], a[5], a[4], a[3], a[2],
        a[1], a[0],
    )
}

/// New states of positions `nodes` of a categorical block of `k ≤ MAX_K` categories with
/// pairwise categorical terms only: `W` bytes per position in `out.cats`, exactly as the
/// portable kernel computes them.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn cat_nodes<const W: usize, const K: usize>(job: Job<'_>) {
    assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
    let groups = W / 16;
    let Job {
        terms: t,
        draw,
        nodes,
        state,
        out,
    } = job;
    QuadWords::new(draw, groups).for_each_node(nodes.clone(), |j, words| {
        let (e0, e1) = (t.cat_off[j] as usize, t.cat_off[j + 1] as usize);
        for (g, words) in words.iter().enumerate().take(groups) {
            let mut theta = [_mm512_setzero_ps(); K];
            for (c, th) in theta.iter_mut().enumerate() {
                *th = _mm512_set1_ps(t.bias[j * K + c]);
            }
            for e in e0..e1 {
                // θ_c[l] += W_e[c, x_l]: a lookup by permutation in each row.
                let node = t.cat_idx[e] as usize;
                let x = _mm512_cvtepu8_epi32(load16(&state.cats[node * W + 16 * g..]));
                let rows = &t.cat_rows[t.cat_row_off[e] as usize..][..K];
                for (th, row) in theta.iter_mut().zip(rows) {
                    *th = _mm512_add_ps(*th, _mm512_permutexvar_ps(x, vec16(row)));
                }
            }
            let o = (j - nodes.start) * W + 16 * g;
            store16(softmax16(&theta, words[j % 4]), &mut out.cats[o..o + 16]);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::arch::x86_64::{
        _mm512_add_epi32, _mm512_castps_si512, _mm512_cmpeq_epi32_mask, _mm512_set1_epi32,
    };

    use super::{
        Job, exp2_nonpos16, if_detected, iota, philox16, round_keys, spin_up16, supports,
        try_update, vec_epi32, vec16,
    };
    use crate::fused::kernel::{Draw, Out, Scratch, TileState, update_nodes_portable};
    use crate::fused::plan::{FusedBlock, Head, Terms};
    use crate::kernels::math::{exp2_nonpos, spin_up};
    use crate::kernels::philox::{BlockUpdate, PhiloxKey, philox4x32_10};
    use crate::rng::Key;
    use rand::rand_core::Rng;

    /// Whether the 16-lane Philox words of chains `chain0..chain0 + 16`, node quad `quad`,
    /// equal the scalar definition.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn philox_agrees((key, at, chain0, quad): (PhiloxKey, BlockUpdate, u32, u32)) -> bool {
        let chains = _mm512_add_epi32(iota(), _mm512_set1_epi32(chain0 as i32));
        let words = philox16(&round_keys(key), chains, quad, at.counter_hi());
        let mut ok = true;
        for (w, &v) in words.iter().enumerate() {
            let expect: [u32; 16] = std::array::from_fn(|l| {
                philox4x32_10(at.counter(chain0.wrapping_add(l as u32), quad), key.words())[w]
            });
            ok &= _mm512_cmpeq_epi32_mask(v, vec_epi32(&expect)) == 0xFFFF;
        }
        ok
    }

    /// `spin_up16` as bits, against the scalar decisions.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn decisions((gamma, words): ([f32; 16], [u32; 16])) -> (u16, u16) {
        let got = spin_up16(vec16(&gamma), vec_epi32(&words));
        let expect = (0..16).fold(0u16, |m, l| m | u16::from(spin_up(gamma[l], words[l])) << l);
        (got, expect)
    }

    /// Lanes where `exp2_nonpos16(y)` has the bits of the scalar `exp2_nonpos(y)`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn exp2_agrees(y: [f32; 16]) -> u16 {
        let got = _mm512_castps_si512(exp2_nonpos16(vec16(&y)));
        _mm512_cmpeq_epi32_mask(got, vec_epi32(&y.map(|y| exp2_nonpos(y).to_bits())))
    }

    #[test]
    fn exp2_matches_the_scalar_one() {
        // Every multiple of 1/16 down to below the cut-off (ties of the rounding to the
        // nearest integer included), then random points, −∞ and NaN.
        let mut rng = Key::new(6).chain_rngs(1).remove(0);
        let mut points: Vec<f32> = (0..=2_100).map(|i| -(i as f32) / 16.0).collect();
        points.extend((0..200_000).map(|_| -(rng.next_u32() as f32 / u32::MAX as f32) * 130.0));
        points.extend([f32::NEG_INFINITY, f32::NAN, -0.0, f32::MIN, -1e-30]);
        for chunk in points.chunks(16) {
            let y: [f32; 16] = std::array::from_fn(|l| chunk.get(l).copied().unwrap_or(0.0));
            if let Some(agree) = if_detected(exp2_agrees, y) {
                assert_eq!(agree, u16::MAX, "y = {y:?}");
            }
        }
    }

    #[test]
    fn philox16_matches_the_scalar_definition() {
        for (seed, sweep, block, chain0, quad) in [
            (0u64, 0u64, 0u32, 0u32, 0u32),
            (11, 0x1_2345_6789, 7, 48, 3),
            (12, (1 << 48) - 1, (1 << 16) - 1, u32::MAX - 5, u32::MAX),
        ] {
            let args = (
                PhiloxKey::from_seed(seed),
                BlockUpdate::new(sweep, block),
                chain0,
                quad,
            );
            if let Some(ok) = if_detected(philox_agrees, args) {
                assert!(ok, "seed {seed}, sweep {sweep}, block {block}");
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
            8.317_766,
            8.317_765,
            -42.975_13,
            -42.975_12,
            1e4,
            -1e4,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.5,
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
            let gamma: [f32; 16] = if round < 16 {
                std::array::from_fn(|l| special[(l / 2 + round) % 16])
            } else {
                let g: [f32; 8] = std::array::from_fn(|l| {
                    let scale = [0.01f32, 1.0, 10.0, 60.0][(round + l) % 4];
                    (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
                });
                std::array::from_fn(|l| g[l / 2])
            };
            let words: [u32; 16] = std::array::from_fn(|l| {
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
            if let Some((got, expect)) = if_detected(decisions, (gamma, words)) {
                assert_eq!(got, expect, "fields {gamma:?}");
            }
        }
    }

    /// A random block of `len` positions over `n_tails` tail nodes: spins (`k = None`) or
    /// categoricals of `k` categories whose tails have 2–8 categories; some zero weights,
    /// and for categoricals a position with every logit `−∞` and no tails.
    fn random_block(seed: u64, len: usize, n_tails: usize, k: Option<usize>) -> FusedBlock {
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let mut uniform = |scale: f32| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * scale;
        let mut t = Terms {
            gen_off: vec![0; len + 1],
            cat_rows_fit: true,
            ..Terms::default()
        };
        let tail_k = |node: usize| 2 + node % 7;
        match k {
            None => {
                t.spin_off.push(0);
                for j in 0..len {
                    t.bias.push(uniform([2.0, 30.0, 200.0][j % 3]));
                    for e in 0..(j * 7) % 23 {
                        t.spin_idx.push(((j * 13 + e * 5) % n_tails) as u32);
                        t.spin_w2.push(if e % 5 == 4 { 0.0 } else { uniform(4.0) });
                    }
                    t.spin_off.push(t.spin_idx.len() as u32);
                }
            }
            Some(k) => {
                t.cat_off.push(0);
                for j in 0..len {
                    for _ in 0..k {
                        let b = if j == 3 {
                            f32::NEG_INFINITY
                        } else {
                            uniform(6.0)
                        };
                        t.bias.push(b);
                    }
                    for e in 0..if j == 3 { 0 } else { (j * 3) % 6 } {
                        let node = (j * 11 + e * 3) % n_tails;
                        t.cat_idx.push(node as u32);
                        t.cat_k.push(tail_k(node) as u32);
                        t.cat_tab_off.push(t.cat_tab.len() as u32);
                        t.cat_row_off.push(t.cat_rows.len() as u32);
                        let kp = tail_k(node);
                        for c in 0..k {
                            let mut row = [0.0; 16];
                            for (v, x) in row.iter_mut().enumerate().take(kp) {
                                *x = if (c + v) % 3 == 0 { 0.0 } else { uniform(5.0) };
                                t.cat_tab.push(*x);
                            }
                            t.cat_rows.push(row);
                        }
                    }
                    t.cat_off.push(t.cat_idx.len() as u32);
                }
            }
        }
        if k.is_none() {
            t.build_ell(len);
        }
        FusedBlock {
            block: 3,
            head: k.map_or(Head::Spin, Head::Cat),
            start: 0,
            len,
            terms: t,
        }
    }

    fn kernels_agree<const W: usize>(fb: &FusedBlock, n_tails: usize, seed: u64) {
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let bits: Vec<u64> = (0..n_tails).map(|_| rng.next_u64()).collect();
        let cats: Vec<u8> = (0..n_tails * W)
            .map(|x| (rng.next_u32() % (2 + (x / W) as u32 % 7)) as u8)
            .collect();
        let state = TileState {
            bits: &bits,
            cats: &cats,
        };
        // The portable one-chain kernel takes ranges starting at a multiple of 16 (as the
        // engine passes them); the others any range.
        let (a, b) = if W == 1 { (16, 32) } else { (3, 5) };
        for (chain0, nodes) in [(0, 0..fb.len), (48, a..fb.len - 2), (1000, b..b + 1)] {
            let draw = Draw {
                key: PhiloxKey::from_seed(seed),
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
            let job = Job {
                terms: &fb.terms,
                draw,
                nodes: nodes.clone(),
                state,
                out: Out {
                    bits: &mut bits_b,
                    cats: &mut cats_b,
                },
            };
            assert!(supports::<W>(fb));
            if !try_update::<W>(fb, job) {
                return;
            }
            assert_eq!(bits_a, bits_b, "spin masks, W = {W}, nodes {nodes:?}");
            assert_eq!(cats_a, cats_b, "categories, W = {W}, nodes {nodes:?}");
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
    fn the_avx512_kernel_matches_the_portable_one() {
        for (seed, k) in [(1, None), (2, Some(5)), (3, Some(2)), (4, Some(8))] {
            let fb = random_block(seed, 37, 50, k);
            if k.is_none() {
                kernels_agree::<1>(&fb, 50, seed + 30);
            }
            kernels_agree::<16>(&fb, 50, seed + 10);
            kernels_agree::<64>(&fb, 50, seed + 20);
        }
    }
}
