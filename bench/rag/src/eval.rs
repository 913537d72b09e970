//! Retrieval quality: page-level recall@5, MRR@10 and nDCG@10 per corpus and
//! split for the baselines (BM25, dense, RRF k = 60) and what agentbase ships, plus
//! the lever sweeps the shipped settings were chosen from (dev halves only).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use agentbase_search::{
    BuildOptions, CONFIDENT_RELEVANCE, ChunkOptions, DEFAULT_DEPTH, FieldWeights, Fusion, Index,
    MIN_COVERAGE, MIN_RELEVANCE, Mode, Query,
};
use anyhow::Result;

use crate::corpus::{self, Corpus, EmbedCache, Question};

/// One way of ranking pages.
#[derive(Clone, Debug)]
pub struct Method {
    pub name: String,
    pub mode: Mode,
    pub fields: FieldWeights,
    pub page_bonus: f32,
    pub candidates: usize,
    /// Pseudo-relevance feedback for the query embedding: `(k, beta)` searches once,
    /// then again with `q + beta · mean(embeddings of the k best chunks)`.
    pub feedback: Option<(usize, f32)>,
    /// A page-level dense list fused with the method's ranking by reciprocal rank
    /// (k = 20): `(signal, weight)`.
    pub page_signal: Option<(PageSignal, f64)>,
}

/// A page-level dense signal: the question's cosine with the page's title alone, or
/// with the mean of its chunks' embeddings.
#[derive(Clone, Copy, Debug)]
pub enum PageSignal {
    Title,
    Centroid,
}

/// Plain BM25 over title, headings and text with equal weights, no query tricks.
const PLAIN_FIELDS: FieldWeights = FieldWeights {
    title: 1.0,
    heading: 1.0,
    drop_stopwords: false,
};

impl Method {
    fn baseline(name: &str, mode: Mode) -> Method {
        Method {
            name: name.to_owned(),
            mode,
            fields: PLAIN_FIELDS,
            page_bonus: 0.0,
            candidates: 0,
            feedback: None,
            page_signal: None,
        }
    }

    /// What `Query::default()` does.
    pub fn shipped() -> Method {
        let q = Query::default();
        Method {
            name: "agentbase (shipped)".to_owned(),
            mode: q.mode,
            fields: q.fields,
            page_bonus: q.page_bonus,
            candidates: q.candidates,
            feedback: None,
            page_signal: None,
        }
    }

    pub fn baselines() -> Vec<Method> {
        vec![
            Method::baseline("BM25", Mode::Bm25),
            Method::baseline("dense", Mode::Dense),
            Method::baseline("RRF k=60", Mode::Hybrid(Fusion::Rrf { k: 60.0 })),
        ]
    }

    fn with(&self, name: String, f: impl FnOnce(&mut Method)) -> Method {
        let mut m = self.clone();
        m.name = name;
        f(&mut m);
        m
    }
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Metrics {
    pub recall5: f64,
    pub mrr10: f64,
    pub ndcg10: f64,
}

/// Page-level metrics for one ranking of distinct pages.
fn score(pages: &[&str], relevant: &HashSet<&str>) -> Metrics {
    let pages = &pages[..pages.len().min(10)];
    let found5 = pages
        .iter()
        .take(5)
        .filter(|p| relevant.contains(*p))
        .count();
    let mrr10 = pages
        .iter()
        .position(|p| relevant.contains(p))
        .map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
    let dcg: f64 = pages
        .iter()
        .enumerate()
        .filter(|(_, p)| relevant.contains(*p))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    Metrics {
        recall5: found5 as f64 / relevant.len() as f64,
        mrr10,
        ndcg10: if ideal > 0.0 { dcg / ideal } else { 0.0 },
    }
}

/// A corpus loaded, indexed and with its questions embedded.
pub struct Loaded {
    pub corpus: Corpus,
    pub index: Index,
    pub questions: Vec<Question>,
    pub q_vecs: Vec<Vec<f32>>,
    /// Distinct pages (source ids) in the order of their first chunk, with their
    /// titles' embeddings and their chunks' mean embedding (normalised).
    pub page_ids: Vec<String>,
    pub title_vecs: Vec<Vec<f32>>,
    pub centroids: Vec<Vec<f32>>,
    _dir: tempfile::TempDir,
}

pub struct LoadOptions<'a> {
    pub model: &'a Path,
    pub cache: &'a Path,
    pub chunk: ChunkOptions,
    pub build: BuildOptions,
}

