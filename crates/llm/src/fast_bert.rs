//! A BERT encoder forward pass for sentence embeddings on x86-64 CPUs with AVX-512
//! BF16, used by `LocalEmbedder` instead of candle's when the CPU has it.
//!
//! Why not candle: its f32 matmul (the `gemm` crate) runs at AVX2 width here, and a
//! padded batch pays for its padding. This pass
//! - packs the batch's tokens without padding: the linear layers run over every real
//!   token of every text at once, attention runs per text at its own length (so no
//!   mask is needed and a batch gives each text exactly what it gets alone);
//! - multiplies in bf16 with f32 accumulation (`vdpbf16ps`, twice the f32 FMA rate),
//!   weights converted once at load; layer norms, softmax, GELU and pooling stay f32;
//! - splits every step over `threads` scoped OS threads (rows of the linear layers,
//!   heads of attention).
//!
//! The vectors stay within a cosine of 0.9999 of the f32 ones (the embedding test
//! checks them against sentence-transformers' at 0.999).

#![cfg(target_arch = "x86_64")]
// The micro-kernel calls AVX-512 intrinsics through raw pointers; the rest is safe.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::collections::HashMap;

use candle_core::Tensor;

/// Rows and columns of one micro-kernel tile: 12 × 32 f32 accumulators fill 24 of
/// the 32 zmm registers.
const MR: usize = 8;
const NR: usize = 32;

/// True when this CPU can run the fast path.
pub(crate) fn supported() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
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

pub(crate) struct FastBert {
    shape: Shape,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    max_positions: usize,
    type_count: usize,
    vocab: usize,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    threads: usize,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one `3·hidden × hidden` matrix.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

struct Linear {
    weight: PackedB,
    bias: Vec<f32>,
}

/// The right-hand operand of `A · Bᵀ` (B is `n × k`, row-major like a torch Linear
/// weight) in the layout the micro-kernel reads: for each tile of 32 rows of B, for
/// each pair of k, 32 lanes each holding (B[n][2p], B[n][2p+1]) as two bf16.
/// Rows past `n` and the odd k's partner are zero.
struct PackedB {
    data: Vec<u32>,
    n: usize,
    k_pairs: usize,
}

impl PackedB {
    fn new(n: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let mut packed = Self {
            data: Vec::new(),
            n: 0,
            k_pairs: 0,
        };
        packed.fill(n, k, get);
        packed
    }

    /// Repacks into the same allocation (attention does this per head).
    fn fill(&mut self, n: usize, k: usize, get: impl Fn(usize, usize) -> f32) {
        let k_pairs = k.div_ceil(2);
        let tiles = n.div_ceil(NR);
        self.n = n;
        self.k_pairs = k_pairs;
        self.data.clear();
        self.data.resize(tiles * k_pairs * NR, 0);
        for tile in 0..tiles {
            let block = &mut self.data[tile * k_pairs * NR..(tile + 1) * k_pairs * NR];
            for lane in 0..NR.min(n - tile * NR) {
                let row = tile * NR + lane;
                for p in 0..k_pairs {
                    let lo = get(row, 2 * p);
                    let hi = if 2 * p + 1 < k {
                        get(row, 2 * p + 1)
                    } else {
                        0.0
                    };
                    block[p * NR + lane] = pair(lo, hi);
                }
            }
        }
    }

    /// B rows already packed as bf16 pairs: row `j` is `src[j·stride..][..k_pairs]`.
    fn fill_rows(&mut self, src: &[u32], stride: usize, n: usize, k_pairs: usize) {
        let tiles = n.div_ceil(NR);
        self.n = n;
        self.k_pairs = k_pairs;
        self.data.clear();
        self.data.resize(tiles * k_pairs * NR, 0);
        for (row, pairs) in (0..n).map(|j| (j, &src[j * stride..j * stride + k_pairs])) {
            let block = &mut self.data[(row / NR) * k_pairs * NR..];
            for (p, &v) in pairs.iter().enumerate() {
                block[p * NR + row % NR] = v;
            }
        }
    }

