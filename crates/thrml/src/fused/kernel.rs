//! The per-node kernels, generic over the number of chain lanes `W` and compiled for each
//! instruction set that [`multiversion`] dispatches between at run time.
//!
//! A tile of `W` chains stores a spin node as one `u64` whose bit `l` is chain `c0 + l`,
//! and a categorical node as `W` bytes. Every loop over `l in 0..W` is a vector loop.

use std::ops::Range;

use multiversion::multiversion;

use super::masks::NeighbourMasks;
use super::plan::{CatTable, FusedBlock, FusedPlan, GenTerm, Head, NODE_LANES, Terms, cat_bias_at};
use crate::kernels::aes::{BlockUpdate, WordKey, fill_words};
use crate::kernels::math::{MAX_CATEGORIES, sample_softmax_chains, spin_up};

/// Nodes whose random words are drawn together: a multiple of 4 (the words per AES block)
/// and of [`NODE_LANES`]; for one chain, 64 nodes are one batch of 16 AES blocks.
pub(crate) const CHUNK: usize = 64;

/// Per-worker buffers, allocated once per run.
#[derive(Debug)]
pub(crate) struct Scratch {
    words: Vec<u32>,
    theta: Vec<f32>,
}

impl Scratch {
    pub(crate) fn new(lanes: usize, max_k: usize) -> Scratch {
        Scratch {
            words: vec![0; CHUNK * lanes],
            // One-chain tiles draw `NODE_LANES` categoricals at a time.
            theta: vec![0.0; max_k.max(1) * lanes.max(NODE_LANES)],
        }
    }
}

/// The state a block update reads: spins as lane masks, categoricals as `W` bytes per node,
/// and in one-chain tiles that keep them the spins' neighbour masks by engine node
/// (`masks.rs`; empty otherwise).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileState<'a> {
    pub bits: &'a [u64],
    pub cats: &'a [u8],
    // Read by the AVX2 one-chain kernel only.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub masks: &'a [u32],
}

/// Where a block update writes: positions `nodes` of the block, as masks (spin heads) or
/// `W` bytes per node (categorical heads).
#[derive(Debug)]
pub(crate) struct Out<'a> {
    pub bits: &'a mut [u64],
    pub cats: &'a mut [u8],
}

impl<'a> Out<'a> {
    /// Positions `nodes` of a block with head `head` in buffers of masks (`bits`) and of
    /// `lanes` bytes per position (`cats`); the other buffer is left out (a spin-only
    /// program has no categorical buffers, and the reverse).
    pub(crate) fn of(
        head: Head,
        bits: &'a mut [u64],
        cats: &'a mut [u8],
        nodes: Range<usize>,
        lanes: usize,
    ) -> Out<'a> {
        match head {
            Head::Spin => Out {
                bits: &mut bits[nodes],
                cats: &mut [],
            },
            Head::Cat(_) => Out {
                bits: &mut [],
                cats: &mut cats[nodes.start * lanes..nodes.end * lanes],
            },
        }
    }
}

/// The random words' position: key, sweep and block, and the tile's first chain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draw<'a> {
    pub key: &'a WordKey,
    pub update: BlockUpdate,
    pub chain0: u32,
}

/// The neighbour masks that one-chain tiles of `plan` keep (`masks.rs`): those of every
/// block the AVX2 one-chain kernel could run, when on this CPU it runs at least one block
/// (the AVX-512 one-chain kernel reads a bitmap instead); `None` otherwise.
pub(crate) fn one_chain_masks(plan: &FusedPlan) -> Option<NeighbourMasks> {
    #[cfg(target_arch = "x86_64")]
    {
        let runs_avx2 = |fb: &FusedBlock| {
            super::avx2::supports::<1>(fb)
                && super::avx2::detected().is_some()
                && !super::avx512::runs_one_chain(fb, plan.n_spin)
        };
        let tracked = plan
            .blocks
            .iter()
            .flatten()
            .filter(|fb| super::avx2::supports::<1>(fb));
        if plan.blocks.iter().flatten().any(runs_avx2) {
            return NeighbourMasks::new(plan.n_spin, tracked);
        }
    }
    let _ = plan;
    None
}

