//! The BM25 half of the index: a tantivy index in `<snapshot>/tantivy` with three
//! text fields per language present in the snapshot (`title_<code>`: the page title,
//! `head_<code>`: the heading path, `body_<code>`: chunk text), each analyzed with
//! that language's Snowball stemmer, and a fast `ord` field mapping tantivy's doc
//! addresses back to the snapshot's document order.
//!
//! A document goes into the fields of its own language (detected per page, see
//! `lang.rs`), so a German page is stemmed as German and its term statistics are
//! not diluted by English pages. A query is analyzed once per language present and
//! searched in each language's fields.
//!
//! User text never goes through tantivy's query grammar: it is run through the same
//! analyzer as the documents and each distinct term becomes a `Should` clause, so
//! quotes, colons, parentheses or a lone `-` cannot make a query fail.

use std::collections::HashSet;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, Occur, Query, Scorer, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer};
use tantivy::{DocAddress, DocSet, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::Error;
use crate::lang::Lang;

/// The smallest collection [`Lexical::coverage`] takes word rarity from: a few
/// documents say little about which words are rare, so below this count every
/// word weighs about the same. The bench/rag corpora (7,000 chunks and more) are
/// above it.
const COVERAGE_MIN_DOCS: f32 = 1000.0;

/// Distinct query terms beyond this are ignored, bounding the cost of a pasted essay.
const MAX_QUERY_TERMS: usize = 64;
/// Extra BM25 hits fetched past the `k` asked for, so that ties and near-ties at
/// the cut are settled by the re-scored sums and snapshot order rather than by
/// tantivy's segment layout.
const TIE_SLACK: usize = 16;

/// Indexing memory per writer thread.
const WRITER_BUDGET: usize = 64 << 20;
/// The analyzer key of an unstemmed snapshot (`BuildOptions::stemming` off).
pub(crate) const PLAIN: &str = "plain";

fn analyzer(key: &str) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match Lang::from_code(key) {
        Some(lang) => builder.filter(Stemmer::new(lang.stemmer())).build(),
        None => builder.build(),
    }
}

/// An internal failure of the lexical half (never the caller's input).
pub(crate) fn internal(what: &str) -> Error {
    Error::Lexical(tantivy::TantivyError::InternalError(what.to_owned()))
}

fn analyzer_name(key: &str) -> String {
    format!("agentbase_{key}")
}

fn register(index: &tantivy::Index, keys: &[String]) {
    for k in keys {
        index.tokenizers().register(&analyzer_name(k), analyzer(k));
    }
}

/// How BM25 scores a query: how much a term matching each field counts (the body
/// counts 1), and whether the query's function words are dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldWeights {
    /// The page title.
    pub title: f32,
    /// The heading path of the chunk.
    pub heading: f32,
    /// Drop the language's function words ("how", "do", "the") from the query
    /// (never from documents) unless nothing else is left.
    pub drop_stopwords: bool,
}

impl FieldWeights {
    pub(crate) fn valid(&self) -> bool {
        [self.title, self.heading]
            .iter()
            .all(|w| w.is_finite() && *w >= 0.0)
    }
}

/// One document as the lexical index sees it.
pub(crate) struct LexicalDoc<'a> {
    pub ord: u64,
    /// Analyzer key: a language code, or [`PLAIN`].
    pub key: &'a str,
    pub title: &'a str,
    pub head: &'a str,
    pub body: &'a str,
}

/// The three fields of one analyzer key.
#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    head: Field,
    body: Field,
}

fn fields_of(schema: &Schema, key: &str) -> Option<Fields> {
    Some(Fields {
        title: schema.get_field(&format!("title_{key}")).ok()?,
        head: schema.get_field(&format!("head_{key}")).ok()?,
        body: schema.get_field(&format!("body_{key}")).ok()?,
    })
}

