//! `estimate_kl_grad` against the exact KL gradient of a four-spin Ising model.
//!
//! THRML's four-node case: spins `s0 – s1 – s2 – s3` in a chain, data nodes `s0, s2`, latent
//! nodes `s1, s3`. The data distribution `q(v)` is the empirical distribution of a small
//! batch, and
//!
//! ```text
//! KL(q ‖ p) = Σ_v q(v) (log q(v) − log p(v | c)),
//! ∂KL/∂b_i  = −β (E_{q(v) p(h|v,c)}[s_i]     − E_{p(·|c)}[s_i]),
//! ∂KL/∂J_ij = −β (E_{q(v) p(h|v,c)}[s_i s_j] − E_{p(·|c)}[s_i s_j]),
//! ```
//!
//! with `c` the conditioning nodes (clamped in both phases; none in the main case). Both
//! expectations are computed exactly with [`thrml::exact::ExactDistribution`]; the formula is
//! checked against central finite differences of the KL, enumerated independently in `f64`.
//!
//! **Error measure.** `max_k |ĝ_k − g_k| / max_k |g_k|` over all bias and weight entries.
//! The Monte Carlo error of every entry is of the same absolute size (spins are ±1, so each
//! moment has variance ≤ 1), while individual entries may be close to 0, so a per-entry
//! relative error would measure noise over a near-zero denominator. Normalising by the
//! largest gradient says how well the estimator recovers the gradient *vector*. Each test
//! also reports per-entry z-scores against standard errors estimated from the independent
//! chains, and bounds them.

use std::collections::HashMap;

use ndarray::{Array1, Array2, Array3, Ix2, Ix3};
use thrml::exact::{DiscreteVar, ExactDistribution};
use thrml::*;

/// Spin biases `b_i`, stored as `f32` like the model.
const BIASES: [f32; 4] = [-0.5, 0.3, -0.3, 0.4];
/// Couplings `J_ij` of [`EDGES`].
const WEIGHTS: [f32; 3] = [0.8, -0.6, 0.5];
/// The chain `s0 – s1 – s2 – s3`.
const EDGES: [(usize, usize); 3] = [(0, 1), (1, 2), (2, 3)];

/// One training situation: which nodes are data, which are conditioned, the data batch.
struct Case {
    name: &'static str,
    beta: f32,
    data_nodes: Vec<usize>,
    conditioning: Vec<(usize, bool)>,
    /// `data[item][k]` is the value of `data_nodes[k]`.
    data: Vec<Vec<bool>>,
    /// Positive chains per data item, negative chains.
    n_pos: usize,
    n_neg: usize,
    schedule_pos: SamplingSchedule,
    schedule_neg: SamplingSchedule,
}

impl Case {
    fn latent(&self) -> Vec<usize> {
        (0..4)
            .filter(|i| {
                !self.data_nodes.contains(i) && !self.conditioning.iter().any(|c| c.0 == *i)
            })
            .collect()
    }

    fn free_negative(&self) -> Vec<usize> {
        (0..4)
            .filter(|i| !self.conditioning.iter().any(|c| c.0 == *i))
            .collect()
    }
}

fn spin(b: bool) -> f64 {
    if b { 1.0 } else { -1.0 }
}

// ---------------------------------------------------------------------------------------
// The exact gradient, from ExactDistribution
// ---------------------------------------------------------------------------------------

/// `(E[s_i] for i in 0..4, E[s_i s_j] for each edge)` under `dist`, with the nodes not in
/// `dist` fixed to `fixed`.
fn exact_moments(
    dist: &ExactDistribution,
    nodes: &[Node],
    fixed: &HashMap<usize, bool>,
) -> (Vec<f64>, Vec<f64>) {
    let free_index: HashMap<Node, usize> = dist
        .vars
        .iter()
        .enumerate()
        .map(|(k, v)| (v.node(), k))
        .collect();
    let value = |i: usize, vals: &[usize]| -> f64 {
        match free_index.get(&nodes[i]) {
            Some(&k) => dist.vars[k].numeric(vals[k]),
            None => spin(fixed[&i]),
        }
    };
    let first = (0..4).map(|i| dist.expectation(|v| value(i, v))).collect();
    let second = EDGES
        .iter()
        .map(|&(i, j)| dist.expectation(|v| value(i, v) * value(j, v)))
        .collect();
    (first, second)
}

