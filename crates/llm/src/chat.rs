//! `LocalChatModel`: a GGUF chat model run with candle on dedicated OS threads.
//!
//! Supported: llama-architecture GGUF files (SmolLM2 by default, Llama 3.x) and
//! Qwen2-architecture ones, with a byte-level BPE vocabulary (`gguf_tokenizer`) and the
//! chat template from the file's metadata (`template`).
//!
//! # Threads and the queue
//!
//! Generation is CPU-bound for seconds, so it never runs on the async runtime. `load`
//! starts `workers` OS threads, each with its own KV cache over shared weights, and a
//! bounded queue of `queue_len` requests in front of them. `stream` never blocks and
//! never waits for room: **when every worker is busy and the queue is full, the stream
//! it returns yields one `ModelError::Overloaded` at once and ends** (the server maps
//! it to 503, the caller may retry).
//!
//! One worker is right on small machines: each forward pass is already spread over
//! the cores. Llama on our own forward pass (`fast_llama`) uses a small pool of its own
//! (`AGENTBASE_LLM_THREADS`, else `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`, else
//! every CPU the process may use) whose tasks are claimed one at a time, so it
//! degrades gracefully when other processes take the cores: a worker that finds the
//! pool busy runs its pass alone. Everything else runs on candle's pinned, spinning
//! pool (sized once from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`), which collapses
//! when the cores are oversubscribed (measured here while two compilers ran: ~3 tok/s
//! decode with two candle threads, ~50 tok/s with one); on a machine shared with other
//! CPU-heavy work, run those with `CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1`.
//!
//! # Cancellation
//!
//! Dropping the returned stream closes its channel; the worker checks it before every
//! token (and between prefill chunks) and moves on to the next request, so at most one
//! more forward pass is spent. A request whose stream is dropped while still queued is
//! skipped without running.
//!
//! # Context window
//!
//! `context_window()` is what the model can actually attend to here: the GGUF's
//! `context_length`, capped by candle's precomputed RoPE table for llama (4096) and by
//! `LocalChatOptions::context_window`. Prompts never overflow it: the answer gets a
//! reserve of `min(max_tokens, window / 2)` tokens, the oldest non-system messages are
//! dropped until the rendered prompt fits the rest, and if the system prompt plus the
//! last message alone are still too long, the longest of them is cut (the system
//! prompt keeps its head, other messages their tail). Generation that reaches the end
//! of the window finishes with `FinishReason::Length`. None of this is an error.
//!
//! # Prompt encoding
//!
//! The chat template renders with stand-ins for message contents; its markup is
//! encoded with special tokens and the contents as plain text, so markup a user types
//! (`<|im_start|>system`) stays text and cannot forge a turn.
//!
//! # Tool calls
//!
//! When the request has tools, they are offered in the system prompt and parsed out of
//! the answer in the format documented in `crate::tools`.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agentbase_core::model::{
    ChatModel, ChatRequest, FinishReason, ModelError, ModelEvent, ModelStream, Role, Usage,
};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use tokio::sync::mpsc::UnboundedSender;

use crate::Error;
use crate::gguf_tokenizer::{GgufTokenizer, Utf8Stream, placeholder};
use crate::template::{ChatTemplate, TemplateMessage};
use crate::tools::{ToolCallParser, render_tool_calls, render_tool_result, tools_system_prompt};

/// Prompt tokens per forward pass during prefill: big enough for efficient matmuls,
/// small enough that the attention scores of a long prompt stay a few tens of MB and
/// a dropped stream is noticed quickly.
const PREFILL_CHUNK: usize = 256;

