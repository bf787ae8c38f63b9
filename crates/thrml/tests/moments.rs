//! Moment accumulation: `MomentAccumulatorObserver` against moments recomputed from the
//! states that a `StateObserver` records in the same run (same key, program, schedule and
//! initial state), and `estimate_moments` against exact moments of a small Ising model.
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{Array2, Axis, arr1, arr2};
use thrml::exact::{DiscreteVar, ExactDistribution};
use thrml::*;

fn block(nodes: &[Node]) -> Block {
    Block::new(nodes.to_vec()).unwrap()
}

/// Run `program` twice with the same key, once accumulating `moment_spec` and once recording
/// `blocks`, and check the accumulated sums against products of the recorded values
/// (mapped with `value`).
#[allow(clippy::too_many_arguments)]
fn assert_accumulator_matches_states(
    label: &str,
    program: &BlockSamplingProgram,
    schedule: &SamplingSchedule,
    init: &[State],
    clamp: &[State],
    blocks: &[Block],
    moment_spec: Vec<Vec<Vec<Node>>>,
    transform: MomentTransform,
    value: impl Fn(&Tensor, usize) -> f64,
) {
    let key = Key::new(99);
    let chains = init[0][0].shape()[0];
    let observer = MomentAccumulatorObserver::new(moment_spec.clone(), transform).unwrap();
    let (sums, outputs) = sample_with_observation(
        key,
        program,
        schedule,
        init,
        clamp,
        observer.init(chains),
        &observer,
    )
    .unwrap();
    assert_eq!(outputs.len(), schedule.n_samples);

    let recorder = StateObserver::new(blocks.to_vec());
    let (_, states) =
        sample_with_observation(key, program, schedule, init, clamp, (), &recorder).unwrap();
    assert_eq!(states.len(), schedule.n_samples);

    let location: HashMap<Node, (usize, usize)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(b, blk)| {
            blk.nodes()
                .iter()
                .enumerate()
                .map(move |(j, &n)| (n, (b, j)))
        })
        .collect();
    for (t, moments) in moment_spec.iter().enumerate() {
        let mut want = Array2::<f64>::zeros((chains, moments.len()));
        for observation in &states {
            for c in 0..chains {
                for (m, nodes) in moments.iter().enumerate() {
                    want[[c, m]] += nodes
                        .iter()
                        .map(|n| {
                            let (b, j) = location[n];
                            let t = &observation[b][0];
                            value(t, c * t.shape()[1] + j)
                        })
                        .product::<f64>();
                }
            }
        }
        assert_eq!(sums[t].dim(), want.dim(), "{label}: moment type {t}");
        let max_err = (&sums[t] - &want)
            .iter()
            .fold(0.0f64, |m, &d| m.max(d.abs()));
        assert!(
            max_err < 1e-9,
            "{label}: moment type {t} differs from the recorded states by {max_err:e}"
        );
        // The run moved: not every chain has the same sums.
        assert!(
            want.rows().into_iter().any(|r| r != want.row(0)),
            "{label}: every chain has the same moments"
        );
    }
}

#[test]
fn spin_moments_match_recorded_states() {
    // A 6-spin chain; s5 is clamped to +1 and appears in the moments too.
    let s = Node::many(NodeKind::SPIN, 6);
    let edges: Vec<Edge> = (0..5).map(|i| (s[i], s[i + 1])).collect();
    let ebm = IsingEBM::new(
        s.clone(),
        edges.clone(),
        vec![0.3, -0.2, 0.1, 0.0, 0.25, 0.4],
        vec![0.7, -0.5, 0.9, 0.6, -0.8],
        1.0,
    )
    .unwrap();
    let free = vec![block(&[s[0], s[2], s[4]]), block(&[s[1], s[3]])];
    let clamped = vec![block(&[s[5]])];
    let program = IsingSamplingProgram::new(&ebm, free.clone(), clamped.clone()).unwrap();
    let chains = 16;
    let init: Vec<State> = free
        .iter()
        .enumerate()
        .map(|(i, b)| common::random_spins(Key::new(i as u64), chains, b.len()))
        .collect();
    let clamp = vec![vec![Tensor::from(arr1(&[true]).into_dyn())]];
    let moment_spec = vec![
        s.iter().map(|&n| vec![n]).collect(),
        edges
            .iter()
            .map(|&(a, b)| vec![a, b])
            .chain([vec![s[0], s[5]]])
            .collect(),
        vec![vec![s[0], s[1], s[2]], vec![s[3], s[5], s[1]]],
    ];
    let mut blocks = free;
    blocks.extend(clamped);
    let schedule = SamplingSchedule::new(5, 200, 2).unwrap();
    assert_accumulator_matches_states(
        "spins, spin_transform",
        &program,
        &schedule,
        &init,
        &clamp,
        &blocks,
        moment_spec.clone(),
        spin_transform(),
        |t, i| 2.0 * t.get_f64(i) - 1.0,
    );
    // The identity transform sees spins as 0/1.
    assert_accumulator_matches_states(
        "spins, identity_transform",
        &program,
        &schedule,
        &init,
        &clamp,
        &blocks,
        moment_spec,
        identity_transform(),
        |t, i| t.get_f64(i),
    );
}

