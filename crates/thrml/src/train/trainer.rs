//! The training loop: minibatches, persistent chains, optimizer steps and checkpoints.
//!
//! A [`Trainer`] owns a [`TrainingSpec`], the data and an [`Optimizer`]. Each
//! [`Trainer::step`] takes the next minibatch, estimates the KL gradient
//! ([`estimate_kl_gradient`]) and updates every factor's weights.
//!
//! * **Minibatches.** Each epoch visits the data in an order shuffled from the seed and the
//!   epoch number (Fisher–Yates on a ChaCha8 stream), in `n / batch_size` full batches; the
//!   `n mod batch_size` items left over are in the next epoch's shuffle.
//! * **Chains.** Positive chains start fresh every step from
//!   [`TrainingSpec::hinton_init`]. Negative chains do too, or, with
//!   [`TrainConfig::persistent`], carry over from step to step (persistent contrastive
//!   divergence, Tieleman 2008): the first ones start from `hinton_init`, every later step
//!   starts where the last one ended.
//! * **Randomness.** Step `t` draws from keys derived from `(seed, t)` only, and the
//!   sampler's results do not depend on the thread count, so a run is a function of its
//!   seed, data and settings.
//! * **Checkpoints.** [`Trainer::save_checkpoint`] writes the step, the parameters, the
//!   optimizer state and the persistent chains to one `.npz` file, atomically;
//!   [`Trainer::resume`] continues from it, and the rest of the run is bit-identical to a
//!   run that was never interrupted.

use ndarray::{ArrayD, Axis};
use rand::RngExt;

use crate::error::{Error, Result};
use crate::rng::Key;
use crate::state::{State, Tensor};
use crate::train::checkpoint::Checkpoint;
use crate::train::kl_grad::{KlGradient, TrainingSpec, estimate_kl_gradient};
use crate::train::optim::{Optimizer, OptimizerConfig, UpdateInfo};

/// `fold_in` tags separating the streams of a run.
const SHUFFLE_STREAM: u64 = 0x0073_6875_6666;
const STEP_STREAM: u64 = 0x7374_6570;
const INIT_STREAM: u64 = 0x696e_6974;

/// The settings of a training run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Data items per step.
    pub batch_size: usize,
    /// The seed of every random choice (shuffles, initial states, sampling).
    pub seed: u64,
    /// Positive chains per data item.
    pub chains_per_item: usize,
    /// Negative chains.
    pub negative_chains: usize,
    /// Carry the negative chains across steps (persistent contrastive divergence).
    pub persistent: bool,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
}

impl TrainConfig {
    /// Settings with one positive chain per item, fresh negative chains, and Adam.
    #[must_use]
    pub fn new(epochs: usize, batch_size: usize, learning_rate: f64, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size,
            seed,
            chains_per_item: 1,
            negative_chains: batch_size,
            persistent: false,
            optimizer: OptimizerConfig::adam(learning_rate),
        }
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The step just taken, counting from 0.
    pub step: usize,
    /// Its epoch, counting from 0.
    pub epoch: usize,
    /// Its batch within the epoch.
    pub batch: usize,
    /// The norm of the estimated KL gradient.
    pub kl_grad_norm: f64,
    /// What the optimizer did (norm after weight decay, clipping).
    pub update: UpdateInfo,
}

/// A training run in progress.
#[derive(Debug)]
pub struct Trainer {
    spec: TrainingSpec,
    data: Vec<State>,
    conditioning: Vec<State>,
    config: TrainConfig,
    n_items: usize,
    params: Vec<ArrayD<f64>>,
    optimizer: Optimizer,
    step: usize,
    negative_chains: Option<Vec<State>>,
    order: Option<(usize, Vec<usize>)>,
}

/// Rows `rows` of a `[n, ...]` state.
pub(crate) fn select_rows(state: &State, rows: &[usize]) -> State {
    state
        .iter()
        .map(|t| match t {
            Tensor::Bool(a) => Tensor::Bool(a.select(Axis(0), rows)),
            Tensor::U8(a) => Tensor::U8(a.select(Axis(0), rows)),
            Tensor::I32(a) => Tensor::I32(a.select(Axis(0), rows)),
            Tensor::F32(a) => Tensor::F32(a.select(Axis(0), rows)),
            Tensor::F64(a) => Tensor::F64(a.select(Axis(0), rows)),
        })
        .collect()
}

