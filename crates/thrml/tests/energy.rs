//! Energies computed by hand: spin, categorical and mixed discrete factors (plain and
//! Square), the Ising model with β ≠ 1, sums of factors, batched and unbatched states; and
//! the consistency of `exp(−E)` ratios with enumerated probabilities.
//!
//! Every weight below is a dyadic fraction, so `f32` weights and `f64` sums are exact and
//! the literals are compared to 1e-12.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayD, IxDyn, arr1, arr2, arr3};
use thrml::exact::{DiscreteVar, ExactDistribution, index_to_values};
use thrml::*;

const TOL: f64 = 1e-12;

fn block(nodes: &[Node]) -> Block {
    Block::new(nodes.to_vec()).unwrap()
}

/// Spin states from ±1 literals: `[M, n]`.
fn spins(rows: &[&[i8]]) -> State {
    let n = rows[0].len();
    vec![Tensor::from(
        Array2::from_shape_fn((rows.len(), n), |(m, j)| rows[m][j] > 0).into_dyn(),
    )]
}

/// One unbatched spin state: `[n]`.
fn spins1(row: &[i8]) -> State {
    vec![Tensor::from(
        Array1::from_iter(row.iter().map(|&x| x > 0)).into_dyn(),
    )]
}

/// Categorical states `[M, n]`.
fn cats(rows: &[&[u8]]) -> State {
    let n = rows[0].len();
    vec![Tensor::from(
        Array2::from_shape_fn((rows.len(), n), |(m, j)| rows[m][j]).into_dyn(),
    )]
}

fn cats1(row: &[u8]) -> State {
    vec![Tensor::from(Array1::from(row.to_vec()).into_dyn())]
}

fn ebm(factors: Vec<Arc<dyn EBMFactor>>) -> FactorizedEBM {
    FactorizedEBM::new(factors)
}

fn assert_energies(label: &str, got: &Array1<f64>, want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{label}: batch size");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < TOL,
            "{label}: energy[{i}] = {g}, expected {w}"
        );
    }
}

