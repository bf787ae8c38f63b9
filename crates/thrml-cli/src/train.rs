//! `thrml train`: fit a model file's weights to data by KL-gradient descent.
//!
//! The data nodes (`--visible`) are clamped to each data item in the positive phase; the
//! model's other free nodes are latent; the model's clamped blocks are conditioning nodes,
//! clamped to their values in both phases. The free blocks of the negative phase are the
//! model's superblocks; those of the positive phase are the same without the visible nodes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{ArrayD, Axis};
use thrml::io::{KindSpec, Model, ModelParameters, read_npz, write_atomic};
use thrml::train::{
    Method, OptimizerConfig, TrainConfig, Trainer, TrainingSpec, pseudo_log_likelihood,
};
use thrml::{Block, Key, SamplingSchedule, State, SuperBlock, Tensor};

use crate::{Failure, plural, usage};

/// `fold_in` tag of the held-out evaluation's key.
const EVAL_STREAM: u64 = 0x6576_616c;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model file (JSON, format thrml-model/1); its weights are the starting point.
    model: PathBuf,
    /// The data: an .npz file with one array [n, len(visible)] (or several, one named
    /// `data`): bool if every visible node is a spin, uint8 otherwise (spins 0/1, 1 = +1;
    /// categories 0..K-1).
    #[arg(long, value_name = "DATA.npz")]
    data: PathBuf,
    /// The visible (data) node ids, in column order: a comma list (`0,1,5`) or a JSON file
    /// holding a list of ids.
    #[arg(long, value_name = "IDS")]
    visible: String,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Data items per step.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Optimizer: adam or sgd.
    #[arg(long, default_value = "adam", value_parser = ["adam", "sgd"])]
    optimizer: String,
    /// Momentum (sgd) or β₁ (adam; default 0.9).
    #[arg(long)]
    momentum: Option<f64>,
    /// L2 weight decay λ (adds λ·W to the gradient).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Clip the gradient to this global norm.
    #[arg(long)]
    clip_norm: Option<f64>,
    /// Random seed (shuffles, initial states, sampling).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Positive phase schedule WARMUP,SAMPLES,STEPS_PER_SAMPLE.
    #[arg(long, default_value = "100,10,5", value_name = "W,S,K")]
    pos_schedule: String,
    /// Negative phase schedule WARMUP,SAMPLES,STEPS_PER_SAMPLE.
    #[arg(long, default_value = "100,20,5", value_name = "W,S,K")]
    neg_schedule: String,
    /// Positive chains per data item.
    #[arg(long, default_value_t = 1)]
    chains_per_item: usize,
    /// Negative chains (default: the batch size).
    #[arg(long)]
    neg_chains: Option<usize>,
    /// Carry the negative chains across steps (persistent contrastive divergence).
    #[arg(long)]
    persistent: bool,
    /// Hold out this fraction of the data (the last rows) to report the pseudo-likelihood.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// Evaluate the held-out pseudo-likelihood every N steps (default: every epoch).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Write a checkpoint (parameters, optimizer state, persistent chains) here.
    #[arg(long, value_name = "CKPT.npz")]
    checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (default: every epoch); one is also written at the end.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Resume from --checkpoint if it exists.
    #[arg(long)]
    resume: bool,
    /// Worker threads (0: one per logical CPU). The result does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where to write the trained model (a thrml-model/1 file).
    #[arg(long, value_name = "TRAINED.json")]
    out: PathBuf,
}

fn parse_schedule(text: &str, flag: &str) -> Result<SamplingSchedule, Failure> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let nums: Option<Vec<usize>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some(&[w, s, k]) if s >= 1 => Ok(SamplingSchedule::new(w, s, k)?),
        _ => Err(usage(format!(
            "{flag} {text:?}: expected WARMUP,SAMPLES,STEPS_PER_SAMPLE, three non-negative integers with SAMPLES ≥ 1"
        ))),
    }
}

