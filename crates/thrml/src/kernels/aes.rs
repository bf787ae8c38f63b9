//! AES-128 in counter mode: counter-based random words for the fused kernels.
//!
//! AES-128 (FIPS-197) is a keyed bijection of 128-bit blocks; encrypting a counter gives a
//! pseudo-random function of the counter whose outputs are indistinguishable from random
//! by every known statistical test (it is Random123's `AESNI4x32` generator, which passes
//! TestU01's BigCrush, and the PRNG of NIST SP 800-90A's `CTR_DRBG`). There is no generator
//! state: every output is a pure function of `(key, counter)`, which is what lets a kernel
//! draw the random bits of any chain, sweep, block and node on any thread, in any order,
//! and get the same answer.
//!
//! # Randomness is a function of position
//!
//! The 32 random bits that update node `j` of free block `b` in chain `c` during sweep `t`
//! are
//!
//! ```text
//! key     = the first 16 bytes of the run's Key
//! counter = [c, j / 4, t mod 2³², (t >> 32) | (b << 16)]     four u32, little-endian bytes
//! word    = AES-128(key, counter)[j % 4]                     four u32, little-endian bytes
//! ```
//!
//! One AES block yields four words; they go to **four consecutive nodes** `4q .. 4q + 4`
//! of the block (same chain, sweep and block), so a single chain uses all four words, and a
//! batch of chains transposes 4 × 4 words per block into the chain-minor layout.
//!
//! Limits: chains `< 2³²`, nodes per block `< 2³⁴`, sweeps `< 2⁴⁸`, blocks `< 2¹⁶`
//! ([`BlockUpdate::new`] checks the last two).
//!
//! The words do not depend on the number of chains, on how chains or nodes are split over
//! threads or tiles, on the SIMD width or on the AES implementation: [`fill_words`] on
//! any sub-rectangle of (nodes × chains) returns exactly the corresponding
//! [`site_word`]s, and the fused engine's AVX2 kernels compute the same words in registers
//! with the AES instructions.
//!
//! # Uniforms
//!
//! [`u01_f32`] keeps the top 24 bits of a word: `k · 2⁻²⁴` with `k` uniform in
//! `0 .. 2²⁴`, every value exact in `f32`, range `[0, 1 − 2⁻²⁴]`. For any `p ∈ [0, 1]`,
//! `P(u01_f32(w) < p) = ⌈p · 2²⁴⌉ / 2²⁴`, within `2⁻²⁴ ≈ 6.0e-8` of `p`, exactly 0 for
//! `p = 0` and exactly 1 for `p = 1`. [`u01_f64`] uses all 32 bits: `w · 2⁻³²`,
//! resolution `2⁻³² ≈ 2.3e-10`.
//!
//! # Cost
//!
//! Ten AES rounds per four words. With the x86 AES instructions (AES-NI, and VAES for two
//! blocks per 256-bit instruction) a round is one instruction per block, so a word costs
//! about 3 instructions: measured on one core of the development machine (AMD EPYC,
//! Zen 3, 3.0 GHz, AVX2 + VAES), 0.27 ns per word in registers, against 0.82 ns for
//! Philox4x32-10 written in AVX2 (its 32 × 32 → 64-bit multiplies need two `vpmuludq`,
//! shifts and blends per 8 lanes) and about 1 ns for the crate's per-chain ChaCha8 streams.
//! [`fill_words`] uses the [`aes`] crate, which picks AES-NI or the ARMv8 AES
//! instructions at run time and a constant-time software AES elsewhere; the fused kernels
//! compute the words in registers instead (`fused/avx2.rs`).
//! `cargo bench -p thrml --bench kernels -- words` times [`fill_words`].

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

use crate::rng::Key;

/// Blocks encrypted per call of the AES implementation in [`fill_words`] (enough for the
/// instruction-level parallelism of AES-NI and VAES). The value never changes any output.
const FILL_BLOCKS: usize = 16;

/// Exclusive bound on a sweep index in a [`BlockUpdate`].
pub const MAX_SWEEPS: u64 = 1 << 48;
/// Exclusive bound on a block index in a [`BlockUpdate`].
pub const MAX_BLOCKS: u32 = 1 << 16;

/// The 128-bit AES key of a run, with its expanded key schedule.
#[derive(Clone)]
pub struct WordKey {
    bytes: [u8; 16],
    cipher: Aes128,
}

