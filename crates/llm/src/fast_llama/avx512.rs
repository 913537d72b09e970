//! The llama kernels for CPUs with AVX-512 VNNI: one 512-bit `vpdpbusd` multiplies
//! a 64-weight chunk (two blocks of 32) by the chunk's 8-bit activations.
//!
//! Each kernel is a `#[target_feature]` function behind a safe wrapper that takes the
//! `Avx512Vnni` token, the proof that the CPU has the features.

use std::arch::x86_64::*;

use super::{CHUNK, Partial, QActs, QMatrix};
use crate::cpu::Avx512Vnni;

/// `QActs::quantize` for widths that are whole chunks; the buffers are sized.
pub(super) fn quantize(_: Avx512Vnni, acts: &mut QActs, x: &[f32]) {
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
    _: Avx512Vnni,
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
pub(super) fn swiglu(_: Avx512Vnni, gu: &[f32], n: usize, out: &mut [f32]) {
    assert_eq!(gu.len(), 2 * out.len());
    // SAFETY: the token proves the features; the masked loads stay in the rows.
    unsafe { swiglu_impl(gu, n, out) }
}

/// See `super::attend`.
#[allow(clippy::too_many_arguments)]
pub(super) fn attend(
    _: Avx512Vnni,
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
pub(super) fn exp(_: Avx512Vnni, x: &[f32; 16]) -> [f32; 16] {
    let mut out = [0f32; 16];
    // SAFETY: the token proves the features; both arrays hold 16 lanes.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), exp_ps(_mm512_loadu_ps(x.as_ptr()))) };
    out
}

/// `QActs::quantize` for whole chunks, 64 values at a time (ties round to even).
///
/// # Safety
/// AVX-512 F, BW, DQ and VL; `x` holds `tokens × chunks × 64` values and the buffers
/// are sized for them.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn quantize_impl(acts: &mut QActs, x: &[f32]) {
    let n = acts.tokens * acts.chunks;
    debug_assert!(x.len() == n * CHUNK && acts.q.len() == n * CHUNK);
    let interleave = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    // SAFETY: chunk i reads x[64i..64i + 64] and writes its own q, scale and sums.
    unsafe {
        for i in 0..n {
            let xp = x.as_ptr().add(i * CHUNK);
            let v = [
                _mm512_loadu_ps(xp),
                _mm512_loadu_ps(xp.add(16)),
                _mm512_loadu_ps(xp.add(32)),
                _mm512_loadu_ps(xp.add(48)),
            ];
            let mut packed = [_mm256_setzero_si256(); 2];
            let mut d = [0f32; 2];
            for half in 0..2 {
                let (a, b) = (v[2 * half], v[2 * half + 1]);
                let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
                d[half] = amax / 127.0;
                let inv = _mm512_set1_ps(if amax > 0.0 { 127.0 / amax } else { 0.0 });
                let qa = _mm512_cvt_roundps_epi32::<
                    { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                >(_mm512_mul_ps(a, inv));
                let qb = _mm512_cvt_roundps_epi32::<
                    { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                >(_mm512_mul_ps(b, inv));
                let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
                *acts.sums.as_mut_ptr().add(2 * i + half) = d[half] * sum as f32;
                packed[half] = _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm512_cvtsepi32_epi8(qa)),
                    _mm512_cvtsepi32_epi8(qb),
                );
            }
            let both = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(packed[0]), packed[1]);
            _mm512_storeu_si512(
                acts.q.as_mut_ptr().add(i * CHUNK).cast(),
                _mm512_permutexvar_epi32(interleave, both),
            );
            let pair = _mm512_castpd_ps(_mm512_set1_pd(f64::from_bits(
                u64::from(d[0].to_bits()) | (u64::from(d[1].to_bits()) << 32),
            )));
            _mm512_storeu_ps(acts.scale.as_mut_ptr().add(i * 16), pair);
        }
    }
}

