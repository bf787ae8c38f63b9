//! Block management: block ↔ global state round trips (`block_state_to_global`,
//! `from_global_state`), `get_node_locations`, `make_empty_block_state` and
//! `verify_block_state`, with and without batch shapes, for built-in kinds, a user kind with
//! a multi-leaf layout, and two kinds whose equal layouts share a global slot.

use ndarray::{ArrayD, IxDyn};
use thrml::*;

fn block(nodes: &[Node]) -> Block {
    Block::new(nodes.to_vec()).unwrap()
}

/// A user kind whose state is a 2-vector of `f32` and a `bool` flag.
fn particle() -> (NodeKind, NodeShapeDtypes) {
    let kind = NodeKind::new("bm-particle");
    let mut sd = default_node_shape_dtypes();
    sd.insert(
        kind,
        StateLayout::new(vec![
            LeafSpec::new(DType::F32, vec![2]),
            LeafSpec::scalar(DType::Bool),
        ]),
    );
    (kind, sd)
}

/// A tensor of `leaf` for `n` nodes under `batch`, filled with distinct values derived
/// from `tag` (so mixed-up nodes are caught).
fn filled(leaf: &LeafSpec, batch: &[usize], n: usize, tag: usize) -> Tensor {
    let mut shape = batch.to_vec();
    shape.push(n);
    shape.extend_from_slice(&leaf.shape);
    let value = |i: usize| tag * 1000 + i;
    let size: usize = shape.iter().product();
    let flat: Vec<usize> = (0..size).map(value).collect();
    let dim = IxDyn(&shape);
    match leaf.dtype {
        DType::Bool => Tensor::from(
            ArrayD::from_shape_vec(dim, flat.iter().map(|v| (v * 7 + v / 3) % 2 == 1).collect())
                .unwrap(),
        ),
        DType::U8 => Tensor::from(
            ArrayD::from_shape_vec(dim, flat.iter().map(|&v| (v % 251) as u8).collect()).unwrap(),
        ),
        DType::I32 => Tensor::from(
            ArrayD::from_shape_vec(dim, flat.iter().map(|&v| v as i32).collect()).unwrap(),
        ),
        DType::F32 => Tensor::from(
            ArrayD::from_shape_vec(dim, flat.iter().map(|&v| v as f32).collect()).unwrap(),
        ),
        DType::F64 => Tensor::from(
            ArrayD::from_shape_vec(dim, flat.iter().map(|&v| v as f64).collect()).unwrap(),
        ),
    }
}

/// A filled block state for `blocks`.
fn filled_state(blocks: &[Block], sd: &NodeShapeDtypes, batch: &[usize]) -> Vec<State> {
    blocks
        .iter()
        .enumerate()
        .map(|(b, blk)| {
            sd[&blk.node_kind()]
                .leaves()
                .iter()
                .enumerate()
                .map(|(l, leaf)| filled(leaf, batch, blk.len(), 10 * b + l))
                .collect()
        })
        .collect()
}

/// Node `j` of a leaf tensor (`batch + [n] + leaf`), as a tensor of `batch + leaf`.
fn node_slice(t: &Tensor, batch_rank: usize, j: usize) -> Tensor {
    match t {
        Tensor::Bool(a) => Tensor::from(a.index_axis(ndarray::Axis(batch_rank), j).to_owned()),
        Tensor::U8(a) => Tensor::from(a.index_axis(ndarray::Axis(batch_rank), j).to_owned()),
        Tensor::I32(a) => Tensor::from(a.index_axis(ndarray::Axis(batch_rank), j).to_owned()),
        Tensor::F32(a) => Tensor::from(a.index_axis(ndarray::Axis(batch_rank), j).to_owned()),
        Tensor::F64(a) => Tensor::from(a.index_axis(ndarray::Axis(batch_rank), j).to_owned()),
    }
}

