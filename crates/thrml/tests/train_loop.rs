//! The training loop: parameter recovery, checkpoint/resume, the pseudo-likelihood.

use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn, arr1};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thrml::exact::{DiscreteVar, ExactDistribution, index_to_values};
use thrml::train::{
    Method, OptimizerConfig, TrainConfig, Trainer, TrainingSpec, pseudo_log_likelihood,
};
use thrml::*;

fn group(nodes: &[Node], ix: &[usize]) -> Block {
    Block::new(ix.iter().map(|&i| nodes[i]).collect()).unwrap()
}

fn ebm_of(factors: &[DiscreteEBMFactor]) -> FactorizedEBM {
    FactorizedEBM::new(
        factors
            .iter()
            .map(|f| Arc::new(f.clone()) as Arc<dyn EBMFactor>)
            .collect(),
    )
}

/// Biases, couplings and one three-body term on 5 spins.
fn spin_factors(s: &[Node], weights: &[ArrayD<f32>]) -> Vec<DiscreteEBMFactor> {
    let groups = [
        vec![group(s, &[0, 1, 2, 3, 4])],
        vec![group(s, &[0, 1, 2, 3, 0, 1]), group(s, &[1, 2, 3, 4, 4, 3])],
        vec![group(s, &[0]), group(s, &[2]), group(s, &[4])],
    ];
    groups
        .into_iter()
        .zip(weights)
        .map(|(g, w)| DiscreteEBMFactor::new(g, vec![], w.clone()).unwrap())
        .collect()
}

fn colour_blocks(s: &[Node]) -> Vec<SuperBlock> {
    // Sequential sweeps over single nodes: valid for any factor graph.
    s.iter()
        .map(|&n| SuperBlock::from(Block::new(vec![n]).unwrap()))
        .collect()
}

/// A model trained on samples of a known fully visible EBM recovers its weights.
///
/// Tolerance: every weight within 0.06 of the truth. With 20,000 exact samples the maximum
/// likelihood estimate itself is within about 0.02 (standard error near 0.008 per weight);
/// the rest is the optimizer's noise from finite negative chains.
#[test]
fn training_recovers_the_parameters_of_a_known_model() {
    let s = Node::many(NodeKind::SPIN, 5);
    let truth = vec![
        arr1(&[0.4f32, -0.3, 0.2, 0.0, -0.5]).into_dyn(),
        arr1(&[0.6f32, -0.4, 0.5, 0.3, -0.3, 0.2]).into_dyn(),
        arr1(&[0.5f32]).into_dyn(),
    ];
    let true_factors = spin_factors(&s, &truth);
    let vars: Vec<DiscreteVar> = s.iter().map(|&n| DiscreteVar::Spin(n)).collect();
    let exact = ExactDistribution::new(&ebm_of(&true_factors), &vars, &[]).unwrap();
    // 20,000 exact draws.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 20_000;
    let mut data = Array2::from_elem((n, 5), false);
    let cdf: Vec<f64> = exact
        .probabilities
        .iter()
        .scan(0.0, |acc, p| {
            *acc += p;
            Some(*acc)
        })
        .collect();
    for r in 0..n {
        let u: f64 = rng.random();
        let state = cdf.iter().position(|&c| u < c).unwrap_or(cdf.len() - 1);
        for (j, v) in index_to_values(&vars, state).into_iter().enumerate() {
            data[[r, j]] = v == 1;
        }
    }
    let zeros: Vec<ArrayD<f32>> = truth.iter().map(|w| ArrayD::zeros(w.raw_dim())).collect();
    let spec = TrainingSpec::new(
        spin_factors(&s, &zeros),
        vec![Block::new(s.clone()).unwrap()],
        vec![],
        vec![],
        colour_blocks(&s),
        SamplingSchedule::new(0, 1, 1).unwrap(),
        SamplingSchedule::new(1, 10, 1).unwrap(),
    )
    .unwrap();
    let mut config = TrainConfig::new(12, 500, 0.02, 9);
    config.negative_chains = 1000;
    config.persistent = true;
    let mut trainer = Trainer::new(
        spec,
        vec![vec![Tensor::from(data.into_dyn())]],
        vec![],
        config,
    )
    .unwrap();
    trainer.run(|_, _| Ok(())).unwrap();
    let mut worst = 0.0f64;
    for (learned, want) in trainer.params().iter().zip(&truth) {
        for (a, b) in learned.iter().zip(want) {
            worst = worst.max((a - f64::from(*b)).abs());
        }
    }
    eprintln!(
        "recovery: {} steps, max |W − W*| = {worst:.4}",
        trainer.steps_done()
    );
    eprintln!("learned {:?}", trainer.params());
    assert!(worst < 0.06, "max weight error {worst}");
}

