//! Validation: every rule on factors, blocks, specs, programs, samplers, states and
//! schedules is checked with the typed error it returns (the `thrml::Error` variant, and a
//! message that names the problem). None of these inputs may panic.
mod common;

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayD, IxDyn, arr1, arr2};
use thrml::*;

fn block(nodes: &[Node]) -> Block {
    Block::new(nodes.to_vec()).unwrap()
}

/// The error of `r`, which must be one.
fn err<T: std::fmt::Debug>(r: Result<T>) -> Error {
    r.expect_err("expected an error")
}

/// Assert the message contains every fragment.
fn assert_message(e: &Error, fragments: &[&str]) {
    let msg = e.to_string();
    for f in fragments {
        assert!(msg.contains(f), "message {msg:?} does not mention {f:?}");
    }
}

fn spin_sampler() -> Arc<dyn AbstractConditionalSampler> {
    Arc::new(SpinGibbsConditional)
}

fn cat_sampler(k: usize) -> Arc<dyn AbstractConditionalSampler> {
    Arc::new(CategoricalGibbsConditional::new(k))
}

fn spin_state(values: &[bool]) -> State {
    vec![Tensor::from(Array1::from(values.to_vec()).into_dyn())]
}

fn cat_state(values: &[u8]) -> State {
    vec![Tensor::from(Array1::from(values.to_vec()).into_dyn())]
}

/// `[chains, n]` states of a constant value.
fn spins_for(chains: usize, n: usize) -> State {
    vec![Tensor::from(
        Array2::from_elem((chains, n), true).into_dyn(),
    )]
}

fn cats_for(chains: usize, n: usize, value: u8) -> State {
    vec![Tensor::from(
        Array2::from_elem((chains, n), value).into_dyn(),
    )]
}

fn pair_factor(a: Node, b: Node) -> SpinEBMFactor {
    SpinEBMFactor::new(vec![block(&[a]), block(&[b])], arr1(&[1.0f32]).into_dyn()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Factors
// ---------------------------------------------------------------------------------------

#[test]
fn weight_rank_must_be_one_plus_categorical_groups() {
    let s = Node::spin();
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    // One categorical group needs [b, K]; [b] is rank 1.
    let e = err(DiscreteEBMFactor::new(
        vec![block(&[s])],
        vec![block(&[c[0]])],
        arr1(&[1.0f32]).into_dyn(),
    ));
    assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
    assert_message(&e, &["rank 1", "1 categorical groups", "rank 2"]);
    // Spins only need [b]; [b, 2] is rank 2.
    let e = err(SpinEBMFactor::new(
        vec![block(&[s])],
        Array2::<f32>::zeros((1, 2)).into_dyn(),
    ));
    assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
    assert_message(&e, &["rank 2", "0 categorical groups"]);
    // Two categorical groups need rank 3.
    let e = err(CategoricalEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        Array2::<f32>::zeros((1, 3)).into_dyn(),
    ));
    assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
    assert_message(&e, &["rank 2", "rank 3"]);
}

#[test]
fn categorical_axes_must_have_1_to_256_values() {
    let c = Node::categorical();
    for k in [0, 257] {
        let e = err(CategoricalEBMFactor::new(
            vec![block(&[c])],
            Array2::<f32>::zeros((1, k)).into_dyn(),
        ));
        assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
        assert_message(&e, &[&format!("length {k}"), "1 to 256"]);
    }
}

#[test]
fn a_kind_cannot_be_spin_and_categorical_in_one_factor() {
    let kind = NodeKind::new("validation-both");
    let a = Node::new(kind);
    let b = Node::new(kind);
    let e = err(DiscreteEBMFactor::new(
        vec![block(&[a])],
        vec![block(&[b])],
        arr2(&[[1.0f32, 2.0]]).into_dyn(),
    ));
    assert!(
        matches!(&e, Error::SpinAndCategorical(k) if k == "validation-both"),
        "{e:?}"
    );
    assert_message(&e, &["validation-both", "both as spin and as categorical"]);
}

#[test]
fn square_factors_need_square_weights() {
    let s = Node::spin();
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let w = ArrayD::<f32>::zeros(IxDyn(&[1, 3, 2]));
    let e = err(SquareDiscreteEBMFactor::new(
        vec![block(&[s])],
        vec![block(&[c[0]]), block(&[c[1]])],
        w.clone(),
    ));
    assert!(
        matches!(&e, Error::NotSquare(shape) if shape == &[1, 3, 2]),
        "{e:?}"
    );
    assert_message(&e, &["[1, 3, 2]", "not square"]);
    let e = err(SquareCategoricalEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        w.clone(),
    ));
    assert!(matches!(e, Error::NotSquare(_)), "{e:?}");
    // The general factors accept the same tensor.
    CategoricalEBMFactor::new(vec![block(&[c[0]]), block(&[c[1]])], w).unwrap();
}