pub async fn load(name: &str, o: &LoadOptions<'_>) -> Result<Loaded> {
    let corpus = Corpus::named(name)?;
    let questions: Vec<Question> = corpus::read_jsonl(&corpus.questions)?;
    let t = Instant::now();
    let paths = corpus.page_paths(&questions)?;
    let pages = corpus.load_pages(&paths)?;
    let prepared = corpus::prepare(&pages, &o.chunk);
    eprintln!(
        "{name}: {} pages, {} chunks (max_chars {}, overlap {}), extract+chunk {:.1}s",
        pages.len(),
        prepared.chunks.len(),
        o.chunk.max_chars,
        o.chunk.overlap_chars,
        t.elapsed().as_secs_f64()
    );
    let known: HashSet<&str> = pages.iter().map(|p| p.path.as_str()).collect();
    for q in &questions {
        for r in &q.relevant {
            if !known.contains(r.as_str()) {
                eprintln!("warning: {} names {r}, not in the corpus", q.id);
            }
        }
    }
    let embedder = corpus::load_embedder(o.model, 32).await?;
    let mut cache = EmbedCache::open(o.cache, o.model, 384)?;
    let t = Instant::now();
    let (vectors, cached) = cache.embed(&embedder, &prepared.texts).await?;
    eprintln!(
        "{name}: corpus embeddings {:.1}s{}",
        t.elapsed().as_secs_f64(),
        if cached { " (cache)" } else { "" }
    );
    let q_texts: Vec<String> = questions.iter().map(|q| q.question.clone()).collect();
    let (q_vecs, _) = cache.embed(&embedder, &q_texts).await?;
    let docs = corpus::docs_for(&corpus, &pages, &prepared, vectors);
    let dir = tempfile::tempdir()?;
    let index = Index::build_with(&dir.path().join("snap"), docs, &o.build)?;
    let (mut page_ids, mut titles, mut centroids) = (Vec::new(), Vec::new(), Vec::new());
    let mut page_of = std::collections::HashMap::new();
    for i in 0..index.len() {
        let (Some(d), Some(e)) = (index.doc(i), index.embedding(i)) else {
            continue;
        };
        let p = *page_of.entry(d.source_id.clone()).or_insert_with(|| {
            page_ids.push(d.source_id.clone());
            titles.push(d.title.clone());
            centroids.push(vec![0f32; e.len()]);
            page_ids.len() - 1
        });
        centroids[p].iter_mut().zip(e).for_each(|(c, x)| *c += x);
    }
    centroids.iter_mut().for_each(|c| normalize(c));
    let (title_vecs, _) = cache.embed(&embedder, &titles).await?;
    Ok(Loaded {
        corpus,
        index,
        questions,
        q_vecs,
        page_ids,
        title_vecs,
        centroids,
        _dir: dir,
    })
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

pub fn in_split(q: &Question, split: &str) -> bool {
    !q.offtopic && !q.relevant.is_empty() && (split == "all" || q.split.as_deref() == Some(split))
}

/// The method's ranked distinct pages for question `qi`.
pub fn rank<'a>(l: &'a Loaded, m: &Method, qi: usize) -> Result<Vec<&'a str>> {
    rank_text(l, m, qi, &l.questions[qi].question)
}

/// [`rank`] with `text` as the query's text (BM25 and its function-word handling)
/// and question `qi`'s embedding.
pub fn rank_text<'a>(l: &'a Loaded, m: &Method, qi: usize, text: &str) -> Result<Vec<&'a str>> {
    let query = |embedding: Vec<f32>, limit: usize| Query {
        text: text.to_owned(),
        embedding: Some(embedding),
        limit,
        mode: m.mode,
        candidates: m.candidates,
        fields: m.fields,
        per_page: 1,
        page_bonus: m.page_bonus,
    };
    let mut embedding = l.q_vecs[qi].clone();
    if let Some((k, beta)) = m.feedback {
        let first = l.index.search(&query(embedding.clone(), k))?;
        let n = first.len().max(1) as f32;
        for hit in &first {
            for (q, e) in embedding
                .iter_mut()
                .zip(l.index.embedding(hit.doc).unwrap_or(&[]))
            {
                *q += beta * e / n;
            }
        }
        normalize(&mut embedding);
    }
    if let Some((signal, weight)) = m.page_signal {
        return fuse_page_signal(
            l,
            &l.index.search(&query(embedding, 50))?,
            qi,
            signal,
            weight,
        );
    }
    let hits = l.index.search(&query(embedding, 10))?;
    let mut seen = HashSet::new();
    Ok(hits
        .iter()
        .filter_map(|h| l.index.doc(h.doc).map(|d| d.source_id.as_str()))
        .filter(|p| seen.insert(*p))
        .collect())
}

/// The ten best pages of `hits` (ranked) fused by reciprocal rank (k = 20) with the
/// pages ranked by `signal` (`weight` times its share).
fn fuse_page_signal<'a>(
    l: &'a Loaded,
    hits: &[agentbase_search::Hit],
    qi: usize,
    signal: PageSignal,
    weight: f64,
) -> Result<Vec<&'a str>> {
    const K: f64 = 20.0;
    let mut scores: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let mut seen = HashSet::new();
    let base = hits
        .iter()
        .filter_map(|h| l.index.doc(h.doc).map(|d| d.source_id.as_str()))
        .filter(|p| seen.insert(*p));
    for (r, p) in base.enumerate() {
        *scores.entry(p).or_default() += 1.0 / (K + r as f64);
    }
    let vecs = match signal {
        PageSignal::Title => &l.title_vecs,
        PageSignal::Centroid => &l.centroids,
    };
    let q = &l.q_vecs[qi];
    let mut sims: Vec<(f32, usize)> = vecs
        .iter()
        .enumerate()
        .map(|(p, v)| (dot(v, q), p))
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (r, &(_, p)) in sims.iter().take(50).enumerate() {
        *scores.entry(l.page_ids[p].as_str()).or_default() += weight / (K + r as f64);
    }
    let mut pages: Vec<(&str, f64)> = scores.into_iter().collect();
    pages.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    Ok(pages.into_iter().take(10).map(|(p, _)| p).collect())
}

pub fn evaluate(l: &Loaded, m: &Method, split: &str) -> Result<(Metrics, usize)> {
    evaluate_by(l, split, |qi| rank(l, m, qi))
}

