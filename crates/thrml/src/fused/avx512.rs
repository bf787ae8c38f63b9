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

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _CMP_GE_OQ, _CMP_LT_OQ, _MM_PERM_CDAB, _mm512_abs_ps,
    _mm512_add_epi32, _mm512_add_ps, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask,
    _mm512_cvtepi32_ps, _mm512_mask_add_ps, _mm512_mask_blend_ps, _mm512_mask_shuffle_epi32,
    _mm512_maskz_mov_ps, _mm512_mul_epu32, _mm512_mul_ps, _mm512_set_epi32, _mm512_set1_epi32,
    _mm512_set1_epi64, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32, _mm512_srli_epi32,
    _mm512_srli_epi64, _mm512_sub_ps, _mm512_ternarylogic_epi32,
};
use std::ops::Range;

use super::plan::Terms;
use crate::kernels::math::{C1, C2, C3, C4, C5, EXP2_CUTOFF, LOG2_E, ROUNDER};
use crate::kernels::philox::{BlockUpdate, M0, M1, PhiloxKey, W0, W1};

/// Whether this CPU has AVX-512 Foundation, the one feature the functions here enable;
/// detected once and cached by the standard library.
fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `f(args)` when this CPU has AVX-512F, `None` otherwise.
///
/// Only this module's `#[target_feature(enable = "avx512f")]` functions are passed here:
/// safe functions whose one precondition is the feature, coerced to `unsafe fn` pointers.
/// This is the crate's only `unsafe` block.
#[allow(unsafe_code)]
fn if_detected<A, R>(f: unsafe fn(A) -> R, args: A) -> Option<R> {
    if detected() {
        // SAFETY: `f` is a safe function apart from `#[target_feature(enable = "avx512f")]`,
        // and the CPU has AVX-512F.
        Some(unsafe { f(args) })
    } else {
        None
    }
}

/// 16 lanes `0, 1, …, 15`.
#[inline]
#[target_feature(enable = "avx512f")]
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
#[target_feature(enable = "avx512f")]
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
#[target_feature(enable = "avx512f")]
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

/// `2ʸ` for `y ∈ [EXP2_CUTOFF, 0]`, operation for operation the portable `exp2_in_range`.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp2_in_range(y: __m512) -> __m512 {
    let c = _mm512_set1_ps;
    let shifted = _mm512_add_ps(y, c(ROUNDER));
    let n = _mm512_sub_ps(shifted, c(ROUNDER));
    let f = _mm512_sub_ps(y, n);
    let f2 = _mm512_mul_ps(f, f);
    let lo = _mm512_add_ps(
        _mm512_add_ps(c(1.0), _mm512_mul_ps(c(C1), f)),
        _mm512_mul_ps(f2, _mm512_add_ps(c(C2), _mm512_mul_ps(c(C3), f))),
    );
    let hi = _mm512_add_ps(c(C4), _mm512_mul_ps(c(C5), f));
    let p = _mm512_add_ps(lo, _mm512_mul_ps(_mm512_mul_ps(f2, f2), hi));
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_castps_si512(shifted),
        _mm512_set1_epi32(127),
    )));
    _mm512_mul_ps(p, scale)
}

/// `spin_up(γ_l, w_l)` in 16 lanes, as bit `l` of the result.
#[inline]
#[target_feature(enable = "avx512f")]
fn spin_up16(gamma: __m512, words: __m512i) -> __mmask16 {
    let c = _mm512_set1_ps;
    let zero = _mm512_setzero_ps();
    // t = e^{−2|γ|}: y ≤ 0 (NaN → 0), clamped at the cut-off, 0 below it.
    let y = _mm512_mul_ps(_mm512_abs_ps(gamma), c(-2.0 * LOG2_E));
    let y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, zero), zero, y);
    let in_range = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(y, c(EXP2_CUTOFF));
    let y = _mm512_mask_blend_ps(in_range, c(EXP2_CUTOFF), y);
    let t = _mm512_maskz_mov_ps(in_range, exp2_in_range(y));
    let bound = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(gamma, zero), t, c(1.0));
    let u = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(words)),
        c(1.0 / 16_777_216.0),
    );
    _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_mul_ps(u, _mm512_add_ps(c(1.0), t)), bound)
}

/// A spin block update for [`spin_nodes`].
pub(super) struct SpinJob<'a> {
    pub terms: &'a Terms,
    pub key: PhiloxKey,
    pub update: BlockUpdate,
    pub chain0: u32,
    pub nodes: Range<usize>,
    pub bits: &'a [u64],
    pub out: &'a mut [u64],
}