#[test]
fn node_groups_must_have_equal_lengths() {
    let s = Node::many(NodeKind::SPIN, 3);
    let e = err(SpinEBMFactor::new(
        vec![block(&s[..2]), block(&s[2..])],
        arr1(&[1.0f32, 1.0]).into_dyn(),
    ));
    assert!(matches!(e, Error::FactorGroups(_)), "{e:?}");
    assert_message(&e, &["group 0 has 2 nodes", "group 1 has 1"]);
    // A factor needs at least one group.
    let e = err(SpinEBMFactor::new(vec![], arr1(&[1.0f32]).into_dyn()));
    assert!(matches!(e, Error::FactorGroups(_)), "{e:?}");
    assert_message(&e, &["at least one node group"]);
    // So does a plain weighted factor.
    let e = err(WeightedFactor::new(arr1(&[1.0f32]).into_dyn(), vec![]));
    assert!(matches!(e, Error::FactorGroups(_)), "{e:?}");
}

#[test]
fn weight_leading_dimension_must_match_group_length() {
    let s = Node::many(NodeKind::SPIN, 4);
    let e = err(SpinEBMFactor::new(
        vec![block(&s[..2]), block(&s[2..])],
        arr1(&[1.0f32, 2.0, 3.0]).into_dyn(),
    ));
    assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
    assert_message(&e, &["leading dimension", "[3]", "(2)"]);
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let e = err(CategoricalEBMFactor::new(
        vec![block(&c)],
        Array2::<f32>::zeros((3, 2)).into_dyn(),
    ));
    assert!(matches!(e, Error::WeightShape(_)), "{e:?}");
    assert_message(&e, &["leading dimension", "[3, 2]"]);
}

#[test]
fn weights_must_be_finite() {
    let s = Node::many(NodeKind::SPIN, 2);
    for (bad, index) in [(f32::NAN, 1), (f32::INFINITY, 0), (f32::NEG_INFINITY, 1)] {
        let mut w = arr1(&[1.0f32, 2.0]);
        w[index] = bad;
        let e = err(SpinEBMFactor::new(vec![block(&s)], w.into_dyn()));
        assert!(
            matches!(e, Error::NonFiniteWeight { index: i, value } if i == index && (value.is_nan() == bad.is_nan())),
            "{e:?}"
        );
        assert_message(&e, &[&format!("entry {index}"), "finite"]);
    }
    // Through the Ising constructor: biases, weights and β.
    let e = err(IsingEBM::new(
        s.clone(),
        vec![],
        vec![0.0, f32::NAN],
        vec![],
        1.0,
    ));
    assert!(
        matches!(e, Error::NonFiniteWeight { index: 1, .. }),
        "{e:?}"
    );
    let e = err(IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1])],
        vec![0.0, 0.0],
        vec![f32::INFINITY],
        1.0,
    ));
    assert!(
        matches!(e, Error::NonFiniteWeight { index: 0, .. }),
        "{e:?}"
    );
    let e = err(IsingEBM::new(
        s.clone(),
        vec![],
        vec![0.0, 0.0],
        vec![],
        f32::NAN,
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["beta"]);
    // A finite weight that overflows when scaled by β.
    let e = err(IsingEBM::new(s, vec![], vec![f32::MAX, 0.0], vec![], 4.0));
    assert!(
        matches!(e, Error::NonFiniteWeight { index: 0, .. }),
        "{e:?}"
    );
}

#[test]
fn ising_lengths_must_match() {
    let s = Node::many(NodeKind::SPIN, 2);
    let e = err(IsingEBM::new(s.clone(), vec![], vec![0.0], vec![], 1.0));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["1 biases for 2 nodes"]);
    let e = err(IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1])],
        vec![0.0, 0.0],
        vec![],
        1.0,
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["0 weights for 1 edges"]);
    let e = err(IsingEBM::new(vec![], vec![], vec![], vec![], 1.0));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let e = err(IsingEBM::new(
        vec![s[0], Node::categorical()],
        vec![],
        vec![0.0, 0.0],
        vec![],
        1.0,
    ));
    assert!(matches!(e, Error::MixedBlock { .. }), "{e:?}");
}

#[test]
fn interaction_group_lengths_must_match() {
    let s = Node::many(NodeKind::SPIN, 3);
    let payload = DiscreteEBMInteraction {
        n_spin: 1,
        weights: arr1(&[1.0f32, 1.0]).into_dyn().into_shared(),
    };
    let e = err(InteractionGroup::new(
        payload.clone(),
        block(&s[..2]),
        vec![block(&s[2..])],
    ));
    assert!(matches!(e, Error::InteractionGroup(_)), "{e:?}");
    assert_message(&e, &["tail block 0 has 1 nodes", "head block has 2"]);
    let e = err(InteractionGroup::new(
        payload,
        block(&s[..1]),
        vec![block(&s[2..])],
    ));
    assert!(matches!(e, Error::InteractionGroup(_)), "{e:?}");
    assert_message(&e, &["payload has 2 rows"]);
}

