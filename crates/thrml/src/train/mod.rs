//! Training energy-based models: KL gradients of discrete EBMs, optimizers, and the
//! training loop.
//!
//! * [`statistics`]: the sufficient statistics `−∂E/∂W` of discrete factors, summed in place
//!   while chains run ([`FactorStatistics`]).
//! * [`kl_grad`]: [`TrainingSpec`] (trainable factors, the blocks and schedules of the
//!   positive and negative phases) and [`estimate_kl_gradient`].
//! * [`optim`]: [`Optimizer`] (SGD with momentum, Adam; weight decay, gradient clipping).
//! * [`trainer`]: [`Trainer`], the loop: shuffled minibatches, fresh or persistent negative
//!   chains, checkpoints ([`checkpoint`]) and resumption.
//! * [`quality`]: cheap measures of a model on held-out data (pseudo-likelihood).
//!
//! The Ising helpers with THRML's signatures (`IsingTrainingSpec`, `estimate_kl_grad`,
//! `hinton_init`) are in [`crate::models::ising`].
pub mod checkpoint;
pub mod kl_grad;
pub mod optim;
pub mod quality;
pub mod statistics;
pub mod trainer;

pub use checkpoint::CHECKPOINT_FORMAT;
pub use kl_grad::{KlGradient, TrainingSpec, estimate_kl_gradient};
pub use optim::{Method, Optimizer, OptimizerConfig, UpdateInfo};
pub use quality::pseudo_log_likelihood;
pub use statistics::{FactorStatistics, StatisticSums, StatisticsCarry};
pub use trainer::{StepReport, TrainConfig, Trainer};
