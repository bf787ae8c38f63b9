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

pub mod linalg;

use rand::RngExt;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use thrml::exact::ExactDistribution;
use thrml::{Key, State, Tensor};

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

impl Comparison {
    /// TV distance in units of the independent-draw noise level.
    pub fn tv_ratio(&self) -> f64 {
        self.tv / self.tv_noise
    }

    /// Whether both tests of [`assert_matches_exact`] pass.
    pub fn passes(&self) -> bool {
        self.tv <= TV_FACTOR * self.tv_noise && self.p_value >= MIN_P_VALUE
    }
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

/// Histogram of sampled joint values (`values[draw][var]`) over the states of `exact`.
pub fn histogram(exact: &ExactDistribution, values: &[Vec<usize>]) -> Vec<u64> {
    for v in values {
        assert_eq!(v.len(), exact.vars.len(), "one value per variable");
        for (x, var) in v.iter().zip(&exact.vars) {
            assert!(
                *x < var.n_values(),
                "sampled value {x} of {var:?} is out of range 0..{}",
                var.n_values()
            );
        }
    }
    let mut counts = vec![0u64; exact.probabilities.len()];
    for i in exact.indices(values) {
        counts[i] += 1;
    }
    counts
}

/// Compare sampled joint values with `exact` without asserting.
pub fn compare_exact(exact: &ExactDistribution, values: &[Vec<usize>]) -> Comparison {
    compare(&exact.probabilities, &histogram(exact, values))
}

/// Uniformly random spins: one `bool` leaf of shape `[chains, n]`.
pub fn random_spins(key: Key, chains: usize, n: usize) -> State {
    let mut rng = key.chain_rngs(1).pop().expect("one generator");
    let data: Vec<bool> = (0..chains * n).map(|_| rng.random::<bool>()).collect();
    vec![Tensor::from(
        ndarray::Array2::from_shape_vec((chains, n), data)
            .expect("shape")
            .into_dyn(),
    )]
}

/// Uniformly random categories in `0..k`: one `u8` leaf of shape `[chains, n]`.
pub fn random_categories(key: Key, chains: usize, n: usize, k: usize) -> State {
    let mut rng = key.chain_rngs(1).pop().expect("one generator");
    let k = u8::try_from(k - 1).expect("at most 256 categories");
    let data: Vec<u8> = (0..chains * n).map(|_| rng.random_range(0..=k)).collect();
    vec![Tensor::from(
        ndarray::Array2::from_shape_vec((chains, n), data)
            .expect("shape")
            .into_dyn(),
    )]
}

/// Assert that sampled joint values (`values[draw][var]`, vars in `exact.vars` order)
/// follow `exact`.
pub fn assert_matches_exact(
    label: &str,
    exact: &ExactDistribution,
    values: &[Vec<usize>],
) -> Comparison {
    let c = compare_exact(exact, values);
    assert_eq!(c.n, values.len(), "{label}: every draw is counted");
    eprintln!(
        "{label}: n = {}, TV = {:.5} (noise {:.5}, ratio {:.2}), G = {:.1} on {} dof, p = {:.3e}",
        c.n,
        c.tv,
        c.tv_noise,
        c.tv_ratio(),
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