// ---------------------------------------------------------------------------------------
// Blocks and specs
// ---------------------------------------------------------------------------------------

#[test]
fn blocks_hold_one_kind_and_at_least_one_node() {
    let s = Node::spin();
    let c = Node::categorical();
    let e = err(Block::new(vec![s, c]));
    assert!(
        matches!(&e, Error::MixedBlock { kind, node, node_kind } if kind == "spin" && *node == c.id() && node_kind == "categorical"),
        "{e:?}"
    );
    assert_message(&e, &["`spin`", "`categorical`", &c.id().to_string()]);
    let e = err(Block::of_kind(NodeKind::SPIN, vec![c]));
    assert!(matches!(e, Error::MixedBlock { .. }), "{e:?}");
    let e = err(Block::new(vec![]));
    assert!(matches!(e, Error::EmptyBlock(_)), "{e:?}");
    // An empty block is allowed by Block::of_kind but not in a spec.
    let empty = Block::of_kind(NodeKind::SPIN, vec![]).unwrap();
    let e = err(BlockSpec::new(
        vec![block(&[s]), empty],
        &default_node_shape_dtypes(),
    ));
    assert!(matches!(e, Error::EmptyBlock(_)), "{e:?}");
    assert_message(&e, &["block 1"]);
}

#[test]
fn a_node_belongs_to_one_block() {
    let s = Node::many(NodeKind::SPIN, 3);
    let sd = default_node_shape_dtypes();
    let e = err(BlockSpec::new(vec![block(&s), block(&[s[1]])], &sd));
    assert!(
        matches!(e, Error::DuplicateNode { node, first_block: 0, second_block: 1, .. } if node == s[1].id()),
        "{e:?}"
    );
    assert_message(&e, &[&s[1].id().to_string(), "more than one block"]);
    // Within one block.
    let e = err(BlockSpec::new(vec![block(&[s[0], s[0]])], &sd));
    assert!(
        matches!(
            e,
            Error::DuplicateNode {
                first_block: 0,
                second_block: 0,
                ..
            }
        ),
        "{e:?}"
    );
    // Free in one superblock and free in another.
    let e = err(BlockGibbsSpec::new(
        vec![block(&s[..2]), block(&s[1..])],
        vec![],
        &sd,
    ));
    assert!(matches!(e, Error::DuplicateNode { .. }), "{e:?}");
    // Free and clamped.
    let e = err(BlockGibbsSpec::new(
        vec![block(&s[..2])],
        vec![block(&[s[0]])],
        &sd,
    ));
    assert!(
        matches!(
            e,
            Error::DuplicateNode {
                first_block: 0,
                second_block: 1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn kinds_need_a_layout() {
    let kind = NodeKind::new("validation-unknown-kind");
    let n = Node::new(kind);
    let e = err(BlockSpec::new(
        vec![block(&[n])],
        &default_node_shape_dtypes(),
    ));
    assert!(
        matches!(&e, Error::UnknownKind(k) if k == "validation-unknown-kind"),
        "{e:?}"
    );
    assert_message(&e, &["validation-unknown-kind", "no state layout"]);
    let e = err(make_empty_block_state(
        &[block(&[n])],
        &default_node_shape_dtypes(),
        None,
    ));
    assert!(matches!(e, Error::UnknownKind(_)), "{e:?}");
}

#[test]
fn kinds_need_at_least_one_leaf() {
    let kind = NodeKind::new("validation-no-leaves");
    let mut sd = default_node_shape_dtypes();
    sd.insert(kind, StateLayout::new(vec![]));
    let n = Node::new(kind);
    let e = err(BlockSpec::new(vec![block(&[n])], &sd));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["validation-no-leaves", "no leaves"]);
    let e = err(verify_block_state(&[block(&[n])], &[vec![]], &sd, None));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// States
// ---------------------------------------------------------------------------------------

#[test]
fn verify_block_state_checks_dtype_shape_and_block_axis() {
    let sd = default_node_shape_dtypes();
    let blocks = vec![
        block(&Node::many(NodeKind::SPIN, 2)),
        block(&Node::many(NodeKind::CATEGORICAL, 3)),
    ];
    let good = vec![spins_for(4, 2), cats_for(4, 3, 0)];
    verify_block_state(&blocks, &good, &sd, Some(-1)).unwrap();
    verify_block_state(&blocks, &good, &sd, Some(1)).unwrap();
    verify_block_state(&blocks, &good, &sd, None).unwrap();

    // Wrong dtype: u8 for the spin block.
    let e = err(verify_block_state(
        &blocks,
        &[cats_for(4, 2, 0), cats_for(4, 3, 0)],
        &sd,
        None,
    ));
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    assert_message(&e, &["block 0", "uint8", "bool"]);
    // Wrong node count.
    let e = err(verify_block_state(
        &blocks,
        &[spins_for(4, 2), cats_for(4, 2, 0)],
        &sd,
        Some(-1),
    ));
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    assert_message(&e, &["node axis has length 2", "3 nodes"]);
    // The node count at an explicit axis: axis 0 is the chain axis here.
    let e = err(verify_block_state(&blocks, &good, &sd, Some(0)));
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    // An axis that does not exist.
    let e = err(verify_block_state(&blocks, &good, &sd, Some(5)));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    assert_message(&e, &["no axis 5"]);
    let e = err(verify_block_state(&blocks, &good, &sd, Some(-3)));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    // Wrong number of states.
    let e = err(verify_block_state(&blocks, &good[..1], &sd, None));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    assert_message(&e, &["1 states for 2 blocks"]);
    // Wrong number of leaves.
    let e = err(verify_block_state(
        &blocks,
        &[vec![], good[1].clone()],
        &sd,
        None,
    ));
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    assert_message(&e, &["1 leaves", "has 0"]);

    // Multi-leaf kinds: leaf shapes and batch shapes must agree.
    let kind = NodeKind::new("validation-vec");
    let mut sd = sd;
    sd.insert(
        kind,
        StateLayout::new(vec![
            LeafSpec::new(DType::F32, vec![2]),
            LeafSpec::scalar(DType::Bool),
        ]),
    );
    let b = vec![block(&Node::many(kind, 3))];
    let ok = vec![vec![
        Tensor::zeros(DType::F32, &[5, 3, 2]),
        Tensor::zeros(DType::Bool, &[5, 3]),
    ]];
    verify_block_state(&b, &ok, &sd, Some(-1)).unwrap();
    let bad_leaf = vec![vec![
        Tensor::zeros(DType::F32, &[5, 3, 4]),
        Tensor::zeros(DType::Bool, &[5, 3]),
    ]];
    let e = err(verify_block_state(&b, &bad_leaf, &sd, None));
    assert_message(&e, &["does not end in the leaf shape [2]"]);
    let bad_batch = vec![vec![
        Tensor::zeros(DType::F32, &[5, 3, 2]),
        Tensor::zeros(DType::Bool, &[4, 3]),
    ]];
    let e = err(verify_block_state(&b, &bad_batch, &sd, None));
    assert_message(&e, &["different batch shapes"]);
    let too_small = vec![vec![
        Tensor::zeros(DType::F32, &[]),
        Tensor::zeros(DType::Bool, &[3]),
    ]];
    let e = err(verify_block_state(&b, &too_small, &sd, None));
    assert_message(&e, &["too few dimensions"]);
}

/// Two coupled spins sampled in two blocks.
fn spin_pair_program() -> (BlockSamplingProgram, Vec<Block>) {
    let s = Node::many(NodeKind::SPIN, 2);
    let ebm = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1])],
        vec![0.0, 0.0],
        vec![1.0],
        1.0,
    )
    .unwrap();
    let blocks = vec![block(&[s[0]]), block(&[s[1]])];
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let spec = program.gibbs_spec.clone();
    let samplers = program.samplers.clone();
    let groups = ebm
        .factors()
        .iter()
        .flat_map(|f| f.to_interaction_groups())
        .collect();
    (
        BlockSamplingProgram::new(spec, samplers, groups).unwrap(),
        blocks,
    )
}

