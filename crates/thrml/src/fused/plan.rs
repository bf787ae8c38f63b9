//! Compiling a [`BlockSamplingProgram`] into fused per-block plans.

use std::any::Any;

use crate::block::to_u32;
use crate::kernels::aes::MAX_BLOCKS;
use crate::models::discrete::{
    CategoricalGibbsConditional, DiscreteEBMInteraction, SpinGibbsConditional,
};
use crate::pgm::DType;
use crate::program::BlockSamplingProgram;

/// How the fused engine stores the nodes of one global slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// Scalar `bool` states: one bit per chain.
    Spin,
    /// Scalar `u8` states: one byte per chain.
    Cat,
    /// Anything else: only the generic path touches it.
    Other,
}

/// A global slot in the engine's numbering: position `p` is engine node `base + p` of the
/// slot's kind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotMap {
    pub kind: SlotKind,
    pub base: usize,
    pub size: usize,
}

/// The head of a fused block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Spins: `P(+1) = σ(2γ)`.
    Spin,
    /// Categoricals with this many categories: `P(k) ∝ exp(θ_k)`.
    Cat(usize),
}

/// A general discrete term `s_1 ⋯ s_M · W[(k,) c_1, …, c_N]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GenTerm {
    /// Offset of the term's weight row in [`Terms::gen_w`].
    pub w_off: u32,
    /// Stride of the head axis (categorical heads).
    pub head_stride: u32,
    /// Spin tails: `gen_spin[spins.0..spins.1]`.
    pub spins: (u32, u32),
    /// Categorical tails: `gen_cat[cats.0..cats.1]`, each `(engine node, weight stride)`.
    pub cats: (u32, u32),
}

/// A pairwise categorical table `W[c, v]` (`K × K'`) of [`Terms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CatTable {
    /// Offset of its weights in [`Terms::cat_tab`].
    pub tab: u32,
    /// Offset of its first 16-lane row in [`Terms::cat_rows`] (meaningful when `k ≤ 16`).
    pub row: u32,
    /// `K'`, the tail's number of categories.
    pub k: u32,
}

/// Where logit `c` of categorical position `j` (of `k` categories) is in [`Terms::bias`].
///
/// The biases are grouped by [`NODE_LANES`] (16) positions and category-major inside a
/// group, `bias[⌊j/16⌋][c][j mod 16]`: the one-chain kernel's sixteen lanes load a
/// group's `c`-th biases as one vector, with no transpose.
#[inline(always)]
pub(crate) const fn cat_bias_at(j: usize, c: usize, k: usize) -> usize {
    let l = NODE_LANES;
    (j / l) * l * k + c * l + j % l
}

#[cfg(test)]
impl Terms {
    /// Set the `values.len()` biases of categorical position `j` ([`cat_bias_at`]),
    /// growing the list by whole groups.
    pub(crate) fn set_cat_bias(&mut self, j: usize, values: &[f32]) {
        let k = values.len();
        let len = bias_len(Head::Cat(k), j + 1);
        if self.bias.len() < len {
            self.bias.resize(len, 0.0);
        }
        for (c, &v) in values.iter().enumerate() {
            self.bias[cat_bias_at(j, c, k)] = v;
        }
    }
}

/// The length of [`Terms::bias`] for `len` positions.
pub(crate) const fn bias_len(head: Head, len: usize) -> usize {
    match head {
        Head::Spin => len,
        Head::Cat(k) => len.next_multiple_of(NODE_LANES) * k,
    }
}

