//! The first half of THRML's "All of THRML" notebook: a Gaussian PGM on a grid, sampled by
//! block Gibbs with the built-in continuous nodes, and checked against its exact covariance.
//!
//! * **Model.** `E(x) = ½ xᵀA x + bᵀx` on a `side × side` open grid (10×10; 5×5 in small
//!   mode): one [`LinearFactor`] (`b ∈ [−1, 1]`), one [`QuadraticFactor`] (the diagonal
//!   `A_ii = 1 + Σ_j |A_ij|`, strictly diagonally dominant, so `A` is positive definite) and
//!   one [`CouplingFactor`] over the grid edges (`A_ij ∈ ±[0.1, 0.5]`), all seeded.
//! * **Sampling.** Two colour blocks ([`thrml::graph::checkerboard`]), each updated by
//!   [`GaussianGibbsConditional`]: `x_i | rest ~ N(−(b_i + Σ_j A_ij x_j) / A_ii, 1 / A_ii)`.
//! * **Check.** The stationary covariance is `Σ = A⁻¹` (computed here by Gauss–Jordan
//!   elimination). The sample covariance `Σ̂` is accumulated over all chains and samples;
//!   the asserted error is the relative Frobenius error `‖Σ̂ − Σ‖_F / ‖Σ‖_F` over the
//!   *structural* entries (the diagonal and the grid edges, where `Σ` is large), which
//!   must be below 1 %. The same error over the whole matrix is printed too: its far
//!   entries are nearly zero, so it is dominated by sampling noise and grows like
//!   `√(n / draws)`.
//! * **Plot.** `covariance.png`: every entry `Σ̂_ij` (`i ≤ j`) against `Σ_ij`, with `y = x`.
//!
//! ```text
//! cargo run --release -p thrml --example gaussian -- [--seed 0] [--out DIR]
//! THRML_EXAMPLE_SMALL=1 cargo run --release -p thrml --example gaussian   # a CI-sized run
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::RngExt;
use thrml::graph::{checkerboard, grid_edges};
use thrml::{
    AbstractConditionalSampler, AbstractObserver, Block, BlockGibbsSpec, BlockSamplingProgram,
    CouplingFactor, EBMFactor, FactorSamplingProgram, GaussianGibbsConditional, Key, LinearFactor,
    Node, NodeKind, QuadraticFactor, SamplingSchedule, State, default_node_shape_dtypes,
    make_empty_block_state, sample_with_observation,
};

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The grid is `side × side`.
    pub side: usize,
    /// Parallel chains.
    pub chains: usize,
    /// Burn-in, samples and steps per sample.
    pub schedule: SamplingSchedule,
    /// The seed of the weights and of the sampling.
    pub seed: u64,
    /// Where the PNG goes.
    pub out_dir: PathBuf,
    /// Print what was checked.
    pub verbose: bool,
}

impl Config {
    /// A 10×10 grid, 2,000 chains × 500 samples.
    #[must_use]
    pub fn full(out_dir: PathBuf) -> Config {
        Config {
            side: 10,
            chains: 2000,
            schedule: SamplingSchedule::new(50, 500, 2).expect("valid"),
            seed: 0,
            out_dir,
            verbose: true,
        }
    }