/// Writes the index for `docs`; `keys` lists every analyzer key the docs use.
pub(crate) fn build<'a>(
    dir: &Path,
    keys: &[String],
    docs: impl Iterator<Item = LexicalDoc<'a>>,
) -> Result<(), Error> {
    let mut schema = Schema::builder();
    for k in keys {
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(&analyzer_name(k))
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        schema.add_text_field(&format!("title_{k}"), text.clone());
        schema.add_text_field(&format!("head_{k}"), text.clone());
        schema.add_text_field(&format!("body_{k}"), text);
    }
    let ord = schema.add_u64_field("ord", NumericOptions::default().set_fast());
    let schema = schema.build();
    let fields: Vec<(String, Fields)> = keys
        .iter()
        .map(|k| (k.clone(), fields_of(&schema, k).expect("just added")))
        .collect();
    let index = tantivy::Index::create_in_dir(dir, schema)?;
    register(&index, keys);
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1)
        .min(2);
    let mut writer =
        index.writer_with_num_threads::<TantivyDocument>(threads, threads * WRITER_BUDGET)?;
    for d in docs {
        let f = fields
            .iter()
            .find(|(k, _)| k == d.key)
            .map(|(_, f)| *f)
            .ok_or_else(|| Error::BadInput(format!("unknown analyzer key {}", d.key)))?;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.title, d.title);
        doc.add_text(f.head, d.head);
        doc.add_text(f.body, d.body);
        doc.add_u64(ord, d.ord);
        writer.add_document(doc)?;
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}

struct Analyzed {
    key: String,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// Function words of the language: dropped from queries (not from documents),
    /// so "how do I ..." does not pull in every page that says "how".
    stopwords: &'static [&'static str],
}

pub(crate) struct Lexical {
    _reader: IndexReader,
    searcher: Searcher,
    keys: Vec<Analyzed>,
    /// Per segment, tantivy doc id → snapshot document order.
    ords: Vec<Column<u64>>,
    disk_bytes: u64,
}

impl Lexical {
    pub(crate) fn open(dir: &Path, keys: &[String]) -> Result<Lexical, Error> {
        let corrupt = |e: tantivy::TantivyError| Error::corrupt(dir, e.to_string());
        let index = tantivy::Index::open_in_dir(dir).map_err(corrupt)?;
        register(&index, keys);
        let schema = index.schema();
        let mut analyzed = Vec::new();
        for k in keys {
            let fields = fields_of(&schema, k)
                .ok_or_else(|| Error::corrupt(dir, format!("tantivy schema lacks `{k}` fields")))?;
            analyzed.push(Analyzed {
                key: k.clone(),
                fields,
                analyzer: analyzer(k),
                stopwords: Lang::from_code(k).map_or(&[][..], |l| l.query_stopwords()),
            });
        }
        schema
            .get_field("ord")
            .map_err(|_| Error::corrupt(dir, "tantivy schema lacks `ord`"))?;
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(corrupt)?;
        let searcher = reader.searcher();
        let ords = searcher
            .segment_readers()
            .iter()
            .map(|s| s.fast_fields().u64("ord"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let mut disk_bytes = 0;
        for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
            let entry = entry.map_err(Error::io("list", dir))?;
            disk_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(Lexical {
            _reader: reader,
            searcher,
            keys: analyzed,
            ords,
            disk_bytes,
        })
    }

    pub(crate) fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }

    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The analyzed, de-duplicated terms of `text` for one analyzer, in first-seen
    /// order; function words dropped unless nothing else is left.
    fn terms_for(a: &Analyzed, text: &str, drop_stopwords: bool) -> Vec<String> {
        let mut analyzer = a.analyzer.clone();
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        let mut dropped = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let token = stream.token();
            if !seen.insert(token.text.clone()) {
                continue;
            }
            let raw = text
                .get(token.offset_from..token.offset_to)
                .unwrap_or_default()
                .to_lowercase();
            if drop_stopwords && a.stopwords.contains(&raw.as_str()) {
                dropped.push(token.text.clone());
            } else {
                terms.push(token.text.clone());
            }
            if terms.len() == MAX_QUERY_TERMS {
                break;
            }
        }
        if terms.is_empty() {
            dropped.truncate(MAX_QUERY_TERMS);
            return dropped;
        }
        terms
    }

