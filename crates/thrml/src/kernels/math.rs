//! Fast `exp`, sigmoid, spin decisions and softmax draws that stay exact enough.
//!
//! Every conditional probability these functions imply is within `1e-6` absolute of the
//! exact one, for every input: finite, extreme (`|γ|` up to `f32::MAX`), infinite or NaN.
//! No function here returns NaN or overflows, and results saturate to exactly 0 and 1.
//!
//! Only IEEE `+ − × ÷`, fused multiply-adds (`mul_add`), comparisons and bit operations
//! are used, never approximate reciprocals: all are correctly rounded, so the results are
//! bit-identical on every target and SIMD level (`mul_add` is one `vfmadd` with FMA, one
//! `fmadd` on aarch64, and a correctly rounded library call on baseline x86-64, which is
//! slow but gives the same bits). Every branch is a select, so the loops vectorise.
//!
//! # exp
//!
//! [`exp2_fma`] computes `2ˣ` for `x ∈ [−125, 126]`: `n = round(x)` with the `1.5 · 2²³`
//! trick (no `roundps`, so baseline SSE2 vectorises too), `f = x − n ∈ [−½, ½]` exactly,
//! `2ᶠ` from a degree-5 minimax polynomial evaluated by Horner's rule in fused
//! multiply-adds, and `n` added to the exponent bits. [`exp2_nonpos`] is `2ʸ` for `y ≤ 0`:
//! [`exp2_fma`] of the clamped `y`, and exactly 0 below `y = −124`, which keeps every
//! intermediate a normal number (no subnormal slow paths) and gives `−∞` logits
//! probability exactly 0. [`exp_nonpos`]`(x) = exp2_nonpos(x · log₂e)`.
//!
//! Measured (`exp2_and_exp_are_accurate`, 2·10⁶ points): `exp2_nonpos` relative error
//! ≤ 2.4e-7 (4 ulp); `exp_nonpos` relative error ≤ 1.7e-7 · (1 + |x|), the `|x|` term
//! from rounding `x · log₂e`, which only matters where `eˣ` is already tiny.
//!
//! # Sigmoid
//!
//! [`sigmoid2`]`(γ) = σ(2γ) = 1 / (1 + e^{−2γ})` is evaluated as `t = 2^{−2 log₂e · |γ|}
//! ∈ [0, 1]`, `s = 1 / (1 + t)`, and `s` for `γ ≥ 0` or `t · s` for `γ < 0`, so neither side
//! cancels. The relative error of `t` costs at most `t / (1 + t)² ≤ ¼` of itself in
//! absolute terms. It saturates to exactly `1.0` from `γ ≈ 8.32` up and to exactly `0.0` from
//! `γ ≈ −42.98` down (so for `±∞`, `±f32::MAX`, `±1e4`). A NaN field is treated as `γ = 0`:
//! `sigmoid2(NaN) = 0.5`, a fair coin; fields come from weights validated finite upstream,
//! and this keeps NaN out of every output.
//!
//! Measured maximum absolute error against the `f64` formula: 1.04e-7, on a 1.6·10⁷-point
//! grid of `[−20, 20]` plus 2·10⁶ random and special points, and over **every** `f32` bit
//! pattern (`cargo test -p thrml --release --lib -- --ignored sigmoid2_every_f32`, 2 min on
//! 2 cores). See [`SIGMOID2_MAX_ABS_ERROR`].
//!
//! # Spin decisions
//!
//! [`spin_up`]`(γ, w)` is `k · (1 + t) < 2²⁴` evaluated as one fused multiply-add,
//! `fma(k, t, k) < 2²⁴`, with `k = w >> 8` (24 random bits, exact in `f32`) and
//! `t = 2ˣ = e^{−2γ}`, `x = γ · (−2 log₂e)` clamped to `[−125, 126]`: the test
//! `u < σ(2γ) = 1 / (1 + t)` with `u = k · 2⁻²⁴`, without the division. `2ˣ` is
//! [`exp2_fma`]: the nearest integer `n` by the `1.5 · 2²³` trick, a degree-5 polynomial in
//! `f = x − n` by Horner's rule with fused multiply-adds, and `n` added to the exponent
//! bits; the clamp keeps every intermediate a normal number. About 17 vector instructions
//! per 8 lanes.
//!
//! The decision is monotone in `w`, so its probability is a count of the `2²⁴` values of
//! `k`, which `spin_decision_probability_within_1e6` computes exactly (binary search) for
//! 6,000 fields: the largest error against `σ(2γ)` is given there (bound: `2⁻²⁴`
//! quantisation, one rounding of the fused multiply-add, `¼` of the relative error of `t`
//! and the rounding of `x`: below 2.5e-7). Saturation is clean: for `γ ≥ 43.3` (`x` at
//! the clamp `−125`) every `k` goes up, probability exactly 1; for `γ ≤ −43.7` (`x = 126`)
//! only `k = 0` does, probability `2⁻²⁴ ≈ 6e-8`. A NaN field (possible only when a sum of
//! finite weights overflows) clamps to `x = −125`: up.
//!
//! Fused multiply-adds are exact-rounded operations, so the decision is bit-identical on
//! every target: `f32::mul_add` compiles to `vfmadd` on x86-64 with FMA and to `fmadd` on
//! aarch64, and to a correctly rounded library call on baseline x86-64.
//!
//! # Softmax draws
//!
//! [`sample_softmax`] draws `k` with `P(k) = e^{θ_k} / Σ_j e^{θ_j}` from one random word by
//! inverse CDF: `m = max θ`, weights `w_k = exp_nonpos(θ_k − m)` (the maximum has weight
//! exactly 1, so the total is ≥ 1), prefix sums `c_k` in `f64`, and the category is the
//! number of `k < K − 1` with `c_k ≤ u · c_{K−1}`, `u = u01_f64(word)` (branch-free, and
//! never out of range). The implied probability of `k` is `(c_k − c_{k−1}) / c_{K−1}` up to
//! the `2⁻³²` resolution of `u`, so its error is that of the weights (relative error `ε`
//! gives at most `ε/2` absolute) plus `K · 2⁻⁵³` from the sums: below 3e-7 for every
//! `K ≤ 256`. Measured exactly (binary search over all `2³²` words) on 34 logit vectors
//! with `K` up to 256 and spreads up to `2·10⁴` and `f32::MAX`: largest error 3.8e-8.
//!
//! Edge cases: `K = 1` always gives 0; `+∞` logits share the mass equally; `−∞` and NaN
//! logits have probability exactly 0; when every logit is `−∞` or NaN the draw is uniform,
//! `⌊w · K / 2³²⌋`.
//!
//! [`sample_softmax_chains`] is the chain-minor, vectorised form; it returns exactly what
//! [`sample_softmax`] returns for every chain.
//!
//! # Cost
//!
//! The table below was measured on the Intel Xeon of earlier sessions (Emerald Rapids,
//! 3.1 GHz, best of 400 samples), before `exp2` moved to fused multiply-adds; it is kept
//! as the reference for the portable forms until it is re-measured (`cargo bench -p thrml
//! --bench kernels`). ns per item:
//!
//! | function | baseline x86-64 (SSE2) | `x86-64-v3` (AVX2) | `native` (AVX-512VL) |
//! |---|---|---|---|
//! | [`fill_prob_up`], per sigmoid | 1.5 | 0.72 | 0.74 |
//! | [`fill_spins`], per spin decision | 1.7 | 0.77 | 0.74 |
//! | [`sample_softmax_chains`], K = 5, per draw | 13.7 | 5.7 | 5.6–6.5 |
//! | [`sample_softmax`], K = 5, per draw (scalar reference) | 65 | 52 | 53–64 |
//! | `f64` `1 / (1 + exp(−2γ))`, per sigmoid (for comparison) | 7.0 | 5.0 | 7.3 |
//!
//! With fused multiply-adds a spin decision is 17 vector instructions per 8 lanes (the
//! AVX2 kernel's `spin_up8`), against about 25 before. Baseline x86-64 has no FMA
//! instruction, so there every `mul_add` is a library call: correct, and much slower.

