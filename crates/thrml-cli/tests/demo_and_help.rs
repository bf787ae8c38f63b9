//! `thrml demo` samples its built-in model and reports it; `--help` explains every command.
mod support;

use support::{thrml, thrml_ok, write};
use thrml::io::Model;

#[test]
fn demo_reports_model_blocks_run_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = thrml_ok(
        dir.path(),
        &["demo", "--samples", "50", "--out", "demo-out"],
    );
    for needle in [
        "model:",
        "156 nodes",
        "blocks: \"auto\"",
        "superblocks",
        "run:",
        "32 chains × 50 samples",
        "magnetisation",
        "category occupation",
        "energy:",
        "samples.npz",
    ] {
        assert!(
            stdout.contains(needle),
            "demo output lacks {needle:?}:\n{stdout}"
        );
    }
    assert!(dir.path().join("demo-out/samples.npz").exists());
}

#[test]
fn demo_model_is_a_valid_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = thrml_ok(dir.path(), &["demo", "--print-model"]);
    let path = write(dir.path(), "demo.json", &json);
    let model = Model::from_path(&path).unwrap();
    assert_eq!(model.n_nodes(), 156);
    thrml_ok(
        dir.path(),
        &[
            "sample",
            "demo.json",
            "--chains",
            "2",
            "--samples",
            "3",
            "--warmup",
            "1",
            "--out",
            "o",
        ],
    );
}

#[test]
fn help_explains_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let top = thrml_ok(dir.path(), &["--help"]);
    for cmd in ["sample", "energy", "demo"] {
        assert!(top.contains(cmd), "{top}");
    }
    let sample = thrml_ok(dir.path(), &["sample", "--help"]);
    for opt in [
        "--chains",
        "--warmup",
        "--samples",
        "--steps-per-sample",
        "--seed",
        "--out",
    ] {
        assert!(sample.contains(opt), "{sample}");
    }
    let energy = thrml_ok(dir.path(), &["energy", "--help"]);
    assert!(
        energy.contains("--states") && energy.contains("float64"),
        "{energy}"
    );
    // No subcommand: usage on stderr and exit 2.
    let out = thrml(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// A reader that stops early (`thrml demo | head -1`) ends `thrml` quietly: no internal
/// error about a failed print.
#[test]
fn a_closed_output_pipe_is_not_an_error() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_thrml"))
        .args(["demo", "--samples", "20", "--out", "demo-out"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line, then close the pipe while the demo still has lines to print.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty(), "no first line");
    assert!(
        !stderr.contains("internal error") && !stderr.contains("Broken pipe"),
        "stderr after the reader left: {stderr}"
    );
}
