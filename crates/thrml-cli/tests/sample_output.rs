//! `thrml sample`: output files, keys, shapes, dtypes, node maps and reproducibility.
mod support;

use support::{EXAMPLE, Run, sample, thrml_ok, write};
use thrml::Tensor;
use thrml::io::{Samples, read_npz};

#[test]
fn example_model_writes_kind_arrays_and_node_map() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    let stdout = thrml_ok(
        dir.path(),
        &[
            "sample",
            "model.json",
            "--chains",
            "5",
            "--warmup",
            "3",
            "--samples",
            "7",
            "--steps-per-sample",
            "2",
            "--seed",
            "11",
            "--out",
            "nested/out",
        ],
    );
    // The summary names the chains, sweeps and output path.
    assert!(stdout.contains("5 chains × 7 samples"), "{stdout}");
    assert!(stdout.contains("15 sweeps per chain"), "{stdout}");
    assert!(stdout.contains("nested/out/samples.npz"), "{stdout}");

    let out = dir.path().join("nested/out");
    let arrays = read_npz(&out.join("samples.npz")).unwrap();
    assert_eq!(arrays.keys().collect::<Vec<_>>(), ["c", "s"]);
    assert!(matches!(arrays["s"], Tensor::Bool(_)), "spins are bool");
    assert!(
        matches!(arrays["c"], Tensor::U8(_)),
        "categoricals are uint8"
    );
    assert_eq!(arrays["s"].shape(), &[5, 7, 2]);
    assert_eq!(arrays["c"].shape(), &[5, 7, 2]);
    let cats = arrays["c"].view::<u8>().unwrap();
    assert!(cats.iter().all(|&v| v < 3));

    let nodes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("nodes.json")).unwrap()).unwrap();
    assert_eq!(nodes, serde_json::json!({"s": [0, 1], "c": [2, 3]}));

    // Nothing else is left in the directory (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["nodes.json", "samples.npz"]);
}

#[test]
fn same_seed_gives_identical_bytes_and_different_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    let a = sample(
        dir.path(),
        "model.json",
        "a",
        Run {
            chains: 8,
            warmup: 5,
            samples: 20,
            steps: 1,
            seed: 42,
        },
    );
    let b = sample(
        dir.path(),
        "model.json",
        "b",
        Run {
            chains: 8,
            warmup: 5,
            samples: 20,
            steps: 1,
            seed: 42,
        },
    );
    let c = sample(
        dir.path(),
        "model.json",
        "c",
        Run {
            chains: 8,
            warmup: 5,
            samples: 20,
            steps: 1,
            seed: 43,
        },
    );
    let bytes = |d: &std::path::Path| std::fs::read(d.join("samples.npz")).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "same seed, same bytes");
    assert_ne!(bytes(&a), bytes(&c), "different seeds, different samples");
    assert_eq!(
        std::fs::read(a.join("nodes.json")).unwrap(),
        std::fs::read(c.join("nodes.json")).unwrap()
    );
    // Re-running into an existing directory replaces the output.
    let again = sample(
        dir.path(),
        "model.json",
        "a",
        Run {
            chains: 8,
            warmup: 5,
            samples: 20,
            steps: 1,
            seed: 43,
        },
    );
    assert_eq!(bytes(&again), bytes(&c));
}

#[test]
fn clamped_nodes_are_not_sampled_and_columns_follow_node_ids() {
    // Kind `s` has nodes 0, 2, 4 (node 2 clamped); kind `c` has nodes 1, 3.
    let model = r#"{
      "format": "thrml-model/1",
      "kinds": {"s": {"type": "spin"}, "c": {"type": "categorical", "categories": 4}},
      "nodes": ["s", "c", "s", "c", "s"],
      "factors": [
        {"type": "ising", "nodes": [0, 2, 4], "biases": [0, 0, 0], "edges": [[0, 2], [2, 4]], "weights": [1, 1]},
        {"type": "discrete", "spin_groups": [[2]], "categorical_groups": [[3]], "weights": [[0, 1, 2, 3]]}
      ],
      "free_blocks": [[[4, 0], [1]], [[3]]],
      "clamped_blocks": [[2]],
      "clamped_values": [[-1]]
    }"#;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", model);
    let out = sample(
        dir.path(),
        "model.json",
        "out",
        Run {
            chains: 3,
            warmup: 2,
            samples: 4,
            steps: 1,
            seed: 0,
        },
    );
    let samples = Samples::read_dir(&out).unwrap();
    let ids: Vec<(&str, &[usize])> = samples
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.node_ids.as_slice()))
        .collect();
    assert_eq!(ids, [("c", &[1usize, 3][..]), ("s", &[0usize, 4][..])]);
    assert_eq!(samples.kinds[0].states.shape(), &[3, 4, 2]);
    assert_eq!(samples.kinds[1].states.shape(), &[3, 4, 2]);
    assert!(
        samples.kinds[0]
            .states
            .view::<u8>()
            .unwrap()
            .iter()
            .all(|&v| v < 4)
    );
}

#[test]
fn thread_count_does_not_change_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    let run = |threads: &str, out: &str| {
        support::thrml_ok(
            dir.path(),
            &[
                "sample",
                "model.json",
                "--chains",
                "70",
                "--samples",
                "5",
                "--warmup",
                "3",
                "--seed",
                "9",
                "--threads",
                threads,
                "--out",
                out,
            ],
        );
        std::fs::read(dir.path().join(out).join("samples.npz")).unwrap()
    };
    assert_eq!(run("1", "t1"), run("2", "t2"));
    assert_eq!(run("1", "t1"), run("3", "t3"));
}
