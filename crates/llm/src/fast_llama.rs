//! The llama forward pass for GGUF files, used by `LocalChatModel` instead of `llama`
//! (candle's quantized matmuls) for every llama file it can run.
//!
//! Why: candle 0.11 has no SIMD kernel for Q4_1 (the default SmolLM2 file's format),
//! and its quantized kernels are chosen at compile time, so a portable build gets
//! none. This pass works like llama.cpp's CPU backend:
//! - weights stay in their 4-bit (Q4_1) or 8-bit (Q8_0, anything else is converted to
//!   it) blocks of 32, repacked at load so one 512-bit `vpdpbusd` (or two 256-bit
//!   `vpmaddubsw` on AVX2) multiplies two blocks of unsigned weights by two blocks of
//!   activations quantised to signed 8-bit per token (as llama.cpp's Q8_1), with f32
//!   scales applied per block;
//! - prefill multiplies tiles of 4 weight rows × 4 tokens (× 2 on AVX2), so each
//!   weight is read once per few tokens (and from L1 after the first tile of a row
//!   block);
//! - the KV cache is f16 (as llama.cpp's), keys stored dimension-major per block of
//!   16 positions so 16 scores
//!   come out of one FMA chain; attention is a fused scores → softmax → values pass
//!   per group of query heads sharing a KV head, split over key segments when
//!   decoding so both threads work on it;
//! - every step is split over a small persistent pool of spinning threads (`crate::pool`),
//!   since a decoded token has ~150 parallel steps of a few µs each.
//!
//! The kernels come in three sets chosen at run time (`crate::cpu`): `avx512` (VNNI),
//! `avx2` (AVX2 + FMA + F16C) and `scalar` (plain Rust, any CPU); the model, the pool
//! and the data layout are shared.
//!
//! Numerics: weights are exactly the file's; activations rounded to 8 bits per block
//! of 32 are what llama.cpp and candle's quantized matmuls do as well. The logits test
//! in `tests` checks every kernel set against candle's `quantized_llama` on the same
//! file.

// Raw output pointers handed to the pool's tasks, and the kernels behind their
// CPU-feature tokens; the rest is safe.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::{GgmlDType, gguf_file};
use candle_core::{Device, Result};

use crate::cpu::ChatIsa;
use crate::pool::Pool;

/// Positions the RoPE table covers (as the candle-based `llama`).
const MAX_SEQ_LEN: usize = crate::llama::MAX_SEQ_LEN;
/// Weights per block (one scale and one minimum each).
const BLOCK: usize = 32;
/// Weights per `vpdpbusd`: two blocks.
const CHUNK: usize = 64;
/// Tokens per attention work item during prefill.
const ATTN_TOKENS: usize = 4;

