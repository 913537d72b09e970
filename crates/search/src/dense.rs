//! The dense half of the index: every chunk's embedding in one contiguous row-major
//! `f32` matrix, plus a coarse quantised copy (one scale per row) that is what a query
//! scans: int8 codes, or int4 for a large matrix.
//!
//! At 100k × 384 the `f32` matrix is ~150 MB, and reading all of it per query is
//! memory-bound (~6 ms on the first host); the coarse copy is a quarter (int8) or an
//! eighth (int4) of that. The scan ranks every row by its quantised dot product with
//! the query's int8 codes, keeps a shortlist (`4k` rows, at least 64, after int8;
//! `16k`, at least 256, after int4) and re-scores it exactly in `f32`, so returned
//! scores are exact cosines and the top `k` match an exact scan except when
//! quantisation error reorders rows beyond the shortlist, which the tests check does
//! not happen on random data. A matrix of [`INT4_MIN_CODES`] codes or more no longer
//! fits in cache, where the scan waits on memory: an Intel Xeon VM read the 38 MB of
//! int8 codes of 100k × 384 from memory in 4.0 ms, as long as a plain sum of the bytes
//! took, so only fewer bytes go faster. The kernels are in `simd`, chosen at run time.
//! Past [`PARALLEL_MIN_FLOATS`] the scan is split across threads, the calling thread
//! taking the first part: on the 2-core VM, waiting for two fresh threads instead
//! made a cold 100k-row scan half as slow again (5.0 against 3.3 ms).

mod simd;

/// Matrices smaller than this (in floats) are scanned on the calling thread; spawning
/// costs more than it saves below it.
pub(crate) const PARALLEL_MIN_FLOATS: usize = 4_000_000;

/// Matrices of at least this many values (and a dimension that is a multiple of 64)
/// are scanned in int4 (8 MiB of int8 codes, ~22k rows of 384).
pub(crate) const INT4_MIN_CODES: usize = 8 << 20;

pub(crate) struct Vectors {
    dim: usize,
    data: Vec<f32>,
    coarse: Coarse,
    /// Per row: `x ≈ scale · code` for the coarse codes.
    scales: Vec<f32>,
}

/// The copy a query scans.
enum Coarse {
    /// `dim` codes in ±127 per row.
    Int8(Vec<i8>),
    /// `dim / 2` bytes per row in blocks of 32 bytes for 64 dimensions: dimension
    /// `j` of a block is the low nibble of byte `j`, dimension `32 + j` the high
    /// one, each `code + 8` for a code in ±7.
    Int4(Vec<u8>),
}

/// The largest absolute value of `v`.
fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// Symmetric int8 quantisation of one vector: `x ≈ scale · code`.
fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = max_abs(v);
    if max == 0.0 {
        out.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let inv = 127.0 / max;
    out.extend(
        v.iter()
            .map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8),
    );
    max / 127.0
}

/// Symmetric int4 quantisation of one vector whose length is a multiple of 64, in
/// [`Coarse::Int4`]'s layout.
fn quantize_i4(v: &[f32], out: &mut Vec<u8>) -> f32 {
    let max = max_abs(v);
    let inv = if max == 0.0 { 0.0 } else { 7.0 / max };
    let nibble = |x: f32| ((x * inv).round().clamp(-7.0, 7.0) as i8 + 8) as u8;
    for block in v.chunks_exact(64) {
        let (lo, hi) = block.split_at(32);
        out.extend(
            lo.iter()
                .zip(hi)
                .map(|(&l, &h)| nibble(l) | (nibble(h) << 4)),
        );
    }
    max / 7.0
}

impl Vectors {
    pub(crate) fn new(dim: usize, data: Vec<f32>) -> Vectors {
        let int4 = data.len() >= INT4_MIN_CODES && dim > 0 && dim.is_multiple_of(64);
        Vectors::with_int4(dim, data, int4)
    }

