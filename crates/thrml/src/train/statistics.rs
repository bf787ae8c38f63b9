//! Sufficient statistics of discrete factors, accumulated in place while sampling.
//!
//! A [`DiscreteEBMFactor`] with weights `W[b, k₁, …, k_N]` has energy
//! `E = −Σ_b s₁[b] ⋯ s_M[b] · W[b, c₁[b], …, c_N[b]]`, so
//!
//! ```text
//! −∂E/∂W[b, k₁, …, k_N] = s₁[b] ⋯ s_M[b] · 1[c₁[b] = k₁, …, c_N[b] = k_N]
//! ```
//!
//! is the factor's *sufficient statistic*, a tensor of the weights' shape with, per factor
//! instance `b`, a single non-zero entry `±1`. [`FactorStatistics`] adds it, for every chain
//! and every observation, into a running sum of that shape: `M` spin reads, `N` category
//! reads and one add per instance, and nothing is stored per sample. Divided by the number
//! of chain-observations it is the moment `⟨−∂E/∂W⟩`, the quantity both phases of a KL
//! gradient need.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use crate::block::{BlockSpec, from_global_state};
use crate::error::{Error, Result};
use crate::models::discrete::DiscreteEBMFactor;
use crate::observer::AbstractObserver;
use crate::program::BlockSamplingProgram;
use crate::state::State;

/// Factor instances per parallel work item.
const CHUNK_INSTANCES: usize = 2048;
/// Smallest accumulation (chains × instances) split over threads.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// Where the nodes of one factor group live in the global state.
#[derive(Clone, Debug)]
struct GroupLocation {
    slot: usize,
    positions: Vec<usize>,
}

/// A categorical group: its location and the weight axis it indexes.
#[derive(Clone, Debug)]
struct CategoryAxis {
    location: GroupLocation,
    stride: usize,
    n_categories: usize,
}

/// The gather plan of one factor.
#[derive(Clone, Debug)]
struct FactorPlan {
    spins: Vec<GroupLocation>,
    categories: Vec<CategoryAxis>,
    row_stride: usize,
    batch: usize,
    shape: Vec<usize>,
}

/// Running sums of the sufficient statistics of a list of factors (one tensor of each
/// factor's weight shape), with the number of chain-observations they hold.
#[derive(Clone, Debug, PartialEq)]
pub struct StatisticSums {
    /// `Σ −∂E/∂W` over chains and observations, one tensor per factor.
    pub sums: Vec<ArrayD<f64>>,
    /// Number of chain-observations added.
    pub count: usize,
}

impl StatisticSums {
    /// The averages `⟨−∂E/∂W⟩` (zeros if nothing was added).
    #[must_use]
    pub fn means(&self) -> Vec<ArrayD<f64>> {
        let n = self.count.max(1) as f64;
        self.sums.iter().map(|s| s / n).collect()
    }
}

/// Accumulates the sufficient statistics `−∂E/∂W` of discrete factors from global states
/// laid out by one [`BlockSpec`]. It is also an [`AbstractObserver`], so a run adds every
/// observation of every chain in place ([`StatisticsCarry`]).
///
/// # Example
///
/// ```
/// use ndarray::arr1;
/// use thrml::*;
/// use thrml::train::FactorStatistics;
///
/// // One coupling s0·s1 with weight 0.5, both spins clamped to +1 and −1 in two chains.
/// let s = Node::many(NodeKind::SPIN, 2);
/// let f = DiscreteEBMFactor::new(
///     vec![Block::new(vec![s[0]])?, Block::new(vec![s[1]])?],
///     vec![],
///     arr1(&[0.5f32]).into_dyn(),
/// )?;
/// let blocks = vec![Block::new(s.clone())?];
/// let spec = BlockSpec::new(blocks.clone(), &default_node_shape_dtypes())?;
/// let state = vec![vec![Tensor::from(ndarray::arr2(&[[true, true], [true, false]]).into_dyn())]];
/// let global = block_state_to_global(&state, &spec)?;
/// let stats = FactorStatistics::new(&[f], &spec)?;
/// let mut sums = stats.zeros();
/// stats.accumulate(&global, &mut sums)?;
/// assert_eq!(sums.count, 2);
/// assert_eq!(sums.sums[0][[0]], 0.0); // (+1)(+1) + (+1)(−1)
/// # Ok::<(), thrml::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FactorStatistics {
    plans: Vec<FactorPlan>,
    slot_sizes: Vec<usize>,
    capture_final_state: bool,
}

