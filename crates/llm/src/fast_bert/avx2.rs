//! The BERT matmul kernels for CPUs with AVX2 + FMA, behind the `Avx2` token, the proof
//! that the CPU has the features. Both compute 6 rows × 16 columns of C per tile (12 of
//! the 16 ymm registers accumulate, two hold B, one broadcasts A), blocked for the
//! caches as BLIS does:
//! - [`gemm`]: f32 operands and FMA, the classic Haswell SGEMM shape (attention, whose
//!   both operands change with every text);
//! - [`gemm_int`]: the linear layers' constant weights as integers with one scale per
//!   output column, the activations quantised per row and k block as they are packed,
//!   and the i32 sums scaled back to f32 at the end of each k block. [`Width::Int16`]
//!   multiplies 16-bit integers with `vpmaddwd` (16 multiply-adds into 8 i32 lanes per
//!   instruction, twice an f32 FMA's 8), or with VNNI's `vpdpwssd`, which adds too;
//!   [`Width::Int8`] needs VNNI and multiplies 8-bit ones with `vpdpbusd` (32
//!   multiply-adds per instruction), for the layers that tolerate it. VNNI is
//!   AVX-VNNI on 256-bit tiles, or, at the embeddings' AVX-512 level, AVX-512 VNNI on
//!   two tiles at a time in 512-bit registers.
//!
//! [`softmax`] and [`gelu`] are the pass's elementwise steps with intrinsics: the same
//! polynomials as the plain Rust ones, each step a fused multiply-add.

// The micro-kernel calls AVX intrinsics through raw pointers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{
    ERF_P, ERF_POLY, EXP_LN2, EXP_POLY, EXP_RANGE, EXP_SHIFT, PackedB, check_shapes, only_bias,
};
use crate::cpu::{Avx2, Avx512Vnni, AvxVnni};

/// The largest quantised activation and weight. A k block's i32 sum stays below
/// `KC · A_MAX · B_MAX` = 2,143,158,528 < 2³¹, so it cannot overflow; within that
/// bound the activations keep 15 bits (they have outliers) and the weights 10 bits
/// per column, both finer than bf16's 8-bit mantissa where it matters.
const A_MAX: f32 = 16_383.0;
const B_MAX: f32 = 511.0;
const _: () = assert!(KC as f64 * (A_MAX as f64 + 1.0) * B_MAX as f64 <= i32::MAX as f64);

/// `Width::Int8`'s largest activation (they are `0..=U8_MAX` around a zero point) and
/// largest weight magnitude (`±I8_MAX`).
const U8_MAX: f32 = 255.0;
const I8_MAX: f32 = 127.0;

/// `Width::Int8`'s k per block: its B tile is 8 KB, and its i32 sums (at most
/// `KC8 · U8_MAX · I8_MAX`, 16.6 million) and the zero point's correction stay exact in
/// f32.
const KC8: usize = 512;
const _: () = assert!(KC8 as f64 * U8_MAX as f64 * I8_MAX as f64 <= (1u32 << 24) as f64);

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
    check_shapes(a, lda, rows, k, b.n, bias, c, ldc);
    if k == 0 {
        return only_bias(rows, b.n, bias, c, ldc);
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
    static INT_PANELS: std::cell::RefCell<IntPanels> = const {
        std::cell::RefCell::new(IntPanels {
            lanes: Vec::new(),
            scales: Vec::new(),
            zeros: Vec::new(),
            row: Vec::new(),
        })
    };
}

/// How a linear layer's integers are laid out and multiplied: the 32-bit lane of a
/// weight tile holds two i16 or four i8 of k, and the activations' lane the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Width {
    /// Weights to `±B_MAX`, activations to `±A_MAX` per row and k block;
    /// `vpmaddwd` + `vpaddd`, or `vpdpwssd`.
    Int16,
    /// Weights to `±I8_MAX`, activations to `0..=U8_MAX` per row and k block with a
    /// zero point; `vpdpbusd`, so VNNI only (AVX2's `vpmaddubsw` would saturate
    /// its pair sums of 8-bit activations, and 7 bits cost the embeddings too much).
    /// Half the multiply instructions of `Int16`, at a coarser rounding: only for the
    /// layers whose outputs keep the embeddings within the tolerance (see
    /// `Kernel::coarse_weight`).
    Int8,
}

impl Width {
    /// k values per 32-bit lane.
    const fn per(self) -> usize {
        match self {
            Self::Int16 => 2,
            Self::Int8 => 4,
        }
    }

    /// k per block: the i32 sums of a block cannot overflow, and its B tile (16 KB
    /// or less) stays in L1 while every row tile of the block passes over it.
    const fn kc(self) -> usize {
        match self {
            Self::Int16 => KC,
            Self::Int8 => KC8,
        }
    }

    /// The largest quantised weight.
    const fn b_max(self) -> f32 {
        match self {
            Self::Int16 => B_MAX,
            Self::Int8 => I8_MAX,
        }
    }
}