/// Rows `r0..r1` of `out` for every token.
///
/// # Safety
/// AVX-512 (F, BW, DQ, VL, VNNI) and F16C; `out` holds `x.tokens × w.rows`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")]
unsafe fn matmul_rows_impl(w: &QMatrix, x: &QActs, r0: usize, r1: usize, out: *mut f32) {
    let mut t = 0;
    while t < x.tokens {
        let tn = (x.tokens - t).min(4);
        let mut r = r0;
        while r < r1 {
            let rn = if r1 - r >= 4 { 4 } else { 1 };
            // SAFETY: r + rn ≤ r1 ≤ rows and t + tn ≤ tokens.
            unsafe {
                macro_rules! go {
                    ($nib:expr, $t:expr) => {
                        if rn == 4 {
                            tile::<$nib, 4, $t>(w, r, x, t, out)
                        } else {
                            tile::<$nib, 1, $t>(w, r, x, t, out)
                        }
                    };
                }
                match (w.nibbles, tn) {
                    (true, 4) => go!(true, 4),
                    (true, 3) => go!(true, 3),
                    (true, 2) => go!(true, 2),
                    (true, _) => go!(true, 1),
                    (false, 4) => go!(false, 4),
                    (false, 3) => go!(false, 3),
                    (false, 2) => go!(false, 2),
                    (false, _) => go!(false, 1),
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
/// As `matmul_rows`, with `r0 + R ≤ rows` and `t0 + T ≤ tokens`.
#[allow(clippy::needless_range_loop)] // Register tiles read best indexed.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")]
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
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    // SAFETY: every offset below stays inside the row/token ranges the caller checked.
    unsafe {
        let shifts = _mm512_inserti64x4::<1>(_mm512_setzero_si512(), _mm256_set1_epi16(4));
        let low = _mm512_set1_epi8(0x0f);
        let wbase = w.data.as_ptr().add(r0 * chunks * cb);
        let dbase = w.d.as_ptr().add(r0 * nb);
        let qbase = x.q.as_ptr().add(t0 * chunks * CHUNK);
        let sbase = x.scale.as_ptr().add(t0 * chunks * 16);
        for c in 0..chunks {
            if T == 1 {
                // Decoding streams every weight once: ask for the next tile's early
                // (measured ~+8% decode). Prefetches never fault, past the end either.
                let ahead = wbase.wrapping_add(R * chunks * cb + c * R * cb);
                for line in 0..(R * cb).div_ceil(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
                }
            }
            let mut wv = [_mm512_setzero_si512(); R];
            let mut ds = [_mm512_setzero_ps(); R];
            for r in 0..R {
                let p = wbase.add((r * chunks + c) * cb);
                wv[r] = if NIB {
                    let b = _mm512_broadcast_i64x4(_mm256_loadu_si256(p.cast()));
                    _mm512_and_si512(_mm512_srlv_epi16(b, shifts), low)
                } else {
                    _mm512_loadu_si512(p.cast())
                };
                let pair = dbase.add(r * nb + 2 * c).cast::<i32>().read_unaligned();
                ds[r] = _mm512_cvtph_ps(_mm256_set1_epi32(pair));
            }
            for t in 0..T {
                let xv = _mm512_loadu_si512(qbase.add((t * chunks + c) * CHUNK).cast());
                let xs = _mm512_loadu_ps(sbase.add((t * chunks + c) * 16));
                for r in 0..R {
                    let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xv);
                    acc[r][t] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(dot),
                        _mm512_mul_ps(ds[r], xs),
                        acc[r][t],
                    );
                }
            }
        }
        // Σ_b m_b · d_x,b · Σq_b: the minimums' share.
        for r in 0..R {
            let mrow = w.m.as_ptr().add((r0 + r) * nb);
            for t in 0..T {
                let srow = x.sums.as_ptr().add((t0 + t) * nb);
                let mut sum = _mm512_setzero_ps();
                let mut b = 0;
                while b < nb {
                    let mask: __mmask16 = if nb - b >= 16 {
                        0xffff
                    } else {
                        (1u16 << (nb - b)) - 1
                    };
                    let mv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, mrow.add(b).cast()));
                    let sv = _mm512_maskz_loadu_ps(mask, srow.add(b));
                    sum = _mm512_fmadd_ps(mv, sv, sum);
                    b += 16;
                }
                *out.add((t0 + t) * w.rows + r0 + r) =
                    _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t], sum));
            }
        }
    }
}

// Vector math

/// `e^x` for 16 lanes (relative error below 1e-6; inputs below -87 give ~0).
///
/// # Safety
/// AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn exp_ps(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
    let x = _mm512_min_ps(x, _mm512_set1_ps(88.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    // f = x - n·ln 2 in two steps (Cody-Waite), |f| ≤ ln 2 / 2.
    let f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), f);
    // e^f: Taylor series, degree 7.
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
    let mut p = _mm512_set1_ps(c[0]);
    for &k in &c[1..] {
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(k));
    }
    _mm512_scalef_ps(p, n)
}

