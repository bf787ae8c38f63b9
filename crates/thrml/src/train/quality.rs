//! Cheap measures of a trained model on held-out data.
//!
//! [`pseudo_log_likelihood`] is the mean conditional log-likelihood of each data node given
//! all the others, `(1/|V|) Σ_{i∈V} log p(v_i | v_−i, h, c)`, averaged over the items of a
//! batch. The latent nodes `h` are drawn from the positive phase, `h ~ p(h | v, c)` (one
//! chain per item, the spec's positive schedule). Each term needs only the local field of
//! one node, so the measure costs one positive phase and one pass over the factors; unlike
//! the likelihood it needs no partition function. Higher is better; a model that knows
//! nothing scores `−ln 2` per spin and `−ln K` per `K`-state categorical.

use std::collections::HashMap;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::pgm::Node;
use crate::rng::Key;
use crate::state::{State, Tensor};
use crate::train::kl_grad::{TrainingSpec, positive_phase};

/// The value columns of a factor's spin groups and categorical groups, per instance.
type FactorColumns = (Vec<Vec<usize>>, Vec<Vec<usize>>);

/// Copy the values of `blocks` (states `[rows, nodes]`, or `[nodes]` shared by every row)
/// into `values[row][column[node]]` (spins 0/1, categories).
fn fill(
    values: &mut [Vec<u8>],
    column: &HashMap<Node, usize>,
    blocks: &[Block],
    states: &[State],
) -> Result<()> {
    for (b, s) in blocks.iter().zip(states) {
        let t = &s[0];
        let flat: Vec<u8> = match t {
            Tensor::Bool(a) => a.iter().map(|&x| u8::from(x)).collect(),
            Tensor::U8(a) => a.iter().copied().collect(),
            other => {
                return Err(Error::Invalid(format!(
                    "a discrete state must be bool or uint8, got {}",
                    other.dtype()
                )));
            }
        };
        let n = b.len();
        let shared = t.ndim() == 1;
        for (r, row) in values.iter_mut().enumerate() {
            for (j, node) in b.nodes().iter().enumerate() {
                if let Some(&col) = column.get(node) {
                    row[col] = flat[if shared { j } else { r * n + j }];
                }
            }
        }
    }
    Ok(())
}

/// The mean per-node pseudo-log-likelihood of the data nodes on a batch (see the module
/// docs). `data` and `conditioning` are as for
/// [`estimate_kl_gradient`](crate::train::estimate_kl_gradient).
///
/// # Errors
/// As [`estimate_kl_gradient`](crate::train::estimate_kl_gradient).
pub fn pseudo_log_likelihood(
    key: Key,
    spec: &TrainingSpec,
    data: &[State],
    conditioning: &[State],
) -> Result<f64> {
    let batch = data.first().map_or(0, |d| d[0].shape()[0]);
    if batch == 0 || data.len() != spec.data_blocks.len() {
        return Err(Error::Invalid(format!(
            "pseudo-likelihood needs a non-empty batch for each of the {} data blocks",
            spec.data_blocks.len()
        )));
    }
    let latent_blocks = spec.positive_free_blocks();
    let init = spec.hinton_init(key.fold_in(0), &latent_blocks, batch);
    let (_, latent) = positive_phase(key.fold_in(1), spec, data, conditioning, &init, batch)?;

    // Every factor node gets a column.
    let mut column: HashMap<Node, usize> = HashMap::new();
    for f in spec.factors() {
        for g in f.spin_node_groups.iter().chain(&f.categorical_node_groups) {
            for &n in g.nodes() {
                let next = column.len();
                column.entry(n).or_insert(next);
            }
        }
    }
    let mut values = vec![vec![0u8; column.len()]; batch];
    fill(&mut values, &column, &spec.data_blocks, data)?;
    fill(
        &mut values,
        &column,
        &spec.conditioning_blocks,
        conditioning,
    )?;
    fill(&mut values, &column, &latent_blocks, &latent)?;

    // Visible node → (index, number of values: 0 for a spin).
    let mut visible: HashMap<usize, (usize, usize)> = HashMap::new();
    for b in &spec.data_blocks {
        for &n in b.nodes() {
            if let Some(&col) = column.get(&n) {
                let next = visible.len();
                visible
                    .entry(col)
                    .or_insert((next, spec.n_categories(n).unwrap_or(0)));
            }
        }
    }
    let n_visible = spec.data_blocks.iter().map(Block::len).sum::<usize>();
    let mut offsets = Vec::with_capacity(visible.len());
    let mut total_len = 0;
    let mut by_index: Vec<(usize, usize)> = visible.values().copied().collect();
    by_index.sort_unstable();
    for &(_, k) in &by_index {
        offsets.push(total_len);
        total_len += k.max(1);
    }
    let plans: Vec<FactorColumns> = spec
        .factors()
        .iter()
        .map(|f| {
            let cols = |g: &Block| g.nodes().iter().map(|n| column[n]).collect();
            (
                f.spin_node_groups.iter().map(cols).collect(),
                f.categorical_node_groups.iter().map(cols).collect(),
            )
        })
        .collect();

    let mut sum = 0.0f64;
    let mut field = vec![0.0f64; total_len];
    for row in &values {
        field.iter_mut().for_each(|x| *x = 0.0);
        for (f, (spins, cats)) in spec.factors().iter().zip(&plans) {
            let w = f.weights();
            let ws = w.as_slice().expect("standard layout");
            let strides: Vec<usize> = w.strides().iter().map(|&s| s.unsigned_abs()).collect();
            for b in 0..f.batch_size() {
                let sign_all: f64 = spins
                    .iter()
                    .map(|g| if row[g[b]] == 1 { 1.0 } else { -1.0 })
                    .product();
                let idx: usize = b * strides[0]
                    + cats
                        .iter()
                        .enumerate()
                        .map(|(k, g)| usize::from(row[g[b]]) * strides[1 + k])
                        .sum::<usize>();
                for g in spins {
                    if let Some(&(vi, _)) = visible.get(&g[b]) {
                        let s = if row[g[b]] == 1 { 1.0 } else { -1.0 };
                        // Π of the other spins: divide this one out (s = ±1).
                        field[offsets[vi]] += sign_all * s * f64::from(ws[idx]);
                    }
                }
                for (k, g) in cats.iter().enumerate() {
                    if let Some(&(vi, n_cat)) = visible.get(&g[b]) {
                        let base = idx - usize::from(row[g[b]]) * strides[1 + k];
                        for c in 0..n_cat {
                            field[offsets[vi] + c] +=
                                sign_all * f64::from(ws[base + c * strides[1 + k]]);
                        }
                    }
                }
            }
        }
        for (&col, &(vi, n_cat)) in &visible {
            let x = row[col];
            if n_cat == 0 {
                let s = if x == 1 { 1.0 } else { -1.0 };
                // log σ(2γs) = −softplus(−2γs)
                let z = -2.0 * field[offsets[vi]] * s;
                sum -= z.max(0.0) + (-z.abs()).exp().ln_1p();
            } else {
                let theta = &field[offsets[vi]..offsets[vi] + n_cat];
                let max = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + theta.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
                sum += theta[usize::from(x)] - lse;
            }
        }
    }
    Ok(sum / (batch * n_visible.max(1)) as f64)
}
