//! A model file's factor weights as trainable parameters, and back.
//!
//! [`ModelParameters::new`] turns every factor of a compiled [`Model`] into one or two
//! [`DiscreteEBMFactor`]s over the model's nodes (an `ising` factor gives one for its
//! biases and one for its couplings, with `β` folded in), remembering where each weight
//! tensor lives in the file. [`ModelParameters::file_with_weights`] writes trained weights
//! back: the result is a `thrml-model/1` file with the same kinds, nodes, blocks and
//! clamped values and the new weights (for `ising`, `biases` and `weights` divided by the
//! factor's `β`, which is kept).

use ndarray::{ArrayD, IxDyn};

use crate::block::Block;
use crate::error::{Error, Result};
use crate::io::model::Model;
use crate::io::model_file::{FactorSpec, ModelFile, TensorSpec};
use crate::models::discrete::DiscreteEBMFactor;

/// Where a trainable weight tensor lives in the model file.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    /// `factors[i].biases` of an `ising` factor, scaled by `beta`.
    IsingBiases { factor: usize, beta: f64 },
    /// `factors[i].weights` of an `ising` factor, scaled by `beta`.
    IsingWeights { factor: usize, beta: f64 },
    /// `factors[i].weights` of a `spin` factor.
    Spin { factor: usize },
    /// `factors[i].weights` of a `categorical` or `discrete` factor.
    Tensor { factor: usize },
}

/// The trainable factors of a model file and where their weights go back.
#[derive(Clone, Debug)]
pub struct ModelParameters {
    /// The factors, over the model's nodes, with the file's weights.
    pub factors: Vec<DiscreteEBMFactor>,
    slots: Vec<Slot>,
}

fn f32_tensor(shape: &[usize], data: &[f64], scale: f64) -> ArrayD<f32> {
    ArrayD::from_shape_vec(
        IxDyn(shape),
        data.iter().map(|&x| (x * scale) as f32).collect(),
    )
    .expect("the model validated the shape")
}

impl ModelParameters {
    /// The trainable factors of `model`.
    ///
    /// # Errors
    /// [`Error::Model`] for an `ising` factor with `beta = 0` (its weights would not change
    /// the energy, and cannot be written back), and for continuous factors.
    pub fn new(model: &Model) -> Result<ModelParameters> {
        let file = model.file();
        let block = |ids: &[usize]| -> Result<Block> {
            Block::new(ids.iter().map(|&i| model.node(i)).collect())
        };
        let blocks = |groups: &[Vec<usize>]| -> Result<Vec<Block>> {
            groups.iter().map(|g| block(g)).collect()
        };
        let mut factors = Vec::new();
        let mut slots = Vec::new();
        for (i, spec) in file.factors.iter().enumerate() {
            match spec {
                FactorSpec::Ising(f) => {
                    if f.beta == 0.0 {
                        return Err(Error::Model {
                            file: model.source().to_path_buf(),
                            field: format!("factors[{i}].beta"),
                            message: "an ising factor with beta 0 cannot be trained (its weights do not enter the energy)".into(),
                        });
                    }
                    if !f.nodes.is_empty() {
                        factors.push(DiscreteEBMFactor::new(
                            vec![block(&f.nodes)?],
                            vec![],
                            f32_tensor(&[f.nodes.len()], &f.biases, f.beta),
                        )?);
                        slots.push(Slot::IsingBiases {
                            factor: i,
                            beta: f.beta,
                        });
                    }
                    if !f.edges.is_empty() {
                        let heads: Vec<usize> = f.edges.iter().map(|e| e[0]).collect();
                        let tails: Vec<usize> = f.edges.iter().map(|e| e[1]).collect();
                        factors.push(DiscreteEBMFactor::new(
                            vec![block(&heads)?, block(&tails)?],
                            vec![],
                            f32_tensor(&[f.edges.len()], &f.weights, f.beta),
                        )?);
                        slots.push(Slot::IsingWeights {
                            factor: i,
                            beta: f.beta,
                        });
                    }
                }
                FactorSpec::Spin(f) => {
                    if f.weights.is_empty() {
                        continue;
                    }
                    factors.push(DiscreteEBMFactor::new(
                        blocks(&f.groups)?,
                        vec![],
                        f32_tensor(&[f.weights.len()], &f.weights, 1.0),
                    )?);
                    slots.push(Slot::Spin { factor: i });
                }
                FactorSpec::Categorical(f) => {
                    if f.weights.shape.first().is_none_or(|&b| b == 0) {
                        continue;
                    }
                    factors.push(DiscreteEBMFactor::new(
                        vec![],
                        blocks(&f.groups)?,
                        f32_tensor(&f.weights.shape, &f.weights.data, 1.0),
                    )?);
                    slots.push(Slot::Tensor { factor: i });
                }
                FactorSpec::Discrete(f) => {
                    if f.weights.shape.first().is_none_or(|&b| b == 0) {
                        continue;
                    }
                    factors.push(DiscreteEBMFactor::new(
                        blocks(&f.spin_groups)?,
                        blocks(&f.categorical_groups)?,
                        f32_tensor(&f.weights.shape, &f.weights.data, 1.0),
                    )?);
                    slots.push(Slot::Tensor { factor: i });
                }
                FactorSpec::Linear(_)
                | FactorSpec::Quadratic(_)
                | FactorSpec::Coupling(_)
                | FactorSpec::SpinContinuous(_) => {
                    return Err(Error::Model {
                        file: model.source().to_path_buf(),
                        field: format!("factors[{i}]"),
                        message: "continuous factors (linear, quadratic, coupling, spin_continuous) cannot be trained; training supports discrete models".into(),
                    });
                }
            }
        }
        Ok(ModelParameters { factors, slots })
    }