use super::aes::u01_f64;

/// Below this argument [`exp2_nonpos`] returns exactly 0 (`2⁻¹²⁴`, the smallest power
/// whose products with the polynomial stay normal).
pub const EXP2_CUTOFF: f32 = -124.0;

/// The largest absolute error of [`sigmoid2`] against the `f64` formula
/// `1 / (1 + exp(−2γ))`, measured over every `f32` `γ`.
pub const SIGMOID2_MAX_ABS_ERROR: f64 = 1.2e-7;

pub(crate) const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `1.5 · 2²³`: adding and subtracting it rounds an `f32` of magnitude `< 2²²` to an
/// integer, and leaves that integer in the low mantissa bits of the sum.
pub(crate) const ROUNDER: f32 = 12_582_912.0;
/// `2^f ≈ 1 + Σ C_k f^k` on `|f| ≤ 1/2`: a degree-5 minimax fit of the relative error
/// (Lawson's algorithm, coefficients rounded to `f32`): 9.1e-8 before rounding, 1.9e-7
/// evaluated in `f32`.
// Fitted, not `LN_2`: the minimax coefficient differs from ln 2 in the last bits.
#[allow(clippy::approx_constant)]
pub(crate) const C1: f32 = 0.693_147;
pub(crate) const C2: f32 = 0.240_222_42;
pub(crate) const C3: f32 = 0.055_507_336;
pub(crate) const C4: f32 = 0.009_671_513;
pub(crate) const C5: f32 = 0.001_326_472_7;

/// `2ʸ` for `y ∈ [EXP2_CUTOFF, 0]`.
#[inline(always)]
fn exp2_in_range(y: f32) -> f32 {
    exp2_fma(y)
}

