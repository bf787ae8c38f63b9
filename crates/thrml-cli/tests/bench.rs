//! `thrml bench` runs a tiny workload on each engine and thread count and prints parseable
//! JSON with positive rates (no timing assertion), and a missing data folder fails in one
//! line before anything runs.
mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{assert_fails, thrml_ok};

/// The shared data folder beside the repository, if present.
fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.join("topologies/chimera16.txt").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} has no topologies/chimera16.txt; skipping",
            dir.display()
        );
        None
    }
}

#[test]
fn tiny_chimera_run_prints_json_with_positive_rates() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = data.to_str().unwrap();
    let stdout = thrml_ok(
        dir.path(),
        &[
            "bench",
            "--workload",
            "chimera",
            "--chains",
            "2",
            "--sweeps",
            "2",
            "--repeats",
            "1",
            "--threads",
            "1,2",
            "--json",
            "--data-dir",
            data,
        ],
    );
    let doc: Value = serde_json::from_str(&stdout).expect("bench --json prints one JSON document");
    assert_eq!(doc["threads"], serde_json::json!([1, 2]));
    assert_eq!(doc["engine"], "fused");
    let simd = doc["simd"].as_str().unwrap();
    assert!(
        [
            "avx512+vaes",
            "avx2+vaes",
            "avx2+aes-ni",
            "avx512",
            "avx2",
            "neon",
            "baseline"
        ]
        .contains(&simd),
        "{simd}"
    );
    let builds = doc["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["workload"], "chimera");
    assert_eq!(builds[0]["nodes"], 2048);
    assert_eq!(builds[0]["edges"], 6016);
    assert_eq!(builds[0]["colours"], 2);
    assert!(builds[0]["program_ms_median"].as_f64().unwrap() > 0.0);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (r, threads) in runs.iter().zip([1, 2]) {
        assert_eq!(r["workload"], "chimera");
        assert_eq!(r["chains"], 2);
        assert_eq!(r["sweeps"], 2);
        assert_eq!(r["repeats"], 1);
        assert_eq!(r["flips"].as_f64().unwrap(), 2048.0 * 2.0 * 2.0);
        assert!(r["median_s"].as_f64().unwrap() > 0.0);
        assert!(r["flips_per_ns"].as_f64().unwrap() > 0.0);
        assert_eq!(r["threads"], threads);
        assert_eq!(r["engine"], "fused");
        assert_eq!(r["simd"], simd);
    }
}

#[test]
fn text_output_has_one_line_per_run() {
    // Potts and mixed need no data files; one tiny run each.
    let dir = tempfile::tempdir().unwrap();
    let stdout = thrml_ok(
        dir.path(),
        &[
            "bench",
            "--workload",
            "mixed",
            "--chains",
            "1,2",
            "--sweeps",
            "1",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--engine",
            "generic",
        ],
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("mixed")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.len(), 10, "{row}");
        assert_eq!(cols[1], "20480", "{row}");
        assert!(cols[7].parse::<f64>().unwrap() > 0.0, "{row}");
        assert_eq!(cols[8], "1", "{row}");
    }
    assert!(stdout.contains("build mixed"), "{stdout}");
}

#[test]
fn missing_data_dir_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let msg = assert_fails(
        dir.path(),
        &[
            "bench",
            "--workload",
            "potts,chimera",
            "--data-dir",
            "no-such-dir",
        ],
        1,
        &["no-such-dir", "chimera16.txt", "not found", "--data-dir"],
    );
    assert!(msg.starts_with("error: "), "{msg}");
}

#[test]
fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails(
        dir.path(),
        &["bench", "--workload", "mixed", "--repeats", "0"],
        2,
        &["--repeats"],
    );
    assert_fails(
        dir.path(),
        &["bench", "--workload", "mixed", "--chains", "0"],
        2,
        &["--chains"],
    );
    assert_fails(dir.path(), &["bench", "--workload", "nope"], 2, &["nope"]);
}