// ---------------------------------------------------------------------------------
// f16 helpers

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let shift = man.leading_zeros() - 21;
            let man = (man << shift) & 0x3ff;
            sign | ((113 - shift) << 23) | (man << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

fn f32_to_f16(x: f32) -> u16 {
    scalar::f32_to_f16(x)
}

// ---------------------------------------------------------------------------------
// Packed weights and quantised activations

/// Where element `e` (0..32) of the chunk's block `half` (0 or 1) sits among the 64
/// byte slots one `vpdpbusd` sees: 4-byte lanes alternate between the two blocks, so
/// a lane's scale is `[dA, dB, dA, dB, …]`, one broadcast of a pair of f16s.
fn slot(half: usize, e: usize) -> usize {
    ((e / 4) * 2 + half) * 4 + e % 4
}

/// A weight matrix, `rows × cols`, in blocks of 32 along a row: `w = d·u + m` with
/// `u` unsigned (4 bits packed two per byte, or 8 bits), `d` and `m` f16.
pub(crate) struct QMatrix {
    rows: usize,
    cols: usize,
    /// 64-weight chunks per row (the last block of an odd count is padding).
    chunks: usize,
    nibbles: bool,
    /// `rows × chunks × (32 | 64)` bytes in slot order (`slot`): for nibbles, byte
    /// `i` holds slot `i` in its low half and slot `i + 32` in its high half.
    data: Vec<u8>,
    /// `rows × 2·chunks` block scales.
    d: Vec<u16>,
    /// `rows × 2·chunks` block minimums.
    m: Vec<u16>,
}

impl QMatrix {
    fn chunk_bytes(&self) -> usize {
        if self.nibbles { CHUNK / 2 } else { CHUNK }
    }

    /// From one row's blocks, each `(d, m, [u; 32])`; `u < 16` when `nibbles`.
    fn from_blocks(
        rows: usize,
        cols: usize,
        nibbles: bool,
        mut block: impl FnMut(usize, usize) -> (u16, u16, [u8; BLOCK]),
    ) -> Self {
        let blocks = cols.div_ceil(BLOCK);
        let chunks = blocks.div_ceil(2);
        let chunk_bytes = if nibbles { CHUNK / 2 } else { CHUNK };
        let mut data = vec![0u8; rows * chunks * chunk_bytes];
        let mut d = vec![0u16; rows * chunks * 2];
        let mut m = vec![0u16; rows * chunks * 2];
        let mut slots = [0u8; CHUNK];
        for r in 0..rows {
            for c in 0..chunks {
                slots.fill(0);
                for half in 0..2 {
                    let b = 2 * c + half;
                    if b >= blocks {
                        continue;
                    }
                    let (bd, bm, u) = block(r, b);
                    d[r * chunks * 2 + b] = bd;
                    m[r * chunks * 2 + b] = bm;
                    for (e, &u) in u.iter().enumerate() {
                        slots[slot(half, e)] = u;
                    }
                }
                let out = &mut data[(r * chunks + c) * chunk_bytes..][..chunk_bytes];
                if nibbles {
                    for (i, byte) in out.iter_mut().enumerate() {
                        *byte = slots[i] | (slots[i + CHUNK / 2] << 4);
                    }
                } else {
                    out.copy_from_slice(&slots);
                }
            }
        }
        Self {
            rows,
            cols,
            chunks,
            nibbles,
            data,
            d,
            m,
        }
    }

    /// From a GGUF tensor `[rows, cols]`: Q4_1 and Q8_0 keep their values, anything
    /// else is dequantised and rounded to 8 bits per block of 32.
    fn from_qtensor(t: &candle_core::quantized::QTensor) -> Result<Self> {
        let (rows, cols) = t.shape().dims2()?;
        let blocks = cols / BLOCK;
        let half = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
        match t.dtype() {
            GgmlDType::Q4_1 if cols % BLOCK == 0 => {
                let raw = t.data()?;
                Ok(Self::from_blocks(rows, cols, true, |r, b| {
                    let blk = &raw[(r * blocks + b) * 20..][..20];
                    let mut u = [0u8; BLOCK];
                    for (i, &q) in blk[4..].iter().enumerate() {
                        u[i] = q & 0x0f;
                        u[i + 16] = q >> 4;
                    }
                    (half(&blk[0..2]), half(&blk[2..4]), u)
                }))
            }
            GgmlDType::Q8_0 if cols % BLOCK == 0 => {
                let raw = t.data()?;
                Ok(Self::from_blocks(rows, cols, false, |r, b| {
                    let blk = &raw[(r * blocks + b) * 34..][..34];
                    let mut u = [0u8; BLOCK];
                    for (u, &q) in u.iter_mut().zip(&blk[2..]) {
                        *u = (q as i8 as i16 + 128) as u8;
                    }
                    let d = half(&blk[0..2]);
                    (d, f32_to_f16(-128.0 * f16_to_f32(d)), u)
                }))
            }
            _ => {
                let values = t
                    .dequantize(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Ok(Self::from_blocks(rows, cols, false, |r, b| {
                    let row = &values[r * cols..(r + 1) * cols];
                    let x = &row[b * BLOCK..((b + 1) * BLOCK).min(cols)];
                    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let d = f32_to_f16(amax / 127.0);
                    let df = f16_to_f32(d);
                    let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
                    let mut u = [128u8; BLOCK];
                    for (u, v) in u.iter_mut().zip(x) {
                        *u = ((v * inv).round().clamp(-127.0, 127.0) as i16 + 128) as u8;
                    }
                    (d, f32_to_f16(-128.0 * df), u)
                }))
            }
        }
    }

    /// Rows stacked: `[a; b; …]` (for one matmul over the same input).
    fn stack(parts: Vec<Self>) -> Self {
        let first = &parts[0];
        let (cols, chunks, nibbles) = (first.cols, first.chunks, first.nibbles);
        assert!(parts.iter().all(|p| p.cols == cols && p.nibbles == nibbles));
        let mut out = Self {
            rows: 0,
            cols,
            chunks,
            nibbles,
            data: Vec::new(),
            d: Vec::new(),
            m: Vec::new(),
        };
        for p in parts {
            out.rows += p.rows;
            out.data.extend_from_slice(&p.data);
            out.d.extend_from_slice(&p.d);
            out.m.extend_from_slice(&p.m);
        }
        out
    }

    /// Row `r` as f32 (the embedding lookup).
    fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let cb = self.chunk_bytes();
        for (i, o) in out.iter_mut().enumerate().take(self.cols) {
            let (b, e) = (i / BLOCK, i % BLOCK);
            let (c, half) = (b / 2, b % 2);
            let s = slot(half, e);
            let bytes = &self.data[(r * self.chunks + c) * cb..][..cb];
            let u = if self.nibbles {
                if s < CHUNK / 2 {
                    bytes[s] & 0x0f
                } else {
                    bytes[s - CHUNK / 2] >> 4
                }
            } else {
                bytes[s]
            };
            let k = r * self.chunks * 2 + b;
            *o = f16_to_f32(self.d[k]) * f32::from(u) + f16_to_f32(self.m[k]);
        }
    }

    fn bytes(&self) -> usize {
        self.data.len() + 2 * (self.d.len() + self.m.len())
    }
}

/// Tokens' activations quantised to 8 bits per block of 32, in the weights' slot order.
#[derive(Default)]
struct QActs {
    tokens: usize,
    chunks: usize,
    /// `tokens × chunks × 64`.
    q: Vec<i8>,
    /// `tokens × chunks × 16`: each lane's block scale (`[dA, dB, …]`).
    scale: Vec<f32>,
    /// `tokens × 2·chunks`: `d · Σq` per block (for the weights' minimums).
    sums: Vec<f32>,
}

impl QActs {
    /// `x` is `tokens × cols`.
    fn quantize(&mut self, isa: ChatIsa, x: &[f32], cols: usize) {
        let tokens = x.len() / cols;
        let chunks = cols.div_ceil(CHUNK);
        self.tokens = tokens;
        self.chunks = chunks;
        self.q.clear();
        self.q.resize(tokens * chunks * CHUNK, 0);
        self.scale.clear();
        self.scale.resize(tokens * chunks * 16, 0.0);
        self.sums.clear();
        self.sums.resize(tokens * chunks * 2, 0.0);
        match isa {
            #[cfg(target_arch = "x86_64")]
            ChatIsa::Avx512(t) if cols.is_multiple_of(CHUNK) => avx512::quantize(t, self, x),
            #[cfg(target_arch = "x86_64")]
            ChatIsa::Avx2(t) if cols.is_multiple_of(CHUNK) => avx2::quantize(t, self, x),
            _ => scalar::quantize(self, x, cols),
        }
    }
}

/// `out[t][r] = Σ_c w[r][c] · x[t][c]` for every token, `out` being `tokens × rows`.
fn matmul(isa: ChatIsa, w: &QMatrix, x: &QActs, out: &mut [f32]) {
    assert_eq!(x.chunks, w.chunks);
    assert_eq!(out.len(), x.tokens * w.rows);
    let rows_per_task = if x.tokens == 1 { 64 } else { 16 };
    let tasks = w.rows.div_ceil(rows_per_task);
    let out = SendPtr(out.as_mut_ptr());
    pool().run(tasks, &|task| {
        let r0 = task * rows_per_task;
        let r1 = (r0 + rows_per_task).min(w.rows);
        // `out` is `tokens × rows` (asserted above) and tasks write disjoint rows of it.
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            ChatIsa::Avx512(t) => unsafe { avx512::matmul_rows(t, w, x, r0, r1, out.get()) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            ChatIsa::Avx2(t) => unsafe { avx2::matmul_rows(t, w, x, r0, r1, out.get()) },
            // SAFETY: as above.
            ChatIsa::Scalar => unsafe { scalar::matmul_rows(w, x, r0, r1, out.get()) },
        }
    });
}

#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: used only to hand disjoint parts of one buffer to the pool's threads.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above: each thread writes only its own part.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

// ---------------------------------------------------------------------------------
/// `x ← silu(x[..n]) · x[n..]` row by row: `gu` is `tokens × 2n` (gate then up),
/// `out` is `tokens × n`.
fn swiglu(isa: ChatIsa, gu: &[f32], n: usize, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx512(t) => avx512::swiglu(t, gu, n, out),
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx2(t) => avx2::swiglu(t, gu, n, out),
        ChatIsa::Scalar => scalar::swiglu(gu, n, out),
    }
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = weight.len();
    for (x, out) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let mean = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
            *o = v * scale * w;
        }
    }
}

