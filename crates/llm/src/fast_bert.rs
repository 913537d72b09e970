//! A BERT encoder forward pass for sentence embeddings, used by `LocalEmbedder`
//! instead of candle's for every BERT it can run.
//!
//! Why not candle: a padded batch pays for its padding, and its f32 matmul is a
//! general one. This pass
//! - packs the batch's tokens without padding: the linear layers run over every real
//!   token of every text at once, attention runs per text at its own length (so no
//!   mask is needed and a batch gives each text exactly what it gets alone);
//! - multiplies with kernels chosen at run time (`crate::cpu`): bf16 with f32
//!   accumulation on AVX-512 BF16 (`vdpbf16ps`, twice the f32 FMA rate on Zen 4/5 but
//!   half of it on Intel's Xeons, weights converted once at load), on AMX tiles where
//!   the CPU has them (`amx`: the same operands, `tdpbf16ps`); on AVX2, 16-bit
//!   integers for the linear layers (`vpmaddwd`, or `vpdpwssd` with VNNI; weights
//!   quantised once at load, activations per row as they are packed) and f32 FMA
//!   tiles for attention; plain Rust elsewhere; layer norms,
//!   softmax, GELU and pooling stay f32 (compiled for the same features; on AVX2,
//!   softmax and GELU are intrinsics with fused multiply-adds, which Rust never
//!   contracts on its own);
//! - takes a batch through the layers in groups of about 512 tokens, so its buffers
//!   are sized by a group and stay in the caches, and within a group runs GELU on
//!   blocks of [`ROW_BLOCK`] rows and attention on blocks of [`ATTENTION_ROWS`] query
//!   rows right after the matmul that wrote them, while they are in L2 and L1;
//! - splits every step over `threads` threads, the caller and its persistent helpers
//!   (`crate::pool`; rows of the linear layers, whole texts of attention).
//!
//! The vectors stay within a cosine of 0.9999 of the f32 ones (the embedding test
//! checks every kernel set against sentence-transformers' at 0.999).

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use std::collections::HashMap;

use candle_core::Tensor;

use crate::cpu::EmbedIsa;
use crate::pool::Pool;

/// A set of matmul kernels and the operand format they read.
pub(crate) trait Kernel: Copy + Send + Sync {
    /// One element of a packed operand: a pair of bf16 (`u32`) or one `f32`.
    type E: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug;
    /// Floats per element.
    const PER: usize;
    /// Columns of a packed B tile (the micro-kernel's width).
    const NR: usize;

    /// The element holding `lo` (and `hi` when `PER` is 2).
    fn element(lo: f32, hi: f32) -> Self::E;

    /// `src` as packed rows when it already is (f32 kernels read f32 as they are).
    fn view(src: &[f32]) -> Option<&[Self::E]>;

    /// `c[r][j] = Σ a[r]·b[j] (+ bias[j])` for `rows` rows of `a` (`lda` elements
    /// apart, the first `b.kl` of each used) and the `b.n` columns, into `c` (f32,
    /// `ldc` per row). One thread.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        self,
        a: &[Self::E],
        lda: usize,
        rows: usize,
        b: &PackedB<Self::E>,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    );

    /// A linear layer's constant weight (`n × k`, row-major like a torch Linear) as
    /// [`Kernel::gemm_weight`] multiplies it.
    type W: Send + Sync;

    /// The weight whose row `j`, column `p` is `get(j, p)`.
    fn weight(self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> Self::W;

    /// [`Kernel::weight`] for a layer that tolerates a coarser rounding of its
    /// operands, when this kernel set has a faster one (8-bit integers with VNNI).
    /// Only the feed-forward's first layer: simulated in torch
    /// (`bench/llm/quant_sim.py`), the lowest cosine against full precision is 0.99948
    /// over the reference sentences of the tests and 0.99971 over 64 chunks of the Rust
    /// Book with that layer 8-bit, and 0.99901 and 0.99807 over the sentences with both
    /// feed-forward layers or every layer 8-bit, against the 0.999 the tests hold.
    fn coarse_weight(self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> Self::W {
        self.weight(n, k, get)
    }

    /// [`Kernel::gemm`] with a weight for B.
    #[allow(clippy::too_many_arguments)]
    fn gemm_weight(
        self,
        a: &[Self::E],
        lda: usize,
        rows: usize,
        w: &Self::W,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    );

    /// Runs `f` compiled for this kernel set's CPU features, so the elementwise loops
    /// (GELU, layer norm, softmax) it inlines vectorise as wide as the matmuls. Only
    /// what is inlined gets the features: pass closures marked `#[inline(always)]`
    /// (a closure is a function of its own, and one that LLVM leaves out of line, as
    /// it did with GELU and softmax, is compiled for the baseline target: SSE).
    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R;

    /// `dst = exp((row - max(row)) · scale)`, packed (`row` is scratch), and returns
    /// `1 / Σ dst`: softmax, but for the normalising, which the caller applies to
    /// P·V's rows (32 values each, where `dst` has the text's length). Runs inside
    /// [`Kernel::vectorized`].
    #[inline(always)]
    fn softmax(self, row: &mut [f32], scale: f32, dst: &mut [Self::E]) -> f32 {
        softmax_plain::<Self>(row, scale, dst)
    }

    /// GELU of every value, in place. Runs inside [`Kernel::vectorized`].
    #[inline(always)]
    fn gelu_all(self, values: &mut [f32]) {
        gelu_plain(values);
    }

    /// Elements per row of `cols` floats.
    fn width(cols: usize) -> usize {
        cols.div_ceil(Self::PER)
    }

    /// Element `p` of a row of `k` floats read through `get`.
    #[inline(always)]
    fn element_at(get: impl Fn(usize) -> f32, p: usize, k: usize) -> Self::E {
        if Self::PER == 1 {
            Self::element(get(p), 0.0)
        } else {
            let hi = if 2 * p + 1 < k { get(2 * p + 1) } else { 0.0 };
            Self::element(get(2 * p), hi)
        }
    }
}

/// Round to nearest even, as torch and `vcvtne2ps2bf16` do.
#[inline(always)]
fn bf16_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1))) >> 16
}

#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    bf16_bits(lo) | (bf16_bits(hi) << 16)
}

/// f32 kernels: AVX2 + FMA tiles, or plain Rust. With AVX2 the linear layers' weights
/// are 16-bit integers ([`avx2::IntB`]), the feed-forward's first 8-bit with VNNI
/// (AVX-VNNI, or AVX-512 VNNI on 512-bit registers at the AVX-512 level); attention
/// stays f32.
#[derive(Clone, Copy)]
pub(crate) struct F32 {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<crate::cpu::Avx2>,
    /// The integer kernels on 512-bit registers (the AVX-512 level without bf16).
    #[cfg(target_arch = "x86_64")]
    zmm: Option<crate::cpu::Avx512Vnni>,
}