#[test]
fn sample_states_rejects_bad_init_states() {
    let (program, blocks) = spin_pair_program();
    let schedule = SamplingSchedule::new(1, 2, 1).unwrap();
    let run =
        |init: Vec<State>| sample_states(Key::new(0), &program, &schedule, &init, &[], &blocks);
    run(vec![spins_for(3, 1), spins_for(3, 1)]).unwrap();

    // Wrong dtype.
    let e = err(run(vec![cats_for(3, 1, 0), spins_for(3, 1)]));
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    assert_message(&e, &["uint8"]);
    // Wrong node count.
    let e = err(run(vec![spins_for(3, 1), spins_for(3, 2)]));
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    // No chain axis.
    let e = err(run(vec![spin_state(&[true]), spin_state(&[true])]));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    // Two chain axes.
    let two = vec![Tensor::from(
        ndarray::Array3::from_elem((2, 3, 1), true).into_dyn(),
    )];
    let e = err(run(vec![two.clone(), two]));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    assert_message(&e, &["[chains, nodes"]);
    // Different chain counts.
    let e = err(run(vec![spins_for(3, 1), spins_for(4, 1)]));
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    assert_message(&e, &["4 chains", "3"]);
    // Missing block state.
    let e = err(run(vec![spins_for(3, 1)]));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    // Unexpected clamped state.
    let e = err(sample_states(
        Key::new(0),
        &program,
        &schedule,
        &[spins_for(3, 1), spins_for(3, 1)],
        &[spins_for(3, 1)],
        &blocks,
    ));
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    // Observing a node the program does not know.
    let stranger = block(&[Node::spin()]);
    let e = err(sample_states(
        Key::new(0),
        &program,
        &schedule,
        &[spins_for(3, 1), spins_for(3, 1)],
        &[],
        &[stranger],
    ));
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");
}

