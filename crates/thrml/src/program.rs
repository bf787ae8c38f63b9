//! Block Gibbs programs: which blocks are free or clamped, and the compiled gather plans.
//!
//! [`BlockGibbsSpec`] divides the nodes into free *superblocks* (updated in order; the
//! blocks of one superblock are updated from the same state) and clamped blocks.
//! [`BlockSamplingProgram`] is compiled once from interaction groups: for every free block it
//! records which payload rows each node heads and where each tail state lives in the global
//! state, so that a sweep does no lookups.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::block::{Block, BlockSpec, to_u32};
use crate::error::{Error, Result};
use crate::fused::FusedPlan;
use crate::interaction::InteractionGroup;
use crate::pgm::{Node, NodeShapeDtypes};
use crate::sampler::{AbstractConditionalSampler, BlockInteraction, TailLocations};
use crate::state::{State, Tensor};
use rayon::prelude::*;

/// Blocks that are sampled at the same algorithmic time (from the same state), each by its
/// own sampler. A single block is a superblock of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperBlock(pub Vec<Block>);

impl From<Block> for SuperBlock {
    fn from(b: Block) -> Self {
        SuperBlock(vec![b])
    }
}

impl From<Vec<Block>> for SuperBlock {
    fn from(v: Vec<Block>) -> Self {
        SuperBlock(v)
    }
}

/// A [`BlockSpec`] over free blocks followed by clamped blocks, with a sampling order.
///
/// It dereferences to its [`BlockSpec`]: the global state of a program holds the free blocks
/// first, then the clamped ones.
#[derive(Clone, Debug)]
pub struct BlockGibbsSpec {
    spec: BlockSpec,
    /// The free blocks, flattened from the superblocks in order.
    pub free_blocks: Vec<Block>,
    /// For each superblock, the indices into `free_blocks` sampled at that step.
    pub sampling_order: Vec<Vec<usize>>,
    /// The clamped blocks.
    pub clamped_blocks: Vec<Block>,
    /// The superblocks.
    pub superblocks: Vec<SuperBlock>,
}

impl BlockGibbsSpec {
    /// A Gibbs spec from free superblocks (in sampling order) and clamped blocks.
    ///
    /// # Errors
    /// As [`BlockSpec::new`]: empty blocks, unknown kinds, or a node in two blocks.
    pub fn new<S: Into<SuperBlock>>(
        free_super_blocks: impl IntoIterator<Item = S>,
        clamped_blocks: Vec<Block>,
        node_shape_dtypes: &NodeShapeDtypes,
    ) -> Result<BlockGibbsSpec> {
        let superblocks: Vec<SuperBlock> = free_super_blocks.into_iter().map(Into::into).collect();
        let mut free_blocks = Vec::new();
        let mut sampling_order = Vec::new();
        for sb in &superblocks {
            let start = free_blocks.len();
            free_blocks.extend(sb.0.iter().cloned());
            sampling_order.push((start..free_blocks.len()).collect());
        }
        let all: Vec<Block> = free_blocks.iter().chain(&clamped_blocks).cloned().collect();
        let spec = BlockSpec::new(all, node_shape_dtypes)?;
        Ok(BlockGibbsSpec {
            spec,
            free_blocks,
            sampling_order,
            clamped_blocks,
            superblocks,
        })
    }

    /// The underlying block spec (free blocks, then clamped blocks).
    #[must_use]
    pub fn block_spec(&self) -> &BlockSpec {
        &self.spec
    }
}

impl std::ops::Deref for BlockGibbsSpec {
    type Target = BlockSpec;
    fn deref(&self) -> &BlockSpec {
        &self.spec
    }
}

/// A compiled block Gibbs program: spec, one sampler per free block, and per-block gather
/// plans built from interaction groups.
#[derive(Debug)]
pub struct BlockSamplingProgram {
    /// The division into free and clamped blocks.
    pub gibbs_spec: BlockGibbsSpec,
    /// One sampler per free block.
    pub samplers: Vec<Arc<dyn AbstractConditionalSampler>>,
    /// For each free block, the interaction groups that have head nodes in it, compiled.
    pub per_block_interactions: Vec<Vec<BlockInteraction>>,
    /// For each global slot and position, the exclusive bound on an integer state value
    /// that the program's interactions accept ([`ValueLimit::get`]; `None`: unbounded).
    pub value_limits: Vec<Vec<ValueLimit>>,
    /// The fused engine's plan (`None`: no block is fusable, or fused kernels are off).
    fused: Option<FusedPlan>,
    /// Whether runs use [`Self::fused`] ([`Self::set_fused_kernels`]).
    fused_enabled: AtomicBool,
}