/// The terms of a block's nodes, CSR over the block's positions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Terms {
    /// Spin heads: `γ = c0 + Σ 2w · b` over pairwise spin tails (`b ∈ {0, 1}`), so
    /// `c0 = bias − Σ w`; `len` values. Categorical heads: `θ_c = bias_c + …`, grouped
    /// by sixteen positions ([`cat_bias_at`]), `⌈len / 16⌉ · 16 · K` values, zero past
    /// `len`.
    pub bias: Vec<f32>,
    /// Pairwise spin tails of spin heads: CSR offsets, engine nodes, doubled weights.
    pub spin_off: Vec<u32>,
    pub spin_idx: Vec<u32>,
    pub spin_w2: Vec<f32>,
    /// Pairwise categorical tails of categorical heads: CSR offsets, engine nodes and each
    /// entry's table, an index into `cat_tables` ([`Terms::cat_table`]). Identical tables
    /// are stored once, and where all entries share one table (a Potts model) `cat_table`
    /// is empty: 8 bytes per entry, or 4 with one table, where three lists of offsets took 16.
    pub cat_off: Vec<u32>,
    pub cat_idx: Vec<u32>,
    pub cat_table: Vec<u32>,
    pub cat_tables: Vec<CatTable>,
    /// The tables' weights, `K × K'` row-major each.
    pub cat_tab: Vec<f32>,
    /// The same tables as rows of 16 lanes: row `CatTable::row + c` holds `W[c, ·]`,
    /// zero-padded (for table lookups by permutation); filled only for tables with
    /// `K' ≤ 16`.
    pub cat_rows: Vec<[f32; NODE_LANES]>,
    /// The largest `K'` of the pairwise categorical tails (0 if none).
    pub cat_tail_max: usize,
    /// Pairwise spin tails of spin heads again, for one chain: groups of [`NODE_LANES`]
    /// consecutive nodes, each a list of rows of `NODE_LANES` (node, doubled weight), padded
    /// with weight 0; group `g` has rows `ell_off[g]..ell_off[g + 1]`.
    pub ell_off: Vec<u32>,
    pub ell_idx: Vec<[u32; NODE_LANES]>,
    pub ell_w2: Vec<[f32; NODE_LANES]>,
    /// The same rows' neighbours as bit positions in a packed bitmap of the spins (byte
    /// `i / 8`, bit `i mod 8` for node `i`), four rows of a group to a 64-lane chunk
    /// (AVX-512 byte lookups): lane `16r + l` of a chunk is row `r` of the chunk, lane
    /// `l`. Group `g` has chunks `ell4_off[g]..ell4_off[g + 1]`; the rows after a group's
    /// last have bit 0. Per lane: the low byte of the bitmap byte index `i / 8`, the
    /// 128-byte window `i / 1024` (saturated at 255) and the bit `1 << (i mod 8)`.
    pub ell4_off: Vec<u32>,
    pub ell4_byte: Vec<[u8; 4 * NODE_LANES]>,
    pub ell4_win: Vec<[u8; 4 * NODE_LANES]>,
    pub ell4_bit: Vec<[u8; 4 * NODE_LANES]>,
    /// Everything else.
    pub gen_off: Vec<u32>,
    pub general: Vec<GenTerm>,
    pub gen_spin: Vec<u32>,
    pub gen_cat: Vec<(u32, u32)>,
    pub gen_w: Vec<f32>,
    /// Whether every general term is a row of at most 16 weights over one categorical
    /// tail, with no spin tails (a spin head's coupling to a categorical): what the
    /// AVX-512 spin kernel adds with one permutation ([`Terms::classify_general`]).
    pub gen_cat_rows: bool,
    /// Whether every general term is `±W[·]` by the sign of one spin tail, with no
    /// categorical tails (a categorical head's coupling to a spin): what the AVX-512
    /// categorical kernel adds with one blend per category ([`Terms::classify_general`]).
    pub gen_spin_rows: bool,
}

/// Nodes of one block updated together when a tile holds a single chain.
pub(crate) const NODE_LANES: usize = 16;

/// One free block compiled for the fused kernels.
#[derive(Clone, Debug)]
pub(crate) struct FusedBlock {
    /// Its index among the free blocks (the block index of its random words).
    pub block: usize,
    pub head: Head,
    /// Engine node of its position 0 (a block is contiguous in its slot).
    pub start: usize,
    pub len: usize,
    pub terms: Terms,
}

