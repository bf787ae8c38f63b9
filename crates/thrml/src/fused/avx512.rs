//! The pairwise spin kernel written out in AVX-512 and VAES instructions (x86-64).
//!
//! With AVX-512 a neighbour's spins need no extraction at all: the 16 bits of 16 chains
//! are a mask register, and the coupling is one masked add of the broadcast weight. Per 16
//! chains (one `zmm` register):
//!
//! ```text
//! coupling j → i:   γ{bits_j} += 2J                                  1 instruction
//! random words:     AES-128 of 16 counters (VAES: 4 blocks per instruction), transposed
//!                   4 × 4 in each 128-bit lane, so that word w of chain c lands in lane c
//! decision:         fma(k, 2ˣ, k) < 2²⁴, x = −2 log₂e · γ, straight into a mask
//! ```
//!
//! The masked add computes `γ + 2J` where the bit is set and keeps `γ` where it is not;
//! the portable kernel adds `2J` or `+0`. The two agree bit for bit except that `−0 + 0`
//! is `+0`, and a field of either zero gives the same decision (`2^{±0} = 1` exactly in
//! `exp2_fma`), so the output masks are the portable kernel's.
//! `the_avx512_kernel_matches_the_portable_one` checks it, and the unit tests check the
//! AES words and the decisions against their scalar definitions.
//!
//! In tiles of 16 or 64 chains a spin may also couple to categoricals, one each per term
//! (`Terms::gen_cat_rows`, the mixed workload's spins): the term's row of at most 16
//! weights is one register, and the categorical's 16 state bytes select each chain's
//! weight with one permutation, added after the couplings as the portable kernel adds
//! its general terms.
//!
//! One node of a 64-chain tile is only four such chains of dependent adds, and four of the
//! decision's: too few to hide their latency, so `spin_nodes` takes two tiles at once
//! where the engine pairs them (eight of each; `try_update_pair`).
//!
//! One-chain tiles run on `spin_nodes_one_chain`: 16 nodes per register, their
//! neighbours' spins looked up in a bitmap of the tile with byte permutations (AVX-512
//! VBMI). Categorical blocks run on `avx512_cat.rs`.

use std::arch::x86_64::*;

use super::avx2::{Job, round_keys128};
use super::avx512_cat::bytes16;
use super::plan::{FusedBlock, Head, NODE_LANES};
use crate::kernels::math::{C1, C2, C3, C4, C5, SPIN_EXP_MAX, SPIN_EXP_MIN, SPIN_EXP_SCALE};

/// Whether this CPU runs the kernel: AVX-512 F/BW/VL/DQ, VAES and the AVX2 build's features,
/// detected once and cached by the standard library.
pub(super) fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("aes")
}

/// Whether this CPU runs the one-chain kernel: [`detected`] and AVX-512 VBMI (the byte
/// permutations).
fn one_chain_detected() -> bool {
    detected() && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// Most 128-byte windows of the spin bitmap that the one-chain kernel looks up: one-chain
/// tiles of at most `1024 · MAX_WINDOWS` spins run on it.
const MAX_WINDOWS: usize = 8;

/// Whether block `fb` in tiles of `W` chains runs here: spin blocks with pairwise terms
/// (and, in tiles of 16 or 64 chains, couplings to one categorical each:
/// [`Terms::gen_cat_rows`](super::plan::Terms::gen_cat_rows)), in tiles of 16 or 64
/// chains, or of one chain over at most `1024 · MAX_WINDOWS` spins.
pub(super) fn supports<const W: usize>(fb: &FusedBlock, n_spins: usize) -> bool {
    let general = fb.terms.general.is_empty() || (W > 1 && fb.terms.gen_cat_rows);
    general
        && fb.head == Head::Spin
        && (W == 16 || W == 64 || (W == 1 && n_spins <= 1024 * MAX_WINDOWS))
}

/// Whether this CPU runs one-chain block `fb` of a tile of `n_spins` spins here.
pub(super) fn runs_one_chain(fb: &FusedBlock, n_spins: usize) -> bool {
    supports::<1>(fb, n_spins) && one_chain_detected()
}

/// Run `job` for block `fb` on this kernel if the block is [`supports`]ed and the CPU
/// has the features; otherwise hand the job back untouched, for the next kernel.
// The job handed back is a few slices, moved to the next kernel; boxing it would
// allocate in every block update.
#[allow(clippy::result_large_err)]
pub(super) fn try_update<'a, const W: usize>(fb: &FusedBlock, job: Job<'a>) -> Result<(), Job<'a>> {
    let n_spins = job.state.bits.len();
    if !supports::<W>(fb, n_spins) || !detected() {
        return Err(job);
    }
    if W > 1 {
        run(spin_nodes::<W, 1>, [job]);
        return Ok(());
    }
    if !one_chain_detected() {
        return Err(job);
    }
    match n_spins.div_ceil(1024) {
        0 | 1 => run(spin_nodes_one_chain::<1>, job),
        2 => run(spin_nodes_one_chain::<2>, job),
        3 => run(spin_nodes_one_chain::<3>, job),
        4 => run(spin_nodes_one_chain::<4>, job),
        5 => run(spin_nodes_one_chain::<5>, job),
        6 => run(spin_nodes_one_chain::<6>, job),
        7 => run(spin_nodes_one_chain::<7>, job),
        _ => run(spin_nodes_one_chain::<MAX_WINDOWS>, job),
    }
    Ok(())
}

/// [`try_update`] of the same positions of block `fb` in two tiles of `W > 1` chains at
/// once (`jobs` differ only in their tiles' first chains, states and outputs), or both jobs
/// handed back untouched.
#[allow(clippy::result_large_err)]
pub(super) fn try_update_pair<'a, const W: usize>(
    fb: &FusedBlock,
    jobs: [Job<'a>; 2],
) -> Result<(), [Job<'a>; 2]> {
    if W == 1 || !supports::<W>(fb, jobs[0].state.bits.len()) || !detected() {
        return Err(jobs);
    }
    run(spin_nodes::<W, 2>, jobs);
    Ok(())
}