impl F32 {
    fn scalar() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            avx2: None,
            #[cfg(target_arch = "x86_64")]
            zmm: None,
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2(token: crate::cpu::Avx2) -> Self {
        Self {
            avx2: Some(token),
            zmm: None,
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn avx512(token: crate::cpu::Avx512Vnni) -> Self {
        Self {
            avx2: Some(token.avx2()),
            zmm: Some(token),
        }
    }
}

/// A linear layer's weight for [`F32`].
pub(crate) enum F32Weight {
    Packed(PackedB<f32>),
    #[cfg(target_arch = "x86_64")]
    Int(avx2::IntB),
}

impl Kernel for F32 {
    type E = f32;
    type W = F32Weight;
    const PER: usize = 1;
    const NR: usize = 16;

    fn weight(self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> F32Weight {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2 {
            return F32Weight::Int(avx2::IntB::int16(token, self.zmm, n, k, get));
        }
        F32Weight::Packed(PackedB::new::<Self>(n, k, get))
    }

    fn coarse_weight(self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> F32Weight {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2.filter(|_| avx2::IntB::int8_runs(self.zmm)) {
            return F32Weight::Int(avx2::IntB::int8(token, self.zmm, n, k, get));
        }
        self.weight(n, k, get)
    }

    fn gemm_weight(
        self,
        a: &[f32],
        lda: usize,
        rows: usize,
        w: &F32Weight,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    ) {
        match w {
            F32Weight::Packed(b) => self.gemm(a, lda, rows, b, bias, c, ldc),
            #[cfg(target_arch = "x86_64")]
            F32Weight::Int(b) => b.gemm(a, lda, rows, bias, c, ldc),
        }
    }

    fn element(lo: f32, _: f32) -> f32 {
        lo
    }

    fn view(src: &[f32]) -> Option<&[f32]> {
        Some(src)
    }

    fn gemm(
        self,
        a: &[f32],
        lda: usize,
        rows: usize,
        b: &PackedB<f32>,
        bias: Option<&[f32]>,
        c: &mut [f32],
        ldc: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2 {
            return avx2::gemm(token, a, lda, rows, b, bias, c, ldc);
        }
        gemm_blocks(
            a,
            lda,
            rows,
            b,
            bias,
            c,
            ldc,
            4,
            |r, a, lda, b, bias, c, ldc, cols| match r {
                4 => scalar_tile::<4>(a, lda, b, bias, c, ldc, cols),
                3 => scalar_tile::<3>(a, lda, b, bias, c, ldc, cols),
                2 => scalar_tile::<2>(a, lda, b, bias, c, ldc, cols),
                _ => scalar_tile::<1>(a, lda, b, bias, c, ldc, cols),
            },
        );
    }

    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2 {
            return avx2::vectorized(token, f);
        }
        f()
    }

    #[inline(always)]
    fn softmax(self, row: &mut [f32], scale: f32, dst: &mut [f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2 {
            return avx2::softmax(token, row, scale, dst);
        }
        softmax_plain::<Self>(row, scale, dst)
    }

    #[inline(always)]
    fn gelu_all(self, values: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = self.avx2 {
            return avx2::gelu(token, values);
        }
        gelu_plain(values);
    }
}

/// One `R × 16` tile of C over the whole k range in plain Rust (LLVM vectorises the
/// 16 columns at whatever width the build targets).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn scalar_tile<const R: usize>(
    a: &[f32],
    lda: usize,
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    const NR: usize = 16;
    let k = b.len() / NR;
    let mut acc = [[0f32; NR]; R];
    for (p, bv) in b.chunks_exact(NR).enumerate().take(k) {
        for r in 0..R {
            let av = a[r * lda + p];
            for j in 0..NR {
                acc[r][j] += av * bv[j];
            }
        }
    }
    for r in 0..R {
        let row = &mut c[r * ldc..r * ldc + cols];
        for (j, out) in row.iter_mut().enumerate() {
            *out = acc[r][j] + bias.map_or(0.0, |bias| bias[j]);
        }
    }
}

/// The right-hand operand of `A · Bᵀ` (B is `n × k`, row-major like a torch Linear
/// weight) in the layout the micro-kernels read: for each tile of `NR` rows of B, for
/// each element index `p` along k, `NR` lanes each holding B[n]'s element `p` (a pair
/// of bf16, or one f32). Rows past `n` and an odd k's missing partner are zero.
pub(crate) struct PackedB<E> {
    data: Vec<E>,
    n: usize,
    /// Elements per row of B.
    kl: usize,
    nr: usize,
}

impl<E: Copy + Default> PackedB<E> {
    fn empty() -> Self {
        Self {
            data: Vec::new(),
            n: 0,
            kl: 0,
            nr: 1,
        }
    }

    fn new<K: Kernel<E = E>>(n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let mut packed = Self::empty();
        packed.fill::<K>(n, k, get);
        packed
    }

    fn reset<K: Kernel<E = E>>(&mut self, n: usize, kl: usize) {
        self.n = n;
        self.kl = kl;
        self.nr = K::NR;
        self.data.clear();
        self.data
            .resize(n.div_ceil(K::NR) * kl * K::NR, E::default());
    }

    /// Repacks into the same allocation (attention does this per head).
    fn fill<K: Kernel<E = E>>(&mut self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) {
        let (kl, nr) = (K::width(k), K::NR);
        self.reset::<K>(n, kl);
        for row in 0..n {
            let block = &mut self.data[(row / nr) * kl * nr..];
            for p in 0..kl {
                block[p * nr + row % nr] = K::element_at(|col| get(row, col), p, k);
            }
        }
    }

    /// B rows already packed: row `j` is `src[j·stride..][..kl]`.
    fn fill_rows<K: Kernel<E = E>>(&mut self, src: &[E], stride: usize, n: usize, kl: usize) {
        let nr = K::NR;
        self.reset::<K>(n, kl);
        for (row, elements) in (0..n).map(|j| (j, &src[j * stride..j * stride + kl])) {
            let block = &mut self.data[(row / nr) * kl * nr..];
            for (p, &v) in elements.iter().enumerate() {
                block[p * nr + row % nr] = v;
            }
        }
    }

    /// B = Mᵀ for M `k × n` in f32 (row `i` at `src[i·stride..]`): lane `j` of element
    /// `p` holds M's rows `p` (f32) or `2p, 2p+1` (bf16) at column `j`.
    fn fill_transposed<K: Kernel<E = E>>(
        &mut self,
        src: &[f32],
        stride: usize,
        n: usize,
        k: usize,
    ) {
        let (kl, nr) = (K::width(k), K::NR);
        self.reset::<K>(n, kl);
        for tile in 0..n.div_ceil(nr) {
            let cols = nr.min(n - tile * nr);
            for p in 0..kl {
                let dst = &mut self.data[(tile * kl + p) * nr..][..cols];
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = K::element_at(|i| src[i * stride + tile * nr + j], p, k);
                }
            }
        }
    }
}

impl<E> PackedB<E> {
    fn tiles(&self) -> usize {
        self.n.div_ceil(self.nr)
    }
}

/// Packs rows of f32 (`cols` wide, `stride` apart) as elements, `width(cols)` per row.
fn pack_rows<K: Kernel>(src: &[f32], stride: usize, cols: usize, rows: usize, out: &mut Vec<K::E>) {
    out.clear();
    out.resize(rows * K::width(cols), K::E::default());
    pack_rows_into::<K>(src, stride, cols, out);
}

/// `pack_rows` into a slice of exactly `rows · width(cols)`.
#[inline(always)]
fn pack_rows_into<K: Kernel>(src: &[f32], stride: usize, cols: usize, out: &mut [K::E]) {
    let kl = K::width(cols);
    for (r, dst) in out.chunks_exact_mut(kl).enumerate() {
        let row = &src[r * stride..r * stride + cols];
        if K::PER == 1 {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = K::element(v, 0.0);
            }
        } else {
            let (even, rest) = row.split_at(cols & !1);
            for (d, xy) in dst.iter_mut().zip(even.chunks_exact(2)) {
                *d = K::element(xy[0], xy[1]);
            }
            if let Some(&last) = rest.first() {
                dst[kl - 1] = K::element(last, 0.0);
            }
        }
    }
}

/// C for an empty k: the bias, or 0 (`rows` rows of `n`, `ldc` apart).
fn only_bias(rows: usize, n: usize, bias: Option<&[f32]>, c: &mut [f32], ldc: usize) {
    for r in 0..rows {
        for (j, out) in c[r * ldc..r * ldc + n].iter_mut().enumerate() {
            *out = bias.map_or(0.0, |bias| bias[j]);
        }
    }
}

/// Panics unless `rows` rows of A (`lda` apart, `kl` elements used) and of C (`ldc`
/// apart, `n` written) fit their slices and the bias covers `n`: what every
/// `Kernel::gemm` checks before its unsafe tiles read and write.
#[allow(clippy::too_many_arguments)]
fn check_shapes<E>(
    a: &[E],
    lda: usize,
    rows: usize,
    kl: usize,
    n: usize,
    bias: Option<&[f32]>,
    c: &[f32],
    ldc: usize,
) {
    assert!(lda >= kl, "gemm: A rows are narrower than B's");
    assert!(
        rows == 0 || a.len() >= (rows - 1) * lda + kl,
        "gemm: A is too short"
    );
    assert!(
        rows == 0 || c.len() >= (rows - 1) * ldc + n,
        "gemm: C is too short"
    );
    assert!(ldc >= n, "gemm: C rows are narrower than B");
    if let Some(bias) = bias {
        assert!(bias.len() >= n, "gemm: bias is too short");
    }
}

/// The shared part of every `Kernel::gemm`: checks the shapes, then walks blocks of
/// rows (whose A stays in L2 while every tile of B passes over it) and tiles of B,
/// calling `tile(r, a, lda, b_tile, bias_tile, c, ldc, cols)` for up to `mr` rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemm_blocks<E: Copy>(
    a: &[E],
    lda: usize,
    rows: usize,
    b: &PackedB<E>,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    mut tile: impl FnMut(usize, &[E], usize, &[E], Option<&[f32]>, &mut [f32], usize, usize),
) {
    check_shapes(a, lda, rows, b.kl, b.n, bias, c, ldc);
    let (kl, nr) = (b.kl, b.nr);
    let row_block = 8 * mr;
    for block in (0..rows).step_by(row_block) {
        let block_end = (block + row_block).min(rows);
        for t in 0..b.tiles() {
            let cols = nr.min(b.n - t * nr);
            let b_tile = &b.data[t * kl * nr..(t + 1) * kl * nr];
            let bias_tile = bias.map(|bias| &bias[t * nr..t * nr + cols]);
            let mut row = block;
            while row < block_end {
                let r = mr.min(block_end - row);
                // Every tile reads `(r-1)·lda + kl` of A and writes `(r-1)·ldc + cols`
                // of C: inside the slices, as checked above.
                tile(
                    r,
                    &a[row * lda..],
                    lda,
                    b_tile,
                    bias_tile,
                    &mut c[row * ldc + t * nr..],
                    ldc,
                    cols,
                );
                row += r;
            }
        }
    }
}

