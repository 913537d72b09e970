//! Grounded answers through a running server's chat API: per corpus, an agent
//! (`grounded-<corpus>`) whose knowledge is the whole docs site crawled from a
//! loopback HTTP server as a link source, asked the 50 short-fact questions and 20
//! unanswerable ones of `bench/rag/sets/grounded-<corpus>.jsonl` with the agent's
//! own model (the embedded SmolLM2 by default).
//!
//! Scores: "contains the gold fact" (case-insensitive, whitespace-normalised
//! substring of the answer), "cites the gold page" (the gold page is among the
//! `source-url` parts of the answer's stream), and "says it does not know" (a fixed list of
//! phrasings) on unanswerable questions, plus how often it wrongly says so on
//! answerable ones.

use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::io::Write;

use agentbase_core::quote::{QuotePolicy, pick, uses};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::corpus::{self, Corpus};

#[derive(Args)]
pub struct GroundedArgs {
    /// The agentbase server.
    #[arg(long, default_value = "http://127.0.0.1:8480")]
    server: String,
    /// API key (or AGENTBASE_KEY).
    #[arg(long, env = "AGENTBASE_KEY")]
    key: String,
    /// Corpora, comma-separated.
    #[arg(long, default_value = "rust,postgres,python")]
    corpus: String,
    /// Loopback docs server per corpus: `name=http://127.0.0.1:PORT/`, comma-separated.
    /// Needed when an agent has to be created.
    #[arg(long, default_value = "")]
    sites: String,
    /// Agent model.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Agent settings to PUT before asking (a JSON object, e.g. '{"temperature":0}').
    #[arg(long)]
    patch: Option<String>,
    /// Only the first N questions of each kind (quick checks).
    #[arg(long)]
    first: Option<usize>,
    /// Which half of each set: `dev` (the 1st, 3rd, 5th, ... question of each kind:
    /// answerable and unanswerable), `test` (the others) or `all`. Settings are
    /// chosen on `dev` and reported on `test`.
    #[arg(long, default_value = "all")]
    split: String,
    /// Score the quote choice offline instead of asking the model: each answerable
    /// question through the search endpoint (the 5 chunks a chat turn gets), and
    /// the quote each policy picks from them checked for the gold fact.
    #[arg(long)]
    quotes: bool,
    /// With `--quotes`: chunks less relevant than this are dropped, as a chat turn
    /// drops them (`knowledge.min_relevance`).
    #[arg(long, default_value_t = agentbase_search::MIN_RELEVANCE)]
    floor: f32,
    /// With `--quotes`: the answers a run with `--record` wrote (best with
    /// `--patch '{"quoteFallback":false}'`, the model's own words). Each policy is
    /// then also scored as chat would end: the recorded answer, with the policy's
    /// quote after it unless the answer already uses it.
    #[arg(long)]
    answers: Option<std::path::PathBuf>,
    /// Write every answer to this file, one JSON object (`id`, `answer`) per line.
    #[arg(long)]
    record: Option<std::path::PathBuf>,
    /// Print every answer.
    #[arg(long)]
    verbose: bool,
    /// Label printed with the results.
    #[arg(long, default_value = "")]
    label: String,
}

/// One question of a grounded set (`bench/rag/sets/grounded-<corpus>.jsonl`).
#[derive(serde::Deserialize)]
pub struct Item {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub fact: Option<String>,
    #[serde(default)]
    pub unanswerable: bool,
}

/// Phrasings that count as "I do not know" (lower-cased, apostrophes straightened).
const DONT_KNOW: &[&str] = &[
    "don't know",
    "do not know",
    "could not find",
    "couldn't find",
    "can't find",
    "cannot find",
    "not able to find",
    "unable to find",
    "no information",
    "not in my knowledge",
    "not in the knowledge",
    "does not contain",
    "doesn't contain",
    "don't have information",
    "do not have information",
    "not have any information",
    "i'm not sure",
    "i am not sure",
    "cannot answer",
    "can't answer",
];