#[test]
fn clamped_states_need_matching_chains() {
    let s = Node::many(NodeKind::SPIN, 2);
    let ebm = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1])],
        vec![0.0, 0.0],
        vec![1.0],
        1.0,
    )
    .unwrap();
    let free = vec![block(&[s[0]])];
    let program = IsingSamplingProgram::new(&ebm, free.clone(), vec![block(&[s[1]])]).unwrap();
    let schedule = SamplingSchedule::new(1, 2, 1).unwrap();
    let run = |clamp: State| {
        sample_states(
            Key::new(0),
            &program,
            &schedule,
            &[spins_for(3, 1)],
            &[clamp],
            &free,
        )
    };
    run(spin_state(&[true])).unwrap();
    run(spins_for(3, 1)).unwrap();
    let e = err(run(spins_for(2, 1)));
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    assert_message(&e, &["clamped state"]);
    // Clamped blocks are numbered after the free blocks, as in the spec.
    let e = err(run(cat_state(&[0])));
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    assert_message(&e, &["block 1", "clamped block 0", "uint8"]);
}

// ---------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------

#[test]
fn one_sampler_per_free_block() {
    let s = Node::many(NodeKind::SPIN, 3);
    let f = SpinEBMFactor::new(
        vec![block(&[s[0], s[1]]), block(&[s[1], s[2]])],
        arr1(&[1.0f32, 1.0]).into_dyn(),
    )
    .unwrap();
    let make = |n: usize| {
        let spec = BlockGibbsSpec::new(
            vec![block(&[s[0], s[2]]), block(&[s[1]])],
            vec![],
            &default_node_shape_dtypes(),
        )
        .unwrap();
        FactorSamplingProgram::new(
            spec,
            vec![spin_sampler(); n],
            &[Arc::new(f.clone())],
            vec![],
        )
    };
    make(2).unwrap();
    for n in [1, 3] {
        let e = err(make(n));
        assert!(
            matches!(e, Error::SamplerCount { expected: 2, got } if got == n),
            "{e:?}"
        );
        assert_message(&e, &["expected 2 samplers", &format!("got {n}")]);
    }
}

#[test]
fn interacting_nodes_cannot_share_a_superblock() {
    let s = Node::many(NodeKind::SPIN, 3);
    let factors = vec![Arc::new(pair_factor(s[0], s[1]))];
    let sd = default_node_shape_dtypes();
    // Both ends of the pair in one block.
    let spec = BlockGibbsSpec::new(vec![block(&s[..2]), block(&[s[2]])], vec![], &sd).unwrap();
    let e = err(FactorSamplingProgram::new(
        spec.clone(),
        vec![spin_sampler(); 2],
        &factors,
        vec![],
    ));
    assert!(
        matches!(e, Error::InteractingBlock { superblock: 0, .. }),
        "{e:?}"
    );
    assert_message(
        &e,
        &[
            &s[0].id().to_string(),
            &s[1].id().to_string(),
            "superblock 0",
            "kind `spin`",
            "interaction group 0",
            "new_allowing_interacting_superblocks",
        ],
    );
    // In two blocks of one superblock.
    let superblocks = vec![
        SuperBlock(vec![block(&[s[2]])]),
        SuperBlock(vec![block(&[s[0]]), block(&[s[1]])]),
    ];
    let spec2 = BlockGibbsSpec::new(superblocks, vec![], &sd).unwrap();
    let e = err(FactorSamplingProgram::new(
        spec2.clone(),
        vec![spin_sampler(); 3],
        &factors,
        vec![],
    ));
    assert!(
        matches!(e, Error::InteractingBlock { superblock: 1, .. }),
        "{e:?}"
    );
    // The opt-out builds both.
    let groups: Vec<InteractionGroup> = factors[0].to_interaction_groups();
    BlockSamplingProgram::new_allowing_interacting_superblocks(
        spec,
        vec![spin_sampler(); 2],
        groups.clone(),
    )
    .unwrap();
    BlockSamplingProgram::new_allowing_interacting_superblocks(
        spec2,
        vec![spin_sampler(); 3],
        groups,
    )
    .unwrap();
    // A clamped neighbour is fine.
    let spec = BlockGibbsSpec::new(vec![block(&[s[0], s[2]])], vec![block(&[s[1]])], &sd).unwrap();
    FactorSamplingProgram::new(spec, vec![spin_sampler()], &factors, vec![]).unwrap();
}

