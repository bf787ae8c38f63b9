//! Continuous and mixed spin/continuous model files: parsing, round trips, sampling, and
//! errors that name the bad field, factor and node.

use thrml::io::{FactorSpec, KindSpec, Model, ModelFile};
use thrml::{SamplingSchedule, Tensor};

/// Three continuous nodes in a chain and one spin coupled to the middle one.
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

fn err_of(text: &str) -> String {
    Model::from_str(text, "m.json").unwrap_err().to_string()
}

/// `MIXED` with one factor line replaced.
fn with_factor(old: &str, new: &str) -> String {
    assert!(MIXED.contains(old), "{old}");
    MIXED.replace(old, new)
}

#[test]
fn mixed_model_parses_compiles_and_round_trips() {
    let m = Model::from_str(MIXED, "m.json").unwrap();
    assert_eq!(m.n_nodes(), 4);
    let kinds: Vec<_> = m.kinds().iter().map(|k| (k.name(), k.spec())).collect();
    assert_eq!(kinds, [("s", KindSpec::Spin), ("x", KindSpec::Continuous)]);
    assert!(matches!(m.file().factors[0], FactorSpec::Quadratic(_)));
    assert!(matches!(m.file().factors[3], FactorSpec::SpinContinuous(_)));
    assert_eq!(m.factors().len(), 4);
    // Colouring keeps interacting nodes apart and kinds in separate blocks.
    for sb in m.free_superblocks() {
        let nodes: Vec<usize> = sb.iter().flatten().copied().collect();
        assert!(!(nodes.contains(&0) && nodes.contains(&1)), "{sb:?}");
        assert!(!(nodes.contains(&1) && nodes.contains(&3)), "{sb:?}");
    }
    let text = m.file().to_json();
    assert!(text.contains("\"spin_continuous\""), "{text}");
    assert!(text.contains("\"precisions\""), "{text}");
    let again = ModelFile::from_str(&text, "again.json").unwrap();
    assert_eq!(&again, m.file());
}

#[test]
fn mixed_model_samples_are_f32_and_spins_bool() {
    let m = Model::from_str(MIXED, "m.json").unwrap();
    let samples = m
        .sample(3, 8, &SamplingSchedule::new(5, 10, 1).unwrap())
        .unwrap();
    let names: Vec<&str> = samples.kinds.iter().map(|k| k.kind.as_str()).collect();
    assert_eq!(names, ["s", "x"]);
    assert_eq!(samples.kinds[1].node_ids, [0, 1, 2]);
    let Tensor::F32(x) = &samples.kinds[1].states else {
        panic!("continuous samples are f32")
    };
    assert_eq!(x.shape(), &[8, 10, 3]);
    assert!(x.iter().all(|v| v.is_finite()));
    assert!(x.iter().any(|&v| v != x[[0, 0, 0]]));
    assert!(matches!(samples.kinds[0].states, Tensor::Bool(_)));
    // The seed determines the run.
    let again = m
        .sample(3, 8, &SamplingSchedule::new(5, 10, 1).unwrap())
        .unwrap();
    assert_eq!(again, samples);
}

#[test]
fn independent_gaussians_have_the_exact_mean_and_variance() {
    // E = ½ a x² + b x: x ~ N(−b / a, 1 / a), independently.
    let text = r#"{
      "format": "thrml-model/1",
      "kinds": {"x": {"type": "continuous"}},
      "nodes": ["x", "x"],
      "factors": [
        {"type": "quadratic", "nodes": [0, 1], "precisions": [4.0, 1.0]},
        {"type": "linear", "nodes": [0, 1], "weights": [2.0, -1.5]}
      ],
      "free_blocks": "auto"
    }"#;
    let m = Model::from_str(text, "g.json").unwrap();
    let samples = m
        .sample(1, 400, &SamplingSchedule::new(2, 50, 1).unwrap())
        .unwrap();
    let Tensor::F32(x) = &samples.kinds[0].states else {
        panic!("f32")
    };
    for (j, (mean, var)) in [(-0.5, 0.25), (1.5, 1.0)].into_iter().enumerate() {
        let v: Vec<f64> = x
            .index_axis(ndarray::Axis(2), j)
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let n = v.len() as f64;
        let m1 = v.iter().sum::<f64>() / n;
        let m2 = v.iter().map(|x| (x - m1).powi(2)).sum::<f64>() / n;
        // 20,000 independent draws: the sd of the mean is ≤ 0.007, of the variance ≤ 1%.
        assert!((m1 - mean).abs() < 0.04, "node {j}: mean {m1} vs {mean}");
        assert!(
            (m2 / var - 1.0).abs() < 0.06,
            "node {j}: variance {m2} vs {var}"
        );
    }
}