/// Call one of the AVX-512 kernels (this module's or `avx512_cat`'s), which [`detected`]
/// (and, for the one-chain kernel, `one_chain_detected`) said this CPU can run.
#[allow(unsafe_code)]
pub(super) fn run<A>(f: unsafe fn(A), args: A) {
    // SAFETY: `f` is a safe function apart from its `#[target_feature]`s, and the CPU has
    // them (checked by the caller with `detected`).
    unsafe { f(args) }
}

/// Sixteen lanes of `x`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn splat(x: f32) -> __m512 {
    _mm512_set1_ps(x)
}

/// The portable `exp2_fma` in 16 lanes (`x ∈ [SPIN_EXP_MIN, SPIN_EXP_MAX]`), bit for bit.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn exp2_fma16(x: __m512) -> __m512 {
    exp2_fma16_n([x])[0]
}

/// [`exp2_fma16`] of `N` registers, step by step across them.
///
/// Two operations are shorter than the portable code's but give its bits: `n`, the
/// integer nearest `x` (ties to even), is one `vrndscaleps` instead of `(x + R) − R`, and
/// `p · 2ⁿ` is one `vscalefps` instead of adding `n` to the exponent field (exact for
/// these `x`, where the result is a normal number).
#[inline]
#[target_feature(enable = "avx512f")]
fn exp2_fma16_n<const N: usize>(x: [__m512; N]) -> [__m512; N] {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let n = x.map(|x| _mm512_roundscale_ps::<NEAREST>(x));
    let f: [__m512; N] = std::array::from_fn(|i| _mm512_sub_ps(x[i], n[i]));
    let mut p = f.map(|f| _mm512_fmadd_ps(splat(C5), f, splat(C4)));
    for c in [C3, C2, C1, 1.0] {
        for (p, &f) in p.iter_mut().zip(&f) {
            *p = _mm512_fmadd_ps(*p, f, splat(c));
        }
    }
    std::array::from_fn(|i| _mm512_scalef_ps(p[i], n[i]))
}

/// `spin_up(γ_l, w_l)` in 16 lanes, as bit `l` of the result: the portable decision,
/// operation for operation.
#[inline]
#[target_feature(enable = "avx512f")]
fn spin_up16(gamma: __m512, words: __m512i) -> u16 {
    spin_up16_k([gamma], [uniform24(words)])[0]
}

/// The 24-bit uniforms `k = w >> 8` of the decision, as floats (exact).
#[inline]
#[target_feature(enable = "avx512f")]
fn uniform24(words: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(words))
}

/// [`spin_up16`] of `N` registers from the words' [`uniform24`]s `k` (which the kernel
/// computes with the words, ahead of the fields), each step of the decision across all of
/// them before the next, so that their `N` dependency chains sit side by side in the
/// instruction stream.
#[inline]
#[target_feature(enable = "avx512f")]
fn spin_up16_k<const N: usize>(gamma: [__m512; N], k: [__m512; N]) -> [u16; N] {
    let x = gamma.map(|g| _mm512_mul_ps(g, splat(SPIN_EXP_SCALE)));
    // `x > MIN ? x : MIN`, then `x < MAX ? x : MAX` (NaN → MIN): `vmaxps` and `vminps`
    // return their second operand when either is NaN, as the portable selects do.
    let x = x.map(|x| _mm512_max_ps(x, splat(SPIN_EXP_MIN)));
    let x = x.map(|x| _mm512_min_ps(x, splat(SPIN_EXP_MAX)));
    let t = exp2_fma16_n(x);
    std::array::from_fn(|i| {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_fmadd_ps(k[i], t[i], k[i]), splat(16_777_216.0))
    })
}

/// The 11 AES-128 round keys of `key`, each in the four 128-bit lanes of a `zmm`.
#[inline]
#[target_feature(enable = "avx512f,avx2,aes")]
pub(super) fn round_keys(key: [u8; 16]) -> [__m512i; 11] {
    round_keys128(key).map(|k| _mm512_broadcast_i32x4(k))
}

/// AES-128 of the four `zmm` registers of four counter blocks each.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn encrypt4(rk: &[__m512i; 11], x: [__m512i; 4]) -> [__m512i; 4] {
    let mut x = x.map(|b| _mm512_xor_si512(b, rk[0]));
    for k in &rk[1..10] {
        x = x.map(|b| _mm512_aesenc_epi128(b, *k));
    }
    x.map(|b| _mm512_aesenclast_epi128(b, rk[10]))
}

/// AES-128 of one `zmm` register of four counter blocks.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn encrypt1(rk: &[__m512i; 11], x: __m512i) -> __m512i {
    let mut x = _mm512_xor_si512(x, rk[0]);
    for k in &rk[1..10] {
        x = _mm512_aesenc_epi128(x, *k);
    }
    _mm512_aesenclast_epi128(x, rk[10])
}

/// The counter blocks of [`node_words`] for quad 0: nodes 0 .. 16 of chain `chain`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn node_blocks(chain: u32, hi: [u32; 2]) -> __m512i {
    let [h0, h1] = hi.map(|h| h as i32);
    let c = chain as i32;
    _mm512_setr_epi32(c, 0, h0, h1, c, 1, h0, h1, c, 2, h0, h1, c, 3, h0, h1)
}

/// The words of nodes `4 · quad .. 4 · quad + 16` in the chain of `base` (its
/// [`node_blocks`]), in order: the blocks' quad words plus `quad`, encrypted (two
/// instructions for the counters, where sixteen lanes set one by one took 48).
#[inline]
#[target_feature(enable = "avx512f,vaes")]
pub(super) fn node_words(rk: &[__m512i; 11], base: __m512i, quad: u32) -> __m512i {
    let x = _mm512_add_epi32(base, _mm512_maskz_set1_epi32(0x2222, quad as i32));
    encrypt1(rk, x)
}

