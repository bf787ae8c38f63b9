//! THRML's MNIST benchmark: train an Ising model on a "double grid" to classify the digits
//! 0, 3 and 4.
//!
//! * **Graph.** Two 40×40 torus layers; every upper node `(i, j)` couples to the lower
//!   nodes at `(i, j)` and at distance `d` in each of the 4 directions, `d ∈ {1, 4, 15}`:
//!   3,200 spins, 20,800 edges, none inside a layer ([`thrml::graph::double_grid`]).
//! * **Visible nodes.** 814 upper nodes chosen at random from the seed: 784 pixels, then 30
//!   label spins, 10 repeats of a one-hot over the 3 classes (label spin `k` is class
//!   `k mod 3`).
//! * **Data.** `DATA/mnist034/digit_{0,3,4}.npy`; the first 80% of each digit train, the
//!   last 20% test.
//! * **Recipe.** Adam, lr 0.01; positive phase batch 50 (one chain per item), schedule
//!   (200, 20, 10); negative phase 25 chains, schedule (200, 40, 5); fresh chains from
//!   `hinton_init` every step; biases and weights start at zero, β = 1.
//! * **Classifier.** Clamp the 784 pixels of a test image, sample everything else with
//!   schedule (400, 40, 10), average the 30 label spins per class, take the argmax.
//!
//! After every epoch the example prints the test accuracy and stops at the first epoch at or
//! above the target (0.90), or after `--epochs`. The last line is `accuracy <x>`.
//!
//! ```text
//! cargo run --release -p thrml --example mnist -- [--seed 0] [--epochs 20] [--target 0.9] [--threads 0] [--data-dir ../shared/data]
//! THRML_EXAMPLE_SMALL=1 cargo run --release -p thrml --example mnist   # a CI-sized run
//! ```
//!
//! `scripts/mnist_thrml.py` runs the same recipe with THRML (Python/JAX) for comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array2, ArrayD, Axis, IxDyn, s};
use rand::RngExt;
use thrml::graph::double_grid;
use thrml::train::{TrainConfig, Trainer, TrainingSpec};
use thrml::{
    Block, DiscreteEBMFactor, Key, Node, NodeKind, SamplingSchedule, State, SuperBlock, Tensor,
    estimate_moments,
};

/// The digits, in label order.
pub const DIGITS: [usize; 3] = [0, 3, 4];
/// Repeats of the one-hot label.
pub const LABEL_REPEATS: usize = 10;

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The folder holding `mnist034/`.
    pub data_dir: PathBuf,
    /// The seed of the visible-node choice, the shuffles and the sampling.
    pub seed: u64,
    /// At most this many epochs.
    pub max_epochs: usize,
    /// Stop at the first epoch whose test accuracy reaches this.
    pub target: f64,
    /// Keep every `subsample`-th image (1: all; a CI-sized run uses fewer).
    pub subsample: usize,
    /// Schedules: positive, negative, classifier.
    pub schedules: [SamplingSchedule; 3],
    /// Positive batch size and negative chains.
    pub batch: usize,
    /// Negative chains.
    pub negative_chains: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Print a line per epoch.
    pub verbose: bool,
}

impl Config {
    /// THRML's recipe.
    #[must_use]
    pub fn full(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            seed: 0,
            max_epochs: 20,
            target: 0.90,
            subsample: 1,
            schedules: [
                SamplingSchedule::new(200, 20, 10).expect("valid"),
                SamplingSchedule::new(200, 40, 5).expect("valid"),
                SamplingSchedule::new(400, 40, 10).expect("valid"),
            ],
            batch: 50,
            negative_chains: 25,
            learning_rate: 0.01,
            verbose: true,
        }
    }

    /// A CI-sized run: a fifth of the images, short schedules, a larger learning rate, at
    /// most two epochs.
    #[must_use]
    pub fn small(data_dir: PathBuf) -> Config {
        Config {
            max_epochs: 2,
            subsample: 5,
            learning_rate: 0.05,
            schedules: [
                SamplingSchedule::new(50, 5, 5).expect("valid"),
                SamplingSchedule::new(50, 10, 5).expect("valid"),
                SamplingSchedule::new(100, 10, 5).expect("valid"),
            ],
            ..Config::full(data_dir)
        }
    }
}

/// What a run reached.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The last epoch's test accuracy.
    pub accuracy: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Seconds in training steps.
    pub train_s: f64,
    /// Seconds in evaluations.
    pub eval_s: f64,
    /// Training and test images.
    pub n_train: usize,
    /// Test images.
    pub n_test: usize,
}

