//! `thrml sample` and `thrml energy` on a mixed spin/continuous model file.
mod support;

use ndarray::arr2;
use support::{Run, assert_fails, sample, thrml_ok, write};
use thrml::Tensor;
use thrml::io::{read_npy, read_npz, write_npz};

/// Three Gaussians in a chain (precision 2, biases 0.5, 0, −0.5, couplings 0.6, −0.6) and a
/// spin coupled to the middle one with weight 0.8.
const MIXED: &str = r#"{
  "format": "thrml-model/1",
  "kinds": {"x": {"type": "continuous"}, "s": {"type": "spin"}},
  "nodes": ["x", "x", "x", "s"],
  "factors": [
    {"type": "quadratic", "nodes": [0, 1, 2], "precisions": [2.0, 2.0, 2.0]},
    {"type": "linear", "nodes": [0, 1, 2], "weights": [0.5, 0.0, -0.5]},
    {"type": "coupling", "edges": [[0, 1], [1, 2]], "weights": [0.6, -0.6]},
    {"type": "spin_continuous", "edges": [[3, 1]], "weights": [0.8]}
  ],
  "free_blocks": "auto"
}"#;

#[test]
fn sample_writes_float32_continuous_arrays() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mixed.json", MIXED);
    let run = Run {
        chains: 64,
        warmup: 20,
        samples: 50,
        steps: 2,
        seed: 5,
    };
    let out = sample(dir.path(), "mixed.json", "out", run);
    let arrays = read_npz(&out.join("samples.npz")).unwrap();
    assert_eq!(arrays.keys().collect::<Vec<_>>(), ["s", "x"]);
    let Tensor::F32(x) = &arrays["x"] else {
        panic!("continuous samples are float32: {:?}", arrays["x"].dtype())
    };
    assert_eq!(x.shape(), &[64, 50, 3]);
    assert!(x.iter().all(|v| v.is_finite()));
    let Tensor::Bool(s) = &arrays["s"] else {
        panic!("spins are bool")
    };
    assert_eq!(s.shape(), &[64, 50, 1]);
    let nodes = std::fs::read_to_string(out.join("nodes.json")).unwrap();
    let nodes: serde_json::Value = serde_json::from_str(&nodes).unwrap();
    assert_eq!(nodes["x"], serde_json::json!([0, 1, 2]));
    assert_eq!(nodes["s"], serde_json::json!([3]));
    // By the x0 ↔ −x2 symmetry of the model, E[x0 + x2] = 0; and the spin–continuous
    // coupling correlates s with x1: E[s x1] > 0. 3,200 draws: both checks have > 5 sd room.
    let n = (64 * 50) as f64;
    let sym: f64 = x
        .outer_iter()
        .flat_map(|c| {
            c.outer_iter()
                .map(|r| f64::from(r[0] + r[2]))
                .collect::<Vec<_>>()
        })
        .sum::<f64>()
        / n;
    assert!(sym.abs() < 0.1, "E[x0 + x2] = {sym}");
    let mut corr = 0.0;
    for c in 0..64 {
        for t in 0..50 {
            let sv = if s[[c, t, 0]] { 1.0 } else { -1.0 };
            corr += sv * f64::from(x[[c, t, 1]]);
        }
    }
    corr /= n;
    assert!(corr > 0.15, "E[s x1] = {corr}");

    // The same seed gives byte-identical output.
    let again = sample(dir.path(), "mixed.json", "again", run);
    assert_eq!(
        std::fs::read(out.join("samples.npz")).unwrap(),
        std::fs::read(again.join("samples.npz")).unwrap()
    );
}

#[test]
fn energy_reads_float32_states() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mixed.json", MIXED);
    let x = arr2(&[[0.0f32, 0.0, 0.0], [1.0, -1.0, 0.5]]);
    let s = arr2(&[[true], [false]]);
    write_npz(
        &dir.path().join("states.npz"),
        &[
            ("x", &Tensor::from(x.into_dyn())),
            ("s", &Tensor::from(s.into_dyn())),
        ],
    )
    .unwrap();
    thrml_ok(
        dir.path(),
        &[
            "energy",
            "mixed.json",
            "--states",
            "states.npz",
            "--out",
            "e.npy",
        ],
    );
    let Tensor::F64(e) = read_npy(&dir.path().join("e.npy")).unwrap() else {
        panic!("float64 energies")
    };
    // Row 2: ½·2·(1 + 1 + 0.25) + (0.5·1 − 0.5·0.5) + (0.6·1·(−1) − 0.6·(−1)·0.5)
    //        − 0.8·(−1)·(−1) = 2.25 + 0.25 − 0.3 − 0.8 = 1.4.
    assert!(e[0].abs() < 1e-12, "{}", e[0]);
    assert!((e[1] - 1.4).abs() < 1e-6, "{}", e[1]);
}

#[test]
fn bad_continuous_models_fail_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = MIXED.replace("[2.0, 2.0, 2.0]", "[2.0, 0.0, 2.0]");
    write(dir.path(), "bad.json", &bad);
    assert_fails(
        dir.path(),
        &["sample", "bad.json", "--out", "out"],
        2,
        &["bad.json", "factors[0].precisions[1]", "node 1"],
    );
    assert!(!dir.path().join("out/samples.npz").exists());
}