/// Runs `work(first_row, rows_chunk)` over `data` (rows of `width`) split into at most
/// `threads` contiguous parts on this thread's pool.
fn par_rows<T: Send>(
    data: &mut [T],
    width: usize,
    threads: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let rows = data.len() / width.max(1);
    let threads = threads.clamp(1, rows.max(1));
    if threads == 1 {
        work(0, data);
        return;
    }
    let per = rows.div_ceil((threads * PARTS_PER_THREAD).min(rows));
    let work = &work;
    let parts: Vec<_> = data
        .chunks_mut(per * width.max(1))
        .enumerate()
        .map(|(i, chunk)| move || work(i * per, chunk))
        .collect();
    run_parts(threads, parts);
}

/// Parts per thread of each parallel step, claimed one by one, so that a thread
/// that falls behind (its core shared) is not waited for at the end of the step.
const PARTS_PER_THREAD: usize = 4;

thread_local! {
    /// Each thread that runs the pass gets its own helpers ([`crate::pool`]),
    /// started from it and so sharing its scheduling: the embedder's worker thread
    /// is `SCHED_IDLE` ([`crate::sched`]), and so are its helpers. Created on first
    /// use with one helper fewer than the CPUs this process may use; ended with the
    /// thread.
    static POOL: Pool = Pool::new(
        std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 64) - 1,
        "llm-embed",
    );
}

/// Runs the parts in parallel on this thread's pool (all on this thread when
/// `threads` is 1).
fn run_parts<F: FnOnce() + Send>(threads: usize, parts: Vec<F>) {
    if threads <= 1 || parts.len() <= 1 {
        parts.into_iter().for_each(|part| part());
        return;
    }
    POOL.with(|pool| pool.run_parts(parts));
}

/// What the fast path needs from `config.json`; anything else falls back to candle.
pub(crate) struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub eps: f32,
}

impl Shape {
    /// `None` when the model uses something this pass does not implement (another
    /// activation, relative positions, an odd head size).
    pub(crate) fn from_config(config: &serde_json::Value) -> Option<Self> {
        let num = |key: &str| config.get(key)?.as_u64().map(|n| n as usize);
        let hidden = num("hidden_size")?;
        let heads = num("num_attention_heads")?;
        let shape = Self {
            hidden,
            heads,
            intermediate: num("intermediate_size")?,
            layers: num("num_hidden_layers")?,
            eps: config
                .get("layer_norm_eps")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(1e-12) as f32,
        };
        let act = config.get("hidden_act").and_then(|v| v.as_str());
        let positions = config
            .get("position_embedding_type")
            .and_then(|v| v.as_str())
            .unwrap_or("absolute");
        let head_dim_ok = heads > 0 && hidden % heads == 0 && (hidden / heads) % 2 == 0;
        (act == Some("gelu") && positions == "absolute" && head_dim_ok && hidden % 2 == 0)
            .then_some(shape)
    }
}

/// One text's tokens.
pub(crate) struct Input<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
}

/// The encoder on the kernels `crate::cpu` chose.
pub(crate) struct FastBert {
    model: Precision,
}

enum Precision {
    #[cfg(target_arch = "x86_64")]
    Bf16(Box<Model<avx512::Bf16>>),
    F32(Box<Model<F32>>),
}

impl FastBert {
    /// Builds the pass from the safetensors' tensors (f32 or f16/bf16; names with or
    /// without a `bert.` prefix) for the kernels `isa`. `Err` names what is missing
    /// or misshapen.
    pub(crate) fn load(
        isa: EmbedIsa,
        tensors: &HashMap<String, Tensor>,
        shape: Shape,
        threads: usize,
    ) -> Result<Self, String> {
        let kernel = match isa {
            #[cfg(target_arch = "x86_64")]
            EmbedIsa::Avx512(token) => {
                let model = Model::load(avx512::Bf16::new(token), tensors, shape, threads)?;
                return Ok(Self {
                    model: Precision::Bf16(Box::new(model)),
                });
            }
            #[cfg(target_arch = "x86_64")]
            EmbedIsa::Avx2(token) => F32::avx2(token),
            #[cfg(target_arch = "x86_64")]
            EmbedIsa::Avx512Int(token) => F32::avx512(token),
            EmbedIsa::Scalar => F32::scalar(),
        };
        let model = Model::load(kernel, tensors, shape, threads)?;
        Ok(Self {
            model: Precision::F32(Box::new(model)),
        })
    }

    /// The last hidden state of every token, texts one after another
    /// (`Σ len × hidden`). `Err` for a token id or position the model does not have.
    pub(crate) fn forward(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, String> {
        match &self.model {
            #[cfg(target_arch = "x86_64")]
            Precision::Bf16(m) => m.forward(inputs),
            Precision::F32(m) => m.forward(inputs),
        }
    }
}

struct Model<K: Kernel> {
    kernel: K,
    shape: Shape,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    max_positions: usize,
    type_count: usize,
    vocab: usize,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer<K::W>>,
    threads: usize,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer<W> {
    /// Query, key and value in one `3·hidden × hidden` matrix.
    qkv: Linear<W>,
    attention_out: Linear<W>,
    attention_norm: LayerNorm,
    intermediate: Linear<W>,
    output: Linear<W>,
    output_norm: LayerNorm,
}

struct Linear<W> {
    weight: W,
    bias: Vec<f32>,
}

impl<W> Linear<W> {
    /// `c = a·Wᵀ + b` for the rows of `c` (`rows × width`) starting at row `first`
    /// of `a` (packed rows of `aw` elements); returns the number of rows.
    fn rows<K: Kernel<W = W>>(
        &self,
        kernel: K,
        a: &[K::E],
        aw: usize,
        first: usize,
        c: &mut [f32],
        width: usize,
    ) -> usize {
        let rows = c.len() / width;
        kernel.gemm_weight(
            &a[first * aw..],
            aw,
            rows,
            &self.weight,
            Some(&self.bias),
            c,
            width,
        );
        rows
    }
}

/// `src` (`rows × cols` f32) as the kernels' packed rows: itself when they read f32,
/// else packed into `buf`.
fn packed<'a, K: Kernel>(
    src: &'a [f32],
    cols: usize,
    rows: usize,
    buf: &'a mut Vec<K::E>,
) -> &'a [K::E] {
    match K::view(src) {
        Some(view) => view,
        None => {
            pack_rows::<K>(src, cols, cols, rows, buf);
            buf
        }
    }
}

/// Tokens per group of texts a forward pass takes through the layers at once: enough
/// rows for the matmuls to reuse each weight block many times, few enough that the
/// group's buffers (about 17 KB per token for MiniLM, 8.6 MB here) stay small. A batch
/// of 16 texts of 256 tokens held about 70 MB (90 with the bf16 copies) for its pass.
const GROUP_TOKENS: usize = 512;

/// Query rows per block of attention: 24 rows of scores and of probabilities (24 KB
/// each for 256 tokens) stay in L1 between Q·Kᵀ, the softmax and P·V.
const ATTENTION_ROWS: usize = 24;

