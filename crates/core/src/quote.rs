//! Choosing what a quoting agent quotes: the run of sentences of the retrieved
//! knowledge that best answers the question, and whether an answer already says
//! it. Plain text in, plain text out; the answer stream is wrapped in the service
//! (`grounding.rs`), and the retrieval benchmark scores the choice offline.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Longest run of sentences [`QuotePolicy::TOP_CHUNK`] quotes, in characters.
pub const QUOTE_CHARS: usize = 400;

/// Most sentences in one run (a quote adds what its last sentence introduces).
const MAX_SENTENCES: usize = 4;

/// How a quote is chosen among the retrieved chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotePolicy {
    /// The best this many chunks (in retrieval order) may be quoted.
    pub candidates: usize,
    /// Question words weighted by rarity among the candidates' sentences (a word
    /// every sentence has says little), instead of counted alike.
    pub idf: bool,
    /// A chunk's window score is divided by `1 + rank_decay × rank` (rank 0 is the
    /// best chunk), so a lower chunk must match clearly better to be quoted.
    pub rank_decay: f32,
    /// Added to a window that holds code (a `span` or an indented line) naming
    /// something the question does not: in documentation the answer is often an
    /// identifier, a command or a value the question could not have named.
    pub code_bonus: f64,
    /// Longest run of sentences, in characters; what the run's last sentence
    /// introduces comes on top. A quote over twice this long (a single long
    /// sentence, or a long introduced block) is cut at this many characters.
    pub chars: usize,
    /// A second run, from another candidate chunk, is quoted after the first when
    /// it scores at least this share of the first's (`f64::INFINITY`: never).
    pub second: f64,
}

impl QuotePolicy {
    /// Only the best chunk, question words counted alike.
    pub const TOP_CHUNK: QuotePolicy = QuotePolicy {
        candidates: 1,
        idf: false,
        rank_decay: 0.0,
        code_bonus: 0.0,
        chars: QUOTE_CHARS,
        second: f64::INFINITY,
    };

    /// How a quoting agent chooses: the best two chunks, question words weighted by
    /// rarity, a little credit for code the question did not name, runs of
    /// sentences up to 600 characters. Chosen on the dev halves of the grounded sets
    /// with `bench/rag/run.sh grounded --quotes --split dev`: the quote held the gold
    /// fact for 51 of 75 questions, against 35 quoting the best chunk by plain word
    /// counts and 42 with runs up to 400 characters and code blocks cut into lines
    /// (bench/rag/RESULTS.md). Every policy quotes what a run's last sentence
    /// introduces with it (`Sentences::introduced`; 51 of 75 dev facts against 48
    /// with `bench/rag/run.sh eval --facts`). The other chunk's best run follows
    /// when it scores at least 0.3 of the first's: 55 of 75 dev facts against 51
    /// (`eval --facts`, the shortest of the four settings that tie on dev).
    pub const SHIPPED: QuotePolicy = QuotePolicy {
        candidates: 2,
        idf: true,
        rank_decay: 0.0,
        code_bonus: 0.5,
        chars: 600,
        second: 0.3,
    };
}

/// Words that carry no meaning of their own in a question or a passage.
const STOP: &[&str] = &[
    "the", "and", "for", "are", "with", "that", "this", "from", "you", "can", "which", "have",
    "was", "will", "when", "what", "how", "does", "did", "why", "where", "who", "your", "its",
    "into", "than", "then", "there", "these", "those", "not", "but", "all", "any", "use", "used",
    "using", "one", "also", "has", "had", "may", "should", "would", "could", "about",
];

/// The stems of `text`'s meaningful words, in order.
fn stems(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
}

/// Crude stem: the first 5 characters of longer words, so "defaults" meets
/// "default" and "buffers" meets "buffer".
fn stem(w: &str) -> String {
    if w.chars().count() > 5 {
        w.chars().take(5).collect()
    } else {
        w.to_owned()
    }
}

