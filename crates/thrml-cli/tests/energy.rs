//! `thrml energy` against energies computed by hand for spin, categorical and mixed factors.
mod support;

use ndarray::{Array2, arr2};
use support::{thrml_ok, write};
use thrml::Tensor;
use thrml::io::{read_npy, write_npz};

const HEADER: &str = r#""format": "thrml-model/1",
  "kinds": {"s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3}},
  "nodes": ["s", "s", "s", "c", "c"]"#;

/// E = −2 (0.5 s0 − 0.25 s1 + 1.0 s2 + 0.75 s0 s1 − 1.5 s1 s2)  (β = 2 folded in)
const ISING: &str = r#"{"type": "ising", "nodes": [0, 1, 2], "biases": [0.5, -0.25, 1.0],
   "edges": [[0, 1], [1, 2]], "weights": [0.75, -1.5], "beta": 2.0}"#;
/// E = −0.5 s0 s1 s2
const SPIN3: &str = r#"{"type": "spin", "groups": [[0], [1], [2]], "weights": [0.5]}"#;
/// E = −W[c3, c4],  W = [[1, 0, 0.5], [0, 2, 0], [−1, 0, 0.25]]
const PAIR: &str = r#"{"type": "categorical", "groups": [[3], [4]],
   "weights": [[[1, 0, 0.5], [0, 2, 0], [-1, 0, 0.25]]]}"#;
/// E = −(U0[c3] + U1[c4]),  U0 = [0.5, 0, −0.5], U1 = [0.25, 0.75, 0]
const UNARY: &str = r#"{"type": "categorical", "groups": [[3, 4]],
   "weights": {"shape": [2, 3], "data": [0.5, 0, -0.5, 0.25, 0.75, 0]}}"#;
/// E = −s0 · V[c3],  V = [1, −0.5, 0.25]
const MIXED: &str = r#"{"type": "discrete", "spin_groups": [[0]], "categorical_groups": [[3]],
   "weights": [[1.0, -0.5, 0.25]]}"#;

/// Three states:
/// A: s = (+1, +1, +1), c = (0, 0)
/// B: s = (+1, −1, +1), c = (1, 2)
/// C: s = (−1, −1, −1), c = (2, 1)
fn states() -> (Tensor, Tensor) {
    let s = arr2(&[
        [true, true, true],
        [true, false, true],
        [false, false, false],
    ]);
    let c: Array2<u8> = arr2(&[[0, 0], [1, 2], [2, 1]]);
    (Tensor::from(s.into_dyn()), Tensor::from(c.into_dyn()))
}

fn energies(factors: &[&str], extra: &str) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("{{{HEADER}, \"factors\": [{}]{extra}}}", factors.join(", "));
    write(dir.path(), "model.json", &model);
    let (s, c) = states();
    write_npz(&dir.path().join("states.npz"), &[("s", &s), ("c", &c)]).unwrap();
    let stdout = thrml_ok(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "states.npz",
            "--out",
            "e.npy",
        ],
    );
    assert!(stdout.contains("wrote 3 energies"), "{stdout}");
    match read_npy(&dir.path().join("e.npy")).unwrap() {
        Tensor::F64(a) => {
            assert_eq!(a.shape(), &[3]);
            a.iter().copied().collect()
        }
        other => panic!("energies must be float64, got {:?}", other.dtype()),
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "got {got:?}, want {want:?}");
    }
}

#[test]
fn spin_factors() {
    // A: ising −2 (0.5 − 0.25 + 1 + 0.75 − 1.5) = −1;      spin3 −0.5      → −1.5
    // B: ising −2 (0.5 + 0.25 + 1 − 0.75 + 1.5) = −5;      spin3 +0.5      → −4.5
    // C: ising −2 (−0.5 + 0.25 − 1 + 0.75 − 1.5) = +4;     spin3 +0.5      → +4.5
    assert_close(&energies(&[ISING, SPIN3], ""), &[-1.5, -4.5, 4.5]);
}

#[test]
fn categorical_factors() {
    // A: pair −W[0,0] = −1;  unary −(0.5 + 0.25) = −0.75     → −1.75
    // B: pair −W[1,2] =  0;  unary −(0 + 0) = 0              →  0
    // C: pair −W[2,1] =  0;  unary −(−0.5 + 0.75) = −0.25    → −0.25
    assert_close(&energies(&[PAIR, UNARY], ""), &[-1.75, 0.0, -0.25]);
    // The square variant has the same energy.
    let square = PAIR.replace("\"categorical\",", "\"categorical\", \"square\": true,");
    assert_close(&energies(&[&square, UNARY], ""), &[-1.75, 0.0, -0.25]);
}

#[test]
fn mixed_factors_ignore_clamped_values() {
    // discrete −s0 V[c3]:  A −(+1)(1) = −1;  B −(+1)(−0.5) = +0.5;  C −(−1)(0.25) = +0.25
    // totals (spin + categorical + discrete):
    // A: −1.5 − 1.75 − 1   = −4.25
    // B: −4.5 + 0    + 0.5 = −4.0
    // C: +4.5 − 0.25 + 0.25 = +4.5
    // The model clamps nodes 1 and 4; the states give every node's value, clamped or not.
    let clamp = r#", "clamped_blocks": [[1], [4]], "clamped_values": [[-1], [2]]"#;
    assert_close(
        &energies(&[ISING, SPIN3, PAIR, UNARY, MIXED], clamp),
        &[-4.25, -4.0, 4.5],
    );
}

#[test]
fn zero_states_give_an_empty_array() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("{{{HEADER}, \"factors\": [{ISING}]}}");
    write(dir.path(), "model.json", &model);
    let s = Tensor::zeros(thrml::DType::Bool, &[0, 3]);
    let c = Tensor::zeros(thrml::DType::U8, &[0, 2]);
    write_npz(&dir.path().join("states.npz"), &[("s", &s), ("c", &c)]).unwrap();
    thrml_ok(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "states.npz",
            "--out",
            "e.npy",
        ],
    );
    assert_eq!(
        read_npy(&dir.path().join("e.npy")).unwrap(),
        Tensor::zeros(thrml::DType::F64, &[0])
    );
}