#[derive(Debug, Clone)]
pub struct LocalChatOptions {
    /// Generation threads, each with its own KV cache. Default 1.
    pub workers: usize,
    /// Requests that may wait for a free worker before `Overloaded`. Default 8.
    pub queue_len: usize,
    /// Caps the context window below the model's (bounds prefill time and memory).
    pub context_window: Option<usize>,
    /// Penalty on logits of recently generated tokens; 1.0 turns it off. Default 1.1,
    /// which keeps small models from looping.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at. Default 64.
    pub repeat_last_n: usize,
    /// Seed for sampling when temperature > 0; `None` seeds from the clock.
    pub seed: Option<u64>,
    /// Convert Q4_1/Q5_0/Q5_1 tensors to Q8_0 at load, which candle has SIMD
    /// kernels for (see `requantized`), when candle's matmuls run the model (not
    /// llama on AVX-512 VNNI CPUs, whose own kernels take Q4_1 as it is). Default true.
    pub requantize: bool,
}

impl Default for LocalChatOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            queue_len: 8,
            context_window: None,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: None,
            requantize: true,
        }
    }
}

/// A snapshot of the workers, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalChatStats {
    /// Requests waiting for a worker.
    pub queued: usize,
    /// Requests being generated.
    pub running: usize,
    /// Tokens generated since load.
    pub tokens_generated: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    running: AtomicUsize,
    tokens_generated: AtomicU64,
}

/// What every worker and the async side share; read-only after load.
struct Shared {
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    context_window: usize,
    /// Weights in the file (all tensors' elements).
    parameters: u64,
    options: LocalChatOptions,
    counters: Counters,
}

type EventSender = UnboundedSender<Result<ModelEvent, ModelError>>;

struct Job {
    request: ChatRequest,
    events: EventSender,
}

/// The weights of one supported architecture, with one worker's KV cache. Llama runs
/// on our own forward pass: `fast_llama` (quantised kernels chosen at run time by
/// `crate::cpu`: AVX-512 VNNI, AVX2 or scalar; the file's own Q4_1 blocks) for every
/// file it can run, else `llama` (candle's quantized matmuls, a KV cache that is
/// appended to, not copied per token); mixture-of-experts llama files and Qwen2 on
/// candle's. `AGENTBASE_CHAT_LLAMA=candle` runs llama on candle's model
/// and `=qmatmul` on `llama` (for comparisons).
enum Weights {
    Fast(Box<crate::fast_llama::FastLlama>),
    Llama(Box<crate::llama::Llama>),
    CandleLlama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn read(path: &Path, arch: &str, requantize: bool) -> Result<Self, Error> {
        let file = File::open(path).map_err(Error::io("open", path))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| Error::invalid(path, e))?;
        let invalid = |e: candle_core::Error| Error::invalid(path, e);
        if arch == "llama"
            && std::env::var("AGENTBASE_CHAT_LLAMA").is_err()
            && let Some(model) =
                crate::fast_llama::FastLlama::from_gguf(chat_isa()?, &content, &mut reader)
                    .map_err(invalid)?
        {
            return Ok(Self::Fast(Box::new(model)));
        }
        let slow = content
            .tensor_infos
            .values()
            .any(|t| is_scalar_only(t.ggml_dtype));
        if requantize && slow {
            let mut gguf = requantized(content, &mut reader).map_err(invalid)?;
            let content = gguf_file::Content::read(&mut gguf).map_err(invalid)?;
            return Self::from_content(content, &mut gguf, arch, path);
        }
        Self::from_content(content, &mut reader, arch, path)
    }

    fn from_content<R: std::io::Read + std::io::Seek>(
        content: gguf_file::Content,
        reader: &mut R,
        arch: &str,
        path: &Path,
    ) -> Result<Self, Error> {
        let device = Device::Cpu;
        Ok(match arch {
            "llama" => {
                let ours = match std::env::var("AGENTBASE_CHAT_LLAMA").as_deref() {
                    Ok("candle") => None,
                    _ => crate::llama::Llama::from_gguf(&content, reader, &device)
                        .map_err(|e| Error::invalid(path, e))?,
                };
                match ours {
                    Some(model) => Self::Llama(Box::new(model)),
                    None => Self::CandleLlama(
                        quantized_llama::ModelWeights::from_gguf(content, reader, &device)
                            .map_err(|e| Error::invalid(path, e))?,
                    ),
                }
            }
            "qwen2" => Self::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, reader, &device)
                    .map_err(|e| Error::invalid(path, e))?,
            ),
            other => {
                return Err(Error::invalid(
                    path,
                    format!("architecture {other:?} is not supported (llama and qwen2 are)"),
                ));
            }
        })
    }

    /// Another worker's copy: llama weights are shared (candle tensors are
    /// reference-counted), qwen2's cannot be cloned and are read again.
    fn for_another_worker(&self, path: &Path, requantize: bool) -> Result<Self, Error> {
        match self {
            Self::Fast(m) => Ok(Self::Fast(Box::new(m.for_another_worker()))),
            Self::Llama(m) => Ok(Self::Llama(Box::new(m.for_another_worker()))),
            Self::CandleLlama(m) => Ok(Self::CandleLlama(m.clone())),
            Self::Qwen2(_) => Self::read(path, "qwen2", requantize),
        }
    }

    /// Which forward pass runs, for the log: `ours (avx2)`, `candle qmatmul`, ….
    fn describe(&self) -> String {
        match self {
            Self::Fast(m) => format!("ours ({})", m.kernels()),
            Self::Llama(_) => "candle qmatmul".to_owned(),
            Self::CandleLlama(_) => "candle quantized_llama".to_owned(),
            Self::Qwen2(_) => "candle quantized_qwen2".to_owned(),
        }
    }

    fn forward(&mut self, input: &Tensor, index_pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Fast(m) => {
                let tokens = input.flatten_all()?.to_vec1::<u32>()?;
                let logits = m.forward(&tokens, index_pos)?;
                let vocab = logits.len();
                Tensor::from_vec(logits, (1, vocab), &Device::Cpu)
            }
            Self::Llama(m) => m.forward(input, index_pos),
            Self::CandleLlama(m) => m.forward(input, index_pos),
            Self::Qwen2(m) => m.forward(input, index_pos),
        }
    }

    fn clear_kv_cache(&mut self) {
        match self {
            Self::Fast(m) => m.clear_kv_cache(),
            Self::Llama(m) => m.clear_kv_cache(),
            Self::CandleLlama(m) => m.clear_kv_cache(),
            Self::Qwen2(m) => m.clear_kv_cache(),
        }
    }
}