#[test]
fn spin_factor_energies_by_hand() {
    let s = Node::many(NodeKind::SPIN, 4);
    // Pairs (s0, s1) with 0.5 and (s2, s3) with −1.25.
    let pair: Arc<dyn EBMFactor> = Arc::new(
        SpinEBMFactor::new(
            vec![block(&[s[0], s[2]]), block(&[s[1], s[3]])],
            arr1(&[0.5f32, -1.25]).into_dyn(),
        )
        .unwrap(),
    );
    let bias: Arc<dyn EBMFactor> = Arc::new(
        SpinEBMFactor::new(
            vec![block(&s)],
            arr1(&[0.25f32, -0.5, 1.0, 0.75]).into_dyn(),
        )
        .unwrap(),
    );
    // One 3-spin term s0·s1·s2 with weight 2.
    let triple: Arc<dyn EBMFactor> = Arc::new(
        SpinEBMFactor::new(
            vec![block(&[s[0]]), block(&[s[1]]), block(&[s[2]])],
            arr1(&[2.0f32]).into_dyn(),
        )
        .unwrap(),
    );
    let blocks = vec![block(&s)];
    let state = vec![spins(&[&[1, 1, 1, 1], &[1, -1, -1, 1], &[-1, -1, -1, -1]])];

    // E_pair = −(0.5·s0·s1 − 1.25·s2·s3)
    //   (+,+,+,+): −(0.5 − 1.25) = 0.75
    //   (+,−,−,+): −(−0.5 + 1.25) = −0.75
    //   (−,−,−,−): −(0.5 − 1.25) = 0.75
    let e = ebm(vec![pair.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("pair", &e, &[0.75, -0.75, 0.75]);

    // E_bias = −(0.25·s0 − 0.5·s1 + 1.0·s2 + 0.75·s3)
    //   (+,+,+,+): −(0.25 − 0.5 + 1 + 0.75) = −1.5
    //   (+,−,−,+): −(0.25 + 0.5 − 1 + 0.75) = −0.5
    //   (−,−,−,−): −(−0.25 + 0.5 − 1 − 0.75) = 1.5
    let e = ebm(vec![bias.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("bias", &e, &[-1.5, -0.5, 1.5]);

    // E_triple = −2·s0·s1·s2: (+,+,+) → −2, (+,−,−) → −2, (−,−,−) → 2
    let e = ebm(vec![triple.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("triple", &e, &[-2.0, -2.0, 2.0]);

    // Sum: 0.75 − 1.5 − 2 = −2.75;  −0.75 − 0.5 − 2 = −3.25;  0.75 + 1.5 + 2 = 4.25
    let all = ebm(vec![pair, bias, triple]);
    let e = all.energy(&state, &blocks).unwrap();
    assert_energies("sum", &e, &[-2.75, -3.25, 4.25]);

    // The same states split over two blocks in another order give the same energies.
    let split = vec![block(&[s[3], s[1]]), block(&[s[2], s[0]])];
    let split_state = vec![
        spins(&[&[1, 1], &[1, -1], &[-1, -1]]),
        spins(&[&[1, 1], &[-1, 1], &[-1, -1]]),
    ];
    let e = all.energy(&split_state, &split).unwrap();
    assert_energies("sum, split blocks", &e, &[-2.75, -3.25, 4.25]);

    // Unbatched: one state, M = 1.
    let e = all.energy(&[spins1(&[1, -1, -1, 1])], &blocks).unwrap();
    assert_energies("sum, unbatched", &e, &[-3.25]);
}

#[test]
fn categorical_factor_energies_by_hand() {
    let c = Node::many(NodeKind::CATEGORICAL, 3);
    // Pair (c0, c1) with W0[i][j] = 0.25·(3i + j), pair (c1, c2) with W1 = −0.5·(i+1)(j+1).
    let w = ArrayD::from_shape_fn(IxDyn(&[2, 3, 3]), |i| {
        if i[0] == 0 {
            0.25 * (3 * i[1] + i[2]) as f32
        } else {
            -0.5 * ((i[1] + 1) * (i[2] + 1)) as f32
        }
    });
    let pair: Arc<dyn EBMFactor> = Arc::new(
        CategoricalEBMFactor::new(vec![block(&[c[0], c[1]]), block(&[c[1], c[2]])], w).unwrap(),
    );
    let bias: Arc<dyn EBMFactor> = Arc::new(
        CategoricalEBMFactor::new(
            vec![block(&c)],
            arr2(&[[1.0f32, 0.0, -1.0], [0.5, 0.25, 0.0], [0.0, -2.0, 4.0]]).into_dyn(),
        )
        .unwrap(),
    );
    // A square 3-node factor with W[0, i, j, k] = 9i + 3j + k − 13 (its flat index − 13).
    let triple: Arc<dyn EBMFactor> = Arc::new(
        SquareCategoricalEBMFactor::new(
            vec![block(&[c[0]]), block(&[c[1]]), block(&[c[2]])],
            ArrayD::from_shape_fn(IxDyn(&[1, 3, 3, 3]), |i| {
                (9 * i[1] + 3 * i[2] + i[3]) as f32 - 13.0
            }),
        )
        .unwrap(),
    );
    let blocks = vec![block(&c)];
    let state = vec![cats(&[&[0, 2, 1], &[2, 2, 2], &[1, 0, 0]])];

    // E_pair = −(W0[c0, c1] + W1[c1, c2])
    //   (0,2,1): W0[0,2] = 0.5,  W1[2,1] = −0.5·3·2 = −3   → −(0.5 − 3) = 2.5
    //   (2,2,2): W0[2,2] = 2.0,  W1[2,2] = −0.5·3·3 = −4.5 → −(2 − 4.5) = 2.5
    //   (1,0,0): W0[1,0] = 0.75, W1[0,0] = −0.5           → −(0.75 − 0.5) = −0.25
    let e = ebm(vec![pair.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("pair", &e, &[2.5, 2.5, -0.25]);

    // E_bias = −(B[0, c0] + B[1, c1] + B[2, c2])
    //   (0,2,1): −(1 + 0 − 2) = 1
    //   (2,2,2): −(−1 + 0 + 4) = −3
    //   (1,0,0): −(0 + 0.5 + 0) = −0.5
    let e = ebm(vec![bias.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("bias", &e, &[1.0, -3.0, -0.5]);

    // E_triple = −(9c0 + 3c1 + c2 − 13)
    //   (0,2,1): −(0 + 6 + 1 − 13) = 6
    //   (2,2,2): −(18 + 6 + 2 − 13) = −13
    //   (1,0,0): −(9 − 13) = 4
    let e = ebm(vec![triple.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("square triple", &e, &[6.0, -13.0, 4.0]);

    // Sum: 2.5 + 1 + 6 = 9.5;  2.5 − 3 − 13 = −13.5;  −0.25 − 0.5 + 4 = 3.25
    let all = ebm(vec![pair, bias, triple]);
    assert_energies(
        "sum",
        &all.energy(&state, &blocks).unwrap(),
        &[9.5, -13.5, 3.25],
    );
    assert_energies(
        "sum, unbatched",
        &all.energy(&[cats1(&[1, 0, 0])], &blocks).unwrap(),
        &[3.25],
    );
}

#[test]
fn mixed_discrete_factor_energies_by_hand() {
    let s = Node::many(NodeKind::SPIN, 2);
    let c = Node::many(NodeKind::CATEGORICAL, 2); // c0: K = 3, c1: K = 2
    // Order 2, spin × cat, batched: (s0, c0) with V0 = [0.5, −1, 2], (s1, c0) with
    // V1 = [0.25, 0, −0.75].
    let spin_cat: Arc<dyn EBMFactor> = Arc::new(
        DiscreteEBMFactor::new(
            vec![block(&[s[0], s[1]])],
            vec![block(&[c[0], c[0]])],
            arr2(&[[0.5f32, -1.0, 2.0], [0.25, 0.0, -0.75]]).into_dyn(),
        )
        .unwrap(),
    );
    // Order 3, spin × spin × cat: −s0·s1·U[c1], U = [1.5, −0.5].
    let spin_spin_cat: Arc<dyn EBMFactor> = Arc::new(
        DiscreteEBMFactor::new(
            vec![block(&[s[0]]), block(&[s[1]])],
            vec![block(&[c[1]])],
            arr2(&[[1.5f32, -0.5]]).into_dyn(),
        )
        .unwrap(),
    );
    // Order 3, spin × cat × cat, non-square [1, 3, 2]: −s1·T[c0, c1], T[i][j] = i − 2j.
    let spin_cat_cat: Arc<dyn EBMFactor> = Arc::new(
        DiscreteEBMFactor::new(
            vec![block(&[s[1]])],
            vec![block(&[c[0]]), block(&[c[1]])],
            arr3(&[[[0.0f32, -2.0], [1.0, -1.0], [2.0, 0.0]]]).into_dyn(),
        )
        .unwrap(),
    );
    // Order 3, square spin × cat × cat [1, 2, 2] over (s0, c1, c1'): a second K = 2 node.
    let c2 = Node::categorical();
    let square: Arc<dyn EBMFactor> = Arc::new(
        SquareDiscreteEBMFactor::new(
            vec![block(&[s[0]])],
            vec![block(&[c[1]]), block(&[c2])],
            arr3(&[[[0.125f32, 0.25], [0.5, 1.0]]]).into_dyn(),
        )
        .unwrap(),
    );
    let blocks = vec![block(&s), block(&[c[0], c[1], c2])];
    // Three states: (s0, s1 | c0, c1, c2)
    let state = vec![
        spins(&[&[1, -1], &[-1, -1], &[1, 1]]),
        cats(&[&[0, 1, 0], &[2, 0, 1], &[1, 1, 1]]),
    ];

    // E = −(s0·V0[c0] + s1·V1[c0])
    //   (+,− | 0): −(0.5 − 0.25) = −0.25
    //   (−,− | 2): −(−2 + 0.75) = 1.25
    //   (+,+ | 1): −(−1 + 0) = 1
    let e = ebm(vec![spin_cat.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("spin x cat", &e, &[-0.25, 1.25, 1.0]);

    // E = −s0·s1·U[c1]
    //   (+,− | c1=1): −(−1)(−0.5) = −0.5
    //   (−,− | c1=0): −(1)(1.5) = −1.5
    //   (+,+ | c1=1): −(1)(−0.5) = 0.5
    let e = ebm(vec![spin_spin_cat.clone()])
        .energy(&state, &blocks)
        .unwrap();
    assert_energies("spin x spin x cat", &e, &[-0.5, -1.5, 0.5]);

    // E = −s1·T[c0, c1], T[i][j] = i − 2j
    //   (s1=−1 | 0,1): −(−1)(−2) = −2
    //   (s1=−1 | 2,0): −(−1)(2) = 2
    //   (s1=+1 | 1,1): −(1)(−1) = 1
    let e = ebm(vec![spin_cat_cat.clone()])
        .energy(&state, &blocks)
        .unwrap();
    assert_energies("spin x cat x cat", &e, &[-2.0, 2.0, 1.0]);

    // E = −s0·Q[c1, c2], Q = [[1/8, 1/4], [1/2, 1]]
    //   (s0=+1 | 1,0): −0.5
    //   (s0=−1 | 0,1): −(−1)(0.25) = 0.25
    //   (s0=+1 | 1,1): −1
    let e = ebm(vec![square.clone()]).energy(&state, &blocks).unwrap();
    assert_energies("square spin x cat x cat", &e, &[-0.5, 0.25, -1.0]);

    // Sum: −0.25 − 0.5 − 2 − 0.5 = −3.25;  1.25 − 1.5 + 2 + 0.25 = 2;  1 + 0.5 + 1 − 1 = 1.5
    let all = ebm(vec![spin_cat, spin_spin_cat, spin_cat_cat, square]);
    assert_energies(
        "sum",
        &all.energy(&state, &blocks).unwrap(),
        &[-3.25, 2.0, 1.5],
    );
    assert_energies(
        "sum, unbatched",
        &all.energy(&[spins1(&[1, -1]), cats1(&[0, 1, 0])], &blocks)
            .unwrap(),
        &[-3.25],
    );
}

#[test]
fn factor_energy_on_a_global_state() {
    // EBMFactor::energy directly, on a global state built from a block spec.
    let s = Node::many(NodeKind::SPIN, 2);
    let c = Node::categorical();
    let f = DiscreteEBMFactor::new(
        vec![block(&[s[0]]), block(&[s[1]])],
        vec![block(&[c])],
        arr2(&[[0.5f32, -0.5, 1.0]]).into_dyn(),
    )
    .unwrap();
    let blocks = vec![block(&[c]), block(&s)];
    let spec = BlockSpec::new(blocks, &default_node_shape_dtypes()).unwrap();
    let global =
        block_state_to_global(&[cats(&[&[2], &[1]]), spins(&[&[1, -1], &[-1, -1]])], &spec)
            .unwrap();
    // (c=2, +, −): −(+1)(−1)(1.0) = 1;  (c=1, −, −): −(−1)(−1)(−0.5) = 0.5
    assert_energies("global", &f.energy(&global, &spec).unwrap(), &[1.0, 0.5]);
}

#[test]
fn ising_energy_with_beta() {
    let s = Node::many(NodeKind::SPIN, 3);
    let ising = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1]), (s[1], s[2])],
        vec![1.0, -2.0, 0.5],
        vec![1.5, -1.0],
        0.5,
    )
    .unwrap();
    let blocks = vec![block(&s)];
    // E = −β(Σ b_i s_i + Σ J_ij s_i s_j), β = 0.5
    //   (+,−,+): Σbs = 1 + 2 + 0.5 = 3.5;  ΣJss = 1.5·(−1) + (−1)(−1) = −0.5
    //            E = −0.5·(3.5 − 0.5) = −1.5
    //   (−,−,−): Σbs = −1 + 2 − 0.5 = 0.5; ΣJss = 1.5 − 1 = 0.5;  E = −0.5·1 = −0.5
    //   (+,+,−): Σbs = 1 − 2 − 0.5 = −1.5; ΣJss = 1.5 + 1 = 2.5;  E = −0.5·1 = −0.5
    let state = vec![spins(&[&[1, -1, 1], &[-1, -1, -1], &[1, 1, -1]])];
    assert_energies(
        "ising",
        &ising.energy(&state, &blocks).unwrap(),
        &[-1.5, -0.5, -0.5],
    );
    assert_energies(
        "ising, unbatched",
        &ising.energy(&[spins1(&[1, -1, 1])], &blocks).unwrap(),
        &[-1.5],
    );
    // The Ising model is the FactorizedEBM of its factors.
    let as_factors = FactorizedEBM::new(ising.factors());
    assert_energies(
        "ising factors",
        &as_factors.energy(&state, &blocks).unwrap(),
        &[-1.5, -0.5, -0.5],
    );
    // An Ising model without edges is its biases alone: (+,−,+) → −0.5·3.5 = −1.75.
    let free = IsingEBM::new(s.clone(), vec![], vec![1.0, -2.0, 0.5], vec![], 0.5).unwrap();
    assert_energies(
        "ising, no edges",
        &free.energy(&[spins1(&[1, -1, 1])], &blocks).unwrap(),
        &[-1.75],
    );
}

#[test]
fn energy_of_an_empty_model_is_zero() {
    let s = Node::many(NodeKind::SPIN, 2);
    let e = FactorizedEBM::new(vec![])
        .energy(&[spins(&[&[1, 1], &[-1, 1]])], &[block(&s)])
        .unwrap();
    assert_energies("no factors", &e, &[0.0, 0.0]);
}

#[test]
fn energy_needs_every_factor_node() {
    let s = Node::many(NodeKind::SPIN, 2);
    let f = SpinEBMFactor::new(
        vec![block(&[s[0]]), block(&[s[1]])],
        arr1(&[1.0f32]).into_dyn(),
    )
    .unwrap();
    let err = FactorizedEBM::new(vec![Arc::new(f)])
        .energy(&[spins1(&[1])], &[block(&[s[0]])])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownNode { .. }), "{err}");
    assert!(err.to_string().contains(&s[1].id().to_string()), "{err}");
}

/// Every state's `exp(−E)` relative to state 0 equals the enumerated probability ratio.
fn assert_boltzmann_ratios(label: &str, ebm: &dyn AbstractEBM, vars: &[DiscreteVar]) {
    let exact = ExactDistribution::new(ebm, vars, &[]).unwrap();
    // Energies of each state, evaluated one by one (unbatched) with one block per variable.
    let blocks: Vec<Block> = vars.iter().map(|v| block(&[v.node()])).collect();
    let energies: Vec<f64> = (0..exact.probabilities.len())
        .map(|i| {
            let values = index_to_values(vars, i);
            let state: Vec<State> = vars
                .iter()
                .zip(&values)
                .map(|(v, &x)| match v {
                    DiscreteVar::Spin(_) => spins1(&[if x == 1 { 1 } else { -1 }]),
                    DiscreteVar::Categorical(..) => cats1(&[u8::try_from(x).unwrap()]),
                })
                .collect();
            ebm.energy(&state, &blocks).unwrap()[0]
        })
        .collect();
    let mut max_err = 0.0f64;
    for (i, &e) in energies.iter().enumerate() {
        assert!((exact.energies[i] - e).abs() < 1e-9, "{label}: state {i}");
        let ratio = exact.probabilities[i] / exact.probabilities[0];
        let want = (energies[0] - e).exp();
        max_err = max_err.max((ratio / want - 1.0).abs());
    }
    assert!(
        max_err < 1e-9,
        "{label}: probability ratios off by {max_err:e}"
    );
    let total: f64 = exact.probabilities.iter().sum();
    assert!(
        (total - 1.0).abs() < 1e-12,
        "{label}: probabilities sum to {total}"
    );
}

#[test]
fn exp_minus_energy_ratios_match_enumeration() {
    let s = Node::many(NodeKind::SPIN, 3);
    let ising = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1]), (s[1], s[2]), (s[0], s[2])],
        vec![0.3, -0.2, 0.1],
        vec![0.8, -0.5, 0.4],
        1.7,
    )
    .unwrap();
    let spin_vars: Vec<DiscreteVar> = s.iter().map(|&n| DiscreteVar::Spin(n)).collect();
    assert_boltzmann_ratios("ising", &ising, &spin_vars);

    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let mixed = FactorizedEBM::new(vec![
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[0]]), block(&[s[1]])],
                vec![block(&[c[0]]), block(&[c[1]])],
                ArrayD::from_shape_fn(IxDyn(&[1, 3, 2]), |i| {
                    0.3 * i[1] as f32 - 0.45 * i[2] as f32 + 0.1
                }),
            )
            .unwrap(),
        ),
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&[s[1]]), block(&[s[2]])],
                arr1(&[-0.6f32]).into_dyn(),
            )
            .unwrap(),
        ),
        Arc::new(
            CategoricalEBMFactor::new(
                vec![block(&[c[0]])],
                arr2(&[[0.2f32, -0.4, 0.9]]).into_dyn(),
            )
            .unwrap(),
        ),
    ]);
    let mut vars = spin_vars;
    vars.push(DiscreteVar::Categorical(c[0], 3));
    vars.push(DiscreteVar::Categorical(c[1], 2));
    assert_boltzmann_ratios("mixed", &mixed, &vars);
}