/// Rows of the feed-forward's first matmul per block, after which GELU runs on them:
/// 96 × 1,536 floats (590 KB for MiniLM) stay in L2, and 96 is a multiple of every
/// kernel's tile height (6, 8 and 32 rows).
const ROW_BLOCK: usize = 96;

/// Consecutive ranges of `lengths` (tokens per text) that hold at least `budget`
/// tokens and a multiple of `threads` texts (so attention, which threads take by
/// whole texts, splits evenly), or twice the budget, or what is left.
fn groups(lengths: &[usize], threads: usize, budget: usize) -> Vec<std::ops::Range<usize>> {
    let threads = threads.max(1);
    let mut out = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, len) in lengths.iter().enumerate() {
        tokens += len;
        let count = i + 1 - start;
        if (tokens >= budget && count % threads == 0) || tokens >= 2 * budget {
            out.push(start..i + 1);
            (start, tokens) = (i + 1, 0);
        }
    }
    if start < lengths.len() {
        out.push(start..lengths.len());
    }
    out
}

/// Buffers reused across layers and groups of one forward pass.
struct Scratch<E> {
    hidden: Vec<f32>,
    hidden_packed: Vec<E>,
    qkv: Vec<f32>,
    qkv_packed: Vec<E>,
    /// Attention output, token-major.
    context: Vec<f32>,
    context_packed: Vec<E>,
    projected: Vec<f32>,
    intermediate: Vec<f32>,
    intermediate_packed: Vec<E>,
}

impl<E> Default for Scratch<E> {
    fn default() -> Self {
        Self {
            hidden: Vec::new(),
            hidden_packed: Vec::new(),
            qkv: Vec::new(),
            qkv_packed: Vec::new(),
            context: Vec::new(),
            context_packed: Vec::new(),
            projected: Vec::new(),
            intermediate: Vec::new(),
            intermediate_packed: Vec::new(),
        }
    }
}