/// `2ʸ` for `y ≤ 0`, accurate to 4 ulp; exactly 0 for `y < −124`, for `−∞` and for
/// NaN. Inputs above 0 are treated as 0 (the result is 1).
///
/// # Example
///
/// ```
/// use thrml::kernels::math::exp2_nonpos;
/// assert_eq!(exp2_nonpos(0.0), 1.0);
/// assert_eq!(exp2_nonpos(-3.0), 0.125);
/// assert_eq!(exp2_nonpos(f32::NEG_INFINITY), 0.0);
/// assert_eq!(exp2_nonpos(f32::NAN), 0.0);
/// ```
#[inline]
#[must_use]
pub fn exp2_nonpos(y: f32) -> f32 {
    // Selects written as `cmp ? a : b` map to single `maxps`/`minps`/blends; NaN takes the
    // `else` arm.
    let in_range = y >= EXP2_CUTOFF;
    let y = if y >= EXP2_CUTOFF { y } else { EXP2_CUTOFF };
    let y = if y < 0.0 { y } else { 0.0 };
    let v = exp2_in_range(y);
    if in_range { v } else { 0.0 }
}

/// `eˣ` for `x ≤ 0`: [`exp2_nonpos`]`(x · log₂e)`. Exactly 0 below `x = −85.95026`, for
/// `−∞` and for NaN; 1 for `x ≥ 0`.
///
/// Relative error ≤ 1.7e-7 · (1 + |x|): the rounding of `x · log₂e` adds up to
/// `|x| · 2⁻²⁴`, which matters only where `eˣ` is already tiny (`eˣ · |x| ≤ 1/e`).
///
/// # Example
///
/// ```
/// use thrml::kernels::math::exp_nonpos;
/// assert_eq!(exp_nonpos(0.0), 1.0);
/// assert!((exp_nonpos(-1.0) - (-1.0f32).exp()).abs() < 1e-7);
/// assert_eq!(exp_nonpos(f32::NEG_INFINITY), 0.0);
/// assert_eq!(exp_nonpos(f32::NAN), 0.0);
/// ```
#[inline]
#[must_use]
pub fn exp_nonpos(x: f32) -> f32 {
    exp2_nonpos(x * LOG2_E)
}

/// `σ(2γ) = 1 / (1 + e^{−2γ})`, the probability that a spin with field `γ` is `+1`.
///
/// Within [`SIGMOID2_MAX_ABS_ERROR`] of the exact value for every `γ`; exactly 0 or 1 when
/// saturated (`±∞` included); `0.5` for NaN.
///
/// # Example
///
/// ```
/// use thrml::kernels::math::sigmoid2;
/// assert_eq!(sigmoid2(0.0), 0.5);
/// assert!((sigmoid2(0.5) - 0.731_058_6).abs() < 2e-7); // σ(1)
/// assert_eq!((sigmoid2(1e4), sigmoid2(f32::NEG_INFINITY)), (1.0, 0.0));
/// ```
#[inline]
#[must_use]
pub fn sigmoid2(gamma: f32) -> f32 {
    let t = exp_neg_2abs(gamma);
    let s = 1.0 / (1.0 + t);
    if gamma >= 0.0 { s } else { t * s }
}

/// `e^{−2|γ|} ∈ [0, 1]`; 1 for NaN.
#[inline(always)]
fn exp_neg_2abs(gamma: f32) -> f32 {
    let y = gamma.abs() * (-2.0 * LOG2_E);
    // NaN → 0, so t = 1 and both halves of the sigmoid give 0.5.
    let y = if y < 0.0 { y } else { 0.0 };
    let in_range = y >= EXP2_CUTOFF;
    let y = if y >= EXP2_CUTOFF { y } else { EXP2_CUTOFF };
    let v = exp2_in_range(y);
    if in_range { v } else { 0.0 }
}

/// `out[i] = sigmoid2(gamma[i])`.
///
/// # Panics
/// If the lengths differ.
pub fn fill_prob_up(gamma: &[f32], out: &mut [f32]) {
    assert_eq!(gamma.len(), out.len(), "gamma and out lengths");
    for (o, &g) in out.iter_mut().zip(gamma) {
        *o = sigmoid2(g);
    }
}

/// `−2 log₂e`: the factor that turns a spin's field `γ` into the exponent `x` of
/// `t = 2ˣ = e^{−2γ}` in [`spin_up`].
pub const SPIN_EXP_SCALE: f32 = -2.0 * LOG2_E;
/// The clamp of the exponent in [`spin_up`]: `2ˣ` stays a normal number after the
/// exponent bits are added, and saturates far beyond the decision's `2⁻²⁴` resolution.
pub const SPIN_EXP_MIN: f32 = -125.0;
/// See [`SPIN_EXP_MIN`].
pub const SPIN_EXP_MAX: f32 = 126.0;