/// Sentences (and list items, table rows) of a Markdown chunk; a fenced code block
/// is one unit, so a run that ends in "this returns:" can hold the code after it.
/// Blockquote markers (`> `) are not part of the text: a fence inside a note is
/// still a fence, and its lines lose their markers.
fn sentences(text: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    // The open fenced block: the byte range of its lines so far, and whether it is
    // inside a blockquote.
    let mut block: Option<(usize, usize, bool)> = None;
    let mut offset = 0;
    for line in text.split('\n') {
        let start = offset;
        offset += line.len() + 1;
        let bare = unquoted(line.trim_start());
        let fence = bare.starts_with("```") || bare.starts_with("~~~");
        match (&mut block, fence) {
            (None, true) => {
                let at = offset.min(text.len());
                block = Some((at, at, bare.len() < line.trim_start().len()));
            }
            (Some(open), true) => {
                out.push(block_text(text, *open));
                block = None;
            }
            (Some((_, to, _)), false) => *to = start + line.len(),
            (None, false) => line_sentences(bare, &mut out),
        }
    }
    if let Some(open) = block {
        out.push(block_text(text, open));
    }
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// `line` without its leading blockquote markers (`>` followed by a space or the
/// end of the line, repeated). `>>> x`, a Python prompt, is not a blockquote.
fn unquoted(line: &str) -> &str {
    let mut rest = line;
    while let Some(after) = rest.strip_prefix('>') {
        if after.is_empty() || after.starts_with(' ') {
            rest = after.trim_start();
        } else {
            break;
        }
    }
    rest
}

/// A fenced block's lines `text[from..to]`, trimmed; without their blockquote
/// markers when the fence was inside a blockquote.
fn block_text(text: &str, (from, to, quoted): (usize, usize, bool)) -> Cow<'_, str> {
    let lines = text[from..to].trim();
    if !quoted {
        return Cow::Borrowed(lines);
    }
    let unquoted: Vec<&str> = lines.lines().map(|l| unquoted(l.trim_start())).collect();
    Cow::Owned(unquoted.join("\n").trim().to_owned())
}

/// The sentences of one line of prose: a stop, a space, then a capital, `(` or `` ` ``.
fn line_sentences<'a>(line: &'a str, out: &mut Vec<Cow<'a, str>>) {
    let mut start = 0;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end_of_sentence = matches!(b, b'.' | b'!' | b'?')
            && bytes.get(i + 1).is_some_and(|n| *n == b' ')
            && bytes
                .get(i + 2)
                .is_some_and(|n| n.is_ascii_uppercase() || *n == b'(' || *n == b'`');
        if end_of_sentence {
            out.push(Cow::Borrowed(line[start..=i].trim()));
            start = i + 1;
        }
    }
    out.push(Cow::Borrowed(line[start..].trim()));
}

/// The stems of the code spans (between backticks) of `sentence`.
fn code_stems(sentence: &str) -> HashSet<String> {
    sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(stems)
        .collect()
}

/// A chunk split into sentences, each with its set of stems and its code's.
struct Sentences<'a> {
    text: Vec<Cow<'a, str>>,
    stems: Vec<HashSet<String>>,
    code: Vec<HashSet<String>>,
}

impl<'a> Sentences<'a> {
    fn of(chunk: &'a str) -> Self {
        let text = sentences(chunk);
        let stems = text.iter().map(|s| stems(s).collect()).collect();
        let code = text.iter().map(|s| code_stems(s)).collect();
        Sentences { text, stems, code }
    }

    /// Every run of consecutive sentences (at most `chars` characters and
    /// [`MAX_SENTENCES`]; a single longer sentence too) as `(score, start, end)`,
    /// by start then length: the score is the sum of the weights of distinct
    /// question stems the run holds, plus `code_bonus` when it holds code naming
    /// something the question does not.
    fn runs(
        &self,
        weights: &HashMap<String, f64>,
        code_bonus: f64,
        chars: usize,
    ) -> Vec<(f64, usize, usize)> {
        let mut out = Vec::new();
        for start in 0..self.text.len() {
            let mut len = 0;
            let mut held: HashSet<&str> = HashSet::new();
            let mut new_code = false;
            for end in start..self.text.len().min(start + MAX_SENTENCES) {
                len += self.text[end].len() + 1;
                if len > chars && end > start {
                    break;
                }
                held.extend(
                    self.stems[end]
                        .iter()
                        .filter(|s| weights.contains_key(*s))
                        .map(String::as_str),
                );
                new_code |= self.code[end].iter().any(|s| !weights.contains_key(s));
                let score: f64 = held.iter().map(|s| weights[*s]).sum::<f64>()
                    + if new_code { code_bonus } else { 0.0 };
                out.push((score, start, end));
            }
        }
        out
    }

