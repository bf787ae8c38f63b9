//! The MNIST example (`examples/mnist.rs`) at CI size: it runs end to end on a fifth of the
//! images with short schedules, and the trained model classifies far better than chance.

#[allow(dead_code)]
#[path = "../examples/mnist.rs"]
mod mnist;

use std::path::PathBuf;

#[test]
fn mnist_example_runs_at_ci_size() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if !dir.join("mnist034").exists() {
        eprintln!("note: {} not found; skipping", dir.display());
        return;
    }
    let mut config = mnist::Config::small(dir);
    config.verbose = false;
    let o = mnist::run(&config).unwrap();
    eprintln!("{o:?}");
    assert!(o.epochs <= 2);
    assert_eq!(o.n_train + o.n_test, 595);
    // Chance is 1/3; this run reaches about 0.9.
    assert!(o.accuracy > 0.6, "accuracy {}", o.accuracy);
}
