//! The dense half of the index: every chunk's embedding in one contiguous row-major
//! `f32` matrix, scored by brute force. The dot product works in 16-lane blocks with
//! independent accumulators so LLVM vectorises it (AVX-512 / AVX2 with
//! `target-cpu=native`) without `unsafe`; past [`PARALLEL_MIN_FLOATS`] the scan is split
//! across threads, because at 100k × 384 one query reads ~150 MB and a single core
//! cannot pull that through memory fast enough.

/// Matrices smaller than this (in floats) are scanned on the calling thread; spawning
/// costs more than it saves below it.
pub(crate) const PARALLEL_MIN_FLOATS: usize = 4_000_000;

pub(crate) struct Vectors {
    dim: usize,
    data: Vec<f32>,
}

impl Vectors {
    pub(crate) fn new(dim: usize, data: Vec<f32>) -> Vectors {
        debug_assert!(dim == 0 || data.len().is_multiple_of(dim));
        Vectors { dim, data }
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
        self.data.capacity() * std::mem::size_of::<f32>()
    }

    /// Cosine similarity of `query` with every row (rows and query are unit vectors).
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

fn score_rows(rows: &[f32], dim: usize, query: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot(row, query);
    }
}

/// Dot product in blocks of 32 floats with two independent 16-lane accumulators, so
/// the FMA chain is not the bottleneck and the loop vectorises without reassociation.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
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
    fn top_k_returns_the_best_in_order_with_stable_ties() {
        let scores = [0.1, 0.9, 0.5, 0.9, -1.0];
        assert_eq!(top_k(&scores, 3), vec![(1, 0.9), (3, 0.9), (2, 0.5)]);
        assert_eq!(top_k(&scores, 10).len(), 5);
        assert!(top_k(&scores, 0).is_empty());
        assert!(top_k(&[], 3).is_empty());
    }
}