/// `2ˣ` for `x ∈ [SPIN_EXP_MIN, SPIN_EXP_MAX]`, with fused multiply-adds: relative error
/// below 2.5e-7 (see `exp2_fma_is_accurate`).
///
/// # Example
///
/// ```
/// use thrml::kernels::math::exp2_fma;
/// assert_eq!(exp2_fma(0.0), 1.0);
/// assert_eq!(exp2_fma(-3.0), 0.125);
/// assert!((exp2_fma(0.5) - std::f32::consts::SQRT_2).abs() < 3e-7);
/// ```
#[inline(always)]
#[must_use]
pub fn exp2_fma(x: f32) -> f32 {
    let shifted = x + ROUNDER;
    // Exact: `n` is the integer nearest `x`, and `f ∈ [−½, ½]`.
    let n = shifted - ROUNDER;
    let f = x - n;
    let p = C5
        .mul_add(f, C4)
        .mul_add(f, C3)
        .mul_add(f, C2)
        .mul_add(f, C1)
        .mul_add(f, 1.0);
    // The low mantissa bits of `shifted` hold `n` (two's complement); shifted into the
    // exponent field they scale `p ∈ [2^−½, 2^½]` by `2ⁿ`.
    f32::from_bits(p.to_bits().wrapping_add(shifted.to_bits() << 23))
}

/// Whether a spin with field `γ` goes up, given 32 random bits: `P(true) = σ(2γ)` within
/// `2.5e-7` (see the module docs).
///
/// # Example
///
/// ```
/// use thrml::kernels::math::spin_up;
/// assert!(spin_up(1e4, u32::MAX));
/// assert!(!spin_up(-1e4, 0x100));
/// assert!(spin_up(0.0, 0x7fff_ffff) && !spin_up(0.0, 0x8000_0000));
/// ```
#[inline(always)]
#[must_use]
pub fn spin_up(gamma: f32, word: u32) -> bool {
    let x = gamma * SPIN_EXP_SCALE;
    // `maxps`/`minps` order: NaN takes the `else` arm.
    let x = if x > SPIN_EXP_MIN { x } else { SPIN_EXP_MIN };
    let x = if x < SPIN_EXP_MAX { x } else { SPIN_EXP_MAX };
    let t = exp2_fma(x);
    let k = ((word >> 8) as i32) as f32;
    k.mul_add(t, k) < 16_777_216.0
}

/// `out[i] = spin_up(gamma[i], words[i])`.
///
/// # Panics
/// If the lengths differ.
pub fn fill_spins(gamma: &[f32], words: &[u32], out: &mut [bool]) {
    assert_eq!(gamma.len(), out.len(), "gamma and out lengths");
    assert_eq!(words.len(), out.len(), "words and out lengths");
    for ((o, &g), &w) in out.iter_mut().zip(gamma).zip(words) {
        *o = spin_up(g, w);
    }
}

/// The softmax weight of logit `theta` when the largest logit is `max`.
#[inline]
fn softmax_weight(theta: f32, max: f32) -> f32 {
    // `theta == max` also covers `+∞ == +∞`, where `theta − max` would be NaN.
    let d = if theta == max { 0.0 } else { theta - max };
    exp_nonpos(d)
}

/// The largest logit, ignoring NaN; `−∞` if there is none.
#[inline]
fn max_logit(theta: &[f32]) -> f32 {
    theta
        .iter()
        .fold(f32::NEG_INFINITY, |m, &t| if t > m { t } else { m })
}

/// The largest number of categories [`sample_softmax`] and [`sample_softmax_chains`] take.
pub const MAX_CATEGORIES: usize = 256;

/// A category `k ∈ 0..theta.len()` drawn with `P(k) ∝ exp(θ_k)` from 32 random bits.
///
/// Each implied probability is within 3e-7 of the exact softmax (see the module docs for
/// the edge cases: `±∞`, NaN, all `−∞`).
///
/// # Panics
/// If `theta` is empty or longer than [`MAX_CATEGORIES`].
///
/// # Example
///
/// ```
/// use thrml::kernels::math::sample_softmax;
/// let theta = [0.0, f32::NEG_INFINITY, 2.0];
/// assert_eq!(sample_softmax(&theta, 0), 0);
/// assert_eq!(sample_softmax(&theta, u32::MAX), 2);
/// assert_eq!(sample_softmax(&[3.5], 12345), 0);
/// ```
#[inline]
#[must_use]
pub fn sample_softmax(theta: &[f32], word: u32) -> usize {
    let k = theta.len();
    assert!(
        (1..=MAX_CATEGORIES).contains(&k),
        "softmax over {k} categories"
    );
    let u = u01_f64(word);
    let max = max_logit(theta);
    if max == f32::NEG_INFINITY {
        return uniform_category(word, k);
    }
    // Recomputing the weights in the second pass is cheaper than a stack buffer's
    // initialisation for small K, and bit-identical.
    let total = theta
        .iter()
        .fold(0.0f64, |acc, &t| acc + f64::from(softmax_weight(t, max)));
    let target = u * total;
    let mut acc = 0.0f64;
    let mut category = 0;
    for &t in &theta[..k - 1] {
        acc += f64::from(softmax_weight(t, max));
        category += usize::from(acc <= target);
    }
    category
}

