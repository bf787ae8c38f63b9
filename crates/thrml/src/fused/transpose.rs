//! Moving states between the API's chain-major layout and the tiles' chain-minor one.
//!
//! A block or global state holds the spins of chain `c` as one row of `bool`s (`row[p]` is
//! node `p`); a tile holds node `p` as one `u64` whose bit `l` is the spin of lane `l`
//! (chain `c0 + l`). Going from one to the other is a transpose of a bit matrix with one
//! row per lane. It is done 64 nodes at a time: the 64 bytes of each lane's row are packed
//! into one word (one multiplication per 8 bytes), the 64 × 64 bit matrix of words is
//! transposed in place (six rounds of block swaps), and the words are the 64 nodes' lane
//! masks; exporting runs the same steps backwards. Both directions cost about one
//! operation per spin, where the lane-by-lane loops they replace cost a shift, an `or` and
//! a store each (1.6 cycles per spin on Zen 4), which at 4,096 chains of Pegasus(14) made
//! a run's set-up cost two sweeps.
//!
//! Categorical states are bytes in both layouts; they are transposed in cache-sized
//! squares of 64 nodes by the tile's lanes, so that both the reads and the writes stay in
//! L1.

/// Spread the 8 bits of `byte` over 8 bytes of 0 or 1, bit `k` to byte `k`: broadcast
/// the byte, keep bit `k` in byte `k`, and turn each non-zero byte into 1 (adding 0x7f
/// sets its top bit and cannot carry out of the byte).
fn spread(byte: u64) -> u64 {
    ((((byte & 0xff) * 0x0101_0101_0101_0101) & 0x8040_2010_0804_0201) + 0x7f7f_7f7f_7f7f_7f7f) >> 7
        & 0x0101_0101_0101_0101
}

/// `dst[k] = bit k of bits` for the 8 `bool`s of `dst`.
#[allow(unsafe_code)]
fn store_8_bools(bits: u64, dst: &mut [bool; 8]) {
    let bytes = spread(bits);
    // SAFETY: `dst` is 8 writable bytes, and every byte of `bytes` is 0 or 1 (the mask in
    // `spread`), a valid `bool`.
    unsafe { std::ptr::write_unaligned(dst.as_mut_ptr().cast::<u64>(), bytes.to_le()) }
}

/// The bits of `bits`, one per `bool`, `dst[k] = bit k` (`dst.len() ≤ 64`).
fn unpack_bools(bits: u64, dst: &mut [bool]) {
    let mut chunks = dst.chunks_exact_mut(8);
    let mut g = 0;
    for chunk in chunks.by_ref() {
        store_8_bools(bits >> (8 * g), chunk.try_into().expect("8 bools"));
        g += 1;
    }
    for (k, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = (bits >> (8 * g + k)) & 1 != 0;
    }
}

/// The `bool`s of `src` as bits, bit `k` = `src[k]` (`src.len() ≤ 64`).
fn pack_bools(src: &[bool]) -> u64 {
    let bytes: &[u8] = bytemuck::cast_slice(src);
    let mut chunks = bytes.chunks_exact(8);
    let mut word = 0u64;
    let mut g = 0;
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // Bytes of 0 or 1: byte i times 2^(56 − 7i) lands on bit 56 + i, and no two of
        // the 64 partial products share a bit, so nothing carries.
        word |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * g);
        g += 1;
    }
    for (k, &b) in chunks.remainder().iter().enumerate() {
        word |= u64::from(b) << (8 * g + k);
    }
    word
}

/// Transpose the 64 × 64 bit matrix whose row `r` is `a[r]` (column `c` its bit `c`).
fn transpose64(a: &mut [u64]) {
    let a: &mut [u64; 64] = a.try_into().expect("64 rows");
    // Swap the off-diagonal blocks of each 2j × 2j square, then of their j × j squares.
    let mut j = 32;
    let mut m = 0x0000_0000_ffff_ffff_u64;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Write lane masks: `bits[p]` bit `l` = `row(l)[p]` for `l < valid`, and 0 above
/// (`valid ≤ 64`, every row at least `bits.len()` long).
///
/// Each row is packed from start to end (a stream the prefetcher follows) into 64-word
/// squares, one per 64 nodes, which are then transposed.
pub(super) fn spins_to_lanes<'a>(
    bits: &mut [u64],
    valid: usize,
    row: impl Fn(usize) -> &'a [bool],
) {
    let n = bits.len();
    let mut squares = vec![0u64; 64 * n.div_ceil(64)];
    for l in 0..valid {
        let r = &row(l)[..n];
        for (c, part) in r.chunks(64).enumerate() {
            squares[c * 64 + l] = pack_bools(part);
        }
    }
    for (square, out) in squares.chunks_exact_mut(64).zip(bits.chunks_mut(64)) {
        transpose64(square);
        out.copy_from_slice(&square[..out.len()]);
    }
}