/// The words of node quad `quad` for chains `c0 .. c0 + 16`: lane `l` of `result[w]` is
/// the word of node `4 · quad + w` in chain `c0 + l`.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
pub(super) fn chain_words(rk: &[__m512i; 11], c0: u32, quad: u32, hi: [u32; 2]) -> [__m512i; 4] {
    let x = chain_blocks(c0, quad, hi);
    transpose_words(encrypt4(rk, x))
}

/// The counter blocks of [`chain_words`], before encryption: register `i` holds the blocks
/// of chains `c0 + i`, `c0 + 4 + i`, `c0 + 8 + i`, `c0 + 12 + i`.
#[inline]
#[target_feature(enable = "avx512f")]
fn chain_blocks(c0: u32, quad: u32, hi: [u32; 2]) -> [__m512i; 4] {
    let [h0, h1] = hi.map(|h| h as i32);
    let q = quad as i32;
    let c = |d: u32| c0.wrapping_add(d) as i32;
    let base = _mm512_setr_epi32(
        c(0),
        q,
        h0,
        h1,
        c(4),
        q,
        h0,
        h1,
        c(8),
        q,
        h0,
        h1,
        c(12),
        q,
        h0,
        h1,
    );
    // (A loop, not `array::from_fn`: LLVM kept that closure out of line, a call per
    // register in the kernel's node loop.)
    let step = _mm512_setr_epi32(1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0);
    let mut x = [base; 4];
    for i in 1..4 {
        x[i] = _mm512_add_epi32(x[i - 1], step);
    }
    x
}

/// The words of [`chain_words`] from its encrypted blocks: a 4 × 4 transpose in each
/// 128-bit lane, so that lane `l` of `result[w]` is word `w` of chain `c0 + l`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose_words([x0, x1, x2, x3]: [__m512i; 4]) -> [__m512i; 4] {
    let t0 = _mm512_unpacklo_epi32(x0, x1);
    let t1 = _mm512_unpacklo_epi32(x2, x3);
    let t2 = _mm512_unpackhi_epi32(x0, x1);
    let t3 = _mm512_unpackhi_epi32(x2, x3);
    [
        _mm512_unpacklo_epi64(t0, t1),
        _mm512_unpackhi_epi64(t0, t1),
        _mm512_unpacklo_epi64(t2, t3),
        _mm512_unpackhi_epi64(t2, t3),
    ]
}

/// `acc[g] += 2J` in the lanes of group `g` whose chains have tail `tail` up: the first
/// `groups` 16-bit quarters of the tail's mask are the lane masks.
#[inline]
#[target_feature(enable = "avx512f")]
fn add_coupling(acc: &mut [__m512], quarters: &[[u16; 4]], tail: u32, w2: __m512) {
    for (a, &m) in acc.iter_mut().zip(&quarters[tail as usize]) {
        *a = _mm512_mask_add_ps(*a, m, *a, w2);
    }
}

/// `acc[g] += w2` under the four 16-bit lane masks of `q`, with the mask loads `$load`
/// (which set `k0 .. k3` from `[{q}]`); [`add_coupling4`] and [`add_coupling4_w`].
macro_rules! add_coupling4_asm {
    ($acc:expr, $q:expr, $w2:expr, $($load:literal),+) => {{
        let [a0, a1, a2, a3] = $acc else {
            unreachable!("four groups")
        };
        #[allow(unsafe_code)]
        // SAFETY: reads the 8 bytes of `q`, a live `&[u16; 4]`, and writes only the named
        // registers, with AVX-512 F and BW, which the callers' target features enable.
        unsafe {
            std::arch::asm!(
                $($load,)+
                "vaddps {a0} {{{k0}}}, {a0}, {w}",
                "vaddps {a1} {{{k1}}}, {a1}, {w}",
                "vaddps {a2} {{{k2}}}, {a2}, {w}",
                "vaddps {a3} {{{k3}}}, {a3}, {w}",
                q = in(reg) $q.as_ptr(),
                w = in(zmm_reg) $w2,
                a0 = inout(zmm_reg) *a0,
                a1 = inout(zmm_reg) *a1,
                a2 = inout(zmm_reg) *a2,
                a3 = inout(zmm_reg) *a3,
                k0 = out(kreg) _,
                k1 = out(kreg) _,
                k2 = out(kreg) _,
                k3 = out(kreg) _,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
    }};
}

/// [`add_coupling`] of the four groups of a 64-chain tile, in four mask registers of its
/// own: for a pair of tiles LLVM would load all eight masks first and spill one of the
/// seven registers. The mask is loaded as two 32-bit halves, each shifted once: on Zen 4
/// a mask load from memory takes a slot of the pipes that run the AES rounds beside the
/// adds, and in a micro-benchmark of 8 masked adds and 8 AES rounds two loads and two
/// shifts per tile took 10.9 cycles where four 16-bit loads took 12.8.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn add_coupling4(acc: &mut [__m512], q: &[u16; 4], w2: __m512) {
    add_coupling4_asm!(
        acc,
        q,
        w2,
        "kmovd {k0}, dword ptr [{q}]",
        "kmovd {k2}, dword ptr [{q} + 4]",
        "kshiftrd {k1}, {k0}, 16",
        "kshiftrd {k3}, {k2}, 16"
    );
}

/// [`add_coupling4`] with four 16-bit mask loads, for the couplings after a node's AES
/// rounds: with no rounds beside them, the loads no longer take the rounds' slots, and
/// the shifts are the slower part. In a micro-benchmark of a pair of tiles (random tails
/// of a Pegasus-sized state) a coupling took 2.4 ns this way and 2.9 ns with
/// [`add_coupling4`]; with eight AES rounds beside it, 3.35 ns and 3.1 ns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn add_coupling4_w(acc: &mut [__m512], q: &[u16; 4], w2: __m512) {
    add_coupling4_asm!(
        acc,
        q,
        w2,
        "kmovw {k0}, word ptr [{q}]",
        "kmovw {k1}, word ptr [{q} + 2]",
        "kmovw {k2}, word ptr [{q} + 4]",
        "kmovw {k3}, word ptr [{q} + 6]"
    );
}