/// `⌊word · k / 2³²⌋`, uniform over `0..k` to within `2⁻³²`.
#[inline]
fn uniform_category(word: u32, k: usize) -> usize {
    ((u64::from(word) * k as u64) >> 32) as usize
}

/// Chains per step of [`sample_softmax_chains`].
const SOFTMAX_LANES: usize = 16;
/// Categories whose weights [`sample_softmax_chains`] keeps between its two passes; the
/// weights of later categories are recomputed (bit-identically).
const SOFTMAX_CACHED: usize = 16;

/// [`sample_softmax`] for many chains at once, chain-minor: with `n = words.len()` chains
/// and `K = theta.len() / n` categories, chain `i` has logits `theta[k · n + i]` and draws
/// `out[i]` with `words[i]`. Vectorised across chains; `out[i]` equals
/// `sample_softmax(&[theta[i], theta[n + i], …], words[i])` bit for bit.
///
/// # Panics
/// If `out.len() != words.len()`, `theta.len()` is not a positive multiple of `n`, or
/// `K > MAX_CATEGORIES`.
#[inline(always)]
pub fn sample_softmax_chains(theta: &[f32], words: &[u32], out: &mut [u8]) {
    const L: usize = SOFTMAX_LANES;
    let n = words.len();
    assert_eq!(out.len(), n, "words and out lengths");
    if n == 0 {
        return;
    }
    assert!(
        !theta.is_empty() && theta.len().is_multiple_of(n),
        "theta is not K × {n} logits"
    );
    let k = theta.len() / n;
    assert!(k <= MAX_CATEGORIES, "{k} categories > {MAX_CATEGORIES}");
    let mut cache = [[0.0f32; L]; SOFTMAX_CACHED];
    let full = n - n % L;
    for i0 in (0..full).step_by(L) {
        let row = |c: usize| -> [f32; L] {
            theta[c * n + i0..c * n + i0 + L]
                .try_into()
                .expect("a full chunk")
        };
        let words: &[u32; L] = words[i0..i0 + L].try_into().expect("a full chunk");
        let out: &mut [u8; L] = (&mut out[i0..i0 + L]).try_into().expect("a full chunk");
        softmax_lanes(k, row, words, out, &mut cache);
    }
    if full < n {
        // The last chains, padded with zero logits whose draws are dropped.
        let m = n - full;
        let row = |c: usize| -> [f32; L] {
            let mut r = [0.0f32; L];
            r[..m].copy_from_slice(&theta[c * n + full..(c + 1) * n]);
            r
        };
        let mut tail_words = [0u32; L];
        tail_words[..m].copy_from_slice(&words[full..]);
        let mut tail_out = [0u8; L];
        softmax_lanes(k, row, &tail_words, &mut tail_out, &mut cache);
        out[full..].copy_from_slice(&tail_out[..m]);
    }
}