impl<K: Kernel> Model<K> {
    /// Builds the pass from the safetensors' tensors (f32 or f16/bf16; names with or
    /// without a `bert.` prefix). `Err` names what is missing or misshapen.
    fn load(
        kernel: K,
        tensors: &HashMap<String, Tensor>,
        shape: Shape,
        threads: usize,
    ) -> Result<Self, String> {
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let get = |name: &str, dims: &[usize]| -> Result<Vec<f32>, String> {
            let full = format!("{prefix}{name}");
            let tensor = tensors
                .get(&full)
                .ok_or_else(|| format!("tensor {full} is missing"))?;
            if tensor.dims() != dims {
                return Err(format!(
                    "tensor {full} has shape {:?}, expected {dims:?}",
                    tensor.dims()
                ));
            }
            tensor
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("tensor {full}: {e}"))
        };
        let h = shape.hidden;
        let word_dims = tensors
            .get(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map(|t| t.dims().to_vec())
            .unwrap_or_default();
        let vocab = word_dims.first().copied().unwrap_or(0);
        let max_positions = tensors
            .get(&format!("{prefix}embeddings.position_embeddings.weight"))
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0);
        let type_count = tensors
            .get(&format!("{prefix}embeddings.token_type_embeddings.weight"))
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0);
        let norm = |name: &str| -> Result<LayerNorm, String> {
            Ok(LayerNorm {
                weight: get(&format!("{name}.weight"), &[h])?,
                bias: get(&format!("{name}.bias"), &[h])?,
            })
        };
        let linear =
            |name: &str, n: usize, k: usize, coarse: bool| -> Result<Linear<K::W>, String> {
                let w = get(&format!("{name}.weight"), &[n, k])?;
                let at = |row: usize, col: usize| w[row * k + col];
                Ok(Linear {
                    weight: if coarse {
                        kernel.coarse_weight(n, k, at)
                    } else {
                        kernel.weight(n, k, at)
                    },
                    bias: get(&format!("{name}.bias"), &[n])?,
                })
            };
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let at = |s: &str| format!("encoder.layer.{i}.{s}");
            let q = get(&at("attention.self.query.weight"), &[h, h])?;
            let k = get(&at("attention.self.key.weight"), &[h, h])?;
            let v = get(&at("attention.self.value.weight"), &[h, h])?;
            let mut bias = get(&at("attention.self.query.bias"), &[h])?;
            bias.extend(get(&at("attention.self.key.bias"), &[h])?);
            bias.extend(get(&at("attention.self.value.bias"), &[h])?);
            let qkv = Linear {
                weight: kernel.weight(3 * h, h, |row, col| {
                    let m = [&q, &k, &v][row / h];
                    m[(row % h) * h + col]
                }),
                bias,
            };
            layers.push(Layer {
                qkv,
                attention_out: linear(&at("attention.output.dense"), h, h, false)?,
                attention_norm: norm(&at("attention.output.LayerNorm"))?,
                intermediate: linear(&at("intermediate.dense"), shape.intermediate, h, true)?,
                output: linear(&at("output.dense"), h, shape.intermediate, false)?,
                output_norm: norm(&at("output.LayerNorm"))?,
            });
        }
        Ok(Self {
            kernel,
            word: get("embeddings.word_embeddings.weight", &[vocab, h])?,
            position: get("embeddings.position_embeddings.weight", &[max_positions, h])?,
            token_type: get("embeddings.token_type_embeddings.weight", &[type_count, h])?,
            max_positions,
            type_count,
            vocab,
            embeddings_norm: norm("embeddings.LayerNorm")?,
            layers,
            shape,
            threads: threads.max(1),
        })
    }

    /// The last hidden state of every token, texts one after another
    /// (`Σ len × hidden`). `Err` for a token id or position the model does not have.
    ///
    /// The texts go through the layers in groups of about [`GROUP_TOKENS`] tokens
    /// (see [`groups`]), so the buffers a pass needs are sized by a group, not by the
    /// batch, and stay in the caches between steps.
    fn forward(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, String> {
        let h = self.shape.hidden;
        let total: usize = inputs.iter().map(|i| i.ids.len()).sum();
        let mut out = Vec::with_capacity(total * h);
        let mut s = Scratch::default();
        let lengths: Vec<usize> = inputs.iter().map(|i| i.ids.len()).collect();
        for group in groups(&lengths, self.threads, GROUP_TOKENS) {
            self.forward_group(&inputs[group.clone()], &lengths[group], &mut s)?;
            out.extend_from_slice(&s.hidden);
        }
        Ok(out)
    }

    /// [`Model::forward`] for one group of texts (`lengths`: their token counts),
    /// leaving its last hidden states in `s.hidden`.
    fn forward_group(
        &self,
        inputs: &[Input<'_>],
        lengths: &[usize],
        s: &mut Scratch<K::E>,
    ) -> Result<(), String> {
        let h = self.shape.hidden;
        let total: usize = lengths.iter().sum();

        // Embeddings.
        s.hidden.clear();
        s.hidden.resize(total * h, 0.0);
        let mut row = 0;
        for input in inputs {
            if input.ids.len() > self.max_positions {
                return Err(format!(
                    "{} tokens exceed the model's {} positions",
                    input.ids.len(),
                    self.max_positions
                ));
            }
            for (pos, (&id, &ty)) in input.ids.iter().zip(input.type_ids).enumerate() {
                let (id, ty) = (id as usize, ty as usize);
                if id >= self.vocab || ty >= self.type_count {
                    return Err(format!(
                        "token id {id} (type {ty}) is outside the vocabulary"
                    ));
                }
                let out = &mut s.hidden[row * h..(row + 1) * h];
                let word = &self.word[id * h..(id + 1) * h];
                let position = &self.position[pos * h..(pos + 1) * h];
                let token_type = &self.token_type[ty * h..(ty + 1) * h];
                for (((o, w), p), t) in out.iter_mut().zip(word).zip(position).zip(token_type) {
                    *o = w + p + t;
                }
                row += 1;
            }
        }
        let (norm, eps) = (&self.embeddings_norm, self.shape.eps);
        self.kernel.vectorized(
            #[inline(always)]
            || add_layer_norm(&mut s.hidden, None, norm, eps),
        );

        for layer in &self.layers {
            self.layer(layer, lengths, s);
        }
        Ok(())
    }

    fn layer(&self, layer: &Layer<K::W>, lengths: &[usize], s: &mut Scratch<K::E>) {
        let h = self.shape.hidden;
        let total: usize = lengths.iter().sum();

        s.qkv.resize(total * 3 * h, 0.0);
        {
            let a = packed::<K>(&s.hidden, h, total, &mut s.hidden_packed);
            self.linear(a, K::width(h), &layer.qkv, &mut s.qkv, 3 * h);
        }

        self.attention(lengths, s);

        // Output projection + residual + norm.
        s.projected.resize(total * h, 0.0);
        {
            let a = packed::<K>(&s.context, h, total, &mut s.context_packed);
            let (lin, norm) = (&layer.attention_out, &layer.attention_norm);
            self.linear_add_norm(a, K::width(h), lin, norm, &s.hidden, &mut s.projected);
        }
        std::mem::swap(&mut s.hidden, &mut s.projected);

        // Feed-forward: GELU(x·W1ᵀ + b1)·W2ᵀ + b2, + residual, norm.
        self.intermediate(&layer.intermediate, total, s);
        s.projected.resize(total * h, 0.0);
        {
            let a: &[K::E] = match K::view(&s.intermediate) {
                Some(a) => a,
                None => &s.intermediate_packed,
            };
            let iw = K::width(self.shape.intermediate);
            let (lin, norm) = (&layer.output, &layer.output_norm);
            self.linear_add_norm(a, iw, lin, norm, &s.hidden, &mut s.projected);
        }
        std::mem::swap(&mut s.hidden, &mut s.projected);
    }

    /// `out = a·Wᵀ + b` over the threads, `out` being `rows × width` and `a` packed
    /// rows of `aw` elements.
    fn linear(&self, a: &[K::E], aw: usize, lin: &Linear<K::W>, out: &mut [f32], width: usize) {
        let kernel = self.kernel;
        par_rows(out, width, self.threads, |first, c| {
            lin.rows(kernel, a, aw, first, c, width);
        });
    }

    /// `out = LayerNorm(a·Wᵀ + b + residual)`, each thread normalising its own rows
    /// right after its matmul; `out` is `rows × hidden`.
    fn linear_add_norm(
        &self,
        a: &[K::E],
        aw: usize,
        lin: &Linear<K::W>,
        norm: &LayerNorm,
        residual: &[f32],
        out: &mut [f32],
    ) {
        let (h, eps, kernel) = (self.shape.hidden, self.shape.eps, self.kernel);
        par_rows(out, h, self.threads, |first, c| {
            let rows = lin.rows(kernel, a, aw, first, c, h);
            let residual = &residual[first * h..(first + rows) * h];
            kernel.vectorized(
                #[inline(always)]
                || add_layer_norm(c, Some(residual), norm, eps),
            );
        });
    }

    /// `s.intermediate = GELU(hidden·W1ᵀ + b1)`. GELU runs on each thread's rows right
    /// after its matmul, and packs them into `s.intermediate_packed` when the kernels
    /// read packed rows.
    fn intermediate(&self, lin: &Linear<K::W>, total: usize, s: &mut Scratch<K::E>) {
        let (h, inter, kernel) = (self.shape.hidden, self.shape.intermediate, self.kernel);
        let (hw, iw) = (K::width(h), K::width(inter));
        let repack = K::view(&[]).is_none();
        s.intermediate_packed.clear();
        if repack {
            s.intermediate_packed.resize(total * iw, K::E::default());
        }
        s.intermediate.resize(total * inter, 0.0);
        let a = packed::<K>(&s.hidden, h, total, &mut s.hidden_packed);
        let per = total
            .div_ceil((self.threads * PARTS_PER_THREAD).clamp(1, total.max(1)))
            .max(1);
        // Packed elements per row of `s.intermediate_packed` (none when not repacking).
        let pw = if repack { iw } else { 0 };
        // A block of rows at a time, so GELU reads what the matmul has just written
        // while it is still in L2 (a thread's whole share is 3 MB or more for MiniLM).
        let work = |first: usize, c: &mut [f32], mut packed_rows: &mut [K::E]| {
            for (block, c) in c.chunks_mut(ROW_BLOCK * inter).enumerate() {
                lin.rows(kernel, a, hw, first + block * ROW_BLOCK, c, inter);
                let (block_packed, rest) = packed_rows.split_at_mut(c.len() / inter * pw);
                packed_rows = rest;
                kernel.vectorized(
                    #[inline(always)]
                    || {
                        kernel.gelu_all(c);
                        if !block_packed.is_empty() {
                            pack_rows_into::<K>(c, inter, inter, block_packed);
                        }
                    },
                );
            }
        };
        let work = &work;
        let mut parts = Vec::new();
        let mut packed_rest = &mut s.intermediate_packed[..];
        for (i, c) in s.intermediate.chunks_mut(per * inter).enumerate() {
            let (packed_rows, tail) = packed_rest.split_at_mut(c.len() / inter * pw);
            packed_rest = tail;
            parts.push(move || work(i * per, c, packed_rows));
        }
        run_parts(self.threads, parts);
    }

    /// Self-attention per text and head, from `s.qkv` into `s.context` (token-major,
    /// heads side by side). Threads take whole texts, balanced by `Σ len²`.
    fn attention(&self, lengths: &[usize], s: &mut Scratch<K::E>) {
        let h = self.shape.hidden;
        let total: usize = lengths.iter().sum();
        s.context.resize(total * h, 0.0);

        let cost: usize = lengths.iter().map(|l| l * l).sum();
        let parts = (self.threads * PARTS_PER_THREAD).clamp(1, lengths.len().max(1));
        let mut bounds = vec![0];
        let mut acc = 0;
        for (i, len) in lengths.iter().enumerate() {
            acc += len * len;
            if bounds.len() < parts && i + 1 < lengths.len() && acc * parts >= cost * bounds.len() {
                bounds.push(i + 1);
            }
        }
        bounds.push(lengths.len());

        let qkv = &s.qkv;
        let qkv_packed = packed::<K>(qkv, 3 * h, total, &mut s.qkv_packed);
        let mut rest = &mut s.context[..];
        let mut first_token = 0;
        let mut parts = Vec::new();
        for group in bounds.windows(2) {
            let texts = &lengths[group[0]..group[1]];
            let tokens: usize = texts.iter().sum();
            let (ctx, tail) = rest.split_at_mut(tokens * h);
            rest = tail;
            let first = first_token;
            first_token += tokens;
            parts.push(move || {
                self.kernel.vectorized(
                    #[inline(always)]
                    || self.attend(texts, first, qkv, qkv_packed, ctx),
                )
            });
        }
        run_parts(self.threads, parts);
    }

    /// Attention for consecutive texts starting at token `first`; `ctx` holds their
    /// rows only.
    #[inline(always)]
    fn attend(
        &self,
        texts: &[usize],
        first: usize,
        qkv: &[f32],
        qkv_packed: &[K::E],
        ctx: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let dh = h / self.shape.heads;
        let (dw, stride, stride_packed) = (K::width(dh), 3 * h, K::width(3 * h));
        let scale = 1.0 / (dh as f32).sqrt();
        let mut keys = PackedB::empty();
        let mut values = PackedB::empty();
        let mut scores = Vec::new();
        let mut probs = Vec::new();
        let mut norms = Vec::with_capacity(ATTENTION_ROWS);
        let mut start = 0;
        for &len in texts {
            let row0 = first + start;
            for head in 0..self.shape.heads {
                // Keys as B for Q·Kᵀ; values as B for P·V, the head dims as rows.
                keys.fill_rows::<K>(
                    &qkv_packed[row0 * stride_packed + K::width(h) + head * dw..],
                    stride_packed,
                    len,
                    dw,
                );
                values.fill_transposed::<K>(
                    &qkv[row0 * stride + 2 * h + head * dh..],
                    stride,
                    dh,
                    len,
                );
                let (width, lw) = (keys.tiles() * K::NR, K::width(len));
                // A block of query rows at a time, so its scores and probabilities stay
                // in L1 between the two products.
                for r0 in (0..len).step_by(ATTENTION_ROWS) {
                    let rows = ATTENTION_ROWS.min(len - r0);
                    // scores = Q·Kᵀ: queries straight from the packed qkv rows.
                    let q = &qkv_packed[(row0 + r0) * stride_packed + head * dw..];
                    scores.resize(rows * width, 0.0);
                    self.kernel
                        .gemm(q, stride_packed, rows, &keys, None, &mut scores, width);
                    // Softmax over the text's own tokens, packed for P·V; each row's
                    // 1/Σ applied to its 32 outputs, not to its `len` probabilities.
                    probs.resize(rows * lw, K::E::default());
                    norms.clear();
                    for (row, dst) in scores
                        .chunks_exact_mut(width)
                        .zip(probs.chunks_exact_mut(lw))
                    {
                        norms.push(self.kernel.softmax(&mut row[..len], scale, dst));
                    }
                    let out = &mut ctx[(start + r0) * h + head * dh..];
                    self.kernel.gemm(&probs, lw, rows, &values, None, out, h);
                    for (row, &norm) in out.chunks_mut(h).zip(&norms) {
                        row[..dh].iter_mut().for_each(|v| *v *= norm);
                    }
                }
            }
            start += len;
        }
    }
}

/// `exp`'s range reduction and polynomial, shared by [`fast_exp`] and the AVX2 kernels
/// (`avx2::exp8`): adding `EXP_SHIFT` (1.5·2²³) rounds x·log₂e to an integer held in the
/// low mantissa bits, ln 2 is split in two for the remainder, and `EXP_POLY` holds the
/// polynomial's coefficients from degree 0 up.
const EXP_SHIFT: f32 = 12_582_912.0;
const EXP_LN2: [f32; 2] = [0.693_145_75, 1.428_606_8e-6];
const EXP_POLY: [f32; 7] = [
    1.0,
    1.0,
    0.5,
    0.166_666_67,
    0.041_666_42,
    0.008_333_452,
    0.001_393_891_5,
];
/// The input range `exp` is computed on (beyond it f32 under- or overflows).
const EXP_RANGE: [f32; 2] = [-87.0, 88.0];

/// `exp` accurate to a few ulps for the range softmax and GELU use, written so the
/// compiler vectorises loops over it (libm's `expf` is a call per element): no calls,
/// no saturating casts.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(EXP_RANGE[0], EXP_RANGE[1]);
    let t = x * std::f32::consts::LOG2_E + EXP_SHIFT;
    let n = t - EXP_SHIFT;
    let r = x - n * EXP_LN2[0] - n * EXP_LN2[1];
    let p = EXP_POLY[..6]
        .iter()
        .rev()
        .fold(EXP_POLY[6], |p, &c| p * r + c);
    let exponent = t
        .to_bits()
        .wrapping_sub(EXP_SHIFT.to_bits())
        .wrapping_add(127)
        << 23;
    p * f32::from_bits(exponent)
}

