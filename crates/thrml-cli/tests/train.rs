//! `thrml train`: it learns, writes a model `thrml sample` runs on, resumes exactly from a
//! checkpoint, and names the problem in bad data.
mod support;

use ndarray::{Array2, ArrayD, IxDyn};
use support::{assert_fails, thrml_ok, write};
use thrml::Tensor;
use thrml::io::{FactorSpec, Model, write_npz};

/// Spins 0–3 visible, 4–5 latent, 6 clamped; couplings among the visible spins and from
/// every visible spin to the latent ones.
const MODEL: &str = r#"{
  "format": "thrml-model/1",
  "kinds": { "v": {"type": "spin"}, "h": {"type": "spin"} },
  "nodes": ["v", "v", "v", "v", "h", "h", "h"],
  "factors": [
    {"type": "ising", "nodes": [0, 1, 2, 3, 4, 5], "biases": [0, 0, 0, 0, 0, 0],
     "edges": [[0, 1], [2, 3], [0, 2], [0, 4], [1, 4], [2, 5], [3, 5], [4, 6]],
     "weights": [0, 0, 0, 0, 0, 0, 0, 0], "beta": 1.0}
  ],
  "clamped_blocks": [[6]],
  "clamped_values": [[1]]
}"#;

/// 300 rows: s1 = s0 always, s2 and s3 independent fair coins, s0 up 80% of the time.
fn data() -> Array2<bool> {
    Array2::from_shape_fn((300, 4), |(r, c)| {
        let h = (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
        match c {
            0 | 1 => h % 10 < 8,
            2 => (h >> 8) & 1 == 1,
            _ => (h >> 9) & 1 == 1,
        }
    })
}

fn write_data(dir: &std::path::Path, name: &str, t: &Tensor) {
    write_npz(&dir.join(name), &[("data", t)]).unwrap();
}

const FAST: [&str; 8] = [
    "--pos-schedule",
    "5,5,1",
    "--neg-schedule",
    "5,5,1",
    "--batch",
    "30",
    "--lr",
    "0.05",
];

fn train(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "m.json",
        "--data",
        "d.npz",
        "--visible",
        "0,1,2,3",
        "--seed",
        "3",
    ];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    thrml_ok(dir, &args)
}

fn ising_weights(path: &std::path::Path) -> Vec<f64> {
    let m = Model::from_path(path).unwrap();
    match &m.file().factors[0] {
        FactorSpec::Ising(f) => f.weights.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn train_learns_and_writes_a_model_that_samples() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.json", MODEL);
    write_data(dir.path(), "d.npz", &Tensor::from(data().into_dyn()));
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "8",
            "--holdout",
            "0.1",
            "--persistent",
            "--out",
            "t.json",
        ],
    );
    assert!(
        out.starts_with("trained 72 steps (8 epochs × 9 steps of 30 items; "),
        "{out}"
    );
    assert!(
        out.contains(" negative chains, ") && out.contains(" flips/ns) in "),
        "{out}"
    );
    assert!(out.contains("held-out pseudo-log-likelihood"), "{out}");
    let w = ising_weights(&dir.path().join("t.json"));
    // s0 = s1 always: a strong positive coupling; s2, s3 independent: a weak one.
    eprintln!("{out}\nweights {w:?}");
    assert!(w[0] > 0.5, "J01 = {}", w[0]);
    assert!(w[1].abs() < 0.25, "J23 = {}", w[1]);
    // The trained file is a model `thrml sample` runs on.
    let s = thrml_ok(
        dir.path(),
        &[
            "sample",
            "t.json",
            "--chains",
            "4",
            "--warmup",
            "5",
            "--samples",
            "3",
            "--out",
            "o",
        ],
    );
    assert!(s.contains("wrote"), "{s}");
}