/// A linear layer's constant weight (`n × k`, row-major like a torch Linear) for
/// [`gemm_int`]: each row quantised to `±width.b_max()` with its own scale, packed per
/// tile of 16 rows and per lane of k (`width.per()` values of one row in each of the
/// 16 lanes; a missing value or row is 0). Carries the token its kernel needs.
pub(crate) struct IntB {
    token: Avx2,
    width: Width,
    /// AVX-VNNI, when the CPU has it: `vpdpwssd` / `vpdpbusd` instead of the AVX2
    /// sequences.
    vnni: Option<AvxVnni>,
    /// AVX-512 VNNI, when the embedding model runs at the AVX-512 level with integers:
    /// two tiles at a time on 512-bit registers, and the EVEX encoding of the VNNI
    /// instructions for a last odd tile.
    zmm: Option<Avx512Vnni>,
    /// Per tile, per lane of k: the tile's 16 columns.
    data: Vec<LaneRow>,
    /// Per row of the weight (column of C), `tiles · 16` long, padding 0.
    scales: Vec<f32>,
    /// `Int8` only: per tile, per k block, the sum of each of its 16 columns' quantised
    /// weights over the block (exact in f32: at most `KC8 · I8_MAX`), which the zero
    /// point of each row of activations multiplies.
    sums: Vec<f32>,
    n: usize,
    k: usize,
}

impl IntB {
    /// 16-bit integers, multiplied with AVX-VNNI when the CPU has it, and on 512-bit
    /// registers with `zmm`.
    pub(super) fn int16(
        token: Avx2,
        zmm: Option<Avx512Vnni>,
        n: usize,
        k: usize,
        get: impl Fn(usize, usize) -> f32,
    ) -> Self {
        Self::new(token, Width::Int16, (AvxVnni::detect(), zmm), n, k, get)
    }

    /// Whether 8-bit integers can be multiplied here: with AVX-VNNI or with `zmm`.
    pub(super) fn int8_runs(zmm: Option<Avx512Vnni>) -> bool {
        zmm.is_some() || AvxVnni::detect().is_some()
    }

    /// 8-bit integers; only when [`IntB::int8_runs`].
    pub(super) fn int8(
        token: Avx2,
        zmm: Option<Avx512Vnni>,
        n: usize,
        k: usize,
        get: impl Fn(usize, usize) -> f32,
    ) -> Self {
        assert!(Self::int8_runs(zmm), "8-bit weights need VNNI");
        Self::new(token, Width::Int8, (AvxVnni::detect(), zmm), n, k, get)
    }

    fn new(
        token: Avx2,
        width: Width,
        (vnni, zmm): (Option<AvxVnni>, Option<Avx512Vnni>),
        n: usize,
        k: usize,
        get: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let (per, b_max) = (width.per(), width.b_max());
        let (tiles, kl, blocks) = (n.div_ceil(NR), k.div_ceil(per), k.div_ceil(width.kc()));
        let mut data = vec![LaneRow([0; NR]); tiles * kl];
        let mut scales = vec![0f32; tiles * NR];
        let mut sums = match width {
            Width::Int16 => Vec::new(),
            Width::Int8 => vec![0f32; tiles * blocks * NR],
        };
        let mut q = vec![0i32; kl * per];
        for (row, scale) in scales.iter_mut().enumerate().take(n) {
            let max = (0..k).map(|col| get(row, col).abs()).fold(0f32, f32::max);
            let inv = if max > 0.0 { b_max / max } else { 0.0 };
            *scale = max / b_max;
            for (col, q) in q.iter_mut().enumerate() {
                *q = if col < k {
                    (get(row, col) * inv).round().clamp(-b_max, b_max) as i32
                } else {
                    0
                };
            }
            let (tile, lane) = (row / NR, row % NR);
            for (l, lanes) in data[tile * kl..][..kl].iter_mut().enumerate() {
                let values = &q[l * per..(l + 1) * per];
                lanes.0[lane] = match width {
                    Width::Int16 => u32::from(values[0] as u16) | u32::from(values[1] as u16) << 16,
                    Width::Int8 => values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| u32::from(v as u8) << (8 * i))
                        .fold(0, |lanes, v| lanes | v),
                };
            }
            if !sums.is_empty() {
                for (block, values) in q.chunks(width.kc()).enumerate() {
                    sums[(tile * blocks + block) * NR + lane] = values.iter().sum::<i32>() as f32;
                }
            }
        }
        Self {
            token,
            width,
            vnni,
            zmm,
            data,
            scales,
            sums,
            n,
            k,
        }
    }

    /// A copy with other kernels (tests compare them); 8-bit weights need one of the
    /// two.
    #[cfg(test)]
    pub(super) fn clone_with(&self, vnni: Option<AvxVnni>, zmm: Option<Avx512Vnni>) -> Self {
        assert!(
            vnni.is_some() || zmm.is_some() || self.width == Width::Int16,
            "8-bit weights need VNNI"
        );
        Self {
            vnni,
            zmm,
            data: self.data.clone(),
            scales: self.scales.clone(),
            sums: self.sums.clone(),
            ..*self
        }
    }

    /// Tile `t`'s B lanes, scales and column sums for the k block at `k0` (`kcl` lanes),
    /// and its bias on the first block.
    fn tile<'a>(&'a self, t: usize, k0: usize, kcl: usize, bias: Option<&'a [f32]>) -> BTile<'a> {
        let (per, kc) = (self.width.per(), self.width.kc());
        let (kl, blocks) = (self.k.div_ceil(per), self.k.div_ceil(kc));
        let cols = NR.min(self.n - t * NR);
        BTile {
            lanes: &self.data[t * kl + k0 / per..][..kcl],
            scales: &self.scales[t * NR..(t + 1) * NR],
            sums: match self.width {
                Width::Int16 => &[],
                Width::Int8 => &self.sums[(t * blocks + k0 / kc) * NR..][..NR],
            },
            bias: bias
                .filter(|_| k0 == 0)
                .map(|bias| &bias[t * NR..t * NR + cols]),
            cols,
        }
    }

    /// `c[r][j] = Σ a[r]·w[j] (+ bias[j])` for `rows` rows of f32 `a` (`lda` apart) and
    /// the weight's `n` rows, into `c` (`ldc` per row): the `Kernel::gemm` contract, with
    /// integer operands inside.
    pub(super) fn gemm(
        &self,
        a: &[f32],
        lda: usize,
        rows: usize,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    ) {
        gemm_int(self.token, a, lda, rows, self, bias, c, ldc);
    }
}

