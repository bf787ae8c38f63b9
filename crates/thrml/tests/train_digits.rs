//! A quick training run on scikit-learn's 8×8 digits: a Boltzmann machine with 64 pixel
//! spins (binarised at 8), a 10-state label node and 32 latent spins (pixel–latent,
//! label–latent and pixel–label couplings, no couplings inside a layer) learns
//! measurably in a few epochs: the held-out pseudo-likelihood rises and the class accuracy
//! is far above chance.

use std::path::PathBuf;

use ndarray::{Array2, ArrayD, Ix1, Ix2, IxDyn};
use thrml::train::{TrainConfig, Trainer, TrainingSpec, pseudo_log_likelihood};
use thrml::*;

const PIXELS: usize = 64;
const HIDDEN: usize = 32;
const CLASSES: usize = 10;
const N_TRAIN: usize = 1500;

fn load() -> Option<(Array2<bool>, Vec<u8>)> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/digits8x8"
    ));
    if !dir.exists() {
        eprintln!("note: {} not found; skipping", dir.display());
        return None;
    }
    let Tensor::U8(images) = thrml::io::read_npy(&dir.join("images.npy")).unwrap() else {
        panic!("images are uint8")
    };
    let Tensor::U8(labels) = thrml::io::read_npy(&dir.join("labels.npy")).unwrap() else {
        panic!("labels are uint8")
    };
    let images = images
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(|v| v >= 8);
    Some((
        images,
        labels.into_dimensionality::<Ix1>().unwrap().to_vec(),
    ))
}

/// `log p(y | v)` up to a constant, with the latent spins summed out exactly:
/// `θ_y + Σ_i s_i A_iy + Σ_j ln 2cosh(c_j + Σ_i W_ij s_i + U_jy)`.
fn class_scores(w: &[ArrayD<f32>], pixels: &[bool]) -> [f64; CLASSES] {
    let (hb, yb, wv, uy, ay) = (&w[1], &w[2], &w[3], &w[4], &w[5]);
    let mut scores = [0.0; CLASSES];
    for (y, score) in scores.iter_mut().enumerate() {
        *score = f64::from(yb[[0, y]]);
        for (i, &p) in pixels.iter().enumerate() {
            *score += if p { 1.0 } else { -1.0 } * f64::from(ay[[i, y]]);
        }
        for j in 0..HIDDEN {
            let mut g = f64::from(hb[[j]]) + f64::from(uy[[j, y]]);
            for (i, &p) in pixels.iter().enumerate() {
                let s = if p { 1.0 } else { -1.0 };
                g += s * f64::from(wv[[i * HIDDEN + j]]);
            }
            *score += g.abs() + (-2.0 * g.abs()).exp().ln_1p();
        }
    }
    scores
}

#[test]
fn rbm_on_digits_learns() {
    let Some((images, labels)) = load() else {
        return;
    };
    let v = Node::many(NodeKind::SPIN, PIXELS);
    let h = Node::many(NodeKind::SPIN, HIDDEN);
    let y = Node::categorical();
    let block = |n: Vec<Node>| Block::new(n).unwrap();
    let zeros = |shape: &[usize]| ArrayD::<f32>::zeros(IxDyn(shape));
    let pv: Vec<Node> = (0..PIXELS * HIDDEN).map(|k| v[k / HIDDEN]).collect();
    let ph: Vec<Node> = (0..PIXELS * HIDDEN).map(|k| h[k % HIDDEN]).collect();
    let factors = vec![
        DiscreteEBMFactor::new(vec![block(v.clone())], vec![], zeros(&[PIXELS])).unwrap(),
        DiscreteEBMFactor::new(vec![block(h.clone())], vec![], zeros(&[HIDDEN])).unwrap(),
        DiscreteEBMFactor::new(vec![], vec![block(vec![y])], zeros(&[1, CLASSES])).unwrap(),
        DiscreteEBMFactor::new(
            vec![block(pv), block(ph)],
            vec![],
            zeros(&[PIXELS * HIDDEN]),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![block(h.clone())],
            vec![block(vec![y; HIDDEN])],
            zeros(&[HIDDEN, CLASSES]),
        )
        .unwrap(),
        DiscreteEBMFactor::new(
            vec![block(v.clone())],
            vec![block(vec![y; PIXELS])],
            zeros(&[PIXELS, CLASSES]),
        )
        .unwrap(),
    ];
    let spec = TrainingSpec::new(
        factors,
        vec![block(v.clone()), block(vec![y])],
        vec![],
        vec![SuperBlock::from(block(h.clone()))],
        vec![
            SuperBlock::from(block(v.clone())),
            SuperBlock::from(block(vec![y])),
            SuperBlock::from(block(h.clone())),
        ],
        // The latent spins are independent given the data: one sweep is an exact draw.
        SamplingSchedule::new(1, 2, 1).unwrap(),
        SamplingSchedule::new(2, 4, 2).unwrap(),
    )
    .unwrap();
    let states = |rows: std::ops::Range<usize>| -> Vec<State> {
        let px = images.slice(ndarray::s![rows.clone(), ..]).to_owned();
        let ys = Array2::from_shape_fn((rows.len(), 1), |(r, _)| labels[rows.start + r]);
        vec![
            vec![Tensor::from(px.into_dyn())],
            vec![Tensor::from(ys.into_dyn())],
        ]
    };
    let train = states(0..N_TRAIN);
    let test = states(N_TRAIN..images.nrows());
    let pll_before = pseudo_log_likelihood(Key::new(1), &spec, &test, &[]).unwrap();

    let mut config = TrainConfig::new(6, 50, 0.02, 7);
    config.negative_chains = 100;
    config.persistent = true;
    let mut trainer = Trainer::new(spec, train, vec![], config).unwrap();
    let start = std::time::Instant::now();
    trainer.run(|_, _| Ok(())).unwrap();
    let elapsed = start.elapsed();
    let pll_after = pseudo_log_likelihood(Key::new(1), trainer.spec(), &test, &[]).unwrap();

    let w = trainer.spec().weights();
    let n_test = images.nrows() - N_TRAIN;
    let correct = (N_TRAIN..images.nrows())
        .filter(|&r| {
            let px: Vec<bool> = images.row(r).to_vec();
            let s = class_scores(&w, &px);
            let pred = (0..CLASSES).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
            pred == usize::from(labels[r])
        })
        .count();
    let accuracy = correct as f64 / n_test as f64;
    eprintln!(
        "digits: {} steps in {elapsed:.2?}; held-out pseudo-log-likelihood {pll_before:.4} -> {pll_after:.4} per node; accuracy {accuracy:.3} on {n_test} images",
        trainer.steps_done()
    );
    // Untrained, every node is a fair coin or die: −ln 2 per pixel, −ln 10 for the label.
    assert!((pll_before - (-(64.0 * 2f64.ln() + 10f64.ln()) / 65.0)).abs() < 1e-9);
    assert!(
        pll_after > pll_before + 0.1,
        "pseudo-likelihood {pll_before} -> {pll_after}"
    );
    assert!(accuracy > 0.5, "accuracy {accuracy} (chance 0.1)");
}
