//! Progress reporting does not change the samples.

use thrml::graph::{checkerboard, grid_edges};
use thrml::*;

fn run(
    fused: bool,
    with_progress: bool,
    side: usize,
    chains: usize,
    schedule: &SamplingSchedule,
) -> (Vec<State>, Vec<Progress>) {
    let s = Node::many(NodeKind::SPIN, side * side);
    let edges: Vec<_> = grid_edges(side, side, true)
        .into_iter()
        .map(|(a, b)| (s[a], s[b]))
        .collect();
    let n_edges = edges.len();
    let biases: Vec<f32> = (0..s.len()).map(|i| 0.01 * (i % 7) as f32 - 0.03).collect();
    let ebm = IsingEBM::new(s.clone(), edges, biases, vec![0.4; n_edges], 1.0).unwrap();
    let mut classes = vec![Vec::new(), Vec::new()];
    for (i, c) in checkerboard(side, side).into_iter().enumerate() {
        classes[c].push(s[i]);
    }
    let blocks: Vec<Block> = classes
        .into_iter()
        .map(|c| Block::new(c).unwrap())
        .collect();
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    program.set_fused_kernels(fused);
    let init: Vec<State> = hinton_init(Key::new(3), &ebm, &blocks, &[chains])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect();
    let mut reports = Vec::new();
    let mut callback = |p: Progress| reports.push(p);
    let progress: Option<&mut dyn FnMut(Progress)> = if with_progress {
        Some(&mut callback)
    } else {
        None
    };
    let samples = sample_states_with_progress(
        Key::new(4),
        &program,
        schedule,
        &init,
        &[],
        &blocks,
        progress,
    )
    .unwrap();
    (samples, reports)
}

/// The last report is the end of the run, and reports never go backwards.
fn check_reports(reports: &[Progress], schedule: &SamplingSchedule, chains: usize) {
    let last = *reports.last().expect("a final report");
    assert_eq!(last.sweeps_done, schedule.total_sweeps());
    assert_eq!(last.total_sweeps, schedule.total_sweeps());
    assert_eq!(last.observations_done, schedule.n_samples);
    assert_eq!(last.n_chains, chains);
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].sweeps_done <= w[1].sweeps_done)
    );
}

#[test]
fn samples_are_bit_identical_with_and_without_progress() {
    let schedule = SamplingSchedule::new(37, 9, 5).unwrap();
    for fused in [true, false] {
        let (plain, none) = run(fused, false, 12, 20, &schedule);
        let (reported, reports) = run(fused, true, 12, 20, &schedule);
        assert!(none.is_empty());
        assert_eq!(plain, reported, "fused = {fused}");
        assert_eq!(schedule.total_sweeps(), 37 + 8 * 5);
        check_reports(&reports, &schedule, 20);
    }
}

/// One chain of a 128 × 128 grid on two threads runs on a thread team, which takes each
/// stretch of sweeps whole and reports from its first thread.
#[test]
fn a_thread_team_reports_without_changing_the_samples() {
    let schedule = SamplingSchedule::new(300, 3, 40).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (plain, none) = pool.install(|| run(true, false, 128, 1, &schedule));
    let (reported, reports) = pool.install(|| run(true, true, 128, 1, &schedule));
    assert!(none.is_empty());
    assert_eq!(plain, reported);
    check_reports(&reports, &schedule, 1);
}
