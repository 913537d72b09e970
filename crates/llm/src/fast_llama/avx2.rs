//! The llama kernels for CPUs with AVX2, FMA and F16C (Haswell, Zen and later), on
//! the same packed weights and 8-bit activations as the AVX-512 ones.
//!
//! A 64-weight chunk is two 256-bit halves with the same lane pattern (4-byte lanes
//! alternating between the chunk's two blocks), so `vpmaddubsw` + `vpmaddwd` give the
//! per-lane sums `vpdpbusd` gives there, as llama.cpp's AVX2 dot products do. 4-bit
//! weights (≤ 15) go in unsigned as they are and the two halves add up in 16 bits
//! before widening; 8-bit weights are made signed (`u − 128`) and multiplied with the
//! sign trick (`|w| · sign(x, w)`), which cannot saturate, and the `128·d` that moves
//! to the blocks' minimums is added back there. Tiles are 4 rows × 2 tokens: 8
//! accumulators of the 16 ymm registers.
//!
//! Each kernel is a `#[target_feature]` function behind a safe wrapper that takes the
//! `Avx2` token, the proof that the CPU has the features.

use std::arch::x86_64::*;

use super::{CHUNK, Partial, QActs, QMatrix, f16_to_f32};
use crate::cpu::Avx2;

/// `QActs::quantize` for widths that are whole chunks; the buffers are sized.
pub(super) fn quantize(_: Avx2, acts: &mut QActs, x: &[f32]) {
    assert_eq!(x.len(), acts.tokens * acts.chunks * CHUNK);
    assert_eq!(acts.q.len(), x.len());
    assert_eq!(acts.scale.len(), acts.tokens * acts.chunks * 16);
    assert_eq!(acts.sums.len(), acts.tokens * acts.chunks * 2);
    // SAFETY: the token proves the features; the sizes are checked above.
    unsafe { quantize_impl(acts, x) }
}

/// Rows `r0..r1` of `out` (`x.tokens × w.rows`) for every token.
///
/// # Safety
/// `out` is valid for writes of `x.tokens × w.rows` floats and no other thread touches
/// rows `r0..r1` of it meanwhile; `r1 ≤ w.rows`, `x.chunks == w.chunks`.
pub(super) unsafe fn matmul_rows(
    _: Avx2,
    w: &QMatrix,
    x: &QActs,
    r0: usize,
    r1: usize,
    out: *mut f32,
) {
    // SAFETY: the token proves the features; the caller vouches for the rest.
    unsafe { matmul_rows_impl(w, x, r0, r1, out) }
}

/// `out = silu(gate) · up` row by row (`gu` is `tokens × 2n`, `out` `tokens × n`).
pub(super) fn swiglu(_: Avx2, gu: &[f32], n: usize, out: &mut [f32]) {
    assert_eq!(gu.len(), 2 * out.len());
    // SAFETY: the token proves the features; the loop stays in the rows.
    unsafe { swiglu_impl(gu, n, out) }
}

/// `dst = src` as f16 (round to nearest even), 8 at a time.
pub(super) fn to_f16(_: Avx2, src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    // SAFETY: the token proves the features; the lengths are checked above.
    unsafe { to_f16_impl(src, dst) }
}

/// See `super::attend`.
#[allow(clippy::too_many_arguments)]
pub(super) fn attend(
    _: Avx2,
    q: &[f32],
    ends: &[usize],
    hd: usize,
    keys: &[u16],
    values: &[u16],
    cap: usize,
    lo: usize,
    hi: usize,
    scores: &mut Vec<f32>,
    part: Partial<'_>,
) {
    // SAFETY: the token proves the features; `attend_impl` asserts the shapes.
    unsafe { attend_impl(q, ends, hd, keys, values, cap, lo, hi, scores, part) }
}

/// `e^x` for every lane (the tests check it).
#[cfg(test)]
pub(super) fn exp(_: Avx2, x: &[f32; 8]) -> [f32; 8] {
    let mut out = [0f32; 8];
    // SAFETY: the token proves the features; both arrays hold 8 lanes.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp_ps(_mm256_loadu_ps(x.as_ptr()))) };
    out
}