impl Trainer {
    /// A run from the spec's current weights.
    ///
    /// `data[i]` is the state of `spec.data_blocks[i]` for every item, `[n, nodes]`;
    /// `conditioning[i]` the state of `spec.conditioning_blocks[i]`, `[nodes]`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for zero epochs, batch size or chains, fewer items than one batch,
    /// data that do not fit the data blocks; as [`Optimizer::new`].
    pub fn new(
        spec: TrainingSpec,
        data: Vec<State>,
        conditioning: Vec<State>,
        config: TrainConfig,
    ) -> Result<Trainer> {
        if config.batch_size == 0 || config.chains_per_item == 0 || config.negative_chains == 0 {
            return Err(Error::Invalid(
                "the batch size, chains per item and negative chains must be at least 1".into(),
            ));
        }
        if data.len() != spec.data_blocks.len() {
            return Err(Error::Invalid(format!(
                "{} data arrays for {} data blocks",
                data.len(),
                spec.data_blocks.len()
            )));
        }
        crate::block::verify_block_state(
            &spec.data_blocks,
            &data,
            spec.node_shape_dtypes(),
            Some(-1),
        )?;
        let mut n_items = None;
        for (i, d) in data.iter().enumerate() {
            let n = d[0].shape()[0];
            if d[0].ndim() != 2 || n_items.is_some_and(|m| m != n) {
                return Err(Error::Invalid(format!(
                    "data array {i} has shape {:?}; every data array must be [items, nodes] with the same number of items",
                    d[0].shape()
                )));
            }
            n_items = Some(n);
        }
        let n_items = n_items.unwrap_or(0);
        if n_items < config.batch_size {
            return Err(Error::Invalid(format!(
                "{n_items} data items are fewer than one batch of {}",
                config.batch_size
            )));
        }
        crate::block::verify_block_state(
            &spec.conditioning_blocks,
            &conditioning,
            spec.node_shape_dtypes(),
            Some(-1),
        )?;
        let params: Vec<ArrayD<f64>> = spec.weights().iter().map(|w| w.mapv(f64::from)).collect();
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
        let optimizer = Optimizer::new(config.optimizer, &shapes)?;
        let negative_chains = config.persistent.then(|| {
            spec.hinton_init(
                Key::new(config.seed).fold_in(INIT_STREAM),
                &spec.negative_free_blocks(),
                config.negative_chains,
            )
        });
        Ok(Trainer {
            spec,
            data,
            conditioning,
            config,
            n_items,
            params,
            optimizer,
            step: 0,
            negative_chains,
            order: None,
        })
    }

    /// Continue a run from a checkpoint written by [`Trainer::save_checkpoint`].
    ///
    /// The spec, data and settings must be those of the run that wrote it (the number of
    /// epochs may differ, to train longer).
    ///
    /// # Errors
    /// As [`Trainer::new`]; [`Error::Io`] / [`Error::Array`] if the file cannot be read;
    /// [`Error::Invalid`] naming the setting or tensor that differs from the checkpoint.
    pub fn resume(
        spec: TrainingSpec,
        data: Vec<State>,
        conditioning: Vec<State>,
        config: TrainConfig,
        checkpoint: &std::path::Path,
    ) -> Result<Trainer> {
        let mut t = Trainer::new(spec, data, conditioning, config)?;
        let c = Checkpoint::read(checkpoint)?;
        c.restore_into(&mut t, checkpoint)?;
        Ok(t)
    }