#[test]
fn categorical_and_mixed_moments_match_recorded_states() {
    let s = Node::many(NodeKind::SPIN, 2);
    let c = Node::many(NodeKind::CATEGORICAL, 3);
    let factors: Vec<Arc<dyn EBMFactor>> = vec![
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&s)],
                vec![block(&[c[0], c[1]])],
                arr2(&[[0.5f32, -0.3, 0.8], [-0.6, 0.2, 0.4]]).into_dyn(),
            )
            .unwrap(),
        ),
        Arc::new(
            CategoricalEBMFactor::new(
                vec![block(&[c[0], c[1]]), block(&[c[2], c[2]])],
                ndarray::Array3::from_shape_fn((2, 3, 3), |(b, i, j)| {
                    if i == j { 0.7 } else { -0.2 * b as f32 }
                })
                .into_dyn(),
            )
            .unwrap(),
        ),
    ];
    let blocks = vec![block(&[c[0], c[1]]), block(&[c[2]]), block(&s)];
    let superblocks = vec![
        SuperBlock(vec![blocks[0].clone()]),
        SuperBlock(vec![blocks[1].clone(), blocks[2].clone()]),
    ];
    let spec = BlockGibbsSpec::new(superblocks, vec![], &default_node_shape_dtypes()).unwrap();
    let samplers: Vec<Arc<dyn AbstractConditionalSampler>> = vec![
        Arc::new(CategoricalGibbsConditional::new(3)),
        Arc::new(CategoricalGibbsConditional::new(3)),
        Arc::new(SpinGibbsConditional),
    ];
    let program = FactorSamplingProgram::new(spec, samplers, &factors, vec![]).unwrap();
    let chains = 12;
    let init = vec![
        common::random_categories(Key::new(1), chains, 2, 3),
        common::random_categories(Key::new(2), chains, 1, 3),
        common::random_spins(Key::new(3), chains, 2),
    ];
    let moment_spec = vec![
        vec![vec![c[0]], vec![c[1]], vec![c[2]], vec![s[0]]],
        vec![vec![c[0], c[1]], vec![c[2], s[1]], vec![s[0], s[1]]],
    ];
    let schedule = SamplingSchedule::new(3, 150, 1).unwrap();
    assert_accumulator_matches_states(
        "mixed, identity_transform",
        &program,
        &schedule,
        &init,
        &[],
        &blocks,
        moment_spec.clone(),
        identity_transform(),
        |t, i| t.get_f64(i),
    );
    // spin_transform maps spins to ±1 and leaves categories alone.
    assert_accumulator_matches_states(
        "mixed, spin_transform",
        &program,
        &schedule,
        &init,
        &[],
        &blocks,
        moment_spec,
        spin_transform(),
        |t, i| match t {
            Tensor::Bool(_) => 2.0 * t.get_f64(i) - 1.0,
            _ => t.get_f64(i),
        },
    );
}

