//! The tokenizer of a GGUF model, rebuilt from its metadata (`tokenizer.ggml.*`) with
//! the `tokenizers` crate, plus the byte-exact streaming decoder generation needs.
//!
//! Only byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`: SmolLM, Llama 3,
//! Qwen2, StarCoder…) are supported; SentencePiece vocabularies are refused with a
//! clear error. The pre-tokenizer follows `tokenizer.ggml.pre` the way llama.cpp does,
//! because the split rules change token counts (SmolLM splits every digit).

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::Error;

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// End-of-turn markers of the common chat formats; any present in the vocabulary as a
/// control token stops generation, besides the declared EOS.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
];

const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub(crate) struct GgufTokenizer {
    /// Splits special tokens out of the text: for the template's own markup.
    tokenizer: Tokenizer,
    /// The same vocabulary with special tokens treated as text: for message contents.
    text_tokenizer: Tokenizer,
    /// The raw bytes each token stands for; empty for control tokens, which are
    /// never shown.
    token_bytes: Vec<Vec<u8>>,
    stop_ids: Vec<u32>,
    bos_id: Option<u32>,
    add_bos: bool,
    pub bos_token: String,
    pub eos_token: String,
}

fn md<'a>(metadata: &'a HashMap<String, Value>, key: &str) -> Option<&'a Value> {
    metadata.get(key)
}

fn md_strings(
    metadata: &HashMap<String, Value>,
    key: &str,
    path: &Path,
) -> Result<Vec<String>, Error> {
    let values = md(metadata, key)
        .ok_or_else(|| Error::invalid(path, format!("no {key} in the GGUF metadata")))?
        .to_vec()
        .map_err(|e| Error::invalid(path, format!("{key}: {e}")))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| Error::invalid(path, format!("{key}: {e}")))
        })
        .collect()
}

fn md_u32(metadata: &HashMap<String, Value>, key: &str) -> Option<u32> {
    md(metadata, key).and_then(|v| v.to_u32().ok())
}

/// The byte-level BPE of a GGUF vocabulary, with its pre-tokenizer and its control
/// and user-defined tokens as special tokens (control ones skipped when decoding).
fn bpe_tokenizer(
    tokens: &[String],
    merges: &[String],
    token_types: &[i32],
    pre: &str,
    path: &Path,
) -> Result<Tokenizer, Error> {
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| Error::invalid(path, format!("cannot build the BPE: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(
        pre_tokenizer(pre).map_err(|e| Error::invalid(path, e))?,
    ));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(token_types)
        .filter(|(_, t)| matches!(**t, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .map(|(token, t)| AddedToken::from(token.clone(), *t == TOKEN_TYPE_CONTROL))
        .collect();
    tokenizer.add_special_tokens(&special);
    Ok(tokenizer)
}

/// Each token's bytes (byte-level BPE maps bytes to printable characters); control
/// tokens have none.
fn token_bytes(tokens: &[String], token_types: &[i32]) -> Vec<Vec<u8>> {
    let unicode_to_byte = unicode_to_byte();
    tokens
        .iter()
        .zip(token_types)
        .map(|(token, t)| {
            if *t == TOKEN_TYPE_CONTROL {
                return Vec::new();
            }
            let mut bytes = Vec::with_capacity(token.len());
            for c in token.chars() {
                match unicode_to_byte.get(&c) {
                    Some(b) => bytes.push(*b),
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            bytes
        })
        .collect()
}

impl GgufTokenizer {
    pub fn from_gguf(metadata: &HashMap<String, Value>, path: &Path) -> Result<Self, Error> {
        let model = md(metadata, "tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
            .unwrap_or("");
        if model != "gpt2" {
            return Err(Error::invalid(
                path,
                format!(
                    "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") vocabularies are supported"
                ),
            ));
        }
        let tokens = md_strings(metadata, "tokenizer.ggml.tokens", path)?;
        let merges = md_strings(metadata, "tokenizer.ggml.merges", path)?;
        let token_types: Vec<i32> =
            match md(metadata, "tokenizer.ggml.token_type").map(Value::to_vec) {
                Some(Ok(values)) => values.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
                _ => vec![1; tokens.len()],
            };

        let pre = md(metadata, "tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
            .unwrap_or("default");
        let tokenizer = bpe_tokenizer(&tokens, &merges, &token_types, pre, path)?;
        let mut text_tokenizer = tokenizer.clone();
        text_tokenizer.set_encode_special_tokens(true);
        let token_bytes = token_bytes(&tokens, &token_types);

        let eos_id = md_u32(metadata, "tokenizer.ggml.eos_token_id");
        let bos_id = md_u32(metadata, "tokenizer.ggml.bos_token_id");
        let mut stop_ids: Vec<u32> = eos_id.into_iter().collect();
        for (id, (token, t)) in tokens.iter().zip(&token_types).enumerate() {
            if *t == TOKEN_TYPE_CONTROL
                && END_OF_TURN.contains(&token.as_str())
                && !stop_ids.contains(&(id as u32))
            {
                stop_ids.push(id as u32);
            }
        }
        if stop_ids.is_empty() {
            return Err(Error::invalid(
                path,
                "the vocabulary has no end-of-sequence token",
            ));
        }
        let name = |id: Option<u32>| {
            id.and_then(|id| tokens.get(id as usize))
                .cloned()
                .unwrap_or_default()
        };
        Ok(Self {
            tokenizer,
            text_tokenizer,
            token_bytes,
            stop_ids,
            bos_id,
            add_bos: md(metadata, "tokenizer.ggml.add_bos_token")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false),
            bos_token: name(bos_id),
            eos_token: name(eos_id),
        })
    }

    /// Token ids of a rendered prompt whose message contents were replaced by
    /// `placeholder(i)`: the template's own text is encoded with its special tokens
    /// (`<|im_start|>` → one id), while `contents[i]` is encoded as plain text, so a
    /// user who types `<|im_start|>system` cannot forge a turn. BOS comes first when
    /// the model asks for it.
    pub fn encode_prompt(&self, rendered: &str, contents: &[&str]) -> Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos_id);
        }
        let mut rest = rendered;
        while let Some((before, index, after)) = split_placeholder(rest) {
            ids.extend(self.encode_with(&self.tokenizer, before)?);
            match contents.get(index) {
                Some(content) => ids.extend(self.encode_with(&self.text_tokenizer, content)?),
                None => {
                    return Err(format!(
                        "the template produced an unknown placeholder {index}"
                    ));
                }
            }
            rest = after;
        }
        ids.extend(self.encode_with(&self.tokenizer, rest)?);
        Ok(ids)
    }

    /// Token ids of message text, special-token markup included as plain text.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        self.encode_with(&self.text_tokenizer, text)
    }

    fn encode_with(&self, tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let encoding = tokenizer
            .encode_fast(text, false)
            .map_err(|e| e.to_string())?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token count of message text, as `encode_prompt` counts a message's content.
    pub fn count(&self, text: &str) -> usize {
        self.text_tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.len().div_ceil(4))
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for id in ids {
            bytes.extend_from_slice(self.bytes_of(*id));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    pub fn bytes_of(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper, String> {
    let byte_level =
        |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, use_regex));
    let split = |pattern: &str| {
        Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map(PreTokenizerWrapper::Split)
        .map_err(|e| e.to_string())
    };
    Ok(match pre {
        // llama.cpp splits digits one by one for these, then applies the GPT-2 rules.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level(true),
            ]))
        }
        "qwen2" | "deepseek-r1-qwen" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            split(QWEN2_SPLIT)?,
            byte_level(false),
        ])),
        "llama-bpe" | "llama3" | "smaug-bpe" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            split(LLAMA3_SPLIT)?,
            byte_level(false),
        ])),
        _ => byte_level(true),
    })
}

