//! The BERT matmul on AMX-BF16 tiles (Intel Sapphire Rapids and later), behind the
//! [`Amx`] token: the same operands as the AVX-512 BF16 kernel (pairs of bf16, B packed
//! 32 columns wide) and the same arithmetic (bf16 products summed in f32), but one
//! `tdpbf16ps` multiplies a 16×32 block of A by a 32×16 block of B, 8,192 multiply-adds,
//! where a `vdpbf16ps` does 32. On the Xeon this was written on, `vdpbf16ps` runs at
//! half the rate of an f32 FMA, so the AVX-512 BF16 kernel was slower than the AVX2 one;
//! the tiles are about 15 times an FMA's rate at their peak.
//!
//! C is computed 32 rows × 32 columns at a time in four accumulator tiles (`tmm0-3`),
//! A's two 16-row tiles in `tmm4-5`, B's two 16-column tiles in `tmm6-7`. A block of
//! rows of A is first copied into a panel padded with zeros to 32 rows and to whole
//! tiles along k, so every tile load reads inside it; B's last, partial k tile is
//! copied the same way. The bias is loaded into the accumulators at the start (a tile
//! load with stride 0 repeats one row), so C is written once.
//!
//! The tiles live outside the registers the compiler knows, so each step is its own
//! `asm!` block; they are not `pure`, so the compiler keeps them in order.

// The tile instructions are inline assembly through raw pointers.
#![allow(unsafe_code)]

use std::arch::asm;

use super::{PackedB, check_shapes, only_bias};
use crate::cpu::Amx;

/// Rows of an A or C tile, and pairs of bf16 along k per A row (= rows of a B tile).
const TILE: usize = 16;
/// Columns of the packed B (the AVX-512 BF16 kernel's tile width), two C tiles.
const NR: usize = 32;
/// Rows of C per block: two A tiles.
const MR: usize = 32;

/// The `ldtilecfg` operand: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = {
    let mut bytes_per_row = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut i = 0;
    while i < 8 {
        bytes_per_row[i] = 64;
        rows[i] = TILE as u8;
        i += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row,
        rows,
    }
};

/// A buffer aligned as tile rows like to be (64 bytes).
#[repr(C, align(64))]
struct Aligned<T>(T);

/// Per-thread buffers: A's padded panel, B's padded last k tile (16 rows of 32
/// lanes), a 32 × 32 C block for the edges, the bias row.
struct Buffers {
    panel: Vec<u32>,
    b_tail: Aligned<[u32; TILE * NR]>,
    c_edge: Aligned<[f32; MR * NR]>,
    bias: Aligned<[f32; NR]>,
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = const {
        std::cell::RefCell::new(Buffers {
            panel: Vec::new(),
            b_tail: Aligned([0; TILE * NR]),
            c_edge: Aligned([0.0; MR * NR]),
            bias: Aligned([0.0; NR]),
        })
    };
}

/// `Kernel::gemm` for `Bf16` on AMX: `c[r][j] = Σ a[r]·b[j] (+ bias[j])` for `rows`
/// rows of A (pairs of bf16, `lda` apart, the first `b.kl` used) and the `b.n`
/// columns of B, into `c` (`ldc` per row).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    amx: Amx,
    a: &[u32],
    lda: usize,
    rows: usize,
    b: &PackedB<u32>,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    assert_eq!(b.nr, NR, "amx::gemm: B is packed for another kernel");
    let kl = b.kl;
    check_shapes(a, lda, rows, kl, b.n, bias, c, ldc);
    if rows == 0 || b.n == 0 {
        return;
    }
    if kl == 0 {
        return only_bias(rows, b.n, bias, c, ldc);
    }
    // The panel's rows: `kl` pairs padded to whole k tiles.
    let panel_stride = kl.div_ceil(TILE) * TILE;
    BUFFERS.with(|buffers| {
        let buffers = &mut *buffers.borrow_mut();
        buffers.panel.clear();
        buffers.panel.resize(MR * panel_stride, 0);
        // SAFETY: the token proves AMX-BF16 and the permission to use it; CONFIG is a
        // valid palette-1 configuration, 64 bytes, aligned.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        for m0 in (0..rows).step_by(MR) {
            let m = MR.min(rows - m0);
            fill_panel(&mut buffers.panel, panel_stride, &a[m0 * lda..], lda, m, kl);
            for t in 0..b.tiles() {
                let cols = NR.min(b.n - t * NR);
                let tile_b = &b.data[t * kl * NR..(t + 1) * kl * NR];
                block(
                    amx,
                    buffers,
                    panel_stride,
                    tile_b,
                    kl,
                    bias.map(|bias| &bias[t * NR..t * NR + cols]),
                );
                let full = m == MR && cols == NR;
                let out = &mut c[m0 * ldc + t * NR..];
                if full {
                    // SAFETY: all 32 rows and 32 columns of this block are inside C:
                    // row `m0 + 31 < rows` and column `t·32 + 31 < n ≤ ldc`, and
                    // `check_shapes` saw C reach `(rows-1)·ldc + n`.
                    unsafe { store(out.as_mut_ptr(), ldc * 4) };
                } else {
                    // SAFETY: `c_edge` holds 32 rows of 32 floats (128 bytes apart).
                    unsafe { store(buffers.c_edge.0.as_mut_ptr(), NR * 4) };
                    for (r, edge) in buffers.c_edge.0.chunks_exact(NR).take(m).enumerate() {
                        out[r * ldc..r * ldc + cols].copy_from_slice(&edge[..cols]);
                    }
                }
            }
        }
        // SAFETY: returns the tiles to their initial state (no operands).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    });
}