/// # Safety
/// AVX2; `x` holds `tokens × chunks × 64` values and the buffers are sized for them.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_impl(acts: &mut QActs, x: &[f32]) {
    let n = acts.tokens * acts.chunks;
    let sign = _mm256_set1_ps(-0.0);
    // SAFETY: chunk i reads x[64i..64i + 64] and writes its own q, scale and sums.
    unsafe {
        for i in 0..n {
            let xp = x.as_ptr().add(i * CHUNK);
            let mut q = [[_mm256_setzero_si256(); 4]; 2];
            let mut d = [0f32; 2];
            for half in 0..2 {
                let v = [0, 8, 16, 24].map(|o| _mm256_loadu_ps(xp.add(32 * half + o)));
                let abs = v.map(|v| _mm256_andnot_ps(sign, v));
                let amax = hmax(_mm256_max_ps(
                    _mm256_max_ps(abs[0], abs[1]),
                    _mm256_max_ps(abs[2], abs[3]),
                ));
                d[half] = amax / 127.0;
                let inv = _mm256_set1_ps(if amax > 0.0 { 127.0 / amax } else { 0.0 });
                let mut sum = _mm256_setzero_si256();
                for (k, v) in v.iter().enumerate() {
                    // Rounds to nearest even (the default MXCSR), as the AVX-512 path.
                    q[half][k] = _mm256_cvtps_epi32(_mm256_mul_ps(*v, inv));
                    sum = _mm256_add_epi32(sum, q[half][k]);
                }
                *acts.sums.as_mut_ptr().add(2 * i + half) = d[half] * hsum_epi32(sum) as f32;
            }
            // packs interleave per 128-bit lane: [A0-3 B0-3 A8-11 B8-11 | A4-7 B4-7
            // A12-15 B12-15] after both packs, so swap the middle quarters.
            let (a, b) = (&q[0], &q[1]);
            let lo = _mm256_packs_epi16(
                _mm256_packs_epi32(a[0], b[0]),
                _mm256_packs_epi32(a[1], b[1]),
            );
            let hi = _mm256_packs_epi16(
                _mm256_packs_epi32(a[2], b[2]),
                _mm256_packs_epi32(a[3], b[3]),
            );
            let out = acts.q.as_mut_ptr().add(i * CHUNK).cast::<__m256i>();
            _mm256_storeu_si256(out, _mm256_permute4x64_epi64::<0b11_01_10_00>(lo));
            _mm256_storeu_si256(out.add(1), _mm256_permute4x64_epi64::<0b11_01_10_00>(hi));
            let pair = _mm256_castpd_ps(_mm256_set1_pd(f64::from_bits(
                u64::from(d[0].to_bits()) | (u64::from(d[1].to_bits()) << 32),
            )));
            _mm256_storeu_ps(acts.scale.as_mut_ptr().add(i * 16), pair);
            _mm256_storeu_ps(acts.scale.as_mut_ptr().add(i * 16 + 8), pair);
        }
    }
}

/// # Safety
/// AVX2; as `matmul_rows`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matmul_rows_impl(w: &QMatrix, x: &QActs, r0: usize, r1: usize, out: *mut f32) {
    let mut t = 0;
    while t < x.tokens {
        let tn = (x.tokens - t).min(2);
        let mut r = r0;
        while r < r1 {
            let rn = if r1 - r >= 4 { 4 } else { 1 };
            // SAFETY: r + rn ≤ r1 ≤ rows and t + tn ≤ tokens.
            unsafe {
                match (w.nibbles, rn, tn) {
                    (true, 4, 2) => tile::<true, 4, 2>(w, r, x, t, out),
                    (true, 4, _) => tile::<true, 4, 1>(w, r, x, t, out),
                    (true, _, 2) => tile::<true, 1, 2>(w, r, x, t, out),
                    (true, _, _) => tile::<true, 1, 1>(w, r, x, t, out),
                    (false, 4, 2) => tile::<false, 4, 2>(w, r, x, t, out),
                    (false, 4, _) => tile::<false, 4, 1>(w, r, x, t, out),
                    (false, _, 2) => tile::<false, 1, 2>(w, r, x, t, out),
                    (false, _, _) => tile::<false, 1, 1>(w, r, x, t, out),
                }
            }
            r += rn;
        }
        t += tn;
    }
}