/// The exact `(∂KL/∂b, ∂KL/∂J)` by enumeration.
fn exact_gradient(case: &Case, ebm: &IsingEBM, nodes: &[Node]) -> (Vec<f64>, Vec<f64>) {
    let var = |i: usize| DiscreteVar::Spin(nodes[i]);
    let as_clamp = |(i, b): (usize, bool)| (var(i), usize::from(b));
    let latent: Vec<DiscreteVar> = case.latent().into_iter().map(var).collect();
    let (mut pos_b, mut pos_w) = (vec![0.0; 4], vec![0.0; 3]);
    for item in &case.data {
        let fixed: HashMap<usize, bool> = case
            .data_nodes
            .iter()
            .copied()
            .zip(item.iter().copied())
            .chain(case.conditioning.iter().copied())
            .collect();
        let clamped: Vec<_> = fixed.iter().map(|(&i, &b)| as_clamp((i, b))).collect();
        let dist = ExactDistribution::new(ebm, &latent, &clamped).unwrap();
        let (b, w) = exact_moments(&dist, nodes, &fixed);
        let n = case.data.len() as f64;
        pos_b.iter_mut().zip(b).for_each(|(p, x)| *p += x / n);
        pos_w.iter_mut().zip(w).for_each(|(p, x)| *p += x / n);
    }
    let free: Vec<DiscreteVar> = case.free_negative().into_iter().map(var).collect();
    let fixed: HashMap<usize, bool> = case.conditioning.iter().copied().collect();
    let clamped: Vec<_> = case.conditioning.iter().copied().map(as_clamp).collect();
    let dist = ExactDistribution::new(ebm, &free, &clamped).unwrap();
    let (neg_b, neg_w) = exact_moments(&dist, nodes, &fixed);
    let beta = f64::from(case.beta);
    let grad = |p: &[f64], n: &[f64]| p.iter().zip(n).map(|(p, n)| -beta * (p - n)).collect();
    (grad(&pos_b, &neg_b), grad(&pos_w, &neg_w))
}

// ---------------------------------------------------------------------------------------
// An independent f64 enumeration of the KL, for finite differences
// ---------------------------------------------------------------------------------------