impl std::fmt::Debug for WordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WordKey").field(&self.bytes).finish()
    }
}

impl PartialEq for WordKey {
    fn eq(&self, other: &WordKey) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for WordKey {}

impl WordKey {
    /// A key from its 16 bytes, used verbatim.
    #[must_use]
    pub fn new(bytes: [u8; 16]) -> WordKey {
        WordKey {
            bytes,
            cipher: Aes128::new(&Array::from(bytes)),
        }
    }

    /// The key of `Key::new(seed)`.
    #[must_use]
    pub fn from_seed(seed: u64) -> WordKey {
        WordKey::from(Key::new(seed))
    }

    /// The 16 key bytes.
    #[must_use]
    pub const fn bytes(&self) -> [u8; 16] {
        self.bytes
    }

    /// AES-128 of one counter block, as four little-endian words.
    ///
    /// # Example
    ///
    /// ```
    /// use thrml::kernels::aes::WordKey;
    /// // FIPS-197, appendix C.1.
    /// let key = WordKey::new(std::array::from_fn(|i| i as u8));
    /// let plain = [0x3322_1100, 0x7766_5544, 0xbbaa_9988, 0xffee_ddcc];
    /// assert_eq!(key.encrypt(plain), [0xd8e0_c469, 0x30047b6a, 0x80b7_cdd8, 0x5ac5_b470]);
    /// ```
    #[must_use]
    pub fn encrypt(&self, counter: [u32; 4]) -> [u32; 4] {
        let mut block = counter_block(counter);
        self.cipher.encrypt_block(&mut block);
        block_words(&block)
    }
}

impl From<Key> for WordKey {
    /// The first 16 bytes of the key. Keys derived with [`Key::fold_in`] give independent
    /// AES keys.
    fn from(key: Key) -> WordKey {
        let b = key.bytes();
        WordKey::new(std::array::from_fn(|i| b[i]))
    }
}

/// The 16 bytes of a counter: its four words, little-endian.
#[inline]
fn counter_block(counter: [u32; 4]) -> aes::Block {
    let mut block = aes::Block::default();
    for (chunk, w) in block.chunks_exact_mut(4).zip(counter) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    block
}

/// The four little-endian words of a block.
#[inline]
fn block_words(block: &aes::Block) -> [u32; 4] {
    std::array::from_fn(|i| {
        u32::from_le_bytes([
            block[4 * i],
            block[4 * i + 1],
            block[4 * i + 2],
            block[4 * i + 3],
        ])
    })
}

/// One update of one free block: sweep `t`, block `b` (the sweep-and-block half of a
/// draw's position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockUpdate {
    sweep: u64,
    block: u32,
}

impl BlockUpdate {
    /// The update of block `block` in sweep `sweep`.
    ///
    /// # Panics
    /// If `sweep >= MAX_SWEEPS` or `block >= MAX_BLOCKS`; a program with more blocks must
    /// be refused when it is built.
    #[must_use]
    pub fn new(sweep: u64, block: u32) -> BlockUpdate {
        assert!(sweep < MAX_SWEEPS, "sweep {sweep} ≥ 2^48");
        assert!(block < MAX_BLOCKS, "block {block} ≥ 2^16");
        BlockUpdate { sweep, block }
    }

    /// The sweep index.
    #[must_use]
    pub fn sweep(self) -> u64 {
        self.sweep
    }

    /// The block index.
    #[must_use]
    pub fn block(self) -> u32 {
        self.block
    }

    /// Counter words 2 and 3: `[t mod 2³², (t >> 32) | (b << 16)]`.
    #[inline]
    #[must_use]
    pub fn counter_hi(self) -> [u32; 2] {
        [
            self.sweep as u32,
            (self.sweep >> 32) as u32 | (self.block << 16),
        ]
    }

    /// The counter of node quad `node_quad` (nodes `4q .. 4q + 4`) in chain `chain`.
    #[inline]
    #[must_use]
    pub fn counter(self, chain: u32, node_quad: u32) -> [u32; 4] {
        let [h0, h1] = self.counter_hi();
        [chain, node_quad, h0, h1]
    }
}