/// Four visible spins, a latent spin layer of three and a latent categorical.
fn latent_spec() -> (TrainingSpec, Vec<State>) {
    let v = Node::many(NodeKind::SPIN, 4);
    let h = Node::many(NodeKind::SPIN, 3);
    let c = Node::categorical();
    let vis = Block::new(v.clone()).unwrap();
    let hid = Block::new(h.clone()).unwrap();
    let cat = Block::new(vec![c]).unwrap();
    let mut r = ChaCha8Rng::seed_from_u64(1);
    let mut w = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(
            IxDyn(shape),
            (0..n).map(|_| r.random::<f32>() - 0.5).collect(),
        )
        .unwrap()
    };
    let vi: Vec<usize> = (0..12).map(|k| k % 4).collect();
    let hi: Vec<usize> = (0..12).map(|k| k / 4).collect();
    let factors = vec![
        DiscreteEBMFactor::new(vec![vis.clone()], vec![], w(&[4])).unwrap(),
        DiscreteEBMFactor::new(vec![hid.clone()], vec![], w(&[3])).unwrap(),
        DiscreteEBMFactor::new(vec![group(&v, &vi), group(&h, &hi)], vec![], w(&[12])).unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&v, &[0, 1, 2, 3])],
            vec![Block::new(vec![c; 4]).unwrap()],
            w(&[4, 3]),
        )
        .unwrap(),
    ];
    let spec = TrainingSpec::new(
        factors,
        vec![vis.clone()],
        vec![],
        vec![SuperBlock(vec![hid.clone(), cat.clone()])],
        vec![SuperBlock::from(vis), SuperBlock(vec![hid, cat])],
        SamplingSchedule::new(3, 4, 1).unwrap(),
        SamplingSchedule::new(3, 4, 2).unwrap(),
    )
    .unwrap();
    let data: Vec<bool> = (0..40 * 4).map(|_| r.random::<bool>()).collect();
    let data = vec![vec![Tensor::from(
        ArrayD::from_shape_vec(IxDyn(&[40, 4]), data).unwrap(),
    )]];
    (spec, data)
}

fn latent_config() -> TrainConfig {
    let mut config = TrainConfig::new(3, 8, 0.05, 17);
    config.chains_per_item = 2;
    config.negative_chains = 24;
    config.persistent = true;
    config.optimizer.weight_decay = 1e-3;
    config.optimizer.clip_norm = Some(0.5);
    config
}

#[test]
fn resuming_from_a_checkpoint_gives_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.npz");

    let (spec, data) = latent_spec();
    let mut full = Trainer::new(spec, data, vec![], latent_config()).unwrap();
    assert_eq!(full.total_steps(), 15);
    with_threads(2, || full.run(|_, _| Ok(())))
        .unwrap()
        .unwrap();

    // Stop mid-epoch (step 7 of 15, epoch 1), checkpoint, and carry on in a new trainer.
    let (spec, data) = latent_spec();
    let mut first = Trainer::new(spec, data, vec![], latent_config()).unwrap();
    with_threads(1, || {
        for _ in 0..7 {
            first.step().unwrap();
        }
    })
    .unwrap();
    first.save_checkpoint(&path).unwrap();
    drop(first);
    let (spec, data) = latent_spec();
    let mut resumed = Trainer::resume(spec, data, vec![], latent_config(), &path).unwrap();
    assert_eq!(resumed.steps_done(), 7);
    with_threads(1, || resumed.run(|_, _| Ok(())))
        .unwrap()
        .unwrap();

    assert_eq!(resumed.steps_done(), full.steps_done());
    assert_eq!(resumed.params(), full.params());
    assert_eq!(resumed.optimizer(), full.optimizer());
    assert_eq!(resumed.negative_chains(), full.negative_chains());
    assert_eq!(resumed.spec().weights(), full.spec().weights());
    // The run moved the weights.
    let (spec, _) = latent_spec();
    assert_ne!(spec.weights(), full.spec().weights());

    // A checkpoint refuses other settings.
    let (spec, data) = latent_spec();
    let mut other = latent_config();
    other.seed = 18;
    let e = Trainer::resume(spec, data, vec![], other, &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed 17") && e.contains("18"), "{e}");
    let (spec, data) = latent_spec();
    let mut other = latent_config();
    other.optimizer.method = Method::Sgd { momentum: 0.0 };
    let e = Trainer::resume(spec, data, vec![], other, &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("optimizer"), "{e}");
}

#[test]
fn fresh_and_persistent_chains_both_train() {
    for persistent in [false, true] {
        let (spec, data) = latent_spec();
        let mut config = latent_config();
        config.persistent = persistent;
        let mut t = Trainer::new(spec, data, vec![], config).unwrap();
        let mut reports = Vec::new();
        t.run(|_, r| {
            reports.push(*r);
            Ok(())
        })
        .unwrap();
        assert_eq!(reports.len(), 15);
        assert_eq!(reports.last().unwrap().epoch, 2);
        assert!(
            reports
                .iter()
                .all(|r| r.kl_grad_norm.is_finite() && r.kl_grad_norm > 0.0)
        );
        assert_eq!(t.negative_chains().is_some(), persistent);
        assert!(t.step().is_err(), "a finished run refuses more steps");
    }
}

