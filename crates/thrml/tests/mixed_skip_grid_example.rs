//! The mixed skip-grid example (`examples/mixed_skip_grid.rs`) at CI size: a 12×12 grid of
//! random spins and continuous nodes with skips 1, 3, 5, sampled in mixed superblocks; the
//! draws are finite, the spins ±1, the strongly linked probe is bimodal, and the PCA plot is
//! a real picture.

#[allow(dead_code)]
#[path = "../examples/mixed_skip_grid.rs"]
mod mixed_skip_grid;

use mixed_skip_grid::{MAX_PROBE_KURTOSIS, MIN_MODE_SHARE};

#[test]
fn mixed_skip_grid_example_has_a_bimodal_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = mixed_skip_grid::Config::small(dir.path().to_path_buf());
    config.verbose = false;
    let o = mixed_skip_grid::run(&config).unwrap();
    eprintln!("{o:?}");
    assert_eq!(o.n_spins + o.n_continuous, 144);
    assert!(o.n_spins > 20 && o.n_continuous > 20, "{o:?}");
    // Offsets 1, 3, 5 along rows and columns of a 12×12 open grid.
    assert_eq!(o.n_edges, 2 * 12 * (11 + 9 + 7));
    assert_eq!(o.n_colours, 2);
    assert_eq!(o.draws, 64 * 60);
    assert!(o.all_finite && o.spins_pm1, "{o:?}");
    for share in [o.probe_positive_share, o.probe_spin_up_share] {
        assert!(
            (MIN_MODE_SHARE..=1.0 - MIN_MODE_SHARE).contains(&share),
            "{o:?}"
        );
    }
    // About −1.4 at this size; a Gaussian gives 0.
    assert!(o.probe_kurtosis < MAX_PROBE_KURTOSIS, "{o:?}");
    assert!(
        o.explained[0] >= o.explained[1] && o.explained[1] > 0.0,
        "{o:?}"
    );

    assert_eq!(o.pca_png, dir.path().join("pca.png"));
    let (w, h, colours, non_background) = thrml_plot::png_stats(&o.pca_png).unwrap();
    assert!(w >= 200 && h >= 150, "{w}×{h}");
    assert!(colours >= 4, "{colours} colours");
    assert!(non_background > 0.01, "{non_background}");
}