/// One lane of k of a weight tile: 16 lanes, each the `Width::per` values of k of one
/// column. 64-byte aligned, so the micro-kernel's 256-bit loads are aligned and are
/// never split in two (the baseline target's tuning splits unaligned ones, and the
/// `vinserti128` halves compete with the multiply-adds for the vector ports).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct LaneRow([u32; NR]);

/// The activations of one block of rows, quantised and packed for the micro-kernel.
struct IntPanels {
    /// `MR`-row panels, k-major, each element a lane of `Width::per` integers.
    lanes: Vec<u32>,
    /// The scale of each row of the block.
    scales: Vec<f32>,
    /// `Int8` only: the zero point of each row of the block.
    zeros: Vec<f32>,
    /// One row quantised, before it is spread over its panel.
    row: Vec<u32>,
}

impl IntPanels {
    /// Quantises `rows` rows of a k block (`kc` values each, `lda` apart in `a`) into
    /// `MR`-row panels of lanes, with each row's scale (and zero point).
    ///
    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pack(&mut self, width: Width, a: &[f32], lda: usize, rows: usize, kc: usize) {
        let kcl = kc.div_ceil(width.per());
        self.lanes.clear();
        self.lanes.resize(rows.div_ceil(MR) * kcl * MR, 0);
        self.scales.clear();
        self.zeros.clear();
        self.row.resize(kcl, 0);
        for r in 0..rows {
            let src = &a[r * lda..r * lda + kc];
            // A short block's last lane is padded with 0 (its weights are 0).
            self.row[kcl - 1] = 0;
            // SAFETY: the features are enabled here; the row's lanes hold `kcl · per ≥
            // kc` values of the width's type, on x86's little-endian layout exactly
            // the lane order the kernels read.
            unsafe {
                let lanes = self.row.as_mut_ptr();
                match width {
                    Width::Int16 => {
                        let dst = std::slice::from_raw_parts_mut(lanes.cast::<i16>(), kc);
                        self.scales.push(quantize(src, dst));
                    }
                    Width::Int8 => {
                        let dst = std::slice::from_raw_parts_mut(lanes.cast::<u8>(), kc);
                        let (scale, zero) = quantize_u8(src, dst);
                        self.scales.push(scale);
                        self.zeros.push(zero);
                    }
                }
            }
            let panel = &mut self.lanes[(r / MR) * kcl * MR..][..kcl * MR];
            for (l, &lane) in self.row.iter().enumerate() {
                panel[l * MR + r % MR] = lane;
            }
        }
    }
}

/// [`IntB::gemm`], with the token that proves the features.
#[allow(clippy::too_many_arguments)]
fn gemm_int(
    _: Avx2,
    a: &[f32],
    lda: usize,
    rows: usize,
    w: &IntB,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    let k = w.k;
    check_shapes(a, lda, rows, k, w.n, bias, c, ldc);
    if k == 0 {
        return only_bias(rows, w.n, bias, c, ldc);
    }
    let (per, kc_max) = (w.width.per(), w.width.kc());
    INT_PANELS.with(|panels| {
        let panels = &mut *panels.borrow_mut();
        for m0 in (0..rows).step_by(MC) {
            let mc = MC.min(rows - m0);
            let row_tiles = mc.div_ceil(MR);
            for k0 in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - k0);
                let kcl = kc.div_ceil(per);
                // SAFETY: the token proves the features.
                unsafe { panels.pack(w.width, &a[m0 * lda + k0..], lda, mc, kc) };
                let first = k0 == 0;
                let tiles = w.n.div_ceil(NR);
                let mut t = 0;
                while t < tiles {
                    // With AVX-512, two tiles at a time: 12 accumulators of 512 bits.
                    let pair = w.zmm.is_some() && t + 1 < tiles;
                    let b0 = w.tile(t, k0, kcl, bias);
                    let b1 = pair.then(|| w.tile(t + 1, k0, kcl, bias));
                    for rt in 0..row_tiles {
                        let r0 = m0 + rt * MR;
                        let r = MR.min(rows - r0);
                        let a_rows = AScales {
                            scales: &panels.scales[rt * MR..rt * MR + r],
                            zeros: panels.zeros.get(rt * MR..rt * MR + r).unwrap_or(&[]),
                        };
                        let panel = &panels.lanes[rt * kcl * MR..(rt + 1) * kcl * MR];
                        let out = &mut c[r0 * ldc + t * NR..];
                        // SAFETY: the token proves the features (and `w.vnni`, `w.zmm`
                        // theirs); the panel holds `kcl·MR` lanes, each B tile `kcl`,
                        // and C reaches `(r-1)·ldc` past the last tile's columns
                        // (checked above).
                        unsafe {
                            run_tiles(w, panel, kcl, a_rows, (&b0, b1.as_ref()), first, out, ldc)
                        };
                    }
                    t += if pair { 2 } else { 1 };
                }
            }
        }
    });
}

