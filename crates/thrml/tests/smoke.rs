//! Quick end-to-end check: Ising and Potts pairs sampled through the library match enumeration.
mod common;
use thrml::exact::{DiscreteVar, ExactDistribution, sampled_values};
use thrml::*;

#[test]
fn ising_triangle_and_potts_pair_match_enumeration() {
    let s = Node::many(NodeKind::SPIN, 3);
    let ebm = IsingEBM::new(
        s.clone(),
        vec![(s[0], s[1]), (s[1], s[2])],
        vec![0.3, -0.2, 0.1],
        vec![0.8, -0.5],
        1.0,
    )
    .unwrap();
    let blocks = vec![
        Block::new(vec![s[0], s[2]]).unwrap(),
        Block::new(vec![s[1]]).unwrap(),
    ];
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let init: Vec<State> = hinton_init(Key::new(0), &ebm, &blocks, &[200])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect();
    let schedule = SamplingSchedule::new(10, 500, 2).unwrap();
    let samples = sample_states(Key::new(1), &program, &schedule, &init, &[], &blocks).unwrap();
    let vars: Vec<_> = s.iter().map(|&n| DiscreteVar::Spin(n)).collect();
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let vals = sampled_values(&vars, &blocks, &samples).unwrap();
    common::assert_matches_exact("ising chain", &exact, &vals);

    // Potts pair, K = 3, with a bias-like categorical factor
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let w = ndarray::arr3(&[[[1.0f32, -0.5, 0.0], [0.2, 0.7, -1.0], [0.0, 0.3, 0.5]]]).into_dyn();
    let f = CategoricalEBMFactor::new(
        vec![
            Block::new(vec![c[0]]).unwrap(),
            Block::new(vec![c[1]]).unwrap(),
        ],
        w,
    )
    .unwrap();
    let b = ndarray::arr2(&[[0.4f32, 0.0, -0.3]]).into_dyn();
    let fb = CategoricalEBMFactor::new(vec![Block::new(vec![c[0]]).unwrap()], b).unwrap();
    let factors: Vec<std::sync::Arc<dyn EBMFactor>> =
        vec![std::sync::Arc::new(f), std::sync::Arc::new(fb)];
    let blocks = vec![
        Block::new(vec![c[0]]).unwrap(),
        Block::new(vec![c[1]]).unwrap(),
    ];
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes()).unwrap();
    let sampler: std::sync::Arc<dyn AbstractConditionalSampler> =
        std::sync::Arc::new(CategoricalGibbsConditional::new(3));
    let program =
        FactorSamplingProgram::new(spec, vec![sampler.clone(), sampler], &factors, vec![]).unwrap();
    let init = make_empty_block_state(&blocks, &default_node_shape_dtypes(), Some(&[200])).unwrap();
    let samples = sample_states(Key::new(2), &program, &schedule, &init, &[], &blocks).unwrap();
    let ebm = FactorizedEBM::new(factors);
    let vars: Vec<_> = c.iter().map(|&n| DiscreteVar::Categorical(n, 3)).collect();
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let vals = sampled_values(&vars, &blocks, &samples).unwrap();
    common::assert_matches_exact("potts pair", &exact, &vals);
}
