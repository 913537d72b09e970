//! `eval --query`: the query-side levers of issue 19, around the shipped method,
//! chosen by the mean nDCG@10 of the dev halves (each test half beside, to read only
//! for the variant chosen on dev):
//! - lexical pseudo-relevance feedback: search once, then again with the BM25 text
//!   expanded by the words that weigh most in the best pages' chunks (term share ×
//!   IDF over the corpus's chunks); each added word counts as much as a question
//!   word (the lexical query takes each term once, unweighted), and the query
//!   embedding is the question's, unchanged;
//! - routing by the question's form: a question naming code (an identifier with `_`,
//!   `::`, `()`, a dotted name, a backtick or an inner capital) ranked by a method
//!   that leans on BM25;
//! - the per-question oracle over BM25, dense and the shipped method: what choosing
//!   one of them per question could give at most (not a method; a ceiling).

use std::collections::{HashMap, HashSet};

use agentbase_search::{Fusion, Index, Mode, Query};
use anyhow::Result;

use crate::eval::{self, Loaded, Method};

/// Document frequency of each word over a corpus's chunks (title, heading path
/// and text).
struct Df {
    chunks: f64,
    df: HashMap<String, u32>,
}

impl Df {
    fn of(index: &Index) -> Df {
        let mut df: HashMap<String, u32> = HashMap::new();
        for d in index.docs() {
            let own: HashSet<String> = words(&format!("{} {} {}", d.title, d.heading, d.text))
                .into_iter()
                .collect();
            for w in own {
                *df.entry(w).or_default() += 1;
            }
        }
        Df {
            chunks: index.len() as f64,
            df,
        }
    }

    fn idf(&self, word: &str) -> f64 {
        let n = f64::from(self.df.get(word).copied().unwrap_or(0));
        (1.0 + (self.chunks - n + 0.5) / (n + 0.5)).ln()
    }
}

/// Lower-cased words of 3-30 characters (letters, digits, `_`), not all digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| (3..=30).contains(&w.chars().count()))
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect()
}

/// Whether a question names code: `snake_case`, `a::b`, `f()`, `os.path`, a
/// backtick, or a word with a capital after its first letter (`HashMap`).
fn names_code(question: &str) -> bool {
    question.contains('`')
        || question.contains("::")
        || question.contains("()")
        || question.split_whitespace().any(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
            let inner = |c: char| w.chars().skip(1).any(|x| x == c);
            inner('_')
                || w.chars().skip(1).any(char::is_uppercase) && w.chars().any(char::is_lowercase)
                || w.split('.').filter(|p| !p.is_empty()).count() > 1
        })
}

/// The question's text followed by the `terms` words weighing most in the `k` best
/// pages of a first shipped search.
fn expanded(l: &Loaded, df: &Df, qi: usize, k: usize, terms: usize) -> Result<String> {
    let question = &l.questions[qi].question;
    let first = l.index.search(&Query {
        text: question.clone(),
        embedding: Some(l.q_vecs[qi].clone()),
        limit: k,
        per_page: 1,
        ..Query::default()
    })?;
    let own: HashSet<String> = words(question).into_iter().collect();
    let mut weight: HashMap<String, f64> = HashMap::new();
    for hit in &first {
        let Some(d) = l.index.doc(hit.doc) else {
            continue;
        };
        let ws = words(&format!("{} {} {}", d.title, d.heading, d.text));
        let len = ws.len().max(1) as f64;
        for w in ws {
            if !own.contains(&w) {
                let idf = df.idf(&w);
                *weight.entry(w).or_default() += idf / len;
            }
        }
    }
    let mut ranked: Vec<(String, f64)> = weight.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut text = question.clone();
    for (w, _) in ranked.iter().take(terms) {
        text.push(' ');
        text.push_str(w);
    }
    Ok(text)
}

enum Variant {
    Method(Method),
    /// Lexical feedback: (pages, words).
    Expand(usize, usize),
    /// Questions naming code ranked by this method, the rest by the shipped one.
    Route(Method),
    Oracle,
}

