//! The llama architecture for GGUF files: candle_transformers' `quantized_llama`
//! forward pass (same tensors, RMS norms, interleaved RoPE, SwiGLU), with a KV cache
//! of our own.
//!
//! Why: candle's model keeps each layer's cache as a tensor and `Tensor::cat`s every
//! new token onto it, then `repeat_kv` copies it again per query head, so one decoded
//! token moves the whole cache several times over and decode slows as the context
//! grows (at ~1,700 tokens of SmolLM2, ~300 MB per token). Here each layer's keys and
//! values live in a growable `[position][kv_head][head_dim]` buffer that new positions
//! are appended to; decoding one token reads it once in plain loops (grouped-query
//! heads share their KV head, nothing is copied). Prefill chunks still use candle's
//! matmuls (one copy of the cache per 256-token chunk, not per token).
//!
//! Mixture-of-experts llama files are left to candle's model.

use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;

/// Positions the RoPE table covers, as candle's `quantized_llama::MAX_SEQ_LEN`.
pub(crate) const MAX_SEQ_LEN: usize = candle_transformers::models::quantized_llama::MAX_SEQ_LEN;

#[derive(Clone)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    gate: QMatMul,
    down: QMatMul,
    up: QMatMul,
    attention_norm: RmsNorm,
    ffn_norm: RmsNorm,
}

/// One layer's cached keys and values, `[position][kv_head][head_dim]`.
#[derive(Clone, Default)]
struct LayerCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// Weights (shared between clones: candle's quantized tensors are reference-counted)
/// and one sequence's KV cache (cloned empty per worker).
#[derive(Clone)]
pub(crate) struct Llama {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
    cache: Vec<LayerCache>,
    /// Positions in the cache.
    cached: usize,
}

/// A llama GGUF's shape, from its metadata.
pub(crate) struct Hparams {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub blocks: usize,
    /// The model width.
    pub embedding: usize,
    pub rope_dim: usize,
    pub eps: f32,
    pub rope_base: f32,
}

impl Hparams {
    /// `Ok(None)` for a mixture-of-experts file (candle's model runs those).
    pub(crate) fn from_gguf(content: &gguf_file::Content) -> Result<Option<Self>> {
        let meta = |key: &str| match content.metadata.get(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("cannot find {key} in metadata"),
        };
        if meta("llama.expert_count")
            .and_then(|v| v.to_u32())
            .unwrap_or(0)
            > 1
        {
            return Ok(None);
        }
        Ok(Some(Self {
            n_head: meta("llama.attention.head_count")?.to_u32()? as usize,
            n_kv_head: meta("llama.attention.head_count_kv")?.to_u32()? as usize,
            blocks: meta("llama.block_count")?.to_u32()? as usize,
            embedding: meta("llama.embedding_length")?.to_u32()? as usize,
            rope_dim: meta("llama.rope.dimension_count")?.to_u32()? as usize,
            eps: meta("llama.attention.layer_norm_rms_epsilon")?.to_f32()?,
            rope_base: meta("llama.rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
        }))
    }
}

impl Llama {
    /// `Ok(None)` for a mixture-of-experts file (candle's model runs those).
    pub(crate) fn from_gguf<R: std::io::Seek + std::io::Read>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Option<Self>> {
        let Some(Hparams {
            n_head,
            n_kv_head,
            blocks,
            embedding,
            rope_dim,
            eps,
            rope_base,
        }) = Hparams::from_gguf(content)?
        else {
            return Ok(None);
        };
        if n_head == 0
            || n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !embedding.is_multiple_of(n_head)
        {
            candle_core::bail!(
                "unsupported head counts {n_head}/{n_kv_head} for width {embedding}"
            );
        }
        let eps = f64::from(eps);

        let (cos, sin) = rope_tables(rope_dim, rope_base, device)?;
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let embeddings_q = tensor("token_embd.weight")?;
        let embeddings = Embedding::new(embeddings_q.dequantize(device)?, embedding);
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let output = match tensor("output.weight") {
            Ok(t) => t,
            Err(_) => embeddings_q,
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut matmul =
                |name: &str| QMatMul::from_qtensor(tensor(&format!("blk.{i}.{name}.weight"))?);
            layers.push(Layer {
                wq: matmul("attn_q")?,
                wk: matmul("attn_k")?,
                wv: matmul("attn_v")?,
                wo: matmul("attn_output")?,
                gate: matmul("ffn_gate")?,
                down: matmul("ffn_down")?,
                up: matmul("ffn_up")?,
                attention_norm: RmsNorm::from_qtensor(
                    tensor(&format!("blk.{i}.attn_norm.weight"))?,
                    eps,
                )?,
                ffn_norm: RmsNorm::from_qtensor(tensor(&format!("blk.{i}.ffn_norm.weight"))?, eps)?,
            });
        }
        Ok(Some(Self {
            embeddings,
            cache: vec![LayerCache::default(); layers.len()],
            layers,
            norm,
            output: QMatMul::from_qtensor(output)?,
            n_head,
            n_kv_head,
            head_dim: embedding / n_head,
            cos,
            sin,
            cached: 0,
        }))
    }

