//! The dense scan's kernels, chosen at run time (the build targets a baseline
//! x86-64): the `f32` dot product as the portable loop compiled again for AVX2 and
//! AVX-512 (LLVM vectorises it at that width), and the quantised scans with
//! intrinsics.
//!
//! The int8 and int4 scans compute exact integer dot products against the query's
//! int8 codes. The query's magnitudes `|q|` go in as unsigned bytes and the row's
//! codes with the query's signs applied (`row · sign(q)`), so the unsigned-by-signed
//! byte multiplies of `vpmaddubsw` / `vpdpbusd` give `q · row`. Codes lie in ±127, so a
//! pair of products (≤ 2 · 127²) fits `vpmaddubsw`'s 16-bit sums without saturating.
//! The int4 rows hold `code + 8` (1 to 15) as unsigned nibbles, so they multiply the
//! signed query directly, and `8 · Σq` comes off the sum. The vectorised portable int8
//! loop had widened every byte to 32 bits and ran at a third of memory speed; these
//! read the codes as fast as a plain sum of the bytes does.

use super::{scan_i4_portable, scan_i8_portable};

/// Which scan kernel runs. Only [`Kernel::available`] makes one other than
/// [`Kernel::PORTABLE`], after detecting its features (the level is private to this
/// module, so the rest of the crate cannot name a kernel the CPU lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Kernel(Level);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Level {
    /// AVX-512 F, BW and VNNI (int4 runs the AVX2 kernel).
    Vnni512,
    /// AVX-512 F and BW (int4 runs the AVX2 kernel).
    Avx512,
    /// AVX2 and AVX-VNNI.
    AvxVnni,
    /// AVX2 (and FMA for the `f32` dot product).
    Avx2,
    Portable,
}

impl Kernel {
    /// The plain Rust loops, on every CPU.
    pub(crate) const PORTABLE: Kernel = Kernel(Level::Portable);

    /// The kernels this CPU can run, fastest first (`Portable` last).
    pub(crate) fn available() -> Vec<Kernel> {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx512 = avx2
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw");
            let mut out = Vec::new();
            if avx512 && std::is_x86_feature_detected!("avx512vnni") {
                out.push(Kernel(Level::Vnni512));
            }
            if avx512 {
                out.push(Kernel(Level::Avx512));
            }
            if avx2 && std::is_x86_feature_detected!("avxvnni") {
                out.push(Kernel(Level::AvxVnni));
            }
            if avx2 {
                out.push(Kernel(Level::Avx2));
            }
            out.push(Kernel::PORTABLE);
            out
        }
        #[cfg(not(target_arch = "x86_64"))]
        vec![Kernel::PORTABLE]
    }

    /// The fastest kernel here that the operator's variables allow (decided once):
    /// `AGENTBASE_KERNELS` and `AGENTBASE_AVXVNNI` mean what they mean for the local
    /// models (the `llm` crate refuses a level the CPU lacks; here it only narrows
    /// the choice).
    pub(crate) fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let forced = std::env::var("AGENTBASE_KERNELS").unwrap_or_default();
            let avxvnni = std::env::var("AGENTBASE_AVXVNNI").unwrap_or_default();
            Kernel::pick(
                &Kernel::available(),
                &forced,
                avxvnni == "off" || avxvnni == "0",
            )
        })
    }

    /// The first of `available` that `AGENTBASE_KERNELS=forced` (`scalar`, `avx2`,
    /// `avx512`, or empty or `auto` for any) and `AGENTBASE_AVXVNNI=off` allow.
    fn pick(available: &[Kernel], forced: &str, no_avxvnni: bool) -> Kernel {
        let allowed = |k: &&Kernel| {
            let level_ok = match forced.trim() {
                "scalar" => k.0 == Level::Portable,
                "avx2" => matches!(k.0, Level::AvxVnni | Level::Avx2 | Level::Portable),
                _ => true,
            };
            level_ok && !(no_avxvnni && k.0 == Level::AvxVnni)
        };
        available
            .iter()
            .find(allowed)
            .copied()
            .unwrap_or(Kernel::PORTABLE)
    }

    /// `out[i] = (row i · q) · scales[i] · q_scale` over int8 rows of `dim` codes.
    pub(crate) fn scan_i8(
        self,
        codes: &[i8],
        dim: usize,
        scales: &[f32],
        q: &[i8],
        q_scale: f32,
        out: &mut [f32],
    ) {
        if dim == 0 || q.len() < dim {
            return scan_i8_portable(codes, dim, scales, q, q_scale, out);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let n = (codes.len() / dim).min(scales.len()).min(out.len());
            let (codes, scales, out) = (&codes[..n * dim], &scales[..n], &mut out[..n]);
            x86::scan_i8(self, codes, dim, scales, q, q_scale, out);
        }
        #[cfg(not(target_arch = "x86_64"))]
        scan_i8_portable(codes, dim, scales, q, q_scale, out);
    }

    /// As [`Kernel::scan_i8`] over int4 rows (`dim / 2` bytes each, see
    /// `super::quantize_i4`); `dim` is a multiple of 64.
    pub(crate) fn scan_i4(
        self,
        nibbles: &[u8],
        dim: usize,
        scales: &[f32],
        q: &[i8],
        q_scale: f32,
        out: &mut [f32],
    ) {
        if dim == 0 || !dim.is_multiple_of(64) || q.len() < dim {
            return scan_i4_portable(nibbles, dim, scales, q, q_scale, out);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let width = dim / 2;
            let n = (nibbles.len() / width).min(scales.len()).min(out.len());
            let (rows, scales, out) = (&nibbles[..n * width], &scales[..n], &mut out[..n]);
            x86::scan_i4(self, rows, dim, scales, q, q_scale, out);
        }
        #[cfg(not(target_arch = "x86_64"))]
        scan_i4_portable(nibbles, dim, scales, q, q_scale, out);
    }
}