/// `s` lower-cased, its white space collapsed and its apostrophes straightened, as
/// gold facts and answers are compared.
pub fn norm(s: &str) -> String {
    s.replace(['\u{2019}', '\u{2018}'], "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

pub fn says_dont_know(answer: &str) -> bool {
    let a = norm(answer);
    DONT_KNOW.iter().any(|p| a.contains(p))
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// The body of a successful answer to `method path` (with `body` as JSON).
    async fn text(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<String> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base.trim_end_matches('/')))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("request {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {text}");
        }
        Ok(text)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let text = self.text(method, path, body).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// One question through the streaming chat API, as a widget asks it: the answer's
/// text and the URLs of its `source-url` parts (the JSON answer's official schema
/// has no citations; the stream carries them).
async fn ask(api: &Api, agent: &str, question: &str) -> Result<(String, Vec<String>)> {
    let body = api
        .text(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{agent}/chat"),
            Some(json!({"message": question, "stream": true})),
        )
        .await?;
    let (mut text, mut urls) = (String::new(), Vec::new());
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        match chunk["type"].as_str() {
            Some("text-delta") => text.push_str(chunk["delta"].as_str().unwrap_or_default()),
            Some("source-url") => urls.extend(chunk["url"].as_str().map(str::to_owned)),
            Some("error") => bail!("chat stream error: {}", chunk["errorText"]),
            _ => {}
        }
    }
    Ok((text, urls))
}

async fn add_link(api: &Api, agent: &str, url: &str, exclude: &[&str]) -> Result<()> {
    api.call(
        reqwest::Method::POST,
        &format!("/api/v2/agents/{agent}/sources"),
        Some(json!({
            "type": "link",
            "url": url,
            "linkType": "crawl",
            "excludePaths": exclude,
        })),
    )
    .await?;
    Ok(())
}