/// One `R rows × T tokens` tile over the whole row.
///
/// # Safety
/// As `matmul_rows_impl`, with `r0 + R ≤ rows` and `t0 + T ≤ tokens`.
#[allow(clippy::needless_range_loop)] // Register tiles read best indexed.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const NIB: bool, const R: usize, const T: usize>(
    w: &QMatrix,
    r0: usize,
    x: &QActs,
    t0: usize,
    out: *mut f32,
) {
    let chunks = w.chunks;
    let cb = if NIB { CHUNK / 2 } else { CHUNK };
    let nb = chunks * 2;
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    // SAFETY: every offset below stays inside the row/token ranges the caller checked.
    unsafe {
        let low = _mm256_set1_epi8(0x0f);
        let flip = _mm256_set1_epi8(i8::MIN);
        let ones = _mm256_set1_epi16(1);
        let wbase = w.data.as_ptr().add(r0 * chunks * cb);
        let dbase = w.d.as_ptr().add(r0 * nb);
        let qbase = x.q.as_ptr().add(t0 * chunks * CHUNK);
        let sbase = x.scale.as_ptr().add(t0 * chunks * 16);
        for c in 0..chunks {
            if T == 1 {
                // Decoding streams every weight once: ask for the next tile's early.
                // Prefetches never fault, past the end either.
                let ahead = wbase.wrapping_add(R * chunks * cb + c * R * cb);
                for line in 0..(R * cb).div_ceil(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
                }
            }
            for r in 0..R {
                let p = wbase.add((r * chunks + c) * cb);
                let pair = dbase.add(r * nb + 2 * c).cast::<i32>().read_unaligned();
                let ds = _mm256_cvtph_ps(_mm_set1_epi32(pair));
                if NIB {
                    let raw = _mm256_loadu_si256(p.cast());
                    let w0 = _mm256_and_si256(raw, low);
                    let w1 = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), low);
                    for t in 0..T {
                        let xp = qbase.add((t * chunks + c) * CHUNK).cast::<__m256i>();
                        // ≤ 2·15·127 per product pair, twice: no 16-bit overflow.
                        let s16 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(w0, _mm256_loadu_si256(xp)),
                            _mm256_maddubs_epi16(w1, _mm256_loadu_si256(xp.add(1))),
                        );
                        let s32 = _mm256_madd_epi16(s16, ones);
                        let xs = _mm256_loadu_ps(sbase.add((t * chunks + c) * 16));
                        acc[r][t] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(s32),
                            _mm256_mul_ps(ds, xs),
                            acc[r][t],
                        );
                    }
                } else {
                    let w0 = _mm256_xor_si256(_mm256_loadu_si256(p.cast()), flip);
                    let w1 = _mm256_xor_si256(_mm256_loadu_si256(p.add(32).cast()), flip);
                    let (a0, a1) = (_mm256_abs_epi8(w0), _mm256_abs_epi8(w1));
                    for t in 0..T {
                        let xp = qbase.add((t * chunks + c) * CHUNK).cast::<__m256i>();
                        let s0 = _mm256_madd_epi16(
                            _mm256_maddubs_epi16(a0, _mm256_sign_epi8(_mm256_loadu_si256(xp), w0)),
                            ones,
                        );
                        let s1 = _mm256_madd_epi16(
                            _mm256_maddubs_epi16(
                                a1,
                                _mm256_sign_epi8(_mm256_loadu_si256(xp.add(1)), w1),
                            ),
                            ones,
                        );
                        let xs = _mm256_loadu_ps(sbase.add((t * chunks + c) * 16));
                        acc[r][t] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)),
                            _mm256_mul_ps(ds, xs),
                            acc[r][t],
                        );
                    }
                }
            }
        }
        // Σ_b m_b · d_x,b · Σq_b: the minimums' share (8-bit weights: m + 128·d).
        let shift = _mm256_set1_ps(if NIB { 0.0 } else { 128.0 });
        for r in 0..R {
            let mrow = w.m.as_ptr().add((r0 + r) * nb);
            let drow = w.d.as_ptr().add((r0 + r) * nb);
            for t in 0..T {
                let srow = x.sums.as_ptr().add((t0 + t) * nb);
                let mut sum = _mm256_setzero_ps();
                let mut b = 0;
                while b + 8 <= nb {
                    let mv = _mm256_cvtph_ps(_mm_loadu_si128(mrow.add(b).cast()));
                    let dv = _mm256_cvtph_ps(_mm_loadu_si128(drow.add(b).cast()));
                    let mv = _mm256_fmadd_ps(shift, dv, mv);
                    sum = _mm256_fmadd_ps(mv, _mm256_loadu_ps(srow.add(b)), sum);
                    b += 8;
                }
                let mut total = hsum(_mm256_add_ps(acc[r][t], sum));
                while b < nb {
                    let mut m = f16_to_f32(*mrow.add(b));
                    if !NIB {
                        m += 128.0 * f16_to_f32(*drow.add(b));
                    }
                    total += m * *srow.add(b);
                    b += 1;
                }
                *out.add((t0 + t) * w.rows + r0 + r) = total;
            }
        }
    }
}

