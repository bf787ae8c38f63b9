//! Progress bars and `--quiet`: with stderr piped (not a terminal) no bar is drawn, the
//! samples do not depend on `--quiet`, and the summary reports the rate and outputs.
mod support;

use support::{EXAMPLE, thrml, write};

fn run(dir: &std::path::Path, out: &str, quiet: bool) -> (String, String) {
    let mut args = vec![
        "sample",
        "model.json",
        "--chains",
        "8",
        "--warmup",
        "50",
        "--samples",
        "40",
        "--seed",
        "3",
        "--out",
        out,
    ];
    if quiet {
        args.push("--quiet");
    }
    let o = thrml(dir, &args);
    assert!(o.status.success(), "{o:?}");
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn piped_stderr_gets_no_bar_and_quiet_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.json", EXAMPLE);
    let (stdout, stderr) = run(dir.path(), "a", false);
    assert!(stderr.is_empty(), "no progress bar on a pipe: {stderr:?}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(stdout.contains("8 chains × 40 samples"), "{stdout}");
    assert!(stdout.contains("89 sweeps per chain"), "{stdout}");
    assert!(stdout.contains("flips/ns"), "{stdout}");
    assert!(stdout.contains("a/samples.npz"), "{stdout}");
    let (_, stderr) = run(dir.path(), "b", true);
    assert!(stderr.is_empty(), "{stderr:?}");
    let a = std::fs::read(dir.path().join("a/samples.npz")).unwrap();
    let b = std::fs::read(dir.path().join("b/samples.npz")).unwrap();
    assert_eq!(a, b, "--quiet must not change the samples");
}

#[test]
fn quiet_is_accepted_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["sample", "energy", "train", "demo", "bench"] {
        let o = thrml(dir.path(), &[cmd, "--quiet", "--help"]);
        assert!(o.status.success(), "{cmd}: {o:?}");
        let help = String::from_utf8(o.stdout).unwrap();
        assert!(help.contains("--quiet"), "{cmd}: {help}");
    }
    let o = thrml(
        dir.path(),
        &["--quiet", "demo", "--chains", "2", "--samples", "3"],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(o.stderr.is_empty(), "{o:?}");
}
