//! Training checkpoints: one `.npz` file, written atomically.
//!
//! The archive holds
//!
//! * `meta`: a `uint8` array of UTF-8 JSON, `{"format": "thrml-checkpoint/1", "step": …,
//!   "seed": …, "batch_size": …, "chains_per_item": …, "negative_chains": …,
//!   "persistent": …, "optimizer": {…}, "optimizer_step": …, "n_params": …,
//!   "n_chain_blocks": …}`;
//! * `param.I`: the `float64` parameters of factor `I`;
//! * `optimizer.first.I`, `optimizer.second.I`: the optimizer's moment tensors (`float64`);
//! * `chains.B`: the persistent negative chains' state of negative free block `B`.
//!
//! Every number is stored exactly, so a resumed run continues bit for bit.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{read_npz, write_npz};
use crate::state::{State, Tensor};
use crate::train::optim::{Optimizer, OptimizerConfig};
use crate::train::trainer::Trainer;

/// The format tag of a checkpoint's `meta`.
pub const CHECKPOINT_FORMAT: &str = "thrml-checkpoint/1";

/// The settings and counters of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    format: String,
    step: usize,
    seed: u64,
    batch_size: usize,
    chains_per_item: usize,
    negative_chains: usize,
    persistent: bool,
    optimizer: OptimizerConfig,
    optimizer_step: u64,
    n_params: usize,
    n_chain_blocks: usize,
}

/// A checkpoint in memory.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoint {
    meta: Meta,
    params: Vec<ArrayD<f64>>,
    first: Vec<ArrayD<f64>>,
    second: Vec<ArrayD<f64>>,
    chains: Option<Vec<State>>,
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Array {
        path: path.to_path_buf(),
        message,
    }
}

impl Checkpoint {
    /// The state of `t`.
    pub(crate) fn of(t: &Trainer) -> Checkpoint {
        let c = t.config();
        let opt = t.optimizer();
        Checkpoint {
            meta: Meta {
                format: CHECKPOINT_FORMAT.to_owned(),
                step: t.steps_done(),
                seed: c.seed,
                batch_size: c.batch_size,
                chains_per_item: c.chains_per_item,
                negative_chains: c.negative_chains,
                persistent: c.persistent,
                optimizer: c.optimizer,
                optimizer_step: opt.step,
                n_params: t.params().len(),
                n_chain_blocks: t.negative_chains().map_or(0, <[State]>::len),
            },
            params: t.params().to_vec(),
            first: opt.first.clone(),
            second: opt.second.clone(),
            chains: t.negative_chains().map(<[State]>::to_vec),
        }
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let meta = serde_json::to_vec(&self.meta).map_err(|e| invalid(path, e.to_string()))?;
        let mut arrays: Vec<(String, Tensor)> = vec![(
            "meta".into(),
            Tensor::U8(ArrayD::from_shape_vec(vec![meta.len()], meta).expect("a vector")),
        )];
        let tensors = |name: &str, ts: &[ArrayD<f64>]| -> Vec<(String, Tensor)> {
            ts.iter()
                .enumerate()
                .map(|(i, t)| (format!("{name}.{i}"), Tensor::F64(t.clone())))
                .collect()
        };
        arrays.extend(tensors("param", &self.params));
        arrays.extend(tensors("optimizer.first", &self.first));
        arrays.extend(tensors("optimizer.second", &self.second));
        for (b, s) in self.chains.iter().flatten().enumerate() {
            arrays.push((format!("chains.{b}"), s[0].clone()));
        }
        let refs: Vec<(&str, &Tensor)> = arrays.iter().map(|(n, t)| (n.as_str(), t)).collect();
        write_npz(path, &refs)
    }