/// One tile of B (16 columns) for one k block, with what its epilogue needs: a scale
/// per column, and for `Int8` each column's sum of weights over the block, which
/// each row's zero point multiplies (`sum − zero·sums`).
struct BTile<'a> {
    lanes: &'a [LaneRow],
    scales: &'a [f32],
    /// `Int8` only: the columns' sums of weights over the block.
    sums: &'a [f32],
    /// On the first k block only.
    bias: Option<&'a [f32]>,
    cols: usize,
}

/// The rows of a tile of A (`scales.len() ≤ MR` of them): their scales, and for
/// `Int8` their zero points (else empty).
#[derive(Clone, Copy)]
struct AScales<'a> {
    scales: &'a [f32],
    zeros: &'a [f32],
}

/// Multiplies one row tile of A by one tile of B, or by two side by side on 512-bit
/// registers, with the kernel `w` was made for.
///
/// # Safety
/// The CPU has what `w`'s tokens prove; `panel` holds `kcl·MR` lanes, each tile
/// `kcl`, and `c` reaches `(rows-1)·ldc + cols` past each tile's first column (the
/// second tile's is 16 in).
#[allow(clippy::too_many_arguments)]
unsafe fn run_tiles(
    w: &IntB,
    panel: &[u32],
    kcl: usize,
    a: AScales<'_>,
    (b0, b1): (&BTile<'_>, Option<&BTile<'_>>),
    first: bool,
    c: &mut [f32],
    ldc: usize,
) {
    // SAFETY: the caller's promise, each kernel's features as matched.
    unsafe {
        if let Some(b1) = b1 {
            return match w.width {
                Width::Int16 => int16_pair_zmm(panel, kcl, a, [b0, b1], first, c, ldc),
                Width::Int8 => int8_pair_zmm(panel, kcl, a, [b0, b1], first, c, ldc),
            };
        }
        match (w.width, w.vnni.is_some(), w.zmm.is_some()) {
            (Width::Int16, true, _) => int16_tile_vnni(panel, kcl, a, b0, first, c, ldc),
            (Width::Int16, false, true) => int16_tile_evex(panel, kcl, a, b0, first, c, ldc),
            (Width::Int16, false, false) => int16_tile(panel, kcl, a, b0, first, c, ldc),
            (Width::Int8, true, _) => int8_tile_vnni(panel, kcl, a, b0, first, c, ldc),
            (Width::Int8, false, true) => int8_tile_evex(panel, kcl, a, b0, first, c, ldc),
            (Width::Int8, false, false) => unreachable!("8-bit weights without VNNI"),
        }
    }
}

/// Quantises `src` into `dst` (same length) as `round(x / scale)` with `scale =
/// max|x| / A_MAX`, and returns the scale (0 for a row of zeros).
///
/// # Safety
/// AVX2 and FMA; `dst` is as long as `src`.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize(src: &[f32], dst: &mut [i16]) -> f32 {
    debug_assert_eq!(src.len(), dst.len());
    let (src_main, src_tail) = src.split_at(src.len() & !15);
    let (dst_main, dst_tail) = dst.split_at_mut(src_main.len());
    // SAFETY: the features are enabled here.
    let (min, max) = unsafe { min_max(src_main) };
    let max = src_tail.iter().fold(max.max(-min), |m, x| m.max(x.abs()));
    let inv = if max > 0.0 { A_MAX / max } else { 0.0 };
    // SAFETY: each step reads 16 floats of `src_main` and writes 16 i16 of
    // `dst_main`, which have the same length, a multiple of 16.
    unsafe {
        let scale = _mm256_set1_ps(inv);
        for (s, d) in src_main.chunks_exact(16).zip(dst_main.chunks_exact_mut(16)) {
            let lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(s.as_ptr()), scale));
            let hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(s.as_ptr().add(8)), scale));
            // packs works per 128-bit lane: [lo0-3 hi0-3 lo4-7 hi4-7]; put it in order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), packed);
        }
    }
    for (d, x) in dst_tail.iter_mut().zip(src_tail) {
        *d = (x * inv).round_ties_even() as i16;
    }
    max / A_MAX
}