/// A program compiled for the fused engine: where every node lives, and a plan for each
/// free block that the fused kernels can update (`None`: the generic path updates it).
#[derive(Clone, Debug)]
pub(crate) struct FusedPlan {
    pub slots: Vec<SlotMap>,
    pub n_spin: usize,
    pub n_cat: usize,
    pub blocks: Vec<Option<FusedBlock>>,
    /// The most categories of a fused categorical block (0 if none).
    pub max_k: usize,
    /// The most nodes of a fused spin block (0 if none).
    pub max_spin_len: usize,
    /// The most nodes of a fused categorical block (0 if none).
    pub max_cat_len: usize,
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The memory offsets `Σ_a i_a · strides[a]` of every index `i` of `shape`, in standard
/// (row-major) order.
fn element_offsets(shape: &[usize], strides: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize];
    for (&n, &s) in shape.iter().zip(strides) {
        out = out
            .iter()
            .flat_map(|&o| (0..n).map(move |i| o + i * s))
            .collect();
    }
    out
}

impl FusedPlan {
    /// The fused blocks among the free blocks `blocks`, in their order.
    pub(crate) fn fused<'a>(
        &'a self,
        blocks: impl IntoIterator<Item = &'a usize> + 'a,
    ) -> impl Iterator<Item = &'a FusedBlock> + 'a {
        blocks.into_iter().filter_map(|&b| self.blocks[b].as_ref())
    }

    /// Compile `program`. Free blocks whose sampler is the built-in
    /// [`SpinGibbsConditional`] or [`CategoricalGibbsConditional`], whose interactions are
    /// all [`DiscreteEBMInteraction`]s over scalar `bool`/`u8` nodes, and none of whose
    /// tails lie in the block's own superblock get a plan.
    /// Blocks with any other interaction (a continuous tail of a spin, for example, via
    /// `SpinContinuousInteraction`) get none and stay on the generic path.
    pub(crate) fn compile(program: &BlockSamplingProgram) -> FusedPlan {
        let spec = &program.gibbs_spec;
        let (mut n_spin, mut n_cat) = (0, 0);
        let slots: Vec<SlotMap> = spec
            .slot_sizes
            .iter()
            .enumerate()
            .map(|(slot, &size)| {
                let b = spec.block_to_global_slice_spec[slot][0];
                let (kind, counter) = match spec.all_block_sds[b].scalar_dtype() {
                    Some(DType::Bool) => (SlotKind::Spin, &mut n_spin),
                    Some(DType::U8) => (SlotKind::Cat, &mut n_cat),
                    _ => {
                        return SlotMap {
                            kind: SlotKind::Other,
                            base: 0,
                            size,
                        };
                    }
                };
                let base = *counter;
                *counter += size;
                SlotMap { kind, base, size }
            })
            .collect();
        // Superblock of every free engine node, per kind.
        let mut sb_spin = vec![u32::MAX; n_spin];
        let mut sb_cat = vec![u32::MAX; n_cat];
        for (s, order) in spec.sampling_order.iter().enumerate() {
            for &b in order {
                let (slot, start) = spec.block_offsets[b];
                let m = slots[slot];
                let table = match m.kind {
                    SlotKind::Spin => &mut sb_spin,
                    SlotKind::Cat => &mut sb_cat,
                    SlotKind::Other => continue,
                };
                for p in start..start + spec.free_blocks[b].len() {
                    table[m.base + p] = to_u32(s);
                }
            }
        }
        let superblock_of = |b: usize| {
            spec.sampling_order
                .iter()
                .position(|o| o.contains(&b))
                .expect("every free block is in the sampling order")
        };
        let mut blocks = Vec::with_capacity(spec.free_blocks.len());
        let (mut max_k, mut max_spin_len, mut max_cat_len) = (0, 0, 0);
        for b in 0..spec.free_blocks.len() {
            let (slot, start) = spec.block_offsets[b];
            let m = slots[slot];
            let sampler: &dyn Any = program.samplers[b].as_ref();
            if b >= MAX_BLOCKS as usize {
                blocks.push(None);
                continue;
            }
            let head = match m.kind {
                SlotKind::Spin if sampler.is::<SpinGibbsConditional>() => Head::Spin,
                SlotKind::Cat => match sampler.downcast_ref::<CategoricalGibbsConditional>() {
                    Some(c) => Head::Cat(c.n_categories),
                    None => {
                        blocks.push(None);
                        continue;
                    }
                },
                _ => {
                    blocks.push(None);
                    continue;
                }
            };
            let ctx = Ctx {
                slots: &slots,
                sb_spin: &sb_spin,
                sb_cat: &sb_cat,
                superblock: to_u32(superblock_of(b)),
            };
            let len = spec.free_blocks[b].len();
            let plan = ctx
                .terms(head, len, &program.per_block_interactions[b])
                .map(|terms| FusedBlock {
                    block: b,
                    head,
                    start: m.base + start,
                    len,
                    terms,
                });
            if let Some(p) = &plan {
                match head {
                    Head::Spin => max_spin_len = max_spin_len.max(p.len),
                    Head::Cat(k) => {
                        max_k = max_k.max(k);
                        max_cat_len = max_cat_len.max(p.len);
                    }
                }
            }
            blocks.push(plan);
        }
        FusedPlan {
            slots,
            n_spin,
            n_cat,
            blocks,
            max_k,
            max_spin_len,
            max_cat_len,
        }
    }

    /// Whether any free block has a fused plan.
    pub(crate) fn any(&self) -> bool {
        self.blocks.iter().any(Option::is_some)
    }
}

