//! The BM25 half of the index: a tantivy index in `<snapshot>/tantivy` with two text
//! fields (`head`: title and heading path; `body`: chunk text) and a fast `ord` field
//! mapping tantivy's doc addresses back to the snapshot's document order.
//!
//! User text never goes through tantivy's query grammar: it is run through the same
//! analyzer as the documents and each distinct term becomes a `Should` clause, so
//! quotes, colons, parentheses or a lone `-` cannot make a query fail.

use std::collections::HashSet;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::Error;

const STEMMED: &str = "agentbase_en_stem";
const PLAIN: &str = "agentbase_en";
/// Distinct query terms beyond this are ignored, bounding the cost of a pasted essay.
const MAX_QUERY_TERMS: usize = 64;
/// Indexing memory per writer thread.
const WRITER_BUDGET: usize = 64 << 20;

fn analyzer(stem: bool) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    if stem {
        builder.filter(Stemmer::new(Language::English)).build()
    } else {
        builder.build()
    }
}

fn register(index: &tantivy::Index) {
    index.tokenizers().register(STEMMED, analyzer(true));
    index.tokenizers().register(PLAIN, analyzer(false));
}

/// One document as the lexical index sees it.
pub(crate) struct LexicalDoc<'a> {
    pub ord: u64,
    pub head: String,
    pub body: &'a str,
}

pub(crate) fn build<'a>(
    dir: &Path,
    stem: bool,
    docs: impl Iterator<Item = LexicalDoc<'a>>,
) -> Result<(), Error> {
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(if stem { STEMMED } else { PLAIN })
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let mut schema = Schema::builder();
    let head = schema.add_text_field("head", text.clone());
    let body = schema.add_text_field("body", text);
    let ord = schema.add_u64_field("ord", NumericOptions::default().set_fast());
    let index = tantivy::Index::create_in_dir(dir, schema.build())?;
    register(&index);
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1)
        .min(2);
    let mut writer =
        index.writer_with_num_threads::<TantivyDocument>(threads, threads * WRITER_BUDGET)?;
    for d in docs {
        let mut doc = TantivyDocument::new();
        doc.add_text(head, &d.head);
        doc.add_text(body, d.body);
        doc.add_u64(ord, d.ord);
        writer.add_document(doc)?;
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}

pub(crate) struct Lexical {
    _reader: IndexReader,
    searcher: Searcher,
    head: Field,
    body: Field,
    analyzer: TextAnalyzer,
    /// Per segment, tantivy doc id → snapshot document order.
    ords: Vec<Column<u64>>,
    heading_boost: f32,
    disk_bytes: u64,
}

impl Lexical {
    pub(crate) fn open(dir: &Path, heading_boost: f32) -> Result<Lexical, Error> {
        let corrupt = |e: tantivy::TantivyError| Error::corrupt(dir, e.to_string());
        let index = tantivy::Index::open_in_dir(dir).map_err(corrupt)?;
        register(&index);
        let schema = index.schema();
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| Error::corrupt(dir, format!("tantivy schema lacks `{name}`")))
        };
        let (head, body) = (field("head")?, field("body")?);
        field("ord")?;
        let analyzer = index.tokenizer_for_field(body).map_err(corrupt)?;
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
            head,
            body,
            analyzer,
            ords,
            heading_boost,
            disk_bytes,
        })
    }

    pub(crate) fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }

    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The analyzed, de-duplicated terms of `text`, in first-seen order.
    pub(crate) fn terms(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        while stream.advance() {
            let t = &stream.token().text;
            if seen.insert(t.clone()) {
                terms.push(t.clone());
                if terms.len() == MAX_QUERY_TERMS {
                    break;
                }
            }
        }
        terms
    }

    /// The top `k` documents by BM25 as `(snapshot order, score)`, best first.
    pub(crate) fn search(&self, text: &str, k: usize) -> Result<Vec<(u32, f32)>, Error> {
        let terms = self.terms(text);
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 2);
        for t in &terms {
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.body, t),
                    IndexRecordOption::WithFreqs,
                )),
            ));
            if self.heading_boost > 0.0 {
                let q = TermQuery::new(
                    Term::from_field_text(self.head, t),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(q), self.heading_boost)),
                ));
            }
        }
        let query = BooleanQuery::new(clauses);
        let top = self
            .searcher
            .search(&query, &TopDocs::with_limit(k).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let ord = self
                .ords
                .get(addr.segment_ord as usize)
                .and_then(|c| c.first(addr.doc_id))
                .ok_or_else(|| {
                    Error::Lexical(tantivy::TantivyError::InternalError(
                        "document without an ord".to_owned(),
                    ))
                })?;
            out.push((ord as u32, score));
        }
        Ok(out)
    }
}