/// The chat kernels `crate::cpu::kernels` chose (an error when `AGENTBASE_KERNELS`
/// names a level this CPU lacks).
fn chat_isa() -> Result<crate::cpu::ChatIsa, Error> {
    let level = crate::cpu::kernels()?.chat;
    crate::cpu::ChatIsa::at(level).ok_or_else(|| {
        Error::Kernels(crate::cpu::KernelsError {
            value: level.to_string(),
            reason: "this CPU lacks it".to_owned(),
        })
    })
}

/// Quantization formats candle 0.11 only has scalar (non-SIMD) dot products for on
/// x86. SmolLM2's GGUF is Q4_1 (its 576-wide rows rule out the K-quants).
fn is_scalar_only(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Rewrites a GGUF in memory with its scalar-only tensors converted to Q8_0, which
/// candle runs with AVX2: Q8_0 holds every Q4_1/Q5 value to within 1/254 of the
/// block's range, far inside their own rounding, and measured here it more than
/// doubles prefill and decode speed for SmolLM2, for ~45 MB more memory.
fn requantized<R: std::io::Read + std::io::Seek>(
    content: gguf_file::Content,
    reader: &mut R,
) -> candle_core::Result<Cursor<Vec<u8>>> {
    let device = Device::Cpu;
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let tensor = content.tensor(reader, name, &device)?;
        let tensor = if is_scalar_only(tensor.dtype()) {
            QTensor::quantize(&tensor.dequantize(&device)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    out.set_position(0);
    Ok(out)
}

pub struct LocalChatModel {
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
}

impl LocalChatModel {
    /// Loads a GGUF file (read into memory, no mmap) and starts the worker threads.
    /// Blocking: call it at startup or from `spawn_blocking`.
    pub fn load(path: &Path, options: LocalChatOptions) -> Result<Self, Error> {
        let started = Instant::now();
        let file = File::open(path).map_err(Error::io("open", path))?;
        let content = gguf_file::Content::read(&mut BufReader::new(file))
            .map_err(|e| Error::invalid(path, e))?;
        let metadata = &content.metadata;
        let text = |key: &str| metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
        let arch = text("general.architecture").unwrap_or_default();
        let tokenizer = GgufTokenizer::from_gguf(metadata, path)?;
        let template = ChatTemplate::new(text("tokenizer.chat_template").as_deref())
            .map_err(|e| Error::invalid(path, e))?;
        let trained_context = metadata
            .get(&format!("{arch}.context_length"))
            .and_then(|v| v.to_u32().ok())
            .map(|n| n as usize)
            .unwrap_or(2048);

        let mut context_window = match arch.as_str() {
            // candle precomputes llama's RoPE for this many positions only.
            "llama" => trained_context.min(quantized_llama::MAX_SEQ_LEN),
            _ => trained_context,
        };
        let parameters = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum();
        // The header is read again with the tensors; it is a few MB.
        drop(content);
        let weights = Weights::read(path, &arch, options.requantize)?;
        let forward = weights.describe();
        if let Some(cap) = options.context_window {
            context_window = context_window.min(cap.max(16));
        }

        let workers = options.workers.max(1);
        let requantize = options.requantize;
        let (jobs, receiver) = mpsc::sync_channel::<Job>(options.queue_len);
        let receiver = Arc::new(Mutex::new(receiver));
        let shared = Arc::new(Shared {
            tokenizer,
            template,
            context_window,
            parameters,
            options,
            counters: Counters::default(),
        });
        let mut weights = Some(weights);
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            let receiver = Arc::clone(&receiver);
            let weights = match weights.take() {
                Some(first) if i + 1 < workers => {
                    let next = first.for_another_worker(path, requantize)?;
                    weights = Some(next);
                    first
                }
                Some(last) => last,
                None => unreachable!("one set of weights is kept for each remaining worker"),
            };
            std::thread::Builder::new()
                .name(format!("llm-chat-{i}"))
                .spawn(move || worker(shared, receiver, weights))
                .map_err(Error::io("start a worker thread for", path))?;
        }
        tracing::info!(
            path = %path.display(),
            arch,
            forward = %forward,
            context_window,
            workers,
            queue_len = shared.options.queue_len,
            load_ms = started.elapsed().as_millis() as u64,
            "local chat model loaded"
        );
        Ok(Self { shared, jobs })
    }

    pub fn stats(&self) -> LocalChatStats {
        let c = &self.shared.counters;
        LocalChatStats {
            queued: c.queued.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            tokens_generated: c.tokens_generated.load(Ordering::Relaxed),
        }
    }

    /// The prompt `request` turns into after trimming, as token ids. Exposed so
    /// callers (and tests) can see what the model will be given.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<u32>, ModelError> {
        self.shared.prepare(request).map(|p| p.ids)
    }
}

impl ChatModel for LocalChatModel {
    fn stream(&self, request: ChatRequest) -> ModelStream {
        let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let counters = &self.shared.counters;
        counters.queued.fetch_add(1, Ordering::Relaxed);
        let refused = match self.jobs.try_send(Job { request, events }) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => Some(ModelError::Overloaded(format!(
                "all local model workers are busy and {} requests are already waiting",
                self.shared.options.queue_len
            ))),
            Err(TrySendError::Disconnected(_)) => Some(ModelError::Unavailable(
                "the local model workers have stopped".to_owned(),
            )),
        };
        if let Some(error) = refused {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            return Box::pin(futures_util::stream::once(async move { Err(error) }));
        }
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        }))
    }

    fn context_window(&self) -> usize {
        self.shared.context_window
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.shared.tokenizer.count(text)
    }

    fn parameters(&self) -> Option<u64> {
        Some(self.shared.parameters)
    }
}