/// Dot product with the widest kernel this CPU has.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    return x86::dot(Kernel::best(), a, b);
    #[cfg(not(target_arch = "x86_64"))]
    super::dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::super::{dot_portable, scan_i8_portable};
    use super::{Kernel, Level};
    use std::arch::x86_64::*;

    pub(super) fn dot(k: Kernel, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `Kernel::available` made `k` after detecting its features.
        unsafe {
            match k.0 {
                Level::Vnni512 | Level::Avx512 => dot_avx512(a, b),
                Level::AvxVnni | Level::Avx2 => dot_avx2(a, b),
                Level::Portable => dot_portable(a, b),
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        dot_portable(a, b)
    }

    /// # Safety
    /// AVX-512 F and BW, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        dot_portable(a, b)
    }

    /// The callers checked: `codes` holds `scales.len()`
    /// rows of `dim` codes, `out` one slot per row, `q` at least `dim` codes.
    pub(super) fn scan_i8(
        k: Kernel,
        codes: &[i8],
        dim: usize,
        scales: &[f32],
        q: &[i8],
        q_scale: f32,
        out: &mut [f32],
    ) {
        // SAFETY: `Kernel::available` made `k` after detecting its features; the
        // kernels read `dim` bytes of each of `codes`' rows and of `q`.
        unsafe {
            match k.0 {
                Level::Vnni512 => i8_vnni512(codes, dim, scales, q, q_scale, out),
                Level::Avx512 => i8_avx512(codes, dim, scales, q, q_scale, out),
                Level::AvxVnni => i8_avxvnni(codes, dim, scales, q, q_scale, out),
                Level::Avx2 => i8_avx2(codes, dim, scales, q, q_scale, out),
                Level::Portable => scan_i8_portable(codes, dim, scales, q, q_scale, out),
            }
        }
    }

    /// As [`scan_i8`] over int4 rows of `dim / 2` bytes; `dim` is a multiple of 64.
    pub(super) fn scan_i4(
        k: Kernel,
        nibbles: &[u8],
        dim: usize,
        scales: &[f32],
        q: &[i8],
        q_scale: f32,
        out: &mut [f32],
    ) {
        // SAFETY: as in `scan_i8`; every kernel but `Portable` implies AVX2.
        unsafe {
            match k.0 {
                Level::AvxVnni => i4_avxvnni(nibbles, dim, scales, q, q_scale, out),
                Level::Portable => super::scan_i4_portable(nibbles, dim, scales, q, q_scale, out),
                Level::Vnni512 | Level::Avx512 | Level::Avx2 => {
                    i4_avx2(nibbles, dim, scales, q, q_scale, out)
                }
            }
        }
    }

    /// The products past the last whole block.
    #[inline(always)]
    fn tail(row: &[i8], q: &[i8], from: usize) -> i32 {
        row[from..]
            .iter()
            .zip(&q[from..])
            .map(|(a, b)| i32::from(*a) * i32::from(*b))
            .sum()
    }

    /// The sum of a vector's eight `i32` lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn hsum256(acc: __m256i) -> i32 {
        let sum = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b01_00_11_10>(sum));
        let sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b10_11_00_01>(sum));
        _mm_cvtsi128_si32(sum)
    }

    // The multiply-add steps the kernels are written with: `acc` plus the products
    // of unsigned bytes `a` and signed bytes `b`, summed by fours into `i32` lanes.
    // Macros, not closures: a closure the optimiser leaves out of line passes its
    // vectors through memory and loses the caller's target features.
    macro_rules! dpbusd512 {
        ($acc:expr, $a:expr, $b:expr) => {
            _mm512_dpbusd_epi32($acc, $a, $b)
        };
    }
    macro_rules! maddubs512 {
        ($acc:expr, $a:expr, $b:expr) => {
            _mm512_add_epi32(
                $acc,
                _mm512_madd_epi16(_mm512_maddubs_epi16($a, $b), _mm512_set1_epi16(1)),
            )
        };
    }
    macro_rules! dpbusd256 {
        ($acc:expr, $a:expr, $b:expr) => {
            _mm256_dpbusd_avx_epi32($acc, $a, $b)
        };
    }
    macro_rules! maddubs256 {
        ($acc:expr, $a:expr, $b:expr) => {
            _mm256_add_epi32(
                $acc,
                _mm256_madd_epi16(_mm256_maddubs_epi16($a, $b), _mm256_set1_epi16(1)),
            )
        };
    }

    /// A 512-bit int8 kernel: `$step!(acc, |q|, row · sign(q))` adds a block's 64
    /// products into `acc`'s 16 lanes.
    macro_rules! scan512 {
        ($codes:ident, $dim:ident, $scales:ident, $q:ident, $qs:ident, $out:ident, $step:ident) => {{
            const W: usize = 64;
            let blocks = $dim / W;
            let mut mags = Vec::with_capacity(blocks);
            let mut negs = Vec::with_capacity(blocks);
            for b in 0..blocks {
                // SAFETY: `b * W + W <= dim`, within `q`.
                let v = unsafe { _mm512_loadu_si512($q.as_ptr().add(b * W).cast()) };
                mags.push(_mm512_abs_epi8(v));
                negs.push(_mm512_movepi8_mask(v));
            }
            let zero = _mm512_setzero_si512();
            for ((row, s), o) in $codes.chunks_exact($dim).zip($scales).zip($out.iter_mut()) {
                let mut acc = zero;
                for b in 0..blocks {
                    // SAFETY: `b * W + W <= dim`, within the `dim`-byte row.
                    let r = unsafe { _mm512_loadu_si512(row.as_ptr().add(b * W).cast()) };
                    let signed = _mm512_mask_sub_epi8(r, negs[b], zero, r);
                    acc = $step!(acc, mags[b], signed);
                }
                let dot = _mm512_reduce_add_epi32(acc) + tail(row, $q, blocks * W);
                *o = dot as f32 * s * $qs;
            }
        }};
    }

    /// A 256-bit int8 kernel, as [`scan512!`] with `vpsignb` applying the signs.
    macro_rules! scan256 {
        ($codes:ident, $dim:ident, $scales:ident, $q:ident, $qs:ident, $out:ident, $step:ident) => {{
            const W: usize = 32;
            let blocks = $dim / W;
            let mut qv = Vec::with_capacity(blocks);
            for b in 0..blocks {
                // SAFETY: `b * W + W <= dim`, within `q`.
                qv.push(unsafe { _mm256_loadu_si256($q.as_ptr().add(b * W).cast()) });
            }
            let mags: Vec<__m256i> = qv.iter().map(|&v| _mm256_abs_epi8(v)).collect();
            for ((row, s), o) in $codes.chunks_exact($dim).zip($scales).zip($out.iter_mut()) {
                let mut acc = _mm256_setzero_si256();
                for b in 0..blocks {
                    // SAFETY: `b * W + W <= dim`, within the `dim`-byte row.
                    let r = unsafe { _mm256_loadu_si256(row.as_ptr().add(b * W).cast()) };
                    acc = $step!(acc, mags[b], _mm256_sign_epi8(r, qv[b]));
                }
                let dot = hsum256(acc) + tail(row, $q, blocks * W);
                *o = dot as f32 * s * $qs;
            }
        }};
    }

    /// A 256-bit int4 kernel: each 32-byte block holds 64 codes, dimension `j` in
    /// the low nibble of byte `j` and dimension `32 + j` in its high nibble;
    /// `$step!(acc, nibbles, q)` adds 32 products of unsigned nibbles and signed
    /// query codes into `acc`'s 8 lanes. Four rows go side by side, so four chains
    /// of multiply-adds overlap (one row's chain alone kept the scan compute-bound).
    macro_rules! scan_i4 {
        ($rows:ident, $dim:ident, $scales:ident, $q:ident, $qs:ident, $out:ident, $step:ident) => {{
            const R: usize = 4;
            let (blocks, width) = ($dim / 64, $dim / 2);
            let mut qv = Vec::with_capacity(2 * blocks);
            for b in 0..2 * blocks {
                // SAFETY: `b * 32 + 32 <= dim`, within `q`.
                qv.push(unsafe { _mm256_loadu_si256($q.as_ptr().add(b * 32).cast()) });
            }
            let offset = 8 * $q[..$dim].iter().map(|&c| i32::from(c)).sum::<i32>();
            let low = _mm256_set1_epi8(0x0f);
            let groups = $rows.len() / width / R;
            for g in 0..groups + $rows.len() / width % R {
                // Whole groups of R rows, then the rows left one at a time.
                let (first, count) = if g < groups {
                    (g * R, R)
                } else {
                    (groups * R + g - groups, 1)
                };
                let mut acc = [_mm256_setzero_si256(); R];
                for b in 0..blocks {
                    for (r, acc) in acc.iter_mut().enumerate().take(count) {
                        // SAFETY: row `first + r` exists and `b * 32 + 32 <= width`.
                        let v = unsafe {
                            _mm256_loadu_si256(
                                $rows.as_ptr().add((first + r) * width + b * 32).cast(),
                            )
                        };
                        let lo = _mm256_and_si256(v, low);
                        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
                        *acc = $step!($step!(*acc, lo, qv[2 * b]), hi, qv[2 * b + 1]);
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(count) {
                    let i = first + r;
                    $out[i] = (hsum256(*acc) - offset) as f32 * $scales[i] * $qs;
                }
            }
        }};
    }

    /// # Safety
    /// AVX-512 F, BW and VNNI, AVX2; `q` holds `dim` codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
    unsafe fn i8_vnni512(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        scan512!(c, d, s, q, qs, o, dpbusd512)
    }

    /// # Safety
    /// AVX-512 F and BW, AVX2; `q` holds `dim` codes.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    unsafe fn i8_avx512(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        scan512!(c, d, s, q, qs, o, maddubs512)
    }

    /// # Safety
    /// AVX2 and AVX-VNNI; `q` holds `dim` codes.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn i8_avxvnni(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        scan256!(c, d, s, q, qs, o, dpbusd256)
    }

    /// # Safety
    /// AVX2; `q` holds `dim` codes.
    #[target_feature(enable = "avx2")]
    unsafe fn i8_avx2(c: &[i8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        scan256!(c, d, s, q, qs, o, maddubs256)
    }

    /// # Safety
    /// AVX2 and AVX-VNNI; `q` holds `dim` codes; `dim` is a multiple of 64.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn i4_avxvnni(r: &[u8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        scan_i4!(r, d, s, q, qs, o, dpbusd256)
    }

    /// # Safety
    /// AVX2; `q` holds `dim` codes; `dim` is a multiple of 64.
    #[target_feature(enable = "avx2")]
    unsafe fn i4_avx2(r: &[u8], d: usize, s: &[f32], q: &[i8], qs: f32, o: &mut [f32]) {
        // Nibbles (≤ 15) times codes (±127): pairs sum within 16 bits.
        scan_i4!(r, d, s, q, qs, o, maddubs256)
    }
}