/// Draw new states for positions `nodes` of block `fb` in the `W` chains of a tile.
///
/// Blocks with pairwise terms only (spins in any tile; categoricals of up to 8 categories
/// over tails of up to 8, in tiles of 16 or 64 chains) run on the AVX2 kernels where the
/// CPU has AVX2, FMA and AES (`avx2::supports`); where the CPU has AVX-512 and VAES,
/// pairwise spin blocks on the AVX-512 kernels (`avx512::supports`) and pairwise
/// categorical blocks of up to 16 categories over tails of up to 16, in tiles of 1, 16 or
/// 64 chains, on the AVX-512 categorical kernels (`avx512_cat::supports`) instead;
/// everything else on the portable kernel. All give the same bits.
pub(crate) fn update_nodes<const W: usize>(
    fb: &FusedBlock,
    draw: Draw<'_>,
    nodes: Range<usize>,
    state: TileState<'_>,
    out: Out<'_>,
    scratch: &mut Scratch,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let job = super::avx2::Job {
            terms: &fb.terms,
            start: fb.start,
            draw,
            nodes: nodes.clone(),
            state,
            out: Out {
                bits: &mut *out.bits,
                cats: &mut *out.cats,
            },
        };
        let Err(job) = super::avx512::try_update::<W>(fb, job) else {
            return;
        };
        let Err(job) = super::avx512_cat::try_update::<W>(fb, job) else {
            return;
        };
        if super::avx2::try_update::<W>(fb, job) {
            return;
        }
    }
    update_nodes_portable::<W>(fb, draw, nodes, state, out, scratch);
}

/// Whether some kernel on this CPU updates tiles in pairs ([`update_pair`]): the AVX-512
/// spin kernel. Elsewhere the engine keeps one tile per task, the finer split.
pub(crate) fn pairs_tiles() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::avx512::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`update_nodes`] of positions `nodes` of block `fb` in two tiles at once, where a
/// kernel updates tiles in pairs (the AVX-512 spin kernel): the same bits as two calls of
/// [`update_nodes`]. Returns `false`, having written nothing, where none does.
pub(crate) fn update_pair<const W: usize>(
    fb: &FusedBlock,
    draws: [Draw<'_>; 2],
    nodes: Range<usize>,
    states: [TileState<'_>; 2],
    outs: [Out<'_>; 2],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let ([d0, d1], [s0, s1], [o0, o1]) = (draws, states, outs);
        let job = |draw, state, out| super::avx2::Job {
            terms: &fb.terms,
            start: fb.start,
            draw,
            nodes: nodes.clone(),
            state,
            out,
        };
        super::avx512::try_update_pair::<W>(fb, [job(d0, s0, o0), job(d1, s1, o1)]).is_ok()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (fb, draws, nodes, states, outs);
        false
    }
}

/// [`update_nodes`] in portable code, vectorised by LLVM for each instruction set.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt+sse4.2+sse4.1+ssse3",
    "x86_64+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt+sse4.2+sse4.1+ssse3",
    "aarch64+neon"
))]
pub(crate) fn update_nodes_portable<const W: usize>(
    fb: &FusedBlock,
    draw: Draw<'_>,
    nodes: Range<usize>,
    state: TileState<'_>,
    out: Out<'_>,
    scratch: &mut Scratch,
) {
    let t = &fb.terms;
    let mut j0 = nodes.start;
    while j0 < nodes.end {
        let j1 = ((j0 / CHUNK + 1) * CHUNK).min(nodes.end);
        let words = &mut scratch.words[..(j1 - j0) * W];
        fill_words(
            draw.key,
            draw.update,
            j0 as u64..j1 as u64,
            draw.chain0..draw.chain0.wrapping_add(W as u32),
            words,
        );
        if W == 1 && fb.head == Head::Spin {
            // One chain: vectorise across the nodes of the block instead.
            for g0 in (j0..j1).step_by(NODE_LANES) {
                let w: [u32; NODE_LANES] =
                    std::array::from_fn(|l| words.get(g0 - j0 + l).copied().unwrap_or(0));
                let mask = spin_nodes_one_chain(t, g0, state, &w);
                for j in g0..(g0 + NODE_LANES).min(j1) {
                    out.bits[j - nodes.start] = (mask >> (j - g0)) & 1;
                }
            }
            j0 = j1;
            continue;
        }
        if let (1, Head::Cat(k)) = (W, fb.head) {
            // One chain: draw 16 nodes at a time, the nodes in the softmax's lanes.
            for g0 in (j0..j1).step_by(NODE_LANES) {
                let g1 = (g0 + NODE_LANES).min(j1);
                cat_nodes_one_chain(
                    t,
                    k,
                    g0,
                    state,
                    &words[g0 - j0..g1 - j0],
                    &mut scratch.theta,
                    &mut out.cats[g0 - nodes.start..g1 - nodes.start],
                );
            }
            j0 = j1;
            continue;
        }
        for j in j0..j1 {
            let w: &[u32; W] = words[(j - j0) * W..(j - j0 + 1) * W]
                .try_into()
                .expect("W words");
            let o = j - nodes.start;
            match fb.head {
                Head::Spin => out.bits[o] = spin_node::<W>(t, j, state, w),
                Head::Cat(k) => cat_node::<W>(
                    t,
                    k,
                    j,
                    state,
                    w,
                    &mut scratch.theta[..k * W],
                    &mut out.cats[o * W..(o + 1) * W],
                ),
            }
        }
        j0 = j1;
    }
}

