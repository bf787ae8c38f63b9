//! Neighbour masks of one-chain tiles: each spin position's neighbours' spins, packed into
//! one `u32` in the order of its ELL rows, kept up to date as spins change.
//!
//! With a single chain the AVX2 kernel vectorises across the 16 positions of an ELL group
//! (`plan::Terms::build_ell`), and looking up row `r`'s 16 neighbour spins took two
//! 8-lane gathers: about 60 % of that kernel's time, since a gather costs about 2 cycles
//! per element. Most spins keep their value in an update (on Pegasus(14) with N(0, 1)
//! couplings at β = 1, about 3 % of spin updates change the spin), so pushing each
//! change to the masks of its neighbours costs far less than pulling every neighbour's
//! spin in every update. Position `j`'s mask holds the spin of its row-`r` neighbour in
//! bit `31 − r`, so that the kernel moves row `r + 1` to the sign bit, the selector of a
//! blend, with one add of the mask to itself.
//!
//! The masks are indexed by engine spin node, like the spins. A spin that is not a
//! position of a tracked block has mask 0; so do the rows from [`MASK_ROWS`] on, which a
//! kernel must look up otherwise, and padded rows (weight `+0.0`, which adds `+0.0` under
//! either bit).

use multiversion::multiversion;

use super::plan::{FusedBlock, Head};

/// The rows of neighbours that a mask holds.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const MASK_ROWS: usize = 32;

/// Where each spin appears in the masks of the positions it neighbours: for engine spin
/// node `i`, the entries `ent[off[i]..off[i + 1]]`, each `dest << 5 | bit` (bit `31 − r`
/// of the mask of engine node `dest`, whose row-`r` neighbour `i` is).
#[derive(Debug)]
pub(crate) struct NeighbourMasks {
    off: Vec<u32>,
    ent: Vec<u32>,
}

impl NeighbourMasks {
    /// The entries of the spin blocks `blocks` (pairwise CSR terms, positions at engine
    /// nodes `start + j`) in a tile of `n_spin` spins; `None` if an engine node or an entry
    /// count does not fit the packing.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn new<'a>(
        n_spin: usize,
        blocks: impl Iterator<Item = &'a FusedBlock>,
    ) -> Option<NeighbourMasks> {
        if n_spin >= 1 << 27 {
            return None;
        }
        let blocks: Vec<&FusedBlock> = blocks.filter(|fb| fb.head == Head::Spin).collect();
        // `f(source, entry)` for every tracked row.
        let each = |f: &mut dyn FnMut(usize, u32)| {
            for fb in &blocks {
                let t = &fb.terms;
                for j in 0..fb.len {
                    let (e0, e1) = (t.spin_off[j] as usize, t.spin_off[j + 1] as usize);
                    for e in e0..e1.min(e0 + MASK_ROWS) {
                        let (dest, bit) = (fb.start + j, 31 - (e - e0));
                        f(t.spin_idx[e] as usize, (dest << 5 | bit) as u32);
                    }
                }
            }
        };
        // A counting sort by source.
        let mut off = vec![0u32; n_spin + 1];
        each(&mut |src, _| off[src + 1] += 1);
        for i in 0..n_spin {
            off[i + 1] = off[i + 1].checked_add(off[i])?;
        }
        let mut next: Vec<u32> = off[..n_spin].to_vec();
        let mut ent = vec![0u32; off[n_spin] as usize];
        each(&mut |src, e| {
            ent[next[src] as usize] = e;
            next[src] += 1;
        });
        Some(NeighbourMasks { off, ent })
    }

    /// An all-zero set of masks for a tile of `n_spin` spins (all spins `−1`).
    pub(crate) fn zeros(&self) -> Vec<u32> {
        vec![0; self.off.len() - 1]
    }

    /// Toggle engine spin `i` in the masks of the positions it neighbours.
    #[inline]
    pub(crate) fn flip(&self, i: usize, masks: &mut [u32]) {
        for &e in &self.ent[self.off[i] as usize..self.off[i + 1] as usize] {
            masks[(e >> 5) as usize] ^= 1 << (e & 31);
        }
    }

    /// The masks of one-chain spins `bits` (each 0 or 1), from scratch.
    #[cfg(test)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn rebuild(&self, bits: &[u64], masks: &mut [u32]) {
        masks.fill(0);
        for (i, &b) in bits.iter().enumerate() {
            if b & 1 != 0 {
                self.flip(i, masks);
            }
        }
    }

    /// Set one-chain spins `bits[first..]` to the values of `new` (each 0 or 1), and flip
    /// the masks of those that change.
    pub(crate) fn write(
        &self,
        bits: &mut [u64],
        first: usize,
        new: impl IntoIterator<Item = u64>,
        masks: &mut [u32],
    ) {
        for (i, n) in (first..).zip(new) {
            if bits[i] != n {
                bits[i] = n;
                self.flip(i, masks);
            }
        }
    }

    /// [`NeighbourMasks::write`] from a slice. Few spins change in an update (about 3 % of
    /// them on Pegasus(14) with N(0, 1) couplings), so the changes of 64 spins at a time
    /// are found without a branch, and only the changed spins flip their masks.
    pub(crate) fn write_slice(
        &self,
        bits: &mut [u64],
        first: usize,
        new: &[u64],
        masks: &mut [u32],
    ) {
        let bits = &mut bits[first..first + new.len()];
        for (k, (b, n)) in bits.chunks_mut(64).zip(new.chunks(64)).enumerate() {
            let mut c = changes(b, n);
            b.copy_from_slice(n);
            while c != 0 {
                self.flip(first + 64 * k + c.trailing_zeros() as usize, masks);
                c &= c - 1;
            }
        }
    }
}