/// Images `[n, 784]` and labels of one split.
struct Split {
    images: Array2<bool>,
    labels: Vec<usize>,
}

fn load(dir: &Path, subsample: usize) -> thrml::Result<(Split, Split)> {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut train_y, mut test_y) = (Vec::new(), Vec::new());
    for (label, digit) in DIGITS.iter().enumerate() {
        let path = dir.join("mnist034").join(format!("digit_{digit}.npy"));
        let Tensor::Bool(a) = thrml::io::read_npy(&path)? else {
            return Err(thrml::Error::Invalid(format!(
                "{}: expected a bool array",
                path.display()
            )));
        };
        let a = a
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| thrml::Error::Invalid(format!("{}: {e}", path.display())))?;
        let n_train = a.nrows() * 8 / 10;
        for r in (0..a.nrows()).step_by(subsample) {
            let row = a.row(r).to_owned();
            if r < n_train {
                train.push(row);
                train_y.push(label);
            } else {
                test.push(row);
                test_y.push(label);
            }
        }
    }
    let stack = |rows: &[ndarray::Array1<bool>]| {
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        ndarray::stack(Axis(0), &views).expect("rows of 784")
    };
    Ok((
        Split {
            images: stack(&train),
            labels: train_y,
        },
        Split {
            images: stack(&test),
            labels: test_y,
        },
    ))
}

/// The model and its blocks.
struct Graph {
    nodes: Vec<Node>,
    factors: Vec<DiscreteEBMFactor>,
    pixels: Vec<usize>,
    labels: Vec<usize>,
    upper: Vec<usize>,
    lower: Vec<usize>,
}

fn graph(seed: u64) -> thrml::Result<Graph> {
    let (n, edges) = double_grid(40, &[1, 4, 15]);
    let nodes = Node::many(NodeKind::SPIN, n);
    let upper: Vec<usize> = (0..1600).collect();
    let lower: Vec<usize> = (1600..3200).collect();
    // 814 visible upper nodes: a seeded Fisher–Yates shuffle of the upper layer.
    let mut rng = Key::new(seed)
        .fold_in(0x7669_7369)
        .chain_rngs(1)
        .pop()
        .expect("one");
    let mut order = upper.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let pick = |ix: &[usize]| Block::new(ix.iter().map(|&i| nodes[i]).collect());
    let all: Vec<usize> = (0..n).collect();
    let heads: Vec<usize> = edges.iter().map(|e| e.0).collect();
    let tails: Vec<usize> = edges.iter().map(|e| e.1).collect();
    let factors = vec![
        DiscreteEBMFactor::new(vec![pick(&all)?], vec![], ArrayD::zeros(IxDyn(&[n])))?,
        DiscreteEBMFactor::new(
            vec![pick(&heads)?, pick(&tails)?],
            vec![],
            ArrayD::zeros(IxDyn(&[edges.len()])),
        )?,
    ];
    Ok(Graph {
        pixels: order[..784].to_vec(),
        labels: order[784..814].to_vec(),
        nodes,
        factors,
        upper,
        lower,
    })
}

impl Graph {
    fn block(&self, ix: &[usize]) -> thrml::Result<Block> {
        Block::new(ix.iter().map(|&i| self.nodes[i]).collect())
    }

    fn upper_without(&self, ix: &[usize]) -> Vec<usize> {
        self.upper
            .iter()
            .copied()
            .filter(|u| !ix.contains(u))
            .collect()
    }

    /// Positive phase clamps `clamped` (upper nodes) and samples the rest.
    fn spec(
        &self,
        factors: Vec<DiscreteEBMFactor>,
        clamped: &[usize],
        positive: SamplingSchedule,
        negative: SamplingSchedule,
    ) -> thrml::Result<TrainingSpec> {
        let free_upper = self.upper_without(clamped);
        TrainingSpec::new(
            factors,
            vec![self.block(clamped)?],
            vec![],
            vec![
                SuperBlock::from(self.block(&free_upper)?),
                SuperBlock::from(self.block(&self.lower)?),
            ],
            vec![
                SuperBlock::from(self.block(&self.upper)?),
                SuperBlock::from(self.block(&self.lower)?),
            ],
            positive,
            negative,
        )
    }
}