/// Run `job` on the AVX-512 kernel if this CPU has AVX-512F; `false` if it does not (and
/// nothing was written).
pub(super) fn try_spin_nodes<const W: usize>(job: SpinJob<'_>) -> bool {
    if_detected(spin_nodes::<W>, job).is_some()
}

/// New lane masks of positions `nodes` of a spin block with pairwise terms only, in a tile
/// of `W ∈ {16, 64}` chains from `chain0`: `out[j − nodes.start]` is the mask of position
/// `j`, exactly as the portable kernel computes it.
#[target_feature(enable = "avx512f")]
fn spin_nodes<const W: usize>(job: SpinJob<'_>) {
    assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
    let SpinJob {
        terms: t,
        key,
        update,
        chain0,
        nodes,
        bits,
        out,
    } = job;
    let groups = W / 16;
    let rk = round_keys(key);
    let hi = update.counter_hi();
    let iota = iota();
    let mut chains = [iota; 4];
    for (g, c) in chains.iter_mut().enumerate().take(groups) {
        *c = _mm512_add_epi32(
            iota,
            _mm512_set1_epi32(chain0.wrapping_add(16 * g as u32) as i32),
        );
    }
    let mut j = nodes.start;
    while j < nodes.end {
        let quad = j / 4;
        let mut words = [[iota; 4]; 4];
        for g in 0..groups {
            words[g] = philox16(&rk, chains[g], quad as u32, hi);
        }
        let quad_end = (4 * quad + 4).min(nodes.end);
        for jj in j..quad_end {
            let mut acc = [_mm512_set1_ps(t.bias[jj]); 4];
            let (e0, e1) = (t.spin_off[jj] as usize, t.spin_off[jj + 1] as usize);
            for (&i, &w2) in t.spin_idx[e0..e1].iter().zip(&t.spin_w2[e0..e1]) {
                let m = bits[i as usize];
                let w = _mm512_set1_ps(w2);
                for (g, a) in acc.iter_mut().enumerate().take(groups) {
                    *a = _mm512_mask_add_ps(*a, (m >> (16 * g)) as __mmask16, *a, w);
                }
            }
            let mut mask = 0u64;
            for g in 0..groups {
                mask |= u64::from(spin_up16(acc[g], words[g][jj % 4])) << (16 * g);
            }
            out[jj - nodes.start] = mask;
        }
        j = quad_end;
    }
}

#[cfg(test)]
mod tests {
    use std::arch::x86_64::{
        __m512, __m512i, _mm512_add_epi32, _mm512_cmpeq_epi32_mask, _mm512_set_epi32,
        _mm512_set_ps, _mm512_set1_epi32,
    };

    use super::{if_detected, iota, philox16, round_keys, spin_up16};
    use crate::kernels::math::spin_up;
    use crate::kernels::philox::{BlockUpdate, PhiloxKey, philox4x32_10};
    use crate::rng::Key;
    use rand::rand_core::Rng;

    #[target_feature(enable = "avx512f")]
    fn vec_epi32(a: [u32; 16]) -> __m512i {
        let a = a.map(|x| x as i32);
        _mm512_set_epi32(
            a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8], a[7], a[6], a[5], a[4], a[3],
            a[2], a[1], a[0],
        )
    }

    #[target_feature(enable = "avx512f")]
    fn vec_ps(a: [f32; 16]) -> __m512 {
        _mm512_set_ps(
            a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8], a[7], a[6], a[5], a[4], a[3],
            a[2], a[1], a[0],
        )
    }

    /// Whether the 16-lane Philox words of chains `chain0..chain0 + 16`, node quad `quad`,
    /// equal the scalar definition.
    #[target_feature(enable = "avx512f")]
    fn philox_agrees((key, at, chain0, quad): (PhiloxKey, BlockUpdate, u32, u32)) -> bool {
        let chains = _mm512_add_epi32(iota(), _mm512_set1_epi32(chain0 as i32));
        let words = philox16(&round_keys(key), chains, quad, at.counter_hi());
        let mut ok = true;
        for (w, &v) in words.iter().enumerate() {
            let expect: [u32; 16] = std::array::from_fn(|l| {
                philox4x32_10(at.counter(chain0.wrapping_add(l as u32), quad), key.words())[w]
            });
            ok &= _mm512_cmpeq_epi32_mask(v, vec_epi32(expect)) == 0xFFFF;
        }
        ok
    }

    /// `spin_up16` as bits, against the scalar decisions.
    #[target_feature(enable = "avx512f")]
    fn decisions((gamma, words): ([f32; 16], [u32; 16])) -> (u16, u16) {
        let got = spin_up16(vec_ps(gamma), vec_epi32(words));
        let expect = (0..16).fold(0u16, |m, l| m | u16::from(spin_up(gamma[l], words[l])) << l);
        (got, expect)
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
}