    /// Where a quote of the run ending at unit `end` ends. A sentence that
    /// introduces what follows (it ends in `:`, "the defaults are:") is quoted with
    /// the unit it introduces (a code block, list item or table row, after a short
    /// caption line such as "Filename: Cargo.toml" or "Table 3-1: Integer Types"),
    /// whether it ends the run or comes right after it: the answer is often that
    /// unit, and the words that choose the run are in the sentence before it.
    fn introduced(&self, end: usize) -> usize {
        let units = &self.text;
        let introduces = |i: usize| i + 1 < units.len() && units[i].ends_with(':');
        let end = if !introduces(end) && introduces(end + 1) {
            end + 1
        } else {
            end
        };
        if !introduces(end) {
            return end;
        }
        let next = &units[end + 1];
        let caption = next.len() < 60 && next.contains(": ") && !next.contains('\n');
        if caption && end + 2 < units.len() {
            end + 2
        } else {
            end + 1
        }
    }

    /// The run's sentences on one line (a code block's lines and indentation become
    /// single spaces), cut at `chars` when a single long unit runs past twice that.
    fn join(&self, start: usize, end: usize, chars: usize) -> String {
        let words: Vec<&str> = self.text[start..=end]
            .iter()
            .flat_map(|s| s.split_whitespace())
            .collect();
        let quote = words.join(" ");
        if quote.len() > chars * 2 {
            let cut: String = quote.chars().take(chars).collect();
            return format!("{cut}…");
        }
        quote
    }
}

/// The question's distinct stems, each with its weight: 1, or with `idf` the
/// rarity of the stem among `chunks`' sentences, `ln(1 + n / (1 + df))`.
fn question_weights(question: &str, chunks: &[Sentences<'_>], idf: bool) -> HashMap<String, f64> {
    let asked: HashSet<String> = stems(question).collect();
    let n: usize = chunks.iter().map(|c| c.text.len()).sum();
    asked
        .into_iter()
        .map(|s| {
            let w = if idf {
                let df = chunks
                    .iter()
                    .flat_map(|c| &c.stems)
                    .filter(|set| set.contains(&s))
                    .count();
                (1.0 + n as f64 / (1.0 + df as f64)).ln()
            } else {
                1.0
            };
            (s, w)
        })
        .collect()
}

/// A run of sentences a quote may be: which chunk it is from (its rank among the
/// retrieved, 0 the best), its text on one line, and its score by question words
/// (after the policy's rank decay).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub rank: usize,
    pub text: String,
    pub score: f64,
}

/// Every run of sentences the policy may quote from `chunks` (the retrieved
/// knowledge, best first) to answer `question`, in order of chunk, start and length.
pub fn runs(question: &str, chunks: &[&str], policy: QuotePolicy) -> Vec<Run> {
    let candidates: Vec<Sentences<'_>> = chunks
        .iter()
        .take(policy.candidates.max(1))
        .map(|c| Sentences::of(c))
        .collect();
    let weights = question_weights(question, &candidates, policy.idf);
    let mut out = Vec::new();
    for (rank, c) in candidates.iter().enumerate() {
        let decay = 1.0 + f64::from(policy.rank_decay) * rank as f64;
        for (score, start, end) in c.runs(&weights, policy.code_bonus, policy.chars) {
            out.push(Run {
                rank,
                text: c.join(start, c.introduced(end), policy.chars),
                score: score / decay,
            });
        }
    }
    out
}