/// [`Kernel::softmax`] in plain Rust, which LLVM vectorises.
#[inline(always)]
fn softmax_plain<K: Kernel>(row: &mut [f32], scale: f32, dst: &mut [K::E]) -> f32 {
    let max = max_of(row);
    for v in row.iter_mut() {
        *v = fast_exp((*v - max) * scale);
    }
    pack_rows_into::<K>(row, row.len(), row.len(), dst);
    1.0 / sum_of(row)
}

/// [`Kernel::gelu_all`] in plain Rust, which LLVM vectorises.
#[inline(always)]
fn gelu_plain(values: &mut [f32]) {
    for v in values {
        *v = gelu(*v);
    }
}

/// Lane-wise partial results so the reductions vectorise (float addition does not
/// reassociate on its own).
#[inline(always)]
fn max_of(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l = l.max(*v);
        }
    }
    tail.iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn sum_of(values: &[f32]) -> f32 {
    sum_by(values, |v| v)
}

/// `Σ f(v)` over `values`, in lanes like [`sum_of`].
#[inline(always)]
fn sum_by(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    tail.iter().map(|&v| f(v)).chain(lanes).sum()
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): `1 - t·P(t)·e^(-x²)`
/// with `t = 1 / (1 + ERF_P·|x|)` and `ERF_POLY` P's coefficients from degree 0 up.
const ERF_P: f32 = 0.327_591_1;
const ERF_POLY: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_7,
    -1.453_152_1,
    1.061_405_4,
];

