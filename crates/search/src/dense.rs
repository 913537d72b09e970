//! The dense half of the index: every chunk's embedding in one contiguous row-major
//! `f32` matrix, plus an int8 copy (one scale per row) that is what a query scans.
//!
//! At 100k × 384 the `f32` matrix is ~150 MB, and reading all of it per query is
//! memory-bound (~6 ms here); the int8 copy is a quarter of that. The scan ranks every
//! row by its int8 dot product, keeps the best `4k` (at least 64), and re-scores
//! those exactly in `f32`, so returned scores are exact cosines and the top `k` match
//! an exact scan except when quantisation error reorders rows beyond 4k — which the
//! tests check does not happen on random data. The dot products work in fixed-width
//! blocks with independent accumulators so LLVM vectorises them without intrinsics;
//! `simd` compiles them again for AVX2 and AVX-512 and picks the widest this CPU has
//! at run time (the build itself targets a baseline x86-64). Past
//! [`PARALLEL_MIN_FLOATS`] the scan is split across threads.

/// Matrices smaller than this (in floats) are scanned on the calling thread; spawning
/// costs more than it saves below it.
pub(crate) const PARALLEL_MIN_FLOATS: usize = 4_000_000;

pub(crate) struct Vectors {
    dim: usize,
    data: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

/// Symmetric int8 quantisation of one vector: `x ≈ scale · code`.
fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
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

impl Vectors {
    pub(crate) fn new(dim: usize, data: Vec<f32>) -> Vectors {
        debug_assert!(dim == 0 || data.len().is_multiple_of(dim));
        let mut codes = Vec::with_capacity(data.len());
        let mut scales = Vec::with_capacity(data.len().checked_div(dim).unwrap_or(0));
        if dim > 0 {
            for row in data.chunks_exact(dim) {
                scales.push(quantize(row, &mut codes));
            }
        }
        Vectors {
            dim,
            data,
            codes,
            scales,
        }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
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
        (self.data.capacity() + self.scales.capacity()) * std::mem::size_of::<f32>()
            + self.codes.capacity()
    }

    /// Exact cosine of `query` with row `i`.
    pub(crate) fn score(&self, i: usize, query: &[f32]) -> f32 {
        self.row(i).map_or(0.0, |r| dot(r, query))
    }