/// Bit `l` of the result: whether one-chain spins `old[l]` and `new[l]` differ (at most 64).
#[multiversion(targets("x86_64+avx2+avx", "aarch64+neon"))]
fn changes(old: &[u64], new: &[u64]) -> u64 {
    old.iter()
        .zip(new)
        .enumerate()
        .fold(0u64, |c, (l, (&b, &n))| c | ((b ^ n) & 1) << l)
}

/// Copy one-chain spins `new` into `bits[first..]`, through `masks` when the tile keeps
/// them (`nb` is `Some`).
pub(crate) fn write_spins(
    nb: Option<&NeighbourMasks>,
    bits: &mut [u64],
    first: usize,
    new: &[u64],
    masks: &mut [u32],
) {
    match nb {
        Some(nb) => nb.write_slice(bits, first, new, masks),
        None => bits[first..first + new.len()].copy_from_slice(new),
    }
}

#[cfg(test)]
mod tests {
    use super::{MASK_ROWS, NeighbourMasks};
    use crate::fused::kernel::tests::random_block;

    /// The mask of position `j` of the test block, from its CSR rows.
    fn mask_of(fb: &crate::fused::plan::FusedBlock, j: usize, bits: &[u64]) -> u32 {
        let t = &fb.terms;
        let (e0, e1) = (t.spin_off[j] as usize, t.spin_off[j + 1] as usize);
        (e0..e1.min(e0 + MASK_ROWS)).fold(0, |m, e| {
            m | ((bits[t.spin_idx[e] as usize] & 1) as u32) << (31 - (e - e0))
        })
    }

    #[test]
    fn written_masks_match_rebuilt_ones() {
        // A block at engine nodes 600.. of 1,300 spins, its tails anywhere: writes of more
        // than 512 spins, from offsets that are not multiples of 64.
        let mut fb = random_block(1, 637, 1300, None);
        fb.start = 600;
        let n = 1300;
        let nb = NeighbourMasks::new(n, [&fb].into_iter()).expect("small");
        let mut bits: Vec<u64> = (0..n).map(|i| u64::from(i * 7 % 3 == 0)).collect();
        let mut masks = nb.zeros();
        nb.rebuild(&bits, &mut masks);
        let check = |bits: &[u64], masks: &[u32]| {
            for j in 0..fb.len {
                assert_eq!(masks[fb.start + j], mask_of(&fb, j, bits), "position {j}");
            }
            assert!(masks[..fb.start].iter().all(|&m| m == 0));
        };
        check(&bits, &masks);
        assert!(masks.iter().any(|&m| m != 0 && m != u32::MAX));
        for round in 0..6u64 {
            let len = [20, 64, 700, 1, 513, 1300][round as usize];
            let first = [10, 0, 37, 1299, 700, 0][round as usize];
            let new: Vec<u64> = (0..len as u64).map(|i| (i * 5 + round) % 7 % 2).collect();
            if round % 2 == 0 {
                nb.write_slice(&mut bits, first, &new, &mut masks);
            } else {
                nb.write(&mut bits, first, new.iter().copied(), &mut masks);
            }
            assert_eq!(&bits[first..first + len], &new[..]);
            check(&bits, &masks);
        }
    }
}