#[test]
fn estimate_moments_matches_exact_moments() {
    // A 4-spin ring plus a diagonal, β = 1.2.
    let s = Node::many(NodeKind::SPIN, 4);
    let edges: Vec<Edge> = vec![
        (s[0], s[1]),
        (s[1], s[2]),
        (s[2], s[3]),
        (s[3], s[0]),
        (s[0], s[2]),
    ];
    let ebm = IsingEBM::new(
        s.clone(),
        edges.clone(),
        vec![0.3, -0.4, 0.2, 0.1],
        vec![0.6, -0.5, 0.4, 0.7, -0.3],
        1.2,
    )
    .unwrap();
    // s0 and s2 are coupled, so three colours: {s0}, {s1, s3}, {s2}.
    let blocks = vec![block(&[s[0]]), block(&[s[1], s[3]]), block(&[s[2]])];
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let chains = 256;
    let init: Vec<State> = hinton_init(Key::new(0), &ebm, &blocks, &[chains])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect();
    let schedule = SamplingSchedule::new(20, 200, 2).unwrap();
    let pairs: Vec<Edge> = edges.iter().copied().chain([(s[1], s[3])]).collect();
    let (node_m, edge_m) =
        estimate_moments(Key::new(1), &s, &pairs, &program, &schedule, &init, &[]).unwrap();
    assert_eq!(node_m.dim(), (chains, 4));
    assert_eq!(edge_m.dim(), (chains, pairs.len()));

    let vars: Vec<DiscreteVar> = s.iter().map(|&n| DiscreteVar::Spin(n)).collect();
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let pm1 = |x: usize| if x == 1 { 1.0 } else { -1.0 };
    let index = |n: Node| s.iter().position(|&m| m == n).unwrap();
    let exact_nodes: Vec<f64> = exact.means();
    let exact_pairs: Vec<f64> = pairs
        .iter()
        .map(|&(a, b)| exact.expectation(|v| pm1(v[index(a)]) * pm1(v[index(b)])))
        .collect();

    // Chains are independent, so the spread of per-chain averages gives the standard error.
    let check = |what: &str, per_chain: &Array2<f64>, exact: &[f64]| {
        let mean = per_chain.mean_axis(Axis(0)).unwrap();
        let sd = per_chain.std_axis(Axis(0), 1.0);
        for (k, &e) in exact.iter().enumerate() {
            let se = sd[k] / (chains as f64).sqrt();
            let z = (mean[k] - e) / se;
            eprintln!(
                "{what} {k}: estimate {:.4}, exact {e:.4}, se {se:.4}, z {z:.2}",
                mean[k]
            );
            assert!(z.abs() < 4.0, "{what} {k}: z = {z:.2}");
            assert!((mean[k] - e).abs() < 0.03, "{what} {k}");
        }
    };
    check("<s_i>", &node_m, &exact_nodes);
    check("<s_i s_j>", &edge_m, &exact_pairs);
}

#[test]
fn estimate_moments_with_every_node_clamped() {
    // No free blocks and a clamped state shared by all chains: one chain, whose moments
    // are those of the clamped values.
    let s = Node::many(NodeKind::SPIN, 3);
    let ebm = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1]), (s[1], s[2])],
        vec![0.1, 0.2, 0.3],
        vec![1.0, -1.0],
        1.0,
    )
    .unwrap();
    let program = IsingSamplingProgram::new(&ebm, Vec::<Block>::new(), vec![block(&s)]).unwrap();
    let clamp = vec![vec![Tensor::from(arr1(&[true, false, true]).into_dyn())]];
    let schedule = SamplingSchedule::new(2, 5, 1).unwrap();
    let pairs = [(s[0], s[1]), (s[1], s[2]), (s[0], s[2])];
    let (nodes, edges) =
        estimate_moments(Key::new(0), &s, &pairs, &program, &schedule, &[], &clamp).unwrap();
    assert_eq!(nodes, arr2(&[[1.0, -1.0, 1.0]]));
    assert_eq!(edges, arr2(&[[-1.0, -1.0, 1.0]]));
    // Clamped per chain: one row per chain.
    let per_chain = vec![vec![Tensor::from(
        arr2(&[[true, true, true], [false, true, false]]).into_dyn(),
    )]];
    let (nodes, edges) = estimate_moments(
        Key::new(0),
        &s,
        &pairs,
        &program,
        &schedule,
        &[],
        &per_chain,
    )
    .unwrap();
    assert_eq!(nodes, arr2(&[[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0]]));
    assert_eq!(edges, arr2(&[[1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]]));
}
