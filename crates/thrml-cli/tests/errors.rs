//! Bad input gives a non-zero exit and one line naming the file, field and node; never a
//! panic; and a failed `thrml sample` leaves no samples.npz.
mod support;

use ndarray::{Array2, arr2};
use support::{EXAMPLE, assert_fails, write};
use thrml::Tensor;
use thrml::io::write_npz;

/// The example model with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "the example contains {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

/// `thrml sample` on `model` fails with exit 2 and a message holding `needles`, and leaves
/// no samples.npz behind.
fn sample_fails(label: &str, model: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.json", model);
    let mut all = vec!["bad.json"];
    all.extend_from_slice(needles);
    let msg = assert_fails(dir.path(), &["sample", "bad.json", "--out", "out"], 2, &all);
    assert!(
        !dir.path().join("out/samples.npz").exists(),
        "{label}: a failed sample must not leave samples.npz"
    );
    eprintln!("{label}: {}", msg.trim_end());
}

#[test]
fn malformed_json_names_line_and_column() {
    sample_fails(
        "trailing comma",
        &edit(r#""beta": 1.0}"#, r#""beta": 1.0,}"#),
        &["line 6, column", "invalid JSON", "trailing comma"],
    );
    sample_fails("empty file", "", &["line 1, column 0", "invalid JSON"]);
    sample_fails(
        "number overflow",
        &edit("[0.5]", "[1e400]"),
        &["line 6, column", "number out of range"],
    );
    sample_fails(
        "duplicate key",
        &edit(r#""beta": 1.0"#, r#""beta": 1.0, "beta": 2.0"#),
        &["line 6, column", "duplicate key `beta`"],
    );
    sample_fails("not an object", "[1, 2]", &["expected a model object"]);
}

#[test]
fn format_kinds_and_fields() {
    sample_fails(
        "wrong format",
        &edit("thrml-model/1", "thrml-model/2"),
        &["format:", "thrml-model/2"],
    );
    sample_fails(
        "missing format",
        &edit(r#""format": "thrml-model/1","#, ""),
        &["format: required field is missing"],
    );
    sample_fails(
        "unknown kind",
        &edit(r#"["s", "s", "c", "c"]"#, r#"["s", "s", "c", "q"]"#),
        &["nodes[3]", "unknown kind `q`"],
    );
    sample_fails(
        "unknown kind type",
        &edit(r#"{"type": "spin"}"#, r#"{"type": "gaussian"}"#),
        &["kinds.s.type", "gaussian"],
    );
    sample_fails(
        "too many categories",
        &edit(r#""categories": 3"#, r#""categories": 257"#),
        &["kinds.c.categories", "257"],
    );
    sample_fails(
        "zero categories",
        &edit(r#""categories": 3"#, r#""categories": 0"#),
        &["kinds.c.categories"],
    );
    sample_fails(
        "bad kind name",
        &edit(r#""s": {"type": "spin"}"#, r#""s/x": {"type": "spin"}"#),
        &["kinds.s/x", "not allowed"],
    );
    sample_fails(
        "unknown field",
        &edit(r#""beta": 1.0"#, r#""beta": 1.0, "bta": 2"#),
        &["factors[0].bta", "unknown field"],
    );
    sample_fails(
        "unknown factor type",
        &edit(
            r#""type": "spin", "groups""#,
            r#""type": "spinn", "groups""#,
        ),
        &["factors[1].type", "spinn"],
    );
    sample_fails(
        "missing weights",
        &edit(r#", "weights": [0.3]"#, ""),
        &["factors[1].weights", "required field is missing"],
    );
}

#[test]
fn node_ids_and_groups() {
    sample_fails(
        "id out of range",
        &edit(r#""groups": [[2], [3]]"#, r#""groups": [[2], [9]]"#),
        &["factors[2].groups[1][0]", "node id 9", "4 nodes"],
    );
    sample_fails(
        "negative id",
        &edit(r#""nodes": [0, 1]"#, r#""nodes": [0, -1]"#),
        &["factors[0].nodes[1]", "node id"],
    );
    sample_fails(
        "spin node in a categorical group",
        &edit(r#""groups": [[2], [3]]"#, r#""groups": [[2], [0]]"#),
        &["factors[2].groups[1][0]", "node 0", "spin"],
    );
    sample_fails(
        "node twice in one instance",
        &edit(r#""groups": [[0], [1]]"#, r#""groups": [[0], [0]]"#),
        &["factors[1].groups[1][0]", "node 0", "only once"],
    );
    sample_fails(
        "self-loop",
        &edit(r#""edges": [[0, 1]]"#, r#""edges": [[1, 1]]"#),
        &["factors[0].edges[0]", "node 1"],
    );
    sample_fails(
        "groups of different lengths",
        &edit(r#""groups": [[0], [1]]"#, r#""groups": [[0], [1, 0]]"#),
        &["factors[1].groups[1]", "same length"],
    );
    sample_fails(
        "biases do not match nodes",
        &edit("[0.1, -0.2]", "[0.1]"),
        &["factors[0].biases", "one bias per node"],
    );
}

#[test]
fn tensors_and_weights() {
    sample_fails(
        "wrong categorical shape",
        &edit(
            r#""shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]"#,
            r#""shape": [1, 3, 2], "data": [0,1, 1,0, 0,1]"#,
        ),
        &["factors[2].weights", "[1, 3, 2]", "expected [1, 3, 3]"],
    );
    sample_fails(
        "data does not fit shape",
        &edit(r#""shape": [1, 3, 3]"#, r#""shape": [1, 3, 4]"#),
        &["factors[2].weights.data", "12"],
    );
    sample_fails(
        "ragged nested lists",
        &edit("[[0.2, -0.1, 0.4]]", "[[0.2, -0.1, 0.4], [0.1]]"),
        &["factors[3].weights[1]", "rectangular"],
    );
    sample_fails(
        "wrong discrete shape",
        &edit("[[0.2, -0.1, 0.4]]", "[[0.2, -0.1]]"),
        &["factors[3].weights", "expected [1, 3]"],
    );
    sample_fails(
        "string weight",
        &edit("[0.3]", r#"["0.3"]"#),
        &["factors[1].weights[0]", "expected a number"],
    );
    sample_fails(
        "weight too large for f32",
        &edit("[0.3]", "[1e39]"),
        &["factors[1].weights", "1e39", "32-bit"],
    );
    sample_fails(
        "beta overflows the weights",
        &edit(
            r#""weights": [0.5], "beta": 1.0"#,
            r#""weights": [3e38], "beta": 10"#,
        ),
        &["factors[0].weights", "beta"],
    );
    sample_fails(
        "non-square square factor",
        &edit(
            r#"{"type": "categorical", "groups": [[2], [3]]"#,
            r#"{"type": "categorical", "square": true, "groups": [[2], [3]]"#,
        )
        .replace(
            r#""categories": 3"#,
            r#""categories": 3}, "d": {"type": "categorical", "categories": 2"#,
        )
        .replace(r#"["s", "s", "c", "c"]"#, r#"["s", "s", "c", "d"]"#)
        .replace(
            r#""shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]"#,
            r#""shape": [1, 3, 2], "data": [0,1, 1,0, 0,1]"#,
        ),
        &["factors[2].weights", "square"],
    );
}

#[test]
fn blocks() {
    sample_fails(
        "block mixes kinds",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1, 2]]"),
        &["free_blocks[1]", "mixes kinds", "node 1", "node 2"],
    );
    sample_fails(
        "interacting nodes in one superblock",
        &edit("[[[0], [3]], [1], [2]]", "[[[0, 1], [3]], [2]]"),
        &["free_blocks[0]", "nodes 0 and 1 interact", "factors[0]"],
    );
    sample_fails(
        "interacting nodes across blocks of one superblock",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [2]], [1], [3]]"),
        &["free_blocks[0]", "nodes 0 and 2 interact", "factors[3]"],
    );
    sample_fails(
        "free blocks miss a node",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1]]"),
        &["free_blocks", "node 2", "not clamped"],
    );
    sample_fails(
        "node in two blocks",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1], [2], [0]]"),
        &["free_blocks[3]", "node 0", "already in free_blocks[0][0]"],
    );
    sample_fails(
        "empty block",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1], [2], []]"),
        &["free_blocks[3]", "empty block"],
    );
    sample_fails(
        "block id out of range",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1], [2, 7]]"),
        &["free_blocks[2][1]", "node id 7"],
    );
    sample_fails(
        "mixed superblock syntax",
        &edit("[[[0], [3]], [1], [2]]", "[[[0], 3], [1], [2]]"),
        &["free_blocks[0]", "mixes node ids and lists"],
    );
    sample_fails(
        "bad free_blocks string",
        &edit("[[[0], [3]], [1], [2]]", r#""automatic""#),
        &["free_blocks", "automatic"],
    );
}

#[test]
fn clamping() {
    let clamp = |blocks: &str, values: &str| {
        edit("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1]]")
            .replace(
                r#""clamped_blocks": []"#,
                &format!(r#""clamped_blocks": {blocks}"#),
            )
            .replace(
                r#""clamped_values": []"#,
                &format!(r#""clamped_values": {values}"#),
            )
    };
    sample_fails(
        "category out of range",
        &clamp("[[2]]", "[[3]]"),
        &["clamped_values[0][0]", "node 2", "0 to 2"],
    );
    sample_fails(
        "spin value 0",
        &clamp("[[2], [1]]", "[[1], [0]]"),
        &["clamped_values[1][0]", "node 1", "-1 or +1"],
    );
    sample_fails(
        "value count",
        &clamp("[[2]]", "[[1, 1]]"),
        &["clamped_values[0]", "2 values", "1 node"],
    );
    sample_fails(
        "block count",
        &clamp("[[2]]", "[]"),
        &["clamped_values", "clamped_blocks has 1"],
    );
    sample_fails(
        "clamped and free",
        &clamp("[[1]]", "[[1]]"),
        &["free_blocks[1]", "node 1", "clamped"],
    );
    sample_fails(
        "clamped twice",
        &clamp("[[2], [2]]", "[[1], [1]]"),
        &["clamped_blocks[1]", "node 2", "already clamped"],
    );
    sample_fails(
        "fractional value",
        &clamp("[[2]]", "[[1.5]]"),
        &["clamped_values[0][0]", "integer"],
    );
}

#[test]
fn command_line_and_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    assert_fails(
        dir.path(),
        &["sample", "missing.json", "--out", "o"],
        1,
        &["missing.json"],
    );
    assert_fails(
        dir.path(),
        &["sample", "model.json", "--chains", "0", "--out", "o"],
        2,
        &["--chains"],
    );
    assert_fails(
        dir.path(),
        &["sample", "model.json", "--samples", "0", "--out", "o"],
        2,
        &["--samples"],
    );
    assert_fails(
        dir.path(),
        &["sample", "model.json", "--chain", "3", "--out", "o"],
        2,
        &["--chain", "--chains"],
    );
    assert_fails(dir.path(), &["sample", "model.json"], 2, &["--out"]);
    assert_fails(dir.path(), &["frobnicate"], 2, &["frobnicate"]);
    // The output directory is a file: an I/O error, exit 1, nothing written.
    write(dir.path(), "taken", "");
    assert_fails(
        dir.path(),
        &["sample", "model.json", "--samples", "2", "--out", "taken"],
        1,
        &["taken"],
    );
    assert!(!dir.path().join("o").exists());
}

/// The states of the example model: spins [M, 2], categoricals [M, 2].
fn example_states() -> (Tensor, Tensor) {
    (
        Tensor::from(arr2(&[[true, false], [false, false]]).into_dyn()),
        Tensor::from(arr2(&[[0u8, 2], [1, 1]]).into_dyn()),
    )
}

fn energy_fails(label: &str, arrays: &[(&str, &Tensor)], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    write_npz(&dir.path().join("states.npz"), arrays).unwrap();
    let mut all = vec!["states.npz"];
    all.extend_from_slice(needles);
    let msg = assert_fails(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "states.npz",
            "--out",
            "e.npy",
        ],
        2,
        &all,
    );
    assert!(
        !dir.path().join("e.npy").exists(),
        "{label}: no output on failure"
    );
    eprintln!("{label}: {}", msg.trim_end());
}

#[test]
fn energy_states_are_checked() {
    let (s, c) = example_states();
    energy_fails(
        "missing array",
        &[("s", &s)],
        &["array `c` is missing", "uint8"],
    );
    energy_fails(
        "unknown array",
        &[("s", &s), ("c", &c), ("x", &s)],
        &["array `x`", "does not name a kind"],
    );
    let s_u8 = Tensor::from(arr2(&[[1u8, 0], [0, 0]]).into_dyn());
    energy_fails(
        "spins as uint8",
        &[("s", &s_u8), ("c", &c)],
        &["array `s`", "dtype uint8", "expected bool"],
    );
    let c_i32 = Tensor::from(arr2(&[[0i32, 2], [1, 1]]).into_dyn());
    energy_fails(
        "categories as int32",
        &[("s", &s), ("c", &c_i32)],
        &["array `c`", "dtype int32", "expected uint8"],
    );
    let s_wide = Tensor::from(arr2(&[[true, false, true]]).into_dyn());
    energy_fails(
        "wrong column count",
        &[("s", &s_wide), ("c", &c)],
        &["array `s`", "shape [1, 3]", "[M, 2]"],
    );
    let s_rows = Tensor::from(arr2(&[[true, false]]).into_dyn());
    energy_fails(
        "row counts differ",
        &[("s", &s_rows), ("c", &c)],
        &["array `s`", "1 row but", "array `c` has 2"],
    );
    let c_bad: Array2<u8> = arr2(&[[0, 2], [1, 3]]);
    let c_bad = Tensor::from(c_bad.into_dyn());
    energy_fails(
        "category out of range",
        &[("s", &s), ("c", &c_bad)],
        &["array `c`", "row 1 column 1", "node 3", "value 3"],
    );

    // int64 (numpy's default integer) is named as such.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    let mut npz =
        ndarray_npy::NpzWriter::new(std::fs::File::create(dir.path().join("i64.npz")).unwrap());
    npz.add_array("c", &arr2(&[[0i64, 1]])).unwrap();
    npz.finish().unwrap();
    assert_fails(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "i64.npz",
            "--out",
            "e.npy",
        ],
        2,
        &["i64.npz", "array `c`", "int64"],
    );
    write(dir.path(), "junk.npz", "this is not a zip archive");
    assert_fails(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "junk.npz",
            "--out",
            "e.npy",
        ],
        2,
        &["junk.npz", "not a valid .npz archive"],
    );
    assert_fails(
        dir.path(),
        &[
            "energy",
            "model.json",
            "--states",
            "none.npz",
            "--out",
            "e.npy",
        ],
        1,
        &["none.npz"],
    );
}
