//! `estimate_kl_gradient` against the exact KL gradient of small discrete EBMs.
//!
//! Four models, each with data (visible), latent and conditioning nodes: an Ising model,
//! a spin model with three-body terms, a categorical (Potts-like) model with a three-way
//! factor, and a mixed model whose factors couple spins with categoricals (one of them with
//! a non-square weight tensor). For every factor weight `W[b, k…]` the exact gradient is
//!
//! ```text
//! ∂KL/∂W = E_{p(v,h|c)}[S] − E_{q(v) p(h|v,c)}[S],   S = Π spins · 1[categories = k…]
//! ```
//!
//! computed by enumeration ([`thrml::exact`]); on the mixed model the formula itself is
//! checked against central finite differences of the KL, enumerated independently.
//!
//! **Error measure.** `max_k |ĝ_k − g_k| / max_k |g_k|` over every weight entry of every
//! factor (the "max relative" error of the gradient vector): the Monte Carlo error of each
//! entry has the same absolute size while single entries may be near zero, so the error is
//! measured relative to the largest gradient entry. The bound is 2%; the sample sizes below
//! put the standard error of an entry near 0.3% of the largest.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thrml::exact::{DiscreteVar, ExactDistribution, index_to_values};
use thrml::train::{TrainingSpec, estimate_kl_gradient};
use thrml::*;

/// A small training problem.
struct Problem {
    name: &'static str,
    vars: Vec<DiscreteVar>,
    factors: Vec<DiscreteEBMFactor>,
    data_nodes: Vec<usize>,
    conditioning: Vec<(usize, usize)>,
    /// `data[item][k]`: the value of `data_nodes[k]` (spins 0/1, categories).
    data: Vec<Vec<usize>>,
}

impl Problem {
    fn latent(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|i| {
                !self.data_nodes.contains(i) && !self.conditioning.iter().any(|c| c.0 == *i)
            })
            .collect()
    }

    fn unconditioned(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|i| !self.conditioning.iter().any(|c| c.0 == *i))
            .collect()
    }

    fn node(&self, i: usize) -> Node {
        self.vars[i].node()
    }
}

// ---------------------------------------------------------------------------------------
// Exact gradient
// ---------------------------------------------------------------------------------------

/// The sufficient statistic of `f` for one full assignment.
fn statistic(f: &DiscreteEBMFactor, value: &dyn Fn(Node) -> usize) -> ArrayD<f64> {
    let w = f.weights();
    let mut out = ArrayD::<f64>::zeros(IxDyn(w.shape()));
    for b in 0..f.batch_size() {
        let sign: f64 = f
            .spin_node_groups
            .iter()
            .map(|g| if value(g.nodes()[b]) == 1 { 1.0 } else { -1.0 })
            .product();
        let mut idx = vec![b];
        idx.extend(
            f.categorical_node_groups
                .iter()
                .map(|g| value(g.nodes()[b])),
        );
        out[IxDyn(&idx)] += sign;
    }
    out
}

fn ebm_of(factors: &[DiscreteEBMFactor]) -> FactorizedEBM {
    FactorizedEBM::new(
        factors
            .iter()
            .map(|f| Arc::new(f.clone()) as Arc<dyn EBMFactor>)
            .collect(),
    )
}

/// `E[S]` of every factor under `p(free | fixed)`.
fn exact_statistics(
    p: &Problem,
    factors: &[DiscreteEBMFactor],
    free: &[usize],
    fixed: &HashMap<usize, usize>,
) -> Vec<ArrayD<f64>> {
    let free_vars: Vec<DiscreteVar> = free.iter().map(|&i| p.vars[i]).collect();
    let clamped: Vec<(DiscreteVar, usize)> = fixed.iter().map(|(&i, &x)| (p.vars[i], x)).collect();
    let dist = ExactDistribution::new(&ebm_of(factors), &free_vars, &clamped).unwrap();
    let index: HashMap<Node, usize> = (0..p.vars.len()).map(|i| (p.node(i), i)).collect();
    let mut out: Vec<ArrayD<f64>> = factors
        .iter()
        .map(|f| ArrayD::zeros(IxDyn(f.weights().shape())))
        .collect();
    for (s, &prob) in dist.probabilities.iter().enumerate() {
        let values = index_to_values(&free_vars, s);
        let value = |n: Node| -> usize {
            let i = index[&n];
            free.iter()
                .position(|&f| f == i)
                .map_or_else(|| fixed[&i], |k| values[k])
        };
        for (o, f) in out.iter_mut().zip(factors) {
            *o = &*o + &(statistic(f, &value) * prob);
        }
    }
    out
}