    /// The `k` rows most similar to `query` as `(row, exact cosine)`, best first:
    /// an int8 scan of every row, then an exact re-score of the best `4k` (≥ 64).
    pub(crate) fn top(&self, query: &[f32], k: usize) -> Vec<(u32, f32)> {
        let n = self.len();
        if n == 0 || k == 0 {
            return Vec::new();
        }
        let mut q = Vec::with_capacity(self.dim);
        let q_scale = quantize(query, &mut q);
        let mut approx = vec![0.0f32; n];
        let threads = if self.codes.len() >= PARALLEL_MIN_FLOATS {
            std::thread::available_parallelism()
                .map(|p| p.get())
                .unwrap_or(1)
                .min(4)
        } else {
            1
        };
        let dim = self.dim;
        let scan = |codes: &[i8], scales: &[f32], out: &mut [f32]| {
            simd::scan_i8(codes, dim, scales, &q, q_scale, out);
        };
        if threads <= 1 {
            scan(&self.codes, &self.scales, &mut approx);
        } else {
            let rows_per = n.div_ceil(threads);
            std::thread::scope(|s| {
                for ((codes, scales), out) in self
                    .codes
                    .chunks(rows_per * self.dim)
                    .zip(self.scales.chunks(rows_per))
                    .zip(approx.chunks_mut(rows_per))
                {
                    s.spawn(move || scan(codes, scales, out));
                }
            });
        }
        let shortlist = top_k(&approx, (k * 4).max(64));
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

    /// Cosine similarity of `query` with every row, exact `f32` (the reference the
    /// quantised scan is tested against).
    #[cfg(test)]
    pub(crate) fn scores(&self, query: &[f32]) -> Vec<f32> {
        let n = self.len();
        let mut out = vec![0.0f32; n];
        if n == 0 {
            return out;
        }
        let threads = if self.data.len() >= PARALLEL_MIN_FLOATS {
            std::thread::available_parallelism()
                .map(|p| p.get())
                .unwrap_or(1)
                .min(4)
        } else {
            1
        };
        if threads <= 1 {
            score_rows(&self.data, self.dim, query, &mut out);
            return out;
        }
        let rows_per = n.div_ceil(threads);
        std::thread::scope(|s| {
            for (rows, outs) in self
                .data
                .chunks(rows_per * self.dim)
                .zip(out.chunks_mut(rows_per))
            {
                s.spawn(move || score_rows(rows, self.dim, query, outs));
            }
        });
        out
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
    simd::scan_one(a, b)
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
    for ((row, s), o) in codes.chunks_exact(dim).zip(scales).zip(out.iter_mut()) {
        *o = dot_i8_portable(row, q) as f32 * s * q_scale;
    }
}

/// The portable loops above compiled again for AVX2 and AVX-512 (LLVM vectorises
/// them at that width), picked per call from `is_x86_feature_detected!` (std caches
/// it: an atomic load). The zero-sized tokens prove to the safe wrappers that the
/// features were detected; a whole scan is one call, so the check is per query.
mod simd {
    #[cfg(target_arch = "x86_64")]
    pub(super) use x86::{dot, scan_i8};

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_portable(a, b)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn scan_i8(
        codes: &[i8],
        dim: usize,
        scales: &[f32],
        q: &[i8],
        q_scale: f32,
        out: &mut [f32],
    ) {
        super::scan_i8_portable(codes, dim, scales, q, q_scale, out)
    }

    /// One integer dot product through the dispatched scan (the tests check it).
    #[cfg(test)]
    pub(super) fn scan_one(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        if n == 0 {
            return 0;
        }
        let mut out = [0f32];
        scan_i8(&a[..n], n, &[1.0], &b[..n], 1.0, &mut out);
        out[0] as i32
    }

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    mod x86 {
        use super::super::{dot_portable, scan_i8_portable};

        /// Proof that this CPU has AVX2 and FMA.
        #[derive(Clone, Copy)]
        struct Avx2(());

        /// Proof that this CPU has AVX-512 F and BW (and AVX2, FMA).
        #[derive(Clone, Copy)]
        struct Avx512(());

        fn avx512() -> Option<Avx512> {
            (std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && avx2().is_some())
            .then_some(Avx512(()))
        }

        fn avx2() -> Option<Avx2> {
            (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
                .then_some(Avx2(()))
        }

        pub(in super::super) fn dot(a: &[f32], b: &[f32]) -> f32 {
            if let Some(token) = avx512() {
                return dot_avx512(token, a, b);
            }
            if let Some(token) = avx2() {
                return dot_avx2(token, a, b);
            }
            dot_portable(a, b)
        }

        pub(in super::super) fn scan_i8(
            codes: &[i8],
            dim: usize,
            scales: &[f32],
            q: &[i8],
            q_scale: f32,
            out: &mut [f32],
        ) {
            if let Some(token) = avx512() {
                return scan_i8_avx512(token, codes, dim, scales, q, q_scale, out);
            }
            if let Some(token) = avx2() {
                return scan_i8_avx2(token, codes, dim, scales, q, q_scale, out);
            }
            scan_i8_portable(codes, dim, scales, q, q_scale, out)
        }

        fn dot_avx2(_: Avx2, a: &[f32], b: &[f32]) -> f32 {
            /// # Safety
            /// AVX2 and FMA.
            #[target_feature(enable = "avx2,fma")]
            unsafe fn imp(a: &[f32], b: &[f32]) -> f32 {
                dot_portable(a, b)
            }
            // SAFETY: the token proves the features.
            unsafe { imp(a, b) }
        }

        fn dot_avx512(_: Avx512, a: &[f32], b: &[f32]) -> f32 {
            /// # Safety
            /// AVX-512 F and BW, AVX2 and FMA.
            #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
            unsafe fn imp(a: &[f32], b: &[f32]) -> f32 {
                dot_portable(a, b)
            }
            // SAFETY: the token proves the features.
            unsafe { imp(a, b) }
        }

        fn scan_i8_avx2(
            _: Avx2,
            codes: &[i8],
            dim: usize,
            scales: &[f32],
            q: &[i8],
            q_scale: f32,
            out: &mut [f32],
        ) {
            /// # Safety
            /// AVX2 and FMA.
            #[target_feature(enable = "avx2,fma")]
            unsafe fn imp(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
                scan_i8_portable(c, d, s, q, qs, o)
            }
            // SAFETY: the token proves the features.
            unsafe { imp(codes, dim, scales, q, q_scale, out) }
        }

        fn scan_i8_avx512(
            _: Avx512,
            codes: &[i8],
            dim: usize,
            scales: &[f32],
            q: &[i8],
            q_scale: f32,
            out: &mut [f32],
        ) {
            /// # Safety
            /// AVX-512 F and BW, AVX2 and FMA.
            #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
            unsafe fn imp(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
                scan_i8_portable(c, d, s, q, qs, o)
            }
            // SAFETY: the token proves the features.
            unsafe { imp(codes, dim, scales, q, q_scale, out) }
        }
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

    #[test]
    fn dot_i8_matches_the_naive_sum() {
        for n in [0, 1, 63, 64, 65, 384, 1000] {
            let a: Vec<i8> = (0..n).map(|i| ((i * 37) % 255) as u8 as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| ((i * 11 + 5) % 255) as u8 as i8).collect();
            let want: i32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(dot_i8(&a, &b), want, "n={n}");
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