// ---------------------------------------------------------------------------------
// Attention

/// One layer's keys and values in f16: keys `[kv_head][cap / 16][dim][16]` (so 16
/// positions'
/// scores are one FMA chain), values `[kv_head][cap][dim]`.
#[derive(Clone, Default)]
struct LayerCache {
    keys: Vec<u16>,
    values: Vec<u16>,
}

/// One work item's share of the softmax over its key range, per query row: the
/// running max, the sum of exponentials, and the unnormalised output.
struct Partial<'a> {
    max: &'a mut [f32],
    sum: &'a mut [f32],
    out: &'a mut [f32],
}

/// Stores `src` (f32) as f16 into `dst`.
fn to_f16(isa: ChatIsa, src: &[f32], dst: &mut [u16]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx512(t) => avx2::to_f16(t.avx2(), src, dst),
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx2(t) => avx2::to_f16(t, src, dst),
        ChatIsa::Scalar => scalar::to_f16(src, dst),
    }
}

/// Query rows `q` (`rows × hd`, already scaled) against positions `lo..hi` of one KV
/// head; row `i` may see positions below `ends[i]` only. `hd` a multiple of 16,
/// `keys` `cap × hd` (blocks of 16 positions, dimension-major), `values` `cap × hd`,
/// `hi ≤ cap`, `cap` a multiple of 16, every `ends[i] > lo` (the kernels assert it).
#[allow(clippy::too_many_arguments)]
fn attend(
    isa: ChatIsa,
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
    match isa {
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx512(t) => {
            avx512::attend(t, q, ends, hd, keys, values, cap, lo, hi, scores, part)
        }
        #[cfg(target_arch = "x86_64")]
        ChatIsa::Avx2(t) => avx2::attend(t, q, ends, hd, keys, values, cap, lo, hi, scores, part),
        ChatIsa::Scalar => scalar::attend(q, ends, hd, keys, values, cap, lo, hi, scores, part),
    }
}

// ---------------------------------------------------------------------------------
// The thread pool

/// Threads to use: `AGENTBASE_LLM_THREADS`, else candle's `CANDLE_NUM_THREADS` /
/// `RAYON_NUM_THREADS`, else the CPUs this process may run on.
fn threads() -> usize {
    [
        "AGENTBASE_LLM_THREADS",
        "CANDLE_NUM_THREADS",
        "RAYON_NUM_THREADS",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    .clamp(1, 64)
}

/// The chat model's pool ([`crate::pool`]): one per process, shared by the chat
/// workers (one job at a time; a worker that finds it busy runs alone).
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(threads() - 1, "llm-pool"))
}

// ---------------------------------------------------------------------------------
// The model

struct Layer {
    /// Queries, keys and values stacked: one matmul.
    qkv: QMatrix,
    wo: QMatrix,
    /// Gate and up stacked.
    gate_up: QMatrix,
    down: QMatrix,
    attention_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
}