/// `log Σ exp(−E(s))` over the spin states that agree with `fixed`.
fn log_z(beta: f64, b: &[f64; 4], w: &[f64; 3], fixed: &[(usize, bool)]) -> f64 {
    let terms: Vec<f64> = (0..16usize)
        .map(|config| std::array::from_fn::<f64, 4, _>(|i| spin(config >> i & 1 == 1)))
        .filter(|s| fixed.iter().all(|&(i, v)| s[i] == spin(v)))
        .map(|s| {
            let field: f64 = (0..4).map(|i| b[i] * s[i]).sum();
            let pairs: f64 = EDGES
                .iter()
                .zip(w)
                .map(|(&(i, j), w)| w * s[i] * s[j])
                .sum();
            beta * (field + pairs)
        })
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// `KL(q ‖ p(· | c))` over the data nodes.
fn kl(case: &Case, b: &[f64; 4], w: &[f64; 3]) -> f64 {
    let beta = f64::from(case.beta);
    let mut q: HashMap<&[bool], f64> = HashMap::new();
    for item in &case.data {
        *q.entry(item.as_slice()).or_default() += 1.0 / case.data.len() as f64;
    }
    let log_zc = log_z(beta, b, w, &case.conditioning);
    q.iter()
        .map(|(v, &qv)| {
            let mut fixed: Vec<(usize, bool)> = case
                .data_nodes
                .iter()
                .copied()
                .zip(v.iter().copied())
                .collect();
            fixed.extend(&case.conditioning);
            qv * (qv.ln() - (log_z(beta, b, w, &fixed) - log_zc))
        })
        .sum()
}

/// Central finite differences of [`kl`] with respect to every bias and weight.
fn finite_difference_gradient(case: &Case) -> (Vec<f64>, Vec<f64>) {
    let h = 1e-5;
    let b0 = BIASES.map(f64::from);
    let w0 = WEIGHTS.map(f64::from);
    let gb = (0..4)
        .map(|i| {
            let (mut up, mut down) = (b0, b0);
            up[i] += h;
            down[i] -= h;
            (kl(case, &up, &w0) - kl(case, &down, &w0)) / (2.0 * h)
        })
        .collect();
    let gw = (0..3)
        .map(|k| {
            let (mut up, mut down) = (w0, w0);
            up[k] += h;
            down[k] -= h;
            (kl(case, &b0, &up) - kl(case, &b0, &down)) / (2.0 * h)
        })
        .collect();
    (gb, gw)
}

// ---------------------------------------------------------------------------------------
// The Monte Carlo estimate
// ---------------------------------------------------------------------------------------

/// Blocks of the given node indices: one block, or none if empty.
fn block_of(nodes: &[Node], ix: &[usize]) -> Vec<Block> {
    if ix.is_empty() {
        vec![]
    } else {
        vec![Block::new(ix.iter().map(|&i| nodes[i]).collect()).unwrap()]
    }
}

/// Standard errors of one phase's contribution to the gradient, from the spread over
/// independent chains. Row `r` of a moment array is chain `r`; in the positive phase chain
/// `p · batch + item` serves data item `item`, and only the spread among the chains of one
/// item is noise (the spread between items is the data itself).
fn standard_errors(moments: &(Array2<f64>, Array2<f64>), batch: usize, beta: f64) -> Vec<f64> {
    let se = |a: &Array2<f64>| -> Vec<f64> {
        let per_item = a.nrows() / batch;
        (0..a.ncols())
            .map(|k| {
                if per_item < 2 {
                    return 0.0;
                }
                let var_sum: f64 = (0..batch)
                    .map(|item| {
                        let xs: Vec<f64> =
                            (0..per_item).map(|p| a[[p * batch + item, k]]).collect();
                        let mean = xs.iter().sum::<f64>() / per_item as f64;
                        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (per_item - 1) as f64
                    })
                    .sum();
                // Var of the mean over items of per-item means of `per_item` chains.
                beta * (var_sum / per_item as f64).sqrt() / batch as f64
            })
            .collect()
    };
    se(&moments.0).into_iter().chain(se(&moments.1)).collect()
}

/// Run `estimate_kl_grad` for `case` and check it against the exact gradient.
fn check_case(case: &Case) {
    let nodes = Node::many(NodeKind::SPIN, 4);
    let edges: Vec<Edge> = EDGES.iter().map(|&(i, j)| (nodes[i], nodes[j])).collect();
    let ebm = IsingEBM::new(
        nodes.clone(),
        edges.clone(),
        BIASES.to_vec(),
        WEIGHTS.to_vec(),
        case.beta,
    )
    .unwrap();

    // The reference, and the reference checked by finite differences.
    let (exact_b, exact_w) = exact_gradient(case, &ebm, &nodes);
    let (fd_b, fd_w) = finite_difference_gradient(case);
    let exact_all: Vec<f64> = exact_b.iter().chain(&exact_w).copied().collect();
    let fd_all: Vec<f64> = fd_b.iter().chain(&fd_w).copied().collect();
    let scale = exact_all.iter().map(|g| g.abs()).fold(0.0, f64::max);
    let fd_err = exact_all
        .iter()
        .zip(&fd_all)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        fd_err < 1e-6 * scale.max(1.0),
        "{}: exact gradient {exact_all:?} differs from finite differences {fd_all:?}",
        case.name
    );

    // The training spec: positive phase frees the latent nodes, negative phase colours all
    // unconditioned nodes (even / odd positions of the chain).
    let data_blocks = block_of(&nodes, &case.data_nodes);
    let cond_ix: Vec<usize> = case.conditioning.iter().map(|c| c.0).collect();
    let cond_blocks = block_of(&nodes, &cond_ix);
    let latent = case.latent();
    let positive_blocks = block_of(&nodes, &latent);
    let free_neg = case.free_negative();
    let negative_blocks: Vec<Block> = [0, 1]
        .iter()
        .flat_map(|&parity| {
            let ix: Vec<usize> = free_neg
                .iter()
                .copied()
                .filter(|i| i % 2 == parity)
                .collect();
            block_of(&nodes, &ix)
        })
        .collect();
    let spec = IsingTrainingSpec::new(
        ebm.clone(),
        data_blocks,
        cond_blocks,
        positive_blocks
            .iter()
            .cloned()
            .map(SuperBlock::from)
            .collect(),
        negative_blocks
            .iter()
            .cloned()
            .map(SuperBlock::from)
            .collect(),
        case.schedule_pos,
        case.schedule_neg,
    )
    .unwrap();

    let batch = case.data.len();
    let data: Vec<Array2<bool>> = if case.data_nodes.is_empty() {
        vec![]
    } else {
        vec![Array2::from_shape_fn(
            (batch, case.data_nodes.len()),
            |(r, k)| case.data[r][k],
        )]
    };
    let conditioning: Vec<Array1<bool>> = if case.conditioning.is_empty() {
        vec![]
    } else {
        vec![case.conditioning.iter().map(|c| c.1).collect()]
    };
    let init_pos: Vec<Array3<bool>> =
        hinton_init(Key::new(1), &ebm, &positive_blocks, &[case.n_pos, batch])
            .unwrap()
            .into_iter()
            .map(|a| a.into_dimensionality::<Ix3>().unwrap())
            .collect();
    let init_neg: Vec<Array2<bool>> =
        hinton_init(Key::new(2), &ebm, &negative_blocks, &[case.n_neg])
            .unwrap()
            .into_iter()
            .map(|a| a.into_dimensionality::<Ix2>().unwrap())
            .collect();
    let start = std::time::Instant::now();
    let grad = estimate_kl_grad(
        Key::new(3),
        &spec,
        &nodes,
        &edges,
        &data,
        &conditioning,
        &init_pos,
        &init_neg,
    )
    .unwrap();
    let elapsed = start.elapsed();

    // Structural facts that hold exactly.
    assert_eq!(
        spec.program_positive.gibbs_spec.free_blocks.is_empty(),
        latent.is_empty()
    );
    if latent.is_empty() {
        // No latent nodes: the positive moments are the data's own, one row per item.
        let (first, second) = &grad.moments_positive;
        assert_eq!(first.nrows(), batch);
        for (r, item) in case.data.iter().enumerate() {
            let value =
                |i: usize| spin(item[case.data_nodes.iter().position(|&d| d == i).unwrap()]);
            for i in 0..4 {
                assert_eq!(first[[r, i]], value(i));
            }
            for (k, &(i, j)) in EDGES.iter().enumerate() {
                assert_eq!(second[[r, k]], value(i) * value(j));
            }
        }
    }
    for &(i, _) in &case.conditioning {
        // A node clamped in both phases has the same moments in both: zero gradient.
        assert_eq!(grad.grad_b[i], 0.0);
        assert!(exact_b[i].abs() < 1e-12);
    }

    let est_all: Vec<f64> = grad.grad_b.iter().chain(&grad.grad_w).copied().collect();
    let err = est_all
        .iter()
        .zip(&exact_all)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale;
    // Per-entry z-scores: the two phases are independent, their standard errors add.
    let beta = f64::from(case.beta);
    let se: Vec<f64> = standard_errors(&grad.moments_positive, batch, beta)
        .iter()
        .zip(standard_errors(&grad.moments_negative, 1, beta))
        .map(|(p, n)| p.hypot(n))
        .collect();
    let max_z = est_all
        .iter()
        .zip(&exact_all)
        .zip(&se)
        .filter(|(_, s)| **s > 0.0)
        .map(|((a, b), s)| (a - b).abs() / s)
        .fold(0.0, f64::max);
    eprintln!(
        "{}: {elapsed:.2?}; relative error {:.3}% (max |grad| {scale:.3}, max se {:.2e}), max |z| {max_z:.2}, finite-difference check {fd_err:.1e}\n  exact {exact_all:.4?}\n  est   {est_all:.4?}",
        case.name,
        100.0 * err,
        se.iter().copied().fold(0.0, f64::max),
    );
    assert!(
        err < 0.01,
        "{}: relative gradient error {:.3}% ≥ 1%",
        case.name,
        100.0 * err
    );
    assert!(
        max_z < 5.0,
        "{}: a gradient entry is {max_z:.2} standard errors off",
        case.name
    );
}