/// What term compilation needs to know about the program.
struct Ctx<'a> {
    slots: &'a [SlotMap],
    sb_spin: &'a [u32],
    sb_cat: &'a [u32],
    superblock: u32,
}

impl Ctx<'_> {
    /// Engine node of tail position `pos` in `slot`, if it has the wanted kind and is not
    /// updated in the same superblock.
    fn tail(&self, slot: usize, pos: usize, want: SlotKind) -> Option<u32> {
        let m = self.slots[slot];
        if m.kind != want {
            return None;
        }
        let idx = m.base + pos;
        let sb = match want {
            SlotKind::Spin => self.sb_spin[idx],
            _ => self.sb_cat[idx],
        };
        (sb != self.superblock).then(|| to_u32(idx))
    }

    /// The terms of a block, or `None` if an interaction is not fusable.
    fn terms(
        &self,
        head: Head,
        len: usize,
        interactions: &[crate::sampler::BlockInteraction],
    ) -> Option<Terms> {
        let mut t = Terms {
            bias: vec![0.0; bias_len(head, len)],
            ..Terms::default()
        };
        // Each interaction's payload, the strides of its weights in standard layout, its
        // flat weights, row stride and the offsets of a row's elements in standard order
        // (the rows below are copied out in that order), once per block.
        let discrete = interactions
            .iter()
            .map(|bi| {
                let d = bi.downcast::<DiscreteEBMInteraction>()?;
                let (flat, st) = d.flat_weights()?;
                let row_offsets = element_offsets(&d.weights.shape()[1..], &st[1..]);
                Some((d, strides(d.weights.shape()), flat, st[0], row_offsets))
            })
            .collect::<Option<Vec<_>>>()?;
        // The pairwise lists of the head's kind take at most every entry: reserve that
        // once instead of growing them by doubling (a transient 2× at compile time).
        let pairwise = |want_spin: usize| -> usize {
            interactions
                .iter()
                .zip(&discrete)
                .filter(|(bi, (d, ..))| bi.tails().len() == 1 && d.n_spin == want_spin)
                .map(|(bi, _)| bi.n_entries())
                .sum()
        };
        match head {
            Head::Spin => {
                let n = pairwise(1);
                t.spin_idx.reserve_exact(n);
                t.spin_w2.reserve_exact(n);
            }
            Head::Cat(_) => {
                let n = pairwise(0);
                t.cat_idx.reserve_exact(n);
                t.cat_table.reserve_exact(n);
            }
        }
        let mut row: Vec<f32> = Vec::new();
        let mut bits: Vec<u32> = Vec::new();
        let head_axes = usize::from(matches!(head, Head::Cat(_)));
        // Pairwise categorical tables by their bits: a Potts model's edges share one.
        let mut tables: std::collections::HashMap<Vec<u32>, u32> = Default::default();
        t.spin_off.push(0);
        t.cat_off.push(0);
        t.gen_off.push(0);
        for j in 0..len {
            let mut wsum = 0.0f32;
            for (bi, (d, st, flat, row_stride, row_offsets)) in interactions.iter().zip(&discrete) {
                let tails = bi.tails();
                let n_tails = tails.len();
                let shape = d.weights.shape();
                for e in bi.entries(j) {
                    let at = bi.row(e) * row_stride;
                    row.clear();
                    row.extend(row_offsets.iter().map(|&o| flat[at + o]));
                    let tail_node = |ti: usize| {
                        let want = if ti < d.n_spin {
                            SlotKind::Spin
                        } else {
                            SlotKind::Cat
                        };
                        self.tail(tails[ti].slot, tails[ti].position(e), want)
                    };
                    match head {
                        Head::Spin if n_tails == 0 => t.bias[j] += row[0],
                        Head::Spin if n_tails == 1 && d.n_spin == 1 => {
                            t.spin_idx.push(tail_node(0)?);
                            t.spin_w2.push(2.0 * row[0]);
                            wsum += row[0];
                        }
                        Head::Cat(k) if n_tails == 0 => {
                            for c in 0..k {
                                t.bias[cat_bias_at(j, c, k)] += row[c * st[1]];
                            }
                        }
                        Head::Cat(k) if n_tails == 1 && d.n_spin == 0 => {
                            let kp = shape[2];
                            t.cat_idx.push(tail_node(0)?);
                            bits.clear();
                            bits.extend(row.iter().map(|x| x.to_bits()));
                            // The previous entry's table first: runs of one table (all of
                            // a Potts model's) are then compared, not hashed.
                            let previous = t.cat_table.last().copied();
                            let id = match previous.filter(|&id| t.cat_table_is(id, kp, &bits)) {
                                Some(id) => id,
                                None => match tables.get(&bits[..]) {
                                    Some(&id) => id,
                                    None => {
                                        let id = t.add_cat_table(k, kp, &row);
                                        tables.insert(bits.clone(), id);
                                        id
                                    }
                                },
                            };
                            t.cat_table.push(id);
                        }
                        _ => {
                            let spins0 = to_u32(t.gen_spin.len());
                            for ti in 0..d.n_spin {
                                t.gen_spin.push(tail_node(ti)?);
                            }
                            let cats0 = to_u32(t.gen_cat.len());
                            for ti in d.n_spin..n_tails {
                                let axis = 1 + head_axes + ti - d.n_spin;
                                t.gen_cat.push((tail_node(ti)?, to_u32(st[axis])));
                            }
                            t.general.push(GenTerm {
                                w_off: to_u32(t.gen_w.len()),
                                head_stride: if head_axes == 1 { to_u32(st[1]) } else { 0 },
                                spins: (spins0, to_u32(t.gen_spin.len())),
                                cats: (cats0, to_u32(t.gen_cat.len())),
                            });
                            t.gen_w.extend_from_slice(&row);
                        }
                    }
                }
            }
            if head == Head::Spin {
                t.bias[j] -= wsum;
            }
            t.spin_off.push(to_u32(t.spin_idx.len()));
            t.cat_off.push(to_u32(t.cat_idx.len()));
            t.gen_off.push(to_u32(t.general.len()));
        }
        if head == Head::Spin {
            t.build_ell(len);
        }
        t.share_single_cat_table();
        t.shrink_to_fit();
        t.classify_general();
        Some(t)
    }
}