/// Round-trip `blocks` through the global state with the given batch shape, and check that
/// every node's state sits where `get_node_locations` says.
fn assert_round_trip(blocks: &[Block], sd: &NodeShapeDtypes, batch: &[usize]) -> Vec<State> {
    let spec = BlockSpec::new(blocks.to_vec(), sd).unwrap();
    let state = filled_state(blocks, sd, batch);
    verify_block_state(blocks, &state, sd, Some(-1)).unwrap();
    let global = block_state_to_global(&state, &spec).unwrap();
    assert_eq!(global.len(), spec.global_sd_order.len());
    for (slot, layout) in spec.global_sd_order.iter().enumerate() {
        assert_eq!(global[slot].len(), layout.leaves().len());
        for (t, leaf) in global[slot].iter().zip(layout.leaves()) {
            let mut want = batch.to_vec();
            want.push(spec.slot_sizes[slot]);
            want.extend_from_slice(&leaf.shape);
            assert_eq!(t.shape(), want.as_slice());
            assert_eq!(t.dtype(), leaf.dtype);
            assert!(t.as_slice::<f32>().is_some() || t.dtype() != DType::F32);
        }
    }
    // Every block comes back unchanged, and every node is where the spec says.
    let back = from_global_state(&global, &spec, blocks).unwrap();
    assert_eq!(back, state);
    for (b, blk) in blocks.iter().enumerate() {
        let (slot, positions) = get_node_locations(blk, &spec).unwrap();
        assert_eq!(spec.global_sd_order[slot], spec.all_block_sds[b]);
        for (j, (&node, &p)) in blk.nodes().iter().zip(&positions).enumerate() {
            assert_eq!(spec.location(node).unwrap(), (slot, p));
            for (l, t) in global[slot].iter().enumerate() {
                assert_eq!(
                    node_slice(t, batch.len(), p),
                    node_slice(&state[b][l], batch.len(), j),
                    "block {b} node {j} leaf {l}"
                );
            }
        }
    }
    // Blocks cut differently from the spec's: a reversed subset of each block.
    let subsets: Vec<Block> = blocks
        .iter()
        .map(|b| {
            let mut nodes: Vec<Node> = b.nodes().iter().copied().step_by(2).collect();
            nodes.reverse();
            block(&nodes)
        })
        .collect();
    let picked = from_global_state(&global, &spec, &subsets).unwrap();
    verify_block_state(&subsets, &picked, sd, Some(-1)).unwrap();
    for (b, (sub, st)) in subsets.iter().zip(&picked).enumerate() {
        for (k, &node) in sub.nodes().iter().enumerate() {
            let j = blocks[b].nodes().iter().position(|&n| n == node).unwrap();
            for l in 0..st.len() {
                assert_eq!(
                    node_slice(&st[l], batch.len(), k),
                    node_slice(&state[b][l], batch.len(), j)
                );
            }
        }
    }
    global
}

#[test]
fn round_trip_built_in_kinds() {
    let s = Node::many(NodeKind::SPIN, 5);
    let c = Node::many(NodeKind::CATEGORICAL, 4);
    let blocks = vec![
        block(&s[..2]),
        block(&c[..3]),
        block(&s[2..]),
        block(&c[3..]),
    ];
    let sd = default_node_shape_dtypes();
    for batch in [&[][..], &[4], &[2, 3]] {
        let global = assert_round_trip(&blocks, &sd, batch);
        // Two slots: spins (2 + 3 nodes) then categoricals (3 + 1 nodes).
        assert_eq!(global.len(), 2);
        assert_eq!(global[0][0].shape()[batch.len()], 5);
        assert_eq!(global[1][0].shape()[batch.len()], 4);
    }
}

#[test]
fn round_trip_multi_leaf_user_kind() {
    let (kind, sd) = particle();
    let p = Node::many(kind, 5);
    let s = Node::many(NodeKind::SPIN, 2);
    let blocks = vec![block(&p[..3]), block(&s), block(&p[3..])];
    for batch in [&[][..], &[3], &[2, 2]] {
        let global = assert_round_trip(&blocks, &sd, batch);
        assert_eq!(global.len(), 2);
        // The particle slot has two leaves: [batch, 5, 2] f32 and [batch, 5] bool.
        let mut f = batch.to_vec();
        f.extend([5, 2]);
        assert_eq!(global[0][0].shape(), f.as_slice());
        assert_eq!(global[0][1].shape(), &f[..f.len() - 1]);
    }
}