    /// A copy sharing the weights with an empty cache.
    pub(crate) fn for_another_worker(&self) -> Self {
        let mut copy = self.clone();
        copy.clear_kv_cache();
        copy
    }

    pub(crate) fn clear_kv_cache(&mut self) {
        for layer in &mut self.cache {
            layer.keys.clear();
            layer.values.clear();
        }
        self.cached = 0;
    }

    /// Logits for the last of `input`'s tokens (`[1, seq]`), which sit at positions
    /// `index_pos..`; `index_pos` 0 starts a new sequence, anything else must continue
    /// the cached one.
    pub(crate) fn forward(&mut self, input: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_, seq_len) = input.dims2()?;
        if index_pos == 0 {
            self.clear_kv_cache();
        }
        if index_pos != self.cached {
            candle_core::bail!(
                "position {index_pos} does not follow the {} cached",
                self.cached
            );
        }
        if index_pos + seq_len > MAX_SEQ_LEN {
            candle_core::bail!("positions past {MAX_SEQ_LEN} are not supported");
        }
        let mut hidden = self.embeddings.forward(input)?;
        for i in 0..self.layers.len() {
            let layer = &self.layers[i];
            let x = layer.attention_norm.forward(&hidden)?;
            let attended = self.attention(i, &x, index_pos)?;
            let layer = &self.layers[i];
            let x = (attended + &hidden)?;
            let normed = layer.ffn_norm.forward(&x)?;
            let gate = candle_nn::ops::silu(&layer.gate.forward(&normed)?)?;
            let mlp = layer.down.forward(&(gate * layer.up.forward(&normed)?)?)?;
            hidden = (mlp + x)?;
        }
        self.cached += seq_len;
        let last = self
            .norm
            .forward(&hidden)?
            .narrow(1, seq_len - 1, 1)?
            .squeeze(1)?;
        self.output.forward(&last)
    }

    fn rope(&self, x: &Tensor, index_pos: usize, seq_len: usize) -> Result<Tensor> {
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
    }

