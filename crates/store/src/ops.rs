//! Operator tools on the record (`agentbase backup`, `restore`, `doctor`): a
//! consistent copy of an embedded database taken while it serves, the schema's state
//! read without migrating anything, and what a restore needs to rebuild indexes.

use std::path::Path;
use std::time::Duration;

use agentbase_core::{Error, Result};
use sqlx::{AnyConnection, Connection, Row};

use crate::{Backend, Store, db_err, migrate::MIGRATIONS};

/// Where a database's schema stands against this binary's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaState {
    pub backend: Backend,
    /// The newest migration applied; `None` when the database has no schema yet.
    pub applied: Option<i64>,
    /// The newest migration this binary has.
    pub known: i64,
}

impl SchemaState {
    pub fn is_current(&self) -> bool {
        self.applied == Some(self.known)
    }
}

/// Rows in the main tables of a record, to describe a backup and check a restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub workspaces: i64,
    pub agents: i64,
    pub conversations: i64,
    pub messages: i64,
    pub sources: i64,
    pub chunks: i64,
}

fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(Error::invalid(
            "database.url",
            "must start with sqlite: or postgres:",
        ))
    }
}

/// The file a `sqlite:` URL names (`sqlite://PATH`, `sqlite:PATH`, with or without
/// `?options`).
pub fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// One connection that never creates the database (an SQLite file that is missing
/// is an error, not a new empty record) and gives up after `timeout`.
async fn connect_existing(url: &str, timeout: Duration) -> Result<(AnyConnection, Backend)> {
    crate::install_drivers();
    let backend = backend_of(url)?;
    let url = match backend {
        Backend::Sqlite => {
            let path = sqlite_path(url).ok_or_else(|| {
                Error::invalid("database.url", "names no SQLite file (in-memory?)")
            })?;
            if !path.exists() {
                return Err(Error::Storage(format!(
                    "no database at {} (run `agentbase init`)",
                    path.display()
                )));
            }
            if url.contains("mode=") {
                url.to_owned()
            } else {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rw")
            }
        }
        Backend::Postgres => url.to_owned(),
    };
    let conn = tokio::time::timeout(timeout, AnyConnection::connect(&url))
        .await
        .map_err(|_| Error::Storage(format!("no answer within {} s", timeout.as_secs())))?
        .map_err(db_err)?;
    Ok((conn, backend))
}

/// Connects to `url` and reads which migrations are applied, changing nothing.
pub async fn schema_state(url: &str, timeout: Duration) -> Result<SchemaState> {
    let (mut conn, backend) = connect_existing(url, timeout).await?;
    let exists_sql = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
        }
    };
    let exists: i64 = sqlx::query(exists_sql)
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)?;
    let applied = if exists == 0 {
        None
    } else {
        sqlx::query("SELECT MAX(version) AS v FROM schema_migrations")
            .fetch_one(&mut conn)
            .await
            .and_then(|r| r.try_get::<Option<i64>, _>("v"))
            .map_err(db_err)?
    };
    let _ = conn.close().await;
    Ok(SchemaState {
        backend,
        applied,
        known: MIGRATIONS.last().map_or(0, |m| m.0),
    })
}

/// Writes a consistent copy of the SQLite database at `url` into `dest` (a file
/// that must not exist yet) with `VACUUM INTO`. The copy is made in one read
/// transaction, so it holds exactly the transactions committed before that began;
/// in WAL mode writers are not held up meanwhile (the server keeps serving). The
/// copy is compacted, not synced: the caller syncs what it builds from it. Returns
/// the copy's schema state.
pub async fn snapshot_sqlite(url: &str, dest: &Path) -> Result<SchemaState> {
    if backend_of(url)? != Backend::Sqlite {
        return Err(Error::invalid(
            "database.url",
            "an online snapshot is taken of SQLite only; back PostgreSQL up with pg_dump",
        ));
    }
    let Some(dest_str) = dest.to_str() else {
        return Err(Error::invalid("out", "the path must be valid UTF-8"));
    };
    // sqlx's 5 s busy timeout covers the moment a checkpoint holds the WAL index.
    let (mut conn, _) = connect_existing(url, Duration::from_secs(30)).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest_str)
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    let _ = conn.close().await;
    // The schema of the copy itself.
    schema_state(&format!("sqlite://{dest_str}"), Duration::from_secs(30)).await
}

/// Counts the rows of the main tables of the database at `url`.
pub async fn record_counts(url: &str) -> Result<RecordCounts> {
    let (mut conn, _) = connect_existing(url, Duration::from_secs(30)).await?;
    let counts = RecordCounts {
        workspaces: count(&mut conn, "workspaces").await?,
        agents: count(&mut conn, "agents").await?,
        conversations: count(&mut conn, "conversations").await?,
        messages: count(&mut conn, "messages").await?,
        sources: count(&mut conn, "sources").await?,
        chunks: count(&mut conn, "chunks").await?,
    };
    let _ = conn.close().await;
    Ok(counts)
}

async fn count(conn: &mut AnyConnection, table: &str) -> Result<i64> {
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(conn)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)
}

impl Store {
    /// Agents whose knowledge has been trained at least once (a snapshot to build).
    pub async fn agents_with_knowledge(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM agents WHERE kb_version > 0 ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(db_err))
            .collect()
    }
}