struct Weights {
    /// The kernels, chosen at load.
    isa: ChatIsa,
    embeddings: QMatrix,
    /// `None`: tied to the embeddings.
    output: Option<QMatrix>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    hidden: usize,
    ffn: usize,
    eps: f32,
    /// `[MAX_SEQ_LEN][head_dim / 2]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Buffers reused by every forward pass (no allocation per token once warm).
#[derive(Default)]
struct Scratch {
    hidden: Vec<f32>,
    normed: Vec<f32>,
    acts: QActs,
    qkv: Vec<f32>,
    queries: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate_up: Vec<f32>,
    ffn: Vec<f32>,
    part_max: Vec<f32>,
    part_sum: Vec<f32>,
    part_out: Vec<f32>,
    f16: Vec<u16>,
    rotated: Vec<f32>,
}

/// Shared weights and one sequence's KV cache (cloned empty per worker).
pub(crate) struct FastLlama {
    weights: Arc<Weights>,
    cache: Vec<LayerCache>,
    /// Positions the cache has room for.
    cap: usize,
    /// Positions in the cache.
    cached: usize,
    scratch: Scratch,
}

/// A tensor of the file dequantized to a flat `f32` vector (norm weights).
fn dense_vector<R: std::io::Seek + std::io::Read>(
    content: &gguf_file::Content,
    reader: &mut R,
    name: &str,
) -> Result<Vec<f32>> {
    let device = Device::Cpu;
    content
        .tensor(reader, name, &device)?
        .dequantize(&device)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// Block `i`'s weights, with q/k/v and gate/up stacked into one matrix each;
/// `None` when the stacked matrices do not share one block format.
fn load_layer<R: std::io::Seek + std::io::Read>(
    content: &gguf_file::Content,
    reader: &mut R,
    i: usize,
) -> Result<Option<Layer>> {
    let device = Device::Cpu;
    let mut matrix = |name: &str| -> Result<QMatrix> {
        QMatrix::from_qtensor(&content.tensor(
            reader,
            &format!("blk.{i}.{name}.weight"),
            &device,
        )?)
    };
    let (q, k, v) = (matrix("attn_q")?, matrix("attn_k")?, matrix("attn_v")?);
    let wo = matrix("attn_output")?;
    let (gate, up) = (matrix("ffn_gate")?, matrix("ffn_up")?);
    let down = matrix("ffn_down")?;
    let attention_norm = dense_vector(content, reader, &format!("blk.{i}.attn_norm.weight"))?;
    let ffn_norm = dense_vector(content, reader, &format!("blk.{i}.ffn_norm.weight"))?;
    // Stacking needs one block format per input.
    if q.nibbles != k.nibbles || k.nibbles != v.nibbles || gate.nibbles != up.nibbles {
        return Ok(None);
    }
    Ok(Some(Layer {
        qkv: QMatrix::stack(vec![q, k, v]),
        wo,
        gate_up: QMatrix::stack(vec![gate, up]),
        down,
        attention_norm,
        ffn_norm,
    }))
}

impl FastLlama {
    /// `Ok(None)` when the file uses something this pass does not implement (mixture
    /// of experts, partial rotary dimensions, odd head sizes); candle runs those.
    pub(crate) fn from_gguf<R: std::io::Seek + std::io::Read>(
        isa: ChatIsa,
        content: &gguf_file::Content,
        reader: &mut R,
    ) -> Result<Option<Self>> {
        let Some(crate::llama::Hparams {
            n_head,
            n_kv_head,
            blocks,
            embedding: hidden,
            rope_dim,
            eps,
            rope_base,
        }) = crate::llama::Hparams::from_gguf(content)?
        else {
            return Ok(None);
        };
        if n_head == 0
            || n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !hidden.is_multiple_of(n_head)
        {
            return Ok(None);
        }
        let head_dim = hidden / n_head;
        if rope_dim != head_dim || !head_dim.is_multiple_of(16) {
            return Ok(None);
        }
        let device = Device::Cpu;
        let norm = dense_vector(content, reader, "output_norm.weight")?;
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            match load_layer(content, reader, i)? {
                Some(layer) => layers.push(layer),
                None => return Ok(None),
            }
        }
        let ffn = layers.first().map_or(0, |l| l.down.cols);
        let embeddings =
            QMatrix::from_qtensor(&content.tensor(reader, "token_embd.weight", &device)?)?;
        let output = match content.tensor(reader, "output.weight", &device) {
            Ok(t) => Some(QMatrix::from_qtensor(&t)?),
            Err(_) => None,
        };
        let (cos, sin) = rope_tables(head_dim, rope_base);
        let weights = Weights {
            isa,
            embeddings,
            output,
            layers,
            norm,
            n_head,
            n_kv_head,
            head_dim,
            hidden,
            ffn,
            eps,
            cos,
            sin,
        };
        tracing::debug!(
            weight_bytes = weights.bytes(),
            kernels = %isa.level(),
            "fast llama forward pass loaded"
        );
        Ok(Some(Self::with_weights(Arc::new(weights))))
    }

    fn with_weights(weights: Arc<Weights>) -> Self {
        Self {
            cache: (0..weights.layers.len())
                .map(|_| LayerCache::default())
                .collect(),
            weights,
            cap: 0,
            cached: 0,
            scratch: Scratch::default(),
        }
    }

    /// The kernels this pass runs.
    pub(crate) fn kernels(&self) -> crate::cpu::Level {
        self.weights.isa.level()
    }

    /// A copy sharing the weights with an empty cache.
    pub(crate) fn for_another_worker(&self) -> Self {
        Self::with_weights(Arc::clone(&self.weights))
    }

    pub(crate) fn clear_kv_cache(&mut self) {
        self.cached = 0;
    }

    /// Makes room for `positions` in every layer's cache (keeping what is there).
    fn reserve(&mut self, positions: usize) {
        if positions <= self.cap {
            return;
        }
        let w = &self.weights;
        let (g, hd) = (w.n_kv_head, w.head_dim);
        let cap = positions
            .max(2 * self.cap)
            .max(256)
            .next_multiple_of(16)
            .min(MAX_SEQ_LEN.next_multiple_of(16));
        let (old_cap, len) = (self.cap, self.cached);
        for layer in &mut self.cache {
            let mut keys = vec![0u16; g * hd * cap];
            let mut values = vec![0u16; g * cap * hd];
            for kv in 0..g {
                // Whole blocks of 16 positions are contiguous.
                let used = len.next_multiple_of(16) * hd;
                let (from, to) = (kv * old_cap * hd, kv * cap * hd);
                keys[to..to + used].copy_from_slice(&layer.keys[from..from + used]);
                let from = kv * old_cap * hd;
                let to = kv * cap * hd;
                values[to..to + len * hd].copy_from_slice(&layer.values[from..from + len * hd]);
            }
            layer.keys = keys;
            layer.values = values;
        }
        self.cap = cap;
    }

    /// Logits for the last of `tokens`, which sit at positions `index_pos..`;
    /// `index_pos` 0 starts a new sequence, anything else must continue the cached one.
    pub(crate) fn forward(&mut self, tokens: &[u32], index_pos: usize) -> Result<Vec<f32>> {
        if index_pos == 0 {
            self.clear_kv_cache();
        }
        if index_pos != self.cached {
            candle_core::bail!(
                "position {index_pos} does not follow the {} cached",
                self.cached
            );
        }
        let seq = tokens.len();
        if seq == 0 {
            candle_core::bail!("no tokens to run");
        }
        if index_pos + seq > MAX_SEQ_LEN {
            candle_core::bail!("positions past {MAX_SEQ_LEN} are not supported");
        }
        let vocab = self.weights.embeddings.rows;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("token {bad} is outside the vocabulary of {vocab}");
        }
        self.reserve(index_pos + seq);
        let weights = Arc::clone(&self.weights);
        let w = &*weights;
        let d = w.hidden;
        let s = &mut self.scratch;
        s.hidden.resize(seq * d, 0.0);
        for (t, &token) in tokens.iter().enumerate() {
            w.embeddings
                .dequantize_row(token as usize, &mut s.hidden[t * d..(t + 1) * d]);
        }
        s.normed.resize(seq * d, 0.0);
        for (layer, cache) in w.layers.iter().zip(&mut self.cache) {
            rms_norm(&s.hidden, &layer.attention_norm, w.eps, &mut s.normed);
            s.acts.quantize(w.isa, &s.normed, d);
            s.qkv.resize(seq * layer.qkv.rows, 0.0);
            matmul(w.isa, &layer.qkv, &s.acts, &mut s.qkv);
            w.store_qkv(s, cache, self.cap, index_pos, seq);
            w.attention(s, cache, self.cap, index_pos, seq);
            s.acts.quantize(w.isa, &s.attended, d);
            s.projected.resize(seq * d, 0.0);
            matmul(w.isa, &layer.wo, &s.acts, &mut s.projected);
            for (h, p) in s.hidden.iter_mut().zip(&s.projected) {
                *h += p;
            }
            rms_norm(&s.hidden, &layer.ffn_norm, w.eps, &mut s.normed);
            s.acts.quantize(w.isa, &s.normed, d);
            s.gate_up.resize(seq * layer.gate_up.rows, 0.0);
            matmul(w.isa, &layer.gate_up, &s.acts, &mut s.gate_up);
            s.ffn.resize(seq * w.ffn, 0.0);
            swiglu(w.isa, &s.gate_up, w.ffn, &mut s.ffn);
            s.acts.quantize(w.isa, &s.ffn, w.ffn);
            matmul(w.isa, &layer.down, &s.acts, &mut s.projected);
            for (h, p) in s.hidden.iter_mut().zip(&s.projected) {
                *h += p;
            }
        }
        self.cached += seq;
        let last = &s.hidden[(seq - 1) * d..];
        rms_norm(last, &w.norm, w.eps, &mut s.normed[..d]);
        s.acts.quantize(w.isa, &s.normed[..d], d);
        let output = w.output.as_ref().unwrap_or(&w.embeddings);
        let mut logits = vec![0f32; output.rows];
        matmul(w.isa, output, &s.acts, &mut logits);
        Ok(logits)
    }
}