#[test]
fn resuming_a_checkpoint_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.json", MODEL);
    write_data(dir.path(), "d.npz", &Tensor::from(data().into_dyn()));
    let common = [
        "--persistent",
        "--clip-norm",
        "1.0",
        "--weight-decay",
        "0.001",
    ];
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--epochs", "3", "--out", "full.json"]);
    train(dir.path(), &args);
    // Stopped after one epoch (a killed run leaves its last checkpoint), then resumed.
    let mut args: Vec<&str> = common.to_vec();
    args.extend([
        "--epochs",
        "1",
        "--checkpoint",
        "c.npz",
        "--out",
        "part.json",
    ]);
    train(dir.path(), &args);
    let mut args: Vec<&str> = common.to_vec();
    args.extend([
        "--epochs",
        "3",
        "--checkpoint",
        "c.npz",
        "--resume",
        "--out",
        "resumed.json",
    ]);
    let out = train(dir.path(), &args);
    assert!(out.contains("resumed at step 10"), "{out}");
    let full = std::fs::read(dir.path().join("full.json")).unwrap();
    let resumed = std::fs::read(dir.path().join("resumed.json")).unwrap();
    assert_eq!(
        full, resumed,
        "a resumed run ends where the uninterrupted one does"
    );
    assert_ne!(full, std::fs::read(dir.path().join("part.json")).unwrap());
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bad_data_and_visible_ids_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "m.json", MODEL);
    write_data(d, "d.npz", &Tensor::from(data().into_dyn()));
    let run = |visible: &str, data: &str, needles: &[&str]| {
        let mut args = vec![
            "train",
            "m.json",
            "--data",
            data,
            "--visible",
            visible,
            "--out",
            "t.json",
        ];
        args.extend_from_slice(&FAST);
        assert_fails(d, &args, 2, needles);
        assert!(!d.join("t.json").exists());
    };
    run(
        "0,1,2",
        "d.npz",
        &["d.npz", "shape [300, 4]", "expected [n, 3]"],
    );
    run(
        "0,1,2,9",
        "d.npz",
        &["--visible", "node id 9 is unknown", "7 nodes"],
    );
    run("0,1,2,6", "d.npz", &["node 6", "clamped"]);
    run("0,1,1,2", "d.npz", &["node 1 is listed twice"]);
    run("0,x", "d.npz", &["\"x\" is not a node id"]);
    write(d, "ids.json", "[0, 1, 2, 3]");
    write_data(d, "u8.npz", &Tensor::from(data().mapv(u8::from).into_dyn()));
    run(
        "ids.json",
        "u8.npz",
        &["u8.npz", "dtype uint8", "expected bool"],
    );

    // A categorical visible node: uint8 data, values checked against its categories.
    let cat_model = r#"{
      "format": "thrml-model/1",
      "kinds": { "s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3} },
      "nodes": ["s", "c"],
      "factors": [{"type": "discrete", "spin_groups": [[0]], "categorical_groups": [[1]], "weights": [[0, 0, 0]]}]
    }"#;
    write(d, "m.json", cat_model);
    let mut bad = ArrayD::<u8>::zeros(IxDyn(&[40, 2]));
    bad[[7, 1]] = 3;
    write_data(d, "c.npz", &Tensor::from(bad.clone()));
    run(
        "0,1",
        "c.npz",
        &["row 7 column 1 (node 1, kind `c`) has value 3", "0 to 2"],
    );
    bad[[7, 1]] = 0;
    bad[[5, 0]] = 2;
    write_data(d, "c.npz", &Tensor::from(bad.clone()));
    run(
        "0,1",
        "c.npz",
        &["row 5 column 0 (node 0, kind `s`) has value 2", "0 or 1"],
    );
    bad[[5, 0]] = 1;
    write_data(d, "c.npz", &Tensor::from(bad));
    let mut args = vec![
        "train",
        "m.json",
        "--data",
        "c.npz",
        "--visible",
        "0,1",
        "--out",
        "t.json",
        "--batch",
        "10",
    ];
    args.extend_from_slice(&FAST[..4]);
    let out = thrml_ok(d, &args);
    assert!(out.contains("trained 4 steps"), "{out}");
}
