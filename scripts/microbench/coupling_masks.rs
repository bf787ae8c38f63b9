//! Micro-benchmark of the AVX-512 spin kernel's coupling loop (BENCHMARKS.md, tenth session):
//! eight masked adds per coupling of two 64-chain tiles, with the masks loaded as 32-bit
//! halves and shifted, or as four 16-bit halves, with and without eight AES rounds beside
//! them, and with half the adds as masked FMAs. A manual check, not part of the build:
//!
//!     rustc -O -C target-cpu=native scripts/microbench/coupling_masks.rs -o /tmp/coupling_masks
//!     /tmp/coupling_masks    # on an AVX-512 + VAES CPU

use std::arch::asm;
use std::arch::x86_64::*;
use std::time::Instant;

macro_rules! kern {
    ($name:ident, $aes:expr, $body:literal) => {
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
        let [a0,a1,a2,a3,a4,a5,a6,a7] = &mut a;
        asm!(
            $body,
            p0 = in(reg) p0, p1 = in(reg) p1, w = in(zmm_reg) w, one = in(zmm_reg) one,
            a0 = inout(zmm_reg) *a0, a1 = inout(zmm_reg) *a1, a2 = inout(zmm_reg) *a2, a3 = inout(zmm_reg) *a3,
            a4 = inout(zmm_reg) *a4, a5 = inout(zmm_reg) *a5, a6 = inout(zmm_reg) *a6, a7 = inout(zmm_reg) *a7,
            k0 = out(kreg) _, k1 = out(kreg) _, k2 = out(kreg) _, k3 = out(kreg) _,
            options(nostack),
        );
        if $aes {
            for x in e.iter_mut() { *x = _mm512_aesenc_epi128(*x, rk); }
        }
    }
    let mut s = _mm512_setzero_ps();
    for x in a { s = _mm512_add_ps(s, x); }
    let mut z = _mm512_setzero_si512();
    for x in e { z = _mm512_xor_si512(z, x); }
    _mm512_reduce_add_ps(s) + _mm512_reduce_add_epi32(z) as f32
}
    };
}

