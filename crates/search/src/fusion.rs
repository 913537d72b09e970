//! Combining the BM25 and dense rankings into one. Both fusions work on the top
//! candidates of each list; a document missing from a list contributes nothing for it.

use std::collections::HashMap;

/// Reciprocal rank fusion: `Σ 1 / (k + rank)` over the lists a document appears in,
/// ranks starting at 1. Scale-free, so BM25's unbounded scores need no calibration.
pub(crate) fn rrf(lists: &[&[(u32, f32)]], k: f32) -> HashMap<u32, f32> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        for (rank, &(doc, _)) in list.iter().enumerate() {
            *fused.entry(doc).or_insert(0.0) += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    fused
}

/// Convex combination of min-max normalised scores:
/// `weight_dense · dense' + (1 − weight_dense) · bm25'`, where each list is scaled to
/// [0, 1] over its own candidates (BM25 against 0, its floor for a non-matching
/// document; dense against the lowest candidate cosine).
pub(crate) fn normalized(
    bm25: &[(u32, f32)],
    dense: &[(u32, f32)],
    weight_dense: f32,
) -> HashMap<u32, f32> {
    let w = weight_dense.clamp(0.0, 1.0);
    let mut fused: HashMap<u32, f32> = HashMap::new();
    let bm25_max = bm25.iter().map(|p| p.1).fold(0.0f32, f32::max);
    if bm25_max > 0.0 {
        for &(doc, s) in bm25 {
            *fused.entry(doc).or_insert(0.0) += (1.0 - w) * (s / bm25_max);
        }
    }
    let hi = dense.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max);
    let lo = dense.iter().map(|p| p.1).fold(f32::INFINITY, f32::min);
    for &(doc, s) in dense {
        let norm = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
        *fused.entry(doc).or_insert(0.0) += w * norm;
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_sums_reciprocal_ranks_across_lists() {
        let a = [(7, 12.0), (3, 5.0)];
        let b = [(3, 0.9), (9, 0.8)];
        let f = rrf(&[&a, &b], 60.0);
        assert!((f[&7] - 1.0 / 61.0).abs() < 1e-7);
        assert!((f[&3] - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        assert!((f[&9] - 1.0 / 62.0).abs() < 1e-7);
        assert!(f[&3] > f[&7]);
    }

    #[test]
    fn normalized_scales_each_list_and_weights_them() {
        let bm25 = [(1, 10.0), (2, 5.0)];
        let dense = [(2, 0.8), (3, 0.4)];
        let f = normalized(&bm25, &dense, 0.25);
        assert!((f[&1] - 0.75).abs() < 1e-6);
        assert!((f[&2] - (0.75 * 0.5 + 0.25)).abs() < 1e-6);
        assert!(f[&3].abs() < 1e-6);
        let only_dense = normalized(&[], &dense, 0.25);
        assert!((only_dense[&2] - 0.25).abs() < 1e-6);
        let single = normalized(&[], &[(4, 0.3)], 1.0);
        assert!((single[&4] - 1.0).abs() < 1e-6);
    }
}