    /// B = Mᵀ for M `k × n` in f32 (row `i` at `src[i·stride..]`): lane `j` of pair `p`
    /// holds (M[2p][j], M[2p+1][j]).
    fn fill_transposed(&mut self, src: &[f32], stride: usize, n: usize, k: usize) {
        let k_pairs = k.div_ceil(2);
        let tiles = n.div_ceil(NR);
        self.n = n;
        self.k_pairs = k_pairs;
        self.data.clear();
        self.data.resize(tiles * k_pairs * NR, 0);
        for tile in 0..tiles {
            let cols = NR.min(n - tile * NR);
            for p in 0..k_pairs {
                let lo = &src[2 * p * stride + tile * NR..][..cols];
                let dst = &mut self.data[(tile * k_pairs + p) * NR..][..cols];
                if 2 * p + 1 < k {
                    let hi = &src[(2 * p + 1) * stride + tile * NR..][..cols];
                    for ((d, &l), &h) in dst.iter_mut().zip(lo).zip(hi) {
                        *d = pair(l, h);
                    }
                } else {
                    for (d, &l) in dst.iter_mut().zip(lo) {
                        *d = pair(l, 0.0);
                    }
                }
            }
        }
    }

    fn tiles(&self) -> usize {
        self.n.div_ceil(NR)
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

/// Packs rows of f32 (`cols` wide, `stride` apart) as bf16 pairs, `cols.div_ceil(2)`
/// per row.
fn pack_rows(src: &[f32], stride: usize, cols: usize, rows: usize, out: &mut Vec<u32>) {
    out.clear();
    out.resize(rows * cols.div_ceil(2), 0);
    pack_rows_into(src, stride, cols, out);
}

/// `pack_rows` into a slice of exactly `rows · cols.div_ceil(2)`.
fn pack_rows_into(src: &[f32], stride: usize, cols: usize, out: &mut [u32]) {
    let k_pairs = cols.div_ceil(2);
    for (r, dst) in out.chunks_exact_mut(k_pairs).enumerate() {
        let row = &src[r * stride..r * stride + cols];
        let (even, rest) = row.split_at(cols & !1);
        for (d, xy) in dst.iter_mut().zip(even.chunks_exact(2)) {
            *d = pair(xy[0], xy[1]);
        }
        if let Some(&last) = rest.first() {
            dst[k_pairs - 1] = pair(last, 0.0);
        }
    }
}

/// `c[r][j] = Σ a[r]·b[j] (+ bias[j])` for `rows` rows of `a` (bf16 pairs, `lda` apart,
/// the first `b.k_pairs` of each used) and the `b.n` columns, into `c` (f32, `ldc` per
/// row). One thread.
fn gemm(
    a: &[u32],
    lda: usize,
    rows: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    assert!(lda >= b.k_pairs, "gemm: A rows are narrower than B's");
    assert!(
        rows == 0 || a.len() >= (rows - 1) * lda + b.k_pairs,
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
    // Blocks of rows whose A stays in L2 while every tile of B passes over it.
    const ROW_BLOCK: usize = 8 * MR;
    let kp = b.k_pairs;
    for block in (0..rows).step_by(ROW_BLOCK) {
        let block_end = (block + ROW_BLOCK).min(rows);
        for tile in 0..b.tiles() {
            let cols = NR.min(b.n - tile * NR);
            let b_tile = &b.data[tile * kp * NR..(tile + 1) * kp * NR];
            let bias_tile = bias.map(|bias| &bias[tile * NR..tile * NR + cols]);
            let mut row = block;
            while row < block_end {
                let r = MR.min(block_end - row);
                let a_rows = &a[row * lda..];
                let c_rows = &mut c[row * ldc + tile * NR..];
                // SAFETY: `supported()` was checked before any FastBert exists; the
                // slices cover every element the kernel touches (asserted above).
                unsafe {
                    match r {
                        8 => {
                            tile_kernel::<8>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        7 => {
                            tile_kernel::<7>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        6 => {
                            tile_kernel::<6>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        5 => {
                            tile_kernel::<5>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        4 => {
                            tile_kernel::<4>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        3 => {
                            tile_kernel::<3>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        2 => {
                            tile_kernel::<2>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                        _ => {
                            tile_kernel::<1>(a_rows, lda, kp, b_tile, bias_tile, c_rows, ldc, cols)
                        }
                    }
                }
                row += r;
            }
        }
    }
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

/// Runs `work(first_row, rows_chunk)` over `data` (rows of `width`) split into at most
/// `threads` contiguous parts on scoped threads.
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
    let per = rows.div_ceil(threads);
    std::thread::scope(|scope| {
        let work = &work;
        let mut rest = data;
        let mut first = 0;
        let mut handles = Vec::new();
        while !rest.is_empty() {
            let take = (per * width).min(rest.len());
            let (chunk, tail) = rest.split_at_mut(take);
            rest = tail;
            let start = first;
            first += take / width.max(1);
            if rest.is_empty() {
                work(start, chunk);
            } else {
                handles.push(scope.spawn(move || work(start, chunk)));
            }
        }
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// `exp` accurate to a few ulps for the range softmax and GELU use, written so the
/// compiler vectorises loops over it (libm's `expf` is a call per element): no calls,
/// no saturating casts.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    // Adding 1.5·2²³ rounds x·log₂e to an integer held in the low mantissa bits.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_42 + r * (0.008_333_452 + r * 0.001_393_891_5)))));
    let exponent = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23;
    p * f32::from_bits(exponent)
}

/// Lane-wise partial results so the reductions vectorise (float addition does not
/// reassociate on its own).
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

fn sum_of(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    tail.iter().chain(&lanes).sum()
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - t * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))))
            * fast_exp(-x * x);
    sign * y
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `out = layer_norm(x + residual)` per row of `hidden`.
fn add_layer_norm(x: &mut [f32], residual: Option<&[f32]>, norm: &LayerNorm, eps: f32) {
    let hidden = norm.weight.len();
    for (r, row) in x.chunks_exact_mut(hidden).enumerate() {
        if let Some(residual) = residual {
            for (v, res) in row.iter_mut().zip(&residual[r * hidden..(r + 1) * hidden]) {
                *v += res;
            }
        }
        let mean = row.iter().sum::<f32>() / hidden as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / hidden as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&norm.weight).zip(&norm.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// Buffers reused across layers of one forward pass.
#[derive(Default)]
struct Scratch {
    hidden: Vec<f32>,
    hidden_bf16: Vec<u32>,
    qkv: Vec<f32>,
    qkv_bf16: Vec<u32>,
    /// Attention output, token-major.
    context: Vec<f32>,
    context_bf16: Vec<u32>,
    projected: Vec<f32>,
    intermediate: Vec<f32>,
    intermediate_bf16: Vec<u32>,
}

impl FastBert {
    /// Builds the pass from the safetensors' tensors (f32 or f16/bf16; names with or
    /// without a `bert.` prefix). `Err` names what is missing or misshapen.
    pub(crate) fn load(
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
        let linear = |name: &str, n: usize, k: usize| -> Result<Linear, String> {
            let w = get(&format!("{name}.weight"), &[n, k])?;
            Ok(Linear {
                weight: PackedB::new(n, k, |row, col| w[row * k + col]),
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
                weight: PackedB::new(3 * h, h, |row, col| {
                    let m = [&q, &k, &v][row / h];
                    m[(row % h) * h + col]
                }),
                bias,
            };
            layers.push(Layer {
                qkv,
                attention_out: linear(&at("attention.output.dense"), h, h)?,
                attention_norm: norm(&at("attention.output.LayerNorm"))?,
                intermediate: linear(&at("intermediate.dense"), shape.intermediate, h)?,
                output: linear(&at("output.dense"), h, shape.intermediate)?,
                output_norm: norm(&at("output.LayerNorm"))?,
            });
        }
        Ok(Self {
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
    pub(crate) fn forward(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, String> {
        let h = self.shape.hidden;
        let total: usize = inputs.iter().map(|i| i.ids.len()).sum();
        let mut s = Scratch::default();

        // Embeddings.
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
        add_layer_norm(&mut s.hidden, None, &self.embeddings_norm, self.shape.eps);

        let lengths: Vec<usize> = inputs.iter().map(|i| i.ids.len()).collect();
        for layer in &self.layers {
            self.layer(layer, &lengths, &mut s);
        }
        Ok(s.hidden)
    }

    fn layer(&self, layer: &Layer, lengths: &[usize], s: &mut Scratch) {
        let h = self.shape.hidden;
        let total: usize = lengths.iter().sum();
        let eps = self.shape.eps;
        let threads = self.threads;

        pack_rows(&s.hidden, h, h, total, &mut s.hidden_bf16);
        let hp = h / 2;
        s.qkv.resize(total * 3 * h, 0.0);
        {
            let a = &s.hidden_bf16;
            par_rows(&mut s.qkv, 3 * h, threads, |first, c| {
                let rows = c.len() / (3 * h);
                let b = &layer.qkv.weight;
                gemm(
                    &a[first * hp..],
                    hp,
                    rows,
                    b,
                    Some(&layer.qkv.bias),
                    c,
                    3 * h,
                );
            });
        }

        self.attention(lengths, s);

        // Output projection + residual + norm.
        pack_rows(&s.context, h, h, total, &mut s.context_bf16);
        s.projected.resize(total * h, 0.0);
        {
            let a = &s.context_bf16;
            let hidden = &s.hidden;
            let lin = &layer.attention_out;
            let norm = &layer.attention_norm;
            par_rows(&mut s.projected, h, threads, |first, c| {
                let rows = c.len() / h;
                gemm(
                    &a[first * hp..],
                    hp,
                    rows,
                    &lin.weight,
                    Some(&lin.bias),
                    c,
                    h,
                );
                add_layer_norm(c, Some(&hidden[first * h..(first + rows) * h]), norm, eps);
            });
        }
        std::mem::swap(&mut s.hidden, &mut s.projected);

        // Feed-forward: GELU(x·W1ᵀ + b1)·W2ᵀ + b2, + residual, norm.
        let inter = self.shape.intermediate;
        let ip = inter.div_ceil(2);
        pack_rows(&s.hidden, h, h, total, &mut s.hidden_bf16);
        s.intermediate_bf16.clear();
        s.intermediate_bf16.resize(total * ip, 0);
        s.intermediate.resize(total * inter, 0.0);
        {
            let a = &s.hidden_bf16;
            let lin = &layer.intermediate;
            let per = total.div_ceil(threads.clamp(1, total.max(1))).max(1);
            let work = |first: usize, c: &mut [f32], packed: &mut [u32]| {
                let rows = c.len() / inter;
                gemm(
                    &a[first * hp..],
                    hp,
                    rows,
                    &lin.weight,
                    Some(&lin.bias),
                    c,
                    inter,
                );
                for v in c.iter_mut() {
                    *v = gelu(*v);
                }
                pack_rows_into(c, inter, inter, packed);
            };
            std::thread::scope(|scope| {
                let work = &work;
                let mut handles = Vec::new();
                let parts = s
                    .intermediate
                    .chunks_mut(per * inter)
                    .zip(s.intermediate_bf16.chunks_mut(per * ip))
                    .enumerate();
                for (i, (c, packed)) in parts {
                    if (i + 1) * per >= total {
                        work(i * per, c, packed);
                    } else {
                        handles.push(scope.spawn(move || work(i * per, c, packed)));
                    }
                }
                for handle in handles {
                    if let Err(panic) = handle.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
            });
        }
        s.projected.resize(total * h, 0.0);
        {
            let a = &s.intermediate_bf16;
            let hidden = &s.hidden;
            let lin = &layer.output;
            let norm = &layer.output_norm;
            par_rows(&mut s.projected, h, threads, |first, c| {
                let rows = c.len() / h;
                gemm(
                    &a[first * ip..],
                    ip,
                    rows,
                    &lin.weight,
                    Some(&lin.bias),
                    c,
                    h,
                );
                add_layer_norm(c, Some(&hidden[first * h..(first + rows) * h]), norm, eps);
            });
        }
        std::mem::swap(&mut s.hidden, &mut s.projected);
    }

    /// Self-attention per text and head, from `s.qkv` into `s.context` (token-major,
    /// heads side by side). Threads take whole texts, balanced by `Σ len²`.
    fn attention(&self, lengths: &[usize], s: &mut Scratch) {
        let h = self.shape.hidden;
        let total: usize = lengths.iter().sum();
        pack_rows(&s.qkv, 3 * h, 3 * h, total, &mut s.qkv_bf16);
        s.context.resize(total * h, 0.0);

        let cost: usize = lengths.iter().map(|l| l * l).sum();
        let parts = self.threads.clamp(1, lengths.len().max(1));
        let mut bounds = vec![0];
        let mut acc = 0;
        for (i, len) in lengths.iter().enumerate() {
            acc += len * len;
            if bounds.len() < parts && i + 1 < lengths.len() && acc * parts >= cost * bounds.len() {
                bounds.push(i + 1);
            }
        }
        bounds.push(lengths.len());

        let (qkv, qkv_bf16) = (&s.qkv, &s.qkv_bf16);
        std::thread::scope(|scope| {
            let mut rest = &mut s.context[..];
            let mut first_token = 0;
            let mut handles = Vec::new();
            for (i, group) in bounds.windows(2).enumerate() {
                let texts = &lengths[group[0]..group[1]];
                let tokens: usize = texts.iter().sum();
                let (ctx, tail) = rest.split_at_mut(tokens * h);
                rest = tail;
                let first = first_token;
                first_token += tokens;
                let mut work = move || self.attend(texts, first, qkv, qkv_bf16, ctx);
                if i + 2 == bounds.len() {
                    work();
                } else {
                    handles.push(scope.spawn(work));
                }
            }
            for handle in handles {
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
    }

    /// Attention for consecutive texts starting at token `first`; `ctx` holds their
    /// rows only.
    fn attend(
        &self,
        texts: &[usize],
        first: usize,
        qkv: &[f32],
        qkv_bf16: &[u32],
        ctx: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let dh = h / self.shape.heads;
        let (dp, stride, stride_bf16) = (dh / 2, 3 * h, 3 * h / 2);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut keys = PackedB::new(0, 0, |_, _| 0.0);
        let mut values = PackedB::new(0, 0, |_, _| 0.0);
        let mut scores = Vec::new();
        let mut probs = Vec::new();
        let mut start = 0;
        for &len in texts {
            let row0 = first + start;
            for head in 0..self.shape.heads {
                // scores = Q·Kᵀ: queries straight from the packed qkv rows, keys as B.
                let q = &qkv_bf16[row0 * stride_bf16 + head * dp..];
                keys.fill_rows(
                    &qkv_bf16[row0 * stride_bf16 + (h + head * dh) / 2..],
                    stride_bf16,
                    len,
                    dp,
                );
                let width = keys.tiles() * NR;
                scores.clear();
                scores.resize(len * width, 0.0);
                gemm(q, stride_bf16, len, &keys, None, &mut scores, width);
                // Softmax over the text's own tokens, packed for P·V.
                let lp = len.div_ceil(2);
                probs.clear();
                probs.resize(len * lp, 0);
                for (row, dst) in scores
                    .chunks_exact_mut(width)
                    .zip(probs.chunks_exact_mut(lp))
                {
                    let row = &mut row[..len];
                    let max = max_of(row);
                    for v in row.iter_mut() {
                        *v = fast_exp((*v - max) * scale);
                    }
                    let inv = 1.0 / sum_of(row);
                    for v in row.iter_mut() {
                        *v *= inv;
                    }
                    pack_rows_into(row, len, len, dst);
                }
                // context = P·V, V as B with the head dims as rows.
                values.fill_transposed(&qkv[row0 * stride + 2 * h + head * dh..], stride, dh, len);
                gemm(
                    &probs,
                    lp,
                    len,
                    &values,
                    None,
                    &mut ctx[start * h + head * dh..],
                    h,
                );
            }
            start += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        if !supported() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        for (rows, n, k) in [
            (1, 5, 1),
            (7, 32, 2),
            (8, 33, 31),
            (13, 70, 64),
            (100, 96, 384),
        ] {
            let a = values(rows * k, 1);
            let b = values(n * k, 2);
            let bias = values(n, 3);
            // A rows padded to a wider stride, as attention reads Q from the qkv rows.
            let lda = k.div_ceil(2) + 3;
            let mut packed_a = vec![0u32; rows * lda];
            for r in 0..rows {
                pack_rows_into(
                    &a[r * k..(r + 1) * k],
                    k,
                    k,
                    &mut packed_a[r * lda..][..k.div_ceil(2)],
                );
            }
            let packed_b = PackedB::new(n, k, |row, col| b[row * k + col]);
            let ldc = n + 5;
            let mut c = vec![f32::NAN; rows * ldc];
            gemm(&packed_a, lda, rows, &packed_b, Some(&bias), &mut c, ldc);
            for r in 0..rows {
                for j in 0..n {
                    let want: f32 = bias[j]
                        + (0..k)
                            .map(|i| round_bf16(a[r * k + i]) * round_bf16(b[j * k + i]))
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

    #[test]
    fn the_specialised_packings_agree_with_the_general_one() {
        let (n, k) = (45, 20);
        let m = values(n * k, 4);
        let general = PackedB::new(n, k, |row, col| m[row * k + col]);

        let mut pairs = Vec::new();
        pack_rows(&m, k, k, n, &mut pairs);
        let mut rows = PackedB::new(0, 0, |_, _| 0.0);
        rows.fill_rows(&pairs, k / 2, n, k / 2);
        assert_eq!(rows.data, general.data);

        // Mᵀ stored k × n with a wider stride.
        let stride = n + 2;
        let mut transposed_src = vec![0.0; k * stride];
        for row in 0..n {
            for col in 0..k {
                transposed_src[col * stride + row] = m[row * k + col];
            }
        }
        let mut transposed = PackedB::new(0, 0, |_, _| 0.0);
        transposed.fill_transposed(&transposed_src, stride, n, k);
        assert_eq!(transposed.data, general.data);

        // An odd k pads the last pair with zero.
        let odd = PackedB::new(3, 3, |row, col| (row * 3 + col) as f32 + 1.0);
        let mut odd_t = PackedB::new(0, 0, |_, _| 0.0);
        let src: Vec<f32> = (0..3)
            .flat_map(|col| (0..3).map(move |row| (row * 3 + col) as f32 + 1.0))
            .collect();
        odd_t.fill_transposed(&src, 3, 3, 3);
        assert_eq!(odd.data, odd_t.data);
        assert_eq!(odd.data[NR] >> 16, 0, "the missing k is zero");
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