/// The data batch over `(s0, s2)`: mostly both up, against a model that prefers them down.
fn latent_data() -> Vec<Vec<bool>> {
    [
        (true, true),
        (true, true),
        (true, false),
        (true, true),
        (false, true),
        (true, true),
    ]
    .iter()
    .map(|&(a, b)| vec![a, b])
    .collect()
}

/// Sample sizes: given the data, the latent nodes `s1, s3` are conditionally independent, so
/// every positive sweep is an exact draw; 300 chains per item × 400 draws and 2000 negative
/// chains × 400 draws (thinned by 2) put the standard error of each entry near 0.2% of the
/// largest gradient, so the 1% bound sits about 5 standard errors out.
fn latent_case(name: &'static str, beta: f32) -> Case {
    Case {
        name,
        beta,
        data_nodes: vec![0, 2],
        conditioning: vec![],
        data: latent_data(),
        n_pos: 300,
        n_neg: 2000,
        schedule_pos: SamplingSchedule::new(2, 400, 1).unwrap(),
        schedule_neg: SamplingSchedule::new(10, 400, 2).unwrap(),
    }
}

#[test]
fn kl_grad_with_latent_nodes_matches_exact_gradient() {
    check_case(&latent_case("latent, beta = 1", 1.0));
}

#[test]
fn kl_grad_with_latent_nodes_and_temperature_matches_exact_gradient() {
    check_case(&latent_case("latent, beta = 0.6", 0.6));
}

#[test]
fn kl_grad_without_latent_nodes_uses_data_moments() {
    let data = [
        [true, true, true, false],
        [true, false, true, true],
        [true, true, true, true],
        [false, true, true, false],
        [true, true, false, true],
    ];
    check_case(&Case {
        name: "no latent",
        beta: 1.0,
        data_nodes: vec![0, 1, 2, 3],
        conditioning: vec![],
        data: data.iter().map(|d| d.to_vec()).collect(),
        n_pos: 0,
        n_neg: 2000,
        schedule_pos: SamplingSchedule::new(0, 1, 1).unwrap(),
        schedule_neg: SamplingSchedule::new(10, 400, 2).unwrap(),
    });
}

#[test]
fn kl_grad_with_conditioning_node_matches_exact_gradient() {
    check_case(&Case {
        name: "conditioning s3 = -1",
        beta: 1.0,
        data_nodes: vec![0, 2],
        conditioning: vec![(3, false)],
        data: latent_data(),
        n_pos: 300,
        n_neg: 2000,
        schedule_pos: SamplingSchedule::new(2, 400, 1).unwrap(),
        schedule_neg: SamplingSchedule::new(10, 400, 2).unwrap(),
    });
}
