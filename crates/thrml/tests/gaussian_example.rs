//! The Gaussian example (`examples/gaussian.rs`) at CI size: the sampled covariance of a
//! 5×5 Gaussian grid is within 1 % of the exact inverse precision, the naive guess is not,
//! and the scatter plot is a real picture.

#[allow(dead_code)]
#[path = "../examples/gaussian.rs"]
mod gaussian;

#[test]
fn gaussian_example_matches_the_exact_covariance() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gaussian::Config::small(dir.path().to_path_buf());
    config.verbose = false;
    let o = gaussian::run(&config).unwrap();
    eprintln!("{o:?}");
    assert_eq!(o.n_nodes, 25);
    assert_eq!(o.draws, 1000 * 400);
    // About 0.36 % at this size; the bound is 1 %.
    assert!(o.structural_error < gaussian::MAX_ERROR, "{o:?}");
    // The check can fail: ignoring the couplings is far off.
    assert!(o.naive_error > 0.1, "{o:?}");
    assert!(o.full_error.is_finite() && o.full_error < 0.05, "{o:?}");

    assert_eq!(o.covariance_png, dir.path().join("covariance.png"));
    let (w, h, colours, non_background) = thrml_plot::png_stats(&o.covariance_png).unwrap();
    assert!(w >= 200 && h >= 150, "{w}×{h}");
    assert!(colours >= 4, "{colours} colours");
    assert!(non_background > 0.01, "{non_background}");
}