/// Mean metrics (in points) over the questions of `split`, each question's pages
/// ranked by `rank_of(question index)`; and how many questions.
pub fn evaluate_by<'a>(
    l: &'a Loaded,
    split: &str,
    mut rank_of: impl FnMut(usize) -> Result<Vec<&'a str>>,
) -> Result<(Metrics, usize)> {
    let mut sum = Metrics::default();
    let mut n = 0;
    for (qi, q) in l.questions.iter().enumerate() {
        if !in_split(q, split) {
            continue;
        }
        let s = question_score(q, &rank_of(qi)?);
        sum.recall5 += s.recall5;
        sum.mrr10 += s.mrr10;
        sum.ndcg10 += s.ndcg10;
        n += 1;
    }
    let d = n.max(1) as f64 / 100.0;
    Ok((
        Metrics {
            recall5: sum.recall5 / d,
            mrr10: sum.mrr10 / d,
            ndcg10: sum.ndcg10 / d,
        },
        n,
    ))
}

/// Question `q`'s metrics (0-1) for a ranking of distinct pages.
pub fn question_score(q: &Question, pages: &[&str]) -> Metrics {
    let relevant: HashSet<&str> = q.relevant.iter().map(String::as_str).collect();
    score(pages, &relevant)
}

/// `--dump-candidates`: per question (dev and test), the shipped method's 30 best
/// chunks as JSON lines: `corpus`, `id`, `split`, `question`, `relevant` (gold
/// pages) and `candidates` (`page`, `title`, `heading`, `text`, best first).
pub fn dump_candidates(loaded: &[Loaded], path: &Path) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for l in loaded {
        for (qi, q) in l.questions.iter().enumerate() {
            if !in_split(q, "all") {
                continue;
            }
            // The pool the report's ranking fuses (`limit` 30 alone would fuse 120).
            let hits = l.index.search(&Query {
                text: q.question.clone(),
                embedding: Some(l.q_vecs[qi].clone()),
                limit: 30,
                candidates: DEFAULT_DEPTH,
                ..Query::default()
            })?;
            let candidates: Vec<serde_json::Value> = (hits.iter())
                .filter_map(|h| l.index.doc(h.doc))
                .map(|d| {
                    serde_json::json!({"page": d.source_id, "title": d.title,
                        "heading": d.heading, "text": d.text})
                })
                .collect();
            let line = serde_json::json!({"corpus": l.corpus.name, "id": q.id,
                "split": q.split, "question": q.question, "relevant": q.relevant,
                "candidates": candidates});
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The report table: baselines and shipped, per corpus, on `split`.
pub fn report(loaded: &[Loaded], split: &str) -> Result<()> {
    let mut methods = Method::baselines();
    methods.push(Method::shipped());
    for l in loaded {
        let n = l.questions.iter().filter(|q| in_split(q, split)).count();
        println!(
            "\n### {} ({} split, {} questions; {} pages, {} chunks)\n",
            l.corpus.name,
            split,
            n,
            l.index.pages(),
            l.index.len()
        );
        println!("| method | recall@5 | MRR@10 | nDCG@10 |");
        println!("| --- | ---: | ---: | ---: |");
        let mut ndcg = Vec::new();
        for m in &methods {
            let (s, _) = evaluate(l, m, split)?;
            println!(
                "| {} | {:.1} | {:.1} | {:.1} |",
                m.name, s.recall5, s.mrr10, s.ndcg10
            );
            ndcg.push(s.ndcg10);
        }
        let shipped = ndcg[3];
        let best_single = ndcg[0].max(ndcg[1]);
        println!(
            "\nshipped − RRF: {:+.1} points (target ≥ +3); shipped − best single: {:+.1} points (target ≥ +5)",
            shipped - ndcg[2],
            shipped - best_single
        );
    }
    Ok(())
}

/// One lever at a time around the shipped method, mean dev nDCG@10 over corpora.
pub fn sweep(loaded: &[Loaded], split: &str) -> Result<()> {
    let base = Method::shipped();
    let mut variants = vec![base.clone()];
    for m in Method::baselines() {
        variants.push(m);
    }
    for w in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7] {
        variants.push(base.with(format!("normalized w_dense={w}"), |m| {
            m.mode = Mode::Hybrid(Fusion::Normalized { weight_dense: w })
        }));
    }
    for k in [5.0, 10.0, 20.0, 60.0] {
        variants.push(base.with(format!("rrf k={k}"), |m| {
            m.mode = Mode::Hybrid(Fusion::Rrf { k })
        }));
    }
    for t in [0.0, 0.5, 1.0, 2.0, 3.0] {
        variants.push(base.with(format!("title weight {t}"), |m| m.fields.title = t));
    }
    for h in [0.0, 0.5, 1.0, 2.0] {
        variants.push(base.with(format!("heading weight {h}"), |m| m.fields.heading = h));
    }
    for d in [false, true] {
        variants.push(base.with(format!("drop query stopwords {d}"), |m| {
            m.fields.drop_stopwords = d
        }));
    }
    for b in [0.0, 0.05, 0.1, 0.2, 0.3, 0.5] {
        variants.push(base.with(format!("page bonus {b}"), |m| m.page_bonus = b));
    }
    for c in [30, 50, 100, 200] {
        variants.push(base.with(format!("candidates {c}"), |m| m.candidates = c));
    }
    print!("\n| variant ({split}) |");
    for l in loaded {
        print!(" {} |", l.corpus.name);
    }
    println!(" mean |");
    print!("| --- |");
    for _ in loaded {
        print!(" ---: |");
    }
    println!(" ---: |");
    for v in &variants {
        print!("| {} |", v.name);
        let mut sum = 0.0;
        for l in loaded {
            let (s, _) = evaluate(l, v, split)?;
            print!(" {:.1} |", s.ndcg10);
            sum += s.ndcg10;
        }
        println!(" {:.1} |", sum / loaded.len() as f64);
    }
    Ok(())
}

/// Pseudo-relevance feedback on the query embedding, and page-level dense lists fused
/// with the shipped ranking, around the shipped method: mean nDCG@10 of the dev
/// halves, and each corpus's test half beside (read it only for the variant chosen on
/// dev).
pub fn feedback(loaded: &[Loaded]) -> Result<()> {
    let base = Method::shipped();
    let mut variants = vec![base.clone()];
    for k in [1, 3, 5, 10] {
        for beta in [0.25, 0.5, 1.0, 2.0] {
            variants.push(base.with(format!("feedback k={k} beta={beta}"), |m| {
                m.feedback = Some((k, beta))
            }));
        }
    }
    for (name, signal) in [
        ("title", PageSignal::Title),
        ("centroid", PageSignal::Centroid),
    ] {
        for weight in [0.25, 0.5, 1.0] {
            variants.push(
                base.with(format!("page {name} list, weight {weight}"), |m| {
                    m.page_signal = Some((signal, weight))
                }),
            );
        }
    }
    dev_test_table(
        loaded,
        &variants,
        |m| &m.name,
        |l, m, split| Ok(evaluate(l, m, split)?.0.ndcg10),
    )
}

/// Prints one row per variant: nDCG@10 on each corpus's dev half, their mean, then
/// each test half (to read only for the variant chosen on dev).
pub fn dev_test_table<V>(
    loaded: &[Loaded],
    variants: &[V],
    name: impl Fn(&V) -> &str,
    mut ndcg: impl FnMut(&Loaded, &V, &str) -> Result<f64>,
) -> Result<()> {
    print!("\n| variant |");
    for l in loaded {
        print!(" {} dev |", l.corpus.name);
    }
    print!(" mean dev |");
    for l in loaded {
        print!(" {} test |", l.corpus.name);
    }
    println!();
    println!("|{}", " --- |".repeat(2 * loaded.len() + 2));
    for v in variants {
        print!("| {} |", name(v));
        let mut sum = 0.0;
        for l in loaded {
            let s = ndcg(l, v, "dev")?;
            print!(" {s:.1} |");
            sum += s;
        }
        print!(" {:.1} |", sum / loaded.len() as f64);
        for l in loaded {
            print!(" {:.1} |", ndcg(l, v, "test")?);
        }
        println!();
    }
    Ok(())
}

/// Combinations of the levers, chosen by mean nDCG@10 over the dev halves; the ten
/// best, with their mean on the test halves beside (read it only for the one chosen).
pub fn grid(loaded: &[Loaded]) -> Result<()> {
    let base = Method::shipped();
    let fusions = [
        ("norm 0.3", Fusion::Normalized { weight_dense: 0.3 }),
        ("norm 0.4", Fusion::Normalized { weight_dense: 0.4 }),
        ("norm 0.5", Fusion::Normalized { weight_dense: 0.5 }),
        ("norm 0.7", Fusion::Normalized { weight_dense: 0.7 }),
        ("rrf 5", Fusion::Rrf { k: 5.0 }),
        ("rrf 20", Fusion::Rrf { k: 20.0 }),
        ("rrf 60", Fusion::Rrf { k: 60.0 }),
    ];
    let mut rows = Vec::new();
    for (fname, fusion) in fusions {
        for title in [0.5, 1.0] {
            for heading in [0.5, 1.0] {
                for candidates in [50, 200] {
                    for bonus in [0.0, 0.05] {
                        let m = base.with(
                            format!(
                                "{fname}, title {title}, heading {heading}, candidates {candidates}, page bonus {bonus}"
                            ),
                            |m| {
                                m.mode = Mode::Hybrid(fusion);
                                m.fields.title = title;
                                m.fields.heading = heading;
                                m.candidates = candidates;
                                m.page_bonus = bonus;
                            },
                        );
                        let mut dev = Vec::new();
                        for l in loaded {
                            dev.push(evaluate(l, &m, "dev")?.0.ndcg10);
                        }
                        rows.push((dev.iter().sum::<f64>() / dev.len() as f64, dev, m));
                    }
                }
            }
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "\n{} combinations; the ten best by mean dev nDCG@10:\n",
        rows.len()
    );
    print!("| combination |");
    for l in loaded {
        print!(" {} dev |", l.corpus.name);
    }
    println!(" mean dev | mean test |");
    println!("| --- |{} ---: | ---: |", " ---: |".repeat(loaded.len()));
    for (mean, dev, m) in rows.iter().take(10) {
        let mut test = 0.0;
        for l in loaded {
            test += evaluate(l, m, "test")?.0.ndcg10;
        }
        print!("| {} |", m.name);
        for d in dev {
            print!(" {d:.1} |");
        }
        println!(" {mean:.1} | {:.1} |", test / loaded.len() as f64);
    }
    if let Some((_, _, best)) = rows.first() {
        println!("\nThe best on dev, on the test halves:");
        for l in loaded {
            let (s, n) = evaluate(l, best, "test")?;
            println!(
                "- {} ({n} questions): recall@5 {:.1}, MRR@10 {:.1}, nDCG@10 {:.1}",
                l.corpus.name, s.recall5, s.mrr10, s.ndcg10
            );
        }
    }
    Ok(())
}

/// Best-hit dense cosine and best-hit lexical coverage for answerable (dev) vs
/// unanswerable questions (the grounded sets' unanswerable ones and the off-topic
/// lines), and the accuracy of "relevant when cosine ≥ a and coverage ≥ b" over a
/// grid, for the relevance floor.
pub async fn threshold(loaded: &[Loaded], o: &LoadOptions<'_>) -> Result<()> {
    let all = best_hit_scores(loaded, o, Wrap::Plain).await?;
    print_best_hit_percentiles(loaded, &all);
    let best = best_floor(loaded.len(), &all);
    println!("\n| floor | corpus | answerable kept | unanswerable rejected |");
    println!("| --- | --- | ---: | ---: |");
    let shipped = (
        f64::from(MIN_RELEVANCE),
        f64::from(MIN_COVERAGE),
        f64::from(CONFIDENT_RELEVANCE),
    );
    for (name, (a, b, c)) in [
        (
            "cosine ≥ 0.34 (shipped before)".to_owned(),
            (0.34, 0.0, f64::INFINITY),
        ),
        (
            format!(
                "cosine ≥ {:.2} and coverage ≥ {:.2} (best on dev)",
                best.0, best.1
            ),
            (best.0, best.1, f64::INFINITY),
        ),
        (
            format!(
                "cosine ≥ {MIN_RELEVANCE:.2} and (coverage ≥ {MIN_COVERAGE:.2} or cosine ≥ \
                 {CONFIDENT_RELEVANCE:.2}) (shipped)"
            ),
            shipped,
        ),
    ] {
        print_floor(&name, loaded, &all, (a, b, c));
    }
    // The server let a question through until the twelfth session when any of its
    // five hits reached the cosine, with coverage asked of the best hit alone.
    let (a, b, c) = shipped;
    print_judged(
        "the same, the cosine asked of any of the 5 hits (the server before)",
        loaded,
        judge_with(loaded.len(), &all, |x| x.4 >= a && (x.3 >= b || x.2 >= c)),
    );
    // The cosine above which coverage is not asked: the lowest that turns away as
    // many unanswerable dev questions as coverage alone.
    println!(
        "\n| no coverage asked from cosine | corpus | answerable kept | unanswerable rejected |"
    );
    println!("| ---: | --- | ---: | ---: |");
    for c in [0.45, 0.5, 0.55, 0.6, 0.65, 0.7] {
        print_floor(&c.to_string(), loaded, &all, (best.0, best.1, c));
    }
    chatty_floor(loaded, o, &all, shipped).await
}

/// How a question is put to the floor.
#[derive(Clone, Copy, PartialEq)]
enum Wrap {
    /// As written.
    Plain,
    /// Inside a visitor's chatty message ([`chatty`]), coverage over the whole
    /// message (every sentence's words together, as before `questions_of`).
    ChattyWhole,
    /// Inside the chatty message, coverage as the server measures it.
    Chatty,
}

/// What visitors write around a question: a greeting before it, thanks or context
/// after it, one of three by the question's position.
const CHATTY: [(&str, &str); 3] = [
    (
        "Hi! We have been using this for a few weeks and like it a lot. ",
        "",
    ),
    (
        "Hello, quick question from our team while we evaluate it for a project. ",
        " Thanks a lot!",
    ),
    (
        "",
        " I looked around but could not work it out myself, any help is appreciated.",
    ),
];

fn chatty(question: &str, i: usize) -> String {
    let (before, after) = CHATTY[i % CHATTY.len()];
    let q = question.trim();
    let end = if q.ends_with(['?', '.', '!']) {
        ""
    } else {
        "."
    };
    format!("{before}{q}{end}{after}")
}

/// The floor `(a, b, c)` on the questions as written (`plain`, already scored) and
/// inside chatty messages: what a greeting does to the answerable ones kept and the
/// unanswerable ones turned away, with coverage over the whole message and over its
/// best question.
async fn chatty_floor(
    loaded: &[Loaded],
    o: &LoadOptions<'_>,
    plain: &[BestHit],
    floor: (f64, f64, f64),
) -> Result<()> {
    println!(
        "\nthe same floor, each question inside a chatty message (bench/rag/src/eval.rs CHATTY)"
    );
    println!("\n| questions | coverage of | corpus | answerable kept | unanswerable rejected |");
    println!("| --- | --- | --- | ---: | ---: |");
    print_floor("as written | the question", loaded, plain, floor);
    for (wrap, label) in [
        (Wrap::ChattyWhole, "chatty | the whole message"),
        (Wrap::Chatty, "chatty | its best question (shipped)"),
    ] {
        let all = best_hit_scores(loaded, o, wrap).await?;
        print_floor(label, loaded, &all, floor);
    }
    Ok(())
}

/// One table row per corpus: `label`, then what the floor `(a, b, c)` of
/// [`judge_floor`] keeps and turns away.
fn print_floor(label: &str, loaded: &[Loaded], all: &[BestHit], (a, b, c): (f64, f64, f64)) {
    print_judged(label, loaded, judge_floor(loaded.len(), all, a, b, c));
}

/// One table row per corpus: `label`, then what a floor kept and turned away (as
/// [`judge_with`] counts them).
fn print_judged(label: &str, loaded: &[Loaded], per: Vec<(usize, usize, usize, usize)>) {
    for (l, (k, n, r, u)) in loaded.iter().zip(per) {
        println!("| {label} | {} | {k}/{n} | {r}/{u} |", l.corpus.name);
    }
}

/// One question's best hit: (corpus, answerable, cosine, coverage, and the best
/// cosine among the five hits a chat turn gets).
type BestHit = (usize, bool, f64, f64, f64);

/// The best hit of the shipped ranking for every answerable (dev) and unanswerable
/// question of every corpus.
async fn best_hit_scores(
    loaded: &[Loaded],
    o: &LoadOptions<'_>,
    wrap: Wrap,
) -> Result<Vec<BestHit>> {
    let embedder = corpus::load_embedder(o.model, 32).await?;
    let mut cache = EmbedCache::open(o.cache, o.model, 384)?;
    let mut all: Vec<BestHit> = Vec::new();
    for (ci, l) in loaded.iter().enumerate() {
        let grounded = crate::grounded::split(corpus::read_jsonl(&l.corpus.grounded)?, "dev");
        let mut qs: Vec<(String, bool)> = l
            .questions
            .iter()
            .filter(|q| in_split(q, "dev"))
            .map(|q| (q.question.clone(), true))
            .collect();
        qs.extend(
            l.questions
                .iter()
                .filter(|q| q.offtopic)
                .map(|q| (q.question.clone(), false)),
        );
        // The dev half of the grounded set's unanswerable questions; the test half
        // is kept for the grounded answers' report.
        qs.extend(
            grounded
                .iter()
                .filter(|g| g.unanswerable)
                .map(|g| (g.question.clone(), false)),
        );
        let texts: Vec<String> = (qs.iter().enumerate())
            .map(|(i, x)| match wrap {
                Wrap::Plain => x.0.clone(),
                Wrap::Chatty | Wrap::ChattyWhole => chatty(&x.0, i),
            })
            .collect();
        let (vecs, _) = cache.embed(&embedder, &texts).await?;
        for ((text, (_, answerable)), v) in texts.iter().zip(&qs).zip(vecs) {
            let hits = l.index.search(&Query {
                text: text.clone(),
                embedding: Some(v),
                limit: 5,
                ..Query::default()
            })?;
            let any = (hits.iter())
                .map(|h| f64::from(h.dense.unwrap_or(0.0)))
                .fold(0.0, f64::max);
            // One sentence: `questions_of` leaves nothing to choose from.
            let scored = match wrap {
                Wrap::ChattyWhole => text.replace(['?', '.', '!', '\n'], " "),
                Wrap::Plain | Wrap::Chatty => text.clone(),
            };
            let (cos, cov) = hits.first().map_or((0.0, 0.0), |h| {
                (
                    h.dense.unwrap_or(0.0) as f64,
                    l.index.coverage(&scored, h.doc) as f64,
                )
            });
            all.push((ci, *answerable, cos, cov, any));
        }
    }
    Ok(all)
}

/// The table of best-hit cosine and coverage percentiles per corpus and set.
fn print_best_hit_percentiles(loaded: &[Loaded], all: &[BestHit]) {
    println!("\nbest hit of the shipped ranking: dense cosine / lexical coverage");
    println!("\n| corpus | set | n | cosine p10 | p50 | p90 | coverage p10 | p50 | p90 |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (ci, l) in loaded.iter().enumerate() {
        for (name, want) in [("answerable (dev)", true), ("unanswerable", false)] {
            let mut cos: Vec<f64> = all
                .iter()
                .filter(|x| x.0 == ci && x.1 == want)
                .map(|x| x.2)
                .collect();
            let mut cov: Vec<f64> = all
                .iter()
                .filter(|x| x.0 == ci && x.1 == want)
                .map(|x| x.3)
                .collect();
            cos.sort_by(f64::total_cmp);
            cov.sort_by(f64::total_cmp);
            println!(
                "| {} | {name} | {} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} |",
                l.corpus.name,
                cos.len(),
                crate::percentile(&cos, 0.1),
                crate::percentile(&cos, 0.5),
                crate::percentile(&cos, 0.9),
                crate::percentile(&cov, 0.1),
                crate::percentile(&cov, 0.5),
                crate::percentile(&cov, 0.9),
            );
        }
    }
}

/// Per corpus, for the floor "cosine ≥ a, and coverage ≥ b unless cosine ≥ c":
/// (answerable kept, answerable, unanswerable rejected, unanswerable).
fn judge_floor(
    corpora: usize,
    all: &[BestHit],
    a: f64,
    b: f64,
    c: f64,
) -> Vec<(usize, usize, usize, usize)> {
    judge_with(corpora, all, |x| x.2 >= a && (x.3 >= b || x.2 >= c))
}

/// Per corpus, for the floor that lets a question through when `pass` says so:
/// (answerable kept, answerable, unanswerable rejected, unanswerable).
fn judge_with(
    corpora: usize,
    all: &[BestHit],
    pass: impl Fn(&BestHit) -> bool,
) -> Vec<(usize, usize, usize, usize)> {
    let mut per = Vec::new();
    for ci in 0..corpora {
        let kept = all.iter().filter(|x| x.0 == ci && x.1 && pass(x)).count();
        let n_ans = all.iter().filter(|x| x.0 == ci && x.1).count();
        let rejected = all.iter().filter(|x| x.0 == ci && !x.1 && !pass(x)).count();
        let n_un = all.iter().filter(|x| x.0 == ci && !x.1).count();
        per.push((kept, n_ans, rejected, n_un));
    }
    per
}

/// The floor (cosine, coverage, score) of the grid with the best balanced accuracy.
fn best_floor(corpora: usize, all: &[BestHit]) -> (f64, f64, f64) {
    let mut best = (0.0, 0.0, f64::MIN);
    for ai in 20..=60 {
        for bi in 0..=10 {
            let (a, b) = (ai as f64 / 100.0, bi as f64 / 20.0);
            // Balanced: the mean of kept-answerable and rejected-unanswerable rates.
            let score: f64 = judge_floor(corpora, all, a, b, f64::INFINITY)
                .iter()
                .map(|&(k, n, r, u)| k as f64 / n.max(1) as f64 + r as f64 / u.max(1) as f64)
                .sum();
            if score > best.2 + 1e-9 {
                best = (a, b, score);
            }
        }
    }
    best
}

/// How the five chunks of a chat turn are spread over pages, for `--facts`.
#[derive(Clone, Copy)]
enum Spread {
    /// The index's grouping: each page's best chunk first, up to `n` per page.
    RoundRobin(usize),
    /// Plain chunk order, at most `n` chunks of one page.
    Capped(usize),
}

/// `--facts`: for the grounded sets' answerable questions (dev and test halves, as
/// `grounded --split` takes them), how often the gold fact is in the five chunks a
/// chat turn gets, and in the quote chosen from them, for each [`Spread`].
pub async fn facts(loaded: &[Loaded], o: &LoadOptions<'_>) -> Result<()> {
    use crate::grounded::norm;
    let spreads = [
        ("round robin, 3 per page (shipped)", Spread::RoundRobin(3)),
        ("round robin, 1 per page", Spread::RoundRobin(1)),
        ("chunk order, at most 1 per page", Spread::Capped(1)),
        ("chunk order, at most 2 per page", Spread::Capped(2)),
        ("chunk order, at most 3 per page", Spread::Capped(3)),
        ("chunk order, no cap", Spread::Capped(5)),
    ];
    let embedder = corpus::load_embedder(o.model, 32).await?;
    let mut cache = EmbedCache::open(o.cache, o.model, 384)?;
    println!("\ngrounded answerable questions: gold fact in the 5 chunks / in the quote\n");
    println!("| spread | corpus | dev in chunks | dev in quote | test in chunks | test in quote |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for l in loaded {
        let halves = answerable_halves(l, &embedder, &mut cache).await?;
        for (label, spread) in spreads {
            let mut cells = Vec::new();
            for (items, vecs) in &halves {
                let (mut in_chunks, mut in_quote) = (0, 0);
                for (it, v) in items.iter().zip(vecs) {
                    let chunks = spread_texts(&l.index, &it.question, v, spread)?;
                    let fact = norm(it.fact.as_deref().unwrap_or_default());
                    let quote: String = agentbase_core::quote::pick(
                        &it.question,
                        &chunks,
                        agentbase_core::quote::QuotePolicy::SHIPPED,
                    )
                    .into_iter()
                    .map(|q| q.1)
                    .collect();
                    in_chunks += usize::from(chunks.iter().any(|c| norm(c).contains(&fact)));
                    in_quote += usize::from(norm(&quote).contains(&fact));
                }
                let n = items.len();
                cells.push(format!("{in_chunks}/{n} | {in_quote}/{n}"));
            }
            println!("| {label} | {} | {} |", l.corpus.name, cells.join(" | "));
        }
    }
    second_quotes(loaded, &embedder, &mut cache).await?;
    dense_quotes(loaded, &embedder, &mut cache).await
}

/// `--facts`, second part: a second quote from another chunk (`QuotePolicy::second`)
/// for several shares of the first quote's score and numbers of candidate chunks.
/// Prints, per corpus, how many answerable questions' quotes hold the gold fact
/// (dev | test), the mean characters quoted and how many turns get a second quote.
async fn second_quotes(
    loaded: &[Loaded],
    embedder: &agentbase_llm::LocalEmbedder,
    cache: &mut EmbedCache,
) -> Result<()> {
    use crate::grounded::norm;
    use agentbase_core::quote::QuotePolicy;
    const SHARES: [f64; 7] = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, f64::INFINITY];
    const CANDIDATES: [usize; 3] = [2, 3, 5];
    println!(
        "\na second quote when it scores this share of the first's: gold fact in the \
         quotes (dev | test), mean characters quoted, turns with a second quote\n"
    );
    println!(
        "| corpus | candidates | {} |",
        SHARES.map(|r| format!("share {r}")).join(" | ")
    );
    println!("| --- | ---: |{}", " ---: |".repeat(SHARES.len()));
    for l in loaded {
        // Each half's questions with the chunks a chat turn gets and the gold fact,
        // retrieved once for every policy.
        let mut halves = Vec::new();
        for (items, vecs) in answerable_halves(l, embedder, cache).await? {
            let mut turns = Vec::new();
            for (it, v) in items.iter().zip(&vecs) {
                let chunks = spread_texts(&l.index, &it.question, v, Spread::RoundRobin(3))?;
                let fact = norm(it.fact.as_deref().unwrap_or_default());
                turns.push((it.question.clone(), chunks, fact));
            }
            halves.push(turns);
        }
        for candidates in CANDIDATES {
            let mut cells = Vec::new();
            for second in SHARES {
                let policy = QuotePolicy {
                    candidates,
                    second,
                    ..QuotePolicy::SHIPPED
                };
                let (mut held, mut chars, mut n, mut twice) = ([0usize; 2], 0, 0, 0);
                for (h, turns) in halves.iter().enumerate() {
                    for (question, chunks, fact) in turns {
                        let quotes = agentbase_core::quote::pick(question, chunks, policy);
                        let quoted: String = quotes.iter().map(|q| q.1.as_str()).collect();
                        twice += usize::from(quotes.len() > 1);
                        chars += quoted.chars().count();
                        n += 1;
                        held[h] += usize::from(norm(&quoted).contains(fact.as_str()));
                    }
                }
                let mean = chars / n.max(1);
                cells.push(format!("{} \\| {} ({mean} ch, {twice})", held[0], held[1]));
            }
            println!(
                "| {} | {candidates} | {} |",
                l.corpus.name,
                cells.join(" | ")
            );
        }
    }
    Ok(())
}

/// `--facts`, third part: the quote chosen by question words and the embedding
/// together (a lever that lost: bench/rag/RESULTS.md). Each run of sentences the
/// shipped policy may quote from its best `candidates` chunks gets `words / best
/// words + weight · cosine(question, run)`, with both embedded by the corpus model;
/// weight 0 is the shipped choice, 1000 the cosine alone. Prints, per corpus, how
/// many answerable questions' quotes hold the gold fact.
async fn dense_quotes(
    loaded: &[Loaded],
    embedder: &agentbase_llm::LocalEmbedder,
    cache: &mut EmbedCache,
) -> Result<()> {
    use crate::grounded::norm;
    use agentbase_core::quote::{QuotePolicy, best_run, runs};
    const WEIGHTS: [f64; 8] = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 1000.0];
    const CANDIDATES: [usize; 3] = [2, 3, 5];
    println!("\nquote by words + weight x cosine: gold fact in the quote (dev | test)\n");
    println!(
        "| corpus | candidates | {} |",
        WEIGHTS.map(|w| format!("w {w}")).join(" | ")
    );
    println!("| --- | ---: |{}", " ---: |".repeat(WEIGHTS.len()));
    for l in loaded {
        let mut counts = vec![[[0usize; 2]; WEIGHTS.len()]; CANDIDATES.len()];
        for (h, (items, q_vecs)) in answerable_halves(l, embedder, cache)
            .await?
            .iter()
            .enumerate()
        {
            for (it, qv) in items.iter().zip(q_vecs) {
                let chunks = spread_texts(&l.index, &it.question, qv, Spread::RoundRobin(3))?;
                let fact = norm(it.fact.as_deref().unwrap_or_default());
                for (ci, &candidates) in CANDIDATES.iter().enumerate() {
                    let policy = QuotePolicy {
                        candidates,
                        ..QuotePolicy::SHIPPED
                    };
                    let all = runs(&it.question, &chunks, policy);
                    let texts: Vec<String> = all.iter().map(|r| r.text.clone()).collect();
                    let (vecs, _) = cache.embed(embedder, &texts).await?;
                    let cos: Vec<f64> = vecs.iter().map(|v| f64::from(dot(qv, v))).collect();
                    let top = all.iter().map(|r| r.score).fold(0.0, f64::max).max(1e-9);
                    for (wi, &w) in WEIGHTS.iter().enumerate() {
                        let run = best_run(all.clone(), |i, r| r.score / top + w * cos[i]);
                        let quoted = run.is_some_and(|r| norm(&r.text).contains(&fact));
                        counts[ci][wi][h] += usize::from(quoted);
                    }
                }
            }
        }
        for (ci, c) in CANDIDATES.iter().enumerate() {
            let cells: Vec<String> = counts[ci]
                .iter()
                .map(|[d, t]| format!("{d} \\| {t}"))
                .collect();
            println!("| {} | {c} | {} |", l.corpus.name, cells.join(" | "));
        }
    }
    Ok(())
}