/// Test accuracy: clamp the pixels, sample the rest, vote with the label spins.
fn accuracy(
    g: &Graph,
    trained: &TrainingSpec,
    test: &Split,
    schedule: SamplingSchedule,
    key: Key,
) -> thrml::Result<f64> {
    let spec = g.spec(trained.factors().to_vec(), &g.pixels, schedule, schedule)?;
    let program = spec.program_positive().expect("latent nodes");
    let n = test.images.nrows();
    let init = spec.hinton_init(key.fold_in(0), &spec.positive_free_blocks(), n);
    let clamp = vec![vec![Tensor::from(test.images.clone().into_dyn())]];
    let label_nodes: Vec<Node> = g.labels.iter().map(|&i| g.nodes[i]).collect();
    let (means, _) = estimate_moments(
        key.fold_in(1),
        &label_nodes,
        &[],
        program,
        &schedule,
        &init,
        &clamp,
    )?;
    let mut correct = 0;
    for (r, &y) in test.labels.iter().enumerate() {
        let mut votes = [0.0f64; 3];
        for k in 0..label_nodes.len() {
            votes[k % 3] += means[[r, k]];
        }
        let pred = (0..3)
            .max_by(|&a, &b| votes[a].total_cmp(&votes[b]))
            .expect("3 classes");
        correct += usize::from(pred == y);
    }
    Ok(correct as f64 / n as f64)
}

/// Train until the target accuracy or the epoch limit.
///
/// # Errors
/// If the data cannot be read, or from the library.
pub fn run(config: &Config) -> thrml::Result<Outcome> {
    let (train, test) = load(&config.data_dir, config.subsample)?;
    let g = graph(config.seed)?;
    let visible: Vec<usize> = g.pixels.iter().chain(&g.labels).copied().collect();
    let [pos, neg, cls] = config.schedules;
    let spec = g.spec(g.factors.clone(), &visible, pos, neg)?;
    // Data rows: 784 pixels, then label spin k = (class == k mod 3).
    let n_train = train.images.nrows();
    let mut data = Array2::from_elem((n_train, 814), false);
    data.slice_mut(s![.., ..784]).assign(&train.images);
    for (r, &y) in train.labels.iter().enumerate() {
        for k in 0..3 * LABEL_REPEATS {
            data[[r, 784 + k]] = k % 3 == y;
        }
    }
    let data: Vec<State> = vec![vec![Tensor::from(data.into_dyn())]];
    let mut tc = TrainConfig::new(
        config.max_epochs,
        config.batch,
        config.learning_rate,
        config.seed,
    );
    tc.negative_chains = config.negative_chains;
    let mut trainer = Trainer::new(spec, data, vec![], tc)?;
    let spe = trainer.steps_per_epoch();
    let (mut train_s, mut eval_s, mut acc) = (0.0, 0.0, 0.0);
    let mut epochs = 0;
    while epochs < config.max_epochs {
        let start = Instant::now();
        for _ in 0..spe {
            trainer.step()?;
        }
        train_s += start.elapsed().as_secs_f64();
        epochs += 1;
        let start = Instant::now();
        let key = Key::new(config.seed)
            .fold_in(0x6576_616c)
            .fold_in(epochs as u64);
        acc = accuracy(&g, trainer.spec(), &test, cls, key)?;
        eval_s += start.elapsed().as_secs_f64();
        if config.verbose {
            println!(
                "epoch {epochs}: {spe} steps, test accuracy {acc:.4}, train_s {train_s:.1}, eval_s {eval_s:.1}"
            );
        }
        if acc >= config.target {
            break;
        }
    }
    Ok(Outcome {
        accuracy: acc,
        epochs,
        train_s,
        eval_s,
        n_train,
        n_test: test.images.nrows(),
    })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut data_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    let (mut seed, mut epochs, mut target, mut threads) = (None, None, None, 0usize);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--seed" => seed = value().parse().ok(),
            "--epochs" => epochs = value().parse().ok(),
            "--target" => target = value().parse().ok(),
            "--threads" => threads = value().parse().unwrap_or(0),
            "--data-dir" => data_dir = PathBuf::from(value()),
            other => {
                eprintln!("error: unknown argument {other:?}; see the example's docs");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let small = std::env::var("THRML_EXAMPLE_SMALL").is_ok_and(|v| v == "1");
    let mut config = if small {
        Config::small(data_dir)
    } else {
        Config::full(data_dir)
    };
    config.seed = seed.unwrap_or(config.seed);
    config.max_epochs = epochs.unwrap_or(config.max_epochs);
    config.target = target.unwrap_or(config.target);
    let start = Instant::now();
    match thrml::with_threads(threads, || run(&config)) {
        Ok(Ok(o)) => {
            println!(
                "{} training / {} test images, {} epochs, train_s {:.2} eval_s {:.2} total_s {:.2}",
                o.n_train,
                o.n_test,
                o.epochs,
                o.train_s,
                o.eval_s,
                start.elapsed().as_secs_f64()
            );
            println!("accuracy {:.4}", o.accuracy);
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