impl BlockSamplingProgram {
    /// Compile a program.
    ///
    /// Besides building gather plans, this checks that there is one sampler per free block,
    /// that every tail node is free or clamped, that no two nodes of one superblock
    /// interact (that would silently sample the wrong distribution), that every use of an
    /// integer-valued node agrees on its range, and that each sampler accepts its block
    /// ([`AbstractConditionalSampler::validate`]).
    ///
    /// # Errors
    /// [`Error::SamplerCount`], [`Error::InteractionGroup`], [`Error::InteractingBlock`],
    /// [`Error::Categories`] or [`Error::Sampler`].
    pub fn new(
        gibbs_spec: BlockGibbsSpec,
        samplers: Vec<Arc<dyn AbstractConditionalSampler>>,
        interaction_groups: Vec<InteractionGroup>,
    ) -> Result<BlockSamplingProgram> {
        Self::compile(gibbs_spec, samplers, interaction_groups, true)
    }

    /// As [`BlockSamplingProgram::new`], but without the check that nodes of one superblock
    /// do not interact. Only for users who know their update rule tolerates it.
    ///
    /// # Errors
    /// As [`BlockSamplingProgram::new`], less [`Error::InteractingBlock`].
    pub fn new_allowing_interacting_superblocks(
        gibbs_spec: BlockGibbsSpec,
        samplers: Vec<Arc<dyn AbstractConditionalSampler>>,
        interaction_groups: Vec<InteractionGroup>,
    ) -> Result<BlockSamplingProgram> {
        Self::compile(gibbs_spec, samplers, interaction_groups, false)
    }