    pub(crate) fn read(path: &Path) -> Result<Checkpoint> {
        let mut arrays: BTreeMap<String, Tensor> = read_npz(path)?;
        let meta = match arrays.remove("meta") {
            Some(Tensor::U8(a)) => a.iter().copied().collect::<Vec<u8>>(),
            _ => {
                return Err(invalid(
                    path,
                    "not a thrml training checkpoint: no uint8 array `meta`".into(),
                ));
            }
        };
        let meta: Meta = serde_json::from_slice(&meta)
            .map_err(|e| invalid(path, format!("array `meta`: {e}")))?;
        if meta.format != CHECKPOINT_FORMAT {
            return Err(invalid(
                path,
                format!(
                    "unsupported checkpoint format {:?}; this version reads {CHECKPOINT_FORMAT:?}",
                    meta.format
                ),
            ));
        }
        let mut take_f64 = |name: String| -> Result<ArrayD<f64>> {
            match arrays.remove(&name) {
                Some(Tensor::F64(a)) => Ok(a),
                Some(t) => Err(invalid(
                    path,
                    format!("array `{name}` has dtype {}, expected float64", t.dtype()),
                )),
                None => Err(invalid(path, format!("array `{name}` is missing"))),
            }
        };
        let params = (0..meta.n_params)
            .map(|i| take_f64(format!("param.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let first = (0..meta.n_params)
            .map(|i| take_f64(format!("optimizer.first.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let n_second = if matches!(meta.optimizer.method, crate::train::Method::Adam { .. }) {
            meta.n_params
        } else {
            0
        };
        let second = (0..n_second)
            .map(|i| take_f64(format!("optimizer.second.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let chains = if meta.persistent {
            Some(
                (0..meta.n_chain_blocks)
                    .map(|b| {
                        arrays
                            .remove(&format!("chains.{b}"))
                            .map(|t| vec![t])
                            .ok_or_else(|| invalid(path, format!("array `chains.{b}` is missing")))
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        Ok(Checkpoint {
            meta,
            params,
            first,
            second,
            chains,
        })
    }

    /// Check the checkpoint against `t`'s settings and shapes and load it into `t`.
    pub(crate) fn restore_into(self, t: &mut Trainer, path: &Path) -> Result<()> {
        let c = *t.config();
        let m = &self.meta;
        let mismatch = |what: &str, saved: String, now: String| {
            Err(invalid(
                path,
                format!(
                    "the checkpoint was written with {what} {saved}, this run has {now}; resume with the same settings"
                ),
            ))
        };
        if m.seed != c.seed {
            return mismatch("seed", m.seed.to_string(), c.seed.to_string());
        }
        if m.batch_size != c.batch_size {
            return mismatch(
                "batch size",
                m.batch_size.to_string(),
                c.batch_size.to_string(),
            );
        }
        if m.chains_per_item != c.chains_per_item {
            return mismatch(
                "chains per item",
                m.chains_per_item.to_string(),
                c.chains_per_item.to_string(),
            );
        }
        if m.negative_chains != c.negative_chains {
            return mismatch(
                "negative chains",
                m.negative_chains.to_string(),
                c.negative_chains.to_string(),
            );
        }
        if m.persistent != c.persistent {
            return mismatch(
                "persistent chains",
                m.persistent.to_string(),
                c.persistent.to_string(),
            );
        }
        if m.optimizer != c.optimizer {
            return mismatch(
                "optimizer",
                format!("{:?}", m.optimizer),
                format!("{:?}", c.optimizer),
            );
        }
        if self.params.len() != t.params().len() {
            return mismatch(
                "parameter tensors",
                self.params.len().to_string(),
                t.params().len().to_string(),
            );
        }
        for (i, (a, b)) in self.params.iter().zip(t.params()).enumerate() {
            if a.shape() != b.shape() {
                return mismatch(
                    &format!("factor {i} weights of shape"),
                    format!("{:?}", a.shape()),
                    format!("{:?}", b.shape()),
                );
            }
        }
        if let Some(chains) = &self.chains {
            let blocks = t.spec().negative_free_blocks();
            let want = crate::block::verify_block_state(
                &blocks,
                chains,
                t.spec().node_shape_dtypes(),
                Some(-1),
            );
            if let Err(e) = want {
                return Err(invalid(path, format!("persistent chains: {e}")));
            }
            if chains.iter().any(|s| s[0].shape()[0] != c.negative_chains) {
                return Err(invalid(
                    path,
                    format!("persistent chains: expected {} chains", c.negative_chains),
                ));
            }
        }
        let mut optimizer = Optimizer::new(c.optimizer, &[])?;
        optimizer.step = m.optimizer_step;
        optimizer.first = self.first;
        optimizer.second = self.second;
        t.restore(m.step, self.params, optimizer, self.chains)
    }
}