fn ranked<'a>(l: &'a Loaded, df: &Df, v: &Variant, qi: usize) -> Result<Vec<&'a str>> {
    let shipped = Method::shipped();
    match v {
        Variant::Method(m) => eval::rank(l, m, qi),
        Variant::Expand(k, terms) => {
            let text = expanded(l, df, qi, *k, *terms)?;
            eval::rank_text(l, &shipped, qi, &text)
        }
        Variant::Route(m) if names_code(&l.questions[qi].question) => eval::rank(l, m, qi),
        Variant::Route(_) => eval::rank(l, &shipped, qi),
        Variant::Oracle => {
            let baselines = Method::baselines();
            let mut best: Option<(f64, Vec<&str>)> = None;
            for m in [&baselines[0], &baselines[1], &shipped] {
                let pages = eval::rank(l, m, qi)?;
                let s = eval::question_score(&l.questions[qi], &pages).ndcg10;
                if best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, pages));
                }
            }
            Ok(best.map(|(_, p)| p).unwrap_or_default())
        }
    }
}

/// Prints, per corpus, how many dev questions name code and the mean nDCG@10 of
/// BM25, dense and the shipped method on them and on the rest.
fn print_by_form(loaded: &[Loaded]) -> Result<()> {
    println!(
        "\n| corpus (dev) | questions | name code | BM25 / dense / shipped, naming code | the same, the rest |"
    );
    println!("| --- | ---: | ---: | --- | --- |");
    let baselines = Method::baselines();
    let methods = [&baselines[0], &baselines[1], &Method::shipped()].map(Clone::clone);
    for l in loaded {
        let mut sums = [[0.0f64; 3]; 2];
        let mut counts = [0usize; 2];
        for (qi, q) in l.questions.iter().enumerate() {
            if !eval::in_split(q, "dev") {
                continue;
            }
            let g = usize::from(!names_code(&q.question));
            counts[g] += 1;
            for (s, m) in sums[g].iter_mut().zip(&methods) {
                *s += eval::question_score(q, &eval::rank(l, m, qi)?).ndcg10;
            }
        }
        let cell = |g: usize| {
            let n = counts[g].max(1) as f64 / 100.0;
            format!(
                "{:.1} / {:.1} / {:.1}",
                sums[g][0] / n,
                sums[g][1] / n,
                sums[g][2] / n
            )
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            l.corpus.name,
            counts[0] + counts[1],
            counts[0],
            cell(0),
            cell(1)
        );
    }
    Ok(())
}

pub fn query_side(loaded: &[Loaded]) -> Result<()> {
    let dfs: HashMap<&str, Df> = loaded
        .iter()
        .map(|l| (l.corpus.name, Df::of(&l.index)))
        .collect();
    print_by_form(loaded)?;
    let shipped = Method::shipped();
    let mut variants = vec![(
        "agentbase (shipped)".to_owned(),
        Variant::Method(shipped.clone()),
    )];
    for k in [3, 5, 10] {
        for terms in [5, 10, 20] {
            variants.push((
                format!("lexical feedback: {k} pages, {terms} words"),
                Variant::Expand(k, terms),
            ));
        }
    }
    let bm25 = Method::baselines()[0].clone();
    let lean = |name: &str, mode: Mode| {
        let mut m = shipped.clone();
        m.name = name.to_owned();
        m.mode = mode;
        m
    };
    variants.push((
        "code questions: BM25 alone".to_owned(),
        Variant::Route(bm25),
    ));
    for w in [0.2, 0.3] {
        variants.push((
            format!("code questions: normalised, dense weight {w}"),
            Variant::Route(lean(
                "lean",
                Mode::Hybrid(Fusion::Normalized { weight_dense: w }),
            )),
        ));
    }
    variants.push((
        "oracle: the best of BM25, dense, shipped per question (a ceiling)".to_owned(),
        Variant::Oracle,
    ));
    eval::dev_test_table(
        loaded,
        &variants,
        |(name, _)| name.as_str(),
        |l, (_, v), split| {
            let (s, _) = eval::evaluate_by(l, split, |qi| ranked(l, &dfs[l.corpus.name], v, qi))?;
            Ok(s.ndcg10)
        },
    )
}