/// # Safety
/// AVX-512F; `gu` holds twice as many rows of `n` as `out`.
#[target_feature(enable = "avx512f")]
unsafe fn swiglu_impl(gu: &[f32], n: usize, out: &mut [f32]) {
    for (row, out) in gu.chunks_exact(2 * n).zip(out.chunks_exact_mut(n)) {
        let (gate, up) = row.split_at(n);
        let mut i = 0;
        while i < n {
            let mask: __mmask16 = if n - i >= 16 {
                0xffff
            } else {
                (1u16 << (n - i)) - 1
            };
            // SAFETY: the mask keeps the loads and stores inside the rows.
            unsafe {
                let g = _mm512_maskz_loadu_ps(mask, gate.as_ptr().add(i));
                let u = _mm512_maskz_loadu_ps(mask, up.as_ptr().add(i));
                let e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
                let silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0), e));
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), mask, _mm512_mul_ps(silu, u));
            }
            i += 16;
        }
    }
}

/// Query rows `q` (`rows × hd`, already scaled) against positions `lo..hi` of one KV
/// head; row `i` may see positions below `ends[i]` only.
///
/// # Safety
/// AVX-512F and F16C; `hd` a multiple of 16, `keys` `cap × hd` (blocks of 16 positions, dimension-major), `values` `cap × hd`,
/// `hi ≤ cap`, `cap` a multiple of 16, every `ends[i] > lo`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,f16c,fma")]
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
    let rows = ends.len();
    let len = hi - lo;
    let padded = len.div_ceil(16) * 16;
    scores.clear();
    scores.resize(rows * padded, 0.0);
    let mut r = 0;
    while r < rows {
        let n = (rows - r).min(4);
        // SAFETY: as the caller promised, for rows r..r + n.
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

/// Query rows `r0..r0 + N` of [`attend_impl`].
///
/// # Safety
/// As for [`attend_impl`], and `r0 + N ≤` the number of query rows.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,f16c,fma")]
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
            let mut acc = [_mm512_setzero_ps(); N];
            for d in 0..hd {
                let k = _mm512_cvtph_ps(_mm256_loadu_si256(kp.add(j * hd + d * 16).cast()));
                for (i, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*qp.add(i * hd + d)), k, *acc);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(sp.add(i * padded + blk * 16), *acc);
            }
        }
        // Softmax pieces per row over its visible positions; the rest become 0.
        for i in 0..N {
            let row = std::slice::from_raw_parts_mut(sp.add(i * padded), padded);
            let visible = ends[r0 + i].min(hi) - lo;
            let max = row[..visible]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let maxv = _mm512_set1_ps(max);
            let mut sumv = _mm512_setzero_ps();
            let mut k = 0;
            while k < blocks * 16 {
                let mask: __mmask16 = if visible >= k + 16 {
                    0xffff
                } else if visible > k {
                    (1u16 << (visible - k)) - 1
                } else {
                    0
                };
                let s = _mm512_loadu_ps(row.as_ptr().add(k));
                let e = _mm512_maskz_mov_ps(mask, exp_ps(_mm512_sub_ps(s, maxv)));
                sumv = _mm512_add_ps(sumv, e);
                _mm512_storeu_ps(row.as_mut_ptr().add(k), e);
                k += 16;
            }
            part.max[r0 + i] = max;
            part.sum[r0 + i] = _mm512_reduce_add_ps(sumv);
        }
        // Values: 64 output dimensions at a time.
        let vp = values.as_ptr();
        let op = part.out.as_mut_ptr().add(r0 * hd);
        let mut d0 = 0;
        while d0 < hd {
            let nv = ((hd - d0) / 16).min(4);
            let mut acc = [[_mm512_setzero_ps(); 4]; N];
            for jj in 0..end - lo {
                let vrow = vp.add((lo + jj) * hd + d0);
                let mut v = [_mm512_setzero_ps(); 4];
                for (x, v) in v.iter_mut().enumerate().take(nv) {
                    *v = _mm512_cvtph_ps(_mm256_loadu_si256(vrow.add(16 * x).cast()));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let p = _mm512_set1_ps(*sp.add(i * padded + jj));
                    for x in 0..nv {
                        acc[x] = _mm512_fmadd_ps(p, v[x], acc[x]);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                for (x, acc) in acc.iter().enumerate().take(nv) {
                    _mm512_storeu_ps(op.add(i * hd + d0 + 16 * x), *acc);
                }
            }
            d0 += 16 * nv;
        }
    }
}