/// Read lane masks back: `rows[l][p]` = bit `l` of `bits[p]`, for the rows of `rows`
/// (consecutive, `bits.len()` each, at most 64), written from start to end.
pub(super) fn lanes_to_spins(bits: &[u64], rows: &mut [bool]) {
    let n = bits.len();
    if n == 0 {
        return;
    }
    let mut squares = vec![0u64; 64 * n.div_ceil(64)];
    for (square, chunk) in squares.chunks_exact_mut(64).zip(bits.chunks(64)) {
        square[..chunk.len()].copy_from_slice(chunk);
        transpose64(square);
    }
    for (l, row) in rows.chunks_exact_mut(n).enumerate() {
        for (c, part) in row.chunks_mut(64).enumerate() {
            unpack_bools(squares[c * 64 + l], part);
        }
    }
}

/// Transpose the 8 × 8 byte matrix whose row `r` is `a[r]` (column `c` its byte `c`, little
/// endian), with the block swaps of [`transpose64`] on bytes.
#[inline(always)]
fn transpose8x8(a: &mut [u64; 8]) {
    #[inline(always)]
    fn swap(a: &mut [u64; 8], k: usize, d: usize, shift: u32, m: u64) {
        let t = ((a[k] >> shift) ^ a[k + d]) & m;
        a[k] ^= t << shift;
        a[k + d] ^= t;
    }
    for k in 0..4 {
        swap(a, k, 4, 32, 0x0000_0000_ffff_ffff);
    }
    for k in [0, 1, 4, 5] {
        swap(a, k, 2, 16, 0x0000_ffff_0000_ffff);
    }
    for k in [0, 2, 4, 6] {
        swap(a, k, 1, 8, 0x00ff_00ff_00ff_00ff);
    }
}

/// Nodes per square of the categorical transposes: 256 nodes of 64 lanes are 16 KiB,
/// and each row is read or written 256 bytes at a time.
const SQUARE: usize = 256;

