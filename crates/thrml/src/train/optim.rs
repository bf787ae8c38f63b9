//! Gradient-descent optimizers: SGD (with momentum) and Adam, with L2 weight decay and
//! gradient clipping by global norm.
//!
//! Each update takes the raw gradient `g` of every parameter tensor and
//!
//! 1. adds weight decay, `g ← g + λ·θ` (L2 regularisation of the loss by `λ/2 ‖θ‖²`);
//! 2. clips by global norm: if `‖g‖ > c`, `g ← g · c/‖g‖` (the norm over all tensors);
//! 3. steps: SGD `v ← μ v + g, θ ← θ − η v`; Adam (Kingma & Ba)
//!    `m ← β₁ m + (1−β₁) g, v ← β₂ v + (1−β₂) g², θ ← θ − η m̂ / (√v̂ + ε)` with the bias
//!    corrections `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`.
//!
//! Parameters and optimizer state are `f64`; the state is plain data, so a checkpoint can
//! store it and a resumed run continues bit for bit.
//!
//! # Example
//!
//! ```
//! use ndarray::{arr1, ArrayD};
//! use thrml::train::{Optimizer, OptimizerConfig};
//!
//! // Minimise (θ − 3)² with Adam.
//! let mut theta: Vec<ArrayD<f64>> = vec![arr1(&[0.0]).into_dyn()];
//! let mut opt = Optimizer::new(OptimizerConfig::adam(0.1), &[vec![1]])?;
//! for _ in 0..500 {
//!     let grad = vec![theta[0].mapv(|t| 2.0 * (t - 3.0))];
//!     opt.update(&mut theta, &grad)?;
//! }
//! assert!((theta[0][[0]] - 3.0).abs() < 1e-2);
//! # Ok::<(), thrml::Error>(())
//! ```

use ndarray::{ArrayD, IxDyn, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Method {
    /// Stochastic gradient descent with (heavy-ball) momentum `μ ∈ [0, 1)`.
    Sgd {
        /// The momentum `μ`; 0 for plain SGD.
        momentum: f64,
    },
    /// Adam.
    Adam {
        /// First-moment decay `β₁ ∈ [0, 1)`.
        beta1: f64,
        /// Second-moment decay `β₂ ∈ [0, 1)`.
        beta2: f64,
        /// The denominator's `ε > 0`.
        epsilon: f64,
    },
}

/// An optimizer's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The update rule.
    pub method: Method,
    /// The learning rate `η > 0`.
    pub learning_rate: f64,
    /// L2 weight decay `λ ≥ 0`, added to the gradient as `λ·θ`.
    pub weight_decay: f64,
    /// Clip the gradient to this global norm (`None`: no clipping).
    pub clip_norm: Option<f64>,
}

impl OptimizerConfig {
    /// Adam with `β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸`, no decay or clipping.
    #[must_use]
    pub fn adam(learning_rate: f64) -> OptimizerConfig {
        OptimizerConfig {
            method: Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            learning_rate,
            weight_decay: 0.0,
            clip_norm: None,
        }
    }

    /// Plain SGD, no momentum, decay or clipping.
    #[must_use]
    pub fn sgd(learning_rate: f64) -> OptimizerConfig {
        OptimizerConfig {
            method: Method::Sgd { momentum: 0.0 },
            learning_rate,
            weight_decay: 0.0,
            clip_norm: None,
        }
    }

    /// Check every setting.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting that is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64, want: &str| {
            Err(Error::Invalid(format!(
                "optimizer {what} is {v}; it must be {want}"
            )))
        };
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning rate", self.learning_rate, "finite and > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight decay", self.weight_decay, "finite and ≥ 0");
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad("clip norm", c, "finite and > 0");
        }
        let unit = |what: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                bad(what, v, "in [0, 1)")
            }
        };
        match self.method {
            Method::Sgd { momentum } => unit("momentum", momentum),
            Method::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return bad("epsilon", epsilon, "finite and > 0");
                }
                Ok(())
            }
        }
    }
}

/// What one update did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateInfo {
    /// The global norm of the gradient after weight decay, before clipping.
    pub grad_norm: f64,
    /// Whether the gradient was clipped.
    pub clipped: bool,
}

/// An optimizer with its state: the step count and per-parameter moment tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    /// The settings.
    pub config: OptimizerConfig,
    /// Updates made so far.
    pub step: u64,
    /// SGD velocity or Adam's first moment, one tensor per parameter.
    pub first: Vec<ArrayD<f64>>,
    /// Adam's second moment (empty for SGD).
    pub second: Vec<ArrayD<f64>>,
}

impl Optimizer {
    /// A fresh optimizer for parameters of the given shapes.
    ///
    /// # Errors
    /// As [`OptimizerConfig::validate`].
    pub fn new(config: OptimizerConfig, shapes: &[Vec<usize>]) -> Result<Optimizer> {
        config.validate()?;
        let zeros =
            || -> Vec<ArrayD<f64>> { shapes.iter().map(|s| ArrayD::zeros(IxDyn(s))).collect() };
        Ok(Optimizer {
            config,
            step: 0,
            first: zeros(),
            second: match config.method {
                Method::Adam { .. } => zeros(),
                Method::Sgd { .. } => Vec::new(),
            },
        })
    }