fn worker(shared: Arc<Shared>, receiver: Arc<Mutex<Receiver<Job>>>, mut weights: Weights) {
    loop {
        let job = {
            let receiver = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                // The model was dropped: nothing more will come.
                Err(_) => return,
            }
        };
        let counters = &shared.counters;
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        if job.events.is_closed() {
            continue;
        }
        counters.running.fetch_add(1, Ordering::Relaxed);
        let events = job.events.clone();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| generate(&shared, &mut weights, job)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = events.send(Err(ModelError::Failed(e)));
            }
            Err(_) => {
                let _ = events.send(Err(ModelError::Failed(
                    "local model worker panicked".to_owned(),
                )));
            }
        }
        counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Prepared {
    ids: Vec<u32>,
    dropped_messages: usize,
}

impl Shared {
    /// Renders and tokenizes the request, trimmed to leave room for the answer:
    /// the oldest messages go first, and when even the system prompt and the last
    /// message do not fit, the longest of them is cut.
    fn prepare(&self, request: &ChatRequest) -> Result<Prepared, ModelError> {
        let window = self.context_window;
        let reserve = (request.max_tokens as usize).clamp(1, window / 2);
        let budget = window - reserve;
        let (mut system, conversation) = template_messages(request);
        let ids = self.encode(&system, &conversation)?;
        if ids.len() <= budget {
            return Ok(Prepared {
                ids,
                dropped_messages: 0,
            });
        }
        if let Some(prepared) = self.drop_oldest(&system, &conversation, budget)? {
            return Ok(prepared);
        }
        let last = conversation.len().saturating_sub(1);
        let mut rest: Vec<TemplateMessage> = conversation[last..].to_vec();
        let ids = self.cut_longest(&mut system, &mut rest, budget)?;
        Ok(Prepared {
            ids,
            dropped_messages: last,
        })
    }

