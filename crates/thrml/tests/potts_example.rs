//! The Potts example (`examples/potts.rs`) at CI size: ordered at high β, disordered at low
//! β, and the three PNGs are real pictures.

#[allow(dead_code)]
#[path = "../examples/potts.rs"]
mod potts;

#[test]
fn potts_example_runs_at_ci_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = potts::Config::small(dir.path().to_path_buf());
    config.verbose = false;
    let o = potts::run(&config).unwrap();
    let low = o.sweep.first().unwrap();
    let high = o.sweep.last().unwrap();
    eprintln!(
        "agreement: beta {} -> {:.4}, beta {} -> {:.4}, beta 1 -> {:.4}",
        low.beta, low.agreement, high.beta, high.agreement, o.thrml.agreement
    );
    assert!(high.agreement > potts::ORDERED_ABOVE, "{}", high.agreement);
    assert!(low.agreement < potts::DISORDERED_BELOW, "{}", low.agreement);
    // Agreement grows with β across the sweep's ends, and never falls below 1/q by much.
    assert!(low.agreement > 0.15, "{}", low.agreement);
    assert_eq!(o.sweep.len(), config.betas.len());
    assert_eq!(o.pngs.len(), 3);
    for p in &o.pngs {
        let (w, h, colours, other) = thrml_plot::png_stats(p).unwrap();
        assert!(w >= 200 && h >= 150, "{}: {w}x{h}", p.display());
        assert!(colours >= 5, "{}: {colours} colours", p.display());
        assert!(
            other > 0.02,
            "{}: {other} of the pixels differ",
            p.display()
        );
    }
}