    /// A matrix whose coarse copy is int4 (`int4`, for a dimension that is a
    /// multiple of 64) or int8.
    fn with_int4(dim: usize, data: Vec<f32>, int4: bool) -> Vectors {
        debug_assert!(dim == 0 || data.len().is_multiple_of(dim));
        debug_assert!(!int4 || dim.is_multiple_of(64));
        let mut scales = Vec::with_capacity(data.len().checked_div(dim).unwrap_or(0));
        let coarse = if int4 {
            let mut nibbles = Vec::with_capacity(data.len() / 2);
            for row in data.chunks_exact(dim) {
                scales.push(quantize_i4(row, &mut nibbles));
            }
            Coarse::Int4(nibbles)
        } else {
            let mut codes = Vec::with_capacity(data.len());
            if dim > 0 {
                for row in data.chunks_exact(dim) {
                    scales.push(quantize(row, &mut codes));
                }
            }
            Coarse::Int8(codes)
        };
        Vectors {
            dim,
            data,
            coarse,
            scales,
        }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Whether scans of this matrix are split across threads (past
    /// [`PARALLEL_MIN_FLOATS`]).
    pub(crate) fn is_large(&self) -> bool {
        self.data.len() >= PARALLEL_MIN_FLOATS
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub(crate) fn row(&self, i: usize) -> Option<&[f32]> {
        if i >= self.len() {
            return None;
        }
        Some(&self.data[i * self.dim..(i + 1) * self.dim])
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub(crate) fn bytes(&self) -> usize {
        let coarse = match &self.coarse {
            Coarse::Int8(codes) => codes.capacity(),
            Coarse::Int4(nibbles) => nibbles.capacity(),
        };
        (self.data.capacity() + self.scales.capacity()) * std::mem::size_of::<f32>() + coarse
    }

    /// Exact cosine of `query` with row `i`.
    pub(crate) fn score(&self, i: usize, query: &[f32]) -> f32 {
        self.row(i).map_or(0.0, |r| dot(r, query))
    }

    /// The `k` rows most similar to `query` as `(row, exact cosine)`, best first:
    /// a quantised scan of every row, then an exact re-score of the shortlist.
    pub(crate) fn top(&self, query: &[f32], k: usize) -> Vec<(u32, f32)> {
        let n = self.len();
        if n == 0 || k == 0 {
            return Vec::new();
        }
        let mut q = Vec::with_capacity(self.dim);
        let q_scale = quantize(query, &mut q);
        let (dim, kernel) = (self.dim, simd::Kernel::best());
        let (approx, keep) = match &self.coarse {
            Coarse::Int8(codes) => (
                self.scan_rows(|rows, out| {
                    let (codes, scales) =
                        (&codes[rows.start * dim..rows.end * dim], &self.scales[rows]);
                    kernel.scan_i8(codes, dim, scales, &q, q_scale, out);
                }),
                (k * 4).max(64),
            ),
            Coarse::Int4(nibbles) => (
                self.scan_rows(|rows, out| {
                    let half = dim / 2;
                    let rows_bytes = &nibbles[rows.start * half..rows.end * half];
                    kernel.scan_i4(rows_bytes, dim, &self.scales[rows], &q, q_scale, out);
                }),
                (k * 16).max(256),
            ),
        };
        let shortlist = top_k(&approx, keep);
        let exact: Vec<f32> = {
            let mut e = vec![f32::NEG_INFINITY; shortlist.len()];
            for (slot, &(i, _)) in e.iter_mut().zip(&shortlist) {
                *slot = self.score(i as usize, query);
            }
            e
        };
        let mut rescored: Vec<(u32, f32)> = shortlist
            .iter()
            .zip(exact)
            .map(|(&(i, _), s)| (i, s))
            .collect();
        rescored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rescored.truncate(k);
        rescored
    }

    /// Every row's score, by `scan(rows, out)`, split across threads past
    /// [`PARALLEL_MIN_FLOATS`].
    fn scan_rows(&self, scan: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) -> Vec<f32> {
        let n = self.len();
        let mut out = vec![0.0f32; n];
        let threads = if self.is_large() {
            std::thread::available_parallelism()
                .map(|p| p.get())
                .unwrap_or(1)
                .min(4)
        } else {
            1
        };
        if threads <= 1 {
            scan(0..n, &mut out);
            return out;
        }
        let rows_per = n.div_ceil(threads);
        let scan = &scan;
        std::thread::scope(|s| {
            // The calling thread scans the first part itself.
            let mut parts = out.chunks_mut(rows_per).enumerate();
            let first = parts.next();
            for (t, part) in parts {
                let start = t * rows_per;
                s.spawn(move || scan(start..start + part.len(), part));
            }
            if let Some((_, part)) = first {
                scan(0..part.len(), part);
            }
        });
        out
    }

    /// Cosine similarity of `query` with every row, exact `f32` (the reference the
    /// quantised scan is tested against).
    #[cfg(test)]
    pub(crate) fn scores(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        self.scan_rows(|rows, out| {
            score_rows(
                &self.data[rows.start * dim..rows.end * dim],
                dim,
                query,
                out,
            );
        })
    }
}

#[cfg(test)]
fn score_rows(rows: &[f32], dim: usize, query: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot(row, query);
    }
}

/// Dot product with the widest kernels this CPU has (see `dot_portable`).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    simd::dot(a, b)
}

/// Dot product in blocks of 32 floats with two independent 16-lane accumulators, so
/// the FMA chain is not the bottleneck and the loop vectorises without reassociation.
#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc0 = [0.0f32; 16];
    let mut acc1 = [0.0f32; 16];
    let blocks_a = a.chunks_exact(32);
    let blocks_b = b.chunks_exact(32);
    let (rest_a, rest_b) = (blocks_a.remainder(), blocks_b.remainder());
    for (x, y) in blocks_a.zip(blocks_b) {
        for i in 0..16 {
            acc0[i] += x[i] * y[i];
            acc1[i] += x[16 + i] * y[16 + i];
        }
    }
    let mut sum = 0.0f32;
    for i in 0..16 {
        sum += acc0[i] + acc1[i];
    }
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += x * y;
    }
    sum
}