/// `w` if `on`, else `+0.0`, without a branch (a data-dependent branch on a spin
/// mispredicts half the time; vector code turns this into a masked add).
#[inline(always)]
fn masked(w: f32, on: bool) -> f32 {
    f32::from_bits(w.to_bits() & 0u32.wrapping_sub(u32::from(on)))
}

/// `(±1, flat weight index)` of a general term in lane `l`.
#[inline(always)]
fn gen_entry<const W: usize>(
    t: &Terms,
    g: &GenTerm,
    state: TileState<'_>,
    l: usize,
) -> (f32, usize) {
    let mut negative = false;
    for &s in &t.gen_spin[g.spins.0 as usize..g.spins.1 as usize] {
        negative ^= (state.bits[s as usize] >> l) & 1 == 0;
    }
    let mut idx = g.w_off as usize;
    for &(c, stride) in &t.gen_cat[g.cats.0 as usize..g.cats.1 as usize] {
        idx += usize::from(state.cats[c as usize * W + l]) * stride as usize;
    }
    (if negative { -1.0 } else { 1.0 }, idx)
}

/// The new lane mask of spin `j`: `γ = c0 + Σ 2w·b + general terms`, up with `σ(2γ)`.
#[inline(always)]
fn spin_node<const W: usize>(t: &Terms, j: usize, state: TileState<'_>, words: &[u32; W]) -> u64 {
    let mut g = [t.bias[j]; W];
    for e in t.spin_off[j] as usize..t.spin_off[j + 1] as usize {
        let m = state.bits[t.spin_idx[e] as usize];
        let w2 = t.spin_w2[e];
        for (l, gl) in g.iter_mut().enumerate() {
            *gl += masked(w2, (m >> l) & 1 != 0);
        }
    }
    for gt in &t.general[t.gen_off[j] as usize..t.gen_off[j + 1] as usize] {
        for (l, gl) in g.iter_mut().enumerate() {
            let (sign, idx) = gen_entry::<W>(t, gt, state, l);
            *gl += sign * t.gen_w[idx];
        }
    }
    let mut up = [0u8; W];
    for l in 0..W {
        up[l] = u8::from(spin_up(g[l], words[l]));
    }
    pack_bits(&up)
}

/// Bit `l` of the result is `up[l]` (each 0 or 1), 8 lanes per multiply: the bytes of
/// `x · 0x0102_0408_1020_4080` gather one bit from each byte of `x` into the top byte.
#[inline(always)]
fn pack_bits<const W: usize>(up: &[u8; W]) -> u64 {
    if W < 8 {
        return up
            .iter()
            .enumerate()
            .fold(0, |m, (l, &b)| m | u64::from(b) << l);
    }
    let mut mask = 0u64;
    for (i, chunk) in up.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        mask |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
    }
    mask
}

/// The new spins (bit `l`) of block positions `g0 .. g0 + NODE_LANES` (`g0` a multiple of
/// `NODE_LANES`) in a one-chain tile: the pairwise fields are gathered row by row.
#[inline(always)]
fn spin_nodes_one_chain(
    t: &Terms,
    g0: usize,
    state: TileState<'_>,
    words: &[u32; NODE_LANES],
) -> u64 {
    let g = g0 / NODE_LANES;
    let len = t.spin_off.len() - 1;
    let mut field: [f32; NODE_LANES] =
        std::array::from_fn(|l| t.bias.get(g0 + l).copied().unwrap_or(0.0));
    let (r0, r1) = (t.ell_off[g] as usize, t.ell_off[g + 1] as usize);
    for (idx, w2) in t.ell_idx[r0..r1].iter().zip(&t.ell_w2[r0..r1]) {
        for l in 0..NODE_LANES {
            field[l] += masked(w2[l], state.bits[idx[l] as usize] & 1 != 0);
        }
    }
    for (l, f) in field.iter_mut().enumerate().take(len.saturating_sub(g0)) {
        let j = g0 + l;
        for gt in &t.general[t.gen_off[j] as usize..t.gen_off[j + 1] as usize] {
            let (sign, idx) = gen_entry::<1>(t, gt, state, 0);
            *f += sign * t.gen_w[idx];
        }
    }
    let mut up = [0u8; NODE_LANES];
    for l in 0..NODE_LANES {
        up[l] = u8::from(spin_up(field[l], words[l]));
    }
    pack_bits(&up)
}