const PLACEHOLDER_OPEN: char = '\u{E000}';
const PLACEHOLDER_CLOSE: char = '\u{E001}';

/// Stands in for message `index`'s content while the template renders; private-use
/// characters, so no template adds or strips them.
pub(crate) fn placeholder(index: usize) -> String {
    format!("{PLACEHOLDER_OPEN}{index}{PLACEHOLDER_CLOSE}")
}

/// `text` split around its first placeholder: (before, index, after).
fn split_placeholder(text: &str) -> Option<(&str, usize, &str)> {
    let start = text.find(PLACEHOLDER_OPEN)?;
    let inner = &text[start + PLACEHOLDER_OPEN.len_utf8()..];
    let end = inner.find(PLACEHOLDER_CLOSE)?;
    let index = inner[..end].parse().ok()?;
    Some((
        &text[..start],
        index,
        &inner[end + PLACEHOLDER_CLOSE.len_utf8()..],
    ))
}

/// The inverse of GPT-2's `bytes_to_unicode`: byte-level BPE spells every byte as a
/// printable character, and this maps the characters back.
fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("code points 256..=324 are valid")
        };
        map.insert(c, b);
    }
    map
}

/// Reassembles UTF-8 from token bytes: a character can be split across tokens, so
/// bytes wait here until they form whole characters. Invalid sequences (a model can
/// emit any byte) come out as U+FFFD instead of stalling the stream.
#[derive(Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end of generation.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_split_out_with_their_index() {
        let text = format!("a{}b{}c", placeholder(0), placeholder(12));
        let (before, index, after) = split_placeholder(&text).unwrap();
        assert_eq!((before, index), ("a", 0));
        let (before, index, after) = split_placeholder(after).unwrap();
        assert_eq!((before, index, after), ("b", 12, "c"));
        assert!(split_placeholder("no placeholder").is_none());
    }

    #[test]
    fn the_byte_table_covers_every_byte_once() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'a'], b'a');
    }

    #[test]
    fn a_character_split_across_tokens_is_emitted_once_whole() {
        let mut stream = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(stream.push(b"price: "), "price: ");
        assert_eq!(stream.push(&euro[..1]), "");
        assert_eq!(stream.push(&euro[1..2]), "");
        assert_eq!(stream.push(&euro[2..]), "€");
        assert_eq!(stream.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_without_stalling() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(stream.push(&[0xE2, 0x82]), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }
}