/// Quantises `src` into `dst` (same length) as `round(x / scale) + zero`, within
/// `0..=U8_MAX`: the range from the smallest to the largest value, 0 included (so 0
/// is exact), in `U8_MAX` steps. Returns the scale and the zero point (both 0 for a
/// row of zeros, or one whose range is not finite).
///
/// # Safety
/// AVX2 and FMA; `dst` is as long as `src`.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_u8(src: &[f32], dst: &mut [u8]) -> (f32, f32) {
    debug_assert_eq!(src.len(), dst.len());
    let (main, tail) = src.split_at(src.len() & !15);
    // SAFETY: the features are enabled here.
    let (min, max) = unsafe { min_max(main) };
    let (min, max) = tail
        .iter()
        .fold((min, max), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let range = max - min;
    if !(range > 0.0 && range.is_finite()) {
        dst.fill(0);
        return (0.0, 0.0);
    }
    let inv = U8_MAX / range;
    let zero = (-min * inv).round_ties_even();
    let (dst_main, dst_tail) = dst.split_at_mut(src.len() & !31);
    // SAFETY: each step reads 32 floats of `src` and writes 32 bytes of `dst_main`,
    // whose length is a multiple of 32 and at most `src`'s.
    unsafe {
        let (inv8, zero8) = (_mm256_set1_ps(inv), _mm256_set1_ps(zero));
        // packs and packus work per 128-bit lane: the bytes come out in groups of four
        // from a, b, c, d, a, b, c, d; put them back in order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (s, d) in src.chunks_exact(32).zip(dst_main.chunks_exact_mut(32)) {
            let p = s.as_ptr();
            let ab = _mm256_packs_epi32(round8(p, inv8, zero8), round8(p.add(8), inv8, zero8));
            let cd = _mm256_packs_epi32(
                round8(p.add(16), inv8, zero8),
                round8(p.add(24), inv8, zero8),
            );
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
            _mm256_storeu_si256(d.as_mut_ptr().cast(), bytes);
        }
    }
    let tail = &src[src.len() - dst_tail.len()..];
    for (d, &x) in dst_tail.iter_mut().zip(tail) {
        *d = (x * inv + zero).round_ties_even().clamp(0.0, U8_MAX) as u8;
    }
    (range / U8_MAX, zero)
}

/// `round(x · inv + zero)` of the 8 floats at `p`, as i32: `cvtps` rounds to nearest
/// even, as `round_ties_even` does (the packs that follow saturate to 0..=255, as the
/// clamp).
///
/// # Safety
/// AVX2; `p` points at 8 readable floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn round8(p: *const f32, inv: __m256, zero: __m256) -> __m256i {
    // SAFETY: the caller's promise.
    _mm256_cvtps_epi32(_mm256_add_ps(
        _mm256_mul_ps(unsafe { _mm256_loadu_ps(p) }, inv),
        zero,
    ))
}