/// The 32 random bits of node `node` (position in its block) in chain `chain` at `update`.
///
/// This is the definition every batched form reproduces.
///
/// # Example
///
/// ```
/// use thrml::kernels::aes::{BlockUpdate, WordKey, fill_words, site_word};
/// let key = WordKey::from_seed(7);
/// let at = BlockUpdate::new(3, 1);
/// // Nodes 5..7 × chains 10..13, chain-minor.
/// let mut words = [0u32; 2 * 3];
/// fill_words(&key, at, 5..7, 10..13, &mut words);
/// assert_eq!(words[3 + 2], site_word(&key, at, 12, 6));
/// ```
#[inline]
#[must_use]
pub fn site_word(key: &WordKey, update: BlockUpdate, chain: u32, node: u64) -> u32 {
    let quad = u32::try_from(node >> 2).expect("node index < 2^34");
    key.encrypt(update.counter(chain, quad))[(node & 3) as usize]
}

/// The random words of nodes `nodes` and chains `chains` at `update`, chain-minor:
/// `out[(j − nodes.start) · chains.len() + (c − chains.start)] == site_word(key, update, c, j)`.
///
/// Encrypts the blocks of the rectangle `FILL_BLOCKS` at a time: across consecutive
/// chains of one node quad when there are many chains, otherwise across the node quads of
/// one chain. Every word is used unless `nodes` starts or ends inside a quad.
///
/// # Panics
/// If `out.len() != nodes.len() · chains.len()`, or `nodes.end > 2³⁴`.
pub fn fill_words(
    key: &WordKey,
    update: BlockUpdate,
    nodes: std::ops::Range<u64>,
    chains: std::ops::Range<u32>,
    out: &mut [u32],
) {
    let n_chains = chains.len();
    let n_nodes = usize::try_from(nodes.end.saturating_sub(nodes.start)).expect("node count");
    assert_eq!(out.len(), n_nodes * n_chains, "output size");
    assert!(nodes.end <= 1 << 34, "node index < 2^34");
    if n_chains == 0 || n_nodes == 0 {
        return;
    }
    let [h0, h1] = update.counter_hi();
    let mut blocks = [aes::Block::default(); FILL_BLOCKS];
    // Row of `out` that word `w` of quad `q` goes to, if it lies inside `nodes`.
    let row = |q: u64, w: usize| {
        let node = 4 * q + w as u64;
        nodes
            .contains(&node)
            .then(|| (node - nodes.start) as usize * n_chains)
    };
    if n_chains >= FILL_BLOCKS / 2 {
        // Across chains: one quad, up to `FILL_BLOCKS` consecutive chains per batch.
        for q in nodes.start >> 2..nodes.end.div_ceil(4) {
            for c0 in (0..n_chains).step_by(FILL_BLOCKS) {
                let batch = (n_chains - c0).min(FILL_BLOCKS);
                for (i, block) in blocks[..batch].iter_mut().enumerate() {
                    let chain = chains.start.wrapping_add((c0 + i) as u32);
                    *block = counter_block([chain, q as u32, h0, h1]);
                }
                key.cipher.encrypt_blocks(&mut blocks[..batch]);
                for (i, block) in blocks[..batch].iter().enumerate() {
                    for (w, word) in block_words(block).into_iter().enumerate() {
                        if let Some(r) = row(q, w) {
                            out[r + c0 + i] = word;
                        }
                    }
                }
            }
        }
    } else {
        // Across node quads of one chain at a time.
        let (q0, q1) = (nodes.start >> 2, nodes.end.div_ceil(4));
        for c in 0..n_chains {
            let chain = chains.start.wrapping_add(c as u32);
            for first in (q0..q1).step_by(FILL_BLOCKS) {
                let batch = ((q1 - first) as usize).min(FILL_BLOCKS);
                for (i, block) in blocks[..batch].iter_mut().enumerate() {
                    *block = counter_block([chain, (first + i as u64) as u32, h0, h1]);
                }
                key.cipher.encrypt_blocks(&mut blocks[..batch]);
                for (i, block) in blocks[..batch].iter().enumerate() {
                    for (w, word) in block_words(block).into_iter().enumerate() {
                        if let Some(r) = row(first + i as u64, w) {
                            out[r + c] = word;
                        }
                    }
                }
            }
        }
    }
}