/// The exact `∂KL/∂W` of every factor.
fn exact_gradient(p: &Problem) -> Vec<ArrayD<f64>> {
    let cond: HashMap<usize, usize> = p.conditioning.iter().copied().collect();
    let latent = p.latent();
    let mut positive: Vec<ArrayD<f64>> = p
        .factors
        .iter()
        .map(|f| ArrayD::zeros(IxDyn(f.weights().shape())))
        .collect();
    for item in &p.data {
        let mut fixed = cond.clone();
        fixed.extend(p.data_nodes.iter().copied().zip(item.iter().copied()));
        let s = exact_statistics(p, &p.factors, &latent, &fixed);
        for (acc, x) in positive.iter_mut().zip(s) {
            *acc = &*acc + &(x / p.data.len() as f64);
        }
    }
    let negative = exact_statistics(p, &p.factors, &p.unconditioned(), &cond);
    negative
        .into_iter()
        .zip(positive)
        .map(|(n, q)| n - q)
        .collect()
}

/// `log Σ exp(−E)` over the free nodes, the others fixed.
fn log_z(p: &Problem, factors: &[DiscreteEBMFactor], fixed: &HashMap<usize, usize>) -> f64 {
    let free: Vec<DiscreteVar> = (0..p.vars.len())
        .filter(|i| !fixed.contains_key(i))
        .map(|i| p.vars[i])
        .collect();
    let clamped: Vec<(DiscreteVar, usize)> = fixed.iter().map(|(&i, &x)| (p.vars[i], x)).collect();
    let dist = ExactDistribution::new(&ebm_of(factors), &free, &clamped).unwrap();
    let min = dist.energies.iter().copied().fold(f64::INFINITY, f64::min);
    -min + dist
        .energies
        .iter()
        .map(|e| (min - e).exp())
        .sum::<f64>()
        .ln()
}

/// `KL(q(v) ‖ p(v | c))` with the data's empirical distribution `q`.
fn kl(p: &Problem, factors: &[DiscreteEBMFactor]) -> f64 {
    let cond: HashMap<usize, usize> = p.conditioning.iter().copied().collect();
    let mut q: HashMap<&[usize], f64> = HashMap::new();
    for item in &p.data {
        *q.entry(item.as_slice()).or_default() += 1.0 / p.data.len() as f64;
    }
    let log_zc = log_z(p, factors, &cond);
    q.iter()
        .map(|(v, &qv)| {
            let mut fixed = cond.clone();
            fixed.extend(p.data_nodes.iter().copied().zip(v.iter().copied()));
            qv * (qv.ln() - (log_z(p, factors, &fixed) - log_zc))
        })
        .sum()
}

fn with_weight(
    factors: &[DiscreteEBMFactor],
    fi: usize,
    flat: usize,
    delta: f32,
) -> (Vec<DiscreteEBMFactor>, f64) {
    let mut out = factors.to_vec();
    let f = &factors[fi];
    let mut w = f.weights().to_owned();
    let old = w.as_slice().unwrap()[flat];
    let new = old + delta;
    w.as_slice_mut().unwrap()[flat] = new;
    out[fi] = DiscreteEBMFactor::new(
        f.spin_node_groups.clone(),
        f.categorical_node_groups.clone(),
        w,
    )
    .unwrap();
    (out, f64::from(new) - f64::from(old))
}

// ---------------------------------------------------------------------------------------
// The estimate
// ---------------------------------------------------------------------------------------

/// One block per kind of the given node indices (order kept within a kind).
fn blocks_of(p: &Problem, ix: &[usize]) -> Vec<Block> {
    let mut by_kind: Vec<(NodeKind, Vec<Node>)> = Vec::new();
    for &i in ix {
        let n = p.node(i);
        match by_kind.iter_mut().find(|(k, _)| *k == n.kind()) {
            Some((_, v)) => v.push(n),
            None => by_kind.push((n.kind(), vec![n])),
        }
    }
    by_kind
        .into_iter()
        .map(|(k, v)| Block::of_kind(k, v).unwrap())
        .collect()
}

