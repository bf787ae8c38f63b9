//! Training energy-based models: KL gradients of discrete EBMs, optimizers, and the
//! training loop.
//!
//! * [`statistics`]: the sufficient statistics `−∂E/∂W` of discrete factors, summed in place
//!   while chains run ([`FactorStatistics`]).
//! * [`kl_grad`]: [`TrainingSpec`] (trainable factors, the blocks and schedules of the
//!   positive and negative phases) and [`estimate_kl_gradient`].
pub mod kl_grad;
pub mod statistics;

pub use kl_grad::{KlGradient, TrainingSpec, estimate_kl_gradient};
pub use statistics::{FactorStatistics, StatisticSums, StatisticsCarry};