/// One step of [`sample_softmax_chains`]: `L` chains, logits of category `c` in `row(c)`.
///
/// The `f32` weights and the `f64` sums sit in separate loops, so that each vectorises at
/// its own full width.
#[inline(always)]
fn softmax_lanes<const L: usize>(
    k: usize,
    row: impl Fn(usize) -> [f32; L],
    words: &[u32; L],
    out: &mut [u8; L],
    cache: &mut [[f32; L]; SOFTMAX_CACHED],
) {
    let mut max = [f32::NEG_INFINITY; L];
    for c in 0..k {
        for (mx, &t) in max.iter_mut().zip(&row(c)) {
            *mx = if t > *mx { t } else { *mx };
        }
    }
    let weights = |c: usize| -> [f32; L] {
        let mut w = [0.0f32; L];
        for ((w, &t), &mx) in w.iter_mut().zip(&row(c)).zip(&max) {
            *w = softmax_weight(t, mx);
        }
        w
    };
    let mut total = [0.0f64; L];
    for c in 0..k {
        let w = weights(c);
        if let Some(slot) = cache.get_mut(c) {
            *slot = w;
        }
        for (tot, &w) in total.iter_mut().zip(&w) {
            *tot += f64::from(w);
        }
    }
    let mut target = [0.0f64; L];
    for ((tg, &tot), &w) in target.iter_mut().zip(&total).zip(words) {
        *tg = u01_f64(w) * tot;
    }
    let mut acc = [0.0f64; L];
    let mut category = [0u32; L];
    for c in 0..k - 1 {
        let w = cache.get(c).copied().unwrap_or_else(|| weights(c));
        for l in 0..L {
            acc[l] += f64::from(w[l]);
            category[l] += u32::from(acc[l] <= target[l]);
        }
    }
    for l in 0..L {
        out[l] = if max[l] == f32::NEG_INFINITY {
            uniform_category(words[l], k) as u32
        } else {
            category[l]
        } as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact `σ(2γ)` in `f64`.
    fn sigmoid2_f64(gamma: f32) -> f64 {
        let x = 2.0 * f64::from(gamma);
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The exact probability that a decision monotone in the word picks each outcome:
    /// `pick(w)` must be non-decreasing in `w`. Binary search for each boundary.
    fn implied_distribution(n_outcomes: usize, pick: impl Fn(u32) -> usize) -> Vec<f64> {
        let mut cdf = Vec::with_capacity(n_outcomes);
        for k in 0..n_outcomes {
            // Number of words w with pick(w) <= k.
            let (mut lo, mut hi) = (0u64, 1u64 << 32);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if pick(mid as u32) <= k {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            cdf.push(lo as f64 / 4_294_967_296.0);
        }
        let mut p = cdf.clone();
        for k in (1..n_outcomes).rev() {
            p[k] -= cdf[k - 1];
        }
        p
    }

    #[test]
    fn exp2_fma_is_accurate() {
        let mut worst = 0.0f64;
        let mut s = 5u64;
        let mut xs: Vec<f32> = (0..2_000_001)
            .map(|i| SPIN_EXP_MIN + i as f32 * (251.0 / 2e6))
            .collect();
        xs.extend(
            (0..1_000_000).map(|_| (splitmix(&mut s) as u32 as f32 / u32::MAX as f32 - 0.5) * 2.0),
        );
        xs.extend([SPIN_EXP_MIN, SPIN_EXP_MAX, 0.0, -0.0, 0.5, -0.5, 1e-30]);
        for &x in &xs {
            let got = f64::from(exp2_fma(x));
            let want = f64::from(x).exp2();
            let rel = (got - want).abs() / want;
            worst = worst.max(rel);
            assert!(rel < 2.5e-7, "2^{x}: {got} vs {want}");
        }
        println!("exp2_fma: max relative error {worst:e}");
    }

    #[test]
    fn exp2_and_exp_are_accurate() {
        let (mut worst2, mut worst) = (0.0f64, 0.0f64);
        let n = 2_000_000;
        for i in 0..=n {
            let y = EXP2_CUTOFF * i as f32 / n as f32;
            let want = f64::from(y).exp2();
            worst2 = worst2.max((f64::from(exp2_nonpos(y)) - want).abs() / want);
            let x = -85.9 * i as f32 / n as f32;
            let want = f64::from(x).exp();
            // The rounding of x · log2(e) costs up to |x| · 2^-24, relative.
            let rel = (f64::from(exp_nonpos(x)) - want).abs() / want;
            worst = worst.max(rel / (1.0 + f64::from(-x)));
        }
        println!("exp2_nonpos: max relative error {worst2:e}; exp_nonpos: {worst:e} · (1 + |x|)");
        assert!(worst2 < 3e-7, "exp2: max relative error {worst2}");
        assert!(worst < 3e-7, "exp: max relative error {worst} · (1 + |x|)");
        for i in 0..=124 {
            assert_eq!(exp2_nonpos(-(i as f32)), (-(i as f32)).exp2(), "2^-{i}");
        }
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-0.0), 1.0);
        assert_eq!(exp_nonpos(5.0), 1.0);
        assert_eq!(exp_nonpos(f32::INFINITY), 1.0);
        assert!(exp2_nonpos(EXP2_CUTOFF).is_normal());
        for x in [-86.0, -87.0, -1e4, f32::MIN, f32::NEG_INFINITY, f32::NAN] {
            assert_eq!(exp_nonpos(x).to_bits(), 0, "exp({x})");
        }
        for y in [-124.001, -125.0, f32::NEG_INFINITY, f32::NAN] {
            assert_eq!(exp2_nonpos(y).to_bits(), 0, "exp2({y})");
        }
        // Monotone on consecutive floats, across many reduction boundaries.
        let mut prev = 0.0;
        let mut bits = (-124.0f32).to_bits();
        while bits > (-0.0f32).to_bits() {
            let y = f32::from_bits(bits);
            let v = exp2_nonpos(y);
            assert!(v >= prev, "not monotone at {y}");
            prev = v;
            bits -= 2711;
        }
    }

    /// Dense grid over [−20, 20] (1.6e7 points, step 2.5e-6, plus the 2e5 floats nearest
    /// 0), random points up to ±1e4 and over every exponent, and the specials.
    #[test]
    fn sigmoid2_error_below_1e6_everywhere() {
        let mut worst = (0.0f64, 0.0f32);
        let mut check = |g: f32| {
            let got = sigmoid2(g);
            assert!((0.0..=1.0).contains(&got), "sigmoid2({g}) = {got}");
            let err = (f64::from(got) - sigmoid2_f64(g)).abs();
            if err > worst.0 {
                worst = (err, g);
            }
        };
        let n = 16_000_000;
        for i in 0..=n {
            check(-20.0 + 40.0 * (i as f64 / n as f64) as f32);
        }
        for i in 0..100_000u32 {
            check(f32::from_bits(i * 9973));
            check(-f32::from_bits(i * 9973));
        }
        let mut s = 5u64;
        for _ in 0..1_000_000 {
            let r = splitmix(&mut s);
            check((r as u32 as f32 / u32::MAX as f32 - 0.5) * 2e4);
            let bits = (r >> 32) as u32;
            let g = f32::from_bits(bits);
            if !g.is_nan() {
                check(g);
            }
        }
        for g in [
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e4,
            -1e4,
            0.0,
            -0.0,
        ] {
            check(g);
        }
        println!("sigmoid2: max abs error {:e} at γ = {}", worst.0, worst.1);
        assert!(
            worst.0 <= SIGMOID2_MAX_ABS_ERROR,
            "max abs error {} at γ = {}",
            worst.0,
            worst.1
        );
        assert_eq!(sigmoid2(f32::INFINITY), 1.0);
        assert_eq!(sigmoid2(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid2(f32::MAX), 1.0);
        assert_eq!(sigmoid2(f32::MIN), 0.0);
        assert_eq!(sigmoid2(1e4), 1.0);
        assert_eq!(sigmoid2(-1e4), 0.0);
        assert_eq!(sigmoid2(f32::NAN), 0.5);
        assert_eq!(sigmoid2(-f32::NAN), 0.5);
    }

    /// Every `f32` bit pattern, on all cores: `cargo test -p thrml --release -- --ignored
    /// sigmoid2_every_f32 --nocapture`.
    #[test]
    #[ignore = "4.3e9 evaluations; run on demand"]
    fn sigmoid2_every_f32() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let chunk = (1u64 << 32).div_ceil(threads);
        let worst = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        let mut worst = (0.0f64, 0u32);
                        for bits in t * chunk..((t + 1) * chunk).min(1 << 32) {
                            let g = f32::from_bits(bits as u32);
                            let got = sigmoid2(g);
                            let want = if g.is_nan() { 0.5 } else { sigmoid2_f64(g) };
                            let err = (f64::from(got) - want).abs();
                            assert!((0.0..=1.0).contains(&got));
                            if err > worst.0 {
                                worst = (err, bits as u32);
                            }
                        }
                        worst
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
        });
        println!(
            "max abs error {:e} at γ = {}",
            worst.0,
            f32::from_bits(worst.1)
        );
        assert!(worst.0 <= SIGMOID2_MAX_ABS_ERROR);
    }

    #[test]
    fn spin_decision_probability_within_1e6() {
        let mut s = 9u64;
        let mut gammas: Vec<f32> = (0..4000).map(|i| -20.0 + 0.01 * i as f32).collect();
        gammas.extend(
            (0..2000).map(|_| (splitmix(&mut s) as u32 as f32 / u32::MAX as f32 - 0.5) * 2e4),
        );
        gammas.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            8.7,
            -8.7,
            43.0,
            -43.0,
            f32::MAX,
            f32::MIN,
        ]);
        gammas.extend([f32::INFINITY, f32::NEG_INFINITY]);
        let mut worst = 0.0f64;
        for &g in &gammas {
            // `spin_up` is true for small words: outcome 0 = up.
            let p = implied_distribution(2, |w| usize::from(!spin_up(g, w)));
            let err = (p[0] - sigmoid2_f64(g)).abs();
            worst = worst.max(err);
            assert!(
                err <= 2.5e-7,
                "γ = {g}: P(up) = {} vs {}",
                p[0],
                sigmoid2_f64(g)
            );
        }
        println!("spin decision: max abs error {worst:e}");
        // Exact saturation: never flips against an infinite or huge field.
        for w in [0, 1, 255, 256, u32::MAX] {
            assert!(spin_up(f32::INFINITY, w) && spin_up(1e4, w) && spin_up(f32::NAN, w));
        }
        // Against −∞ only `k = 0` (the 256 smallest words) goes up.
        for w in [256, 257, 1 << 31, u32::MAX] {
            assert!(!spin_up(f32::NEG_INFINITY, w) && !spin_up(-1e4, w));
        }
        assert!(spin_up(f32::NEG_INFINITY, 255) && spin_up(f32::MIN, 0));
    }

    #[test]
    fn slice_forms_match_scalar() {
        let mut s = 3u64;
        let gamma: Vec<f32> = (0..1000)
            .map(|_| (splitmix(&mut s) as u32 as f32 / u32::MAX as f32 - 0.5) * 40.0)
            .collect();
        let words: Vec<u32> = (0..1000).map(|_| splitmix(&mut s) as u32).collect();
        let mut prob = vec![0.0; 1000];
        fill_prob_up(&gamma, &mut prob);
        let mut spins = vec![false; 1000];
        fill_spins(&gamma, &words, &mut spins);
        for i in 0..1000 {
            assert_eq!(prob[i].to_bits(), sigmoid2(gamma[i]).to_bits());
            assert_eq!(spins[i], spin_up(gamma[i], words[i]));
        }
    }

    /// The exact softmax in `f64` (NaN logits count as −∞; all −∞ → uniform).
    fn softmax_f64(theta: &[f32]) -> Vec<f64> {
        let clean: Vec<f64> = theta
            .iter()
            .map(|&t| {
                if t.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    f64::from(t)
                }
            })
            .collect();
        let max = clean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return vec![1.0 / theta.len() as f64; theta.len()];
        }
        if max == f64::INFINITY {
            let n_inf = clean.iter().filter(|&&t| t == max).count() as f64;
            return clean
                .iter()
                .map(|&t| if t == max { 1.0 / n_inf } else { 0.0 })
                .collect();
        }
        let w: Vec<f64> = clean.iter().map(|&t| (t - max).exp()).collect();
        let total: f64 = w.iter().sum();
        w.iter().map(|x| x / total).collect()
    }

    fn softmax_cases() -> Vec<Vec<f32>> {
        let mut s = 17u64;
        let mut uniform =
            |scale: f32| (splitmix(&mut s) as u32 as f32 / u32::MAX as f32 - 0.5) * scale;
        let mut cases: Vec<Vec<f32>> = vec![
            vec![0.0],
            vec![f32::NEG_INFINITY],
            vec![0.0; 5],
            vec![1.0; 256],
            vec![0.0, f32::NEG_INFINITY, 2.0],
            vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 7.0, f32::NEG_INFINITY],
            vec![f32::NEG_INFINITY; 5],
            vec![f32::NAN, f32::NEG_INFINITY, f32::NAN],
            vec![f32::NAN, 1.0, f32::NAN, 1.0],
            vec![
                f32::INFINITY,
                3.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
            ],
            vec![1e4, -1e4, 0.0, 1e4 - 1.0, f32::MAX, f32::MIN],
            vec![-1e4, -1e4 + 0.5, -1e4 - 0.5],
            vec![f32::MAX, f32::MAX],
            vec![0.0, 16.0, 16.0, 0.0, -16.0],
        ];
        for k in [2, 5, 17, 64, 256] {
            for scale in [0.1, 4.0, 40.0, 2e4] {
                cases.push((0..k).map(|_| uniform(scale)).collect());
            }
        }
        cases
    }

    #[test]
    fn softmax_implied_probabilities_within_1e6() {
        let mut worst = 0.0f64;
        for theta in softmax_cases() {
            let p = implied_distribution(theta.len(), |w| sample_softmax(&theta, w));
            let want = softmax_f64(&theta);
            for (k, (&got, &exact)) in p.iter().zip(&want).enumerate() {
                let err = (got - exact).abs();
                worst = worst.max(err);
                assert!(err <= 1e-6, "θ = {theta:?}: P({k}) = {got} vs {exact}");
                if exact == 0.0 {
                    assert_eq!(got, 0.0, "θ = {theta:?}: impossible category {k} drawn");
                }
            }
        }
        println!("softmax: max abs error {worst:e}");
    }

    #[test]
    fn softmax_chains_match_scalar() {
        let cases = softmax_cases();
        let mut s = 23u64;
        for k in [1usize, 2, 5, 17, 256] {
            let rows: Vec<&Vec<f32>> = cases.iter().filter(|c| c.len() == k).collect();
            // n chains, each taking one of the cases of this K (cyclically), chain-minor.
            for n in [1usize, 3, 16, 37] {
                let mut theta = vec![0.0f32; k * n];
                for i in 0..n {
                    for c in 0..k {
                        theta[c * n + i] = rows[i % rows.len()][c];
                    }
                }
                let words: Vec<u32> = (0..n).map(|_| splitmix(&mut s) as u32).collect();
                let mut out = vec![0u8; n];
                sample_softmax_chains(&theta, &words, &mut out);
                for i in 0..n {
                    let want = sample_softmax(rows[i % rows.len()], words[i]);
                    assert_eq!(usize::from(out[i]), want, "K {k} n {n} chain {i}");
                }
            }
        }
        sample_softmax_chains(&[], &[], &mut []);
    }

    #[test]
    fn softmax_draw_frequencies() {
        // Drawing with AES words reproduces the exact probabilities (a sanity check of
        // the words-to-category path; the exact bound is the implied-distribution test).
        use crate::kernels::aes::{BlockUpdate, WordKey, fill_words};
        let theta = [0.3f32, -1.0, 2.0, 0.0, 1.5];
        let n = 200_000;
        let mut words = vec![0u32; n];
        fill_words(
            &WordKey::from_seed(4),
            BlockUpdate::new(0, 0),
            0..1,
            0..n as u32,
            &mut words,
        );
        let mut counts = [0usize; 5];
        for &w in &words {
            counts[sample_softmax(&theta, w)] += 1;
        }
        for (k, &p) in softmax_f64(&theta).iter().enumerate() {
            let freq = counts[k] as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((freq - p).abs() < 5.0 * sd, "category {k}: {freq} vs {p}");
        }
    }
}
