//! The BERT matmul kernel for CPUs with AVX2 + FMA: f32 operands, 6 rows × 16 columns
//! of C per tile (12 of the 16 ymm registers accumulate, two hold B, one broadcasts
//! A), the classic Haswell SGEMM shape, blocked for the caches. Behind the `Avx2` token, the proof that the
//! CPU has the features.

// The micro-kernel calls AVX intrinsics through raw pointers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::PackedB;
use crate::cpu::Avx2;

/// Rows of one micro-kernel tile (its 16 columns are `F32::NR`).
const MR: usize = 6;
const NR: usize = 16;

/// Rows of A per block (whose panels stay in L2) and k per block (so a B tile's
/// slice, 16 KB, stays in L1 while every row tile of the block passes over it).
const MC: usize = 12 * MR;
const KC: usize = 256;

/// `Kernel::gemm` for `F32` with AVX2: blocked as BLIS does, with A copied into
/// `MR`-row panels (k-major) so the micro-kernel's broadcasts read one stream.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    _: Avx2,
    a: &[f32],
    lda: usize,
    rows: usize,
    b: &PackedB<f32>,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    assert_eq!(b.nr, NR, "gemm: B is packed for another kernel");
    let k = b.kl;
    assert!(lda >= k, "gemm: A rows are narrower than B's");
    assert!(
        rows == 0 || a.len() >= (rows - 1) * lda + k,
        "gemm: A is too short"
    );
    assert!(
        rows == 0 || c.len() >= (rows - 1) * ldc + b.n,
        "gemm: C is too short"
    );
    assert!(ldc >= b.n, "gemm: C rows are narrower than B");
    if let Some(bias) = bias {
        assert!(bias.len() >= b.n, "gemm: bias is too short");
    }
    if k == 0 {
        for r in 0..rows {
            for (j, out) in c[r * ldc..r * ldc + b.n].iter_mut().enumerate() {
                *out = bias.map_or(0.0, |bias| bias[j]);
            }
        }
        return;
    }
    PANELS.with(|panels| {
        let mut panels = panels.borrow_mut();
        for m0 in (0..rows).step_by(MC) {
            let mc = MC.min(rows - m0);
            let row_tiles = mc.div_ceil(MR);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                // A[m0.., k0..k0 + kc] as panels of MR rows, k-major; missing rows 0.
                panels.clear();
                panels.resize(row_tiles * kc * MR, 0.0);
                for (r, row) in (m0..m0 + mc).enumerate() {
                    let src = &a[row * lda + k0..row * lda + k0 + kc];
                    let panel = &mut panels[(r / MR) * kc * MR..][..kc * MR];
                    for (p, &v) in src.iter().enumerate() {
                        panel[p * MR + r % MR] = v;
                    }
                }
                let first = k0 == 0;
                for t in 0..b.tiles() {
                    let cols = NR.min(b.n - t * NR);
                    let b_tile = &b.data[(t * k + k0) * NR..(t * k + k0 + kc) * NR];
                    let bias_tile = if first {
                        bias.map(|bias| &bias[t * NR..t * NR + cols])
                    } else {
                        None
                    };
                    for rt in 0..row_tiles {
                        let r0 = m0 + rt * MR;
                        let r = MR.min(rows - r0);
                        let panel = &panels[rt * kc * MR..(rt + 1) * kc * MR];
                        let out = &mut c[r0 * ldc + t * NR..];
                        // SAFETY: the token proves the features; the panel holds
                        // `kc·MR`, the B slice `kc·16`, and C reaches `(r-1)·ldc +
                        // cols` (checked above).
                        unsafe {
                            tile_kernel(panel, kc, b_tile, first, bias_tile, out, ldc, r, cols)
                        };
                    }
                }
            }
        }
    });
}

thread_local! {
    static PANELS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` compiled for AVX2 + FMA.
pub(super) fn vectorized<R>(_: Avx2, f: impl FnOnce() -> R) -> R {
    // SAFETY: the token proves the features.
    unsafe { with_avx2(f) }
}

/// Runs `f` (inlined here) compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// One `MR × 16` tile of C over `kc`: `c = acc + bias` on the first k block (`first`),
/// else `c += acc`; rows past `rows` and columns past `cols` are left alone.
///
/// # Safety
/// AVX2 and FMA; `panel` holds `kc·MR` floats, `b` `kc·16`, and `c` reaches
/// `(rows-1)·ldc + cols` with `rows ≤ MR`, `cols ≤ 16`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_kernel(
    panel: &[f32],
    kc: usize,
    b: &[f32],
    first: bool,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    debug_assert!(panel.len() >= kc * MR && b.len() >= kc * NR && cols <= NR && rows <= MR);
    debug_assert!(c.len() >= (rows - 1) * ldc + cols);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let ap = panel.as_ptr();
    let bp = b.as_ptr();
    for p in 0..kc {
        // SAFETY: p < kc keeps every read inside the slices checked above.
        unsafe {
            let b0 = _mm256_loadu_ps(bp.add(p * NR));
            let b1 = _mm256_loadu_ps(bp.add(p * NR + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(p * MR + r));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    let mut row = [0f32; NR];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: `row` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
        }
        let out = &mut c[r * ldc..r * ldc + cols];
        match (first, bias) {
            (true, Some(bias)) => {
                for ((o, v), b) in out.iter_mut().zip(&row).zip(bias) {
                    *o = v + b;
                }
            }
            (true, None) => out.copy_from_slice(&row[..cols]),
            (false, _) => {
                for (o, v) in out.iter_mut().zip(&row) {
                    *o += v;
                }
            }
        }
    }
}