    /// A CI-sized run: a 5×5 grid, 1,000 chains × 400 samples.
    #[must_use]
    pub fn small(out_dir: PathBuf) -> Config {
        Config {
            side: 5,
            chains: 1000,
            schedule: SamplingSchedule::new(30, 400, 2).expect("valid"),
            ..Config::full(out_dir)
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Nodes of the grid.
    pub n_nodes: usize,
    /// Draws pooled (chains × samples).
    pub draws: usize,
    /// `‖Σ̂ − Σ‖_F / ‖Σ‖_F` over the diagonal and the grid edges (asserted < 1 %).
    pub structural_error: f64,
    /// `‖Σ̂ − Σ‖_F / ‖Σ‖_F` over the whole matrix (printed only).
    pub full_error: f64,
    /// The same structural error for the naive guess `diag(1 / A_ii)` (far above 1 %: the
    /// check can fail).
    pub naive_error: f64,
    /// The scatter plot of sampled against exact entries.
    pub covariance_png: PathBuf,
    /// Seconds spent sampling.
    pub sample_s: f64,
}

/// The asserted bound on [`Outcome::structural_error`].
pub const MAX_ERROR: f64 = 0.01;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// Building or running the sampler failed.
    #[error(transparent)]
    Thrml(#[from] thrml::Error),
    /// Writing the plot failed.
    #[error(transparent)]
    Plot(#[from] thrml_plot::PlotError),
    /// The precision matrix is singular (cannot happen for a diagonally dominant `A`).
    #[error("the precision matrix is singular at column {0}")]
    Singular(usize),
    /// The sampled covariance is too far from the exact one.
    #[error("relative covariance error {error:.4} is not below {bound}")]
    Covariance {
        /// The measured error.
        error: f64,
        /// The bound.
        bound: f64,
    },
}

/// A Gaussian PGM on an open grid, `E = ½ xᵀA x + bᵀx`.
struct Grid {
    nodes: Vec<Node>,
    edges: Vec<(usize, usize)>,
    diag: Vec<f32>,
    off: Vec<f32>,
    bias: Vec<f32>,
    colours: Vec<usize>,
}

impl Grid {
    fn new(side: usize, seed: u64) -> Grid {
        let n = side * side;
        let mut rng = Key::new(seed)
            .fold_in(0x6761_7573)
            .chain_rngs(1)
            .pop()
            .expect("one");
        let edges = grid_edges(side, side, false);
        let off: Vec<f32> = edges
            .iter()
            .map(|_| {
                let m: f32 = rng.random_range(0.1..0.5);
                if rng.random::<bool>() { m } else { -m }
            })
            .collect();
        let mut diag = vec![1.0f32; n];
        for (&(i, j), &w) in edges.iter().zip(&off) {
            diag[i] += w.abs();
            diag[j] += w.abs();
        }
        let bias = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Grid {
            nodes: Node::many(NodeKind::CONTINUOUS, n),
            edges,
            diag,
            off,
            bias,
            colours: checkerboard(side, side),
        }
    }

    fn precision(&self) -> Vec<Vec<f64>> {
        let n = self.nodes.len();
        let mut a = vec![vec![0.0; n]; n];
        for (i, &d) in self.diag.iter().enumerate() {
            a[i][i] = f64::from(d);
        }
        for (&(i, j), &w) in self.edges.iter().zip(&self.off) {
            a[i][j] = f64::from(w);
            a[j][i] = f64::from(w);
        }
        a
    }

    fn factors(&self) -> thrml::Result<Vec<Arc<dyn EBMFactor>>> {
        let all = Block::new(self.nodes.clone())?;
        let ends = |pick: fn(&(usize, usize)) -> usize| {
            Block::new(self.edges.iter().map(|e| self.nodes[pick(e)]).collect())
        };
        Ok(vec![
            Arc::new(LinearFactor::new(all.clone(), self.bias.clone())?),
            Arc::new(QuadraticFactor::new(all, self.diag.clone())?),
            Arc::new(CouplingFactor::new(
                ends(|e| e.0)?,
                ends(|e| e.1)?,
                self.off.clone(),
            )?),
        ])
    }

    fn colour_blocks(&self) -> thrml::Result<Vec<Block>> {
        (0..2)
            .map(|c| {
                Block::new(
                    (0..self.nodes.len())
                        .filter(|&i| self.colours[i] == c)
                        .map(|i| self.nodes[i])
                        .collect(),
                )
            })
            .collect()
    }
}

/// Inverse of a non-singular matrix by Gauss–Jordan elimination with partial pivoting.
fn invert(a: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, ExampleError> {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
            .expect("rows left");
        m.swap(col, pivot);
        let p = m[col][col];
        if p.abs() < 1e-12 {
            return Err(ExampleError::Singular(col));
        }
        for v in &mut m[col] {
            *v /= p;
        }
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col && row[col] != 0.0 {
                let f = row[col];
                for (v, pv) in row.iter_mut().zip(&pivot_row) {
                    *v -= f * pv;
                }
            }
        }
    }
    Ok(m.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// Pooled `Σ x_i` and `Σ x_i x_j` (`i ≤ j`, row-major upper triangle) over chains and samples.
#[derive(Clone, Debug)]
struct Moments {
    count: f64,
    sum: Vec<f64>,
    sum_pairs: Vec<f64>,
}

/// Accumulates [`Moments`] of every node, read from the global state.
struct MomentObserver {
    /// `(slot, position)` of each node.
    locations: Vec<(usize, usize)>,
}

impl AbstractObserver for MomentObserver {
    type Carry = Moments;
    type Output = ();

    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global: &[State],
        carry: &mut Moments,
        _: usize,
    ) -> thrml::Result<()> {
        let slots: Vec<&[f32]> = global
            .iter()
            .map(|s| s[0].as_slice::<f32>().unwrap_or(&[]))
            .collect();
        let sizes = &program.gibbs_spec.slot_sizes;
        let (s0, _) = self.locations[0];
        let chains = slots[s0].len() / sizes[s0].max(1);
        let n = self.locations.len();
        let mut x = vec![0f64; n];
        for c in 0..chains {
            for (v, &(s, p)) in x.iter_mut().zip(&self.locations) {
                let value = slots[s].get(c * sizes[s] + p).ok_or_else(|| {
                    thrml::Error::Invalid(format!("slot {s} does not hold f32 states"))
                })?;
                *v = f64::from(*value);
            }
            carry.count += 1.0;
            let mut k = 0;
            for i in 0..n {
                carry.sum[i] += x[i];
                for j in i..n {
                    carry.sum_pairs[k] += x[i] * x[j];
                    k += 1;
                }
            }
        }
        Ok(())
    }
}

fn rel_frobenius(est: &[f64], exact: &[f64]) -> f64 {
    let d: f64 = est.iter().zip(exact).map(|(a, b)| (a - b).powi(2)).sum();
    let e: f64 = exact.iter().map(|b| b * b).sum();
    (d / e).sqrt()
}

/// Build the grid, sample it, compare with `A⁻¹` and write the scatter plot.
///
/// # Errors
/// [`ExampleError::Covariance`] if the structural error is not below [`MAX_ERROR`];
/// sampler and plot errors.
pub fn run(config: &Config) -> Result<Outcome, ExampleError> {
    let grid = Grid::new(config.side, config.seed);
    let n = grid.nodes.len();
    let a = grid.precision();
    let sigma = invert(&a)?;

    let layouts = default_node_shape_dtypes();
    let blocks = grid.colour_blocks()?;
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &layouts)?;
    let gauss: Arc<dyn AbstractConditionalSampler> = Arc::new(GaussianGibbsConditional);
    let program =
        FactorSamplingProgram::new(spec, vec![gauss.clone(), gauss], &grid.factors()?, vec![])?;
    let observer = MomentObserver {
        locations: grid
            .nodes
            .iter()
            .map(|&v| program.gibbs_spec.location(v))
            .collect::<thrml::Result<_>>()?,
    };
    let init = make_empty_block_state(&blocks, &layouts, Some(&[config.chains]))?;
    let carry = Moments {
        count: 0.0,
        sum: vec![0.0; n],
        sum_pairs: vec![0.0; n * (n + 1) / 2],
    };
    let start = Instant::now();
    let (m, _) = sample_with_observation(
        Key::new(config.seed),
        &program,
        &config.schedule,
        &init,
        &[],
        carry,
        &observer,
    )?;
    let sample_s = start.elapsed().as_secs_f64();

    // Upper-triangle entries: sampled, exact, naive, and whether structural.
    let mean: Vec<f64> = m.sum.iter().map(|s| s / m.count).collect();
    let structural = |i: usize, j: usize| i == j || a[i][j] != 0.0;
    let (mut est_s, mut exact_s, mut naive_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut est_all, mut exact_all) = (Vec::new(), Vec::new());
    let mut points = Vec::with_capacity(m.sum_pairs.len());
    let mut k = 0;
    for i in 0..n {
        for j in i..n {
            let est = m.sum_pairs[k] / m.count - mean[i] * mean[j];
            k += 1;
            // Off-diagonal entries count twice in the Frobenius norm.
            let w = if i == j { 1.0 } else { 2f64.sqrt() };
            est_all.push(w * est);
            exact_all.push(w * sigma[i][j]);
            if structural(i, j) {
                est_s.push(w * est);
                exact_s.push(w * sigma[i][j]);
                naive_s.push(if i == j { 1.0 / a[i][i] } else { 0.0 });
            }
            points.push((sigma[i][j], est));
        }
    }
    let structural_error = rel_frobenius(&est_s, &exact_s);
    let full_error = rel_frobenius(&est_all, &exact_all);
    let naive_error = rel_frobenius(&naive_s, &exact_s);

    let covariance_png = config.out_dir.join("covariance.png");
    thrml_plot::Plot::new(format!("Gaussian {0}x{0} grid: covariance", config.side))
        .x_label("exact (inverse precision)")
        .y_label("sampled")
        .scatter("entries", &points)
        .diagonal()
        .save(&covariance_png)?;

    let outcome = Outcome {
        n_nodes: n,
        draws: m.count as usize,
        structural_error,
        full_error,
        naive_error,
        covariance_png,
        sample_s,
    };
    if config.verbose {
        println!(
            "{n} Gaussian nodes, {} draws in {sample_s:.2} s",
            outcome.draws
        );
        println!(
            "relative Frobenius covariance error (diagonal + edges): {:.3} % (bound {:.0} %; naive diag(1/A_ii): {:.1} %)",
            100.0 * structural_error,
            100.0 * MAX_ERROR,
            100.0 * naive_error
        );
        println!(
            "relative Frobenius covariance error (whole matrix, noise-dominated): {:.3} %",
            100.0 * full_error
        );
        println!("scatter plot: {}", outcome.covariance_png.display());
    }
    if structural_error >= MAX_ERROR {
        return Err(ExampleError::Covariance {
            error: structural_error,
            bound: MAX_ERROR,
        });
    }
    Ok(outcome)
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("target/examples/gaussian");
    let mut seed = None;
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--seed" => seed = value().parse().ok(),
            "--out" => out = PathBuf::from(value()),
            other => {
                eprintln!("error: unknown argument {other:?}; see the example's docs");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let small = std::env::var("THRML_EXAMPLE_SMALL").is_ok_and(|v| v == "1");
    let mut config = if small {
        Config::small(out)
    } else {
        Config::full(out)
    };
    config.seed = seed.unwrap_or(config.seed);
    match run(&config) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