/// The first four of eight registers.
#[inline]
fn first4<V: Copy>(v: [V; 8]) -> [V; 4] {
    [v[0], v[1], v[2], v[3]]
}

/// Most tiles that one call of [`spin_nodes`] updates together.
const MAX_TILES: usize = 2;

/// New lane masks of positions `nodes` of a spin block with pairwise terms only, in the
/// `T` tiles of `jobs` at once (the same block, positions and update; tiles of `W`
/// chains): `jobs[x].out.bits[j − nodes.start]` is the mask of position `j` in tile `x`,
/// exactly as the portable kernel computes it.
///
/// Each position's field is `T · W / 16` independent chains of masked adds, one per 16
/// chains, and its decision as many chains again; a node of one 64-chain tile has too
/// few of them to keep the out-of-order core busy (most of its time is their latency),
/// so the tiles of a batch are updated in pairs where they can be.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
fn spin_nodes<const W: usize, const T: usize>(jobs: [Job<'_>; T]) {
    assert!(W == 16 || W == 64, "tiles of 16 or 64 chains");
    assert!((1..=MAX_TILES).contains(&T), "one or two tiles");
    const MAX_GROUPS: usize = 4 * MAX_TILES;
    let groups = W / 16;
    let n_groups = T * groups;
    let Job {
        terms: t,
        draw,
        ref nodes,
        ..
    } = jobs[0];
    let nodes = nodes.clone();
    let rk = round_keys(draw.key.bytes());
    let hi = draw.update.counter_hi();
    // Each tile's masks as 16-bit quarters (little-endian: chains c0 .. c0 + 16 first),
    // each one a mask register.
    let quarters: [&[[u16; 4]]; T] =
        std::array::from_fn(|x| bytemuck::cast_slice(jobs[x].state.bits));
    let chain0: [u32; T] = std::array::from_fn(|x| jobs[x].draw.chain0);
    let cats: [&[u8]; T] = std::array::from_fn(|x| jobs[x].state.cats);
    // Group `f` is chains `16 · (f mod groups)` on of tile `f / groups`: its first chain,
    // and its uniforms for the nodes of quad `quad`.
    let group_chain0 = |f: usize| chain0[f / groups].wrapping_add(16 * (f % groups) as u32);
    let group_uniforms = |f: usize, quad: usize| {
        chain_words(&rk, group_chain0(f), quad as u32, hi).map(|w| uniform24(w))
    };
    let mut out_bits: [&mut [u64]; T] = jobs.map(|job| job.out.bits);
    // The uniforms of this quad's words (`uniforms[cur]`) and of the next's.
    let mut uniforms = [[[_mm512_setzero_ps(); 4]; MAX_GROUPS]; 2];
    let mut cur = 0;
    for (f, u) in uniforms[cur].iter_mut().enumerate().take(n_groups) {
        *u = group_uniforms(f, nodes.start / 4);
    }
    // Groups of the next quad's words per node of this quad.
    let per_node = n_groups.div_ceil(4);
    let mut j = nodes.start;
    while j < nodes.end {
        let quad_end = (j / 4 * 4 + 4).min(nodes.end);
        // The next quad's words, spread over this quad's nodes (the rest after it), so
        // that the AES rounds overlap its couplings.
        let more = quad_end < nodes.end;
        let mut done = 0;
        for jj in j..quad_end {
            // This node's share of the next quad's groups: their AES rounds run one per
            // coupling, beside the adds (the rounds on the multiply pipes, the adds on the
            // add pipes), and whatever rounds are left after the couplings.
            let share = if more {
                done..n_groups.min(per_node * (jj - j + 1))
            } else {
                done..done
            };
            let mut aes = [[_mm512_setzero_si512(); 4]; MAX_GROUPS / 4];
            for (k, f) in share.clone().enumerate() {
                let blocks = chain_blocks(group_chain0(f), (quad_end / 4) as u32, hi);
                aes[k] = blocks.map(|b| _mm512_xor_si512(b, rk[0]));
            }
            let n_aes = share.len();
            let mut round = 1;
            let e = t.spin_off[jj] as usize..t.spin_off[jj + 1] as usize;
            let mut acc = [splat(t.bias[jj]); MAX_GROUPS];
            let tails = &t.spin_idx[e.clone()];
            let w2s = &t.spin_w2[e];
            // Coupling `c` of the node in every tile, its 64-chain masks loaded by `$add4`.
            macro_rules! couple {
                ($add4:ident, $c:expr) => {{
                    let (i, w2) = (tails[$c], splat(w2s[$c]));
                    for (x, q) in quarters.iter().enumerate() {
                        if groups == 4 {
                            $add4(&mut acc[x * 4..x * 4 + 4], &q[i as usize], w2);
                        } else {
                            add_coupling(&mut acc[x * groups..(x + 1) * groups], q, i, w2);
                        }
                    }
                }};
            }
            // The couplings beside the AES rounds 1 ..= 9 (the last, round 10, follows
            // them), one round each, then the others.
            let n_beside = if n_aes > 0 { tails.len().min(9) } else { 0 };
            for c in 0..n_beside {
                couple!(add_coupling4, c);
                for a in aes.iter_mut().take(n_aes) {
                    *a = a.map(|b| _mm512_aesenc_epi128(b, rk[round]));
                }
                round += 1;
            }
            for c in n_beside..tails.len() {
                couple!(add_coupling4_w, c);
            }
            // Couplings to a categorical: its state's weight, one permutation per group.
            for i in t.gen_off[jj] as usize..t.gen_off[jj + 1] as usize {
                let w = t.gen_row(i);
                let on = ((1u32 << w.len()) - 1) as u16;
                #[allow(unsafe_code)]
                // SAFETY: reads the `w.len() ≤ 16` floats of `w` (`gen_cat_rows`).
                let row = unsafe { _mm512_maskz_loadu_ps(on, w.as_ptr()) };
                let node = t.gen_cat[t.general[i].cats.0 as usize].0 as usize;
                for (x, cats) in cats.iter().enumerate() {
                    for g in 0..groups {
                        let states = bytes16(&cats[node * W + 16 * g..]);
                        let a = &mut acc[x * groups + g];
                        *a = _mm512_add_ps(*a, _mm512_permutexvar_ps(states, row));
                    }
                }
            }
            for a in aes.iter_mut().take(n_aes) {
                for k in &rk[round..10] {
                    *a = a.map(|b| _mm512_aesenc_epi128(b, *k));
                }
                *a = a.map(|b| _mm512_aesenclast_epi128(b, rk[10]));
            }
            for (k, f) in share.clone().enumerate() {
                uniforms[1 - cur][f] = transpose_words(aes[k]).map(|w| uniform24(w));
            }
            done = share.end;
            let k: [__m512; MAX_GROUPS] = std::array::from_fn(|f| uniforms[cur][f][jj % 4]);
            let mut up = [0; MAX_GROUPS];
            match n_groups {
                8 => up = spin_up16_k(acc, k),
                4 => up[..4].copy_from_slice(&spin_up16_k::<4>(first4(acc), first4(k))),
                _ => {
                    for f in 0..n_groups {
                        up[f] = spin_up16_k([acc[f]], [k[f]])[0];
                    }
                }
            }
            for (x, bits) in out_bits.iter_mut().enumerate() {
                let mask =
                    (0..groups).fold(0u64, |m, g| m | u64::from(up[x * groups + g]) << (16 * g));
                bits[jj - nodes.start] = mask;
            }
        }
        if more {
            for (f, u) in uniforms[1 - cur]
                .iter_mut()
                .enumerate()
                .take(n_groups)
                .skip(done)
            {
                *u = group_uniforms(f, quad_end / 4);
            }
        }
        cur = 1 - cur;
        j = quad_end;
    }
}

/// New spins (`out.bits[j − nodes.start]` is 0 or 1) of positions `nodes` of a spin block
/// with pairwise terms only in a one-chain tile of at most `1024 · NW` spins: 16 positions
/// are the 16 lanes of a `zmm`, as in the AVX2 kernel, but the neighbours' spins come from
/// byte permutations instead of gathers.
///
/// The tile's spins are first packed into a bitmap (node `i` is bit `i mod 8` of byte
/// `i / 8`) held in `2 · NW` registers, 128 bytes per window. Four ELL rows (64
/// neighbours) at a time, window `w` replaces the byte indices of the lanes whose
/// neighbour lies in it by the bytes they look up, with one two-table byte permutation
/// under a mask (`vpermi2b`, two instructions per window with the compare), and one byte
/// test against the lanes' bits gives the 64 neighbours' spins as a mask; each row's 16
/// bits then mask the add of its doubled weights. Exactly the portable kernel's bits (see
/// the module docs on `−0 + 0`).
///
/// Per group of 16 positions with 15 rows (Pegasus(14), five windows) that is about 35
/// instructions a chunk of four rows and 45 for the words, decision and stores: about 12
/// per flip. Bounds checks in the chunk loop, a row loop of variable length, a zeroing
/// permutation per window and sixteen scalar counter inserts and stores had made it 29.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,vaes,avx2,fma,aes")]
fn spin_nodes_one_chain<const NW: usize>(job: Job<'_>) {
    const L: usize = NODE_LANES;
    let Job {
        terms: t,
        start: _,
        draw,
        nodes,
        state,
        out,
    } = job;
    assert!(state.bits.len() <= 1024 * NW, "a bitmap of {NW} windows");
    let mut map = [0u8; 128 * MAX_WINDOWS];
    let one = _mm512_set1_epi64(1);
    let mut spins = state.bits.chunks_exact(8);
    for (byte, eight) in map.iter_mut().zip(&mut spins) {
        let eight: [u64; 8] = eight.try_into().expect("8 spins");
        *byte = _mm512_test_epi64_mask(bytemuck::cast(eight), one);
    }
    let rest = spins.remainder();
    if !rest.is_empty() {
        map[state.bits.len() / 8] = rest
            .iter()
            .enumerate()
            .fold(0, |b, (i, &s)| b | u8::from(s & 1 == 1) << i);
    }
    let tables: [[__m512i; 2]; NW] = std::array::from_fn(|w| {
        let half = |h: usize| -> [u8; 64] {
            map[128 * w + 64 * h..128 * w + 64 * h + 64]
                .try_into()
                .expect("64 bytes")
        };
        [bytemuck::cast(half(0)), bytemuck::cast(half(1))]
    });
    let rk = round_keys(draw.key.bytes());
    let blocks = node_blocks(draw.chain0, draw.update.counter_hi());
    let window: [__m512i; NW] = std::array::from_fn(|w| _mm512_set1_epi8(w as i8));
    for g in nodes.start / L..nodes.end.div_ceil(L) {
        let g0 = g * L;
        let mut field: __m512 = match t.bias.get(g0..g0 + L) {
            Some(b) => bytemuck::cast(<[f32; L]>::try_from(b).expect("16 lanes")),
            None => {
                let b: [f32; L] =
                    std::array::from_fn(|l| t.bias.get(g0 + l).copied().unwrap_or(0.0));
                bytemuck::cast(b)
            }
        };
        let rows = t.ell_off[g] as usize..t.ell_off[g + 1] as usize;
        let chunks = t.ell4_off[g] as usize..t.ell4_off[g + 1] as usize;
        let chunk_rows = t.ell_w2[rows].chunks(4);
        let bytes = &t.ell4_byte[chunks.clone()];
        let wins = &t.ell4_win[chunks.clone()];
        let bits = &t.ell4_bit[chunks];
        for (((byte, win), bit), w2) in bytes.iter().zip(wins).zip(bits).zip(chunk_rows) {
            let win: __m512i = bytemuck::cast(*win);
            // Each window replaces the indices of its lanes by the bytes they look up
            // (lanes of no window keep their index, and have bit 0).
            let mut looked: __m512i = bytemuck::cast(*byte);
            for ([lo, hi], w) in tables.iter().zip(&window) {
                let here = _mm512_cmpeq_epi8_mask(win, *w);
                looked = _mm512_mask2_permutex2var_epi8(*lo, looked, here, *hi);
            }
            let on = _mm512_test_epi8_mask(looked, bytemuck::cast(*bit));
            // Row `r`'s 16 bits mask the add of its doubled weights (a whole chunk's four
            // rows unrolled).
            if let [a, b, c, d] = w2 {
                for (r, w2) in [a, b, c, d].into_iter().enumerate() {
                    let m = (on >> (16 * r)) as u16;
                    field = _mm512_mask_add_ps(field, m, field, bytemuck::cast(*w2));
                }
            } else {
                for (r, w2) in w2.iter().enumerate() {
                    let m = (on >> (16 * r)) as u16;
                    field = _mm512_mask_add_ps(field, m, field, bytemuck::cast(*w2));
                }
            }
        }
        let words = node_words(&rk, blocks, (g0 / 4) as u32);
        let up = spin_up16(field, words);
        let (lo, hi) = (g0.max(nodes.start), (g0 + L).min(nodes.end));
        if (lo, hi) == (g0, g0 + L) {
            // A whole group: its 16 bits as 0/1 words in two stores.
            let [a, b] = up.to_le_bytes().map(|m| _mm512_maskz_mov_epi64(m, one));
            let words: [u64; L] = bytemuck::cast([a, b]);
            out.bits[g0 - nodes.start..][..L].copy_from_slice(&words);
        } else {
            for j in lo..hi {
                out.bits[j - nodes.start] = u64::from(up >> (j - g0) & 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::arch::x86_64::*;

    use super::{
        chain_words, detected, exp2_fma16, one_chain_detected, round_keys, spin_up16, try_update,
        try_update_pair,
    };
    use crate::fused::avx2::Job;
    use crate::fused::kernel::tests::random_block;
    use crate::fused::kernel::{Draw, Out, Scratch, TileState, update_nodes_portable};
    use crate::fused::plan::{FusedBlock, GenTerm};
    use crate::kernels::aes::{BlockUpdate, WordKey, site_word};
    use crate::kernels::math::{SPIN_EXP_MAX, SPIN_EXP_MIN, exp2_fma, spin_up};
    use crate::rng::Key;
    use rand::rand_core::Rng;

    /// The 16 lanes of a vector of `u32`.
    #[target_feature(enable = "avx512f")]
    fn lanes(x: __m512i) -> [u32; 16] {
        let quarter = |q: __m128i| {
            [
                _mm_extract_epi32::<0>(q) as u32,
                _mm_extract_epi32::<1>(q) as u32,
                _mm_extract_epi32::<2>(q) as u32,
                _mm_extract_epi32::<3>(q) as u32,
            ]
        };
        let q = [
            quarter(_mm512_extracti32x4_epi32::<0>(x)),
            quarter(_mm512_extracti32x4_epi32::<1>(x)),
            quarter(_mm512_extracti32x4_epi32::<2>(x)),
            quarter(_mm512_extracti32x4_epi32::<3>(x)),
        ];
        std::array::from_fn(|l| q[l / 4][l % 4])
    }

    /// `chain_words` against `site_word`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
    fn words_agree((key, at, chain0, quad): (WordKey, BlockUpdate, u32, u32)) -> bool {
        let rk = round_keys(key.bytes());
        let got = chain_words(&rk, chain0, quad, at.counter_hi());
        (0..4).all(|w| {
            let expect: [u32; 16] = std::array::from_fn(|l| {
                site_word(
                    &key,
                    at,
                    chain0.wrapping_add(l as u32),
                    4 * u64::from(quad) + w as u64,
                )
            });
            lanes(got[w]) == expect
        })
    }

    /// `spin_up16` as bits, against the scalar decisions.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,vaes,avx2,fma,aes")]
    fn decisions((gamma, words): ([f32; 16], [u32; 16])) -> (u16, u16) {
        let [
            g0,
            g1,
            g2,
            g3,
            g4,
            g5,
            g6,
            g7,
            g8,
            g9,
            g10,
            g11,
            g12,
            g13,
            g14,
            g15,
        ] = gamma;
        let g = _mm512_setr_ps(
            g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11, g12, g13, g14, g15,
        );
        let w = words.map(|w| w as i32);
        let w = _mm512_setr_epi32(
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13],
            w[14], w[15],
        );
        let got = spin_up16(g, w);
        let expect = (0..16).fold(0u16, |m, l| m | u16::from(spin_up(gamma[l], words[l])) << l);
        (got, expect)
    }

    /// `f(args)` if this CPU runs the kernel, else `None`.
    #[allow(unsafe_code)]
    fn if_avx512<A, R>(f: unsafe fn(A) -> R, args: A) -> Option<R> {
        // SAFETY: only this module's functions, whose features `detected` checks.
        detected().then(|| unsafe { f(args) })
    }

    #[test]
    fn aes_words_match_the_scalar_definition() {
        for (seed, sweep, block, chain0, quad) in [
            (0u64, 0u64, 0u32, 0u32, 0u32),
            (11, 0x1_2345_6789, 7, 48, 3),
            (12, (1 << 48) - 1, (1 << 16) - 1, u32::MAX - 5, u32::MAX - 1),
        ] {
            let args = (
                WordKey::from_seed(seed),
                BlockUpdate::new(sweep, block),
                chain0,
                quad,
            );
            if let Some(ok) = if_avx512(words_agree, args) {
                assert!(ok, "seed {seed}, sweep {sweep}, block {block}");
            }
        }
    }

    /// `exp2_fma16` on 16 lanes of `x`, as bits.
    #[target_feature(enable = "avx512f")]
    fn exp2_bits(x: [f32; 16]) -> [u32; 16] {
        bytemuck::cast(exp2_fma16(bytemuck::cast(x)))
    }

    #[test]
    fn exp2_matches_the_portable_one_bit_for_bit() {
        // The 64 floats either side of every integer and half of [SPIN_EXP_MIN,
        // SPIN_EXP_MAX] (where the rounding ties are), and a fine grid over the range.
        let mut xs: Vec<f32> = (-250..=252)
            .flat_map(|h| {
                let c = h as f32 / 2.0;
                (-64..=64).map(move |d| f32::from_bits(c.to_bits().wrapping_add_signed(d)))
            })
            .chain((0..2_000_000).map(|i| SPIN_EXP_MIN + i as f32 * (251.0 / 2e6)))
            .filter(|x| (SPIN_EXP_MIN..=SPIN_EXP_MAX).contains(x))
            .collect();
        xs.extend([SPIN_EXP_MIN, SPIN_EXP_MAX, 0.0, -0.0, 1e-30, -1e-30]);
        for chunk in xs.chunks(16) {
            let mut x = [0.0f32; 16];
            x[..chunk.len()].copy_from_slice(chunk);
            let Some(got) = if_avx512(exp2_bits, x) else {
                return;
            };
            for (l, &x) in x.iter().enumerate() {
                assert_eq!(got[l], exp2_fma(x).to_bits(), "exp2 of {x:e}");
            }
        }
    }

    #[test]
    fn spin_decisions_match_the_scalar_ones() {
        let special = [
            0.0f32,
            -0.0,
            1e-40,
            -1e-40,
            43.3,
            -43.7,
            1e4,
            -1e4,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.5,
            -0.5,
            8.3,
        ];
        let mut rng = Key::new(7).chain_rngs(1).remove(0);
        for round in 0..4_000 {
            let gamma: [f32; 16] = if round < 16 {
                std::array::from_fn(|l| special[(l + round) % 16])
            } else {
                std::array::from_fn(|l| {
                    let scale = [0.01f32, 1.0, 10.0, 60.0][(round + l) % 4];
                    (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
                })
            };
            let words: [u32; 16] = std::array::from_fn(|_| rng.next_u32());
            if let Some((got, expect)) = if_avx512(decisions, (gamma, words)) {
                assert_eq!(got, expect, "fields {gamma:?}");
            }
        }
    }

    /// A random spin block of `len` positions whose tails spread over `n_tails` nodes.
    fn spread_block(seed: u64, len: usize, n_tails: usize) -> FusedBlock {
        let mut fb = random_block(seed, len, n_tails, None);
        let t = &mut fb.terms;
        let mut rng = Key::new(seed ^ 0x55).chain_rngs(1).remove(0);
        for i in &mut t.spin_idx {
            *i = (rng.next_u64() % n_tails as u64) as u32;
        }
        // The last tail node, so that every window is used.
        if let Some(i) = t.spin_idx.last_mut() {
            *i = n_tails as u32 - 1;
        }
        t.ell_off.clear();
        t.ell_idx.clear();
        t.ell_w2.clear();
        t.ell4_off.clear();
        t.ell4_byte.clear();
        t.ell4_win.clear();
        t.ell4_bit.clear();
        t.build_ell(len);
        fb
    }

    /// Categories of categorical node `c` in [`with_cat_couplings`]: 1 to 16.
    fn coupled_k(c: usize) -> usize {
        1 + (c * 5) % 16
    }

    /// `fb` with couplings to categoricals: position `j` gets `j mod 3` general terms,
    /// each a row of weights over one of `n_cat` categorical nodes (some of them 0).
    fn with_cat_couplings(mut fb: FusedBlock, seed: u64, n_cat: usize) -> FusedBlock {
        let mut rng = Key::new(seed ^ 0xca7).chain_rngs(1).remove(0);
        let t = &mut fb.terms;
        t.gen_off = vec![0];
        for j in 0..fb.len {
            for e in 0..j % 3 {
                let c = (j * 7 + e * 11) % n_cat;
                t.gen_cat.push((c as u32, 1));
                t.general.push(GenTerm {
                    w_off: t.gen_w.len() as u32,
                    head_stride: 0,
                    spins: (0, 0),
                    cats: (t.gen_cat.len() as u32 - 1, t.gen_cat.len() as u32),
                });
                for v in 0..coupled_k(c) {
                    let w = (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 6.0;
                    t.gen_w.push(if v % 4 == 3 { 0.0 } else { w });
                }
            }
            t.gen_off.push(t.general.len() as u32);
        }
        t.classify_general();
        assert!(t.gen_cat_rows, "rows over one categorical");
        fb
    }

    fn kernel_agrees<const W: usize>(seed: u64, len: usize, n_tails: usize, n_cat: usize) {
        let mut fb = spread_block(seed, len, n_tails);
        if n_cat > 0 {
            fb = with_cat_couplings(fb, seed, n_cat);
        }
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let bits: Vec<u64> = (0..n_tails)
            .map(|_| rng.next_u64() & (u64::MAX >> (64 - W)))
            .collect();
        let cats: Vec<u8> = (0..n_cat * W)
            .map(|i| (rng.next_u32() % coupled_k(i / W) as u32) as u8)
            .collect();
        let state = TileState {
            bits: &bits,
            cats: &cats,
            masks: &[],
        };
        let key = WordKey::from_seed(seed);
        // The one-chain kernel takes ranges starting at a multiple of 16 (as the engine
        // passes them); the others any range.
        let (a, b) = if W == 1 { (16, 32) } else { (3, 5) };
        for (chain0, nodes) in [(0, 0..fb.len), (48, a..fb.len - 2), (1000, b..b + 1)] {
            let draw = Draw {
                key: &key,
                update: BlockUpdate::new(9, 3),
                chain0,
            };
            let n = nodes.len();
            let (mut a, mut b) = (vec![0u64; n], vec![0u64; n]);
            let mut scratch = Scratch::new(W, 8);
            update_nodes_portable::<W>(
                &fb,
                draw,
                nodes.clone(),
                state,
                Out {
                    bits: &mut a,
                    cats: &mut [],
                },
                &mut scratch,
            );
            let job = Job {
                terms: &fb.terms,
                start: fb.start,
                draw,
                nodes: nodes.clone(),
                state,
                out: Out {
                    bits: &mut b,
                    cats: &mut [],
                },
            };
            if try_update::<W>(&fb, job).is_err() {
                assert!(!detected() || (W == 1 && !one_chain_detected()));
                return;
            }
            assert_eq!(a, b, "W = {W}, {n_tails} tails, nodes {nodes:?}");
            if n > 10 {
                let full = u64::MAX >> (64 - W);
                let mixed = if W == 1 {
                    a.contains(&0) && a.contains(&1)
                } else {
                    a.iter().any(|&m| m != 0 && m != full)
                };
                assert!(mixed, "not vacuous");
            }
        }
    }

    #[test]
    fn the_avx512_kernel_matches_the_portable_one() {
        for seed in [1, 2, 3] {
            kernel_agrees::<16>(seed, 37, 50, 0);
            kernel_agrees::<64>(seed + 10, 37, 50, 0);
            // Spins coupled to categoricals as well (the mixed workload's spins).
            kernel_agrees::<16>(seed + 20, 37, 50, 9);
            kernel_agrees::<64>(seed + 30, 37, 50, 9);
        }
    }

    #[test]
    fn the_pair_kernel_matches_the_portable_one_in_each_tile() {
        for seed in [4, 5] {
            pair_agrees::<16>(seed, 37, 50, 0);
            pair_agrees::<64>(seed + 10, 37, 50, 0);
            pair_agrees::<16>(seed + 20, 37, 50, 9);
            pair_agrees::<64>(seed + 30, 37, 50, 9);
        }
    }

    /// Two tiles of different spins and first chains updated together by
    /// `try_update_pair` give, in each tile, the portable kernel's masks.
    fn pair_agrees<const W: usize>(seed: u64, len: usize, n_tails: usize, n_cat: usize) {
        let mut fb = spread_block(seed, len, n_tails);
        if n_cat > 0 {
            fb = with_cat_couplings(fb, seed, n_cat);
        }
        let mut rng = Key::new(seed).chain_rngs(1).remove(0);
        let bits: [Vec<u64>; 2] = std::array::from_fn(|_| {
            (0..n_tails)
                .map(|_| rng.next_u64() & (u64::MAX >> (64 - W)))
                .collect()
        });
        let cats: [Vec<u8>; 2] = std::array::from_fn(|_| {
            (0..n_cat * W)
                .map(|i| (rng.next_u32() % coupled_k(i / W) as u32) as u8)
                .collect()
        });
        let state = |x: usize| TileState {
            bits: &bits[x],
            cats: &cats[x],
            masks: &[],
        };
        let key = WordKey::from_seed(seed);
        // Ranges that start and end inside a quad of nodes, and a single node.
        for (chain0, nodes) in [
            ([0, 64], 0..fb.len),
            ([448, 128], 3..fb.len - 2),
            ([1000, 0], 5..6),
        ] {
            let draw = |x: usize| Draw {
                key: &key,
                update: BlockUpdate::new(9, 3),
                chain0: chain0[x],
            };
            let n = nodes.len();
            let want: Vec<Vec<u64>> = (0..2)
                .map(|x| {
                    let mut a = vec![0u64; n];
                    let out = Out {
                        bits: &mut a,
                        cats: &mut [],
                    };
                    let mut scratch = Scratch::new(W, 8);
                    update_nodes_portable::<W>(
                        &fb,
                        draw(x),
                        nodes.clone(),
                        state(x),
                        out,
                        &mut scratch,
                    );
                    a
                })
                .collect();
            let (mut b0, mut b1) = (vec![0u64; n], vec![0u64; n]);
            let job = |x: usize, bits| Job {
                terms: &fb.terms,
                start: fb.start,
                draw: draw(x),
                nodes: nodes.clone(),
                state: state(x),
                out: Out {
                    bits,
                    cats: &mut [],
                },
            };
            if try_update_pair::<W>(&fb, [job(0, &mut b0), job(1, &mut b1)]).is_err() {
                assert!(!detected());
                return;
            }
            assert_eq!([&want[0], &want[1]], [&b0, &b1], "W = {W}, nodes {nodes:?}");
            if n > 10 {
                assert_ne!(want[0], want[1], "not vacuous");
            }
        }
    }

    #[test]
    fn the_one_chain_kernel_matches_the_portable_one() {
        // One window, a partial last bitmap byte, several windows, the most windows.
        for (seed, len, n_tails) in [
            (1, 37, 50),
            (2, 100, 1021),
            (3, 203, 1025),
            (4, 300, 5000),
            (5, 90, 8192),
        ] {
            kernel_agrees::<1>(seed, len, n_tails, 0);
        }
    }

    #[test]
    fn larger_one_chain_tiles_are_handed_back() {
        let fb = spread_block(6, 40, 8193);
        assert!(!super::supports::<1>(&fb, 8193));
        assert!(super::supports::<1>(&fb, 8192));
        assert!(super::supports::<16>(&fb, 8193));
    }
}