async fn find_agent(api: &Api, name: &str) -> Result<Option<String>> {
    let agents = api
        .call(reqwest::Method::GET, "/api/v2/agents?limit=100", None)
        .await?;
    Ok(agents["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name)
        .and_then(|a| a["id"].as_str())
        .map(str::to_owned))
}

async fn create_agent(api: &Api, name: &str, model: &str) -> Result<String> {
    let agent = api
        .call(
            reqwest::Method::POST,
            "/api/v2/agents",
            Some(json!({"name": name, "model": model})),
        )
        .await?;
    Ok(agent["id"]
        .as_str()
        .or_else(|| agent["data"]["id"].as_str())
        .context("agent id")?
        .to_owned())
}

/// The corpus's agent, created and trained from `site` when missing.
async fn agent_for(api: &Api, corpus: &Corpus, site: Option<&str>, model: &str) -> Result<String> {
    let name = format!("grounded-{}", corpus.name);
    if let Some(id) = find_agent(api, &name).await? {
        return Ok(id);
    }
    let site =
        site.with_context(|| format!("no agent {name}; pass --sites {}=URL", corpus.name))?;
    let id = create_agent(api, &name, model).await?;
    // The same pages the retrieval benchmark indexes (see corpus.rs `skip`).
    let (starts, exclude): (Vec<String>, Vec<&str>) = match corpus.name {
        "rust" => (
            ["book", "rust-by-example", "reference", "cargo"]
                .iter()
                .map(|b| format!("{site}{b}/index.html"))
                .collect(),
            vec![
                r"/print\.html$",
                r"/toc\.html$",
                r"/(first|second|2018)-edition/",
                r"rust-by-example/(es|ja|ko|zh)/",
            ],
        ),
        "python" => (
            vec![format!("{site}index.html")],
            vec![
                r"genindex",
                r"/search\.html$",
                r"py-modindex",
                r"/contents\.html$",
            ],
        ),
        _ => (vec![format!("{site}index.html")], vec![]),
    };
    let start = starts.join(" ");
    for url in &starts {
        add_link(api, &id, url, &exclude).await?;
    }
    eprintln!("{name}: created {id}, training from {start}");
    Ok(id)
}

async fn wait_trained(api: &Api, id: &str) -> Result<()> {
    let t = Instant::now();
    loop {
        let jobs = api
            .call(
                reqwest::Method::GET,
                &format!("/api/v2/agents/{id}/training-jobs"),
                None,
            )
            .await?;
        let jobs = jobs["data"].as_array().cloned().unwrap_or_default();
        if let Some(failed) = jobs.iter().find(|j| j["status"] == "failed") {
            bail!("training failed: {failed}");
        }
        if !jobs.is_empty()
            && jobs.iter().all(|j| {
                j["status"] == "succeeded" || j["status"] == "done" || j["status"] == "completed"
            })
        {
            return Ok(());
        }
        if jobs.is_empty() {
            let agent = api
                .call(reqwest::Method::GET, &format!("/api/v2/agents/{id}"), None)
                .await?;
            if agent["lastTrainedAt"].is_string() || agent["last_trained_at"].is_string() {
                return Ok(());
            }
        }
        // One job per source: the first still running, and the counts of all.
        if let Some(j) = jobs
            .iter()
            .find(|j| j["status"] == "running")
            .or(jobs.first())
        {
            let sum = |k: &str| jobs.iter().filter_map(|j| j[k].as_u64()).sum::<u64>();
            eprint!(
                "\r  {} {}/{} in {} jobs ({:.0}s)   ",
                j["stage"].as_str().unwrap_or(""),
                sum("done"),
                sum("total"),
                jobs.len(),
                t.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

pub async fn run(args: GroundedArgs) -> Result<()> {
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?,
        base: args.server.clone(),
        key: args.key.clone(),
    };
    if !matches!(args.split.as_str(), "dev" | "test" | "all") {
        bail!("--split is dev, test or all");
    }
    let sites: Vec<(&str, &str)> = args
        .sites
        .split(',')
        .filter_map(|s| s.split_once('='))
        .collect();
    if !args.quotes {
        println!(
            "\n| corpus ({}, {} split) | gold fact | cites gold page | says does not know (unanswerable) | says does not know (answerable) | answer p50 s |",
            args.label, args.split
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    }
    for name in args.corpus.split(',') {
        let corpus = Corpus::named(name.trim())?;
        let site = sites.iter().find(|(n, _)| *n == corpus.name).map(|s| s.1);
        let id = agent_for(&api, &corpus, site, &args.model).await?;
        wait_trained(&api, &id).await?;
        if let Some(p) = &args.patch {
            let body: Value = serde_json::from_str(p).context("--patch is not JSON")?;
            api.call(
                reqwest::Method::PUT,
                &format!("/api/v2/agents/{id}"),
                Some(body),
            )
            .await?;
        }
        let items = split(corpus::read_jsonl(&corpus.grounded)?, &args.split);
        if args.quotes {
            let answers = match &args.answers {
                Some(path) => recorded(path)?,
                None => HashMap::new(),
            };
            let floor = (args.floor, args.verbose);
            quote_sweep(&api, &id, &items, &answers, floor, corpus.name).await?;
            continue;
        }
        let tally = ask_all(&api, &id, &items, &args).await?;
        println!("{}", tally.row(corpus.name));
    }
    Ok(())
}

/// The questions of `split`: each kind (answerable, unanswerable) alternates
/// dev, test, dev, ... in file order, so both halves hold both kinds.
pub fn split(items: Vec<Item>, split: &str) -> Vec<Item> {
    let (mut n_ans, mut n_un) = (0usize, 0usize);
    items
        .into_iter()
        .filter(|it| {
            let n = if it.unanswerable {
                &mut n_un
            } else {
                &mut n_ans
            };
            let dev = *n % 2 == 0;
            *n += 1;
            match split {
                "dev" => dev,
                "test" => !dev,
                _ => true,
            }
        })
        .collect()
}

/// The quote policies `--quotes` compares.
fn quote_policies() -> Vec<QuotePolicy> {
    let mut v = vec![QuotePolicy::TOP_CHUNK, QuotePolicy::SHIPPED];
    for chars in [400, 600] {
        for candidates in [1, 2, 3, 5] {
            for rank_decay in [0.0, 0.25, 0.5] {
                for code_bonus in [0.0, 0.5, 1.0, 2.0] {
                    v.push(QuotePolicy {
                        candidates,
                        idf: true,
                        rank_decay,
                        code_bonus,
                        chars,
                        second: f64::INFINITY,
                    });
                }
            }
        }
    }
    v
}

/// `--quotes`: per policy, how many answerable questions' quotes hold the gold
/// fact, beside how many have it anywhere in the knowledge the turn gets.
async fn quote_sweep(
    api: &Api,
    id: &str,
    items: &[Item],
    answers: &HashMap<String, String>,
    (floor, verbose): (f32, bool),
    corpus: &str,
) -> Result<()> {
    let policies = quote_policies();
    let (mut n, mut in_knowledge, mut in_answers, mut answered) = (0, 0, 0, 0);
    let mut held = vec![0usize; policies.len()];
    let mut ended = vec![0usize; policies.len()];
    for it in items.iter().filter(|it| !it.unanswerable) {
        let found = api
            .call(
                reqwest::Method::POST,
                &format!("/api/v2/agents/{id}/search"),
                Some(json!({"query": it.question, "limit": 5})),
            )
            .await?;
        let texts: Vec<&str> = found["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["relevance"].as_f64().unwrap_or(0.0) >= f64::from(floor))
            .filter_map(|h| h["text"].as_str())
            .collect();
        let fact = norm(it.fact.as_deref().unwrap_or_default());
        n += 1;
        in_knowledge += usize::from(texts.iter().any(|t| norm(t).contains(&fact)));
        let answer = answers.get(&it.id);
        answered += usize::from(answer.is_some());
        let said = answer.is_some_and(|a| norm(a).contains(&fact));
        in_answers += usize::from(said);
        for ((h, e), p) in held.iter_mut().zip(&mut ended).zip(&policies) {
            let quotes = pick(&it.question, &texts, *p);
            let best = quotes.first().map_or("", |q| q.1.as_str());
            let quoted = quotes.iter().any(|q| norm(&q.1).contains(&fact));
            *h += usize::from(quoted);
            // Chat appends the quotes to an answer that does not use the best one.
            *e += usize::from(
                said || (quoted && answer.is_some_and(|a| !uses(a, best, &it.question))),
            );
        }
        if verbose {
            missed_quote(it, &texts, &fact, policies[0]);
        }
    }
    println!(
        "\n{corpus}: {n} answerable questions, the gold fact in the knowledge of {in_knowledge}, \
         in {in_answers} of {answered} recorded answers"
    );
    println!(
        "\n| candidates | idf | rank decay | code bonus | chars | second | quote holds the fact | recorded answer and quote hold it |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((h, e), p) in held.iter().zip(&ended).zip(&policies) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {h}/{n} | {e}/{answered} |",
            p.candidates, p.idf, p.rank_decay, p.code_bonus, p.chars, p.second
        );
    }
    Ok(())
}

/// The answers a `--record` run wrote, by question id.
fn recorded(path: &std::path::Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).context("a recorded answer is not JSON")?;
            let field = |k: &str| v[k].as_str().map(str::to_owned);
            field("id")
                .zip(field("answer"))
                .context("a recorded answer needs id and answer")
        })
        .collect()
}

/// With `--verbose`: a question whose knowledge holds the fact and whose quote
/// (by `policy`) does not, with the text around the fact.
fn missed_quote(it: &Item, texts: &[&str], fact: &str, policy: QuotePolicy) {
    let quote: String = pick(&it.question, texts, policy)
        .into_iter()
        .map(|q| q.1)
        .collect::<Vec<_>>()
        .join(" / ");
    let at: Vec<usize> = (texts.iter().enumerate())
        .filter(|(_, t)| norm(t).contains(fact))
        .map(|(i, _)| i)
        .collect();
    if norm(&quote).contains(fact) || at.is_empty() {
        return;
    }
    let t = norm(texts[at[0]]);
    let i = t.find(fact).unwrap_or(0);
    let around: String = t.chars().skip(i.saturating_sub(150)).take(300).collect();
    println!(
        "{} | {} | fact {fact:?} in chunks {at:?}\n  quoted: {quote}\n  around: {around}",
        it.id, it.question
    );
}

/// What one corpus's answers scored.
#[derive(Default)]
struct Tally {
    facts: usize,
    cites: usize,
    n_ans: usize,
    idk_ans: usize,
    idk_un: usize,
    n_un: usize,
    secs: Vec<f64>,
}

impl Tally {
    fn row(mut self, corpus: &str) -> String {
        self.secs.sort_by(f64::total_cmp);
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        let Tally {
            facts,
            cites,
            n_ans,
            idk_ans,
            idk_un,
            n_un,
            ..
        } = self;
        format!(
            "| {corpus} | {:.0}% ({facts}/{n_ans}) | {:.0}% ({cites}/{n_ans}) | {:.0}% ({idk_un}/{n_un}) | {:.0}% ({idk_ans}/{n_ans}) | {:.1} |",
            pct(facts, n_ans),
            pct(cites, n_ans),
            pct(idk_un, n_un),
            pct(idk_ans, n_ans),
            crate::percentile(&self.secs, 0.5)
        )
    }
}

/// Asks `items` (at most `--first` of each kind) and scores the answers.
async fn ask_all(api: &Api, id: &str, items: &[Item], args: &GroundedArgs) -> Result<Tally> {
    let mut t = Tally::default();
    let first = args.first.unwrap_or(usize::MAX);
    let mut record = match &args.record {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {}", path.display()))?,
        ),
        None => None,
    };
    for it in items {
        if (it.unanswerable && t.n_un >= first) || (!it.unanswerable && t.n_ans >= first) {
            continue;
        }
        let started = Instant::now();
        let (text, urls) = ask(api, id, &it.question).await?;
        t.secs.push(started.elapsed().as_secs_f64());
        if let Some(f) = &mut record {
            writeln!(f, "{}", json!({"id": it.id, "answer": text}))?;
        }
        let idk = says_dont_know(&text);
        let verdict = if it.unanswerable {
            t.n_un += 1;
            t.idk_un += usize::from(idk);
            format!("idk={idk}")
        } else {
            t.n_ans += 1;
            t.idk_ans += usize::from(idk);
            let fact = it.fact.as_deref().unwrap_or_default();
            let has_fact = norm(&text).contains(&norm(fact));
            t.facts += usize::from(has_fact);
            let page = it.page.as_deref().unwrap_or_default();
            let cited = urls.iter().any(|u| u.ends_with(&format!("/{page}")));
            t.cites += usize::from(cited);
            format!("fact={has_fact} cited={cited}")
        };
        if args.verbose {
            println!(
                "{} {verdict} | {} | {}",
                it.id,
                it.question,
                text.replace('\n', " ")
            );
        }
    }
    Ok(t)
}

#[derive(Args)]
pub struct HttpArgs {
    #[arg(long, default_value = "http://127.0.0.1:8480")]
    server: String,
    #[arg(long, env = "AGENTBASE_KEY")]
    key: String,
    /// The loopback Rust docs server (the agent crawls `<site>book/index.html`).
    #[arg(long)]
    site: String,
    /// Timed requests.
    #[arg(long, default_value_t = 300)]
    queries: usize,
}

/// `POST /agents/{id}/search` latency on an agent trained on the Rust Book, with
/// an authenticated `GET /agents/{id}` on the same connection as the floor.
pub async fn http(args: HttpArgs) -> Result<()> {
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?,
        base: args.server.clone(),
        key: args.key.clone(),
    };
    let name = "http-rust-book";
    let id = match find_agent(&api, name).await? {
        Some(id) => id,
        None => {
            let id = create_agent(&api, name, "smollm2").await?;
            add_link(
                &api,
                &id,
                &format!("{}book/index.html", args.site),
                &[r"/print\.html$", r"/toc\.html$", r"-edition/"],
            )
            .await?;
            id
        }
    };
    wait_trained(&api, &id).await?;
    let corpus = Corpus::named("rust")?;
    let questions: Vec<corpus::Question> = corpus::read_jsonl(&corpus.questions)?;
    let texts: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
    for q in texts.iter().take(20) {
        api.call(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{id}/search"),
            Some(json!({"query": q, "limit": 5})),
        )
        .await?;
    }
    let mut search = Vec::new();
    let mut get = Vec::new();
    for i in 0..args.queries {
        let q = texts[i % texts.len()];
        let t = Instant::now();
        api.call(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{id}/search"),
            Some(json!({"query": q, "limit": 5})),
        )
        .await?;
        search.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        api.call(reqwest::Method::GET, &format!("/api/v2/agents/{id}"), None)
            .await?;
        get.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    search.sort_by(f64::total_cmp);
    get.sort_by(f64::total_cmp);
    let agent = api
        .call(reqwest::Method::GET, &format!("/api/v2/agents/{id}"), None)
        .await?;
    println!(
        "\nRust Book agent {id} ({} bytes of sources), {} requests each:\n",
        agent["size"], args.queries
    );
    println!("| request | p50 ms | p90 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (n, v) in [
        ("POST /agents/{id}/search (limit 5)", &search),
        ("GET /agents/{id} (floor)", &get),
    ] {
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} |",
            crate::percentile(v, 0.5),
            crate::percentile(v, 0.9),
            crate::percentile(v, 0.99)
        );
    }
    Ok(())
}