/// The first of `runs` with the highest `score(run)` (so ties go to the earlier
/// chunk, then the earlier, shorter run).
pub fn best_run(runs: Vec<Run>, score: impl Fn(usize, &Run) -> f64) -> Option<Run> {
    let mut best: Option<(f64, Run)> = None;
    for (i, run) in runs.into_iter().enumerate() {
        let s = score(i, &run);
        if best.as_ref().is_none_or(|b| s > b.0 + 1e-9) {
            best = Some((s, run));
        }
    }
    best.map(|b| b.1)
}

/// What to quote from `chunks` (the retrieved knowledge, best first) to answer
/// `question`: the index of a chunk and its best run of sentences, then the best
/// run of another chunk if it scores [`QuotePolicy::second`] of the first's. Empty
/// only without chunks.
pub fn pick(question: &str, chunks: &[&str], policy: QuotePolicy) -> Vec<(usize, String)> {
    let all = runs(question, chunks, policy);
    let Some(first) = best_run(all.clone(), |_, r| r.score) else {
        return chunks
            .first()
            .map(|c| vec![(0, c.chars().take(policy.chars).collect())])
            .unwrap_or_default();
    };
    let floor = (first.score * policy.second).max(f64::MIN_POSITIVE);
    let others = all
        .into_iter()
        .filter(|r| r.rank != first.rank && r.score >= floor);
    let second = best_run(others.collect(), |_, r| r.score);
    std::iter::once(first)
        .chain(second)
        .map(|r| (r.rank, r.text))
        .collect()
}

/// The run of consecutive sentences of `text` (at most [`QUOTE_CHARS`]) that holds
/// the most distinct question words; ties go to the earlier, shorter run.
pub fn best_passage(question: &str, text: &str) -> String {
    pick(question, &[text], QuotePolicy::TOP_CHUNK)
        .into_iter()
        .next()
        .map(|(_, q)| q)
        .unwrap_or_default()
}

/// Whether `answer` already carries `passage`'s information: at least half of the
/// passage's words that the question does not contain (what it adds) appear in
/// the answer.
pub fn uses(answer: &str, passage: &str, question: &str) -> bool {
    let asked: HashSet<String> = stems(question).collect();
    let said: HashSet<String> = stems(answer).collect();
    let new: HashSet<String> = stems(passage).filter(|w| !asked.contains(w)).collect();
    if new.is_empty() {
        return true;
    }
    let found = new.iter().filter(|w| said.contains(*w)).count();
    found * 2 >= new.len()
}