/// The smallest and the largest value of `src` (whose length is a multiple of 16),
/// each at least as far from 0 as 0 itself (both 0 when empty): independent 8-lane
/// minima and maxima, where a scalar fold is one dependent `minss` per element (NaN
/// ordering keeps LLVM from vectorising it).
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn min_max(src: &[f32]) -> (f32, f32) {
    debug_assert_eq!(src.len() % 16, 0);
    let (mut lo0, mut lo1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut hi0, mut hi1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for s in src.chunks_exact(16) {
        // SAFETY: each chunk holds 16 floats.
        unsafe {
            let (x0, x1) = (
                _mm256_loadu_ps(s.as_ptr()),
                _mm256_loadu_ps(s.as_ptr().add(8)),
            );
            (lo0, lo1) = (_mm256_min_ps(lo0, x0), _mm256_min_ps(lo1, x1));
            (hi0, hi1) = (_mm256_max_ps(hi0, x0), _mm256_max_ps(hi1, x1));
        }
    }
    let (mut lows, mut highs) = ([0f32; 8], [0f32; 8]);
    // SAFETY: both arrays hold 8 floats.
    unsafe {
        _mm256_storeu_ps(lows.as_mut_ptr(), _mm256_min_ps(lo0, lo1));
        _mm256_storeu_ps(highs.as_mut_ptr(), _mm256_max_ps(hi0, hi1));
    }
    (
        lows.iter().fold(0f32, |m, &x| m.min(x)),
        highs.iter().fold(0f32, |m, &x| m.max(x)),
    )
}

/// Defines an integer tile kernel: [`int_tile_with`] compiled for `$features`, with
/// `|acc, a, b| $mac` its multiply-accumulate of one lane.
macro_rules! int_tile {
    ($(#[$doc:meta])* $name:ident, $features:literal, |$acc:ident, $a:ident, $b:ident| $mac:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        unsafe fn $name(
            panel: &[u32],
            kcl: usize,
            a: AScales<'_>,
            b: &BTile<'_>,
            first: bool,
            c: &mut [f32],
            ldc: usize,
        ) {
            // SAFETY: the caller's promise.
            unsafe {
                int_tile_with(
                    panel,
                    kcl,
                    a,
                    b,
                    first,
                    c,
                    ldc,
                    #[inline(always)]
                    |$acc: __m256i, $a: __m256i, $b: __m256i| $mac,
                )
            }
        }
    };
}

int_tile!(
    /// One `MR × 16` tile of C over one k block of `kcl` lanes of 16-bit pairs:
    /// `c = sums·scales + bias` on the first k block (`first`), else `c += sums·scales`;
    /// rows past `a`'s and columns past `b.cols` are left alone. Each multiply-add is
    /// `vpmaddwd` + `vpaddd`.
    ///
    /// # Safety
    /// AVX2 and FMA; `panel` holds `kcl·MR` lanes, `b.lanes` `kcl`, `b.scales` 16 (and
    /// `b.sums` 16 when `a.zeros` is not empty, one per row), and `c` reaches
    /// `(rows-1)·ldc + b.cols` with `rows = a.scales.len() ≤ MR`, `b.cols ≤ 16`.
    int16_tile,
    "avx2,fma",
    |acc, a, b| _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
);

int_tile!(
    /// [`int16_tile`] with AVX-VNNI: each multiply-add and its accumulation is one
    /// `vpdpwssd` (the same sums: pairs of i16 products added into i32 lanes, which
    /// cannot overflow within a k block).
    ///
    /// # Safety
    /// As [`int16_tile`], and the CPU has AVX-VNNI.
    int16_tile_vnni,
    "avx2,fma,avxvnni",
    |acc, a, b| _mm256_dpwssd_avx_epi32(acc, a, b)
);

int_tile!(
    /// [`int16_tile`] for `Int8` lanes, with AVX-VNNI: `vpdpbusd` multiplies four u8
    /// activations by four i8 weights and adds the four products into each i32 lane.
    ///
    /// # Safety
    /// As [`int16_tile`], with `a.zeros` and `b.sums` filled, and the CPU has AVX-VNNI.
    int8_tile_vnni,
    "avx2,fma,avxvnni",
    |acc, a, b| _mm256_dpbusd_avx_epi32(acc, a, b)
);

int_tile!(
    /// [`int16_tile_vnni`] with AVX-512 VNNI's EVEX encoding of the same instruction:
    /// a last odd tile at the AVX-512 level on a CPU without AVX-VNNI.
    ///
    /// # Safety
    /// As [`int16_tile`], and the CPU has AVX512-VNNI and AVX512-VL.
    int16_tile_evex,
    "avx2,fma,avx512vnni,avx512vl",
    |acc, a, b| _mm256_dpwssd_epi32(acc, a, b)
);

int_tile!(
    /// [`int8_tile_vnni`] with AVX-512 VNNI's EVEX encoding of the same instruction.
    ///
    /// # Safety
    /// As [`int8_tile_vnni`], but the CPU has AVX512-VNNI and AVX512-VL.
    int8_tile_evex,
    "avx2,fma,avx512vnni,avx512vl",
    |acc, a, b| _mm256_dpbusd_epi32(acc, a, b)
);

/// The body of the integer tiles, inlined into each, with `mac(acc, a, b)` the
/// multiply-accumulate of one lane.
///
/// # Safety
/// As [`int16_tile`], and `mac` runs on this CPU.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn int_tile_with(
    panel: &[u32],
    kcl: usize,
    a: AScales<'_>,
    b: &BTile<'_>,
    first: bool,
    c: &mut [f32],
    ldc: usize,
    mac: impl Fn(__m256i, __m256i, __m256i) -> __m256i,
) {
    let rows = a.scales.len();
    debug_assert!(panel.len() >= kcl * MR && b.lanes.len() >= kcl && b.cols <= NR && rows <= MR);
    debug_assert!(b.scales.len() >= NR && c.len() >= (rows - 1) * ldc + b.cols);
    debug_assert!(a.zeros.is_empty() || a.zeros.len() == rows && b.sums.len() >= NR);
    // SAFETY: the caller has AVX2 (every intrinsic below), as it promised.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        let ap = panel.as_ptr().cast::<i32>();
        let bp = b.lanes.as_ptr().cast::<__m256i>();
        for p in 0..kcl {
            // p < kcl keeps every read inside the slices checked above; a `LaneRow` is
            // 64-byte aligned, so both halves of row p are 32-byte aligned.
            let b0 = _mm256_load_si256(bp.add(2 * p));
            let b1 = _mm256_load_si256(bp.add(2 * p + 1));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(*ap.add(p * MR + r));
                acc[0] = mac(acc[0], av, b0);
                acc[1] = mac(acc[1], av, b1);
            }
        }
        finish_tile(&acc, a, b, first, c, ldc);
    }
}

/// A tile's epilogue: its i32 sums (8 columns per register, two per row) back to f32,
/// less each row's zero point times the column sums (`Int8`), times the row's and the
/// column's scales, then stored or added to C.
///
/// # Safety
/// AVX2 and FMA; as [`int16_tile`] for the slices.
#[inline(always)]
unsafe fn finish_tile(
    acc: &[[__m256i; 2]; MR],
    a: AScales<'_>,
    b: &BTile<'_>,
    first: bool,
    c: &mut [f32],
    ldc: usize,
) {
    // SAFETY: the caller's promise: `b.scales` holds 16 floats, and so does `b.sums`
    // when there are zeros.
    unsafe {
        let sb0 = _mm256_loadu_ps(b.scales.as_ptr());
        let sb1 = _mm256_loadu_ps(b.scales.as_ptr().add(8));
        for ((acc, &sa), r) in acc.iter().zip(a.scales).zip(0..) {
            let (mut s0, mut s1) = (_mm256_cvtepi32_ps(acc[0]), _mm256_cvtepi32_ps(acc[1]));
            if let Some(&zero) = a.zeros.get(r) {
                let zero = _mm256_set1_ps(zero);
                s0 = _mm256_fnmadd_ps(zero, _mm256_loadu_ps(b.sums.as_ptr()), s0);
                s1 = _mm256_fnmadd_ps(zero, _mm256_loadu_ps(b.sums.as_ptr().add(8)), s1);
            }
            let sa = _mm256_set1_ps(sa);
            let v0 = _mm256_mul_ps(s0, _mm256_mul_ps(sa, sb0));
            let v1 = _mm256_mul_ps(s1, _mm256_mul_ps(sa, sb1));
            store_row(&mut c[r * ldc..r * ldc + b.cols], v0, v1, first, b.bias);
        }
    }
}