#[test]
fn tail_nodes_must_be_free_or_clamped() {
    let s = Node::many(NodeKind::SPIN, 2);
    let factors = vec![Arc::new(pair_factor(s[0], s[1]))];
    let spec =
        BlockGibbsSpec::new(vec![block(&[s[0]])], vec![], &default_node_shape_dtypes()).unwrap();
    let e = err(FactorSamplingProgram::new(
        spec,
        vec![spin_sampler()],
        &factors,
        vec![],
    ));
    assert!(matches!(e, Error::InteractionGroup(_)), "{e:?}");
    assert_message(&e, &[&s[1].id().to_string(), "neither free nor clamped"]);
}

/// `c0` (K = 3) coupled to `c1` (K = 3), both free.
fn potts_pair(k0: usize, k1: usize) -> (Vec<Node>, CategoricalEBMFactor) {
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let f = CategoricalEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        ArrayD::zeros(IxDyn(&[1, k0, k1])),
    )
    .unwrap();
    (c, f)
}

#[test]
fn categorical_values_must_be_in_range() {
    let (c, f) = potts_pair(3, 3);
    let spec = BlockGibbsSpec::new(
        vec![block(&[c[0]])],
        vec![block(&[c[1]])],
        &default_node_shape_dtypes(),
    )
    .unwrap();
    let program =
        FactorSamplingProgram::new(spec, vec![cat_sampler(3)], &[Arc::new(f)], vec![]).unwrap();
    let free = vec![block(&[c[0]])];
    let schedule = SamplingSchedule::new(1, 2, 1).unwrap();
    let run = |init: u8, clamp: u8| {
        sample_states(
            Key::new(0),
            &program,
            &schedule,
            &[cats_for(2, 1, init)],
            &[cat_state(&[clamp])],
            &free,
        )
    };
    run(2, 2).unwrap();
    let e = err(run(3, 0));
    assert!(matches!(e, Error::ValueOutOfRange(_)), "{e:?}");
    assert_message(&e, &[&c[0].id().to_string(), "state 3", "0..3"]);
    let e = err(run(0, 200));
    assert!(matches!(e, Error::ValueOutOfRange(_)), "{e:?}");
    assert_message(&e, &[&c[1].id().to_string(), "state 200"]);
    // Per-chain clamps are checked chain by chain.
    let e = err(sample_states(
        Key::new(0),
        &program,
        &schedule,
        &[cats_for(2, 1, 0)],
        &[vec![Tensor::from(arr2(&[[0u8], [5]]).into_dyn())]],
        &free,
    ));
    assert!(matches!(e, Error::ValueOutOfRange(_)), "{e:?}");
    assert_message(&e, &["chain 1"]);
}

#[test]
fn a_categorical_node_has_one_number_of_categories() {
    let c = Node::many(NodeKind::CATEGORICAL, 3);
    let k3 = CategoricalEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        ArrayD::zeros(IxDyn(&[1, 3, 3])),
    )
    .unwrap();
    let k2 = CategoricalEBMFactor::new(
        vec![block(&[c[1]]), block(&[c[2]])],
        ArrayD::zeros(IxDyn(&[1, 2, 2])),
    )
    .unwrap();
    let spec = BlockGibbsSpec::new(
        vec![block(&[c[0], c[2]]), block(&[c[1]])],
        vec![],
        &default_node_shape_dtypes(),
    )
    .unwrap();
    let e = err(FactorSamplingProgram::new(
        spec,
        vec![cat_sampler(3), cat_sampler(3)],
        &[Arc::new(k3), Arc::new(k2)],
        vec![],
    ));
    assert!(
        matches!(e, Error::Categories { node, .. } if node == c[1].id()),
        "{e:?}"
    );
    assert_message(&e, &[&c[1].id().to_string(), "3 categories", "2"]);
}