impl Weights {
    fn bytes(&self) -> usize {
        self.embeddings.bytes()
            + self.output.as_ref().map_or(0, QMatrix::bytes)
            + self
                .layers
                .iter()
                .map(|l| l.qkv.bytes() + l.wo.bytes() + l.gate_up.bytes() + l.down.bytes())
                .sum::<usize>()
    }

    /// RoPE on the new queries (into `s.queries`, scaled by 1/√hd) and keys; keys and
    /// values into the cache.
    fn store_qkv(
        &self,
        s: &mut Scratch,
        cache: &mut LayerCache,
        cap: usize,
        index_pos: usize,
        seq: usize,
    ) {
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let width = (nh + 2 * nkv) * hd;
        let half = hd / 2;
        let scale = 1.0 / (hd as f32).sqrt();
        s.queries.resize(seq * nh * hd, 0.0);
        s.f16.resize(hd, 0);
        s.rotated.resize(hd, 0.0);
        for t in 0..seq {
            let pos = index_pos + t;
            let cos = &self.cos[pos * half..(pos + 1) * half];
            let sin = &self.sin[pos * half..(pos + 1) * half];
            let row = &s.qkv[t * width..(t + 1) * width];
            let rope = |x: &[f32], out: &mut [f32], scale: f32| {
                for i in 0..half {
                    let (a, b) = (x[2 * i], x[2 * i + 1]);
                    out[2 * i] = (a * cos[i] - b * sin[i]) * scale;
                    out[2 * i + 1] = (a * sin[i] + b * cos[i]) * scale;
                }
            };
            for h in 0..nh {
                let out = &mut s.queries[(t * nh + h) * hd..][..hd];
                rope(&row[h * hd..(h + 1) * hd], out, scale);
            }
            for g in 0..nkv {
                let k = &row[(nh + g) * hd..][..hd];
                rope(k, &mut s.rotated, 1.0);
                to_f16(self.isa, &s.rotated, &mut s.f16);
                for (dim, &v) in s.f16.iter().enumerate() {
                    cache.keys[g * cap * hd + (pos / 16) * hd * 16 + dim * 16 + pos % 16] = v;
                }
                let v = &row[(nh + nkv + g) * hd..][..hd];
                to_f16(self.isa, v, &mut cache.values[(g * cap + pos) * hd..][..hd]);
            }
        }
    }