    /// The prompt's token ids: the template rendered over placeholders, each
    /// replaced by its message's tokens (so message text cannot forge template
    /// markup).
    fn encode(
        &self,
        system: &[TemplateMessage],
        rest: &[TemplateMessage],
    ) -> Result<Vec<u32>, ModelError> {
        let messages: Vec<&TemplateMessage> = system.iter().chain(rest).collect();
        let stand_ins: Vec<TemplateMessage> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| TemplateMessage {
                role: m.role,
                content: placeholder(i),
            })
            .collect();
        let text = self
            .template
            .render(
                &stand_ins,
                &self.tokenizer.bos_token,
                &self.tokenizer.eos_token,
            )
            .map_err(ModelError::Failed)?;
        let contents: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        self.tokenizer
            .encode_prompt(&text, &contents)
            .map_err(ModelError::Failed)
    }

    /// The fewest oldest messages to drop for the prompt to fit (dropping more never
    /// makes it longer, so a binary search), then on to the next user turn, since
    /// templates expect the conversation to open with one. The last message always
    /// stays; `None` when even that is too long.
    fn drop_oldest(
        &self,
        system: &[TemplateMessage],
        conversation: &[TemplateMessage],
        budget: usize,
    ) -> Result<Option<Prepared>, ModelError> {
        let last = conversation.len().saturating_sub(1);
        let (mut lo, mut hi) = (1, last);
        let mut best: Option<(usize, Vec<u32>)> = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let ids = self.encode(system, &conversation[mid..])?;
            if ids.len() <= budget {
                best = Some((mid, ids));
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        let Some((mut dropped, mut ids)) = best else {
            return Ok(None);
        };
        while dropped < last && conversation[dropped].role != "user" {
            dropped += 1;
            ids = self.encode(system, &conversation[dropped..])?;
        }
        Ok(Some(Prepared {
            ids,
            dropped_messages: dropped,
        }))
    }

    /// Cuts the longest message (a system prompt keeps its start, the others their
    /// end) until the prompt fits, at most eight times; then keeps the prompt's last
    /// `budget` tokens (templates with huge fixed parts: the question is at the end).
    fn cut_longest(
        &self,
        system: &mut [TemplateMessage],
        rest: &mut [TemplateMessage],
        budget: usize,
    ) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.encode(system, rest)?;
        for _ in 0..8 {
            if ids.len() <= budget {
                break;
            }
            let over = ids.len() - budget + 8;
            let longest = system
                .iter_mut()
                .chain(rest.iter_mut())
                .max_by_key(|m| m.content.len())
                .expect("the last message is always there");
            let content_ids = self
                .tokenizer
                .encode_text(&longest.content)
                .map_err(ModelError::Failed)?;
            let keep = content_ids.len().saturating_sub(over);
            longest.content = if longest.role == "system" {
                self.tokenizer.decode(&content_ids[..keep])
            } else {
                self.tokenizer
                    .decode(&content_ids[content_ids.len() - keep..])
            };
            ids = self.encode(system, rest)?;
        }
        if ids.len() > budget {
            ids.drain(..ids.len() - budget);
        }
        Ok(ids)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User | Role::Tool => "user",
        Role::Assistant => "assistant",
    }
}