/// Draw categorical `j` in every lane: `θ_k = bias_k + Σ W[k, x] + general terms`.
#[inline(always)]
fn cat_node<const W: usize>(
    t: &Terms,
    k: usize,
    j: usize,
    state: TileState<'_>,
    words: &[u32; W],
    theta: &mut [f32],
    out: &mut [u8],
) {
    for (c, row) in theta.chunks_exact_mut(W).enumerate() {
        row.fill(t.bias[cat_bias_at(j, c, k)]);
    }
    for e in t.cat_off[j] as usize..t.cat_off[j + 1] as usize {
        let node = t.cat_idx[e] as usize;
        let x: &[u8; W] = state.cats[node * W..(node + 1) * W]
            .try_into()
            .expect("W lanes");
        let table = t.cat_table(e);
        let kp = table.k as usize;
        let off = table.tab as usize;
        let tab = &t.cat_tab[off..off + k * kp];
        for v in 0..kp {
            for (c, row) in theta.chunks_exact_mut(W).enumerate() {
                let wv = tab[c * kp + v];
                if wv == 0.0 {
                    continue;
                }
                let row: &mut [f32; W] = row.try_into().expect("W lanes");
                for l in 0..W {
                    row[l] += masked(wv, usize::from(x[l]) == v);
                }
            }
        }
    }
    for gt in &t.general[t.gen_off[j] as usize..t.gen_off[j + 1] as usize] {
        for l in 0..W {
            let (sign, idx) = gen_entry::<W>(t, gt, state, l);
            for c in 0..k {
                theta[c * W + l] += sign * t.gen_w[idx + c * gt.head_stride as usize];
            }
        }
    }
    sample_softmax_chains(theta, words, out);
}