/// The states of `blocks` with each node's value taken from `value(row, node index)`.
fn states_of(
    p: &Problem,
    blocks: &[Block],
    rows: usize,
    value: impl Fn(usize, usize) -> usize,
) -> Vec<State> {
    let index: HashMap<Node, usize> = (0..p.vars.len()).map(|i| (p.node(i), i)).collect();
    blocks
        .iter()
        .map(|b| {
            let n = b.len();
            let vals: Vec<usize> = (0..rows)
                .flat_map(|r| b.nodes().iter().map(move |node| (r, *node)))
                .map(|(r, node)| value(r, index[&node]))
                .collect();
            let t = match p.vars[index[&b.nodes()[0]]] {
                DiscreteVar::Spin(_) => Tensor::from(
                    ArrayD::from_shape_vec(
                        IxDyn(&[rows, n]),
                        vals.iter().map(|&v| v == 1).collect(),
                    )
                    .unwrap(),
                ),
                DiscreteVar::Categorical(..) => Tensor::from(
                    ArrayD::from_shape_vec(
                        IxDyn(&[rows, n]),
                        vals.iter().map(|&v| u8::try_from(v).unwrap()).collect(),
                    )
                    .unwrap(),
                ),
            };
            vec![t]
        })
        .collect()
}

/// Negative chains (100 observations each, 2 sweeps apart).
const NEG_CHAINS: usize = 10_000;

fn check(p: &Problem) {
    let exact = exact_gradient(p);
    let scale = exact
        .iter()
        .flat_map(|g| g.iter())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(
        scale > 0.1,
        "{}: the exact gradient is too small to test ({scale})",
        p.name
    );

    // Sequential Gibbs: one superblock per free node, always a valid blocking.
    let single = |ix: Vec<usize>| -> Vec<SuperBlock> {
        ix.into_iter()
            .map(|i| SuperBlock::from(blocks_of(p, &[i]).remove(0)))
            .collect()
    };
    let data_blocks = blocks_of(p, &p.data_nodes);
    let cond_ix: Vec<usize> = p.conditioning.iter().map(|c| c.0).collect();
    let cond_blocks = blocks_of(p, &cond_ix);
    let spec = TrainingSpec::new(
        p.factors.clone(),
        data_blocks.clone(),
        cond_blocks.clone(),
        single(p.latent()),
        single(p.unconditioned()),
        SamplingSchedule::new(5, 100, 2).unwrap(),
        SamplingSchedule::new(20, 100, 2).unwrap(),
    )
    .unwrap();
    let batch = p.data.len();
    let data = states_of(p, &data_blocks, batch, |r, i| {
        p.data[r][p.data_nodes.iter().position(|&d| d == i).unwrap()]
    });
    let cond_value: HashMap<usize, usize> = p.conditioning.iter().copied().collect();
    let conditioning: Vec<State> = states_of(p, &cond_blocks, 1, |_, i| cond_value[&i])
        .into_iter()
        .map(|s| {
            s.into_iter()
                .map(|t| match t {
                    Tensor::Bool(a) => Tensor::Bool(a.index_axis_move(ndarray::Axis(0), 0)),
                    Tensor::U8(a) => Tensor::U8(a.index_axis_move(ndarray::Axis(0), 0)),
                    other => other,
                })
                .collect()
        })
        .collect();
    let per_item = 1500;
    let init_pos = spec.hinton_init(Key::new(11), &spec.positive_free_blocks(), per_item * batch);
    let init_neg = spec.hinton_init(Key::new(12), &spec.negative_free_blocks(), NEG_CHAINS);
    let start = std::time::Instant::now();
    let g = estimate_kl_gradient(
        Key::new(13),
        &spec,
        &data,
        &conditioning,
        &init_pos,
        &init_neg,
    )
    .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(g.positive.count, per_item * batch * 100);
    assert_eq!(g.negative.count, NEG_CHAINS * 100);
    assert_eq!(g.final_negative.len(), spec.negative_free_blocks().len());
    assert_eq!(g.final_negative[0][0].shape()[0], NEG_CHAINS);

    let mut err = 0.0f64;
    for (fi, (e, m)) in exact.iter().zip(&g.gradient).enumerate() {
        assert_eq!(e.shape(), m.shape(), "{}: factor {fi} shape", p.name);
        for (a, b) in e.iter().zip(m.iter()) {
            err = err.max((a - b).abs());
        }
    }
    let rel = err / scale;
    eprintln!(
        "{}: {elapsed:.2?}; max relative error {:.3}% (max |grad| {scale:.3})",
        p.name,
        100.0 * rel
    );
    assert!(
        rel < 0.02,
        "{}: relative gradient error {:.3}% ≥ 2%",
        p.name,
        100.0 * rel
    );
}

// ---------------------------------------------------------------------------------------
// The models
// ---------------------------------------------------------------------------------------

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(2024)
}

fn random_weights(r: &mut ChaCha8Rng, shape: &[usize], scale: f32) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n)
            .map(|_| scale * (2.0 * r.random::<f32>() - 1.0))
            .collect(),
    )
    .unwrap()
}