/// The carry of a run observed by [`FactorStatistics`]: the running sums and, if asked for,
/// the free blocks' state at the last observation (the run's final state).
#[derive(Clone, Debug)]
pub struct StatisticsCarry {
    /// The running sums.
    pub sums: StatisticSums,
    /// The state of every free block at the last observation, `[chains, nodes]` per block
    /// (empty unless [`FactorStatistics::capturing_final_state`] was used).
    pub final_state: Vec<State>,
    /// The number of observations the run will make; the state is captured at the last.
    pub n_observations: usize,
}

impl FactorStatistics {
    /// The plan for `factors` over global states laid out by `spec`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] if a factor node is not in `spec`.
    pub fn new(factors: &[DiscreteEBMFactor], spec: &BlockSpec) -> Result<FactorStatistics> {
        let locate = |group: &crate::Block| -> Result<GroupLocation> {
            let mut slot = None;
            let positions = group
                .nodes()
                .iter()
                .map(|&n| {
                    let (s, p) = spec.location(n)?;
                    slot = Some(s);
                    Ok(p)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(GroupLocation {
                slot: slot.unwrap_or(0),
                positions,
            })
        };
        let plans = factors
            .iter()
            .map(|f| {
                let w = f.weights();
                let strides: Vec<usize> = w.strides().iter().map(|&s| s.unsigned_abs()).collect();
                Ok(FactorPlan {
                    spins: f
                        .spin_node_groups
                        .iter()
                        .map(locate)
                        .collect::<Result<_>>()?,
                    categories: f
                        .categorical_node_groups
                        .iter()
                        .enumerate()
                        .map(|(k, g)| {
                            Ok(CategoryAxis {
                                location: locate(g)?,
                                stride: strides[1 + k],
                                n_categories: w.shape()[1 + k],
                            })
                        })
                        .collect::<Result<_>>()?,
                    row_stride: strides[0],
                    batch: f.batch_size(),
                    shape: w.shape().to_vec(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FactorStatistics {
            plans,
            slot_sizes: spec.slot_sizes.clone(),
            capture_final_state: false,
        })
    }

    /// The same plan, also capturing the free blocks' final state when used as an observer.
    #[must_use]
    pub fn capturing_final_state(mut self) -> FactorStatistics {
        self.capture_final_state = true;
        self
    }

    /// Zero sums, one tensor per factor of its weight shape.
    #[must_use]
    pub fn zeros(&self) -> StatisticSums {
        StatisticSums {
            sums: self
                .plans
                .iter()
                .map(|p| ArrayD::zeros(IxDyn(&p.shape)))
                .collect(),
            count: 0,
        }
    }

    /// A zero carry for a run with `n_observations` observations.
    #[must_use]
    pub fn init(&self, n_observations: usize) -> StatisticsCarry {
        StatisticsCarry {
            sums: self.zeros(),
            final_state: Vec::new(),
            n_observations,
        }
    }

    /// Add the statistics of every chain of `global` (leaves `[chains, slot size]`, as laid
    /// out by the spec this plan was built with) to `sums`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the global state does not fit the spec or `sums` does not fit
    /// the factors; [`Error::ValueOutOfRange`] for a category outside its weight axis.
    pub fn accumulate(&self, global: &[State], sums: &mut StatisticSums) -> Result<()> {
        if sums.sums.len() != self.plans.len()
            || sums
                .sums
                .iter()
                .zip(&self.plans)
                .any(|(s, p)| s.shape() != p.shape.as_slice())
        {
            return Err(Error::Invalid(
                "statistic sums do not fit the factors; build them with FactorStatistics::zeros"
                    .into(),
            ));
        }
        let n_chains = global
            .first()
            .and_then(|s| s.first())
            .map_or(0, |t| t.shape()[0]);
        let slot = |slot: usize, want: &str| -> Result<&State> {
            global.get(slot).ok_or_else(|| {
                Error::Invalid(format!(
                    "global state has {} slots, {want} lives in slot {slot}",
                    global.len()
                ))
            })
        };
        for (plan, sum) in self.plans.iter().zip(&mut sums.sums) {
            let spins: Vec<(&[bool], usize, &[usize])> = plan
                .spins
                .iter()
                .map(|g| {
                    let values = slot(g.slot, "a spin group")?[0]
                        .as_slice::<bool>()
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "global slot {} must hold contiguous bool spin states",
                                g.slot
                            ))
                        })?;
                    Ok((values, self.slot_sizes[g.slot], g.positions.as_slice()))
                })
                .collect::<Result<_>>()?;
            let cats: Vec<(&[u8], usize, &CategoryAxis)> = plan
                .categories
                .iter()
                .map(|c| {
                    let g = &c.location;
                    let values = slot(g.slot, "a categorical group")?[0]
                        .as_slice::<u8>()
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "global slot {} must hold contiguous u8 categorical states",
                                g.slot
                            ))
                        })?;
                    Ok((values, self.slot_sizes[g.slot], c))
                })
                .collect::<Result<_>>()?;
            for &(values, size, _) in &spins {
                if values.len() != n_chains * size {
                    return Err(Error::Invalid(format!(
                        "a spin slot holds {} values, expected {n_chains} chains × {size}",
                        values.len()
                    )));
                }
            }
            for &(values, size, _) in &cats {
                if values.len() != n_chains * size {
                    return Err(Error::Invalid(format!(
                        "a categorical slot holds {} values, expected {n_chains} chains × {size}",
                        values.len()
                    )));
                }
            }
            let out = sum.as_slice_mut().expect("sums are standard layout");
            // Instance `b` only writes entries `b · row_stride ..`, so ranges of instances
            // are independent; each cell still adds its chains in order, so the sums do not
            // depend on how the ranges are split over threads.
            let chunk = CHUNK_INSTANCES.min(plan.batch.max(1));
            let work = |(i, out): (usize, &mut [f64])| -> Result<()> {
                let b0 = i * chunk;
                let b1 = (b0 + chunk).min(plan.batch);
                let local = |b: usize| b * plan.row_stride - b0 * plan.row_stride;
                match (spins.as_slice(), cats.as_slice()) {
                    ([(a, sa, pa)], []) => {
                        for c in 0..n_chains {
                            let a = &a[c * sa..(c + 1) * sa];
                            for b in b0..b1 {
                                out[local(b)] += if a[pa[b]] { 1.0 } else { -1.0 };
                            }
                        }
                    }
                    ([(a, sa, pa), (x, sx, px)], []) => {
                        for c in 0..n_chains {
                            let a = &a[c * sa..(c + 1) * sa];
                            let x = &x[c * sx..(c + 1) * sx];
                            for b in b0..b1 {
                                out[local(b)] += if a[pa[b]] == x[px[b]] { 1.0 } else { -1.0 };
                            }
                        }
                    }
                    _ => {
                        for c in 0..n_chains {
                            for b in b0..b1 {
                                let mut negative = false;
                                for &(values, size, positions) in &spins {
                                    negative ^= !values[c * size + positions[b]];
                                }
                                let mut idx = local(b);
                                for &(values, size, axis) in &cats {
                                    let v =
                                        usize::from(values[c * size + axis.location.positions[b]]);
                                    if v >= axis.n_categories {
                                        return Err(Error::ValueOutOfRange(format!(
                                            "a categorical node has state {v} in chain {c}, but its factor's axis has {} categories",
                                            axis.n_categories
                                        )));
                                    }
                                    idx += v * axis.stride;
                                }
                                out[idx] += if negative { -1.0 } else { 1.0 };
                            }
                        }
                    }
                }
                Ok(())
            };
            let width = chunk * plan.row_stride;
            if n_chains * plan.batch >= PARALLEL_MIN_WORK && plan.batch > chunk {
                out.par_chunks_mut(width).enumerate().try_for_each(work)?;
            } else {
                out.chunks_mut(width.max(1))
                    .enumerate()
                    .try_for_each(work)?;
            }
        }
        sums.count += n_chains;
        Ok(())
    }
}

impl AbstractObserver for FactorStatistics {
    type Carry = StatisticsCarry;
    type Output = ();

    fn check(&self, program: &BlockSamplingProgram) -> Result<()> {
        if program.gibbs_spec.slot_sizes != self.slot_sizes {
            return Err(Error::Invalid(
                "these factor statistics were planned for another program's block spec".into(),
            ));
        }
        Ok(())
    }

    fn observe(
        &self,
        program: &BlockSamplingProgram,
        global_state: &[State],
        carry: &mut StatisticsCarry,
        iteration: usize,
    ) -> Result<()> {
        self.accumulate(global_state, &mut carry.sums)?;
        if self.capture_final_state && iteration + 1 == carry.n_observations {
            carry.final_state = from_global_state(
                global_state,
                &program.gibbs_spec,
                &program.gibbs_spec.free_blocks,
            )?;
        }
        Ok(())
    }
}