/// Draw categoricals `j0 .. j0 + m` of a one-chain tile (`m = words.len() ≤ NODE_LANES`,
/// `out[l]` for node `j0 + l`), each with the logits of [`cat_node`]: every node's logits
/// go into lane `l` of a `K × m` batch, which one [`sample_softmax_chains`] draws from.
///
/// A pairwise entry adds its table's column `x` (the tail's state) directly, `K` adds where
/// [`cat_node`] adds a masked weight for each of the `K · K'` cells. The sums differ at most
/// in the sign of a zero (the masked form adds `+0` where this one adds nothing), and no
/// draw depends on that sign: `max` and `θ − max` see `−0 = +0`, and `2^{±0} = 1`.
/// Up to 8 categories, a node's logits stay in registers (`K` is a constant there).
#[inline(always)]
fn cat_nodes_one_chain(
    t: &Terms,
    k: usize,
    j0: usize,
    state: TileState<'_>,
    words: &[u32],
    theta: &mut [f32],
    out: &mut [u8],
) {
    let m = words.len();
    let theta = &mut theta[..k * m];
    // Logits of more than 8 categories, reused by every node of the batch.
    let mut wide = [0.0f32; MAX_CATEGORIES];
    for l in 0..m {
        let logits = |acc: &mut [f32]| node_logits(t, j0 + l, state, acc);
        let mut put = |acc: &[f32]| {
            for (c, &a) in acc.iter().enumerate() {
                theta[c * m + l] = a;
            }
        };
        macro_rules! fixed {
            ($($k:literal)*) => {
                match k {
                    $($k => {
                        let mut acc = [0.0f32; $k];
                        logits(&mut acc);
                        put(&acc);
                    })*
                    _ => {
                        logits(&mut wide[..k]);
                        put(&wide[..k]);
                    }
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8);
    }
    sample_softmax_chains(theta, words, out);
}

/// The logits `acc[c]` (`c < K = acc.len()`) of categorical `j` in a one-chain tile: its
/// bias, each pairwise entry's table column of the tail's state, and its general terms.
#[inline(always)]
fn node_logits(t: &Terms, j: usize, state: TileState<'_>, acc: &mut [f32]) {
    let k = acc.len();
    for (c, a) in acc.iter_mut().enumerate() {
        *a = t.bias[cat_bias_at(j, c, k)];
    }
    let add_column = |acc: &mut [f32], x: usize, table: CatTable| {
        let kp = table.k as usize;
        if x < kp {
            let column = &t.cat_tab[table.tab as usize + x..][..(k - 1) * kp + 1];
            for (c, a) in acc.iter_mut().enumerate() {
                *a += column[c * kp];
            }
        }
    };
    let entries = t.cat_off[j] as usize..t.cat_off[j + 1] as usize;
    if t.cat_table.is_empty() && !entries.is_empty() {
        // One table for every entry (Potts): looked up once.
        let table = t.cat_table(0);
        for &tail in &t.cat_idx[entries] {
            add_column(acc, usize::from(state.cats[tail as usize]), table);
        }
    } else {
        for e in entries {
            add_column(
                acc,
                usize::from(state.cats[t.cat_idx[e] as usize]),
                t.cat_table(e),
            );
        }
    }
    for gt in &t.general[t.gen_off[j] as usize..t.gen_off[j + 1] as usize] {
        let (sign, idx) = gen_entry::<1>(t, gt, state, 0);
        let stride = gt.head_stride as usize;
        for (c, a) in acc.iter_mut().enumerate() {
            *a += sign * t.gen_w[idx + c * stride];
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Draw, Out, Scratch, TileState, pack_bits, update_nodes_portable};
    use crate::fused::plan::{FusedBlock, GenTerm, Head, Terms, cat_bias_at};
    use crate::kernels::aes::{BlockUpdate, WordKey};
    use crate::rng::Key;
    use rand::rand_core::Rng;

    /// A random block of `len` positions over `n_tails` tail nodes: spins (`k = None`) or
    /// categoricals of `k` categories whose tails have 2–8 categories; some zero weights,
    /// and for categoricals a position with every logit `−∞` and no tails.
    pub(crate) fn random_block(
        seed: u64,
        len: usize,
        n_tails: usize,
        k: Option<usize>,
    ) -> FusedBlock {
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let mut uniform = |scale: f32| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * scale;
        let mut t = Terms {
            gen_off: vec![0; len + 1],
            ..Terms::default()
        };
        let tail_k = |node: usize| 2 + node % 7;
        match k {
            None => {
                t.spin_off.push(0);
                for j in 0..len {
                    t.bias.push(uniform([2.0, 30.0, 200.0][j % 3]));
                    // Position 20 has more rows than a neighbour mask holds.
                    for e in 0..if j == 20 { 40 } else { (j * 7) % 23 } {
                        t.spin_idx.push(((j * 13 + e * 5) % n_tails) as u32);
                        t.spin_w2.push(if e % 5 == 4 { 0.0 } else { uniform(4.0) });
                    }
                    t.spin_off.push(t.spin_idx.len() as u32);
                }
            }
            Some(k) => {
                t.cat_off.push(0);
                for j in 0..len {
                    let b: Vec<f32> = (0..k)
                        .map(|_| {
                            if j == 3 {
                                f32::NEG_INFINITY
                            } else {
                                uniform(6.0)
                            }
                        })
                        .collect();
                    t.set_cat_bias(j, &b);
                    for e in 0..if j == 3 { 0 } else { (j * 3) % 6 } {
                        let node = (j * 11 + e * 3) % n_tails;
                        let kp = tail_k(node);
                        let w: Vec<f32> = (0..k * kp)
                            .map(|i| {
                                let (c, v) = (i / kp, i % kp);
                                if (c + v) % 3 == 0 { 0.0 } else { uniform(5.0) }
                            })
                            .collect();
                        t.push_cat_entry(node, k, kp, &w);
                    }
                    t.cat_off.push(t.cat_idx.len() as u32);
                }
            }
        }
        if k.is_none() {
            t.build_ell(len);
        }
        FusedBlock {
            block: 3,
            head: k.map_or(Head::Spin, Head::Cat),
            start: 0,
            len,
            terms: t,
        }
    }

    /// [`random_block`] of `k` categories with, in addition, every logit but the first
    /// `−∞` at position 6 and on every third position a general term of a spin tail and a
    /// 3-category tail. With `shared`, every pairwise entry names the first table (as in
    /// Potts, `Terms::cat_table` stays empty; tails with more categories than it has
    /// columns add nothing).
    fn cat_block(seed: u64, len: usize, n_tails: usize, k: usize, shared: bool) -> FusedBlock {
        let mut fb = random_block(seed, len, n_tails, Some(k));
        let mut rng = Key::new(seed + 1).chain_rngs(1).remove(0);
        let mut uniform = |scale: f32| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * scale;
        let t = &mut fb.terms;
        for c in 1..k {
            t.bias[cat_bias_at(6, c, k)] = f32::NEG_INFINITY;
        }
        if shared {
            t.cat_table.clear();
        }
        t.gen_off = vec![0];
        for j in 0..len {
            if j % 3 == 0 {
                let w_off = t.gen_w.len() as u32;
                t.gen_w.extend((0..k * 3).map(|_| uniform(3.0)));
                t.gen_spin.push((j % n_tails) as u32);
                t.gen_cat.push((((j * 7 + 1) % n_tails) as u32, 1));
                let (s, c) = (t.gen_spin.len() as u32, t.gen_cat.len() as u32);
                t.general.push(GenTerm {
                    w_off,
                    head_stride: 3,
                    spins: (s - 1, s),
                    cats: (c - 1, c),
                });
            }
            t.gen_off.push(t.general.len() as u32);
        }
        fb
    }

    /// One-chain tiles draw what lane `l` of a 16-chain tile draws for chain `l`, from the
    /// same state (one-chain categoricals go 16 nodes at a time, the nodes in the lanes).
    #[test]
    fn one_chain_categoricals_draw_what_the_chain_draws_in_a_batch() {
        const W: usize = 16;
        let cases = [(1, 5, 77), (2, 2, 40), (3, 9, 33), (4, 1, 20)];
        for ((seed, k, len), shared) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
            let n_tails = 50;
            let fb = cat_block(seed, len, n_tails, k, shared);
            let mut rng = Key::new(seed + 100).chain_rngs(1).remove(0);
            let bits: Vec<u64> = (0..n_tails).map(|_| rng.next_u64() & 0xffff).collect();
            // Tail `node` has 2 + node % 7 categories; the general terms read 3 of them.
            let cats: Vec<u8> = (0..n_tails * W)
                .map(|x| (rng.next_u32() % (2 + (x / W) as u32 % 7).min(3)) as u8)
                .collect();
            let key = WordKey::from_seed(seed);
            let update = BlockUpdate::new(4, 1);
            for nodes in [0..len, 3..len - 1, 17..18] {
                let n = nodes.len();
                let mut batch = vec![0u8; n * W];
                update_nodes_portable::<W>(
                    &fb,
                    Draw {
                        key: &key,
                        update,
                        chain0: 0,
                    },
                    nodes.clone(),
                    TileState {
                        bits: &bits,
                        cats: &cats,
                        masks: &[],
                    },
                    Out {
                        bits: &mut [],
                        cats: &mut batch,
                    },
                    &mut Scratch::new(W, k),
                );
                for l in 0..W {
                    let bits1: Vec<u64> = bits.iter().map(|b| b >> l & 1).collect();
                    let cats1: Vec<u8> = cats.iter().skip(l).step_by(W).copied().collect();
                    let mut one = vec![0u8; n];
                    update_nodes_portable::<1>(
                        &fb,
                        Draw {
                            key: &key,
                            update,
                            chain0: l as u32,
                        },
                        nodes.clone(),
                        TileState {
                            bits: &bits1,
                            cats: &cats1,
                            masks: &[],
                        },
                        Out {
                            bits: &mut [],
                            cats: &mut one,
                        },
                        &mut Scratch::new(1, k),
                    );
                    let lane: Vec<u8> = batch.iter().skip(l).step_by(W).copied().collect();
                    assert_eq!(
                        one, lane,
                        "seed {seed}, K {k}, shared {shared}, {nodes:?}, chain {l}"
                    );
                }
            }
        }
    }

    #[test]
    fn pack_bits_puts_lane_l_in_bit_l() {
        for m in 0..=u16::MAX {
            let up: [u8; 16] = std::array::from_fn(|l| u8::from(m >> l & 1 == 1));
            assert_eq!(pack_bits(&up), u64::from(m));
        }
        for m in [
            0u64,
            1,
            u64::MAX,
            0x8000_0000_0000_0001,
            0xdead_beef_0123_4567,
        ] {
            let up: [u8; 64] = std::array::from_fn(|l| u8::from(m >> l & 1 == 1));
            assert_eq!(pack_bits(&up), m);
        }
    }
}
