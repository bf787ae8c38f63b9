//! The spin-models example (`examples/spin_models.rs`) at CI size: the KL gradient on
//! Pegasus P(14) has the right shapes and finite entries, the 3-spin model's sampled means
//! match exact enumeration, and the speed plot is a real picture.

#[allow(dead_code)]
#[path = "../examples/spin_models.rs"]
mod spin_models;

use std::path::PathBuf;

#[test]
fn spin_models_example_runs_at_ci_size() {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if !data.join("topologies/pegasus14.txt").exists() {
        eprintln!("note: {} not found; skipping", data.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut config = spin_models::Config::small(data, out.path().to_path_buf());
    config.verbose = false;
    let o = spin_models::run(&config).unwrap();
    eprintln!("{o:?}");
    assert_eq!(o.grad_b.0, o.nodes);
    assert_eq!(o.grad_w.0, o.edges);
    assert!(o.grad_finite);
    assert!(o.grad_b.1 > 0.0 && o.grad_w.1 > 0.0, "{o:?}");
    assert!(
        o.exact_err <= o.exact_tol,
        "{} > {}",
        o.exact_err,
        o.exact_tol
    );
    assert!(
        o.exact_tol < 0.06,
        "tolerance {} too loose to test anything",
        o.exact_tol
    );
    assert_eq!(o.fps.len(), config.fps_chains.len());
    assert!(o.fps.iter().all(|&(_, f)| f.is_finite() && f > 0.0));
    let (w, h, colours, other) = thrml_plot::png_stats(&o.png).unwrap();
    assert!(w >= 200 && h >= 150, "{w}x{h}");
    assert!(colours >= 3, "{colours} colours");
    assert!(other > 0.02, "{other}");
}
