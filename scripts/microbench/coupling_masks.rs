//! Micro-benchmark of the AVX-512 spin kernel's coupling loop (BENCHMARKS.md, tenth session):
//! eight masked adds per coupling of two 64-chain tiles, with the masks loaded as 32-bit
//! halves and shifted, or as four 16-bit halves, with and without eight AES rounds beside
//! them, and with the second tile's adds as masked FMAs (`1 · w + acc`). A manual check,
//! not part of the build:
//!
//!     rustc -O -C target-cpu=native scripts/microbench/coupling_masks.rs -o /tmp/coupling_masks
//!     /tmp/coupling_masks    # on an AVX-512 + VAES CPU

use std::arch::asm;
use std::arch::x86_64::*;
use std::time::Instant;

/// A tile's four lane masks `k0 .. k3` from `[{p}]`: two 32-bit loads, each shifted once.
macro_rules! halves {
    ($p:literal) => {
        concat!(
            "kmovd {k0}, dword ptr [{", $p, "}]\n",
            "kmovd {k2}, dword ptr [{", $p, "} + 4]\n",
            "kshiftrd {k1}, {k0}, 16\n",
            "kshiftrd {k3}, {k2}, 16\n",
        )
    };
}

/// The same masks as four 16-bit loads.
macro_rules! quarters {
    ($p:literal) => {
        concat!(
            "kmovw {k0}, word ptr [{", $p, "}]\n",
            "kmovw {k1}, word ptr [{", $p, "} + 2]\n",
            "kmovw {k2}, word ptr [{", $p, "} + 4]\n",
            "kmovw {k3}, word ptr [{", $p, "} + 6]\n",
        )
    };
}

/// `acc += w` under the masks `k0 .. k3`, one register each, as `vaddps`.
macro_rules! add {
    ($($a:literal => $k:literal),+) => {
        concat!($("vaddps {", $a, "} {{{", $k, "}}}, {", $a, "}, {w}\n",)+)
    };
}

/// The same as `vfmadd231ps` with `1.0` (the same bits).
macro_rules! fma {
    ($($a:literal => $k:literal),+) => {
        concat!($("vfmadd231ps {", $a, "} {{{", $k, "}}}, {one}, {w}\n",)+)
    };
}

/// A coupling loop over `idx`: tile 0's masks from `q0`, tile 1's from `q1`, loaded with
/// `$loads`; tile 0 adds, tile 1 with `$op`; with eight AES rounds per coupling if `$aes`.
macro_rules! kern {
    ($name:ident, $aes:expr, $loads:ident, $op:ident) => {
        #[inline(never)]
        unsafe fn $name(idx: &[u32], q0: *const u64, q1: *const u64) -> f32 {
            let mut a: [__m512; 8] = [_mm512_setzero_ps(); 8];
            let mut e: [__m512i; 8] = [_mm512_setzero_si512(); 8];
            let w = _mm512_set1_ps(1.0);
            let one = _mm512_set1_ps(1.0);
            let rk = _mm512_set1_epi32(7);
            for &i in idx {
                let p0 = q0.add(i as usize);
                let p1 = q1.add(i as usize);
                let [a0, a1, a2, a3, a4, a5, a6, a7] = &mut a;
                asm!(
                    "/* {one} */",
                    $loads!("p0"),
                    add!("a0" => "k0", "a1" => "k1", "a2" => "k2", "a3" => "k3"),
                    $loads!("p1"),
                    $op!("a4" => "k0", "a5" => "k1", "a6" => "k2", "a7" => "k3"),
                    p0 = in(reg) p0, p1 = in(reg) p1, w = in(zmm_reg) w, one = in(zmm_reg) one,
                    a0 = inout(zmm_reg) *a0, a1 = inout(zmm_reg) *a1,
                    a2 = inout(zmm_reg) *a2, a3 = inout(zmm_reg) *a3,
                    a4 = inout(zmm_reg) *a4, a5 = inout(zmm_reg) *a5,
                    a6 = inout(zmm_reg) *a6, a7 = inout(zmm_reg) *a7,
                    k0 = out(kreg) _, k1 = out(kreg) _, k2 = out(kreg) _, k3 = out(kreg) _,
                    options(nostack),
                );
                if $aes {
                    for x in e.iter_mut() {
                        *x = _mm512_aesenc_epi128(*x, rk);
                    }
                }
            }
            let mut s = _mm512_setzero_ps();
            for x in a {
                s = _mm512_add_ps(s, x);
            }
            let mut z = _mm512_setzero_si512();
            for x in e {
                z = _mm512_xor_si512(z, x);
            }
            _mm512_reduce_add_ps(s) + _mm512_reduce_add_epi32(z) as f32
        }
    };
}

kern!(kmovd_shift, false, halves, add);
kern!(kmovd_shift_aes, true, halves, add);
kern!(kmovw, false, quarters, add);
kern!(kmovw_aes, true, quarters, add);
kern!(kmovw_fma, false, quarters, fma);
kern!(kmovw_fma_aes, true, quarters, fma);
kern!(shift_fma, false, halves, fma);
kern!(shift_fma_aes, true, halves, fma);

fn main() {
    let n_nodes = 4264usize;
    let q0: Vec<u64> = (0..n_nodes as u64).map(|i| i.wrapping_mul(0x9E3779B97F4A7C15)).collect();
    let q1: Vec<u64> = (0..n_nodes as u64).map(|i| i.wrapping_mul(0xBB67AE8584CAA73B)).collect();
    let mut s = 12345u64;
    let idx: Vec<u32> = (0..15_000_000)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n_nodes as u64) as u32
        })
        .collect();
    type F = unsafe fn(&[u32], *const u64, *const u64) -> f32;
    let kernels: [(&str, F); 8] = [
        ("kmovd_shift", kmovd_shift),
        ("kmovd_shift_aes", kmovd_shift_aes),
        ("kmovw", kmovw),
        ("kmovw_aes", kmovw_aes),
        ("kmovw_fma", kmovw_fma),
        ("kmovw_fma_aes", kmovw_fma_aes),
        ("shift_fma", shift_fma),
        ("shift_fma_aes", shift_fma_aes),
    ];
    for _ in 0..2 {
        for (name, f) in kernels {
            let t = Instant::now();
            let r = unsafe { f(&idx, q0.as_ptr(), q1.as_ptr()) };
            let ns = t.elapsed().as_nanos() as f64 / idx.len() as f64;
            println!("{name:16}: {ns:.2} ns/coupling ({r})");
        }
    }
}
