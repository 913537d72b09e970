//! `LocalEmbedder`: sentence embeddings from a BERT model (all-MiniLM-L6-v2 by
//! default) with candle, computed the way sentence-transformers does: truncate to the
//! model's `max_seq_length`, run BERT, mean-pool over the attention mask (or take
//! `[CLS]` when the model's pooling config says so), L2-normalise.
//!
//! In optimized builds the encoder is our own (`fast_bert`: no padding, matmul
//! kernels chosen at run time for the CPU, several times candle's speed); for a BERT
//! variant it does not implement, candle's `BertModel` runs (`EmbedBackend` chooses
//! explicitly). For candle, inputs
//! are sorted by length and run in batches padded to their longest member, so a batch
//! of short chunks costs what short chunks cost. The work runs on one dedicated OS
//! thread (which spreads each batch over the cores); callers await a oneshot reply and
//! never block the async runtime. Requests are served in order, in two lanes: a
//! query's (`Embedder::embed_urgent`: a search, a chat turn's retrieval) goes before
//! any training batch, and between a training batch's groups of texts, so one
//! tenant's training backlog does not make everyone's search wait for it.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use agentbase_core::model::{EmbedFuture, Embedder, ModelError};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use tokio::sync::oneshot;

use crate::Error;

#[derive(Debug, Clone)]
pub struct LocalEmbedderOptions {
    /// Texts per forward pass. Default 16.
    pub batch_size: usize,
    /// Overrides the token limit; by default `max_seq_length` from the dir's
    /// `sentence_bert_config.json`, else the model's position limit.
    pub max_seq_len: Option<usize>,
    /// Which encoder runs the model. Default `Auto`.
    pub backend: EmbedBackend,
    /// Our encoder's kernels; by default what `crate::cpu::kernels` chose (so
    /// `AGENTBASE_KERNELS` applies). Loading fails if the CPU cannot run them.
    pub kernels: Option<crate::cpu::Level>,
    /// Nice value of the embedding worker and the threads it starts (0 = the
    /// caller's priority, up to 19). A server sets it so that training, which is
    /// mostly embedding, yields the CPU to requests. Default 0.
    pub nice: i32,
}

impl Default for LocalEmbedderOptions {
    fn default() -> Self {
        Self {
            batch_size: 16,
            max_seq_len: None,
            backend: EmbedBackend::Auto,
            kernels: None,
            nice: 0,
        }
    }
}

/// The encoder behind `LocalEmbedder`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmbedBackend {
    /// `Fast` when the CPU, the model and the build allow it, else `Candle`. Builds
    /// without optimizations (dev profile) use candle: our encoder is compiled with
    /// the crate and is slow unoptimized, candle is a dependency and optimized.
    /// `AGENTBASE_EMBED_BACKEND=candle|fast` overrides the choice (benchmarks).
    #[default]
    Auto,
    /// candle's f32 `BertModel` on padded batches.
    Candle,
    /// Our encoder (`fast_bert`); loading fails with `Error::InvalidModel` when the
    /// model rules it out.
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, ModelError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Embedding requests waiting for the worker thread, per lane; each holds its texts.
const QUEUE_CAPACITY: usize = 64;
/// How long a request waits for room in a full queue.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct LocalEmbedder {
    jobs: Arc<Lanes>,
    dimensions: usize,
}

impl Drop for LocalEmbedder {
    fn drop(&mut self) {
        self.jobs.close();
    }
}

/// The worker's two queues: urgent requests (queries) before bulk ones (training).
#[derive(Default)]
struct Lanes {
    queues: Mutex<Queues>,
    ready: Condvar,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<Job>,
    bulk: VecDeque<Job>,
    /// Set when the embedder is dropped: the worker ends.
    closed: bool,
}

/// Why a job was not queued.
enum Refused {
    Full(Job),
    Closed,
}