impl Terms {
    /// The table of pairwise categorical entry `e` (the one table, where `cat_table` is
    /// empty).
    #[inline]
    pub(crate) fn cat_table(&self, e: usize) -> CatTable {
        if self.cat_table.is_empty() {
            self.cat_tables[0]
        } else {
            self.cat_tables[self.cat_table[e] as usize]
        }
    }

    /// Store a `k × kp` pairwise categorical table (row-major `w`) and return its index.
    pub(crate) fn add_cat_table(&mut self, k: usize, kp: usize, w: &[f32]) -> u32 {
        debug_assert_eq!(w.len(), k * kp);
        let table = CatTable {
            tab: to_u32(self.cat_tab.len()),
            row: to_u32(self.cat_rows.len()),
            k: to_u32(kp),
        };
        self.cat_tab.extend_from_slice(w);
        if kp <= NODE_LANES {
            self.cat_rows.extend(
                (0..k).map(|c| std::array::from_fn(|v| if v < kp { w[c * kp + v] } else { 0.0 })),
            );
        }
        self.cat_tail_max = self.cat_tail_max.max(kp);
        self.cat_tables.push(table);
        to_u32(self.cat_tables.len() - 1)
    }

    /// Whether table `id` has `kp` columns and weights of exactly these bits (row-major).
    fn cat_table_is(&self, id: u32, kp: usize, bits: &[u32]) -> bool {
        let table = self.cat_tables[id as usize];
        table.k as usize == kp
            && self.cat_tab[table.tab as usize..][..bits.len()]
                .iter()
                .zip(bits)
                .all(|(x, &b)| x.to_bits() == b)
    }