#[test]
fn errors_name_the_field_factor_and_node() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        // A non-positive precision names the entry and the node.
        (
            with_factor(
                "\"precisions\": [2.0, 2.0, 2.0]",
                "\"precisions\": [2.0, -1.0, 2.0]",
            ),
            vec!["factors[0].precisions[1]", "node 1 (kind `x`)", "positive"],
        ),
        // Weights that do not fit an f32 (JSON has no NaN or infinity).
        (
            with_factor("\"weights\": [0.6, -0.6]", "\"weights\": [0.6, -1e39]"),
            vec!["factors[2].weights", "entry 1"],
        ),
        // Unknown nodes.
        (
            with_factor("\"edges\": [[0, 1], [1, 2]]", "\"edges\": [[0, 1], [1, 9]]"),
            vec!["factors[2].edges[1][1]", "out of range"],
        ),
        // Wrong kinds.
        (
            with_factor("\"edges\": [[3, 1]]", "\"edges\": [[1, 3]]"),
            vec!["factors[3].edges[0][0]", "needs spin nodes"],
        ),
        (
            with_factor(
                "\"nodes\": [0, 1, 2], \"weights\"",
                "\"nodes\": [0, 1, 3], \"weights\"",
            ),
            vec!["factors[1].nodes[2]", "node 3 (kind `s`)", "continuous"],
        ),
        // Lengths.
        (
            with_factor("\"weights\": [0.5, 0.0, -0.5]", "\"weights\": [0.5, 0.0]"),
            vec!["factors[1].weights", "one value per node"],
        ),
        // A continuous node without a precision.
        (
            with_factor(
                "\"nodes\": [0, 1, 2], \"precisions\": [2.0, 2.0, 2.0]",
                "\"nodes\": [0, 1], \"precisions\": [2.0, 2.0]",
            ),
            vec!["nodes[2]", "no quadratic factor"],
        ),
        // Unknown fields and kind options.
        (
            with_factor(
                "{\"type\": \"coupling\",",
                "{\"type\": \"coupling\", \"beta\": 1.0,",
            ),
            vec!["factors[2]", "beta"],
        ),
        (
            MIXED.replace(
                "{\"type\": \"continuous\"}",
                "{\"type\": \"continuous\", \"categories\": 2}",
            ),
            vec!["kinds.x"],
        ),
        // Continuous nodes cannot be clamped.
        (
            MIXED.replace(
                "\"free_blocks\": \"auto\"",
                "\"free_blocks\": \"auto\", \"clamped_blocks\": [[2]], \"clamped_values\": [[1]]",
            ),
            vec!["clamped_blocks[0][0]", "continuous"],
        ),
    ];
    for (text, needles) in cases {
        let e = err_of(&text);
        for needle in needles {
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
    }
    // Exact enumeration and training are for discrete models.
    let m = Model::from_str(MIXED, "m.json").unwrap();
    let e = m.exact_distribution().unwrap_err().to_string();
    assert!(e.contains("kind `x` is continuous"), "{e}");
    let e = thrml::io::ModelParameters::new(&m).unwrap_err().to_string();
    assert!(
        e.contains("factors[0]") && e.contains("cannot be trained"),
        "{e}"
    );
}