    fn attention(&mut self, layer_index: usize, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_, seq_len, width) = x.dims3()?;
        let (n_head, n_kv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let layer = &self.layers[layer_index];
        let heads = |t: Tensor, n: usize| t.reshape((1, seq_len, n, hd))?.transpose(1, 2);
        let q = self.rope(&heads(layer.wq.forward(x)?, n_head)?, index_pos, seq_len)?;
        let k = self.rope(&heads(layer.wk.forward(x)?, n_kv)?, index_pos, seq_len)?;
        let v = layer.wv.forward(x)?; // [1, seq, n_kv·hd]: already position-major.

        // Append to the cache, position-major.
        let cache = &mut self.cache[layer_index];
        let k_rows = k.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()?;
        cache.keys.extend_from_slice(&k_rows);
        cache
            .values
            .extend_from_slice(&v.flatten_all()?.to_vec1::<f32>()?);
        let kv_len = index_pos + seq_len;
        let scale = 1.0 / (hd as f32).sqrt();

        let y = if seq_len == 1 {
            let q = q.flatten_all()?.to_vec1::<f32>()?;
            let out = decode_attention(&q, &cache.keys, &cache.values, n_head, n_kv, hd, scale);
            Tensor::from_vec(out, (1, 1, width), x.device())?
        } else {
            let device = x.device();
            let cached = |data: &[f32]| -> Result<Tensor> {
                let t =
                    Tensor::from_slice(&data[..kv_len * n_kv * hd], (kv_len, n_kv, hd), device)?
                        .transpose(0, 1)?
                        .contiguous()?;
                // Grouped-query heads: each KV head serves n_head / n_kv query heads.
                let rep = n_head / n_kv;
                if rep == 1 {
                    t.unsqueeze(0)
                } else {
                    Tensor::cat(&vec![&t; rep], 1)?.reshape((1, n_head, kv_len, hd))
                }
            };
            let keys = cached(&cache.keys)?;
            let values = cached(&cache.values)?;
            let scores = (q.matmul(&keys.t()?)? * f64::from(scale))?;
            let mask: Vec<u8> = (0..seq_len)
                .flat_map(|i| (0..kv_len).map(move |j| u8::from(j > index_pos + i)))
                .collect();
            let mask = Tensor::from_slice(&mask, (seq_len, kv_len), device)?
                .broadcast_as(scores.shape())?;
            let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?.broadcast_as(scores.shape())?;
            let scores = mask.where_cond(&neg_inf, &scores)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            probs
                .matmul(&values)?
                .transpose(1, 2)?
                .reshape((1, seq_len, width))?
        };
        self.layers[layer_index].wo.forward(&y)
    }
}