    fn compile(
        gibbs_spec: BlockGibbsSpec,
        samplers: Vec<Arc<dyn AbstractConditionalSampler>>,
        interaction_groups: Vec<InteractionGroup>,
        check_superblocks: bool,
    ) -> Result<BlockSamplingProgram> {
        let n_free = gibbs_spec.free_blocks.len();
        if samplers.len() != n_free {
            return Err(Error::SamplerCount {
                expected: n_free,
                got: samplers.len(),
            });
        }
        let spec: &BlockSpec = &gibbs_spec;
        // For each slot position: its free block and that block's superblock (`NONE`:
        // clamped), and the interaction group that first set its value limit.
        const NONE: u32 = u32::MAX;
        let dense =
            |v: u32| -> Vec<Vec<u32>> { spec.slot_sizes.iter().map(|&n| vec![v; n]).collect() };
        let (mut block_at, mut superblock_at, mut limit_owner) =
            (dense(NONE), dense(NONE), dense(NONE));
        for (s, order) in gibbs_spec.sampling_order.iter().enumerate() {
            for &b in order {
                let (slot, start) = spec.block_offsets[b];
                let len = gibbs_spec.free_blocks[b].len();
                block_at[slot][start..start + len].fill(to_u32(b));
                superblock_at[slot][start..start + len].fill(to_u32(s));
            }
        }
        let mut value_limits: Vec<Vec<ValueLimit>> = spec
            .slot_sizes
            .iter()
            .map(|&n| vec![ValueLimit::NONE; n])
            .collect();
        let mut per_block_interactions: Vec<Vec<BlockInteraction>> = vec![Vec::new(); n_free];
        let mut buckets: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n_free];
        for (gi, group) in interaction_groups.iter().enumerate() {
            let n_tails = group.tail_nodes.len();
            let (head_limit, tail_limits) = group.interaction.value_limits(n_tails);
            // Where each node of the group lives (`None`: neither free nor clamped), looked
            // up once.
            let locate = |block: &Block| -> Vec<Option<(u32, u32)>> {
                block
                    .nodes()
                    .iter()
                    .map(|&n| spec.location(n).ok().map(|(s, p)| (to_u32(s), to_u32(p))))
                    .collect()
            };
            let head_locs = locate(&group.head_nodes);
            let tail_locs: Vec<_> = group.tail_nodes.iter().map(locate).collect();
            let mut record_limit = |node: Node, loc: Option<(u32, u32)>, limit: Option<usize>| {
                let (Some(limit), Some((slot, pos))) = (limit, loc) else {
                    return Ok(());
                };
                let (slot, pos) = (slot as usize, pos as usize);
                let owner = &mut limit_owner[slot][pos];
                match value_limits[slot][pos].get() {
                    Some(prev) if prev != limit => Err(Error::Categories {
                        node: node.id(),
                        reason: format!(
                            "interaction group {owner} indexes it with {prev} categories but interaction group {gi} with {limit}"
                        ),
                    }),
                    _ => {
                        value_limits[slot][pos] = ValueLimit::new(limit);
                        if *owner == NONE {
                            *owner = to_u32(gi);
                        }
                        Ok(())
                    }
                }
            };
            for (r, &head) in group.head_nodes.nodes().iter().enumerate() {
                record_limit(head, head_locs[r], head_limit)?;
                for (t, tail) in group.tail_nodes.iter().enumerate() {
                    record_limit(
                        tail[r],
                        tail_locs[t][r],
                        tail_limits.get(t).copied().flatten(),
                    )?;
                }
                let Some((slot, pos)) = head_locs[r] else {
                    continue;
                };
                let (slot, pos) = (slot as usize, pos as usize);
                let b = block_at[slot][pos];
                if b == NONE {
                    continue;
                }
                let (b, s) = (b as usize, superblock_at[slot][pos]);
                if check_superblocks {
                    for (t, tail) in group.tail_nodes.iter().enumerate() {
                        if let Some((ts, tp)) = tail_locs[t][r]
                            && superblock_at[ts as usize][tp as usize] == s
                        {
                            return Err(Error::InteractingBlock {
                                a: head.id(),
                                a_kind: head.kind().name().to_owned(),
                                b: tail[r].id(),
                                b_kind: tail[r].kind().name().to_owned(),
                                group: gi,
                                superblock: s as usize,
                            });
                        }
                    }
                }
                buckets[b].push((to_u32(pos - spec.block_offsets[b].1), to_u32(r)));
            }
            for (b, bucket) in buckets.iter_mut().enumerate() {
                if bucket.is_empty() {
                    continue;
                }
                let n = gibbs_spec.free_blocks[b].len();
                bucket.sort_unstable();
                let mut offsets = vec![0u32; n + 1];
                for &(j, _) in bucket.iter() {
                    offsets[j as usize + 1] += 1;
                }
                for j in 0..n {
                    offsets[j + 1] += offsets[j];
                }
                let rows: Vec<u32> = bucket.iter().map(|&(_, r)| r).collect();
                let tails = group
                    .tail_nodes
                    .iter()
                    .zip(&tail_locs)
                    .enumerate()
                    .map(|(t, (tail, locs))| tail_locations(spec, gi, t, tail, locs, &rows))
                    .collect::<Result<Vec<_>>>()?;
                per_block_interactions[b].push(BlockInteraction::new(
                    group.interaction.clone(),
                    offsets,
                    rows,
                    tails,
                ));
                bucket.clear();
                bucket.shrink_to_fit();
            }
        }
        for (b, sampler) in samplers.iter().enumerate() {
            let layout = &spec.all_block_sds[b];
            sampler
                .validate(&per_block_interactions[b], spec, layout)
                .map_err(|reason| Error::Sampler { block: b, reason })?;
            // A node may head no interaction yet be read by one (as a tail) that indexes
            // with it: its sampler must draw from exactly that range.
            if let Some(k) = sampler.value_limit() {
                for &node in gibbs_spec.free_blocks[b].nodes() {
                    let (slot, pos) = spec.location(node)?;
                    if let Some(limit) = value_limits[slot][pos].get()
                        && limit != k
                    {
                        return Err(Error::Sampler {
                            block: b,
                            reason: format!(
                                "the sampler draws {k} categories but node {} (kind `{}`) is read by interaction group {} with {limit} categories",
                                node.id(),
                                node.kind(),
                                limit_owner[slot][pos]
                            ),
                        });
                    }
                }
            }
        }
        let mut program = BlockSamplingProgram {
            gibbs_spec,
            samplers,
            per_block_interactions,
            value_limits,
            fused: None,
            fused_enabled: AtomicBool::new(true),
        };
        let plan = FusedPlan::compile(&program);
        if plan.any() {
            program.fused = Some(plan);
        }
        Ok(program)
    }

    /// For each free block, whether runs update it with the fused SIMD kernels
    /// ([`crate::fused`]) rather than by calling its sampler.
    ///
    /// Blocks whose sampler is [`SpinGibbsConditional`](crate::SpinGibbsConditional) or
    /// [`CategoricalGibbsConditional`](crate::CategoricalGibbsConditional) and whose
    /// interactions are all [`DiscreteEBMInteraction`](crate::DiscreteEBMInteraction)s are
    /// fused; the others keep the generic path in the same run.
    #[must_use]
    pub fn fused_blocks(&self) -> Vec<bool> {
        match self.fused_plan() {
            Some(plan) => plan.blocks.iter().map(Option::is_some).collect(),
            None => vec![false; self.samplers.len()],
        }
    }

    /// Turn the fused kernels off (every block then calls its sampler, with the per-chain
    /// ChaCha streams) or back on (the default). Both paths sample the same distribution;
    /// the generic one is the reference the fused one is tested against.
    pub fn set_fused_kernels(&self, enabled: bool) {
        self.fused_enabled.store(enabled, Ordering::Relaxed);
    }

    /// The fused plan, if fused kernels are on and some block is fused.
    pub(crate) fn fused_plan(&self) -> Option<&FusedPlan> {
        if self.fused_enabled.load(Ordering::Relaxed) {
            self.fused.as_ref()
        } else {
            None
        }
    }

    /// Check integer state values in a global state against [`Self::value_limits`].
    ///
    /// # Errors
    /// [`Error::ValueOutOfRange`] naming the node and value.
    pub fn check_values(&self, global_state: &[State]) -> Result<()> {
        let spec: &BlockSpec = &self.gibbs_spec;
        for (slot, limits) in self.value_limits.iter().enumerate() {
            check_leaf_values(&global_state[slot][0], limits, |pos| {
                spec.node_at(slot, pos)
                    .expect("every position of a slot is in a block")
            })?;
        }
        Ok(())
    }

    /// [`Self::check_values`] of block states: `blocks[b]` is the state of block `b` of
    /// the spec (free blocks, then clamped ones), batch shape `[chains]`.
    pub(crate) fn check_block_values(&self, blocks: &[Cow<'_, State>]) -> Result<()> {
        let spec: &BlockSpec = &self.gibbs_spec;
        for (b, state) in blocks.iter().enumerate() {
            let (slot, start) = spec.block_offsets[b];
            let len = spec.blocks[b].len();
            let limits = &self.value_limits[slot][start..start + len];
            check_leaf_values(&state[0], limits, |pos| spec.blocks[b][pos])?;
        }
        Ok(())
    }
}