impl Lanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, job: Job, urgent: bool) -> Result<(), Refused> {
        let mut q = self.lock();
        if q.closed {
            return Err(Refused::Closed);
        }
        let lane = if urgent { &mut q.urgent } else { &mut q.bulk };
        if lane.len() >= QUEUE_CAPACITY {
            return Err(Refused::Full(job));
        }
        lane.push_back(job);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, urgent ones first, waiting for one; `None` once closed.
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if q.closed {
                return None;
            }
            if let Some(job) = q.urgent.pop_front().or_else(|| q.bulk.pop_front()) {
                return Some(job);
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn next_urgent(&self) -> Option<Job> {
        self.lock().urgent.pop_front()
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

enum Encoder {
    Candle(Box<BertModel>),
    Fast(Box<crate::fast_bert::FastBert>, crate::cpu::Level),
}

struct Model {
    encoder: Encoder,
    tokenizer: Tokenizer,
    pooling: Pooling,
    batch_size: usize,
    device: Device,
}

/// `max_seq_length` from `sentence_bert_config.json`, when the file is there and
/// says so.
fn sentence_bert_max_len(dir: &Path) -> Result<Option<usize>, Error> {
    let path = dir.join("sentence_bert_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::invalid(&path, e))?;
    Ok(v.get("max_seq_length")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize))
}

/// CLS pooling when `1_Pooling/config.json` asks for it; mean pooling otherwise.
fn pooling_of(dir: &Path) -> Result<Pooling, Error> {
    let path = dir.join("1_Pooling/config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Pooling::Mean);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid(&path, e))?;
    Ok(
        if config.get("pooling_mode_cls_token") == Some(&serde_json::Value::Bool(true)) {
            Pooling::Cls
        } else {
            Pooling::Mean
        },
    )
}

impl Model {
    /// Starts the worker thread (at `nice`, see [`crate::sched`]) that embeds the
    /// queued jobs one at a time, urgent ones first and also between a bulk job's
    /// groups of texts; a job whose caller gave up is skipped.
    fn start_worker(self, nice: i32) -> std::io::Result<Arc<Lanes>> {
        let jobs = Arc::new(Lanes::default());
        let lanes = jobs.clone();
        std::thread::Builder::new()
            .name("llm-embed".to_owned())
            .spawn(move || {
                if let Err(e) = crate::sched::lower_thread_priority(nice) {
                    tracing::warn!(nice, error = %e, "the embedding worker keeps its priority");
                }
                let serve = |job: Job, between: &mut dyn FnMut()| {
                    if job.reply.is_closed() {
                        return;
                    }
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.embed(&job.texts, between)
                    }))
                    .unwrap_or_else(|_| Err("the embedding worker panicked".to_owned()))
                    .map_err(ModelError::Failed);
                    let _ = job.reply.send(result);
                };
                while let Some(job) = lanes.next() {
                    serve(job, &mut || {
                        while let Some(urgent) = lanes.next_urgent() {
                            serve(urgent, &mut || {});
                        }
                    });
                }
            })?;
        Ok(jobs)
    }
}

impl LocalEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (read
    /// into memory, no mmap) and starts the worker thread. Blocking.
    pub fn load(dir: &Path, options: LocalEmbedderOptions) -> Result<Self, Error> {
        let config_path = dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(Error::io("read", &config_path))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| Error::invalid(&config_path, e))?;
        let dimensions = config.hidden_size;
        let max_seq_len = match options.max_seq_len {
            Some(n) => n,
            None => sentence_bert_max_len(dir)?.unwrap_or(config.max_position_embeddings),
        }
        .min(config.max_position_embeddings);
        let pooling = pooling_of(dir)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| Error::invalid(&tokenizer_path, e))?;
        let padding = tokenizer.get_padding().cloned();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_len,
                ..Default::default()
            }))
            .map_err(|e| Error::invalid(&tokenizer_path, e))?;

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, &device)
            .map_err(|e| Error::invalid(&weights_path, e))?;
        let encoder = match Self::fast_if_chosen(&options, &config_text, &tensors, &weights_path)? {
            Some(fast) => {
                // Texts run unpadded; tokenizer.json may ask for a fixed length.
                tokenizer.with_padding(None);
                fast
            }
            None => {
                // candle wants a rectangular batch.
                tokenizer.with_padding(Some(PaddingParams {
                    strategy: PaddingStrategy::BatchLongest,
                    pad_id: padding.as_ref().map_or(0, |p| p.pad_id),
                    pad_token: padding.map_or_else(|| "[PAD]".to_owned(), |p| p.pad_token),
                    ..Default::default()
                }));
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                let bert =
                    BertModel::load(vb, &config).map_err(|e| Error::invalid(&weights_path, e))?;
                Encoder::Candle(Box::new(bert))
            }
        };
        let encoder_name = match &encoder {
            Encoder::Candle(_) => "candle".to_owned(),
            Encoder::Fast(_, level) => format!("ours ({level})"),
        };
        let model = Model {
            encoder,
            tokenizer,
            pooling,
            batch_size: options.batch_size.max(1),
            device,
        };
        let jobs = model
            .start_worker(options.nice)
            .map_err(Error::io("start a worker thread for", dir))?;
        tracing::info!(dir = %dir.display(), dimensions, max_seq_len, ?pooling, encoder = %encoder_name, "local embedder loaded");
        Ok(Self { jobs, dimensions })
    }

    /// Our own encoder when the backend (the option, or `AGENTBASE_EMBED_BACKEND`
    /// under `auto`) asks for it and the model allows it; `None` for candle. `auto`
    /// falls back to candle where ours cannot run the model, and in unoptimised
    /// builds.
    fn fast_if_chosen(
        options: &LocalEmbedderOptions,
        config_text: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
        weights_path: &Path,
    ) -> Result<Option<Encoder>, Error> {
        let backend = match (
            options.backend,
            std::env::var("AGENTBASE_EMBED_BACKEND").as_deref(),
        ) {
            (EmbedBackend::Auto, Ok("candle")) => EmbedBackend::Candle,
            (EmbedBackend::Auto, Ok("fast")) => EmbedBackend::Fast,
            (backend, _) => backend,
        };
        // A level the CPU lacks (`AGENTBASE_KERNELS`) is refused whichever encoder runs.
        let level = match options.kernels {
            Some(level) => level,
            None => crate::cpu::kernels()?.embeddings,
        };
        match backend {
            EmbedBackend::Candle => return Ok(None),
            EmbedBackend::Auto if !cfg!(optimized) => return Ok(None),
            EmbedBackend::Auto | EmbedBackend::Fast => {}
        }
        let isa = crate::cpu::EmbedIsa::at(level).ok_or_else(|| {
            Error::Kernels(crate::cpu::KernelsError {
                value: level.to_string(),
                reason: "this CPU lacks it".to_owned(),
            })
        })?;
        match Self::fast_encoder(isa, config_text, tensors) {
            Ok(fast) => Ok(Some(fast)),
            Err(_) if backend == EmbedBackend::Auto => Ok(None),
            Err(reason) => Err(Error::invalid(weights_path, reason)),
        }
    }

    /// Our own encoder on the kernels `isa`, or why the model rules it out.
    fn fast_encoder(
        isa: crate::cpu::EmbedIsa,
        config: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<Encoder, String> {
        use crate::fast_bert::{FastBert, Shape};
        let config: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let shape = Shape::from_config(&config)
            .ok_or("the fast encoder runs BERT with GELU and absolute positions only".to_owned())?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let fast = FastBert::load(isa, tensors, shape, threads)?;
        Ok(Encoder::Fast(Box::new(fast), isa.level()))
    }
}