    /// Drop the per-entry table indices when every entry has the one table.
    fn share_single_cat_table(&mut self) {
        if self.cat_tables.len() == 1 {
            self.cat_table = Vec::new();
        }
    }

    /// The weights of general term `i`: its row of `gen_w`, up to the next term's.
    pub(crate) fn gen_row(&self, i: usize) -> &[f32] {
        let end = self
            .general
            .get(i + 1)
            .map_or(self.gen_w.len(), |next| next.w_off as usize);
        &self.gen_w[self.general[i].w_off as usize..end]
    }

    /// Set [`Terms::gen_cat_rows`] and [`Terms::gen_spin_rows`] from the general terms.
    pub(crate) fn classify_general(&mut self) {
        self.gen_cat_rows = (0..self.general.len()).all(|i| {
            let g = &self.general[i];
            g.spins.0 == g.spins.1
                && g.cats.1 == g.cats.0 + 1
                && self.gen_cat[g.cats.0 as usize].1 == 1
                && self.gen_row(i).len() <= NODE_LANES
        });
        self.gen_spin_rows = self
            .general
            .iter()
            .all(|g| g.spins.1 == g.spins.0 + 1 && g.cats.0 == g.cats.1);
    }

    /// Append a pairwise categorical entry of tail `node` with its own `k × kp` table
    /// (row-major `w`), as the test blocks build them.
    #[cfg(test)]
    pub(crate) fn push_cat_entry(&mut self, node: usize, k: usize, kp: usize, w: &[f32]) {
        self.cat_idx.push(to_u32(node));
        let id = self.add_cat_table(k, kp, w);
        self.cat_table.push(id);
    }