/// The exclusive bound on a node's integer state that a program's interactions accept,
/// or none, in four bytes.
///
/// ```
/// use thrml::ValueLimit;
///
/// assert_eq!(ValueLimit::new(5).get(), Some(5));
/// assert_eq!(ValueLimit::NONE.get(), None);
/// // Bounds past any 32-bit state are no bound.
/// assert_eq!(ValueLimit::new(usize::MAX).get(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueLimit(u32);

impl ValueLimit {
    /// No bound.
    pub const NONE: ValueLimit = ValueLimit(u32::MAX);

    /// States below `limit`. A bound of `2^32 − 1` or more, which no categorical axis
    /// reaches, is stored as no bound.
    #[must_use]
    pub fn new(limit: usize) -> ValueLimit {
        u32::try_from(limit).map_or(ValueLimit::NONE, ValueLimit)
    }

    /// The bound, if any.
    #[must_use]
    pub fn get(self) -> Option<usize> {
        (self != ValueLimit::NONE).then_some(self.0 as usize)
    }
}

/// Check a `[chains, n]` integer leaf against the value limits of its `n` positions;
/// `node(p)` names the node at position `p`.
fn check_leaf_values(
    leaf: &Tensor,
    limits: &[ValueLimit],
    node: impl Fn(usize) -> Node,
) -> Result<()> {
    let size = limits.len();
    if size == 0 || limits.iter().all(|l| l.get().is_none()) {
        return Ok(());
    }
    // The first out-of-range element (row-major); `u8` states, the common case, are
    // checked row by row without conversions.
    let bad = match leaf.as_slice::<u8>() {
        Some(values) => {
            // Limits as `u16` (256 where there is none, or where it is above any byte),
            // so that a row's check is one branch-free pass, and rows in parallel; only a
            // row that fails is searched for its first bad element.
            let lim: Vec<u16> = limits
                .iter()
                .map(|l| l.get().map_or(256, |l| l.min(256) as u16))
                .collect();
            let row_bad = |row: &[u8]| {
                row.iter()
                    .zip(&lim)
                    .fold(false, |bad, (&v, &l)| bad | (u16::from(v) >= l))
            };
            values
                .par_chunks_exact(size)
                .position_first(row_bad)
                .map(|chain| {
                    let row = &values[chain * size..(chain + 1) * size];
                    let pos = row.iter().zip(&lim).position(|(&v, &l)| u16::from(v) >= l);
                    chain * size + pos.expect("a bad row has a bad element")
                })
        }
        None => (0..leaf.shape().iter().product::<usize>()).position(|i| {
            limits[i % size].get().is_some_and(|l| {
                let v = leaf.get_f64(i);
                v < 0.0 || v >= l as f64
            })
        }),
    };
    match bad {
        Some(i) => {
            let (chain, pos) = (i / size, i % size);
            let node = node(pos);
            Err(Error::ValueOutOfRange(format!(
                "node {} (kind `{}`) has state {} in chain {chain}, but its interactions accept 0..{}",
                node.id(),
                node.kind(),
                leaf.get_f64(i),
                limits[pos].get().unwrap_or(0)
            )))
        }
        None => Ok(()),
    }
}