#[test]
fn samplers_must_fit_their_blocks() {
    let s = Node::spin();
    let c = Node::categorical();
    let f = DiscreteEBMFactor::new(
        vec![block(&[s])],
        vec![block(&[c])],
        arr2(&[[1.0f32, 0.0, -1.0]]).into_dyn(),
    )
    .unwrap();
    let factors = vec![Arc::new(f)];
    let build = |samplers: Vec<Arc<dyn AbstractConditionalSampler>>| {
        let spec = BlockGibbsSpec::new(
            vec![block(&[s]), block(&[c])],
            vec![],
            &default_node_shape_dtypes(),
        )
        .unwrap();
        FactorSamplingProgram::new(spec, samplers, &factors, vec![])
    };
    build(vec![spin_sampler(), cat_sampler(3)]).unwrap();
    // A spin sampler on the categorical block.
    let e = err(build(vec![spin_sampler(), spin_sampler()]));
    assert!(matches!(e, Error::Sampler { block: 1, .. }), "{e:?}");
    assert_message(&e, &["free block 1", "SpinGibbsConditional", "bool"]);
    // A categorical sampler on the spin block.
    let e = err(build(vec![cat_sampler(3), cat_sampler(3)]));
    assert!(matches!(e, Error::Sampler { block: 0, .. }), "{e:?}");
    assert_message(&e, &["CategoricalGibbsConditional", "uint8"]);
    // The wrong number of categories.
    for k in [2, 4] {
        let e = err(build(vec![spin_sampler(), cat_sampler(k)]));
        assert!(matches!(e, Error::Sampler { block: 1, .. }), "{e:?}");
        assert_message(&e, &[&format!("{k} categories"), "[1, 3]"]);
    }
    for k in [0, 300] {
        let e = err(build(vec![spin_sampler(), cat_sampler(k)]));
        assert!(matches!(e, Error::Sampler { block: 1, .. }), "{e:?}");
        assert_message(&e, &[&format!("n_categories is {k}")]);
    }
}

#[test]
fn categorical_sampler_must_match_categories_seen_only_as_a_tail() {
    // c1 heads no interaction, but c0's interaction reads it with K = 2. A sampler that
    // draws c1 from 3 categories would index out of range, so the program refuses it.
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let directed = InteractionGroup::new(
        DiscreteEBMInteraction {
            n_spin: 0,
            weights: ArrayD::zeros(IxDyn(&[1, 2, 2])).into_shared(),
        },
        block(&[c[0]]),
        vec![block(&[c[1]])],
    )
    .unwrap();
    let build = |k: usize| {
        let spec = BlockGibbsSpec::new(
            vec![block(&[c[0]]), block(&[c[1]])],
            vec![],
            &default_node_shape_dtypes(),
        )
        .unwrap();
        BlockSamplingProgram::new(
            spec,
            vec![cat_sampler(2), cat_sampler(k)],
            vec![directed.clone()],
        )
    };
    let program = build(2).unwrap();
    let blocks = program.gibbs_spec.free_blocks.clone();
    sample_states(
        Key::new(0),
        &program,
        &SamplingSchedule::new(5, 5, 1).unwrap(),
        &[cats_for(4, 1, 0), cats_for(4, 1, 1)],
        &[],
        &blocks,
    )
    .unwrap();
    let e = err(build(3));
    assert!(matches!(e, Error::Sampler { block: 1, .. }), "{e:?}");
    assert_message(
        &e,
        &[
            "draws 3 categories",
            &c[1].id().to_string(),
            "with 2 categories",
        ],
    );
}

#[test]
fn spin_sampler_rejects_foreign_interactions() {
    #[derive(Debug)]
    struct Custom;
    impl Interaction for Custom {
        fn n_rows(&self) -> usize {
            1
        }
    }
    let s = Node::many(NodeKind::SPIN, 2);
    let group = InteractionGroup::new(Custom, block(&[s[0]]), vec![block(&[s[1]])]).unwrap();
    let spec = BlockGibbsSpec::new(
        vec![block(&[s[0]]), block(&[s[1]])],
        vec![],
        &default_node_shape_dtypes(),
    )
    .unwrap();
    let e = err(BlockSamplingProgram::new(
        spec,
        vec![spin_sampler(), spin_sampler()],
        vec![group],
    ));
    assert!(matches!(e, Error::Sampler { block: 0, .. }), "{e:?}");
    assert_message(&e, &["cannot handle", "Custom"]);
}

#[test]
fn spin_groups_must_hold_spins() {
    // The built-in categorical kind used as a spin: the factor is fine on its own, but the
    // spin sampler's tails and the energy need bool states.
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let f = SpinEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        arr1(&[1.0f32]).into_dyn(),
    )
    .unwrap();
    let spec = BlockGibbsSpec::new(
        vec![block(&[c[0]]), block(&[c[1]])],
        vec![],
        &default_node_shape_dtypes(),
    )
    .unwrap();
    let e = err(FactorSamplingProgram::new(
        spec,
        vec![spin_sampler(), spin_sampler()],
        &[Arc::new(f.clone())],
        vec![],
    ));
    assert!(matches!(e, Error::Sampler { .. }), "{e:?}");
    let e = err(FactorizedEBM::new(vec![Arc::new(f)]).energy(&[cat_state(&[0, 1])], &[block(&c)]));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["spin", "bool"]);
}

