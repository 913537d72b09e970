//! `agentbase backup` and `agentbase restore`: the terminal side of
//! `agentbase_service::backup` (what goes in the file, and how it comes back).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentbase_core::SystemClock;
use agentbase_service::backup::{self, BackupSource, Manifest};
use agentbase_service::{App, Settings};
use anyhow::Context;
use serde_json::json;

use crate::Global;

/// The configuration file in effect: `--config`, else `<data-dir>/agentbase.toml`.
fn config_file(g: &Global) -> Option<PathBuf> {
    g.config.clone().or_else(|| {
        let p = g.data_dir.join("agentbase.toml");
        p.exists().then_some(p)
    })
}

fn counts_json(m: &Manifest) -> serde_json::Value {
    let c = &m.counts;
    json!({"workspaces": c.workspaces, "agents": c.agents, "conversations": c.conversations,
           "messages": c.messages, "sources": c.sources, "chunks": c.chunks})
}

fn counts_line(m: &Manifest) -> String {
    let c = &m.counts;
    format!(
        "{} workspaces, {} agents, {} conversations, {} messages, {} sources, {} chunks",
        c.workspaces, c.agents, c.conversations, c.messages, c.sources, c.chunks
    )
}

pub async fn backup(g: &Global, settings: &Settings, out: &Path) -> anyhow::Result<()> {
    let url = agentbase_service::database_url(settings, &g.data_dir);
    let config = config_file(g);
    let manifest = backup::backup(
        BackupSource {
            database_url: &url,
            config_file: config.as_deref(),
            embedder: &settings.knowledge.embedder,
            embedding_model: &settings.knowledge.embedding_model,
        },
        out,
    )
    .await
    .map_err(crate::describe)
    .context("backup failed")?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    if g.json {
        crate::print_json(&json!({
            "out": out, "bytes": bytes, "schemaVersion": manifest.schema_version,
            "createdAt": agentbase_core::time_fmt::iso8601(manifest.created_at),
            "config": manifest.config_sha256.is_some(), "counts": counts_json(&manifest),
        }));
    } else {
        println!(
            "Backup written to {} ({bytes} bytes, schema {}): {}",
            out.display(),
            manifest.schema_version,
            counts_line(&manifest)
        );
        if manifest.config_sha256.is_none() {
            println!("(no configuration file was in use; AGENTBASE__ variables are not kept)");
        }
    }
    Ok(())
}

pub async fn restore(g: &Global, file: &Path) -> anyhow::Result<()> {
    let restored = backup::restore(file, &g.data_dir)
        .await
        .map_err(crate::describe)
        .context("restore failed")?;
    let mut notes = Vec::new();
    let mut settings = crate::load_settings(g, Default::default())?;
    // The database was restored into the data directory; a configuration that
    // names another one would open that instead.
    if !settings.database.url.is_empty() {
        notes.push(format!(
            "the configuration sets database.url = {}, but the database was restored to {}: \
             clear database.url (or point it there) before `serve`",
            settings.database.url,
            restored.database.display()
        ));
        settings.database.url = String::new();
    }
    // Rebuilding indexes needs no rate limiter: Redis need not be reachable yet.
    settings.rate_limit.backend = agentbase_service::LimiterBackend::Memory;
    let m = &restored.manifest;
    if settings.knowledge.embedder != m.embedder
        || settings.knowledge.embedding_model != m.embedding_model
    {
        notes.push(format!(
            "the stored vectors were made by knowledge.embedder = {:?} (model {:?}); this \
             configuration uses {:?}: retrieval needs the same embedder",
            m.embedder, m.embedding_model, settings.knowledge.embedder
        ));
    }
    if let Some(config) = &restored.config
        && config.file_name().is_some_and(|n| n != "agentbase.toml")
    {
        notes.push(format!(
            "the data directory already had an agentbase.toml, left as it was; the backup's \
             configuration is in {}",
            config.display()
        ));
    }
    // Opening applies any migrations newer than the backup; then every agent's
    // index is rebuilt from its chunks.
    let app = App::open(settings, &g.data_dir, Arc::new(SystemClock))
        .await
        .with_context(|| {
            format!(
                "cannot open the restored record in {}",
                g.data_dir.display()
            )
        })?;
    let indexes = app
        .knowledge()
        .rebuild_indexes()
        .await
        .context("cannot rebuild the indexes")?;
    app.record().close().await;
    if g.json {
        crate::print_json(&json!({
            "dataDir": g.data_dir, "database": restored.database, "config": restored.config,
            "schemaVersion": m.schema_version, "createdAt": agentbase_core::time_fmt::iso8601(m.created_at),
            "counts": counts_json(m), "indexesRebuilt": indexes, "notes": notes,
        }));
    } else {
        println!(
            "Restored the backup of {} into {}: {}; {indexes} agent indexes rebuilt.",
            agentbase_core::time_fmt::iso8601(m.created_at),
            g.data_dir.display(),
            counts_line(m)
        );
        for n in notes {
            println!("note: {n}");
        }
    }
    Ok(())
}