/// The locations of tail block `t` of interaction group `group` for the entries `rows`,
/// from the tail nodes' locations `locs` (`(slot, position)`, `None`: neither free nor
/// clamped).
fn tail_locations(
    spec: &BlockSpec,
    group: usize,
    t: usize,
    tail: &Block,
    locs: &[Option<(u32, u32)>],
    rows: &[u32],
) -> Result<TailLocations> {
    let mut slot = None;
    let positions = rows
        .iter()
        .map(|&r| {
            let Some((s, p)) = locs[r as usize] else {
                let node = tail[r as usize];
                return Err(Error::InteractionGroup(format!(
                    "interaction group {group}, tail block {t}: node {} (kind `{}`) is neither free nor clamped",
                    node.id(),
                    node.kind()
                )));
            };
            slot = Some(s as usize);
            Ok(p)
        })
        .collect::<Result<Vec<_>>>()?;
    let slot = slot.expect("a non-empty bucket");
    Ok(TailLocations {
        slot,
        slot_size: spec.slot_sizes[slot],
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgm::NodeKind;
    use ndarray::{ArrayD, IxDyn};

    /// The row-parallel check reports the first bad element in row-major order, bytes
    /// against limits above 255 never fail, and a node without a limit takes any byte.
    #[test]
    fn leaf_values_report_the_first_bad_element() {
        let nodes = Node::many(NodeKind::CATEGORICAL, 4);
        let limits = [Some(3), None, Some(300), Some(2)]
            .map(|l| l.map_or(ValueLimit::NONE, ValueLimit::new));
        let leaf =
            |values: Vec<u8>| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[3, 4]), values).unwrap());
        let check = |values: Vec<u8>| check_leaf_values(&leaf(values), &limits, |p| nodes[p]);
        check(vec![2, 255, 255, 1, 0, 9, 0, 0, 1, 1, 1, 1]).unwrap();
        let e = check(vec![0, 0, 0, 0, 0, 7, 9, 2, 3, 0, 0, 5]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::ValueOutOfRange(_)), "{e:?}");
        assert!(msg.contains(&format!("node {} ", nodes[3].id())), "{msg}");
        assert!(msg.contains("state 2 in chain 1"), "{msg}");
        assert!(msg.contains("0..2"), "{msg}");
        let e = check(vec![0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]).unwrap_err();
        assert!(e.to_string().contains("state 3 in chain 2"), "{e}");
    }
}
