//! The shared exact-distribution checker (in the spirit of statrs' test checkers).
//!
//! Every sampler test builds a small model, enumerates its exact Boltzmann distribution
//! with `thrml::exact`, draws samples, and calls [`assert_matches_exact`]. Two tests must
//! pass:
//!
//! * the total-variation distance is within `TV_FACTOR` times the noise expected for `n`
//!   independent draws, `½ Σ_x sqrt(2 p(1−p) / (π n))` (the mean of `|p̂ − p|` summed), and
//! * a G-test of the counts against the exact probabilities (cells with expected count
//!   below 5 pooled) has p-value above `MIN_P_VALUE`.
//!
//! Tests thin their chains (several sweeps between samples) and run many chains so draws
//! are close to independent; seeds are fixed, so results are deterministic.
#![allow(dead_code)]

use statrs::distribution::{ChiSquared, ContinuousCDF};
use thrml::exact::ExactDistribution;

/// Allowed TV distance, in units of the independent-draw noise level.
pub const TV_FACTOR: f64 = 3.0;
/// Smallest acceptable G-test p-value.
pub const MIN_P_VALUE: f64 = 1e-4;

/// The outcome of comparing sampled counts with exact probabilities.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Number of draws.
    pub n: usize,
    /// Total-variation distance between empirical and exact distributions.
    pub tv: f64,
    /// Expected TV distance for `n` independent draws.
    pub tv_noise: f64,
    /// G statistic.
    pub g: f64,
    /// Degrees of freedom of the G-test.
    pub dof: usize,
    /// G-test p-value.
    pub p_value: f64,
}

/// Compare `counts[x]` of `n = Σ counts` draws with probabilities `p[x]`.
pub fn compare(p: &[f64], counts: &[u64]) -> Comparison {
    assert_eq!(p.len(), counts.len());
    let n: u64 = counts.iter().sum();
    let nf = n as f64;
    let tv = 0.5
        * p.iter()
            .zip(counts)
            .map(|(&p, &c)| (c as f64 / nf - p).abs())
            .sum::<f64>();
    let tv_noise = 0.5
        * p.iter()
            .map(|&p| (2.0 * p * (1.0 - p) / (std::f64::consts::PI * nf)).sqrt())
            .sum::<f64>();
    // Pool cells with small expected counts.
    let (mut cells, mut pool_e, mut pool_o) = (Vec::new(), 0.0, 0.0);
    for (&p, &c) in p.iter().zip(counts) {
        let e = p * nf;
        if e < 5.0 {
            pool_e += e;
            pool_o += c as f64;
        } else {
            cells.push((e, c as f64));
        }
    }
    if pool_e > 0.0 {
        cells.push((pool_e, pool_o));
    }
    let g = 2.0
        * cells
            .iter()
            .filter(|(_, o)| *o > 0.0)
            .map(|(e, o)| o * (o / e).ln())
            .sum::<f64>();
    let dof = cells.len().saturating_sub(1).max(1);
    let p_value = ChiSquared::new(dof as f64).expect("dof > 0").sf(g);
    Comparison {
        n: n as usize,
        tv,
        tv_noise,
        g,
        dof,
        p_value,
    }
}

/// Assert that sampled joint values (`values[draw][var]`, vars in `exact.vars` order)
/// follow `exact`.
pub fn assert_matches_exact(
    label: &str,
    exact: &ExactDistribution,
    values: &[Vec<usize>],
) -> Comparison {
    let mut counts = vec![0u64; exact.probabilities.len()];
    for i in exact.indices(values) {
        counts[i] += 1;
    }
    let c = compare(&exact.probabilities, &counts);
    eprintln!(
        "{label}: n = {}, TV = {:.5} (noise {:.5}, ratio {:.2}), G = {:.1} on {} dof, p = {:.3e}",
        c.n,
        c.tv,
        c.tv_noise,
        c.tv / c.tv_noise,
        c.g,
        c.dof,
        c.p_value
    );
    assert!(
        c.tv <= TV_FACTOR * c.tv_noise,
        "{label}: TV {:.5} exceeds {TV_FACTOR} × noise {:.5}",
        c.tv,
        c.tv_noise
    );
    assert!(
        c.p_value >= MIN_P_VALUE,
        "{label}: G-test p-value {:.3e} below {MIN_P_VALUE:e} (G = {:.1}, dof {})",
        c.p_value,
        c.g,
        c.dof
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_rejects_a_wrong_distribution() {
        // Exact counts pass; a 5% shift in 100k draws fails both tests.
        let p = [0.25, 0.25, 0.5];
        let good = compare(&p, &[25_000, 25_000, 50_000]);
        assert!(good.tv <= TV_FACTOR * good.tv_noise && good.p_value > MIN_P_VALUE);
        let bad = compare(&p, &[30_000, 20_000, 50_000]);
        assert!(bad.tv > TV_FACTOR * bad.tv_noise && bad.p_value < MIN_P_VALUE);
    }
}