#[test]
fn shuffles_cover_the_data_and_depend_on_the_seed() {
    let (spec, data) = latent_spec();
    let mut t = Trainer::new(spec, data, vec![], latent_config()).unwrap();
    let mut epoch0: Vec<usize> = (0..5).flat_map(|s| t.batch_indices(s)).collect();
    let epoch1: Vec<usize> = (5..10).flat_map(|s| t.batch_indices(s)).collect();
    assert_ne!(epoch0, epoch1);
    epoch0.sort_unstable();
    assert_eq!(epoch0, (0..40).collect::<Vec<_>>());
    let (spec, data) = latent_spec();
    let mut c = latent_config();
    c.seed = 1;
    let mut u = Trainer::new(spec, data, vec![], c).unwrap();
    assert_ne!(t.batch_indices(0), u.batch_indices(0));
}

#[test]
fn trainer_rejects_bad_settings() {
    let (spec, data) = latent_spec();
    let mut c = latent_config();
    c.batch_size = 41;
    let e = Trainer::new(spec, data, vec![], c).unwrap_err().to_string();
    assert!(e.contains("40 data items"), "{e}");
    let (spec, data) = latent_spec();
    let mut c = latent_config();
    c.optimizer = OptimizerConfig::adam(-1.0);
    let e = Trainer::new(spec, data, vec![], c).unwrap_err().to_string();
    assert!(e.contains("learning rate"), "{e}");
}

/// Without latent nodes the pseudo-likelihood is exact: compare with enumeration.
#[test]
fn pseudo_likelihood_matches_enumeration() {
    let s = Node::many(NodeKind::SPIN, 3);
    let c = Node::categorical();
    let mut r = ChaCha8Rng::seed_from_u64(3);
    let mut w = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(
            IxDyn(shape),
            (0..n).map(|_| 2.0 * r.random::<f32>() - 1.0).collect(),
        )
        .unwrap()
    };
    let factors = vec![
        DiscreteEBMFactor::new(vec![group(&s, &[0, 1, 2])], vec![], w(&[3])).unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[0, 1]), group(&s, &[1, 2])],
            vec![],
            w(&[2]),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![group(&s, &[0]), group(&s, &[2])],
            vec![Block::new(vec![c]).unwrap()],
            w(&[1, 4]),
        )
        .unwrap(),
        DiscreteEBMFactor::new(vec![], vec![Block::new(vec![c]).unwrap()], w(&[1, 4])).unwrap(),
    ];
    let spins = Block::new(s.clone()).unwrap();
    let cat = Block::new(vec![c]).unwrap();
    let spec = TrainingSpec::new(
        factors.clone(),
        vec![spins.clone(), cat.clone()],
        vec![],
        vec![],
        colour_blocks(&[s[0], s[1], s[2], c]),
        SamplingSchedule::new(0, 1, 1).unwrap(),
        SamplingSchedule::new(0, 1, 1).unwrap(),
    )
    .unwrap();
    let items: Vec<(Vec<bool>, u8)> = vec![
        (vec![true, false, true], 0),
        (vec![false, false, true], 3),
        (vec![true, true, true], 2),
    ];
    let spin_data = Array2::from_shape_fn((3, 3), |(i, j)| items[i].0[j]);
    let cat_data = Array2::from_shape_fn((3, 1), |(i, _)| items[i].1);
    let data = vec![
        vec![Tensor::from(spin_data.into_dyn())],
        vec![Tensor::from(cat_data.into_dyn())],
    ];
    let pll = pseudo_log_likelihood(Key::new(0), &spec, &data, &[]).unwrap();

    // Enumerate: log p(x_i | x_−i) from the energies of the values x_i can take.
    let ebm = ebm_of(&factors);
    let energy = |sp: &[bool], k: u8| -> f64 {
        let state = vec![
            vec![Tensor::from(
                ndarray::Array2::from_shape_vec((1, 3), sp.to_vec())
                    .unwrap()
                    .into_dyn(),
            )],
            vec![Tensor::from(
                ndarray::Array2::from_shape_vec((1, 1), vec![k])
                    .unwrap()
                    .into_dyn(),
            )],
        ];
        ebm.energy(&state, &[spins.clone(), cat.clone()]).unwrap()[0]
    };
    let mut want = 0.0;
    for (sp, k) in &items {
        for i in 0..3 {
            let mut flipped = sp.clone();
            flipped[i] = !flipped[i];
            let (e, ef) = (energy(sp, *k), energy(&flipped, *k));
            want += -e
                - (-e).max(-ef)
                - ((-e - (-e).max(-ef)).exp() + (-ef - (-e).max(-ef)).exp()).ln();
        }
        let es: Vec<f64> = (0..4).map(|kk| energy(sp, kk)).collect();
        let m = es.iter().map(|e| -e).fold(f64::NEG_INFINITY, f64::max);
        let lse = m + es.iter().map(|e| (-e - m).exp()).sum::<f64>().ln();
        want += -es[usize::from(*k)] - lse;
    }
    want /= 12.0;
    assert!(
        (pll - want).abs() < 1e-9,
        "pseudo-likelihood {pll}, enumeration {want}"
    );
}