impl Embedder for LocalEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        self.queue(texts, false)
    }

    fn embed_urgent<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        self.queue(texts, true)
    }
}

impl LocalEmbedder {
    fn queue<'a>(&'a self, texts: &'a [String], urgent: bool) -> EmbedFuture<'a> {
        Box::pin(async move {
            if texts.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, answer) = oneshot::channel();
            let mut job = Job {
                texts: texts.to_vec(),
                reply,
            };
            // The queue is bounded: a full one makes callers wait (without holding
            // a runtime thread) and, past QUEUE_WAIT, refuses them.
            let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
            loop {
                match self.jobs.push(job, urgent) {
                    Ok(()) => break,
                    Err(Refused::Full(back)) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(ModelError::Overloaded(
                                "the embedding queue is full".to_owned(),
                            ));
                        }
                        job = back;
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    Err(Refused::Closed) => {
                        return Err(ModelError::Unavailable(
                            "the embedding worker has stopped".to_owned(),
                        ));
                    }
                }
            }
            answer.await.map_err(|_| {
                ModelError::Failed("the embedding worker dropped the request".to_owned())
            })?
        })
    }
}

impl Model {
    /// Embeds `texts` in groups of `batch_size`, calling `between` after each
    /// group but the last.
    fn embed(&self, texts: &[String], between: &mut dyn FnMut()) -> Result<Vec<Vec<f32>>, String> {
        // Longest first, so each batch pads to lengths close to its own.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for (n, batch) in order.chunks(self.batch_size).enumerate() {
            if n > 0 {
                between();
            }
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let vectors = self.embed_batch(&inputs).map_err(|e| e.to_string())?;
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(
        &self,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let bert = match &self.encoder {
            Encoder::Candle(bert) => bert,
            Encoder::Fast(fast, _) => return self.embed_fast(fast, &encodings),
        };
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, len), &self.device)?;
        let type_ids = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, len), &self.device)?;

        let hidden = bert.forward(&ids, &type_ids, Some(&mask))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
                summed.broadcast_div(&counts)?
            }
        };
        let norms = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(pooled.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }

    /// Pools the fast encoder's unpadded output: each text's rows follow the last's.
    fn embed_fast(
        &self,
        fast: &crate::fast_bert::FastBert,
        encodings: &[tokenizers::Encoding],
    ) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        let inputs: Vec<crate::fast_bert::Input<'_>> = encodings
            .iter()
            .map(|e| crate::fast_bert::Input {
                ids: e.get_ids(),
                type_ids: e.get_type_ids(),
            })
            .collect();
        let hidden = fast.forward(&inputs)?;
        let width = hidden.len() / encodings.iter().map(|e| e.len()).sum::<usize>().max(1);
        let mut start = 0;
        let mut out = Vec::with_capacity(encodings.len());
        for encoding in encodings {
            let rows = &hidden[start * width..(start + encoding.len()) * width];
            start += encoding.len();
            let mut pooled = vec![0f32; width];
            let take = match self.pooling {
                Pooling::Cls => encoding.len().min(1),
                Pooling::Mean => encoding.len(),
            };
            for row in rows.chunks_exact(width).take(take) {
                for (p, v) in pooled.iter_mut().zip(row) {
                    *p += v;
                }
            }
            let count = take.max(1) as f32;
            let norm = pooled
                .iter()
                .map(|v| (v / count) * (v / count))
                .sum::<f32>()
                .sqrt();
            let scale = 1.0 / (count * norm.max(1e-12));
            pooled.iter_mut().for_each(|v| *v *= scale);
            out.push(pooled);
        }
        Ok(out)
    }
}