    /// Write the run's state to `path` (an `.npz` file), atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn save_checkpoint(&self, path: &std::path::Path) -> Result<()> {
        Checkpoint::of(self).write(path)
    }

    /// The steps of one epoch.
    #[must_use]
    pub fn steps_per_epoch(&self) -> usize {
        self.n_items / self.config.batch_size
    }

    /// The steps of the whole run.
    #[must_use]
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.epochs
    }

    /// Steps taken so far.
    #[must_use]
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every step has been taken.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The spec, with the current weights.
    #[must_use]
    pub fn spec(&self) -> &TrainingSpec {
        &self.spec
    }

    /// The current parameters (`f64` master copies of the factor weights).
    #[must_use]
    pub fn params(&self) -> &[ArrayD<f64>] {
        &self.params
    }

    /// The optimizer and its state.
    #[must_use]
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The persistent negative chains (`None` without [`TrainConfig::persistent`]).
    #[must_use]
    pub fn negative_chains(&self) -> Option<&[State]> {
        self.negative_chains.as_deref()
    }

    /// The data and conditioning states.
    #[must_use]
    pub fn data(&self) -> (&[State], &[State]) {
        (&self.data, &self.conditioning)
    }

    pub(crate) fn restore(
        &mut self,
        step: usize,
        params: Vec<ArrayD<f64>>,
        optimizer: Optimizer,
        chains: Option<Vec<State>>,
    ) -> Result<()> {
        self.spec
            .set_weights(params.iter().map(|p| p.mapv(|x| x as f32)).collect())?;
        self.step = step;
        self.params = params;
        self.optimizer = optimizer;
        self.negative_chains = chains;
        self.order = None;
        Ok(())
    }

    /// The data order of `epoch`: a permutation of the items from the seed.
    fn order(&mut self, epoch: usize) -> &[usize] {
        if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let key = Key::new(self.config.seed)
                .fold_in(SHUFFLE_STREAM)
                .fold_in(epoch as u64);
            let mut rng = key.chain_rngs(1).pop().expect("one generator");
            let mut order: Vec<usize> = (0..self.n_items).collect();
            for i in (1..order.len()).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
            self.order = Some((epoch, order));
        }
        &self.order.as_ref().expect("just set").1
    }

    /// The item indices of step `step`'s batch.
    #[must_use]
    pub fn batch_indices(&mut self, step: usize) -> Vec<usize> {
        let spe = self.steps_per_epoch().max(1);
        let (epoch, k) = (step / spe, step % spe);
        let b = self.config.batch_size;
        self.order(epoch)[k * b..(k + 1) * b].to_vec()
    }

    /// Estimate the KL gradient of the current model on a batch of items, with step `step`'s
    /// keys (also used by [`Trainer::step`]).
    ///
    /// # Errors
    /// As [`estimate_kl_gradient`].
    pub fn gradient(&self, rows: &[usize], step: usize) -> Result<KlGradient> {
        let key = Key::new(self.config.seed)
            .fold_in(STEP_STREAM)
            .fold_in(step as u64);
        let batch: Vec<State> = self.data.iter().map(|d| select_rows(d, rows)).collect();
        let init_pos = self.spec.hinton_init(
            key.fold_in(0),
            &self.spec.positive_free_blocks(),
            self.config.chains_per_item * rows.len(),
        );
        let init_neg = match &self.negative_chains {
            Some(chains) => chains.clone(),
            None => self.spec.hinton_init(
                key.fold_in(1),
                &self.spec.negative_free_blocks(),
                self.config.negative_chains,
            ),
        };
        estimate_kl_gradient(
            key.fold_in(2),
            &self.spec,
            &batch,
            &self.conditioning,
            &init_pos,
            &init_neg,
        )
    }

    /// Take the next step: estimate the gradient on the next batch and update the weights.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the run is done; as [`estimate_kl_gradient`] and
    /// [`Optimizer::update`].
    pub fn step(&mut self) -> Result<StepReport> {
        if self.is_done() {
            return Err(Error::Invalid(format!(
                "the run is done: all {} steps taken",
                self.total_steps()
            )));
        }
        let step = self.step;
        let rows = self.batch_indices(step);
        let grad = self.gradient(&rows, step)?;
        let kl_grad_norm = grad.norm();
        let mut params = self.params.clone();
        let update = self.optimizer.update(&mut params, &grad.gradient)?;
        self.spec
            .set_weights(params.iter().map(|p| p.mapv(|x| x as f32)).collect())?;
        self.params = params;
        if self.negative_chains.is_some() {
            self.negative_chains = Some(grad.final_negative);
        }
        self.step += 1;
        let spe = self.steps_per_epoch().max(1);
        Ok(StepReport {
            step,
            epoch: step / spe,
            batch: step % spe,
            kl_grad_norm,
            update,
        })
    }

    /// Take every remaining step, calling `on_step` after each (to report progress, write
    /// checkpoints, or stop early by returning an error).
    ///
    /// # Errors
    /// The first error of a step or of `on_step`.
    pub fn run(
        &mut self,
        mut on_step: impl FnMut(&Trainer, &StepReport) -> Result<()>,
    ) -> Result<()> {
        while !self.is_done() {
            let report = self.step()?;
            on_step(self, &report)?;
        }
        Ok(())
    }
}
