//! Building blocks of the fused, SIMD-across-chains Gibbs kernels.
//!
//! * [`aes`]: AES-128 counter-mode random words, a pure function of (key, chain, sweep,
//!   block, node), batched across chains in the chain-minor layout, and their conversion to
//!   uniforms.
//! * [`math`]: a fast `exp`, `σ(2γ)`, spin decisions and softmax draws whose implied
//!   conditional probabilities stay within `1e-6` absolute of the exact ones for every
//!   input, with no NaN and clean saturation.
//!
//! Everything here is safe, portable Rust written so that LLVM vectorises the lane loops
//! for the target it compiles for (SSE2 on baseline x86-64, AVX2/AVX-512 with
//! `-C target-cpu=native` or `#[target_feature]` wrappers, NEON on aarch64). Only IEEE
//! `+ − × ÷`, fused multiply-adds, comparisons and integer operations are used, all
//! correctly rounded, so every result is bit-identical on every target and SIMD level.
//!
//! # Example: one spin update of a block, chain-minor
//!
//! ```
//! use thrml::kernels::math::fill_spins;
//! use thrml::kernels::aes::{BlockUpdate, WordKey, fill_words};
//!
//! let (n_nodes, n_chains) = (3u64, 8u32);
//! // Local fields γ[j · n_chains + c], computed by the kernel from couplings and neighbours.
//! let gamma = vec![0.25f32; (n_nodes * u64::from(n_chains)) as usize];
//! let mut words = vec![0u32; gamma.len()];
//! fill_words(&WordKey::from_seed(1), BlockUpdate::new(0, 0), 0..n_nodes, 0..n_chains, &mut words);
//! let mut spins = vec![false; gamma.len()];
//! fill_spins(&gamma, &words, &mut spins);
//! ```

pub mod aes;
pub mod math;