/// The visible ids from a comma list or a JSON file.
fn parse_visible(text: &str, model: &Model) -> Result<Vec<usize>, Failure> {
    let path = Path::new(text);
    let (ids, what): (Vec<i64>, String) = if path.is_file() {
        let body = std::fs::read_to_string(path).map_err(|e| Failure {
            message: format!("{}: {e}", path.display()),
            code: 1,
        })?;
        let v: Vec<i64> = serde_json::from_str(&body).map_err(|e| {
            usage(format!(
                "{}: expected a JSON list of node ids: {e}",
                path.display()
            ))
        })?;
        (v, path.display().to_string())
    } else {
        let v = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    usage(format!(
                        "--visible: {s:?} is not a node id (give a comma list of ids or a JSON file)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        (v, "--visible".to_owned())
    };
    if ids.is_empty() {
        return Err(usage(format!("{what}: no visible node ids")));
    }
    let n = model.n_nodes();
    let clamped: Vec<usize> = model.clamped_blocks().iter().flatten().copied().collect();
    let mut seen = vec![false; n];
    ids.iter()
        .map(|&id| {
            let Some(i) = usize::try_from(id).ok().filter(|&i| i < n) else {
                return Err(usage(format!(
                    "{what}: node id {id} is unknown; the model has {n} nodes (ids 0 to {})",
                    n - 1
                )));
            };
            if clamped.contains(&i) {
                return Err(usage(format!(
                    "{what}: node {i} (kind `{}`) is clamped in the model; a visible node must be free",
                    model.kind_of(i).name()
                )));
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(usage(format!("{what}: node {i} is listed twice")));
            }
            Ok(i)
        })
        .collect()
}

/// The data array `[n, len(visible)]`, checked, as one state per data block.
fn read_data(
    path: &Path,
    model: &Model,
    visible: &[usize],
    groups: &[(Vec<usize>, Vec<usize>)],
) -> Result<Vec<State>, Failure> {
    let arrays = read_npz(path)?;
    let bad = |message: String| usage(format!("{}: {message}", path.display()));
    let (name, t) = match arrays.len() {
        1 => arrays.iter().next().expect("one array"),
        _ => match arrays.get_key_value("data") {
            Some(kv) => kv,
            None => {
                let names: Vec<String> = arrays.keys().map(|k| format!("`{k}`")).collect();
                return Err(bad(format!(
                    "holds {} ({}); give one array, or name the data array `data`",
                    plural(arrays.len(), "array", "arrays"),
                    names.join(", ")
                )));
            }
        },
    };
    let all_spin = visible
        .iter()
        .all(|&i| model.kind_of(i).spec() == KindSpec::Spin);
    let want = if all_spin { "bool" } else { "uint8" };
    if t.ndim() != 2 || t.shape()[1] != visible.len() {
        return Err(bad(format!(
            "array `{name}` has shape {:?}; expected [n, {}], one column per visible node",
            t.shape(),
            visible.len()
        )));
    }
    let n = t.shape()[0];
    if n == 0 {
        return Err(bad(format!("array `{name}` has no rows")));
    }
    // Every value as u8 (spins 0/1).
    let values: ArrayD<u8> = match (t, all_spin) {
        (Tensor::Bool(a), true) => a.mapv(u8::from),
        (Tensor::U8(a), false) => a.clone(),
        (other, _) => {
            return Err(bad(format!(
                "array `{name}` has dtype {}; expected {want} ({})",
                other.dtype(),
                if all_spin {
                    "every visible node is a spin, true = +1"
                } else {
                    "spins as 0/1 with 1 = +1, categories as 0..K-1"
                }
            )));
        }
    };
    for (col, &id) in visible.iter().enumerate() {
        let limit = model.kind_of(id).spec().n_values();
        if let Some(row) = (0..n).find(|&r| usize::from(values[[r, col]]) >= limit) {
            let kind = model.kind_of(id);
            return Err(bad(format!(
                "array `{name}` row {row} column {col} (node {id}, kind `{}`) has value {}; expected {}",
                kind.name(),
                values[[row, col]],
                match kind.spec() {
                    KindSpec::Categorical { categories } =>
                        format!("a category 0 to {}", categories - 1),
                    _ => "0 or 1 (a spin, 1 = +1)".to_owned(),
                }
            )));
        }
    }
    Ok(groups
        .iter()
        .map(|(ids, cols)| {
            let picked = values
                .select(Axis(1), cols)
                .as_standard_layout()
                .into_owned();
            vec![if model.kind_of(ids[0]).spec() == KindSpec::Spin {
                Tensor::Bool(picked.mapv(|v| v == 1))
            } else {
                Tensor::U8(picked)
            }]
        })
        .collect())
}

/// Split a state's rows into `[..at]` and `[at..]`.
fn split_rows(states: &[State], at: usize) -> (Vec<State>, Vec<State>) {
    let part = |range: std::ops::Range<usize>| -> Vec<State> {
        states
            .iter()
            .map(|s| {
                s.iter()
                    .map(|t| match t {
                        Tensor::Bool(a) => {
                            Tensor::Bool(a.slice_axis(Axis(0), range.clone().into()).to_owned())
                        }
                        Tensor::U8(a) => {
                            Tensor::U8(a.slice_axis(Axis(0), range.clone().into()).to_owned())
                        }
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect()
    };
    let n = states.first().map_or(0, |s| s[0].shape()[0]);
    (part(0..at), part(at..n))
}

pub fn run(args: &TrainArgs, quiet: bool) -> Result<(), Failure> {
    if args.epochs == 0 || args.batch == 0 || args.chains_per_item == 0 {
        return Err(usage(
            "--epochs, --batch and --chains-per-item must be at least 1",
        ));
    }
    if !(0.0..1.0).contains(&args.holdout) {
        return Err(usage(format!(
            "--holdout {} must be in [0, 1)",
            args.holdout
        )));
    }
    let pos_schedule = parse_schedule(&args.pos_schedule, "--pos-schedule")?;
    let neg_schedule = parse_schedule(&args.neg_schedule, "--neg-schedule")?;
    let mut optimizer = match args.optimizer.as_str() {
        "sgd" => OptimizerConfig::sgd(args.lr),
        _ => OptimizerConfig::adam(args.lr),
    };
    match (&mut optimizer.method, args.momentum) {
        (Method::Sgd { momentum }, Some(m))
        | (
            Method::Adam {
                beta1: momentum, ..
            },
            Some(m),
        ) => {
            *momentum = m;
        }
        _ => {}
    }
    optimizer.weight_decay = args.weight_decay;
    optimizer.clip_norm = args.clip_norm;
    optimizer.validate().map_err(|e| usage(e.to_string()))?;

    let model = Model::from_path(&args.model)?;
    let visible = parse_visible(&args.visible, &model)?;
    // Data blocks: the visible nodes grouped by kind, in column order.
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (col, &id) in visible.iter().enumerate() {
        let kind = model.kind_of(id).name();
        match groups
            .iter_mut()
            .find(|(ids, _)| model.kind_of(ids[0]).name() == kind)
        {
            Some((ids, cols)) => {
                ids.push(id);
                cols.push(col);
            }
            None => groups.push((vec![id], vec![col])),
        }
    }
    let data = read_data(&args.data, &model, &visible, &groups)?;
    let block = |ids: &[usize]| -> Result<Block, Failure> {
        Ok(Block::new(ids.iter().map(|&i| model.node(i)).collect())?)
    };
    let data_blocks = groups
        .iter()
        .map(|(ids, _)| block(ids))
        .collect::<Result<Vec<_>, _>>()?;
    let conditioning_blocks = model
        .clamped_blocks()
        .iter()
        .map(|ids| block(ids))
        .collect::<Result<Vec<_>, _>>()?;
    let mut is_visible = vec![false; model.n_nodes()];
    for &i in &visible {
        is_visible[i] = true;
    }
    let mut negative = Vec::new();
    let mut positive = Vec::new();
    for sb in model.free_superblocks() {
        negative.push(SuperBlock(
            sb.iter().map(|b| block(b)).collect::<Result<_, _>>()?,
        ));
        let latent: Vec<Block> = sb
            .iter()
            .map(|b| {
                b.iter()
                    .copied()
                    .filter(|&i| !is_visible[i])
                    .collect::<Vec<_>>()
            })
            .filter(|b| !b.is_empty())
            .map(|b| block(&b))
            .collect::<Result<_, _>>()?;
        if !latent.is_empty() {
            positive.push(SuperBlock(latent));
        }
    }
    let params = ModelParameters::new(&model)?;
    if params.factors.is_empty() {
        return Err(usage(format!(
            "{}: the model has no factor weights to train",
            args.model.display()
        )));
    }
    let spec = TrainingSpec::new(
        params.factors.clone(),
        data_blocks,
        conditioning_blocks,
        positive,
        negative,
        pos_schedule,
        neg_schedule,
    )?;

    let n = data[0][0].shape()[0];
    let n_holdout = (args.holdout * n as f64).ceil() as usize;
    let (train_data, holdout) = split_rows(&data, n - n_holdout);
    if n - n_holdout < args.batch {
        return Err(usage(format!(
            "{}: {} for training (after holding out {n_holdout}) are fewer than one batch of {}",
            args.data.display(),
            plural(n - n_holdout, "row", "rows"),
            args.batch
        )));
    }
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        seed: args.seed,
        chains_per_item: args.chains_per_item,
        negative_chains: args.neg_chains.unwrap_or(args.batch),
        persistent: args.persistent,
        optimizer,
    };
    if config.negative_chains == 0 {
        return Err(usage("--neg-chains must be at least 1"));
    }
    let conditioning = model.clamped_state();
    let resume_from = args
        .checkpoint
        .as_ref()
        .filter(|p| args.resume && p.exists());
    let mut trainer = match resume_from {
        Some(path) => Trainer::resume(spec, train_data, conditioning.clone(), config, path)?,
        None => Trainer::new(spec, train_data, conditioning.clone(), config)?,
    };
    let spe = trainer.steps_per_epoch();
    let eval_every = args.eval_every.unwrap_or(spe).max(1);
    let checkpoint_every = args.checkpoint_every.unwrap_or(spe).max(1);
    let evaluate = |t: &Trainer, step: usize| -> thrml::Result<Option<f64>> {
        if n_holdout == 0 {
            return Ok(None);
        }
        let key = Key::new(args.seed)
            .fold_in(EVAL_STREAM)
            .fold_in(step as u64);
        pseudo_log_likelihood(key, t.spec(), &holdout, &conditioning).map(Some)
    };

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(trainer.total_steps() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] step {pos}/{len} ({per_sec}, {eta} left) {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_position(trainer.steps_done() as u64);
    let start = Instant::now();
    let first_step = trainer.steps_done();
    let mut pll = None;
    let mut last_norm = f64::NAN;
    let result = thrml::with_threads(args.threads, || {
        trainer.run(|t, report| {
            last_norm = report.kl_grad_norm;
            let done = t.steps_done();
            if done % eval_every == 0 || t.is_done() {
                pll = evaluate(t, done)?;
            }
            if let Some(path) = &args.checkpoint
                && (done % checkpoint_every == 0 || t.is_done())
            {
                t.save_checkpoint(path)?;
            }
            bar.set_position(done as u64);
            bar.set_message(format!(
                "epoch {}/{} |grad| {:.4}{}",
                report.epoch + 1,
                args.epochs,
                report.kl_grad_norm,
                pll.map(|p| format!(" held-out pseudo-LL {p:.4}"))
                    .unwrap_or_default()
            ));
            Ok(())
        })
    });
    bar.finish_and_clear();
    result??;
    let elapsed = start.elapsed().as_secs_f64();
    // Node updates per step: the latent nodes of every positive chain, then every free
    // node of every negative chain, over each phase's sweeps.
    let (spec, cfg) = (trainer.spec(), trainer.config());
    let free_nodes = |blocks: Vec<thrml::Block>| blocks.iter().map(|b| b.len()).sum::<usize>();
    let positive_chains = cfg.batch_size * cfg.chains_per_item;
    let flips_per_step = positive_chains as f64
        * free_nodes(spec.positive_free_blocks()) as f64
        * spec.schedule_positive.total_sweeps() as f64
        + cfg.negative_chains as f64
            * free_nodes(spec.negative_free_blocks()) as f64
            * spec.schedule_negative.total_sweeps() as f64;
    let steps_run = trainer.steps_done() - first_step;
    let rate = flips_per_step * steps_run as f64 / (elapsed.max(1e-12) * 1e9);
    let chains = format!(
        "{positive_chains} positive and {} negative chains, {rate:.3} flips/ns",
        cfg.negative_chains
    );

    let weights = trainer.spec().weights();
    let file = params.file_with_weights(model.file(), &weights)?;
    // The trained file must load as a model before it replaces anything.
    Model::new(file.clone(), &args.out)?;
    let json = file.to_json();
    write_atomic(&args.out, |f| {
        use std::io::Write;
        f.write_all(json.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|source| thrml::Error::Io {
                path: args.out.clone(),
                source,
            })
    })?;
    println!(
        "trained {} ({} epochs × {} steps of {} items{}; {chains}) in {elapsed:.3} s; last |grad| {last_norm:.4}{}; wrote {}",
        plural(steps_run, "step", "steps"),
        args.epochs,
        spe,
        args.batch,
        if first_step > 0 {
            format!(", resumed at step {first_step}")
        } else {
            String::new()
        },
        pll.map(|p| format!(", held-out pseudo-log-likelihood {p:.4} per node"))
            .unwrap_or_default(),
        args.out.display()
    );
    Ok(())
}
