//! The BERT matmul kernel for CPUs with AVX-512 BF16: `vdpbf16ps` multiplies pairs of
//! bf16 with f32 accumulation, 8 rows × 32 columns of C per tile (16 of the 32 zmm
//! registers). Behind the `Avx512Bf16` token, the proof that the CPU has the features.

// The micro-kernel calls AVX-512 intrinsics through raw pointers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{Kernel, PackedB, gemm_blocks, pair};
use crate::cpu::{Amx, Avx512Bf16};

/// Rows and columns of one micro-kernel tile.
const MR: usize = 8;
const NR: usize = 32;

/// Operands as pairs of bf16, multiplied with AVX-512 BF16, or on AMX tiles
/// (`super::amx`) when the CPU has them.
#[derive(Clone, Copy)]
pub(crate) struct Bf16 {
    token: Avx512Bf16,
    amx: Option<Amx>,
}

impl Bf16 {
    /// The kernels for this CPU: AMX tiles when [`Amx::detect`] finds them usable.
    pub(crate) fn new(token: Avx512Bf16) -> Self {
        Self {
            token,
            amx: Amx::detect(),
        }
    }

    /// Without the tiles (tests compare the two).
    #[cfg(test)]
    pub(crate) fn without_amx(token: Avx512Bf16) -> Self {
        Self { token, amx: None }
    }
}

impl Kernel for Bf16 {
    type E = u32;
    type W = PackedB<u32>;
    const PER: usize = 2;
    const NR: usize = NR;

    fn weight(self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> PackedB<u32> {
        PackedB::new::<Self>(n, k, get)
    }

    fn gemm_weight(
        self,
        a: &[u32],
        lda: usize,
        rows: usize,
        w: &PackedB<u32>,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    ) {
        self.gemm(a, lda, rows, w, bias, c, ldc);
    }

    fn element(lo: f32, hi: f32) -> u32 {
        pair(lo, hi)
    }

    fn view(_: &[f32]) -> Option<&[u32]> {
        None
    }

    fn gemm(
        self,
        a: &[u32],
        lda: usize,
        rows: usize,
        b: &PackedB<u32>,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    ) {
        if let Some(amx) = self.amx {
            return super::amx::gemm(amx, a, lda, rows, b, bias, c, ldc);
        }
        gemm_blocks(
            a,
            lda,
            rows,
            b,
            bias,
            c,
            ldc,
            MR,
            |r, a, lda, b, bias, c, ldc, cols| {
                let kp = b.len() / NR;
                // SAFETY: the token proves the features; `gemm_blocks` checked that A
                // reaches `(r-1)·lda + kp` and C `(r-1)·ldc + cols` for this tile.
                unsafe {
                    match r {
                        8 => tile_kernel::<8>(a, lda, kp, b, bias, c, ldc, cols),
                        7 => tile_kernel::<7>(a, lda, kp, b, bias, c, ldc, cols),
                        6 => tile_kernel::<6>(a, lda, kp, b, bias, c, ldc, cols),
                        5 => tile_kernel::<5>(a, lda, kp, b, bias, c, ldc, cols),
                        4 => tile_kernel::<4>(a, lda, kp, b, bias, c, ldc, cols),
                        3 => tile_kernel::<3>(a, lda, kp, b, bias, c, ldc, cols),
                        2 => tile_kernel::<2>(a, lda, kp, b, bias, c, ldc, cols),
                        _ => tile_kernel::<1>(a, lda, kp, b, bias, c, ldc, cols),
                    }
                }
            },
        );
    }

    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        with_avx512(self.token, f)
    }
}

/// Runs `f` compiled for AVX-512, with the token that proves the features.
fn with_avx512<R>(_: Avx512Bf16, f: impl FnOnce() -> R) -> R {
    // SAFETY: the token proves the features.
    unsafe { with_avx512_features(f) }
}

/// Runs `f` (inlined here) compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512 F, BW, DQ, VL and AVX2 + FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn with_avx512_features<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// One `R × 32` tile of C over the whole k range.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16; `a` reaches `(R-1)·lda + kp` pairs,
/// `b` holds `kp·32`, and `c` reaches `(R-1)·ldc + cols`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_kernel<const R: usize>(
    a: &[u32],
    lda: usize,
    kp: usize,
    b: &[u32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    debug_assert!(a.len() >= (R - 1) * lda + kp && b.len() >= kp * NR && cols <= NR);
    debug_assert!(c.len() >= (R - 1) * ldc + cols);
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let a = a.as_ptr();
    let b = b.as_ptr();
    for p in 0..kp {
        // SAFETY: p < kp and r < R keep every read inside the slices checked above.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + p) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
            }
        }
    }
    let lo_mask: __mmask16 = if cols >= 16 {
        0xffff
    } else {
        (1u16 << cols) - 1
    };
    let hi_mask: __mmask16 = if cols >= 32 {
        0xffff
    } else if cols > 16 {
        (1u16 << (cols - 16)) - 1
    } else {
        0
    };
    // SAFETY: the masks keep loads and stores inside `cols` of each row.
    unsafe {
        let (bias0, bias1) = match bias {
            Some(bias) => (
                _mm512_maskz_loadu_ps(lo_mask, bias.as_ptr()),
                _mm512_maskz_loadu_ps(hi_mask, bias.as_ptr().add(16)),
            ),
            None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
        };
        let c = c.as_mut_ptr();
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            _mm512_mask_storeu_ps(row, lo_mask, _mm512_add_ps(acc[0], bias0));
            _mm512_mask_storeu_ps(row.add(16), hi_mask, _mm512_add_ps(acc[1], bias1));
        }
    }
}