#[test]
fn equal_layouts_share_a_slot() {
    let spin_b = NodeKind::new("bm-spin-b");
    let mut sd = default_node_shape_dtypes();
    sd.insert(spin_b, StateLayout::scalar(DType::Bool));
    let a = Node::many(NodeKind::SPIN, 3);
    let b = Node::many(spin_b, 2);
    let c = Node::categorical();
    let blocks = vec![block(&b), block(&[c]), block(&a)];
    let spec = BlockSpec::new(blocks.clone(), &sd).unwrap();
    assert_eq!(
        spec.global_sd_order,
        vec![
            StateLayout::scalar(DType::Bool),
            StateLayout::scalar(DType::U8)
        ]
    );
    assert_eq!(spec.block_to_global_slice_spec, vec![vec![0, 2], vec![1]]);
    assert_eq!(spec.slot_sizes, vec![5, 1]);
    assert_eq!(spec.block_offsets, vec![(0, 0), (1, 0), (0, 2)]);
    // spin_b nodes first (their block comes first), then the spins.
    assert_eq!(spec.location(b[1]).unwrap(), (0, 1));
    assert_eq!(spec.location(a[0]).unwrap(), (0, 2));
    assert_eq!(
        get_node_locations(&block(&[a[2], a[0]]), &spec).unwrap(),
        (0, vec![4, 2])
    );
    assert_eq!(
        get_node_locations(&block(&[b[1]]), &spec).unwrap(),
        (0, vec![1])
    );
    for batch in [&[][..], &[6]] {
        let global = assert_round_trip(&blocks, &sd, batch);
        assert_eq!(global.len(), 2);
    }
    // The concatenated slot holds b then a.
    let state = vec![
        vec![Tensor::from(ndarray::arr1(&[true, false]).into_dyn())],
        vec![Tensor::from(ndarray::arr1(&[2u8]).into_dyn())],
        vec![Tensor::from(
            ndarray::arr1(&[false, false, true]).into_dyn(),
        )],
    ];
    let global = block_state_to_global(&state, &spec).unwrap();
    assert_eq!(
        global[0],
        vec![Tensor::from(
            ndarray::arr1(&[true, false, false, false, true]).into_dyn()
        )]
    );
}