/// Defines a 512-bit pair tile kernel: [`int_pair_with`] with `|acc, a, b| $mac`.
macro_rules! int_pair {
    ($(#[$doc:meta])* $name:ident, |$acc:ident, $a:ident, $b:ident| $mac:expr) => {
        $(#[$doc])*
        #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
        unsafe fn $name(
            panel: &[u32],
            kcl: usize,
            a: AScales<'_>,
            tiles: [&BTile<'_>; 2],
            first: bool,
            c: &mut [f32],
            ldc: usize,
        ) {
            // SAFETY: the caller's promise.
            unsafe {
                int_pair_with(
                    panel,
                    kcl,
                    a,
                    tiles,
                    first,
                    c,
                    ldc,
                    #[inline(always)]
                    |$acc: __m512i, $a: __m512i, $b: __m512i| $mac,
                )
            }
        }
    };
}

int_pair!(
    /// Two tiles of B side by side (32 columns of C) on 512-bit registers with
    /// AVX-512 VNNI's `vpdpwssd`: 12 accumulators, one load of each tile's lane per
    /// step.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW, VL and VNNI; each tile as [`int16_tile`]'s, the
    /// second writing C from column 16.
    int16_pair_zmm,
    |acc, a, b| _mm512_dpwssd_epi32(acc, a, b)
);

int_pair!(
    /// [`int16_pair_zmm`] for `Int8` lanes: `vpdpbusd`.
    ///
    /// # Safety
    /// As [`int16_pair_zmm`], with `a.zeros` and the tiles' `sums` filled.
    int8_pair_zmm,
    |acc, a, b| _mm512_dpbusd_epi32(acc, a, b)
);

/// The body of the 512-bit pair tiles, inlined into each.
///
/// # Safety
/// As [`int16_pair_zmm`], and `mac` runs on this CPU.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn int_pair_with(
    panel: &[u32],
    kcl: usize,
    a: AScales<'_>,
    [b0, b1]: [&BTile<'_>; 2],
    first: bool,
    c: &mut [f32],
    ldc: usize,
    mac: impl Fn(__m512i, __m512i, __m512i) -> __m512i,
) {
    let rows = a.scales.len();
    debug_assert!(panel.len() >= kcl * MR && b0.lanes.len() >= kcl && b1.lanes.len() >= kcl);
    debug_assert!(rows <= MR && b0.cols == NR && b1.cols <= NR);
    debug_assert!(c.len() >= (rows - 1) * ldc + NR + b1.cols);
    // SAFETY: the caller has AVX-512 F and VNNI (every intrinsic below), as it
    // promised; p < kcl keeps every read inside the slices, and a `LaneRow` is one
    // 64-byte aligned register.
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        let ap = panel.as_ptr().cast::<i32>();
        let (bp0, bp1) = (
            b0.lanes.as_ptr().cast::<__m512i>(),
            b1.lanes.as_ptr().cast::<__m512i>(),
        );
        for p in 0..kcl {
            let (l0, l1) = (_mm512_load_si512(bp0.add(p)), _mm512_load_si512(bp1.add(p)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(*ap.add(p * MR + r));
                acc[0] = mac(acc[0], av, l0);
                acc[1] = mac(acc[1], av, l1);
            }
        }
        // Each tile's accumulators as [columns 0-7, columns 8-15] per row.
        let mut halves = [[[_mm256_setzero_si256(); 2]; MR]; 2];
        for (r, row) in acc.iter().enumerate() {
            for (j, &z) in row.iter().enumerate() {
                halves[j][r] = [_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64::<1>(z)];
            }
        }
        finish_tile(&halves[0], a, b0, first, c, ldc);
        finish_tile(&halves[1], a, b1, first, &mut c[NR..], ldc);
    }
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

/// [`super::softmax_plain`] for [`super::F32`] with AVX2 + FMA: `dst = exp((row -
/// max) · scale)`, `dst` as long as `row`; returns `1 / Σ dst`.
pub(super) fn softmax(_: Avx2, row: &[f32], scale: f32, dst: &mut [f32]) -> f32 {
    // SAFETY: the token proves the features.
    unsafe { softmax_with(row, scale, dst) }
}

/// [`softmax`]'s body.
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_with(row: &[f32], scale: f32, dst: &mut [f32]) -> f32 {
    assert_eq!(row.len(), dst.len());
    let main = row.len() & !7;
    let max = super::max_of(row);
    // exp((x - max)·scale) as exp(x·scale - max·scale), one fused step.
    let (scale8, offset8) = (_mm256_set1_ps(scale), _mm256_set1_ps(-max * scale));
    let mut sum8 = _mm256_setzero_ps();
    for i in (0..main).step_by(8) {
        // SAFETY: i + 8 ≤ main ≤ the length of both slices.
        unsafe {
            let x = _mm256_loadu_ps(row.as_ptr().add(i));
            let e = exp8(_mm256_fmadd_ps(x, scale8, offset8));
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), e);
            sum8 = _mm256_add_ps(sum8, e);
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum8) };
    let mut sum: f32 = lanes.iter().sum();
    for (d, &x) in dst[main..].iter_mut().zip(&row[main..]) {
        *d = super::fast_exp(x * scale - max * scale);
        sum += *d;
    }
    1.0 / sum
}

/// GELU of every value, in place, with AVX2 + FMA ([`super::gelu`] eight at a time).
pub(super) fn gelu(_: Avx2, values: &mut [f32]) {
    // SAFETY: the token proves the features.
    unsafe { gelu_with(values) }
}

/// [`gelu`]'s body.
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_with(values: &mut [f32]) {
    let main = values.len() & !7;
    for i in (0..main).step_by(8) {
        // SAFETY: i + 8 ≤ main ≤ `values.len()`.
        unsafe {
            let p = values.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, gelu8(_mm256_loadu_ps(p)));
        }
    }
    for v in &mut values[main..] {
        *v = super::gelu(*v);
    }
}

/// `x·Φ(x) = x/2 · (1 + erf(x/√2))` of 8 lanes, erf as [`super::erf`] computes it, with
/// `1/(1 + p·|z|)` as the approximate reciprocal and one Newton step (relative error
/// about 2⁻²², below the approximation's own 1.5e-7).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu8(x: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    let sign_bit = _mm256_set1_ps(-0.0);
    let z = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let a = _mm256_andnot_ps(sign_bit, z);
    let d = _mm256_fmadd_ps(a, _mm256_set1_ps(ERF_P), one);
    let r0 = _mm256_rcp_ps(d);
    let t = _mm256_mul_ps(r0, _mm256_fnmadd_ps(d, r0, _mm256_set1_ps(2.0)));
    let mut poly = _mm256_set1_ps(ERF_POLY[4]);
    for &c in ERF_POLY[..4].iter().rev() {
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(c));
    }
    let e = exp8(_mm256_fnmadd_ps(a, a, _mm256_setzero_ps()));
    let erf_abs = _mm256_fnmadd_ps(_mm256_mul_ps(t, poly), e, one);
    let erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, sign_bit));
    _mm256_mul_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(0.5)),
        _mm256_add_ps(one, erf),
    )
}

