//! `agentbase sources …` and `agentbase search`: an agent's knowledge from the
//! command line, against the record directly (no server or key needed). Sources
//! added here train in the running server's worker (jobs live in the record).

use std::path::PathBuf;
use std::sync::Arc;

use agentbase_core::knowledge::{LinkOptions, LinkType, NewSource, Source, SourceContent};
use agentbase_service::files::Upload;
use agentbase_service::{App, Principal, SourceFilter};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum SourcesCmd {
    /// Sources of an agent with their training status.
    List { agent_id: String },
    /// Add a text source from --text or a file (.txt, .md, .html, .pdf, .docx).
    Add {
        agent_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Add a website: crawled from URL (or one page, or a sitemap) and trained.
    AddWebsite {
        agent_id: String,
        url: String,
        /// crawl, sitemap or individual.
        #[arg(long, default_value = "crawl")]
        link_type: String,
        /// Regular expressions on the URL path to keep (repeatable).
        #[arg(long = "include-only")]
        include_only: Vec<String>,
        /// Regular expressions on the URL path to leave out (repeatable).
        #[arg(long = "exclude")]
        exclude: Vec<String>,
    },
    /// Import an Apify dataset (a .json/.jsonl export, or an items URL such as
    /// https://api.apify.com/v2/datasets/ID/items?token=…) as a source whose pages
    /// keep their URLs.
    ImportApify {
        agent_id: String,
        /// A file path or an http(s) URL.
        from: String,
        #[arg(long, default_value = "Apify dataset")]
        name: String,
    },
    /// Delete a source; its knowledge goes at once.
    Delete { agent_id: String, source_id: String },
    /// Training jobs of an agent with their progress.
    Jobs { agent_id: String },
}

/// The agent's workspace, acting as its operator.
async fn principal(app: &App, agent_id: &str) -> anyhow::Result<Principal> {
    app.accounts()
        .agent_operator(agent_id, "cli")
        .await?
        .with_context(|| format!("no agent {agent_id}"))
}

fn source_json(s: &Source) -> serde_json::Value {
    json!({
        "id": s.id,
        "type": s.kind().as_str(),
        "name": s.name,
        "status": s.status.as_str(),
        "size": s.size,
        "pages": s.pages,
        "error": s.error,
    })
}

fn print_source(s: &Source, json_out: bool) {
    if json_out {
        println!("{}", source_json(s));
    } else {
        let error = s
            .error
            .as_deref()
            .map(|e| format!("  ({e})"))
            .unwrap_or_default();
        println!(
            "{}  {:<5} {:<10} {:>9} B  {}{error}",
            s.id,
            s.kind().as_str(),
            s.status.as_str(),
            s.size,
            s.name
        );
    }
}

pub async fn sources(app: &Arc<App>, cmd: SourcesCmd, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        SourcesCmd::List { agent_id } => list_sources(app, agent_id, json_out).await,
        SourcesCmd::Add {
            agent_id,
            name,
            text,
            file,
        } => add_source(app, agent_id, name, text, file, json_out).await,
        SourcesCmd::AddWebsite {
            agent_id,
            url,
            link_type,
            include_only,
            exclude,
        } => {
            let link_type = match link_type.as_str() {
                "crawl" => LinkType::Crawl,
                "sitemap" => LinkType::Sitemap,
                "individual" => LinkType::Individual,
                other => bail!("--link-type {other}: use crawl, sitemap or individual"),
            };
            let options = LinkOptions {
                link_type,
                exclude_paths: exclude,
                include_only_paths: include_only,
                slow_scraping: false,
            };
            add_website(app, agent_id, url, options, json_out).await
        }
        SourcesCmd::ImportApify {
            agent_id,
            from,
            name,
        } => import_apify(app, agent_id, from, name, json_out).await,
        SourcesCmd::Delete {
            agent_id,
            source_id,
        } => {
            let p = principal(app, &agent_id).await?;
            let s = app
                .knowledge()
                .delete_source(&p, &agent_id, &source_id)
                .await?;
            if json_out {
                println!("{}", json!({"id": s.id, "status": "deleted"}));
            } else {
                println!("Deleted {}", s.id);
            }
            Ok(())
        }
        SourcesCmd::Jobs { agent_id } => training_jobs(app, agent_id, json_out).await,
    }
}

/// `sources list`: every source of the agent, a page at a time.
async fn list_sources(app: &Arc<App>, agent_id: String, json_out: bool) -> anyhow::Result<()> {
    let p = principal(app, &agent_id).await?;
    let mut cursor = None;
    loop {
        let page = app
            .knowledge()
            .sources(
                &p,
                &agent_id,
                &SourceFilter::default(),
                cursor.as_ref(),
                100,
            )
            .await?;
        for s in &page.items {
            print_source(s, json_out);
        }
        match (page.has_more, page.items.last()) {
            (true, Some(last)) => {
                cursor = Some(agentbase_core::Cursor {
                    t: last.created_at,
                    id: last.id.clone(),
                })
            }
            _ => return Ok(()),
        }
    }
}