fn group(nodes: &[Node], ix: &[usize]) -> Block {
    Block::new(ix.iter().map(|&i| nodes[i]).collect()).unwrap()
}

fn random_data(
    r: &mut ChaCha8Rng,
    vars: &[DiscreteVar],
    data_nodes: &[usize],
    items: usize,
) -> Vec<Vec<usize>> {
    (0..items)
        .map(|_| {
            data_nodes
                .iter()
                .map(|&i| r.random_range(0..vars[i].n_values()))
                .collect()
        })
        .collect()
}

fn spins(n: usize) -> (Vec<Node>, Vec<DiscreteVar>) {
    let nodes = Node::many(NodeKind::SPIN, n);
    let vars = nodes.iter().map(|&s| DiscreteVar::Spin(s)).collect();
    (nodes, vars)
}

fn ising_problem() -> Problem {
    let mut r = rng();
    let (s, vars) = spins(5);
    let edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 3)];
    let factors = vec![
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1, 2, 3, 4])],
            vec![],
            random_weights(&mut r, &[5], 0.6),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![
                group(&s, &edges.map(|e| e.0)),
                group(&s, &edges.map(|e| e.1)),
            ],
            vec![],
            random_weights(&mut r, &[5], 0.8),
        )
        .unwrap(),
    ];
    Problem {
        name: "ising",
        data: vec![
            vec![1, 1],
            vec![1, 1],
            vec![1, 0],
            vec![1, 1],
            vec![0, 1],
            vec![1, 1],
        ],
        vars,
        factors,
        data_nodes: vec![0, 2],
        conditioning: vec![(4, 0)],
    }
}

fn higher_order_problem() -> Problem {
    let mut r = rng();
    let (s, vars) = spins(5);
    let factors = vec![
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1, 2, 3, 4])],
            vec![],
            random_weights(&mut r, &[5], 0.4),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1, 2, 0]), group(&s, &[1, 2, 3, 4])],
            vec![],
            random_weights(&mut r, &[4], 0.6),
        )
        .unwrap(),
        // Three-body terms.
        DiscreteEBMFactor::new(
            vec![
                group(&s, &[0, 1, 0]),
                group(&s, &[1, 3, 2]),
                group(&s, &[2, 4, 3]),
            ],
            vec![],
            random_weights(&mut r, &[3], 0.8),
        )
        .unwrap(),
    ];
    let data = random_data(&mut r, &vars, &[0, 1], 8);
    Problem {
        name: "higher-order spin",
        vars,
        factors,
        data_nodes: vec![0, 1],
        conditioning: vec![(4, 1)],
        data,
    }
}

fn categorical_problem() -> Problem {
    let mut r = rng();
    let c = Node::many(NodeKind::CATEGORICAL, 4);
    let vars: Vec<DiscreteVar> = c.iter().map(|&n| DiscreteVar::Categorical(n, 3)).collect();
    let factors = vec![
        DiscreteEBMFactor::new(
            vec![],
            vec![group(&c, &[0, 1, 2, 3])],
            random_weights(&mut r, &[4, 3], 0.6),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![],
            vec![group(&c, &[0, 1, 2, 0]), group(&c, &[1, 2, 3, 2])],
            random_weights(&mut r, &[4, 3, 3], 0.8),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![],
            vec![group(&c, &[0]), group(&c, &[1]), group(&c, &[3])],
            random_weights(&mut r, &[1, 3, 3, 3], 0.8),
        )
        .unwrap(),
    ];
    Problem {
        name: "categorical",
        data: vec![
            vec![0, 0],
            vec![0, 0],
            vec![1, 2],
            vec![2, 2],
            vec![0, 1],
            vec![2, 2],
            vec![0, 0],
        ],
        vars,
        factors,
        data_nodes: vec![0, 1],
        conditioning: vec![(3, 2)],
    }
}