    /// Free the spare capacity the lists grew with.
    fn shrink_to_fit(&mut self) {
        self.bias.shrink_to_fit();
        self.spin_off.shrink_to_fit();
        self.spin_idx.shrink_to_fit();
        self.spin_w2.shrink_to_fit();
        self.cat_off.shrink_to_fit();
        self.cat_idx.shrink_to_fit();
        self.cat_table.shrink_to_fit();
        self.cat_tables.shrink_to_fit();
        self.cat_tab.shrink_to_fit();
        self.cat_rows.shrink_to_fit();
        self.ell_off.shrink_to_fit();
        self.ell_idx.shrink_to_fit();
        self.ell_w2.shrink_to_fit();
        self.ell4_off.shrink_to_fit();
        self.ell4_byte.shrink_to_fit();
        self.ell4_win.shrink_to_fit();
        self.ell4_bit.shrink_to_fit();
        self.gen_off.shrink_to_fit();
        self.general.shrink_to_fit();
        self.gen_spin.shrink_to_fit();
        self.gen_cat.shrink_to_fit();
        self.gen_w.shrink_to_fit();
    }

    /// Fill the one-chain ELL rows from the pairwise spin CSR of `len` positions.
    pub(crate) fn build_ell(&mut self, len: usize) {
        let t = self;
        t.ell_off.push(0);
        for g0 in (0..len).step_by(NODE_LANES) {
            let nodes = g0..(g0 + NODE_LANES).min(len);
            let rows = nodes
                .clone()
                .map(|j| t.spin_off[j + 1] - t.spin_off[j])
                .max()
                .unwrap_or(0) as usize;
            for r in 0..rows {
                let mut idx = [0u32; NODE_LANES];
                let mut w2 = [0f32; NODE_LANES];
                for (l, j) in nodes.clone().enumerate() {
                    let e = t.spin_off[j] as usize + r;
                    if e < t.spin_off[j + 1] as usize {
                        idx[l] = t.spin_idx[e];
                        w2[l] = t.spin_w2[e];
                    }
                }
                t.ell_idx.push(idx);
                t.ell_w2.push(w2);
            }
            t.ell_off.push(to_u32(t.ell_idx.len()));
        }
        t.ell4_off.push(0);
        for g in 0..t.ell_off.len() - 1 {
            let rows = t.ell_off[g] as usize..t.ell_off[g + 1] as usize;
            for r0 in rows.clone().step_by(4) {
                let mut byte = [0u8; 4 * NODE_LANES];
                let mut win = [0u8; 4 * NODE_LANES];
                let mut bit = [0u8; 4 * NODE_LANES];
                for r in r0..(r0 + 4).min(rows.end) {
                    for (l, &i) in t.ell_idx[r].iter().enumerate() {
                        let lane = 16 * (r - r0) + l;
                        byte[lane] = (i / 8) as u8;
                        win[lane] = u8::try_from(i / 1024).unwrap_or(u8::MAX);
                        bit[lane] = 1 << (i % 8);
                    }
                }
                t.ell4_byte.push(byte);
                t.ell4_win.push(win);
                t.ell4_bit.push(bit);
            }
            t.ell4_off.push(to_u32(t.ell4_byte.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::{ArrayD, IxDyn};

    use super::{FusedPlan, Head};
    use crate::models::ebm::EBMFactor;
    use crate::{
        AbstractConditionalSampler, Block, BlockGibbsSpec, CategoricalGibbsConditional,
        FactorSamplingProgram, Node, NodeKind, SquareCategoricalEBMFactor,
        default_node_shape_dtypes,
    };

    /// The fused plan of a 3-state model on a ring of 8 categorical nodes (blocks: even and
    /// odd nodes), edge `e` with weights `w(e, a, b)`.
    fn ring_plan(w: impl Fn(usize, usize, usize) -> f32) -> FusedPlan {
        let (n, k) = (8, 3);
        let nodes = Node::many(NodeKind::CATEGORICAL, n);
        let heads = Block::new((0..n).map(|i| nodes[i]).collect()).unwrap();
        let tails = Block::new((0..n).map(|i| nodes[(i + 1) % n]).collect()).unwrap();
        let weights = ArrayD::from_shape_fn(IxDyn(&[n, k, k]), |i| w(i[0], i[1], i[2]));
        let factor = SquareCategoricalEBMFactor::new(vec![heads, tails], weights).unwrap();
        let factors: Vec<Arc<dyn EBMFactor>> = vec![Arc::new(factor)];
        let blocks: Vec<Block> = (0..2)
            .map(|p| Block::new((p..n).step_by(2).map(|i| nodes[i]).collect()).unwrap())
            .collect();
        let spec = BlockGibbsSpec::new(blocks, vec![], &default_node_shape_dtypes()).unwrap();
        let sampler: Arc<dyn AbstractConditionalSampler> =
            Arc::new(CategoricalGibbsConditional::new(k));
        let program =
            FactorSamplingProgram::new(spec, vec![sampler.clone(), sampler], &factors, vec![])
                .unwrap()
                .into_inner();
        FusedPlan::compile(&program)
    }

    #[test]
    fn a_shared_pairwise_table_is_stored_once_without_entry_indices() {
        let potts = |_: usize, a: usize, b: usize| if a == b { 1.0 } else { 0.0 };
        let plan = ring_plan(potts);
        for fb in plan.blocks.iter().map(|b| b.as_ref().expect("fused")) {
            assert_eq!(fb.head, Head::Cat(3));
            let t = &fb.terms;
            // Each node is the head of two entries (its two ring neighbours), one table.
            assert_eq!(t.cat_idx.len(), 2 * fb.len);
            assert_eq!(t.cat_tables.len(), 1);
            assert!(t.cat_table.is_empty());
            for e in 0..t.cat_idx.len() {
                let table = t.cat_table(e);
                assert_eq!(table.k, 3);
                let tab = &t.cat_tab[table.tab as usize..][..9];
                assert_eq!(tab, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
                for c in 0..3 {
                    let row = t.cat_rows[table.row as usize + c];
                    assert_eq!(&row[..3], &tab[3 * c..3 * c + 3]);
                    assert!(row[3..].iter().all(|&x| x == 0.0));
                }
            }
        }
    }

    #[test]
    fn distinct_pairwise_tables_are_indexed_per_entry() {
        // Edges 0..4 share one table, edges 4..8 have their own.
        let w = |e: usize, a: usize, b: usize| {
            let tag = if e < 4 { 0.0 } else { e as f32 };
            tag + (3 * a + b) as f32 * 0.5
        };
        let plan = ring_plan(w);
        for fb in plan.blocks.iter().map(|b| b.as_ref().expect("fused")) {
            let t = &fb.terms;
            assert_eq!(t.cat_table.len(), t.cat_idx.len());
            // Each block's nodes see edges 0..4 (shared) and two or three of 4..8.
            assert!(t.cat_tables.len() >= 3, "{} tables", t.cat_tables.len());
            assert_eq!(t.cat_tab.len(), 9 * t.cat_tables.len());
            // Every entry's table holds a tag common to its 9 weights, and tables with
            // equal weights are one table.
            for e in 0..t.cat_idx.len() {
                let table = t.cat_table(e);
                let tab = &t.cat_tab[table.tab as usize..][..9];
                let tag = tab[0];
                for (i, &x) in tab.iter().enumerate() {
                    // As a head or as a tail the table is W or its transpose.
                    let (a, b) = (i / 3, i % 3);
                    assert!(
                        x == tag + (3 * a + b) as f32 * 0.5 || x == tag + (3 * b + a) as f32 * 0.5,
                        "entry {e}, element {i}: {x}"
                    );
                }
            }
            let mut tabs: Vec<&[f32]> = t
                .cat_tables
                .iter()
                .map(|tb| &t.cat_tab[tb.tab as usize..][..9])
                .collect();
            let n = tabs.len();
            tabs.sort_by(|a, b| a.partial_cmp(b).unwrap());
            tabs.dedup();
            assert_eq!(tabs.len(), n, "a table stored twice");
        }
    }
}
