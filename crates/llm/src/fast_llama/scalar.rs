//! The llama kernels in plain Rust, for any CPU: the same packed weights, 8-bit
//! activations and f16 KV cache as the SIMD kernels, so every level computes the same
//! thing (the tests run each against candle's model).

use super::{BLOCK, CHUNK, Partial, QActs, QMatrix, f16_to_f32};

/// Rows `r0..r1` of `out` (`x.tokens × w.rows`) for every token.
///
/// # Safety
/// `out` is valid for writes of `x.tokens × w.rows` floats and no other thread touches
/// rows `r0..r1` of it meanwhile.
pub(super) unsafe fn matmul_rows(w: &QMatrix, x: &QActs, r0: usize, r1: usize, out: *mut f32) {
    assert!(r1 <= w.rows && x.chunks == w.chunks);
    let (chunks, nb, cb) = (w.chunks, w.chunks * 2, w.chunk_bytes());
    let mut d = vec![0f32; nb];
    let mut m = vec![0f32; nb];
    let mut u = [0u8; CHUNK];
    for r in r0..r1 {
        for (b, (d, m)) in d.iter_mut().zip(m.iter_mut()).enumerate() {
            *d = f16_to_f32(w.d[r * nb + b]);
            *m = f16_to_f32(w.m[r * nb + b]);
        }
        for t in 0..x.tokens {
            let mut acc = 0f32;
            for c in 0..chunks {
                let bytes = &w.data[(r * chunks + c) * cb..][..cb];
                if w.nibbles {
                    for (i, &byte) in bytes.iter().enumerate() {
                        u[i] = byte & 0x0f;
                        u[i + CHUNK / 2] = byte >> 4;
                    }
                } else {
                    u.copy_from_slice(bytes);
                }
                let q = &x.q[(t * chunks + c) * CHUNK..][..CHUNK];
                // 4-byte lanes alternate between the chunk's two blocks.
                let mut sums = [0i32; 2];
                for (lane, (u, q)) in u.chunks_exact(4).zip(q.chunks_exact(4)).enumerate() {
                    let dot: i32 = u
                        .iter()
                        .zip(q)
                        .map(|(&u, &q)| i32::from(u) * i32::from(q))
                        .sum();
                    sums[lane % 2] += dot;
                }
                let xs = &x.scale[(t * chunks + c) * 16..][..2];
                acc += sums[0] as f32 * d[2 * c] * xs[0] + sums[1] as f32 * d[2 * c + 1] * xs[1];
            }
            let minimums: f32 = m
                .iter()
                .zip(&x.sums[t * nb..(t + 1) * nb])
                .map(|(m, s)| m * s)
                .sum();
            // SAFETY: t < tokens and r < rows, a row the caller gave this task.
            unsafe { *out.add(t * w.rows + r) = acc + minimums };
        }
    }
}

/// `out = silu(gate) · up` row by row (`gu` is `tokens × 2n`, `out` `tokens × n`).
pub(super) fn swiglu(gu: &[f32], n: usize, out: &mut [f32]) {
    for (row, out) in gu.chunks_exact(2 * n).zip(out.chunks_exact_mut(n)) {
        let (gate, up) = row.split_at(n);
        for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
            *o = g / (1.0 + (-g).exp()) * u;
        }
    }
}

/// `dst = src` as f16 (round to nearest even).
pub(super) fn to_f16(src: &[f32], dst: &mut [u16]) {
    for (s, d) in src.iter().zip(dst) {
        *d = f32_to_f16(*s);
    }
}

/// f32 → f16 bits, rounding to nearest even, as F16C does.
pub(super) fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        // Inf stays inf; NaN stays a (quiet) NaN.
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal (or zero) in f16: shift the implicit bit in, round to even.
        if e < -10 {
            return sign;
        }
        let man = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = man >> shift;
        let rest = man & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round = rest > halfway || (rest == halfway && half & 1 == 1);
        return sign | (half + u32::from(round)) as u16;
    }
    let half = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    let round = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    // A carry out of the mantissa bumps the exponent, up to inf: still correct.
    sign | (half + u32::from(round)) as u16
}

/// See `super::attend`.
#[allow(clippy::too_many_arguments)]
pub(super) fn attend(
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
    assert!(hi <= cap && cap.is_multiple_of(16) && hd.is_multiple_of(16));
    assert!(keys.len() >= cap * hd && values.len() >= cap * hd && q.len() >= ends.len() * hd);
    assert!(ends.iter().all(|&e| e > lo));
    let mut key = vec![0f32; hd];
    let mut value = vec![0f32; hd];
    for (i, &end) in ends.iter().enumerate() {
        let end = end.min(hi);
        let q = &q[i * hd..(i + 1) * hd];
        scores.clear();
        for j in lo..end {
            let block = &keys[(j / 16) * 16 * hd..][..16 * hd];
            for (d, k) in key.iter_mut().enumerate() {
                *k = f16_to_f32(block[d * 16 + j % 16]);
            }
            scores.push(q.iter().zip(&key).map(|(a, b)| a * b).sum());
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let out = &mut part.out[i * hd..(i + 1) * hd];
        out.fill(0.0);
        let mut sum = 0f32;
        for (j, s) in (lo..end).zip(scores.iter()) {
            let p = (s - max).exp();
            sum += p;
            for (v, &h) in value.iter_mut().zip(&values[j * hd..(j + 1) * hd]) {
                *v = f16_to_f32(h);
            }
            for (o, v) in out.iter_mut().zip(&value) {
                *o += p * v;
            }
        }
        part.max[i] = max;
        part.sum[i] = sum;
    }
}

/// `QActs::quantize` one block at a time, any width; the buffers are sized.
pub(super) fn quantize(acts: &mut QActs, x: &[f32], cols: usize) {
    let (tokens, chunks) = (acts.tokens, acts.chunks);
    for t in 0..tokens {
        let row = &x[t * cols..(t + 1) * cols];
        for b in 0..chunks * 2 {
            let start = (b * BLOCK).min(cols);
            let block = &row[start..((b + 1) * BLOCK).min(cols)];
            let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            // As the vector kernels: d = amax/127 and values times 127/amax, rounded
            // to nearest even.
            let d = amax / 127.0;
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let (c, half) = (b / 2, b % 2);
            let q = &mut acts.q[(t * chunks + c) * CHUNK..][..CHUNK];
            let mut sum = 0i32;
            for (e, v) in block.iter().enumerate() {
                let v = (v * inv).round_ties_even() as i8;
                q[super::slot(half, e)] = v;
                sum += i32::from(v);
            }
            let scale = &mut acts.scale[(t * chunks + c) * 16..][..16];
            for lane in (half..16).step_by(2) {
                scale[lane] = d;
            }
            acts.sums[t * chunks * 2 + b] = d * sum as f32;
        }
    }
}