#[test]
fn global_slot_order_is_first_appearance() {
    let (kind, sd) = particle();
    let s = Node::many(NodeKind::SPIN, 2);
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let p = Node::many(kind, 2);
    let particle_layout = sd[&kind].clone();
    let bool_layout = StateLayout::scalar(DType::Bool);
    let u8_layout = StateLayout::scalar(DType::U8);
    let orders = [
        (
            vec![block(&c[..1]), block(&s), block(&p), block(&c[1..])],
            vec![
                u8_layout.clone(),
                bool_layout.clone(),
                particle_layout.clone(),
            ],
        ),
        (
            vec![block(&p), block(&c), block(&s)],
            vec![
                particle_layout.clone(),
                u8_layout.clone(),
                bool_layout.clone(),
            ],
        ),
        (
            vec![
                block(&s[..1]),
                block(&p[..1]),
                block(&s[1..]),
                block(&c),
                block(&p[1..]),
            ],
            vec![bool_layout, particle_layout, u8_layout],
        ),
    ];
    for (blocks, want) in orders {
        for _ in 0..3 {
            let spec = BlockSpec::new(blocks.clone(), &sd).unwrap();
            assert_eq!(spec.global_sd_order, want);
            for (i, layout) in want.iter().enumerate() {
                assert_eq!(spec.sd_index_map[layout], i);
            }
            assert_eq!(
                spec.all_block_sds,
                blocks
                    .iter()
                    .map(|b| sd[&b.node_kind()].clone())
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn make_empty_block_state_shapes() {
    let (kind, sd) = particle();
    let blocks = vec![
        block(&Node::many(NodeKind::SPIN, 3)),
        block(&Node::many(NodeKind::CATEGORICAL, 2)),
        block(&Node::many(kind, 4)),
    ];
    let unbatched = make_empty_block_state(&blocks, &sd, None).unwrap();
    assert_eq!(
        unbatched,
        vec![
            vec![Tensor::zeros(DType::Bool, &[3])],
            vec![Tensor::zeros(DType::U8, &[2])],
            vec![
                Tensor::zeros(DType::F32, &[4, 2]),
                Tensor::zeros(DType::Bool, &[4])
            ],
        ]
    );
    assert_eq!(
        make_empty_block_state(&blocks, &sd, Some(&[])).unwrap(),
        unbatched
    );
    verify_block_state(&blocks, &unbatched, &sd, Some(-1)).unwrap();
    let batched = make_empty_block_state(&blocks, &sd, Some(&[5, 2])).unwrap();
    assert_eq!(batched[0], vec![Tensor::zeros(DType::Bool, &[5, 2, 3])]);
    assert_eq!(batched[1], vec![Tensor::zeros(DType::U8, &[5, 2, 2])]);
    assert_eq!(
        batched[2],
        vec![
            Tensor::zeros(DType::F32, &[5, 2, 4, 2]),
            Tensor::zeros(DType::Bool, &[5, 2, 4])
        ]
    );
    verify_block_state(&blocks, &batched, &sd, Some(-1)).unwrap();
    verify_block_state(&blocks, &batched, &sd, Some(2)).unwrap();
    // Every state made empty round-trips.
    let spec = BlockSpec::new(blocks.clone(), &sd).unwrap();
    let global = block_state_to_global(&batched, &spec).unwrap();
    assert_eq!(from_global_state(&global, &spec, &blocks).unwrap(), batched);
}

#[test]
fn verify_block_state_block_axis() {
    let (kind, sd) = particle();
    // Batch shape [4, 3] in front of 3 nodes: axes 0 and 1 are batch, 2 is the node axis.
    let blocks = vec![
        block(&Node::many(kind, 3)),
        block(&Node::many(NodeKind::SPIN, 3)),
    ];
    let state = make_empty_block_state(&blocks, &sd, Some(&[4, 3])).unwrap();
    verify_block_state(&blocks, &state, &sd, None).unwrap();
    verify_block_state(&blocks, &state, &sd, Some(-1)).unwrap();
    verify_block_state(&blocks, &state, &sd, Some(2)).unwrap();
    // Axis 1 (length 3) happens to match too; axis 0 (length 4) does not.
    verify_block_state(&blocks, &state, &sd, Some(1)).unwrap();
    verify_block_state(&blocks, &state, &sd, Some(-2)).unwrap();
    let e = verify_block_state(&blocks, &state, &sd, Some(0)).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    let e = verify_block_state(&blocks, &state, &sd, Some(-3)).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { block: 0, .. }), "{e:?}");
    let e = verify_block_state(&blocks, &state, &sd, Some(3)).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    let e = verify_block_state(&blocks, &state, &sd, Some(-4)).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    // An unbatched state has only the node axis.
    let flat = make_empty_block_state(&blocks, &sd, None).unwrap();
    verify_block_state(&blocks, &flat, &sd, Some(-1)).unwrap();
    verify_block_state(&blocks, &flat, &sd, Some(0)).unwrap();
    assert!(verify_block_state(&blocks, &flat, &sd, Some(1)).is_err());
}

#[test]
fn block_state_to_global_checks_batch_shapes() {
    let s = Node::many(NodeKind::SPIN, 4);
    let blocks = vec![block(&s[..2]), block(&s[2..])];
    let spec = BlockSpec::new(blocks, &default_node_shape_dtypes()).unwrap();
    let state = vec![
        vec![Tensor::zeros(DType::Bool, &[3, 2])],
        vec![Tensor::zeros(DType::Bool, &[4, 2])],
    ];
    let e = block_state_to_global(&state, &spec).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { block: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("batch shape [4]"), "{e}");
    let e = block_state_to_global(&state[..1], &spec).unwrap_err();
    assert!(matches!(e, Error::StateMismatch { .. }), "{e:?}");
    let stranger = block(&[Node::spin()]);
    let e = get_node_locations(&stranger, &spec).unwrap_err();
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");
    let e = get_node_locations(&block(&[Node::categorical()]), &spec).unwrap_err();
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");
}

#[test]
fn block_gibbs_spec_orders_free_then_clamped() {
    let s = Node::many(NodeKind::SPIN, 5);
    let c = Node::categorical();
    let spec = BlockGibbsSpec::new(
        vec![
            SuperBlock(vec![block(&s[..2]), block(&[c])]),
            SuperBlock::from(block(&s[2..4])),
        ],
        vec![block(&s[4..])],
        &default_node_shape_dtypes(),
    )
    .unwrap();
    assert_eq!(spec.free_blocks.len(), 3);
    assert_eq!(spec.sampling_order, vec![vec![0, 1], vec![2]]);
    assert_eq!(spec.blocks.len(), 4);
    assert_eq!(spec.blocks[3], block(&s[4..]));
    assert_eq!(spec.location(s[4]).unwrap(), (0, 4));
    assert_eq!(spec.location(c).unwrap(), (1, 0));
    assert_eq!(spec.block_spec().slot_sizes, vec![5, 1]);
}