    /// Attention of the `seq` new queries over the cache, into `s.attended`
    /// (`seq × hidden`, heads side by side).
    fn attention(
        &self,
        s: &mut Scratch,
        cache: &LayerCache,
        cap: usize,
        index_pos: usize,
        seq: usize,
    ) {
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let plan = AttnPlan::new(nh / nkv, index_pos, seq);
        let AttnPlan {
            rep,
            total,
            tile,
            tiles,
            segments,
            seg_len,
            rows_per_item,
        } = plan;
        let items = nkv * tiles * segments;
        s.part_max.resize(items * rows_per_item, 0.0);
        s.part_sum.resize(items * rows_per_item, 0.0);
        s.part_out.resize(items * rows_per_item * hd, 0.0);
        let (pmax, psum, pout) = (
            SendPtr(s.part_max.as_mut_ptr()),
            SendPtr(s.part_sum.as_mut_ptr()),
            SendPtr(s.part_out.as_mut_ptr()),
        );
        let queries = &s.queries;
        let isa = self.isa;
        pool().run(items, &|item| {
            let seg = item % segments;
            let t_tile = (item / segments) % tiles;
            let g = item / (segments * tiles);
            let t0 = t_tile * tile;
            let t1 = (t0 + tile).min(seq);
            let lo = seg * seg_len;
            let hi = ((seg + 1) * seg_len).min(total);
            let rows = (t1 - t0) * rep;
            ATTN_SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let (q, ends, scores) = &mut *scratch;
                q.clear();
                ends.clear();
                for t in t0..t1 {
                    for h in g * rep..(g + 1) * rep {
                        q.extend_from_slice(&queries[(t * nh + h) * hd..][..hd]);
                        ends.push(index_pos + t + 1);
                    }
                }
                if lo >= hi || ends.iter().all(|&e| e <= lo) {
                    // SAFETY: this item's rows of the partial buffers are its own.
                    unsafe {
                        for r in 0..rows {
                            *pmax.get().add(item * rows_per_item + r) = f32::NEG_INFINITY;
                            *psum.get().add(item * rows_per_item + r) = 0.0;
                        }
                    }
                    return;
                }
                // SAFETY: this item's rows of the partial buffers are its own, and
                // their sizes were set above; the cache holds `cap` positions.
                unsafe {
                    let base = item * rows_per_item;
                    let part = Partial {
                        max: std::slice::from_raw_parts_mut(pmax.get().add(base), rows),
                        sum: std::slice::from_raw_parts_mut(psum.get().add(base), rows),
                        out: std::slice::from_raw_parts_mut(pout.get().add(base * hd), rows * hd),
                    };
                    attend(
                        isa,
                        q,
                        ends,
                        hd,
                        &cache.keys[g * hd * cap..(g + 1) * hd * cap],
                        &cache.values[g * cap * hd..(g + 1) * cap * hd],
                        cap,
                        lo,
                        hi,
                        scores,
                        part,
                    );
                }
            });
        });
        self.combine_segments(s, plan, seq);
    }

    /// Merges each query row's softmax pieces, one per key segment, into
    /// `s.attended`.
    fn combine_segments(&self, s: &mut Scratch, plan: AttnPlan, seq: usize) {
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let AttnPlan {
            rep,
            tile,
            tiles,
            segments,
            rows_per_item,
            ..
        } = plan;
        s.attended.resize(seq * nh * hd, 0.0);
        for g in 0..nkv {
            for t_tile in 0..tiles {
                let t0 = t_tile * tile;
                let t1 = (t0 + tile).min(seq);
                for (r, (t, h)) in (t0..t1)
                    .flat_map(|t| (g * rep..(g + 1) * rep).map(move |h| (t, h)))
                    .enumerate()
                {
                    let item0 = (g * tiles + t_tile) * segments;
                    let at = |seg: usize| (item0 + seg) * rows_per_item + r;
                    let max = (0..segments)
                        .map(|seg| s.part_max[at(seg)])
                        .fold(f32::NEG_INFINITY, f32::max);
                    let out = &mut s.attended[(t * nh + h) * hd..][..hd];
                    out.fill(0.0);
                    let mut sum = 0.0;
                    for seg in 0..segments {
                        let m = s.part_max[at(seg)];
                        if m == f32::NEG_INFINITY {
                            continue;
                        }
                        let f = (m - max).exp();
                        sum += f * s.part_sum[at(seg)];
                        for (o, p) in out.iter_mut().zip(&s.part_out[at(seg) * hd..][..hd]) {
                            *o += f * p;
                        }
                    }
                    let inv = 1.0 / sum;
                    for o in out.iter_mut() {
                        *o *= inv;
                    }
                }
            }
        }
    }
}

/// How one attention call is cut into work items: (KV head, tile of tokens, segment
/// of keys). Prefill takes tiles of `ATTN_TOKENS` queries over all keys; a decoded
/// token splits the keys into up to 8 segments so both threads work on it.
#[derive(Clone, Copy)]
struct AttnPlan {
    /// Query heads per KV head.
    rep: usize,
    /// Positions attended to: the cache so far plus the new tokens.
    total: usize,
    tile: usize,
    tiles: usize,
    segments: usize,
    seg_len: usize,
    rows_per_item: usize,
}

impl AttnPlan {
    fn new(rep: usize, index_pos: usize, seq: usize) -> Self {
        let total = index_pos + seq;
        let tile = if seq == 1 { 1 } else { ATTN_TOKENS };
        let segments = if seq == 1 {
            (total / 256).clamp(1, 8)
        } else {
            1
        };
        Self {
            rep,
            total,
            tile,
            tiles: seq.div_ceil(tile),
            segments,
            seg_len: total.div_ceil(segments).next_multiple_of(16),
            rows_per_item: rep * tile,
        }
    }
}

type AttnScratch = (Vec<f32>, Vec<usize>, Vec<f32>);

thread_local! {
    static ATTN_SCRATCH: RefCell<AttnScratch> = RefCell::default();
}

