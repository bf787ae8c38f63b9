//! Progress reporting does not change the samples.

use thrml::graph::{checkerboard, grid_edges};
use thrml::*;

fn run(fused: bool, with_progress: bool) -> (Vec<State>, Vec<Progress>) {
    let side = 12;
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
    let init: Vec<State> = hinton_init(Key::new(3), &ebm, &blocks, &[20])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect();
    let schedule = SamplingSchedule::new(37, 9, 5).unwrap();
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
        &schedule,
        &init,
        &[],
        &blocks,
        progress,
    )
    .unwrap();
    (samples, reports)
}

#[test]
fn samples_are_bit_identical_with_and_without_progress() {
    for fused in [true, false] {
        let (plain, none) = run(fused, false);
        let (reported, reports) = run(fused, true);
        assert!(none.is_empty());
        assert_eq!(plain, reported, "fused = {fused}");
        // The last report is the end of the run, and reports never go backwards.
        let last = *reports.last().expect("a final report");
        assert_eq!(last.sweeps_done, 37 + 8 * 5);
        assert_eq!(last.total_sweeps, 77);
        assert_eq!(last.observations_done, 9);
        assert_eq!(last.n_chains, 20);
        assert!(
            reports
                .windows(2)
                .all(|w| w[0].sweeps_done <= w[1].sweeps_done)
        );
    }
}