/// Spins s0, s1, s2 (indices 0–2) and categoricals c0 (3 states, index 3), c1 (2 states,
/// index 4).
fn mixed_problem() -> Problem {
    let mut r = rng();
    let s = Node::many(NodeKind::SPIN, 3);
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let mut vars: Vec<DiscreteVar> = s.iter().map(|&n| DiscreteVar::Spin(n)).collect();
    vars.push(DiscreteVar::Categorical(c[0], 3));
    vars.push(DiscreteVar::Categorical(c[1], 2));
    let factors = vec![
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1, 2])],
            vec![],
            random_weights(&mut r, &[3], 0.5),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![],
            vec![group(&c, &[0])],
            random_weights(&mut r, &[1, 3], 0.5),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1]), group(&s, &[1, 2])],
            vec![],
            random_weights(&mut r, &[2], 0.7),
        )
        .unwrap(),
        // s0 · s1 · W[c0] and s2 · V[c1].
        DiscreteEBMFactor::new(
            vec![group(&s, &[0]), group(&s, &[1])],
            vec![group(&c, &[0])],
            random_weights(&mut r, &[1, 3], 0.8),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[2])],
            vec![group(&c, &[1])],
            random_weights(&mut r, &[1, 2], 0.8),
        )
        .unwrap(),
        // A non-square categorical pair, c0 × c1, and a spin × categorical pair.
        DiscreteEBMFactor::new(
            vec![],
            vec![group(&c, &[0]), group(&c, &[1])],
            random_weights(&mut r, &[1, 3, 2], 0.8),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[1])],
            vec![group(&c, &[0]), group(&c, &[1])],
            random_weights(&mut r, &[1, 3, 2], 0.6),
        )
        .unwrap(),
    ];
    Problem {
        name: "mixed",
        data: vec![
            vec![1, 0],
            vec![1, 0],
            vec![0, 2],
            vec![1, 1],
            vec![1, 0],
            vec![0, 2],
            vec![1, 2],
        ],
        vars,
        factors,
        data_nodes: vec![0, 3],
        conditioning: vec![(2, 0)],
    }
}

#[test]
fn ising_gradient_matches_enumeration() {
    check(&ising_problem());
}

#[test]
fn higher_order_spin_gradient_matches_enumeration() {
    check(&higher_order_problem());
}

#[test]
fn categorical_gradient_matches_enumeration() {
    check(&categorical_problem());
}

#[test]
fn mixed_gradient_matches_enumeration() {
    check(&mixed_problem());
}

#[test]
fn exact_gradient_formula_matches_finite_differences() {
    let p = mixed_problem();
    let exact = exact_gradient(&p);
    let h = 1e-2f32;
    for (fi, g) in exact.iter().enumerate() {
        for (flat, &ge) in g.iter().enumerate() {
            let (up, du) = with_weight(&p.factors, fi, flat, h);
            let (down, dd) = with_weight(&p.factors, fi, flat, -h);
            let fd = (kl(&p, &up) - kl(&p, &down)) / (du - dd);
            assert!(
                (fd - ge).abs() < 2e-4,
                "factor {fi} entry {flat}: exact {ge}, finite differences {fd}"
            );
        }
    }
}

#[test]
fn without_latent_nodes_positive_statistics_are_the_data() {
    // All nodes visible: the positive phase is the data's own statistics.
    let mut p = mixed_problem();
    p.data_nodes = vec![0, 1, 3, 4];
    let mut r = rng();
    p.data = random_data(&mut r, &p.vars, &p.data_nodes, 6);
    let data_blocks = blocks_of(&p, &p.data_nodes);
    let cond_blocks = blocks_of(&p, &[2]);
    let spec = TrainingSpec::new(
        p.factors.clone(),
        data_blocks.clone(),
        cond_blocks.clone(),
        vec![],
        p.unconditioned()
            .into_iter()
            .map(|i| SuperBlock::from(blocks_of(&p, &[i]).remove(0)))
            .collect(),
        SamplingSchedule::new(0, 1, 1).unwrap(),
        SamplingSchedule::new(10, 20, 1).unwrap(),
    )
    .unwrap();
    assert!(spec.program_positive().is_none());
    let data = states_of(&p, &data_blocks, p.data.len(), |r, i| {
        p.data[r][p.data_nodes.iter().position(|&d| d == i).unwrap()]
    });
    let conditioning = vec![vec![Tensor::from(ndarray::arr1(&[false]).into_dyn())]];
    let init_neg = spec.hinton_init(Key::new(1), &spec.negative_free_blocks(), 16);
    let g = estimate_kl_gradient(Key::new(2), &spec, &data, &conditioning, &[], &init_neg).unwrap();
    let index: HashMap<Node, usize> = (0..p.vars.len()).map(|i| (p.node(i), i)).collect();
    let mut want: Vec<ArrayD<f64>> = p
        .factors
        .iter()
        .map(|f| ArrayD::zeros(IxDyn(f.weights().shape())))
        .collect();
    for item in &p.data {
        let value = |n: Node| {
            let i = index[&n];
            if i == 2 {
                0
            } else {
                item[p.data_nodes.iter().position(|&d| d == i).unwrap()]
            }
        };
        for (w, f) in want.iter_mut().zip(&p.factors) {
            *w = &*w + &statistic(f, &value);
        }
    }
    assert_eq!(g.positive.count, p.data.len());
    assert_eq!(g.positive.sums, want);
}