/// Integer dot product in blocks of 64 with 32 independent `i32` lanes (the sum of
/// two products of `i8`s fits in `i32` for any realistic dimension).
#[cfg(test)]
pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut out = [0f32];
    simd::Kernel::best().scan_i8(&a[..n], n, &[1.0], &b[..n], 1.0, &mut out);
    out[0] as i32
}

#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; 32];
    let blocks_a = a.chunks_exact(64);
    let blocks_b = b.chunks_exact(64);
    let (rest_a, rest_b) = (blocks_a.remainder(), blocks_b.remainder());
    for (x, y) in blocks_a.zip(blocks_b) {
        for i in 0..32 {
            acc[i] +=
                i32::from(x[i]) * i32::from(y[i]) + i32::from(x[32 + i]) * i32::from(y[32 + i]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
}

/// `out[i] = dot_i8(row i, q) · scales[i] · q_scale` for the rows of `codes`.
#[inline(always)]
fn scan_i8_portable(
    codes: &[i8],
    dim: usize,
    scales: &[f32],
    q: &[i8],
    q_scale: f32,
    out: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    for ((row, s), o) in codes.chunks_exact(dim).zip(scales).zip(out.iter_mut()) {
        *o = dot_i8_portable(row, q) as f32 * s * q_scale;
    }
}

/// `out[i] = (row i · q) · scales[i] · q_scale` for int4 rows in
/// [`Coarse::Int4`]'s layout (`dim` a multiple of 64).
fn scan_i4_portable(
    nibbles: &[u8],
    dim: usize,
    scales: &[f32],
    q: &[i8],
    q_scale: f32,
    out: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    for ((row, s), o) in nibbles
        .chunks_exact(dim / 2)
        .zip(scales)
        .zip(out.iter_mut())
    {
        let mut sum = 0i32;
        for (block, qb) in row.chunks_exact(32).zip(q.chunks_exact(64)) {
            for (j, &byte) in block.iter().enumerate() {
                let (lo, hi) = (i32::from(byte & 0x0f) - 8, i32::from(byte >> 4) - 8);
                sum += lo * i32::from(qb[j]) + hi * i32::from(qb[32 + j]);
            }
        }
        *o = sum as f32 * s * q_scale;
    }
}

/// The `k` best `(row, score)` pairs, best first; ties broken by lower row.
pub(crate) fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut all: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .collect();
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, cmp);
        all.truncate(k);
    }
    all.sort_unstable_by(cmp);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn dot_matches_the_naive_sum_for_lengths_around_the_block_size() {
        for n in [0, 1, 15, 16, 31, 32, 33, 384, 385, 1000] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 3) % 11) as f32 * 0.2 - 1.0).collect();
            let (got, want) = (dot(&a, &b), naive(&a, &b));
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "n={n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn parallel_and_serial_scans_agree() {
        let dim = 40;
        let n = PARALLEL_MIN_FLOATS / dim + 7;
        let data: Vec<f32> = (0..n * dim).map(|i| ((i % 97) as f32) / 97.0).collect();
        let query: Vec<f32> = (0..dim).map(|i| (i as f32) / dim as f32).collect();
        let v = Vectors::new(dim, data);
        let parallel = v.scores(&query);
        let mut serial = vec![0.0; n];
        score_rows(v.as_slice(), dim, &query, &mut serial);
        assert_eq!(parallel, serial);
    }

    /// A test code from `x`, in ±127 as `quantize` makes them (the kernels rely on
    /// it).
    fn code(x: usize) -> i8 {
        ((x % 255) as u8 as i8).max(-127)
    }

    #[test]
    fn dot_i8_matches_the_naive_sum() {
        for n in [0, 1, 63, 64, 65, 384, 1000] {
            let a: Vec<i8> = (0..n).map(|i| code(i * 37)).collect();
            let b: Vec<i8> = (0..n).map(|i| code(i * 11 + 5)).collect();
            let want: i32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(dot_i8(&a, &b), want, "n={n}");
        }
    }

    /// Every int8 kernel this CPU has gives the portable loop's products, for
    /// dimensions with and without a tail past the last whole block, and for codes
    /// at both ends of the range.
    #[test]
    fn every_int8_kernel_here_matches_the_portable_scan() {
        let kernels = simd::Kernel::available();
        assert_eq!(kernels.last(), Some(&simd::Kernel::PORTABLE));
        for dim in [1, 31, 32, 33, 63, 64, 65, 384, 1000] {
            let rows = 37;
            let codes: Vec<i8> = (0..rows * dim)
                .map(|i| match i % 7 {
                    0 => 127,
                    1 => -127,
                    _ => code(i * 37 + 11),
                })
                .collect();
            let q: Vec<i8> = (0..dim)
                .map(|i| if i % 5 == 0 { -127 } else { code(i * 11 + 5) })
                .collect();
            let scales: Vec<f32> = (0..rows).map(|r| 1.0 + r as f32).collect();
            let mut want = vec![0f32; rows];
            scan_i8_portable(&codes, dim, &scales, &q, 0.5, &mut want);
            for &k in &kernels {
                let mut got = vec![f32::NAN; rows];
                k.scan_i8(&codes, dim, &scales, &q, 0.5, &mut got);
                assert_eq!(got, want, "{k:?}, dim {dim}");
            }
        }
    }

    /// Every int4 kernel this CPU has gives the portable loop's products, on codes
    /// at both ends of both ranges.
    #[test]
    fn every_int4_kernel_here_matches_the_portable_scan() {
        for dim in [64, 128, 384] {
            let rows = 29;
            let data: Vec<f32> = (0..rows * dim)
                .map(|i| match i % 9 {
                    0 => 1.0,
                    1 => -1.0,
                    _ => ((i * 37 + 11) % 101) as f32 / 50.0 - 1.0,
                })
                .collect();
            let v = Vectors::with_int4(dim, data, true);
            let Coarse::Int4(nibbles) = &v.coarse else {
                panic!("not int4")
            };
            let q: Vec<i8> = (0..dim)
                .map(|i| match i % 5 {
                    0 => -127,
                    1 => 127,
                    _ => code(i * 11 + 5),
                })
                .collect();
            let mut want = vec![0f32; rows];
            scan_i4_portable(nibbles, dim, &v.scales, &q, 0.25, &mut want);
            for k in simd::Kernel::available() {
                let mut got = vec![f32::NAN; rows];
                k.scan_i4(nibbles, dim, &v.scales, &q, 0.25, &mut got);
                assert_eq!(got, want, "{k:?}, dim {dim}");
            }
        }
    }

    /// The int4 layout decodes to the row: each score is the dot product of the
    /// dequantised row with the dequantised query, close to the exact cosine.
    #[test]
    fn int4_scores_approximate_the_exact_cosines() {
        let (dim, n) = (384, 300);
        let v = Vectors::with_int4(dim, random_unit_rows(n, dim, 11), true);
        let Coarse::Int4(nibbles) = &v.coarse else {
            panic!("not int4")
        };
        let query = random_unit_rows(1, dim, 4);
        let mut q = Vec::new();
        let q_scale = quantize(&query, &mut q);
        let mut approx = vec![0f32; n];
        scan_i4_portable(nibbles, dim, &v.scales, &q, q_scale, &mut approx);
        for (i, a) in approx.iter().enumerate() {
            let exact = v.score(i, &query);
            assert!((a - exact).abs() < 0.03, "row {i}: {a} against {exact}");
        }
    }

    fn random_unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let row: Vec<f32> = (0..dim).map(|_| next()).collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            data.extend(row.iter().map(|x| x / norm));
        }
        data
    }

    #[test]
    fn quantised_scan_returns_the_exact_top_k_with_exact_scores() {
        let dim = 64;
        let n = 5000;
        let v = Vectors::new(dim, random_unit_rows(n, dim, 7));
        for (qi, query) in random_unit_rows(20, dim, 99).chunks(dim).enumerate() {
            let exact: Vec<f32> = (0..n).map(|i| v.score(i, query)).collect();
            let want = top_k(&exact, 10);
            let got = v.top(query, 10);
            assert_eq!(got, want, "query {qi}");
        }
        let int4 = Vectors::with_int4(dim, random_unit_rows(n, dim, 7), true);
        for (qi, query) in random_unit_rows(20, dim, 99).chunks(dim).enumerate() {
            let exact: Vec<f32> = (0..n).map(|i| int4.score(i, query)).collect();
            assert_eq!(int4.top(query, 10), top_k(&exact, 10), "int4, query {qi}");
        }
        let big = Vectors::new(dim, random_unit_rows(PARALLEL_MIN_FLOATS / dim + 3, dim, 5));
        let query = &random_unit_rows(1, dim, 1)[..];
        let exact: Vec<f32> = (0..big.len()).map(|i| big.score(i, query)).collect();
        assert_eq!(big.top(query, 5), top_k(&exact, 5));
        assert!(v.top(query, 0).is_empty());
    }

    #[test]
    fn top_k_returns_the_best_in_order_with_stable_ties() {
        let scores = [0.1, 0.9, 0.5, 0.9, -1.0];
        assert_eq!(top_k(&scores, 3), vec![(1, 0.9), (3, 0.9), (2, 0.5)]);
        assert_eq!(top_k(&scores, 10).len(), 5);
        assert!(top_k(&scores, 0).is_empty());
        assert!(top_k(&[], 3).is_empty());
    }
}
