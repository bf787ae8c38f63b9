//! `thrml sample` output matches the exact Boltzmann distribution (by enumeration) for a
//! clamped spin chain, an Ising torus with automatic blocks, and mixed spin–categorical models.
#[path = "../../thrml/tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;

use support::{EXAMPLE, Run, sample, write};
use thrml::io::{Model, Samples};

/// Sample `model_text` through the CLI and compare the draws with enumeration.
fn check(label: &str, model_text: &str, chains: usize, samples: usize, steps: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let model_path = write(dir.path(), "model.json", model_text);
    let run = Run {
        chains,
        warmup: 20,
        samples,
        steps,
        seed,
    };
    let out = sample(dir.path(), "model.json", "out", run);
    let model = Model::from_path(&model_path).unwrap();
    let exact = model.exact_distribution().unwrap();
    let drawn = Samples::read_dir(Path::new(&out)).unwrap();
    // The output holds every free node, in ascending id, and only those.
    let mut sampled: Vec<usize> = drawn
        .kinds
        .iter()
        .flat_map(|k| k.node_ids.clone())
        .collect();
    sampled.sort_unstable();
    assert_eq!(sampled, model.free_nodes(), "{label}: sampled nodes");
    let values = drawn.values();
    assert_eq!(values.len(), chains * samples);
    common::assert_matches_exact(label, &exact, &values);
}

#[test]
fn spin_chain_with_clamped_end() {
    // 0 - 1 - 2 - 3 - 4 - 5, node 5 clamped to +1.
    let model = r#"{
      "format": "thrml-model/1",
      "kinds": {"s": {"type": "spin"}},
      "nodes": ["s", "s", "s", "s", "s", "s"],
      "factors": [{"type": "ising", "nodes": [0, 1, 2, 3, 4, 5],
                   "biases": [0.2, -0.1, 0.0, 0.3, -0.2, 0.1],
                   "edges": [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]],
                   "weights": [0.5, -0.4, 0.6, 0.3, -0.7], "beta": 1.2}],
      "free_blocks": [[0, 2, 4], [1, 3]],
      "clamped_blocks": [[5]],
      "clamped_values": [[1]]
    }"#;
    check("clamped spin chain", model, 256, 400, 3, 1);
}

#[test]
fn ising_torus_with_auto_blocks() {
    // A 3×3 periodic grid: odd cycles, so DSATUR needs 3 colours.
    let (side, mut edges, mut weights) = (3usize, Vec::new(), Vec::new());
    for r in 0..side {
        for c in 0..side {
            let i = r * side + c;
            for j in [r * side + (c + 1) % side, ((r + 1) % side) * side + c] {
                edges.push(format!("[{i}, {j}]"));
                weights.push(format!("{}", 0.2 + 0.05 * ((i + j) % 4) as f64));
            }
        }
    }
    let biases: Vec<String> = (0..9)
        .map(|i| format!("{}", 0.1 * (i as f64 - 4.0) / 4.0))
        .collect();
    let model = format!(
        r#"{{
      "format": "thrml-model/1",
      "kinds": {{"spin": {{"type": "spin"}}}},
      "nodes": [{}],
      "factors": [{{"type": "ising", "nodes": [0, 1, 2, 3, 4, 5, 6, 7, 8], "biases": [{}],
                   "edges": [{}], "weights": [{}]}}],
      "free_blocks": "auto"
    }}"#,
        ["\"spin\""; 9].join(", "),
        biases.join(", "),
        edges.join(", "),
        weights.join(", ")
    );
    let m = Model::from_str(&model, "torus.json").unwrap();
    assert_eq!(m.free_superblocks().len(), 3, "a 3×3 torus needs 3 colours");
    check("3x3 Ising torus, auto blocks", &model, 256, 400, 3, 2);
}

#[test]
fn example_mixed_model_with_explicit_superblocks() {
    check("example model", EXAMPLE, 200, 300, 3, 3);
}

#[test]
fn mixed_kinds_with_clamped_categorical_and_auto_blocks() {
    // Two spin nodes (0, 1), two 3-category nodes (2, 3) of kind `c`, one 2-category node
    // (4) of kind `d`, clamped to 1; three-body factors couple all kinds.
    let model = r#"{
      "format": "thrml-model/1",
      "kinds": {"s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3},
                "d": {"type": "categorical", "categories": 2}},
      "nodes": ["s", "s", "c", "c", "d"],
      "factors": [
        {"type": "ising", "nodes": [0, 1], "biases": [0.3, -0.2], "edges": [[0, 1]], "weights": [-0.4]},
        {"type": "categorical", "square": true, "groups": [[2], [3]],
         "weights": [[[0.5, 0, -0.3], [0, 0.4, 0.2], [-0.3, 0.2, 0.6]]]},
        {"type": "categorical", "groups": [[2, 3]], "weights": [[0.2, 0, -0.2], [-0.1, 0.3, 0]]},
        {"type": "discrete", "spin_groups": [[0]], "categorical_groups": [[3], [4]],
         "weights": {"shape": [1, 3, 2], "data": [0.4, -0.4, 0.1, 0.3, -0.5, 0.2]}},
        {"type": "discrete", "spin_groups": [[0], [1]], "categorical_groups": [[2]],
         "weights": [[0.3, -0.2, 0.1]]}
      ],
      "free_blocks": "auto",
      "clamped_blocks": [[4]],
      "clamped_values": [[1]]
    }"#;
    check("mixed kinds, clamped categorical", model, 200, 300, 3, 4);
}
