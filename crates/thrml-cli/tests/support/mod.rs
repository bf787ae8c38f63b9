//! Helpers shared by the CLI tests: run the `thrml` binary, write inputs, check failures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example model of `docs/model-format.md`.
pub const EXAMPLE: &str = r#"{
  "format": "thrml-model/1",
  "kinds": { "s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3} },
  "nodes": ["s", "s", "c", "c"],
  "factors": [
    {"type": "ising", "nodes": [0, 1], "biases": [0.1, -0.2], "edges": [[0, 1]], "weights": [0.5], "beta": 1.0},
    {"type": "spin", "groups": [[0], [1]], "weights": [0.3]},
    {"type": "categorical", "groups": [[2], [3]], "weights": {"shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]}},
    {"type": "discrete", "square": true, "spin_groups": [[0], [1]], "categorical_groups": [[2]], "weights": [[0.2, -0.1, 0.4]]}
  ],
  "free_blocks": [[[0], [3]], [1], [2]],
  "clamped_blocks": [],
  "clamped_values": []
}"#;

/// Run `thrml` with `args` in `dir`.
pub fn thrml(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thrml"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the thrml binary runs")
}

/// Run `thrml` and require success; returns stdout.
pub fn thrml_ok(dir: &Path, args: &[&str]) -> String {
    let out = thrml(dir, args);
    assert!(
        out.status.success(),
        "thrml {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test input");
    path
}

/// The run options of `thrml sample`.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// `--chains`
    pub chains: usize,
    /// `--warmup`
    pub warmup: usize,
    /// `--samples`
    pub samples: usize,
    /// `--steps-per-sample`
    pub steps: usize,
    /// `--seed`
    pub seed: u64,
}

/// Sample `model` (a file name in `dir`) into `dir/out` and return the output directory.
pub fn sample(dir: &Path, model: &str, out: &str, run: Run) -> PathBuf {
    let (c, w, s, k, x) = (
        run.chains.to_string(),
        run.warmup.to_string(),
        run.samples.to_string(),
        run.steps.to_string(),
        run.seed.to_string(),
    );
    thrml_ok(
        dir,
        &[
            "sample",
            model,
            "--chains",
            &c,
            "--warmup",
            &w,
            "--samples",
            &s,
            "--steps-per-sample",
            &k,
            "--seed",
            &x,
            "--out",
            out,
        ],
    );
    dir.join(out)
}

/// Require that `thrml args` fails with `code`, printing exactly one line to stderr that
/// starts with `error:` and contains every needle, and no panic or backtrace.
pub fn assert_fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = thrml(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "thrml {args:?}: expected exit {code}, stderr: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "thrml {args:?}: expected one line on stderr, got: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "internal error"] {
        assert!(!stderr.contains(bad), "thrml {args:?}: {stderr}");
    }
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "thrml {args:?}: stderr lacks {needle:?}: {stderr}"
        );
    }
    stderr
}