/// Write lane-minor categories: `cats[p * lanes + l]` = `row(l)[p]` for `l < valid`
/// (`cats.len()` a multiple of `lanes`; lanes at or above `valid` are left as they are).
/// Groups of 8 lanes by 8 nodes move as 8 × 8 byte transposes of words.
pub(super) fn cats_to_lanes<'a>(
    cats: &mut [u8],
    lanes: usize,
    valid: usize,
    row: impl Fn(usize) -> &'a [u8],
) {
    let full = if lanes.is_multiple_of(8) {
        valid / 8 * 8
    } else {
        0
    };
    for (c, square) in cats.chunks_mut(SQUARE * lanes).enumerate() {
        let p0 = c * SQUARE;
        let np = square.len() / lanes;
        let np8 = np / 8 * 8;
        for l8 in (0..full).step_by(8) {
            let rows: [&[u8]; 8] = std::array::from_fn(|i| &row(l8 + i)[p0..p0 + np8]);
            for q in (0..np8).step_by(8) {
                let mut a: [u64; 8] = std::array::from_fn(|i| {
                    u64::from_le_bytes(rows[i][q..q + 8].try_into().expect("8 bytes"))
                });
                transpose8x8(&mut a);
                for (j, w) in a.iter().enumerate() {
                    let at = (q + j) * lanes + l8;
                    square[at..at + 8].copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        // The lanes and nodes left over, one byte at a time.
        for l in 0..valid {
            let first = if l < full { np8 } else { 0 };
            let src = &row(l)[p0 + first..p0 + np];
            for (node, &x) in square[first * lanes..].chunks_exact_mut(lanes).zip(src) {
                node[l] = x;
            }
        }
    }
}

/// Read lane-minor categories back: `rows[l][p]` = `cats[p * lanes + l]`, for the rows of
/// `rows` (consecutive, `cats.len() / lanes` each, at most `lanes`).
pub(super) fn lanes_to_cats(cats: &[u8], lanes: usize, rows: &mut [u8]) {
    let size = cats.len() / lanes;
    if size == 0 {
        return;
    }
    let valid = rows.len() / size;
    let full = if lanes.is_multiple_of(8) {
        valid / 8 * 8
    } else {
        0
    };
    for (c, square) in cats.chunks(SQUARE * lanes).enumerate() {
        let p0 = c * SQUARE;
        let np = square.len() / lanes;
        let np8 = np / 8 * 8;
        for (l8, group) in rows[..full * size].chunks_exact_mut(8 * size).enumerate() {
            let l8 = l8 * 8;
            let mut group = group.chunks_exact_mut(size);
            let mut dst: [&mut [u8]; 8] =
                std::array::from_fn(|_| &mut group.next().expect("8 rows")[p0..p0 + np8]);
            for q in (0..np8).step_by(8) {
                let mut a: [u64; 8] = std::array::from_fn(|j| {
                    let at = (q + j) * lanes + l8;
                    u64::from_le_bytes(square[at..at + 8].try_into().expect("8 bytes"))
                });
                transpose8x8(&mut a);
                for (d, w) in dst.iter_mut().zip(&a) {
                    d[q..q + 8].copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        for (l, row) in rows.chunks_exact_mut(size).enumerate() {
            let first = if l < full { np8 } else { 0 };
            let dst = &mut row[p0 + first..p0 + np];
            for (x, node) in dst
                .iter_mut()
                .zip(square[first * lanes..].chunks_exact(lanes))
            {
                *x = node[l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible stream of words (SplitMix64).
    fn words(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn transpose64_swaps_rows_and_columns() {
        let mut next = words(1);
        let a: [u64; 64] = std::array::from_fn(|_| next());
        let mut t = a;
        transpose64(&mut t);
        assert_ne!(t, a);
        for (r, &row) in a.iter().enumerate() {
            for (c, &col) in t.iter().enumerate() {
                assert_eq!((row >> c) & 1, (col >> r) & 1, "({r}, {c})");
            }
        }
    }

    #[test]
    fn transpose8x8_swaps_rows_and_columns() {
        let mut next = words(5);
        let a: [u64; 8] = std::array::from_fn(|_| next());
        let mut t = a;
        transpose8x8(&mut t);
        for (r, row) in a.iter().map(|w| w.to_le_bytes()).enumerate() {
            for (c, col) in t.iter().map(|w| w.to_le_bytes()).enumerate() {
                assert_eq!(row[c], col[r], "({r}, {c})");
            }
        }
    }

    #[test]
    fn packing_round_trips_every_length() {
        let mut next = words(2);
        for len in 0..=64 {
            let w = next();
            let bools: Vec<bool> = (0..len).map(|k| (w >> k) & 1 != 0).collect();
            let low = if len == 64 { w } else { w & ((1 << len) - 1) };
            assert_eq!(pack_bools(&bools), low, "pack, length {len}");
            let mut back = vec![false; len];
            unpack_bools(w, &mut back);
            assert_eq!(back, bools, "unpack, length {len}");
        }
    }

    /// The lane-by-lane definitions, for sizes around the 64-node chunks and lane counts
    /// below and at the tile width.
    #[test]
    fn spin_transposes_match_the_definition() {
        let mut next = words(3);
        for size in [0, 1, 7, 63, 64, 65, 130, 4264] {
            for valid in [1, 5, 16, 63, 64] {
                let rows: Vec<bool> = (0..valid * size).map(|_| next() & 1 != 0).collect();
                let mut bits = vec![u64::MAX; size];
                spins_to_lanes(&mut bits, valid, |l| &rows[l * size..(l + 1) * size]);
                for (p, &b) in bits.iter().enumerate() {
                    let want = (0..valid)
                        .map(|l| u64::from(rows[l * size + p]) << l)
                        .fold(0, |a, x| a | x);
                    assert_eq!(b, want, "size {size}, {valid} lanes, node {p}");
                }
                let mut back = vec![false; valid * size];
                lanes_to_spins(&bits, &mut back);
                assert_eq!(back, rows, "size {size}, {valid} lanes");
            }
        }
    }

    #[test]
    fn categorical_transposes_match_the_definition() {
        let mut next = words(4);
        for size in [0, 1, 63, 64, 65, 200, 256, 257, 600] {
            for (lanes, valid) in [
                (1, 1),
                (16, 3),
                (16, 9),
                (16, 16),
                (64, 40),
                (64, 61),
                (64, 64),
            ] {
                let rows: Vec<u8> = (0..valid * size).map(|_| next() as u8).collect();
                let mut cats = vec![7u8; lanes * size];
                cats_to_lanes(&mut cats, lanes, valid, |l| &rows[l * size..(l + 1) * size]);
                for p in 0..size {
                    for l in 0..lanes {
                        let want = if l < valid { rows[l * size + p] } else { 7 };
                        assert_eq!(cats[p * lanes + l], want, "size {size}, node {p}, lane {l}");
                    }
                }
                let mut back = vec![0u8; valid * size];
                lanes_to_cats(&cats, lanes, &mut back);
                assert_eq!(back, rows, "size {size}, {lanes} lanes");
            }
        }
    }
}