/// RoPE cos/sin for every position, `[MAX_SEQ_LEN][dim / 2]`, as candle computes them.
fn rope_tables(dim: usize, base: f32) -> (Vec<f32>, Vec<f32>) {
    let theta: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(MAX_SEQ_LEN * theta.len());
    let mut sin = Vec::with_capacity(MAX_SEQ_LEN * theta.len());
    for pos in 0..MAX_SEQ_LEN {
        for &t in &theta {
            let angle = pos as f32 * t;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Level;

    /// Every kernel set this CPU can run.
    fn isas() -> Vec<ChatIsa> {
        Level::ALL.into_iter().filter_map(ChatIsa::at).collect()
    }

    fn value(i: usize) -> f32 {
        ((i * 37 % 101) as f32 - 50.0) / 25.0
    }

    /// `w · x` in f64 from the packed weights and the quantised activations.
    fn reference(w: &QMatrix, x: &[f32], cols: usize) -> Vec<f64> {
        let mut acts = QActs::default();
        acts.quantize(ChatIsa::Scalar, x, cols);
        let tokens = x.len() / cols;
        let mut deq = vec![0f32; cols];
        let mut out = vec![0f64; tokens * w.rows];
        for r in 0..w.rows {
            w.dequantize_row(r, &mut deq);
            for t in 0..tokens {
                let mut sum = 0f64;
                for (i, wv) in deq.iter().enumerate() {
                    let (b, e) = (i / BLOCK, i % BLOCK);
                    let (c, half) = (b / 2, b % 2);
                    let q = acts.q[(t * acts.chunks + c) * CHUNK + slot(half, e)];
                    let d = acts.scale[(t * acts.chunks + c) * 16 + half];
                    sum += f64::from(*wv) * f64::from(q) * f64::from(d);
                }
                out[t * w.rows + r] = sum;
            }
        }
        out
    }

    #[test]
    fn matmul_matches_the_dequantised_product_for_both_block_formats() {
        // 7 tokens and 9 rows exercise every tile shape; 160 columns an odd block
        // count (and scalar quantisation), 256 the vector one.
        for isa in isas() {
            for cols in [160, 256] {
                check_matmul(isa, cols);
            }
        }
    }

    fn check_matmul(isa: ChatIsa, cols: usize) {
        let (rows, tokens) = (9, 7);
        let x: Vec<f32> = (0..tokens * cols).map(|i| value(i + 5)).collect();
        let nib = QMatrix::from_blocks(rows, cols, true, |r, b| {
            let mut u = [0u8; BLOCK];
            for (e, u) in u.iter_mut().enumerate() {
                *u = ((r * 7 + b * 3 + e * 5) % 16) as u8;
            }
            (
                f32_to_f16(0.01 * (1 + r) as f32),
                f32_to_f16(-0.05 * b as f32),
                u,
            )
        });
        let bytes = QMatrix::from_blocks(rows, cols, false, |r, b| {
            let mut u = [0u8; BLOCK];
            for (e, u) in u.iter_mut().enumerate() {
                *u = ((r * 71 + b * 13 + e * 29) % 256) as u8;
            }
            let d = f32_to_f16(0.001 * (1 + b) as f32);
            (d, f32_to_f16(-128.0 * f16_to_f32(d)), u)
        });
        for w in [&nib, &bytes] {
            let want = reference(w, &x, cols);
            let mut acts = QActs::default();
            acts.quantize(isa, &x, cols);
            let mut got = vec![0f32; tokens * rows];
            matmul(isa, w, &acts, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-4 * w.abs().max(1.0),
                    "{:?} nibbles {}: output {i}: {g} vs {w}",
                    isa.level(),
                    nib.nibbles
                );
            }
        }
    }

    #[test]
    fn vector_and_scalar_quantisation_agree() {
        let (tokens, cols) = (3, 192);
        let x: Vec<f32> = (0..tokens * cols)
            .map(|i| value(i) * (1.0 + (i % 7) as f32 * 0.13))
            .collect();
        let mut slow = QActs::default();
        slow.quantize(ChatIsa::Scalar, &x, cols);
        for isa in isas() {
            let mut fast = QActs::default();
            fast.quantize(isa, &x, cols);
            assert_eq!(fast.q, slow.q, "{:?}", isa.level());
            assert_eq!(fast.scale, slow.scale);
            for (a, b) in fast.sums.iter().zip(&slow.sums) {
                assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let xs: Vec<f32> = (0..1600).map(|i| -80.0 + i as f32 * 0.05).collect();
        let check = |chunk: &[f32], out: &[f32]| {
            for (x, got) in chunk.iter().zip(out) {
                let want = x.exp();
                assert!(
                    (got - want).abs() <= 5e-7 * want,
                    "exp({x}) = {got}, not {want}"
                );
            }
        };
        for isa in isas() {
            match isa {
                #[cfg(target_arch = "x86_64")]
                ChatIsa::Avx512(t) => {
                    for chunk in xs.chunks_exact(16) {
                        check(chunk, &avx512::exp(t, chunk.try_into().unwrap()));
                    }
                }
                #[cfg(target_arch = "x86_64")]
                ChatIsa::Avx2(t) => {
                    for chunk in xs.chunks_exact(8) {
                        check(chunk, &avx2::exp(t, chunk.try_into().unwrap()));
                    }
                }
                ChatIsa::Scalar => {}
            }
        }
    }

    #[test]
    fn attention_matches_a_plain_softmax_across_key_segments() {
        for isa in isas() {
            check_attention(isa);
        }
    }

    fn check_attention(isa: ChatIsa) {
        let (rows, hd, positions, cap) = (5, 32, 70, 80);
        let q: Vec<f32> = (0..rows * hd).map(|i| value(i) * 0.3).collect();
        let keys: Vec<f32> = (0..positions * hd).map(|i| value(i + 3)).collect();
        let values: Vec<f32> = (0..positions * hd).map(|i| value(i + 11)).collect();
        // f16 storage, as the cache has it; the reference reads the same values back.
        let keys: Vec<u16> = keys.iter().map(|&v| f32_to_f16(v)).collect();
        let values: Vec<u16> = values.iter().map(|&v| f32_to_f16(v)).collect();
        let mut kt = vec![0u16; hd * cap];
        let mut vc = vec![0u16; cap * hd];
        for j in 0..positions {
            for d in 0..hd {
                kt[(j / 16) * hd * 16 + d * 16 + j % 16] = keys[j * hd + d];
                vc[j * hd + d] = values[j * hd + d];
            }
        }
        let ends: Vec<usize> = (0..rows).map(|r| positions - 2 * r).collect();
        let mut combined = vec![vec![0f64; hd]; rows];
        let (mut maxes, mut sums, mut outs) = (Vec::new(), Vec::new(), Vec::new());
        for (lo, hi) in [(0, 32), (32, positions)] {
            let (mut max, mut sum, mut out) =
                (vec![0f32; rows], vec![0f32; rows], vec![0f32; rows * hd]);
            let mut scores = Vec::new();
            let part = Partial {
                max: &mut max,
                sum: &mut sum,
                out: &mut out,
            };
            attend(isa, &q, &ends, hd, &kt, &vc, cap, lo, hi, &mut scores, part);
            maxes.push(max);
            sums.push(sum);
            outs.push(out);
        }
        for r in 0..rows {
            let m = maxes[0][r].max(maxes[1][r]);
            let total: f64 = (0..2)
                .map(|s| f64::from(sums[s][r]) * f64::from(maxes[s][r] - m).exp())
                .sum();
            for d in 0..hd {
                combined[r][d] = (0..2)
                    .map(|s| f64::from(outs[s][r * hd + d]) * f64::from(maxes[s][r] - m).exp())
                    .sum::<f64>()
                    / total;
            }
        }
        for r in 0..rows {
            let scores: Vec<f64> = (0..ends[r])
                .map(|j| {
                    (0..hd)
                        .map(|d| f64::from(q[r * hd + d]) * f64::from(f16_to_f32(keys[j * hd + d])))
                        .sum()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::MIN, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for d in 0..hd {
                let want: f64 = (0..ends[r])
                    .map(|j| {
                        (scores[j] - max).exp() / total * f64::from(f16_to_f32(values[j * hd + d]))
                    })
                    .sum();
                let got = combined[r][d];
                assert!(
                    (got - want).abs() < 1e-5,
                    "{:?} row {r} dim {d}: {got} vs {want}",
                    isa.level()
                );
            }
        }
    }

    #[test]
    fn f16_conversions_round_trip_and_every_kernel_set_rounds_alike() {
        let xs = [
            0.0f32,
            -0.0,
            1.0,
            -2.5,
            65504.0,
            6.1e-5,
            3.0e-6,
            -1.0e-7,
            1.000_488_3,
            1.001_464_8,
            -7.0e-5,
            2.980_232_2e-8,
            70000.0,
            0.1,
        ];
        for x in xs {
            let h = f32_to_f16(x);
            let back = f16_to_f32(h);
            if x.abs() < 65504.0 {
                assert!(
                    (back - x).abs() <= x.abs() * 1e-3 + 6e-8,
                    "{x} → {h:#x} → {back}"
                );
            }
            assert_eq!(f32_to_f16(back), h);
        }
        // Ties and subnormals: the software conversion matches F16C bit for bit.
        // Magnitudes from 2⁻³¹ (below f16's subnormals) to 7e4 (past its largest), both
        // signs, at odd steps so ties turn up.
        let many: Vec<f32> = (0..40_000u32)
            .map(|i| {
                f32::from_bits(0x3000_0000 + (i / 2) * 0x4d3b) * if i % 2 == 0 { 1.0 } else { -1.0 }
            })
            .chain(xs)
            .collect();
        let mut want = vec![0u16; many.len()];
        to_f16(ChatIsa::Scalar, &many, &mut want);
        for isa in isas() {
            let mut got = vec![0u16; many.len()];
            to_f16(isa, &many, &mut got);
            for ((g, w), x) in got.iter().zip(&want).zip(&many) {
                assert_eq!(g, w, "{:?}: {x}", isa.level());
            }
        }
    }

    #[test]
    fn logits_match_candles_llama_through_prefill_chunks_and_decoding_on_every_kernel_set() {
        use candle_core::Tensor;
        use candle_transformers::models::quantized_llama::ModelWeights;
        let path = crate::llama::tests::gguf();
        let read = || {
            let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let content = gguf_file::Content::read(&mut reader).unwrap();
            (content, reader)
        };
        let device = Device::Cpu;
        let (content, mut reader) = read();
        let mut theirs = ModelWeights::from_gguf(content, &mut reader, &device).unwrap();

        // candle's logits once: two sequences, so the second starts from a cleared
        // cache; a chunk longer than the first cache reservation makes it grow. Each
        // step is (tokens, position, logits); decoding follows candle's choices.
        let mut steps: Vec<(Vec<u32>, usize, Vec<f32>)> = Vec::new();
        for (offset, chunk_len) in [(13u32, 64), (5, 300)] {
            let prompt: Vec<u32> = (0..350u32).map(|i| (i * 97 + offset) % 49_000).collect();
            let mut pos = 0;
            let mut logits = Vec::new();
            let mut run = |tokens: &[u32], pos: usize| -> Vec<f32> {
                let input = Tensor::new(tokens, &device).unwrap().unsqueeze(0).unwrap();
                let out = theirs.forward(&input, pos).unwrap();
                let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                steps.push((tokens.to_vec(), pos, out.clone()));
                out
            };
            for chunk in prompt.chunks(chunk_len) {
                logits = run(chunk, pos);
                pos += chunk.len();
            }
            for _ in 0..8 {
                let next = crate::logits::argmax(&logits) as u32;
                logits = run(&[next], pos);
                pos += 1;
            }
        }

        for isa in isas() {
            let (content, mut reader) = read();
            let mut ours = FastLlama::from_gguf(isa, &content, &mut reader)
                .unwrap()
                .expect("SmolLM2 runs on our forward pass");
            for (tokens, pos, theirs) in &steps {
                let step = format!("{:?} at {pos} ({} tokens)", isa.level(), tokens.len());
                let logits = ours.forward(tokens, *pos).unwrap();
                // Both quantise activations to 8 bits per block before each matmul,
                // but not always identically (candle's f32 attention and exact exp
                // against our f16 KV cache and polynomial exp): a value near a rounding
                // boundary can round the other way, so logits agree to that
                // quantisation's noise, not to float noise.
                let scale = crate::logits::agree(&logits, theirs, &step, 0.05);
                let (mine, best) = (
                    crate::logits::argmax(&logits),
                    crate::logits::argmax(theirs),
                );
                // The same next token, unless candle's top two are closer than the noise.
                assert!(
                    mine == best || theirs[best] - theirs[mine] < 0.01 * scale,
                    "{step}: token {mine} instead of {best} ({} vs {})",
                    theirs[mine],
                    theirs[best]
                );
            }

            // A position that does not continue the cache is an error, not garbage.
            assert!(ours.forward(&[1], 3).is_err());
            assert!(ours.forward(&[60_000], 0).is_err());
            // Another worker's copy starts empty and gives the same answer.
            let mut other = ours.for_another_worker();
            let a = ours.forward(&[1, 2, 3], 0).unwrap();
            let b = other.forward(&[1, 2, 3], 0).unwrap();
            assert_eq!(a, b);
        }
    }
}