#[test]
fn schedules_need_samples() {
    let e = err(SamplingSchedule::new(10, 0, 1));
    assert!(matches!(e, Error::Schedule(_)), "{e:?}");
    assert_message(&e, &["n_samples"]);
    SamplingSchedule::new(0, 1, 0).unwrap();
    // A schedule built field by field is checked when it runs.
    let (program, blocks) = spin_pair_program();
    let schedule = SamplingSchedule {
        n_warmup: 1,
        n_samples: 0,
        steps_per_sample: 1,
    };
    let e = err(sample_states(
        Key::new(0),
        &program,
        &schedule,
        &[spins_for(2, 1), spins_for(2, 1)],
        &[],
        &blocks,
    ));
    assert!(matches!(e, Error::Schedule(_)), "{e:?}");
}

#[test]
fn observers_validate_their_spec() {
    let s = Node::many(NodeKind::SPIN, 3);
    let e = err(MomentAccumulatorObserver::new(
        vec![vec![vec![s[0], s[1]], vec![s[2]]]],
        spin_transform(),
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["moment 1 has 1 nodes", "moment 0 has 2"]);
    let (program, _) = spin_pair_program();
    let observer =
        MomentAccumulatorObserver::new(vec![vec![vec![s[0]]]], spin_transform()).unwrap();
    let e = err(sample_with_observation(
        Key::new(0),
        &program,
        &SamplingSchedule::new(0, 1, 1).unwrap(),
        &[spins_for(2, 1), spins_for(2, 1)],
        &[],
        observer.init(2),
        &observer,
    ));
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");

    // A carry for the wrong number of chains, and a transform of the wrong shape.
    let blocks = program.gibbs_spec.free_blocks.clone();
    let observer = MomentAccumulatorObserver::new(
        vec![
            vec![vec![blocks[0][0]]],
            vec![vec![blocks[0][0], blocks[1][0]]],
        ],
        spin_transform(),
    )
    .unwrap();
    let run = |observer: &MomentAccumulatorObserver, carry| {
        sample_with_observation(
            Key::new(0),
            &program,
            &SamplingSchedule::new(0, 2, 1).unwrap(),
            &[spins_for(3, 1), spins_for(3, 1)],
            &[],
            carry,
            observer,
        )
    };
    run(&observer, observer.init(3)).unwrap();
    for chains in [2, 4] {
        let e = err(run(&observer, observer.init(chains)));
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert_message(&e, &["moment carry", "init(3)"]);
    }
    let e = err(run(&observer, observer.init(3)[..1].to_vec()));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let bad_transform: MomentTransform = Arc::new(|_: &State, _: &Block| Array2::zeros((1, 1)));
    let bad =
        MomentAccumulatorObserver::new(vec![vec![vec![blocks[0][0]]]], bad_transform).unwrap();
    let e = err(run(&bad, bad.init(3)));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["transform returned shape [1, 1]"]);
}

#[test]
fn exact_distribution_validates_clamps() {
    use thrml::exact::{DiscreteVar, ExactDistribution};
    let (c, f) = potts_pair(3, 3);
    let ebm = FactorizedEBM::new(vec![Arc::new(f)]);
    let e = err(ExactDistribution::new(
        &ebm,
        &[DiscreteVar::Categorical(c[0], 3)],
        &[(DiscreteVar::Categorical(c[1], 3), 3)],
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["value 3", "0..3"]);
    // A variable missing from the enumeration.
    let e = err(ExactDistribution::new(
        &ebm,
        &[DiscreteVar::Categorical(c[0], 3)],
        &[],
    ));
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");
}

#[test]
fn global_state_extraction_checks_the_state() {
    let s = Node::many(NodeKind::SPIN, 3);
    let spec = BlockSpec::new(vec![block(&s)], &default_node_shape_dtypes()).unwrap();
    // A global state from some other spec: too few nodes, no slots, no leaves.
    let global = vec![spin_state(&[true, false, true])];
    let got = from_global_state(&global, &spec, &[block(&[s[2], s[0]])]).unwrap();
    assert_eq!(got, vec![spin_state(&[true, true])]);
    let e = err(from_global_state(
        &[spin_state(&[true])],
        &spec,
        &[block(&[s[2]])],
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["slot 0", "at least 3 nodes"]);
    let e = err(from_global_state(&[], &spec, &[block(&[s[2]])]));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["0 slots"]);
    let e = err(from_global_state(&[vec![]], &spec, &[block(&[s[2]])]));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["0 leaves"]);
    let e = err(from_global_state(
        &[cat_state(&[0, 1, 2])],
        &spec,
        &[block(&[s[2]])],
    ));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_message(&e, &["uint8", "needs bool"]);
    let scalar = vec![vec![Tensor::zeros(DType::Bool, &[])]];
    let e = err(from_global_state(&scalar, &spec, &[block(&[s[2]])]));
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
}