/// # Safety
/// AVX.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}

/// # Safety
/// AVX.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps::<1>(s, s)))
}

/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `e^x` for 8 lanes (relative error below 1e-6; inputs below -87 give ~0), as the
/// AVX-512 one with the power of two built in the exponent bits.
///
/// # Safety
/// AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_ps(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
    let x = _mm256_min_ps(x, _mm256_set1_ps(88.0));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    // f = x - n·ln 2 in two steps (Cody-Waite), |f| ≤ ln 2 / 2.
    let f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let f = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), f);
    let c = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let mut p = _mm256_set1_ps(c[0]);
    for &k in &c[1..] {
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(k));
    }
    // n ∈ [-126, 127] after the clamp: 2ⁿ is a normal float.
    let pow = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(pow))
}

/// # Safety
/// AVX2 and FMA; `gu` holds twice as many rows of `n` as `out`.
#[target_feature(enable = "avx2,fma")]
unsafe fn swiglu_impl(gu: &[f32], n: usize, out: &mut [f32]) {
    for (row, out) in gu.chunks_exact(2 * n).zip(out.chunks_exact_mut(n)) {
        let (gate, up) = row.split_at(n);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 ≤ n keeps the loads and the store inside the rows.
            unsafe {
                let g = _mm256_loadu_ps(gate.as_ptr().add(i));
                let u = _mm256_loadu_ps(up.as_ptr().add(i));
                let e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
                let silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0), e));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(silu, u));
            }
            i += 8;
        }
        for ((o, g), u) in out[i..].iter_mut().zip(&gate[i..]).zip(&up[i..]) {
            *o = g / (1.0 + (-g).exp()) * u;
        }
    }
}

/// # Safety
/// AVX and F16C; `src` and `dst` have the same length.
#[target_feature(enable = "avx,f16c")]
unsafe fn to_f16_impl(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: i + 8 ≤ n for the vector loop; the tail converts one value at a time.
    unsafe {
        while i + 8 <= n {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            i += 8;
        }
        while i < n {
            let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(src[i]));
            dst[i] = _mm_extract_epi16::<0>(h) as u16;
            i += 1;
        }
    }
}

/// # Safety
/// AVX2, FMA and F16C; the shapes `super::attend` documents (asserted here).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attend_impl(
    q: &[f32],
    ends: &[usize],
    hd: usize,
    keys: &[u16],
    values: &[u16],
    cap: usize,
    lo: usize,
    hi: usize,
    scores: &mut Vec<f32>,
    mut part: Partial<'_>,
) {
    assert!(hi <= cap && cap.is_multiple_of(16) && hd.is_multiple_of(16));
    assert!(keys.len() >= cap * hd && values.len() >= cap * hd && q.len() >= ends.len() * hd);
    assert!(ends.iter().all(|&e| e > lo));
    assert!(part.max.len() >= ends.len() && part.sum.len() >= ends.len());
    assert!(part.out.len() >= ends.len() * hd);
    let rows = ends.len();
    let padded = (hi - lo).div_ceil(16) * 16;
    scores.clear();
    scores.resize(rows * padded, 0.0);
    let mut r = 0;
    while r < rows {
        let n = (rows - r).min(4);
        // SAFETY: the shapes are asserted above, for rows r..r + n.
        unsafe {
            match n {
                4 => attend_group::<4>(q, ends, hd, keys, values, lo, hi, scores, r, &mut part),
                3 => attend_group::<3>(q, ends, hd, keys, values, lo, hi, scores, r, &mut part),
                2 => attend_group::<2>(q, ends, hd, keys, values, lo, hi, scores, r, &mut part),
                _ => attend_group::<1>(q, ends, hd, keys, values, lo, hi, scores, r, &mut part),
            }
        }
        r += n;
    }
}

