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