/// `sources add`: a text, or a file read here (PDF, DOCX, HTML, Markdown, text).
async fn add_source(
    app: &Arc<App>,
    agent_id: String,
    name: Option<String>,
    text: Option<String>,
    file: Option<PathBuf>,
    json_out: bool,
) -> anyhow::Result<()> {
    let p = principal(app, &agent_id).await?;
    let knowledge = app.knowledge();
    let s = match (text, file) {
        (Some(text), _) => {
            let new = NewSource {
                name: name.unwrap_or_else(|| "Text".into()),
                content: SourceContent::Text { content: text },
            };
            knowledge.create_source(&p, &agent_id, new).await?
        }
        (None, Some(path)) => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let filename = (path.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload".into());
            let upload = Upload {
                filename,
                content_type: None,
                bytes,
            };
            (knowledge.add_file(&p, &agent_id, name, upload).await)
                .with_context(|| format!("{}", path.display()))?
        }
        (None, None) => bail!("give --text or --file"),
    };
    print_source(&s, json_out);
    Ok(())
}

/// `sources add-website`: a link source, crawled and trained by the server's worker.
async fn add_website(
    app: &Arc<App>,
    agent_id: String,
    url: String,
    options: LinkOptions,
    json_out: bool,
) -> anyhow::Result<()> {
    let p = principal(app, &agent_id).await?;
    let s = app
        .knowledge()
        .create_source(
            &p,
            &agent_id,
            NewSource {
                name: url.clone(),
                content: SourceContent::Link { url, options },
            },
        )
        .await?;
    print_source(&s, json_out);
    if !json_out {
        eprintln!(
            "Queued: the server's worker crawls and trains it (see `agentbase sources jobs`)."
        );
    }
    Ok(())
}

/// `sources import-apify`: an Apify dataset (a file, or a URL fetched through the
/// crawler's SSRF guard) as one file source.
async fn import_apify(
    app: &Arc<App>,
    agent_id: String,
    from: String,
    name: String,
    json_out: bool,
) -> anyhow::Result<()> {
    let p = principal(app, &agent_id).await?;
    let bytes = if from.starts_with("http://") || from.starts_with("https://") {
        // Through the crawler's SSRF guard and size cap, like any fetch the
        // server makes.
        let settings = agentbase_crawler::CrawlerSettings {
            allow_private_networks: app.settings().crawler.allow_private_networks,
            max_page_bytes: agentbase_core::knowledge::FILE_MAX_BYTES,
            ..Default::default()
        };
        let (status, body) = agentbase_crawler::fetch_url(&from, &settings)
            .await
            .map_err(|e| anyhow::anyhow!("cannot fetch {from}: {e}"))?;
        if !(200..300).contains(&status) {
            bail!("{from} answered HTTP {status}");
        }
        body
    } else {
        std::fs::read(&from).with_context(|| format!("cannot read {from}"))?
    };
    let filename = if from.ends_with(".jsonl") || from.contains("format=jsonl") {
        "dataset.jsonl"
    } else {
        "dataset.json"
    };
    let upload = Upload {
        filename: filename.into(),
        content_type: None,
        bytes,
    };
    let s = (app
        .knowledge()
        .add_file(&p, &agent_id, Some(name), upload)
        .await)
        .with_context(|| from.clone())?;
    print_source(&s, json_out);
    if !json_out {
        let pages = match &s.content {
            SourceContent::File { pages, .. } => pages.len(),
            _ => 0,
        };
        eprintln!("{pages} pages imported; the server's worker trains them.");
    }
    Ok(())
}

/// `sources jobs`: the agent's training jobs.
async fn training_jobs(app: &Arc<App>, agent_id: String, json_out: bool) -> anyhow::Result<()> {
    let p = principal(app, &agent_id).await?;
    for j in app.knowledge().training_jobs(&p, &agent_id).await? {
        if json_out {
            println!(
                "{}",
                json!({"id": j.id, "sourceId": j.source_id, "status": j.status.as_str(),
                       "stage": j.stage, "done": j.done, "total": j.total, "error": j.error})
            );
        } else {
            println!(
                "{}  {:<9} {:<9} {}/{}  {}",
                j.id,
                j.status.as_str(),
                j.stage,
                j.done,
                j.total,
                j.error.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `agentbase search AGENT_ID QUERY`: ranked chunks with their scores.
pub async fn search(
    app: &Arc<App>,
    agent_id: &str,
    query: &str,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let p = principal(app, agent_id).await?;
    let hits = app
        .knowledge()
        .search_knowledge(&p, agent_id, query, limit)
        .await?;
    if json_out {
        let data: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                json!({"rank": i + 1, "chunkId": h.chunk_id, "sourceId": h.source_id, "url": h.url,
                       "title": h.title, "heading": h.heading, "text": h.text, "score": h.score,
                       "relevance": h.relevance, "bm25": h.bm25})
            })
            .collect();
        println!("{}", json!({ "data": data }));
        return Ok(());
    }
    if hits.is_empty() {
        println!("No trained knowledge matches.");
    }
    for (i, h) in hits.iter().enumerate() {
        let place = h.url.as_deref().unwrap_or(&h.title);
        println!(
            "{}. relevance {:.3}  score {:.4}  bm25 {}  source {}  {}",
            i + 1,
            h.relevance,
            h.score,
            h.bm25.map_or("-".to_owned(), |b| format!("{b:.2}")),
            h.source_id,
            place
        );
        if !h.heading.is_empty() {
            println!("   {}", h.heading);
        }
        let snippet: String = h.text.chars().take(240).collect();
        println!("   {}\n", snippet.replace('\n', " "));
    }
    Ok(())
}