kern!(kmovd_shift, false, "/* {one} */
 kmovd {k0}, dword ptr [{p0}]
 kmovd {k2}, dword ptr [{p0} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovd {k0}, dword ptr [{p1}]
 kmovd {k2}, dword ptr [{p1} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a4} {{{k0}}}, {a4}, {w}
 vaddps {a5} {{{k1}}}, {a5}, {w}
 vaddps {a6} {{{k2}}}, {a6}, {w}
 vaddps {a7} {{{k3}}}, {a7}, {w}");
kern!(kmovd_shift_aes, true, "/* {one} */
 kmovd {k0}, dword ptr [{p0}]
 kmovd {k2}, dword ptr [{p0} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovd {k0}, dword ptr [{p1}]
 kmovd {k2}, dword ptr [{p1} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a4} {{{k0}}}, {a4}, {w}
 vaddps {a5} {{{k1}}}, {a5}, {w}
 vaddps {a6} {{{k2}}}, {a6}, {w}
 vaddps {a7} {{{k3}}}, {a7}, {w}");
kern!(kmovw, false, "/* {one} */
 kmovw {k0}, word ptr [{p0}]
 kmovw {k1}, word ptr [{p0} + 2]
 kmovw {k2}, word ptr [{p0} + 4]
 kmovw {k3}, word ptr [{p0} + 6]
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovw {k0}, word ptr [{p1}]
 kmovw {k1}, word ptr [{p1} + 2]
 kmovw {k2}, word ptr [{p1} + 4]
 kmovw {k3}, word ptr [{p1} + 6]
 vaddps {a4} {{{k0}}}, {a4}, {w}
 vaddps {a5} {{{k1}}}, {a5}, {w}
 vaddps {a6} {{{k2}}}, {a6}, {w}
 vaddps {a7} {{{k3}}}, {a7}, {w}");
kern!(kmovw_aes, true, "/* {one} */
 kmovw {k0}, word ptr [{p0}]
 kmovw {k1}, word ptr [{p0} + 2]
 kmovw {k2}, word ptr [{p0} + 4]
 kmovw {k3}, word ptr [{p0} + 6]
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovw {k0}, word ptr [{p1}]
 kmovw {k1}, word ptr [{p1} + 2]
 kmovw {k2}, word ptr [{p1} + 4]
 kmovw {k3}, word ptr [{p1} + 6]
 vaddps {a4} {{{k0}}}, {a4}, {w}
 vaddps {a5} {{{k1}}}, {a5}, {w}
 vaddps {a6} {{{k2}}}, {a6}, {w}
 vaddps {a7} {{{k3}}}, {a7}, {w}");
kern!(kmovw_fma, false, "
 kmovw {k0}, word ptr [{p0}]
 kmovw {k1}, word ptr [{p0} + 2]
 kmovw {k2}, word ptr [{p0} + 4]
 kmovw {k3}, word ptr [{p0} + 6]
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovw {k0}, word ptr [{p1}]
 kmovw {k1}, word ptr [{p1} + 2]
 kmovw {k2}, word ptr [{p1} + 4]
 kmovw {k3}, word ptr [{p1} + 6]
 vfmadd231ps {a4} {{{k0}}}, {one}, {w}
 vfmadd231ps {a5} {{{k1}}}, {one}, {w}
 vfmadd231ps {a6} {{{k2}}}, {one}, {w}
 vfmadd231ps {a7} {{{k3}}}, {one}, {w}");
kern!(kmovw_fma_aes, true, "
 kmovw {k0}, word ptr [{p0}]
 kmovw {k1}, word ptr [{p0} + 2]
 kmovw {k2}, word ptr [{p0} + 4]
 kmovw {k3}, word ptr [{p0} + 6]
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovw {k0}, word ptr [{p1}]
 kmovw {k1}, word ptr [{p1} + 2]
 kmovw {k2}, word ptr [{p1} + 4]
 kmovw {k3}, word ptr [{p1} + 6]
 vfmadd231ps {a4} {{{k0}}}, {one}, {w}
 vfmadd231ps {a5} {{{k1}}}, {one}, {w}
 vfmadd231ps {a6} {{{k2}}}, {one}, {w}
 vfmadd231ps {a7} {{{k3}}}, {one}, {w}");
kern!(shift_fma, false, "
 kmovd {k0}, dword ptr [{p0}]
 kmovd {k2}, dword ptr [{p0} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovd {k0}, dword ptr [{p1}]
 kmovd {k2}, dword ptr [{p1} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vfmadd231ps {a4} {{{k0}}}, {one}, {w}
 vfmadd231ps {a5} {{{k1}}}, {one}, {w}
 vfmadd231ps {a6} {{{k2}}}, {one}, {w}
 vfmadd231ps {a7} {{{k3}}}, {one}, {w}");
kern!(shift_fma_aes, true, "
 kmovd {k0}, dword ptr [{p0}]
 kmovd {k2}, dword ptr [{p0} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vaddps {a0} {{{k0}}}, {a0}, {w}
 vaddps {a1} {{{k1}}}, {a1}, {w}
 vaddps {a2} {{{k2}}}, {a2}, {w}
 vaddps {a3} {{{k3}}}, {a3}, {w}
 kmovd {k0}, dword ptr [{p1}]
 kmovd {k2}, dword ptr [{p1} + 4]
 kshiftrd {k1}, {k0}, 16
 kshiftrd {k3}, {k2}, 16
 vfmadd231ps {a4} {{{k0}}}, {one}, {w}
 vfmadd231ps {a5} {{{k1}}}, {one}, {w}
 vfmadd231ps {a6} {{{k2}}}, {one}, {w}
 vfmadd231ps {a7} {{{k3}}}, {one}, {w}");

fn main() {
    let n_nodes = 4264usize;
    let q0: Vec<u64> = (0..n_nodes as u64).map(|i| i.wrapping_mul(0x9E3779B97F4A7C15)).collect();
    let q1: Vec<u64> = (0..n_nodes as u64).map(|i| i.wrapping_mul(0xBB67AE8584CAA73B)).collect();
    let mut s = 12345u64;
    let idx: Vec<u32> = (0..15_000_000).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % n_nodes as u64) as u32 }).collect();
    type F = unsafe fn(&[u32], *const u64, *const u64) -> f32;
    for _ in 0..2 {
    for (name, f) in [("kmovd_shift", kmovd_shift as F), ("kmovd_shift_aes", kmovd_shift_aes), ("kmovw", kmovw), ("kmovw_aes", kmovw_aes), ("kmovw_fma", kmovw_fma), ("kmovw_fma_aes", kmovw_fma_aes), ("shift_fma", shift_fma), ("shift_fma_aes", shift_fma_aes)] {
        let t = Instant::now();
        let r = unsafe { f(&idx, q0.as_ptr(), q1.as_ptr()) };
        let ns = t.elapsed().as_nanos() as f64 / idx.len() as f64;
        println!("{name:16}: {:.2} ns/coupling ({r})", ns);
    }
    }
}