/// One query position against every cached one: `q` is `[n_head][hd]`, the cache
/// `[position][n_kv][hd]`; returns `[n_head][hd]`.
fn decode_attention(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_head: usize,
    n_kv: usize,
    hd: usize,
    scale: f32,
) -> Vec<f32> {
    let positions = keys.len() / (n_kv * hd);
    let rep = n_head / n_kv;
    let mut out = vec![0f32; n_head * hd];
    let mut scores = vec![0f32; positions];
    for head in 0..n_head {
        let kv = head / rep;
        let q = &q[head * hd..(head + 1) * hd];
        for (j, score) in scores.iter_mut().enumerate() {
            let k = &keys[(j * n_kv + kv) * hd..][..hd];
            *score = dot(q, k) * scale;
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let out = &mut out[head * hd..(head + 1) * hd];
        for (j, &p) in scores.iter().enumerate() {
            let v = &values[(j * n_kv + kv) * hd..][..hd];
            let p = p / sum;
            for (o, v) in out.iter_mut().zip(v) {
                *o += p * v;
            }
        }
    }
    out
}

/// A dot product in 16 lanes, so it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// RoPE cos/sin for every position, `[MAX_SEQ_LEN, dim / 2]`, as candle computes them.
fn rope_tables(dim: usize, base: f32, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let angles = Tensor::arange(0, MAX_SEQ_LEN as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_SEQ_LEN, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn decode_attention_matches_a_plain_softmax_over_the_shared_kv_heads() {
        let (n_head, n_kv, hd, positions) = (4, 2, 20, 7);
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 25.0;
        let q: Vec<f32> = (0..n_head * hd).map(value).collect();
        let keys: Vec<f32> = (0..positions * n_kv * hd).map(|i| value(i + 3)).collect();
        let values: Vec<f32> = (0..positions * n_kv * hd).map(|i| value(i + 11)).collect();
        let out = decode_attention(&q, &keys, &values, n_head, n_kv, hd, 0.5);
        for head in 0..n_head {
            let kv = head / (n_head / n_kv);
            let scores: Vec<f64> = (0..positions)
                .map(|j| {
                    (0..hd)
                        .map(|d| {
                            f64::from(q[head * hd + d]) * f64::from(keys[(j * n_kv + kv) * hd + d])
                        })
                        .sum::<f64>()
                        * 0.5
                })
                .collect();
            let max = scores.iter().copied().fold(f64::MIN, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for d in 0..hd {
                let want: f64 = (0..positions)
                    .map(|j| {
                        (scores[j] - max).exp() / total
                            * f64::from(values[(j * n_kv + kv) * hd + d])
                    })
                    .sum();
                let got = f64::from(out[head * hd + d]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "head {head} dim {d}: {got} vs {want}"
                );
            }
        }
    }

    /// The real SmolLM2 weights (fetched once per machine, as the integration tests do).
    pub(crate) fn gguf() -> std::path::PathBuf {
        let dir = std::env::var_os("AGENTBASE_MODELS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let system = std::path::PathBuf::from("/var/cache/agentbase-models");
                let writable = std::fs::create_dir_all(&system).is_ok()
                    && tempfile::tempfile_in(&system).is_ok();
                if writable {
                    system
                } else {
                    std::env::temp_dir().join("agentbase-models")
                }
            });
        crate::fetch_default_models(&dir)
            .expect("fetching the default models")
            .chat_gguf
    }

    #[test]
    fn logits_match_candles_llama_through_prefill_chunks_and_decoding() {
        use candle_transformers::models::quantized_llama::ModelWeights;
        let path = gguf();
        let read = || {
            let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let content = gguf_file::Content::read(&mut reader).unwrap();
            (content, reader)
        };
        let device = Device::Cpu;
        let (content, mut reader) = read();
        let mut ours = Llama::from_gguf(&content, &mut reader, &device)
            .unwrap()
            .expect("SmolLM2 is not a mixture of experts");
        let (content, mut reader) = read();
        let mut theirs = ModelWeights::from_gguf(content, &mut reader, &device).unwrap();

        // Prefill runs the same candle ops as candle's model, so its logits agree to
        // float noise. Decoding attends in our own loops: the attention output agrees
        // to ~1e-6, but the next quantized matmul rounds its input to 8 bits per
        // block, so such differences can flip a rounding step and the logits then
        // differ within that quantization's noise (measured: ≤ 1.5% of the largest
        // logit, cosine > 0.9999). The next token must be the same either way.
        let compare = |ours: &Tensor, theirs: &Tensor, step: &str, tolerance: f32| -> u32 {
            use crate::logits::agree;
            let ours = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let theirs = theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            agree(&ours, &theirs, step, tolerance);
            let argmax = |v: &[f32]| crate::logits::argmax(v) as u32;
            assert_eq!(
                argmax(&ours),
                argmax(&theirs),
                "{step}: a different next token"
            );
            argmax(&ours)
        };

        // Two sequences, so the second starts from a cleared cache.
        for offset in [13u32, 5] {
            let prompt: Vec<u32> = (0..150u32).map(|i| (i * 97 + offset) % 49_000).collect();
            let mut pos = 0;
            let mut next = 0;
            for chunk in prompt.chunks(64) {
                let input = Tensor::new(chunk, &device).unwrap().unsqueeze(0).unwrap();
                let a = ours.forward(&input, pos).unwrap();
                let b = theirs.forward(&input, pos).unwrap();
                next = compare(&a, &b, &format!("prefill at {pos}"), 1e-4);
                pos += chunk.len();
            }
            for step in 0..8 {
                let input = Tensor::new(&[next], &device).unwrap().unsqueeze(0).unwrap();
                let a = ours.forward(&input, pos).unwrap();
                let b = theirs.forward(&input, pos).unwrap();
                next = compare(&a, &b, &format!("decode step {step}"), 0.03);
                pos += 1;
            }
        }

        // A position that does not continue the cache is an error, not garbage.
        let input = Tensor::new(&[1u32], &device).unwrap().unsqueeze(0).unwrap();
        assert!(ours.forward(&input, 3).is_err());
        // Another worker's copy starts empty and gives the same answer.
        let mut other = ours.for_another_worker();
        let input = Tensor::new(&[1u32, 2, 3], &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let a = ours.forward(&input, 0).unwrap();
        let b = other.forward(&input, 0).unwrap();
        compare(&a, &b, "another worker", 1e-6);
    }

    #[test]
    fn dot_covers_the_tail() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b = vec![2.0; 37];
        assert_eq!(dot(&a, &b), (0..37).map(|i| 2.0 * i as f32).sum::<f32>());
    }
}