#[inline(always)]
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + ERF_P * x);
    let poly = ERF_POLY[..4]
        .iter()
        .rev()
        .fold(ERF_POLY[4], |p, &c| p * t + c);
    sign * (1.0 - t * poly * fast_exp(-x * x))
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `out = layer_norm(x + residual)` per row of `hidden`.
#[inline(always)]
fn add_layer_norm(x: &mut [f32], residual: Option<&[f32]>, norm: &LayerNorm, eps: f32) {
    let hidden = norm.weight.len();
    for (r, row) in x.chunks_exact_mut(hidden).enumerate() {
        if let Some(residual) = residual {
            for (v, res) in row.iter_mut().zip(&residual[r * hidden..(r + 1) * hidden]) {
                *v += res;
            }
        }
        // Lane-wise sums: a plain `.sum()` is one dependent scalar add per element.
        let mean = sum_of(row) / hidden as f32;
        let var = sum_by(row, |v| (v - mean) * (v - mean)) / hidden as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&norm.weight).zip(&norm.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Level;

    /// Every kernel set this CPU can run.
    fn isas() -> Vec<EmbedIsa> {
        Level::ALL.into_iter().filter_map(EmbedIsa::at).collect()
    }

    fn round_bf16(x: f32) -> f32 {
        f32::from_bits(bf16_bits(x) << 16)
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn gemm_matches_a_plain_product_of_the_rounded_inputs() {
        for isa in isas() {
            match isa {
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx512(t) => {
                    // With AMX tiles where the CPU has them, and without.
                    check_gemm(avx512::Bf16::new(t), round_bf16);
                    check_gemm(avx512::Bf16::without_amx(t), round_bf16);
                }
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx2(t) => check_gemm(F32::avx2(t), |x| x),
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx512Int(t) => check_gemm(F32::avx512(t), |x| x),
                EmbedIsa::Scalar => check_gemm(F32::scalar(), |x| x),
            }
        }
    }

    /// `round` is what the kernel's packing does to its inputs.
    fn check_gemm<K: Kernel>(kernel: K, round: fn(f32) -> f32) {
        for (rows, n, k) in [
            (1, 5, 1),
            (7, 32, 2),
            (8, 33, 31),
            (13, 70, 64),
            (100, 96, 384),
            // Whole 32 × 32 blocks and whole k tiles (AMX's fast path), then one row,
            // column and pair past them.
            (64, 64, 64),
            (33, 65, 66),
        ] {
            let a = values(rows * k, 1);
            let b = values(n * k, 2);
            let bias = values(n, 3);
            // A rows padded to a wider stride, as attention reads Q from the qkv rows.
            let lda = K::width(k) + 3;
            let mut packed_a = vec![K::E::default(); rows * lda];
            for r in 0..rows {
                pack_rows_into::<K>(
                    &a[r * k..(r + 1) * k],
                    k,
                    k,
                    &mut packed_a[r * lda..][..K::width(k)],
                );
            }
            let packed_b = PackedB::new::<K>(n, k, |row, col| b[row * k + col]);
            let ldc = n + 5;
            let mut c = vec![f32::NAN; rows * ldc];
            kernel.gemm(&packed_a, lda, rows, &packed_b, Some(&bias), &mut c, ldc);
            for r in 0..rows {
                for j in 0..n {
                    let want: f32 = bias[j]
                        + (0..k)
                            .map(|i| round(a[r * k + i]) * round(b[j * k + i]))
                            .sum::<f32>();
                    let got = c[r * ldc + j];
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{rows}x{n}x{k} at ({r},{j}): {got} vs {want}"
                    );
                }
                // Columns past n are left alone.
                assert!(c[r * ldc + n..(r + 1) * ldc].iter().all(|v| v.is_nan()));
            }
        }
    }

    /// `Kernel::gemm_weight` against the product of its operands as the kernel set
    /// rounds them (bf16), or quantises them (16-bit integers on AVX2: weights to ±511
    /// per row, activations to ±16383 per row and block of 256 along k); and against
    /// the exact product within what that rounding allows.
    #[test]
    fn gemm_with_weights_matches_the_product_of_its_rounded_operands() {
        let bf16 = |row: &[f32]| row.iter().map(|&x| round_bf16(x)).collect();
        let exact = |row: &[f32]| row.to_vec();
        for isa in isas() {
            match isa {
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx512(t) => {
                    check_gemm_weight(avx512::Bf16::new(t), false, bf16, bf16, 1.0 / 128.0);
                    check_gemm_weight(avx512::Bf16::without_amx(t), false, bf16, bf16, 1.0 / 128.0);
                }
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx2(t) => check_int_weights(F32::avx2(t)),
                #[cfg(target_arch = "x86_64")]
                EmbedIsa::Avx512Int(t) => check_int_weights(F32::avx512(t)),
                EmbedIsa::Scalar => check_gemm_weight(F32::scalar(), false, exact, exact, 1e-6),
            }
        }
        // The 512-bit integer kernels, where the CPU has them but takes bf16 for its
        // AVX-512 level.
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = crate::cpu::Avx512Vnni::detect() {
            check_int_weights(F32::avx512(t));
        }
    }

    /// [`check_gemm_weight`] for the integer kernels: 16-bit weights, and the coarse
    /// ones (8-bit with VNNI, else 16-bit too).
    #[cfg(target_arch = "x86_64")]
    fn check_int_weights(kernel: F32) {
        let symmetric = |max_q: f32, row: &[f32]| -> Vec<f32> {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let inv = if max > 0.0 { max_q / max } else { 0.0 };
            row.iter()
                .map(|x| (x * inv).round() * (max / max_q))
                .collect()
        };
        let int16_a = |row: &[f32]| -> Vec<f32> {
            let mut out = Vec::new();
            for block in row.chunks(256) {
                let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let inv = if max > 0.0 { 16_383.0 / max } else { 0.0 };
                let scale = max / 16_383.0;
                out.extend(block.iter().map(|x| (x * inv).round_ties_even() * scale));
            }
            out
        };
        let int16 = 1.0 / 511.0 + 1.0 / 16_383.0;
        check_gemm_weight(kernel, false, int16_a, |row| symmetric(511.0, row), int16);
        // The coarse weight: with VNNI 8-bit, activations to 0..=255
        // around a zero point per row and block of 512 along k, weights to
        // ±127 per row; else the same as the others.
        if avx2::IntB::int8_runs(kernel.zmm) {
            check_gemm_weight(
                kernel,
                true,
                |row| {
                    let mut out = Vec::new();
                    for block in row.chunks(512) {
                        let lo = block.iter().fold(0f32, |m, &v| m.min(v));
                        let hi = block.iter().fold(0f32, |m, &v| m.max(v));
                        let inv = 255.0 / (hi - lo);
                        let zero = (-lo * inv).round_ties_even();
                        out.extend(block.iter().map(|x| {
                            let q = (x * inv + zero).round_ties_even();
                            (q.clamp(0.0, 255.0) - zero) / inv
                        }));
                    }
                    out
                },
                |row| symmetric(127.0, row),
                1.0 / 255.0 + 1.0 / 250.0,
            );
        } else {
            check_gemm_weight(kernel, true, int16_a, |row| symmetric(511.0, row), int16);
        }
    }

    /// `round_a` and `round_b` are what the kernel does to a row of A and of B (its
    /// `coarse_weight` when `coarse`); `relative` bounds the error against the exact
    /// product as a fraction of `k·max|a|·max|b|`.
    fn check_gemm_weight<K: Kernel>(
        kernel: K,
        coarse: bool,
        round_a: impl Fn(&[f32]) -> Vec<f32>,
        round_b: impl Fn(&[f32]) -> Vec<f32>,
        relative: f32,
    ) {
        for (rows, n, k) in [
            (1, 5, 1),
            (7, 33, 31),
            (13, 70, 300),
            (40, 96, 1536),
            (64, 64, 384),
        ] {
            // Activations with an outlier column, as BERT's have.
            let mut a = values(rows * k, 6);
            for r in 0..rows {
                a[r * k + k / 2] *= 20.0;
            }
            let b: Vec<f32> = values(n * k, 7).iter().map(|v| v * 0.05).collect();
            let bias = values(n, 8);
            let mut packed_a = Vec::new();
            pack_rows::<K>(&a, k, k, rows, &mut packed_a);
            let w = if coarse {
                kernel.coarse_weight(n, k, |row, col| b[row * k + col])
            } else {
                kernel.weight(n, k, |row, col| b[row * k + col])
            };
            let ldc = n + 3;
            let mut c = vec![f32::NAN; rows * ldc];
            kernel.gemm_weight(&packed_a, K::width(k), rows, &w, Some(&bias), &mut c, ldc);
            let b_rounded: Vec<Vec<f32>> = b.chunks(k).map(&round_b).collect();
            for r in 0..rows {
                let ar = &a[r * k..(r + 1) * k];
                let ar_rounded = round_a(ar);
                let a_max = ar.iter().fold(0f32, |m, v| m.max(v.abs()));
                for j in 0..n {
                    let br = &b[j * k..(j + 1) * k];
                    let b_max = br.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let dot = |x: &[f32], y: &[f32]| {
                        x.iter()
                            .zip(y)
                            .map(|(x, y)| f64::from(*x) * f64::from(*y))
                            .sum::<f64>()
                    };
                    let got = f64::from(c[r * ldc + j]);
                    let want = f64::from(bias[j]) + dot(&ar_rounded, &b_rounded[j]);
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{rows}x{n}x{k} at ({r},{j}): {got} vs {want} of the rounded operands"
                    );
                    let exact = f64::from(bias[j]) + dot(ar, br);
                    let bound = f64::from(relative * k as f32 * a_max * b_max) + 1e-4;
                    assert!(
                        (got - exact).abs() <= bound,
                        "{rows}x{n}x{k} at ({r},{j}): {got} vs {exact} exactly (bound {bound})"
                    );
                }
                assert!(c[r * ldc + n..(r + 1) * ldc].iter().all(|v| v.is_nan()));
            }
        }
    }

    /// The integer kernels (plain AVX2, AVX-VNNI, and AVX-512 VNNI on tile pairs with
    /// its 256-bit encoding for an odd last tile) add the same integer products: their
    /// outputs are identical, bit for bit, for 16-bit and for 8-bit weights (a kernel
    /// the CPU lacks is left out).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_integer_kernels_compute_exactly_the_same_sums() {
        use crate::cpu::{Avx512Vnni, AvxVnni};
        let Some(token) = crate::cpu::Avx2::detect() else {
            return;
        };
        let (vnni, zmm) = (AvxVnni::detect(), Avx512Vnni::detect());
        let mut kernels = vec![(None, None)];
        kernels.extend(vnni.map(|v| (Some(v), None)));
        kernels.extend(zmm.map(|z| (None, Some(z))));
        let bits = |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // 1, 3, 5 and 6 tiles of 16 columns: pairs and an odd last tile.
        for (rows, n, k) in [(1, 5, 1), (7, 33, 31), (13, 70, 300), (40, 96, 1536)] {
            let a = values(rows * k, 11);
            let b = values(n * k, 12);
            let bias = values(n, 13);
            let get = |r: usize, col: usize| b[r * k + col];
            let product = |w: &avx2::IntB| {
                let mut c = vec![0f32; rows * n];
                w.gemm(&a, k, rows, Some(&bias), &mut c, n);
                bits(&c)
            };
            let int16 = avx2::IntB::int16(token, None, n, k, get);
            let int8 = avx2::IntB::int8_runs(zmm).then(|| avx2::IntB::int8(token, zmm, n, k, get));
            let (mut want16, mut want8) = (None, None);
            for &(v, z) in &kernels {
                let got16 = product(&int16.clone_with(v, z));
                assert_eq!(
                    *want16.get_or_insert_with(|| got16.clone()),
                    got16,
                    "{v:?} {z:?}"
                );
                if let Some(int8) = int8.as_ref().filter(|_| v.is_some() || z.is_some()) {
                    let got8 = product(&int8.clone_with(v, z));
                    assert_eq!(
                        *want8.get_or_insert_with(|| got8.clone()),
                        got8,
                        "{v:?} {z:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn groups_hold_the_budget_and_whole_rounds_of_texts() {
        // 230-token texts, 2 threads, 512 tokens: 3 texts reach the budget, but 3 do
        // not split evenly, so groups of 4; the rest as it is.
        assert_eq!(groups(&[230; 10], 2, 512), [0..4, 4..8, 8..10]);
        // One thread: as soon as the budget is reached.
        assert_eq!(groups(&[300; 5], 1, 512), [0..2, 2..4, 4..5]);
        // Twice the budget ends a group whatever its count.
        assert_eq!(groups(&[10, 1100, 5, 5], 2, 512), [0..2, 2..4]);
        assert_eq!(groups(&[2000, 3], 2, 512), [0..1, 1..2]);
        assert!(groups(&[], 2, 512).is_empty());
        // Every text in exactly one group, in order.
        let lengths: Vec<usize> = (0..100).map(|i| (i * 37) % 300 + 1).collect();
        let flat: Vec<usize> = groups(&lengths, 2, 512).into_iter().flatten().collect();
        assert_eq!(flat, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn the_specialised_packings_agree_with_the_general_one() {
        check_packings::<F32>();
        #[cfg(target_arch = "x86_64")]
        check_packings::<avx512::Bf16>();
    }

    fn check_packings<K: Kernel>() {
        let (n, k) = (45, 20);
        let m = values(n * k, 4);
        let general = PackedB::new::<K>(n, k, |row, col| m[row * k + col]);

        let mut pairs = Vec::new();
        pack_rows::<K>(&m, k, k, n, &mut pairs);
        let mut rows = PackedB::empty();
        rows.fill_rows::<K>(&pairs, K::width(k), n, K::width(k));
        assert_eq!(rows.data, general.data);

        // Mᵀ stored k × n with a wider stride.
        let stride = n + 2;
        let mut transposed_src = vec![0.0; k * stride];
        for row in 0..n {
            for col in 0..k {
                transposed_src[col * stride + row] = m[row * k + col];
            }
        }
        let mut transposed = PackedB::empty();
        transposed.fill_transposed::<K>(&transposed_src, stride, n, k);
        assert_eq!(transposed.data, general.data);

        // An odd k pads the last pair with zero.
        let odd = PackedB::new::<K>(3, 3, |row, col| (row * 3 + col) as f32 + 1.0);
        let mut odd_t = PackedB::empty();
        let src: Vec<f32> = (0..3)
            .flat_map(|col| (0..3).map(move |row| (row * 3 + col) as f32 + 1.0))
            .collect();
        odd_t.fill_transposed::<K>(&src, 3, 3, 3);
        assert_eq!(odd.data, odd_t.data);
        #[cfg(target_arch = "x86_64")]
        {
            // An odd k's missing partner is zero (lane 0 of the second pair).
            let odd = PackedB::new::<avx512::Bf16>(3, 3, |row, col| (row * 3 + col) as f32 + 1.0);
            assert_eq!(odd.data[<avx512::Bf16 as Kernel>::NR] >> 16, 0);
        }
    }

    #[test]
    fn fast_exp_is_within_a_few_ulps_of_exp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (fast_exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 1e-6,
                "exp({x}) = {got}, expected {want}"
            );
            x += 0.037;
        }
        assert_eq!(fast_exp(f32::NEG_INFINITY), fast_exp(-87.0));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx2_softmax_and_gelu_agree_with_the_plain_ones() {
        let Some(token) = isas().into_iter().find_map(|isa| match isa {
            EmbedIsa::Avx2(t) => Some(t),
            _ => None,
        }) else {
            return;
        };
        let kernel = F32::avx2(token);
        for len in [1, 7, 8, 9, 16, 245] {
            let row: Vec<f32> = values(len, len as u32).iter().map(|x| x * 30.0).collect();
            let (mut plain, mut fast) = (vec![0.0; len], vec![0.0; len]);
            let plain_norm = softmax_plain::<F32>(&mut row.clone(), 0.17, &mut plain);
            let fast_norm = kernel.vectorized(|| kernel.softmax(&mut row.clone(), 0.17, &mut fast));
            for (f, p) in fast.iter().zip(&plain) {
                assert!(
                    (f - p).abs() <= 2e-6 * p.max(1e-3),
                    "{len}: {f} against {p}"
                );
            }
            // Unnormalised: the largest is exp(0), and the norm makes the sum 1.
            assert!((fast.iter().fold(0f32, |m, &v| m.max(v)) - 1.0).abs() < 1e-6);
            assert!((fast_norm - plain_norm).abs() <= 2e-6 * plain_norm);
            assert!((fast.iter().sum::<f32>() * fast_norm - 1.0).abs() < 1e-5);
        }
        let mut xs: Vec<f32> = values(1003, 7).iter().map(|x| x * 8.0).collect();
        xs.extend([-100.0, -10.0, -0.0, 0.0, 1e-30, 10.0, 100.0]);
        let mut fast = xs.clone();
        kernel.vectorized(|| kernel.gelu_all(&mut fast));
        for (f, &x) in fast.iter().zip(&xs) {
            let want = gelu(x);
            assert!(
                (f - want).abs() <= 1e-6 * x.abs().max(1.0),
                "gelu({x}) = {f}, not {want}"
            );
        }
    }

    #[test]
    fn erf_and_gelu_match_known_values() {
        // erf from tables (Abramowitz & Stegun 7.1).
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.112_462_92),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (3.5, 0.999_999_3),
        ] {
            assert!((erf(x) - want).abs() < 5e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 5e-7, "erf(-{x}) = {}", erf(-x));
        }
        // GELU(x) = x·Φ(x).
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_25).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
    }

    #[test]
    fn reductions_cover_every_element() {
        let v = values(37, 5);
        assert_eq!(max_of(&v), v.iter().copied().fold(f32::MIN, f32::max));
        assert!((sum_of(&v) - v.iter().sum::<f32>()).abs() < 1e-5);
        assert_eq!(max_of(&[]), f32::NEG_INFINITY);
        assert_eq!(sum_of(&[2.0]), 2.0);
        let squares: f32 = v.iter().map(|x| x * x).sum();
        assert!((sum_by(&v, |x| x * x) - squares).abs() < 1e-4 * squares);
    }

    #[test]
    fn configs_the_pass_does_not_implement_are_left_to_candle() {
        let base = serde_json::json!({
            "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536,
            "num_hidden_layers": 6, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        });
        assert!(Shape::from_config(&base).is_some());
        let with = |key: &str, value: serde_json::Value| {
            let mut config = base.clone();
            config[key] = value;
            Shape::from_config(&config)
        };
        assert!(with("hidden_act", "relu".into()).is_none());
        assert!(with("position_embedding_type", "relative_key".into()).is_none());
        assert!(with("num_attention_heads", 5.into()).is_none());
        assert!(with("hidden_size", serde_json::Value::Null).is_none());
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// The f32 kernels (AVX2 where the CPU has it, else scalar) on a qkv-sized product:
    /// `AGENTBASE_KERNELS=avx2 cargo test --release -p agentbase-llm gemm_speed --
    /// --ignored --nocapture`
    #[test]
    #[ignore]
    fn gemm_speed() {
        let level = crate::cpu::kernels().unwrap_or_else(|_| crate::cpu::best());
        let isa = EmbedIsa::at(level.embeddings).unwrap();
        let (rows, n, k) = (1800, 1152, 384);
        let a: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; rows * n];
        let kernel = match isa {
            #[cfg(target_arch = "x86_64")]
            EmbedIsa::Avx2(t) => F32::avx2(t),
            #[cfg(target_arch = "x86_64")]
            EmbedIsa::Avx512Int(t) => F32::avx512(t),
            _ => F32::scalar(),
        };
        let packed = PackedB::new::<F32>(n, k, |r, col| b[r * k + col]);
        let weight = kernel.weight(n, k, |r, col| b[r * k + col]);
        // Time on the CPU (schedstat), so a busy machine does not skew it much.
        let on_cpu = || -> f64 {
            let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
            s.split(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
                / 1e9
        };
        for _ in 0..3 {
            for (name, with_weight) in [("f32 B", false), ("weight", true)] {
                let (t, cpu) = (std::time::Instant::now(), on_cpu());
                for _ in 0..5 {
                    if with_weight {
                        kernel.gemm_weight(&a, k, rows, &weight, None, &mut c, n);
                    } else {
                        kernel.gemm(&a, k, rows, &packed, None, &mut c, n);
                    }
                }
                let (secs, cpu) = (t.elapsed().as_secs_f64(), on_cpu() - cpu);
                let flops = 5.0 * 2.0 * (rows * n * k) as f64;
                eprintln!(
                    "{rows}x{n}x{k}, {name}: {:.1} GFLOP per wall s, {:.1} per CPU s",
                    flops / secs / 1e9,
                    flops / cpu / 1e9
                );
            }
        }
    }
}