/// A uniform in `[0, 1 − 2⁻²⁴]` with resolution `2⁻²⁴`: the top 24 bits of `word`.
///
/// `P(u01_f32(w) < p) = ⌈p · 2²⁴⌉ / 2²⁴` for `p ∈ [0, 1]`: exactly 0 and 1 at the ends,
/// within `2⁻²⁴ ≈ 6.0e-8` everywhere.
#[inline]
#[must_use]
pub fn u01_f32(word: u32) -> f32 {
    // `word >> 8 < 2^24` converts exactly, and as a signed integer (`cvtdq2ps`, no
    // unsigned-conversion fix-up).
    ((word >> 8) as i32) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform in `[0, 1 − 2⁻³²]` with resolution `2⁻³²`: `word · 2⁻³²`, exact in `f64`.
#[inline]
#[must_use]
pub fn u01_f64(word: u32) -> f64 {
    f64::from(word) * (1.0 / 4_294_967_296.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS-197 appendix C.1 and the first vector of NIST SP 800-38A F.1.1 (AES-128 ECB):
    /// (key, plaintext, ciphertext) as bytes.
    const KAT: [([u8; 16], [u8; 16], [u8; 16]); 2] = [
        (
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ],
            [
                0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
                0xc5, 0x5a,
            ],
        ),
        (
            [
                0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
                0x4f, 0x3c,
            ],
            [
                0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
                0x17, 0x2a,
            ],
            [
                0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60, 0xa8, 0x9e, 0xca, 0xf3, 0x24, 0x66,
                0xef, 0x97,
            ],
        ),
    ];

    fn words_of(b: [u8; 16]) -> [u32; 4] {
        std::array::from_fn(|i| {
            u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        })
    }

    #[test]
    fn known_answers() {
        for (key, plain, cipher) in KAT {
            assert_eq!(WordKey::new(key).encrypt(words_of(plain)), words_of(cipher));
        }
    }

    #[test]
    fn counter_layout_is_as_documented() {
        let key = WordKey::from_seed(3);
        let at = BlockUpdate::new(0x1234_5678_9abc, 0x0042);
        assert_eq!(at.counter_hi(), [0x5678_9abc, 0x0042_1234]);
        for node in [0u64, 1, 2, 3, 4, 17, (1 << 34) - 1] {
            let q = (node >> 2) as u32;
            let want = key.encrypt([77, q, 0x5678_9abc, 0x0042_1234])[(node & 3) as usize];
            assert_eq!(site_word(&key, at, 77, node), want, "node {node}");
        }
    }

    #[test]
    fn fill_words_matches_site_word_for_any_tiling() {
        let key = WordKey::from_seed(11);
        let at = BlockUpdate::new(5, 3);
        for (nodes, chains) in [
            (0u64..4, 0u32..1),
            (0..64, 0..16),
            (3..9, 5..40),
            (1..2, 100..101),
            (6..23, 0..3),
            (0..7, u32::MAX - 2..u32::MAX),
        ] {
            let nc = chains.len();
            let mut out = vec![0u32; (nodes.end - nodes.start) as usize * nc];
            fill_words(&key, at, nodes.clone(), chains.clone(), &mut out);
            for j in nodes.clone() {
                for c in chains.clone() {
                    let i = (j - nodes.start) as usize * nc + (c - chains.start) as usize;
                    assert_eq!(out[i], site_word(&key, at, c, j), "node {j} chain {c}");
                }
            }
        }
    }

    /// Value stability: the first words of seed 0, so a change to the streams is deliberate.
    #[test]
    fn value_stability() {
        let key = WordKey::from_seed(0);
        let at = BlockUpdate::new(0, 0);
        let mut words = [0u32; 4 * 2];
        fill_words(&key, at, 0..4, 0..2, &mut words);
        // Stored node-major: transpose to chain-major for reading.
        let words: [u32; 8] = std::array::from_fn(|i| words[(i % 4) * 2 + i / 4]);
        let later = [
            site_word(&key, BlockUpdate::new(1, 0), 0, 0),
            site_word(&key, BlockUpdate::new(0, 1), 0, 0),
            site_word(
                &key,
                BlockUpdate::new(123_456_789_012, 65_535),
                4_000_000_000,
                17_179_869_183,
            ),
        ];
        // Cross-checked with OpenSSL: `openssl enc -aes-128-ecb -nopad -K 6c3b9aa7…4677` of
        // the little-endian counter bytes.
        assert_eq!(
            key.bytes(),
            [
                0x6c, 0x3b, 0x9a, 0xa7, 0x67, 0xf7, 0x85, 0xb5, 0x37, 0xc0, 0xd8, 0xba, 0x5f, 0xa5,
                0x46, 0x77
            ]
        );
        // Nodes 0..4 of chain 0, then of chain 1.
        assert_eq!(
            words,
            [
                0xc0b0_2371,
                0x48cd_a517,
                0xaa37_5736,
                0x55e6_3c46, //
                0xbf3a_0442,
                0x6684_bb1d,
                0x30fc_5859,
                0x8e54_8075,
            ]
        );
        assert_eq!(later, [0x7cbf_8b92, 0xce78_f753, 0x50ee_fa91]);
    }

    #[test]
    fn uniforms_cover_their_ranges_exactly() {
        assert_eq!(u01_f32(0), 0.0);
        assert_eq!(u01_f32(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
        assert_eq!(u01_f32(0x0000_01ff), 1.0 / 16_777_216.0);
        assert_eq!(u01_f64(0), 0.0);
        assert_eq!(u01_f64(u32::MAX), 1.0 - 1.0 / 4_294_967_296.0);
        // `u < p` is the integer test `(w >> 8) < ceil(p · 2^24)`.
        for p in [0.0f32, 1e-9, 5.9e-8, 6.0e-8, 0.25, 0.3, 0.999_999_9, 1.0] {
            let threshold = (f64::from(p) * 16_777_216.0).ceil() as u32;
            for k in [0u32, 1, 2, 4_194_303, 4_194_304, 5_033_165, 16_777_215] {
                let w = k << 8 | 0xa5;
                assert_eq!(u01_f32(w) < p, k < threshold, "p {p} k {k}");
            }
        }
    }

    #[test]
    fn uniform_statistics() {
        // 2^20 words over a tile of 1024 nodes × 1024 chains; mean, variance, 256-bin χ².
        let key = WordKey::from_seed(2024);
        let mut words = vec![0u32; 1 << 20];
        fill_words(&key, BlockUpdate::new(5, 2), 0..1024, 0..1024, &mut words);
        let n = words.len() as f64;
        let (mut sum, mut sum2) = (0.0, 0.0);
        let mut bins = [0u32; 256];
        for &w in &words {
            let u = u01_f64(w);
            sum += u;
            sum2 += u * u;
            bins[(w >> 24) as usize] += 1;
        }
        let mean = sum / n;
        let var = sum2 / n - mean * mean;
        // Standard errors: 1/sqrt(12 n) ≈ 2.8e-4 for the mean, ≈ 8.7e-5 for the variance.
        assert!((mean - 0.5).abs() < 6.0 * 2.9e-4, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 6.0 * 8.7e-5, "variance {var}");
        let expected = n / 256.0;
        let chi2: f64 = bins
            .iter()
            .map(|&b| (f64::from(b) - expected).powi(2) / expected)
            .sum();
        // 255 degrees of freedom: mean 255, sd 22.6; P(χ² > 370) ≈ 3e-6, P(χ² < 160) ≈ 1e-6.
        assert!((160.0..370.0).contains(&chi2), "chi2 {chi2}");
        // Word 0 of chain c and word 0 of chain c + 1 are uncorrelated (lag-1 across lanes).
        let lag: f64 = words
            .windows(2)
            .map(|p| (u01_f64(p[0]) - 0.5) * (u01_f64(p[1]) - 0.5))
            .sum::<f64>()
            / n;
        assert!(lag.abs() < 6.0 / 12.0 / n.sqrt(), "lag-1 covariance {lag}");
    }

    #[test]
    fn block_update_limits() {
        let at = BlockUpdate::new(MAX_SWEEPS - 1, MAX_BLOCKS - 1);
        assert_eq!((at.sweep(), at.block()), (MAX_SWEEPS - 1, MAX_BLOCKS - 1));
        assert_eq!(at.counter_hi(), [u32::MAX, u32::MAX]);
    }

    #[test]
    #[should_panic(expected = "sweep")]
    fn too_many_sweeps() {
        let _ = BlockUpdate::new(MAX_SWEEPS, 0);
    }

    #[test]
    #[should_panic(expected = "block")]
    fn too_many_blocks() {
        let _ = BlockUpdate::new(0, MAX_BLOCKS);
    }
}