/// Splits the request into leading system messages (with the tool list appended)
/// and the conversation, as plain `{role, content}` messages.
fn template_messages(request: &ChatRequest) -> (Vec<TemplateMessage>, Vec<TemplateMessage>) {
    let leading = request
        .messages
        .iter()
        .take_while(|m| m.role == Role::System)
        .count();
    let mut system: Vec<TemplateMessage> = request.messages[..leading]
        .iter()
        .map(|m| TemplateMessage {
            role: "system",
            content: m.content.clone(),
        })
        .collect();
    if !request.tools.is_empty() {
        let tools = tools_system_prompt(&request.tools);
        match system.last_mut() {
            Some(last) => {
                last.content.push_str("\n\n");
                last.content.push_str(&tools);
            }
            None => system.push(TemplateMessage {
                role: "system",
                content: tools,
            }),
        }
    }
    let conversation = request.messages[leading..]
        .iter()
        .map(|m| {
            let content = match m.role {
                Role::Tool => render_tool_result(m.tool_name.as_deref(), &m.content),
                Role::Assistant if !m.tool_calls.is_empty() => {
                    let calls = render_tool_calls(&m.tool_calls);
                    if m.content.is_empty() {
                        calls
                    } else {
                        format!("{}\n{calls}", m.content)
                    }
                }
                _ => m.content.clone(),
            };
            TemplateMessage {
                role: role_name(m.role),
                content,
            }
        })
        .collect();
    (system, conversation)
}

fn sampling(temperature: f64) -> Sampling {
    if temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        Sampling::TopKThenTopP {
            k: 40,
            p: 0.95,
            temperature,
        }
    }
}