/// The grounded set's answerable questions of the dev and the test half (as
/// `grounded --split` takes them), each half with its questions' embeddings.
async fn answerable_halves(
    l: &Loaded,
    embedder: &agentbase_llm::LocalEmbedder,
    cache: &mut EmbedCache,
) -> Result<Vec<(Vec<crate::grounded::Item>, Vec<Vec<f32>>)>> {
    let mut halves = Vec::new();
    for half in ["dev", "test"] {
        let items: Vec<crate::grounded::Item> =
            crate::grounded::split(corpus::read_jsonl(&l.corpus.grounded)?, half)
                .into_iter()
                .filter(|it| !it.unanswerable)
                .collect();
        let texts: Vec<String> = items.iter().map(|it| it.question.clone()).collect();
        let (vecs, _) = cache.embed(embedder, &texts).await?;
        halves.push((items, vecs));
    }
    Ok(halves)
}

/// The texts of the chunks [`spread_hits`] gives a chat turn.
fn spread_texts<'a>(
    index: &'a Index,
    question: &str,
    v: &[f32],
    spread: Spread,
) -> Result<Vec<&'a str>> {
    Ok(spread_hits(index, question, v, spread)?
        .iter()
        .filter_map(|&d| index.doc(d).map(|d| d.text.as_str()))
        .collect())
}

/// The dot product: the cosine of the embedder's vectors, which are L2-normalised.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The five documents a chat turn would get for `question`, spread by `spread`,
/// after the default relevance floor.
fn spread_hits(index: &Index, question: &str, v: &[f32], spread: Spread) -> Result<Vec<usize>> {
    let query = |limit, per_page| Query {
        text: question.to_owned(),
        embedding: Some(v.to_vec()),
        limit,
        per_page,
        ..Query::default()
    };
    let floor =
        |h: &agentbase_search::Hit| h.dense.unwrap_or(0.0) >= agentbase_search::MIN_RELEVANCE;
    Ok(match spread {
        Spread::RoundRobin(n) => (index.search(&query(5, n))?.iter())
            .filter(|h| floor(h))
            .map(|h| h.doc)
            .collect(),
        Spread::Capped(n) => {
            let mut per: std::collections::HashMap<usize, usize> = Default::default();
            (index.search(&query(50, 0))?.iter())
                .filter(|h| floor(h))
                .filter(|h| {
                    let c = per.entry(h.page).or_default();
                    *c += 1;
                    *c <= n
                })
                .take(5)
                .map(|h| h.doc)
                .collect()
        }
    })
}