/// Copies `m ≤ 32` rows of A (`kl` pairs each, `lda` apart) into the panel (`stride`
/// pairs per row), zeros elsewhere.
fn fill_panel(panel: &mut [u32], stride: usize, a: &[u32], lda: usize, m: usize, kl: usize) {
    for (r, dst) in panel.chunks_exact_mut(stride).enumerate() {
        if r < m {
            dst[..kl].copy_from_slice(&a[r * lda..r * lda + kl]);
            dst[kl..].fill(0);
        } else {
            dst.fill(0);
        }
    }
}

/// The four accumulator tiles over the whole k range for one block: the panel's 32
/// rows against one packed B tile of 32 columns (`kl` pairs), starting from the bias
/// (`bias`, up to 32 columns; zero past it) or zero. The token is the proof that the
/// tile instructions may run; the caller has loaded the tile configuration.
fn block(
    _: Amx,
    buffers: &mut Buffers,
    stride: usize,
    tile_b: &[u32],
    kl: usize,
    bias: Option<&[f32]>,
) {
    let row_bytes = stride * 4;
    match bias {
        Some(bias) => {
            for (j, v) in buffers.bias.0.iter_mut().enumerate() {
                *v = bias.get(j).copied().unwrap_or(0.0);
            }
            let p = buffers.bias.0.as_ptr();
            // SAFETY: each load reads 16 rows of 64 bytes at stride 0: the same 64
            // bytes of `bias`, which holds 128.
            unsafe {
                asm!(
                    "tileloadd tmm0, [{lo} + {zero}*1]",
                    "tileloadd tmm1, [{hi} + {zero}*1]",
                    "tileloadd tmm2, [{lo} + {zero}*1]",
                    "tileloadd tmm3, [{hi} + {zero}*1]",
                    lo = in(reg) p,
                    hi = in(reg) p.add(TILE),
                    zero = in(reg) 0usize,
                    options(nostack, readonly),
                )
            };
        }
        // SAFETY: no operands.
        None => unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        },
    }
    for kt in 0..kl.div_ceil(TILE) {
        let (b_ptr, b_stride) = if (kt + 1) * TILE <= kl {
            (tile_b[kt * TILE * NR..].as_ptr(), NR * 4)
        } else {
            // The last, partial k tile: its rows of B, then zeros.
            let rest = &tile_b[kt * TILE * NR..kl * NR];
            let tail = &mut buffers.b_tail.0;
            tail[..rest.len()].copy_from_slice(rest);
            tail[rest.len()..].fill(0);
            (tail.as_ptr(), NR * 4)
        };
        let a_ptr = buffers.panel[kt * TILE..].as_ptr();
        // SAFETY: A's tiles read 16 rows of 64 bytes (16 pairs) at pair `kt·16` of the
        // panel's rows 0-15 and 16-31 (`row_bytes` apart): inside its 32 rows of
        // `stride` pairs, since `kt·16 + 16 ≤ stride`. B's read 16 rows of 64 bytes, 128
        // apart, at lane 0 and 16: inside `tile_b`'s `kl` rows of 32 lanes (a whole k
        // tile) or `b_tail`'s 16.
        unsafe {
            asm!(
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm5, [{a1} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tileloadd tmm7, [{b1} + {sb}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a0 = in(reg) a_ptr,
                a1 = in(reg) a_ptr.cast::<u8>().add(TILE * row_bytes),
                sa = in(reg) row_bytes,
                b0 = in(reg) b_ptr,
                b1 = in(reg) b_ptr.add(TILE),
                sb = in(reg) b_stride,
                options(nostack, readonly),
            )
        };
    }
}

/// Stores the four accumulator tiles as a 32 × 32 block of f32 at `out`, rows
/// `stride` bytes apart.
///
/// # Safety
/// `out` is writable for 32 rows of 32 floats, `stride` bytes apart.
unsafe fn store(out: *mut f32, stride: usize) {
    // SAFETY: the caller's promise.
    unsafe {
        asm!(
            "tilestored [{c0} + {s}*1], tmm0",
            "tilestored [{c1} + {s}*1], tmm1",
            "tilestored [{c2} + {s}*1], tmm2",
            "tilestored [{c3} + {s}*1], tmm3",
            c0 = in(reg) out,
            c1 = in(reg) out.add(TILE),
            c2 = in(reg) out.cast::<u8>().add(TILE * stride),
            c3 = in(reg) out.cast::<u8>().add(TILE * stride).cast::<f32>().add(TILE),
            s = in(reg) stride,
            options(nostack),
        )
    };
}