/// Runs one request on this worker's weights, streaming events into `job.events`.
/// Returns early (Ok) when the receiver is gone.
fn generate(shared: &Shared, weights: &mut Weights, job: Job) -> Result<(), String> {
    let Job { request, events } = job;
    let send = |event: ModelEvent| events.send(Ok(event)).is_ok();
    let prepared = match shared.prepare(&request) {
        Ok(p) => p,
        Err(e) => {
            let _ = events.send(Err(e));
            return Ok(());
        }
    };
    let prompt_len = prepared.ids.len();
    let max_new =
        (request.max_tokens as usize).min(shared.context_window.saturating_sub(prompt_len));
    let started = Instant::now();
    let Some(logits) = prefill(weights, &prepared.ids, &events)? else {
        return Ok(());
    };
    let prefilled = Instant::now();

    let mut out = Emitter {
        send: &send,
        utf8: Utf8Stream::default(),
        parser: (!request.tools.is_empty()).then(ToolCallParser::new),
    };
    let Some((generated, mut reason)) = decode(
        shared,
        weights,
        logits,
        DecodeLimits {
            pos: prompt_len,
            max_new,
            temperature: request.temperature,
        },
        &mut out,
        &events,
    )?
    else {
        return Ok(());
    };
    let Some(called_tools) = out.finish() else {
        return Ok(());
    };
    if called_tools {
        reason = FinishReason::ToolCalls;
    }
    let decode_secs = prefilled.elapsed().as_secs_f64();
    tracing::debug!(
        prompt_tokens = prompt_len,
        dropped_messages = prepared.dropped_messages,
        completion_tokens = generated,
        prefill_tok_s = prompt_len as f64 / (prefilled - started).as_secs_f64().max(1e-9),
        decode_tok_s = generated as f64 / decode_secs.max(1e-9),
        ?reason,
        "local generation finished"
    );
    send(ModelEvent::Finish {
        reason,
        usage: Usage {
            prompt_tokens: prompt_len as u32,
            completion_tokens: generated as u32,
        },
    });
    Ok(())
}

fn candle_err(e: candle_core::Error) -> String {
    e.to_string()
}