/// [`super::fast_exp`] of 8 lanes: the same range reduction and polynomial, each step
/// a fused multiply-add.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(EXP_RANGE[0])),
        _mm256_set1_ps(EXP_RANGE[1]),
    );
    let shift = _mm256_set1_ps(EXP_SHIFT);
    let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), shift);
    let n = _mm256_sub_ps(t, shift);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2[0]), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2[1]), r);
    let mut p = _mm256_set1_ps(EXP_POLY[6]);
    for &c in EXP_POLY[..6].iter().rev() {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let bias = _mm256_set1_epi32(EXP_SHIFT.to_bits() as i32 - 127);
    let exponent = _mm256_slli_epi32::<23>(_mm256_sub_epi32(_mm256_castps_si256(t), bias));
    _mm256_mul_ps(p, _mm256_castsi256_ps(exponent))
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
    for (r, acc) in acc.iter().enumerate().take(rows) {
        store_row(&mut c[r * ldc..r * ldc + cols], acc[0], acc[1], first, bias);
    }
}

/// Writes one row of a tile (`lo`, `hi`: its 16 columns) into `out` (its first
/// `out.len() ≤ 16` columns): `acc + bias` on the first k block (`first`), else added.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_row(out: &mut [f32], lo: __m256, hi: __m256, first: bool, bias: Option<&[f32]>) {
    if out.len() == NR {
        // A whole tile row: straight to C, no staging.
        let p = out.as_mut_ptr();
        // SAFETY: `out` and a bias for a whole row (`bias.len() ≥ out.len()`, the
        // callers slice it to the tile's columns) hold 16 floats.
        unsafe {
            let (lo, hi) = match (first, bias) {
                (true, Some(bias)) => {
                    assert!(bias.len() >= NR);
                    (
                        _mm256_add_ps(lo, _mm256_loadu_ps(bias.as_ptr())),
                        _mm256_add_ps(hi, _mm256_loadu_ps(bias.as_ptr().add(8))),
                    )
                }
                (true, None) => (lo, hi),
                (false, _) => (
                    _mm256_add_ps(lo, _mm256_loadu_ps(p)),
                    _mm256_add_ps(hi, _mm256_loadu_ps(p.add(8))),
                ),
            };
            _mm256_storeu_ps(p, lo);
            _mm256_storeu_ps(p.add(8), hi);
        }
        return;
    }
    let mut row = [0f32; NR];
    // SAFETY: `row` holds 16 floats.
    unsafe {
        _mm256_storeu_ps(row.as_mut_ptr(), lo);
        _mm256_storeu_ps(row.as_mut_ptr().add(8), hi);
    }
    match (first, bias) {
        (true, Some(bias)) => {
            for ((o, v), b) in out.iter_mut().zip(&row).zip(bias) {
                *o = v + b;
            }
        }
        (true, None) => out.copy_from_slice(&row[..out.len()]),
        (false, _) => {
            for (o, v) in out.iter_mut().zip(&row) {
                *o += v;
            }
        }
    }
}