#[cfg(test)]
mod tests {
    use super::{Kernel, Level};

    #[test]
    fn the_operators_variables_narrow_the_choice_of_kernel() {
        let all = [
            Kernel(Level::Vnni512),
            Kernel(Level::Avx512),
            Kernel(Level::AvxVnni),
            Kernel(Level::Avx2),
            Kernel::PORTABLE,
        ];
        assert_eq!(Kernel::pick(&all, "", false), Kernel(Level::Vnni512));
        assert_eq!(Kernel::pick(&all, "auto", false), Kernel(Level::Vnni512));
        assert_eq!(Kernel::pick(&all, "avx512", false), Kernel(Level::Vnni512));
        assert_eq!(Kernel::pick(&all, "avx2", false), Kernel(Level::AvxVnni));
        assert_eq!(Kernel::pick(&all, "avx2", true), Kernel(Level::Avx2));
        assert_eq!(Kernel::pick(&all, " scalar ", false), Kernel::PORTABLE);
        let avx2_only = [Kernel(Level::Avx2), Kernel::PORTABLE];
        assert_eq!(
            Kernel::pick(&avx2_only, "avx512", false),
            Kernel(Level::Avx2)
        );
        assert_eq!(
            Kernel::pick(&[Kernel::PORTABLE], "avx2", false),
            Kernel::PORTABLE
        );
    }
}