/// The quote appended to an answer that does not use the passage.
pub fn quote(title: &str, number: usize, passage: &str) -> String {
    format!("\n\nFrom \u{201c}{title}\u{201d} [{number}]: \u{201c}{passage}\u{201d}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARRANTY: &str = "Our mowers are built to last. The warranty covers parts and \
labour for 17 months from the date of purchase. Replacement blades cost 12 euros each \
and ship within two days.\n\nContact support by email.";

    const SHIPPING: &str = "Orders ship from Lyon. Every mower ships within two days of \
the order. Blades ship separately.";

    #[test]
    fn the_best_passage_is_the_sentences_that_answer_the_question() {
        let p = best_passage("How long is the warranty?", WARRANTY);
        assert!(p.contains("17 months"), "{p}");
        assert!(!p.contains("Contact support"), "{p}");
        let p = best_passage("How much do replacement blades cost?", WARRANTY);
        assert!(p.contains("12 euros"), "{p}");
    }

    #[test]
    fn an_answer_that_repeats_the_facts_uses_the_passage() {
        let q = "How long is the warranty?";
        let p = best_passage(q, WARRANTY);
        assert!(uses(
            "The warranty covers parts and labour for 17 months from the date of purchase.",
            &p,
            q
        ));
        assert!(!uses("The warranty is one-year, three-month.", &p, q));
    }

    #[test]
    fn a_lower_chunk_is_quoted_when_it_answers_and_the_best_one_does_not() {
        let policy = QuotePolicy {
            candidates: 2,
            idf: true,
            rank_decay: 0.25,
            code_bonus: 0.0,
            chars: QUOTE_CHARS,
            second: f64::INFINITY,
        };
        let (rank, q) = pick("How long is the warranty?", &[SHIPPING, WARRANTY], policy).remove(0);
        assert_eq!(rank, 1, "{q}");
        assert!(q.contains("17 months"), "{q}");
        // The top chunk alone cannot answer it, and is quoted anyway.
        let (rank, _) = pick(
            "How long is the warranty?",
            &[SHIPPING, WARRANTY],
            QuotePolicy::TOP_CHUNK,
        )
        .remove(0);
        assert_eq!(rank, 0);
    }

    #[test]
    fn another_chunk_that_scores_near_the_best_is_quoted_second() {
        let q = "How long is the warranty, and what do replacement blades cost?";
        let blades = "Replacement blades cost 12 euros. They fit every model.";
        let got = pick(q, &[WARRANTY, blades], QuotePolicy::SHIPPED);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, 0);
        assert!(got[0].1.contains("17 months"), "{got:?}");
        assert_eq!(got[1], (1, "Replacement blades cost 12 euros.".to_owned()));
        // Not without the setting, nor from a chunk without the question's words,
        // nor from a third chunk past the candidates.
        let once = QuotePolicy {
            second: f64::INFINITY,
            ..QuotePolicy::SHIPPED
        };
        assert_eq!(pick(q, &[WARRANTY, blades], once).len(), 1);
        let unrelated = "Our offices close at noon on Fridays.";
        assert_eq!(
            pick(q, &[WARRANTY, unrelated], QuotePolicy::SHIPPED).len(),
            1
        );
        assert_eq!(
            pick(q, &[WARRANTY, unrelated, blades], QuotePolicy::SHIPPED).len(),
            1
        );
    }

    #[test]
    fn a_longer_budget_reaches_the_answer_after_a_long_sentence() {
        let text = "Specifies the maximum number of autovacuum worker processes that may be \
running at any one time, other than the launcher. This parameter can only be set at server \
start, in the postgresql.conf file or on the server command line; changing it later needs a \
restart of the whole server, and every connected session is closed when that happens, so \
plan the change for a quiet hour and tell your users beforehand. The default is three.\n\n\
See also the naptime setting.";
        let q = "How many autovacuum worker processes may be running by default?";
        let with = |chars| {
            let policy = QuotePolicy {
                chars,
                ..QuotePolicy::TOP_CHUNK
            };
            pick(q, &[text], policy).remove(0).1
        };
        let short = with(400);
        assert!(!short.contains("three"), "{short}");
        let long = with(600);
        assert!(long.contains("The default is three."), "{long}");
        assert!(!long.contains("naptime"), "{long}");
        assert!(long.len() <= 600);
    }

    #[test]
    fn a_fenced_code_block_is_quoted_whole_after_the_sentence_that_introduces_it() {
        let text = "Cargo has two main profiles, `dev` and `release`.\n\n\
The default settings for the `release` profile are:\n\n\
```toml\n[profile.release]\nopt-level = 3\ndebug = false\n```\n\n\
Profiles can be overridden in the manifest.";
        let q = "What opt-level does the release profile use by default?";
        let (_, quote) = pick(q, &[text], QuotePolicy::TOP_CHUNK).remove(0);
        assert!(
            quote.contains("are: [profile.release] opt-level = 3 debug = false"),
            "{quote}"
        );
        assert!(!quote.contains("```"), "{quote}");
        // An unclosed block runs to the end of the chunk; an empty one is skipped.
        let units = sentences("Run this:\n```\n```\nThen:\n```sh\ncargo build\n  --release");
        assert_eq!(units, ["Run this:", "Then:", "cargo build\n  --release"]);
    }

    #[test]
    fn a_fence_inside_a_blockquote_is_one_unit_without_its_markers() {
        let note = "> Note: tests need an attribute:\n>\n> ```rust\n> #[test]\n> fn \
works() {}\n> ```\n>\n> Run them with `cargo test`.";
        let units = sentences(note);
        assert_eq!(
            units,
            [
                "Note: tests need an attribute:",
                "#[test]\nfn works() {}",
                "Run them with `cargo test`."
            ]
        );
        // A Python prompt is not a blockquote, inside a fence or out.
        let prompt = ">>> len('abc')\n3\n```\n>>> x = 1\n```";
        assert_eq!(sentences(prompt), [">>> len('abc')", "3", ">>> x = 1"]);
        let (_, quote) = pick(
            "Which attribute marks a test function?",
            &[note],
            QuotePolicy::SHIPPED,
        )
        .remove(0);
        assert!(quote.contains("#[test] fn works() {}"), "{quote}");
        assert!(!quote.contains('>'), "{quote}");
    }

    #[test]
    fn a_sentence_that_introduces_a_block_is_quoted_with_it() {
        // The run that names the question's words ends in a colon: the block it
        // introduces comes with it, past a caption line.
        let text = "Profiles set the optimisation level. Here are the default \
values of the `opt-level` setting for the `dev` and `release` profiles:\n\n\
Filename: Cargo.toml\n\n```toml\n[profile.release]\nopt-level = 3\n```";
        let q = "What opt-level does the release profile use by default?";
        let (_, quote) = pick(q, &[text], QuotePolicy::SHIPPED).remove(0);
        assert!(
            quote.ends_with("Filename: Cargo.toml [profile.release] opt-level = 3"),
            "{quote}"
        );
        // The sentence after the run introduces the example: both come with it.
        let text = "Tests run in parallel by default. To run them one at a time, \
send the `--test-threads` flag to the test binary. For example:\n\n\
```console\n$ cargo test -- --test-threads=1\n```\n\nThat is slower.";
        let q = "How do I run tests one at a time?";
        let (_, quote) = pick(q, &[text], QuotePolicy::SHIPPED).remove(0);
        assert!(
            quote.ends_with("For example: $ cargo test -- --test-threads=1"),
            "{quote}"
        );
        // A colon at the end of the chunk has nothing to bring.
        let units = Sentences::of("One. The values are:");
        assert_eq!(units.introduced(0), 0);
        assert_eq!(units.introduced(1), 1);
    }

    #[test]
    fn rare_question_words_weigh_more_than_common_ones() {
        let chunks = [Sentences::of(
            "Blades ship fast. Mowers ship in boxes. We ship from Lyon.",
        )];
        let w = question_weights("Do mowers ship from Lyon?", &chunks, true);
        // "ship" is in all three sentences, "lyon" and "mower" in one each.
        assert!(w["lyon"] > w["ship"], "{w:?}");
        assert_eq!(w["lyon"], w["mower"]);
        let w = question_weights("Do mowers ship from Lyon?", &chunks, false);
        assert_eq!(w["lyon"], w["ship"]);
    }

    #[test]
    fn runs_list_every_run_of_each_candidate_and_best_run_takes_the_first_best() {
        let policy = QuotePolicy {
            candidates: 2,
            ..QuotePolicy::SHIPPED
        };
        let all = runs("How long is the warranty?", &[SHIPPING, WARRANTY], policy);
        // SHIPPING has 3 sentences (6 runs of 1-3), WARRANTY 4 (10 runs of 1-4).
        assert_eq!(all.iter().filter(|r| r.rank == 0).count(), 6);
        assert_eq!(all.iter().filter(|r| r.rank == 1).count(), 10);
        assert_eq!(all[0].text, "Orders ship from Lyon.");
        // By word score, as `pick` chooses: the warranty sentence.
        let best = best_run(all.clone(), |_, r| r.score).unwrap();
        assert_eq!(
            pick("How long is the warranty?", &[SHIPPING, WARRANTY], policy)[0],
            (best.rank, best.text.clone())
        );
        assert!(best.text.contains("17 months"), "{best:?}");
        // Equal scores: the first run wins.
        assert_eq!(best_run(all.clone(), |_, _| 1.0), all.first().cloned());
        assert_eq!(best_run(Vec::new(), |_, r| r.score), None);
    }

    #[test]
    fn empty_knowledge_quotes_nothing_and_text_without_sentences_is_cut() {
        assert!(pick("anything?", &[], QuotePolicy::TOP_CHUNK).is_empty());
        let (_, q) = pick("anything?", &["—"], QuotePolicy::TOP_CHUNK).remove(0);
        assert_eq!(q, "—");
    }
}