    /// The JSON path of trainable tensor `i` in the file (for messages).
    #[must_use]
    pub fn field(&self, i: usize) -> String {
        match self.slots[i] {
            Slot::IsingBiases { factor, .. } => format!("factors[{factor}].biases"),
            Slot::IsingWeights { factor, .. } | Slot::Spin { factor } | Slot::Tensor { factor } => {
                format!("factors[{factor}].weights")
            }
        }
    }

    /// `file` with trainable tensor `i` replaced by `weights[i]` (the factors' effective
    /// weights, as in [`ModelParameters::factors`]).
    ///
    /// # Errors
    /// [`Error::WeightShape`] if the number or sizes of the tensors differ.
    pub fn file_with_weights(
        &self,
        file: &ModelFile,
        weights: &[ArrayD<f32>],
    ) -> Result<ModelFile> {
        if weights.len() != self.slots.len() {
            return Err(Error::WeightShape(format!(
                "{} weight tensors for {} trainable tensors",
                weights.len(),
                self.slots.len()
            )));
        }
        let mut out = file.clone();
        for (i, (slot, w)) in self.slots.iter().zip(weights).enumerate() {
            let values: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
            let size_error = |n: usize| {
                Error::WeightShape(format!(
                    "{}: {} trained weights for {n} entries",
                    self.field(i),
                    values.len()
                ))
            };
            match (*slot, &mut out.factors) {
                (Slot::IsingBiases { factor, beta }, factors) => {
                    if let FactorSpec::Ising(f) = &mut factors[factor] {
                        if f.biases.len() != values.len() {
                            return Err(size_error(f.biases.len()));
                        }
                        f.biases = values.iter().map(|x| x / beta).collect();
                    }
                }
                (Slot::IsingWeights { factor, beta }, factors) => {
                    if let FactorSpec::Ising(f) = &mut factors[factor] {
                        if f.weights.len() != values.len() {
                            return Err(size_error(f.weights.len()));
                        }
                        f.weights = values.iter().map(|x| x / beta).collect();
                    }
                }
                (Slot::Spin { factor }, factors) => {
                    if let FactorSpec::Spin(f) = &mut factors[factor] {
                        if f.weights.len() != values.len() {
                            return Err(size_error(f.weights.len()));
                        }
                        f.weights = values;
                    }
                }
                (Slot::Tensor { factor }, factors) => {
                    let t: &mut TensorSpec = match &mut factors[factor] {
                        FactorSpec::Categorical(f) => &mut f.weights,
                        FactorSpec::Discrete(f) => &mut f.weights,
                        _ => continue,
                    };
                    if t.data.len() != values.len() {
                        return Err(size_error(t.data.len()));
                    }
                    t.data = values;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_through_the_file() {
        let text = r#"{
          "format": "thrml-model/1",
          "kinds": { "s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3} },
          "nodes": ["s", "s", "c", "c"],
          "factors": [
            {"type": "ising", "nodes": [0, 1], "biases": [0.1, -0.2], "edges": [[0, 1]], "weights": [0.5], "beta": 2.0},
            {"type": "spin", "groups": [[0], [1]], "weights": [0.3]},
            {"type": "categorical", "groups": [[2], [3]], "weights": {"shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]}},
            {"type": "discrete", "spin_groups": [[0]], "categorical_groups": [[2]], "weights": [[0.2, -0.1, 0.4]]}
          ]
        }"#;
        let model = Model::from_str(text, "m.json").unwrap();
        let p = ModelParameters::new(&model).unwrap();
        assert_eq!(p.factors.len(), 5);
        assert_eq!(p.factors[0].weights()[[0]], 0.2); // beta folded in
        assert_eq!(p.field(1), "factors[0].weights");
        let mut w: Vec<ArrayD<f32>> = p.factors.iter().map(|f| f.weights().to_owned()).collect();
        w[0][[1]] = 1.0;
        w[4][[0, 2]] = -0.75;
        let file = p.file_with_weights(model.file(), &w).unwrap();
        let FactorSpec::Ising(f) = &file.factors[0] else {
            panic!()
        };
        assert_eq!(f.biases, vec![f64::from((0.1f64 * 2.0) as f32) / 2.0, 0.5]);
        let again = Model::new(file, "t.json").unwrap();
        let q = ModelParameters::new(&again).unwrap();
        assert_eq!(q.factors[4].weights()[[0, 2]], -0.75);
        assert_eq!(q.factors[0].weights()[[1]], 1.0);
        let e = p.file_with_weights(model.file(), &w[..2]).unwrap_err();
        assert!(e.to_string().contains("2 weight tensors for 5"), "{e}");
    }
}