/// Scores, softmax pieces and the weighted values for query rows `r0..r0 + N`.
///
/// # Safety
/// AVX2, FMA and F16C; as `attend_impl` checked, with `r0 + N ≤ rows`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attend_group<const N: usize>(
    q: &[f32],
    ends: &[usize],
    hd: usize,
    keys: &[u16],
    values: &[u16],
    lo: usize,
    hi: usize,
    scores: &mut [f32],
    r0: usize,
    part: &mut Partial<'_>,
) {
    let padded = (hi - lo).div_ceil(16) * 16;
    // The furthest any row of the group looks.
    let end = (0..N).map(|i| ends[r0 + i].min(hi)).max().unwrap_or(lo);
    let blocks = (end - lo).div_ceil(16);
    // SAFETY: reads stay within `cap × hd` keys (lo + 16·blocks ≤ cap), `cap × hd`
    // values, `q` rows r0..r0 + N and `scores` rows r0..r0 + N of `padded`.
    unsafe {
        let kp = keys.as_ptr();
        let qp = q.as_ptr().add(r0 * hd);
        let sp = scores.as_mut_ptr().add(r0 * padded);
        for blk in 0..blocks {
            let j = lo + blk * 16;
            let mut acc = [[_mm256_setzero_ps(); 2]; N];
            for d in 0..hd {
                let kd = kp.add(j * hd + d * 16);
                let k0 = _mm256_cvtph_ps(_mm_loadu_si128(kd.cast()));
                let k1 = _mm256_cvtph_ps(_mm_loadu_si128(kd.add(8).cast()));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let qv = _mm256_set1_ps(*qp.add(i * hd + d));
                    acc[0] = _mm256_fmadd_ps(qv, k0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(qv, k1, acc[1]);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(sp.add(i * padded + blk * 16), acc[0]);
                _mm256_storeu_ps(sp.add(i * padded + blk * 16 + 8), acc[1]);
            }
        }
        // Softmax pieces per row over its visible positions; the rest become 0.
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for i in 0..N {
            let row = std::slice::from_raw_parts_mut(sp.add(i * padded), padded);
            let visible = ends[r0 + i].min(hi) - lo;
            let max = row[..visible]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let maxv = _mm256_set1_ps(max);
            let mut sumv = _mm256_setzero_ps();
            let mut k = 0;
            while k < blocks * 16 {
                let left = _mm256_set1_epi32(visible.saturating_sub(k).min(8) as i32);
                let mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, lanes));
                let s = _mm256_loadu_ps(row.as_ptr().add(k));
                let e = _mm256_and_ps(mask, exp_ps(_mm256_sub_ps(s, maxv)));
                sumv = _mm256_add_ps(sumv, e);
                _mm256_storeu_ps(row.as_mut_ptr().add(k), e);
                k += 8;
            }
            part.max[r0 + i] = max;
            part.sum[r0 + i] = hsum(sumv);
        }
        // Values: 16 output dimensions at a time.
        let vp = values.as_ptr();
        let op = part.out.as_mut_ptr().add(r0 * hd);
        let mut d0 = 0;
        while d0 < hd {
            let mut acc = [[_mm256_setzero_ps(); 2]; N];
            for jj in 0..end - lo {
                let vrow = vp.add((lo + jj) * hd + d0);
                let v0 = _mm256_cvtph_ps(_mm_loadu_si128(vrow.cast()));
                let v1 = _mm256_cvtph_ps(_mm_loadu_si128(vrow.add(8).cast()));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let p = _mm256_set1_ps(*sp.add(i * padded + jj));
                    acc[0] = _mm256_fmadd_ps(p, v0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(p, v1, acc[1]);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(op.add(i * hd + d0), acc[0]);
                _mm256_storeu_ps(op.add(i * hd + d0 + 8), acc[1]);
            }
            d0 += 16;
        }
    }
}