/// Runs the prompt through the model in chunks of [`PREFILL_CHUNK`] from an empty
/// cache; the last position's logits, or `None` when the receiver went away.
fn prefill(
    weights: &mut Weights,
    ids: &[u32],
    events: &EventSender,
) -> Result<Option<Tensor>, String> {
    weights.clear_kv_cache();
    let mut pos = 0;
    let mut logits = None;
    for chunk in ids.chunks(PREFILL_CHUNK) {
        if events.is_closed() {
            return Ok(None);
        }
        let input = Tensor::new(chunk, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(candle_err)?;
        logits = Some(weights.forward(&input, pos).map_err(candle_err)?);
        pos += chunk.len();
    }
    let logits = logits.ok_or("the prompt rendered to no tokens")?;
    Ok(Some(logits.squeeze(0).map_err(candle_err)?))
}

/// Where decoding starts and how far it may go.
struct DecodeLimits {
    pos: usize,
    max_new: usize,
    temperature: f64,
}

/// Samples up to `max_new` tokens (repeat penalty and sampling from the options),
/// emitting text as it completes UTF-8. Returns how many were generated and why it
/// stopped, or `None` when the receiver went away.
fn decode(
    shared: &Shared,
    weights: &mut Weights,
    mut logits: Tensor,
    limits: DecodeLimits,
    out: &mut Emitter<'_>,
    events: &EventSender,
) -> Result<Option<(usize, FinishReason)>, String> {
    let seed = shared.options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let mut sampler = LogitsProcessor::from_sampling(seed, sampling(limits.temperature));
    let mut generated: Vec<u32> = Vec::new();
    let penalty = shared.options.repeat_penalty;
    let mut pos = limits.pos;
    while generated.len() < limits.max_new {
        let scored = if penalty != 1.0 && !generated.is_empty() {
            let recent = &generated[generated.len().saturating_sub(shared.options.repeat_last_n)..];
            candle_transformers::utils::apply_repeat_penalty(&logits, penalty, recent)
                .map_err(candle_err)?
        } else {
            logits
        };
        let next = sampler.sample(&scored).map_err(candle_err)?;
        if shared.tokenizer.is_stop(next) {
            return Ok(Some((generated.len(), FinishReason::Stop)));
        }
        generated.push(next);
        shared
            .counters
            .tokens_generated
            .fetch_add(1, Ordering::Relaxed);
        if !out.token(shared.tokenizer.bytes_of(next)) || events.is_closed() {
            return Ok(None);
        }
        if generated.len() >= limits.max_new {
            break;
        }
        let input = Tensor::new(&[next], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(candle_err)?;
        logits = weights
            .forward(&input, pos)
            .map_err(candle_err)?
            .squeeze(0)
            .map_err(candle_err)?;
        pos += 1;
    }
    Ok(Some((generated.len(), FinishReason::Length)))
}

/// Turns generated bytes into events: text as it completes UTF-8, or tool calls
/// when the request offered tools.
struct Emitter<'a> {
    send: &'a dyn Fn(ModelEvent) -> bool,
    utf8: Utf8Stream,
    parser: Option<ToolCallParser>,
}

impl Emitter<'_> {
    /// False when the receiver went away.
    fn token(&mut self, bytes: &[u8]) -> bool {
        let text = self.utf8.push(bytes);
        self.emit(text)
    }

    fn emit(&mut self, text: String) -> bool {
        if text.is_empty() {
            return true;
        }
        match &mut self.parser {
            Some(parser) => parser.push(&text).into_iter().all(self.send),
            None => (self.send)(ModelEvent::TextDelta(text)),
        }
    }

    /// Flushes what is left; whether the model called tools, or `None` when the
    /// receiver went away.
    fn finish(&mut self) -> Option<bool> {
        let rest = self.utf8.finish();
        if !self.emit(rest) {
            return None;
        }
        match &mut self.parser {
            Some(parser) => {
                if !parser.finish().into_iter().all(self.send) {
                    return None;
                }
                Some(parser.called_tools())
            }
            None => Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use agentbase_core::model::{ChatMessage, ToolCall, ToolSpec};

    use super::*;

    #[test]
    fn tools_join_the_system_prompt_and_tool_turns_become_user_turns() {
        let mut assistant = ChatMessage::text(Role::Assistant, "");
        assistant.tool_calls.push(ToolCall {
            id: "call_1".to_owned(),
            name: "get_weather".to_owned(),
            arguments: r#"{"city":"Paris"}"#.to_owned(),
        });
        let mut result = ChatMessage::text(Role::Tool, "sunny");
        result.tool_call_id = Some("call_1".to_owned());
        result.tool_name = Some("get_weather".to_owned());
        let request = ChatRequest {
            upstream_model: "local".to_owned(),
            messages: vec![
                ChatMessage::text(Role::System, "Be brief."),
                ChatMessage::text(Role::User, "Weather in Paris?"),
                assistant,
                result,
            ],
            tools: vec![ToolSpec {
                name: "get_weather".to_owned(),
                description: "Weather for a city".to_owned(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            temperature: 0.0,
            max_tokens: 16,
        };

        let (system, conversation) = template_messages(&request);

        assert_eq!(system.len(), 1);
        assert!(system[0].content.starts_with("Be brief.\n\n# Tools"));
        assert!(system[0].content.contains("get_weather"));
        let roles: Vec<&str> = conversation.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert!(conversation[1].content.starts_with("<tool_call>\n{"));
        assert!(conversation[2].content.starts_with("<tool_response>"));
        assert!(conversation[2].content.contains("sunny"));
    }

    #[test]
    fn without_tools_messages_pass_through_unchanged() {
        let request = ChatRequest {
            upstream_model: "local".to_owned(),
            messages: vec![ChatMessage::text(Role::User, "Hi")],
            tools: Vec::new(),
            temperature: 0.0,
            max_tokens: 16,
        };
        let (system, conversation) = template_messages(&request);
        assert!(system.is_empty());
        assert_eq!(conversation.len(), 1);
        assert_eq!(
            (conversation[0].role, conversation[0].content.as_str()),
            ("user", "Hi")
        );
    }

    #[test]
    fn zero_temperature_means_greedy_decoding() {
        assert_eq!(sampling(0.0), Sampling::ArgMax);
        assert!(
            matches!(sampling(0.7), Sampling::TopKThenTopP { temperature, .. } if temperature == 0.7)
        );
    }
}