    /// The analyzed terms of `text` for the snapshot's first language.
    pub(crate) fn terms(&self, text: &str) -> Vec<String> {
        self.keys
            .first()
            .map(|a| Lexical::terms_for(a, text, true))
            .unwrap_or_default()
    }

    /// The top `k` documents by BM25 as `(snapshot order, score)`, best first.
    pub(crate) fn search(
        &self,
        text: &str,
        k: usize,
        weights: FieldWeights,
    ) -> Result<Vec<(u32, f32)>, Error> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for a in &self.keys {
            for t in Lexical::terms_for(a, text, weights.drop_stopwords) {
                let term = |field| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, &t),
                        IndexRecordOption::WithFreqs,
                    ))
                };
                clauses.push((Occur::Should, term(a.fields.body)));
                for (field, w) in [
                    (a.fields.title, weights.title),
                    (a.fields.head, weights.heading),
                ] {
                    if w > 0.0 {
                        clauses.push((Occur::Should, Box::new(BoostQuery::new(term(field), w))));
                    }
                }
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect());
        // The writer's threads split the documents into segments differently on
        // every build of the same snapshot, and tantivy's block-WAND adds a
        // document's term scores in an order that follows that layout, so two builds
        // differ in a score's last bits and near-ties swap. A few more than `k` are
        // fetched, each re-scored by adding its clauses' scores in query order, and
        // ordered by score then snapshot order: the same answer for every build.
        let top = self.searcher.search(
            &query,
            &TopDocs::with_limit(k.saturating_add(TIE_SLACK)).order_by_score(),
        )?;
        let mut addrs: Vec<DocAddress> = top.into_iter().map(|(_, addr)| addr).collect();
        addrs.sort_unstable();
        let scores = self.rescore(&clauses, &addrs)?;
        let mut out = Vec::with_capacity(addrs.len());
        for (addr, score) in addrs.into_iter().zip(scores) {
            let ord = self
                .ords
                .get(addr.segment_ord as usize)
                .and_then(|c| c.first(addr.doc_id))
                .ok_or_else(|| internal("document without an ord"))?;
            out.push((ord as u32, score));
        }
        out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        Ok(out)
    }

    /// The BM25 score of each of `addrs` (sorted) under the disjunction of
    /// `clauses`: every clause's score for the document, added in clause order, so
    /// the sum does not depend on doc ids or segments.
    fn rescore(
        &self,
        clauses: &[(Occur, Box<dyn Query>)],
        addrs: &[DocAddress],
    ) -> Result<Vec<f32>, Error> {
        let scoring = EnableScoring::enabled_from_searcher(&self.searcher);
        let weights = clauses
            .iter()
            .map(|(_, q)| q.weight(scoring))
            .collect::<Result<Vec<_>, _>>()?;
        let mut scores = vec![0.0f32; addrs.len()];
        for w in &weights {
            let mut at = 0;
            while let Some(first) = addrs.get(at) {
                // One scorer per clause and segment, sought forward through the
                // segment's (sorted) candidates.
                let reader = self.searcher.segment_reader(first.segment_ord);
                let mut scorer = w.scorer(reader, 1.0)?;
                while let Some(addr) = addrs.get(at).filter(|a| a.segment_ord == first.segment_ord)
                {
                    // `seek` wants a target at or past the scorer's document.
                    if scorer.doc() < addr.doc_id {
                        scorer.seek(addr.doc_id);
                    }
                    if scorer.doc() == addr.doc_id {
                        scores[at] += scorer.score();
                    }
                    at += 1;
                }
            }
        }
        Ok(scores)
    }

    /// The share of a query's terms (weighted by BM25's IDF over the body field of
    /// the document's language) that occur in `doc_text`, for the best of `queries`:
    /// 1 when the passage holds every word of one of them, near 0 when it misses the
    /// rare ones of each (a question about something the knowledge never names).
    pub(crate) fn coverage(&self, queries: &[&str], key: &str, doc_text: &str) -> f32 {
        let Some(a) = self.keys.iter().find(|a| a.key == key) else {
            return 0.0;
        };
        let mut analyzer = a.analyzer.clone();
        let mut stream = analyzer.token_stream(doc_text);
        let mut present = HashSet::new();
        while stream.advance() {
            present.insert(stream.token().text.clone());
        }
        queries
            .iter()
            .map(|q| self.covered(a, &Lexical::terms_for(a, q, true), &present))
            .fold(0.0, f32::max)
    }

    /// The IDF-weighted share of `terms` (of `a`'s body field) in `present`; 0
    /// without terms. The IDF counts at least [`COVERAGE_MIN_DOCS`] documents: in a
    /// knowledge of a few chunks every word it lacks ("long" in "How long is the
    /// warranty?") would otherwise outweigh the ones it holds several times over.
    fn covered(&self, a: &Analyzed, terms: &[String], present: &HashSet<String>) -> f32 {
        let n = (self.searcher.num_docs() as f32).max(COVERAGE_MIN_DOCS);
        let (mut total, mut found) = (0.0f32, 0.0f32);
        for t in terms {
            let df = self
                .searcher
                .doc_freq(&Term::from_field_text(a.fields.body, t))
                .unwrap_or(0) as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            total += idf;
            if present.contains(t) {
                found += idf;
            }
        }
        if total > 0.0 { found / total } else { 0.0 }
    }

    /// The analyzer keys (languages) the snapshot holds.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|a| a.key.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &str = "borrow checker lifetime trait generic closure iterator vector \
        string slice module crate macro pattern match enum struct thread channel mutex \
        reference ownership heap stack error";

    /// A small corpus where many documents share several of the query's words, with
    /// lengths and frequencies varied so that their BM25 sums need rounding.
    fn corpus() -> Vec<(String, String, String)> {
        let words: Vec<&str> = WORDS.split_whitespace().collect();
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        (0..3000)
            .map(|_| {
                let (t, h, b) = (next() % 3 + 1, next() % 4 + 1, next() % 60 + 5);
                let mut pick = |n: usize| {
                    (0..n)
                        .map(|_| words[next() % words.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                (pick(t), pick(h), pick(b))
            })
            .collect()
    }

    fn build_in(dir: &Path, docs: &[(String, String, String)], order: &[usize]) -> Lexical {
        let keys = vec!["en".to_owned()];
        build(
            dir,
            &keys,
            order.iter().map(|&i| LexicalDoc {
                ord: i as u64,
                key: "en",
                title: &docs[i].0,
                head: &docs[i].1,
                body: &docs[i].2,
            }),
        )
        .unwrap();
        Lexical::open(dir, &keys).unwrap()
    }

    /// The same documents written in another order (other tantivy doc ids, other
    /// segments) score bit for bit the same: near-ties must not swap between two
    /// builds of one knowledge base.
    #[test]
    fn scores_do_not_depend_on_the_index_layout() {
        let docs = corpus();
        let forward: Vec<usize> = (0..docs.len()).collect();
        let mut shuffled = forward.clone();
        shuffled.reverse();
        shuffled[..docs.len() / 2].sort_unstable_by_key(|i| i % 7);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (
            build_in(a.path(), &docs, &forward),
            build_in(b.path(), &docs, &shuffled),
        );
        let weights = FieldWeights {
            title: 1.5,
            heading: 0.7,
            drop_stopwords: true,
        };
        for q in [
            "borrow checker lifetime trait generic closure iterator vector",
            "thread channel mutex reference ownership heap stack error",
            "string slice module crate macro pattern match enum struct",
            "lifetime of a reference to a slice in a struct",
        ] {
            let bits = |l: &Lexical| -> Vec<(u32, u32)> {
                let hits = l.search(q, 50, weights).unwrap();
                assert_eq!(hits.len(), 50, "{q}");
                hits.into_iter().map(|(o, s)| (o, s.to_bits())).collect()
            };
            assert_eq!(bits(&a), bits(&b), "{q}");
        }
    }
}