    /// Apply one update to `params` from the raw gradients `grads`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the tensors do not match the optimizer's shapes or a gradient
    /// is not finite (the parameters are then left unchanged).
    pub fn update(
        &mut self,
        params: &mut [ArrayD<f64>],
        grads: &[ArrayD<f64>],
    ) -> Result<UpdateInfo> {
        if params.len() != self.first.len() || grads.len() != self.first.len() {
            return Err(Error::Invalid(format!(
                "optimizer holds {} tensors but got {} parameters and {} gradients",
                self.first.len(),
                params.len(),
                grads.len()
            )));
        }
        for (i, ((p, g), m)) in params.iter().zip(grads).zip(&self.first).enumerate() {
            if p.shape() != m.shape() || g.shape() != m.shape() {
                return Err(Error::Invalid(format!(
                    "tensor {i}: parameter {:?} and gradient {:?}, the optimizer has {:?}",
                    p.shape(),
                    g.shape(),
                    m.shape()
                )));
            }
            if let Some(x) = g.iter().find(|x| !x.is_finite()) {
                return Err(Error::Invalid(format!(
                    "tensor {i}: the gradient has a non-finite entry {x}"
                )));
            }
        }
        let decay = self.config.weight_decay;
        let mut g: Vec<ArrayD<f64>> = grads
            .iter()
            .zip(params.iter())
            .map(|(g, p)| {
                if decay > 0.0 {
                    g + &(p * decay)
                } else {
                    g.clone()
                }
            })
            .collect();
        let grad_norm = g
            .iter()
            .flat_map(|t| t.iter())
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt();
        let clipped = self.config.clip_norm.is_some_and(|c| grad_norm > c);
        if let Some(c) = self.config.clip_norm.filter(|_| clipped) {
            let scale = c / grad_norm;
            for t in &mut g {
                t.mapv_inplace(|x| x * scale);
            }
        }
        self.step += 1;
        let lr = self.config.learning_rate;
        match self.config.method {
            Method::Sgd { momentum } => {
                for ((p, g), v) in params.iter_mut().zip(&g).zip(&mut self.first) {
                    Zip::from(p).and(g).and(v).for_each(|p, &g, v| {
                        *v = momentum * *v + g;
                        *p -= lr * *v;
                    });
                }
            }
            Method::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let t = i32::try_from(self.step).unwrap_or(i32::MAX);
                let c1 = 1.0 - beta1.powi(t);
                let c2 = 1.0 - beta2.powi(t);
                for (((p, g), m), v) in params
                    .iter_mut()
                    .zip(&g)
                    .zip(&mut self.first)
                    .zip(&mut self.second)
                {
                    Zip::from(p).and(g).and(m).and(v).for_each(|p, &g, m, v| {
                        *m = beta1 * *m + (1.0 - beta1) * g;
                        *v = beta2 * *v + (1.0 - beta2) * g * g;
                        *p -= lr * (*m / c1) / ((*v / c2).sqrt() + epsilon);
                    });
                }
            }
        }
        Ok(UpdateInfo { grad_norm, clipped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn adam_first_step_moves_by_the_learning_rate() {
        // With bias correction, Adam's first step is η · sign(g) (up to ε).
        let mut p = vec![arr1(&[1.0, -2.0]).into_dyn()];
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.01), &[vec![2]]).unwrap();
        opt.update(&mut p, &[arr1(&[5.0, -0.001]).into_dyn()])
            .unwrap();
        assert!((p[0][[0]] - 0.99).abs() < 1e-9);
        assert!((p[0][[1]] + 1.99).abs() < 1e-5);
    }

    #[test]
    fn sgd_momentum_decay_and_clipping() {
        let mut cfg = OptimizerConfig::sgd(0.5);
        cfg.method = Method::Sgd { momentum: 0.5 };
        cfg.weight_decay = 1.0;
        cfg.clip_norm = Some(1.0);
        let mut p = vec![arr1(&[2.0]).into_dyn()];
        let mut opt = Optimizer::new(cfg, &[vec![1]]).unwrap();
        // g = 1 + 1·2 = 3, clipped to 1: p = 2 − 0.5.
        let info = opt.update(&mut p, &[arr1(&[1.0]).into_dyn()]).unwrap();
        assert_eq!(info.grad_norm, 3.0);
        assert!(info.clipped);
        assert_eq!(p[0][[0]], 1.5);
        // g = 0 + 1.5 = 1.5 → 1; v = 0.5·1 + 1 = 1.5; p = 1.5 − 0.75.
        opt.update(&mut p, &[arr1(&[0.0]).into_dyn()]).unwrap();
        assert_eq!(p[0][[0]], 0.75);
    }

    #[test]
    fn bad_settings_and_gradients_are_errors() {
        let mut cfg = OptimizerConfig::adam(0.0);
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("learning rate")
        );
        cfg.learning_rate = 0.1;
        cfg.clip_norm = Some(-1.0);
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("clip norm")
        );
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.1), &[vec![1]]).unwrap();
        let mut p = vec![arr1(&[0.0]).into_dyn()];
        let e = opt
            .update(&mut p, &[arr1(&[f64::NAN]).into_dyn()])
            .unwrap_err();
        assert!(e.to_string().contains("non-finite"), "{e}");
        assert_eq!(opt.step, 0);
        let e = opt
            .update(&mut p, &[arr1(&[1.0, 2.0]).into_dyn()])
            .unwrap_err();
        assert!(e.to_string().contains("tensor 0"), "{e}");
    }
}
