//! Backup and restore of an embedded (SQLite) instance: `agentbase backup` and
//! `agentbase restore`.
//!
//! A backup is one zip file: `manifest.json` (what is inside, with checksums),
//! `agentbase.db` (a consistent copy taken while the server runs, `VACUUM INTO`)
//! and `agentbase.toml` (the configuration file in effect, when there is one).
//! Left out on purpose, because they are rebuilt: the index snapshots (a cache of
//! the chunks and embeddings that are in the database; a restore rebuilds them) and
//! the default model weights (fetched again and checked against their pinned
//! checksums on first start). Environment variables are not files and are not kept.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use agentbase_core::{Clock, Error, Result, SystemClock, time_fmt};
use agentbase_store::{MIGRATIONS, RecordCounts};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FORMAT: &str = "agentbase-backup";
const FORMAT_VERSION: i64 = 1;
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "agentbase.db";
const CONFIG: &str = "agentbase.toml";

/// What a backup holds, as its `manifest.json` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub created_at: i64,
    pub agentbase_version: String,
    pub schema_version: i64,
    pub database_sha256: String,
    pub database_bytes: u64,
    /// SHA-256 of the configuration file, when one was kept.
    pub config_sha256: Option<String>,
    pub counts: RecordCounts,
    /// `knowledge.embedder` when the backup was taken: the stored vectors were made
    /// by it, so the restored instance must use the same one.
    pub embedder: String,
    pub embedding_model: String,
}

impl Manifest {
    fn to_json(&self) -> Value {
        let c = &self.counts;
        json!({
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "agentbaseVersion": self.agentbase_version,
            "createdAt": time_fmt::iso8601(self.created_at),
            "createdAtMs": self.created_at,
            "database": {
                "engine": "sqlite",
                "file": DATABASE,
                "schemaVersion": self.schema_version,
                "bytes": self.database_bytes,
                "sha256": self.database_sha256,
            },
            "config": self.config_sha256.as_ref().map(|s| json!({"file": CONFIG, "sha256": s})),
            "counts": {
                "workspaces": c.workspaces, "agents": c.agents,
                "conversations": c.conversations, "messages": c.messages,
                "sources": c.sources, "chunks": c.chunks,
            },
            "knowledge": {
                "embedder": self.embedder,
                "embeddingModel": self.embedding_model,
                "indexes": "not included: rebuilt from the chunks and embeddings in the database",
            },
            "notIncluded": [
                "index snapshots (rebuilt by restore)",
                "model weights (the defaults are fetched and checksummed on first start; \
                 copy a custom providers.*.model_path file yourself)",
                "AGENTBASE__* environment variables",
            ],
        })
    }

    fn from_json(v: &Value) -> Result<Manifest> {
        let bad = |what: &str| corrupt(format!("its manifest has no valid {what}"));
        if v["format"] != FORMAT {
            return Err(corrupt("it is not an agentbase backup".into()));
        }
        let version = v["formatVersion"]
            .as_i64()
            .ok_or_else(|| bad("formatVersion"))?;
        if version > FORMAT_VERSION {
            return Err(corrupt(format!(
                "it has format version {version}; this agentbase reads version {FORMAT_VERSION}"
            )));
        }
        let db = &v["database"];
        let count = |k: &str| v["counts"][k].as_i64().unwrap_or(0);
        Ok(Manifest {
            created_at: v["createdAtMs"]
                .as_i64()
                .ok_or_else(|| bad("createdAtMs"))?,
            agentbase_version: v["agentbaseVersion"].as_str().unwrap_or("").to_owned(),
            schema_version: db["schemaVersion"]
                .as_i64()
                .ok_or_else(|| bad("schemaVersion"))?,
            database_sha256: db["sha256"]
                .as_str()
                .ok_or_else(|| bad("database checksum"))?
                .to_owned(),
            database_bytes: db["bytes"].as_u64().unwrap_or(0),
            config_sha256: v["config"]["sha256"].as_str().map(str::to_owned),
            counts: RecordCounts {
                workspaces: count("workspaces"),
                agents: count("agents"),
                conversations: count("conversations"),
                messages: count("messages"),
                sources: count("sources"),
                chunks: count("chunks"),
            },
            embedder: v["knowledge"]["embedder"].as_str().unwrap_or("").to_owned(),
            embedding_model: v["knowledge"]["embeddingModel"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        })
    }
}

fn corrupt(why: String) -> Error {
    Error::invalid("backup", format!("cannot be restored: {why}"))
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl Fn(io::Error) -> Error + 'a {
    move |e| Error::Storage(format!("cannot {action} {}: {e}", path.display()))
}

fn zip_err(path: &Path) -> impl Fn(zip::result::ZipError) -> Error + '_ {
    move |e| {
        corrupt(format!(
            "{} is not a readable zip file: {e}",
            path.display()
        ))
    }
}

/// Where the backup of an instance comes from.
pub struct BackupSource<'a> {
    /// The database URL in effect (`database_url`); must be `sqlite:`.
    pub database_url: &'a str,
    /// The configuration file in effect, if any.
    pub config_file: Option<&'a Path>,
    pub embedder: &'a str,
    pub embedding_model: &'a str,
}

/// Writes a backup of the instance to `out` (replacing nothing: `out` must not exist).
/// Safe while the server runs: the database copy is one consistent snapshot.
pub async fn backup(source: BackupSource<'_>, out: &Path) -> Result<Manifest> {
    if !source.database_url.starts_with("sqlite:") {
        return Err(Error::invalid(
            "database.url",
            "names PostgreSQL: back it up with pg_dump (README, \"Backup and restore\")",
        ));
    }
    if out.exists() {
        return Err(Error::invalid(
            "out",
            format!("{} exists already", out.display()),
        ));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The copy and the archive are made beside `out`, so the final rename is atomic
    // and a failed backup leaves nothing that looks like one.
    let work = tempfile::Builder::new()
        .prefix(".agentbase-backup-")
        .tempdir_in(&dir)
        .map_err(io_err("create a temporary directory in", &dir))?;
    let copy = work.path().join(DATABASE);
    let state = agentbase_store::snapshot_sqlite(source.database_url, &copy).await?;
    let copy_url = format!("sqlite://{}", copy.display());
    let counts = agentbase_store::record_counts(&copy_url).await?;
    let created_at = SystemClock.now_ms();

    let config = match source.config_file {
        Some(p) => Some(fs::read(p).map_err(io_err("read", p))?),
        None => None,
    };
    let (database_sha256, database_bytes) = {
        let copy = copy.clone();
        tokio::task::spawn_blocking(move || sha256_file(&copy))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let manifest = Manifest {
        created_at,
        agentbase_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: state.applied.unwrap_or(0),
        database_sha256,
        database_bytes,
        config_sha256: config.as_deref().map(sha256_hex),
        counts,
        embedder: source.embedder.to_owned(),
        embedding_model: source.embedding_model.to_owned(),
    };
    let archive = work.path().join("backup.zip");
    {
        let (archive, manifest, copy) = (archive.clone(), manifest.clone(), copy.clone());
        tokio::task::spawn_blocking(move || {
            write_archive(&archive, &manifest, &copy, config.as_deref())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    }
    fs::rename(&archive, out).map_err(io_err("move the backup to", out))?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(manifest)
}

fn write_archive(
    path: &Path,
    manifest: &Manifest,
    database: &Path,
    config: Option<&[u8]>,
) -> Result<()> {
    // Owner-only: the record holds key and password hashes and every conversation.
    let mut open = fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open.open(path).map_err(io_err("create", path))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    let write_err =
        |e: zip::result::ZipError| Error::Storage(format!("cannot write the backup: {e}"));
    let text = serde_json::to_vec_pretty(&manifest.to_json()).unwrap_or_default();
    zip.start_file(MANIFEST, options).map_err(write_err)?;
    zip.write_all(&text).map_err(io_err("write", path))?;
    zip.start_file(
        DATABASE,
        options.large_file(manifest.database_bytes >= u64::from(u32::MAX)),
    )
    .map_err(write_err)?;
    let mut db = File::open(database).map_err(io_err("read", database))?;
    io::copy(&mut db, &mut zip).map_err(io_err("write", path))?;
    if let Some(config) = config {
        zip.start_file(CONFIG, options).map_err(write_err)?;
        zip.write_all(config).map_err(io_err("write", path))?;
    }
    let file = zip.finish().map_err(write_err)?;
    file.sync_all().map_err(io_err("sync", path))
}

/// What a restore put where.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    pub database: PathBuf,
    /// Where the backup's configuration was written: `agentbase.toml`, or beside an
    /// existing one (which is left as it is).
    pub config: Option<PathBuf>,
}

/// Unpacks a backup into `data_dir`, checking every file against the manifest.
/// Refuses a data directory that already has a database. The indexes are rebuilt
/// afterwards with [`Knowledge::rebuild_indexes`](crate::knowledge::Knowledge::rebuild_indexes), once the record is opened.
pub async fn restore(archive: &Path, data_dir: &Path) -> Result<Restored> {
    let (archive, data_dir) = (archive.to_path_buf(), data_dir.to_path_buf());
    tokio::task::spawn_blocking(move || restore_blocking(&archive, &data_dir))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

fn restore_blocking(archive: &Path, data_dir: &Path) -> Result<Restored> {
    let database = data_dir.join(DATABASE);
    for existing in [
        database.clone(),
        data_dir.join("agentbase.db-wal"),
        data_dir.join("agentbase.db-shm"),
    ] {
        if existing.exists() {
            return Err(Error::invalid(
                "data-dir",
                format!(
                    "already has a database ({}); restore into a new data directory",
                    existing.display()
                ),
            ));
        }
    }
    let file = File::open(archive).map_err(io_err("open", archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(zip_err(archive))?;
    let manifest: Value = {
        let mut entry = zip
            .by_name(MANIFEST)
            .map_err(|_| corrupt(format!("{} has no {MANIFEST}", archive.display())))?;
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(io_err("read", archive))?;
        serde_json::from_str(&text).map_err(|e| corrupt(format!("bad manifest: {e}")))?
    };
    let manifest = Manifest::from_json(&manifest)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if manifest.schema_version > known {
        return Err(corrupt(format!(
            "its database is at schema version {}, newer than this agentbase knows ({known}); \
             restore it with agentbase {} or later",
            manifest.schema_version, manifest.agentbase_version
        )));
    }

    fs::create_dir_all(data_dir).map_err(io_err("create", data_dir))?;
    let work = tempfile::Builder::new()
        .prefix(".agentbase-restore-")
        .tempdir_in(data_dir)
        .map_err(io_err("create a temporary directory in", data_dir))?;
    let db_tmp = work.path().join(DATABASE);
    let sum = unpack(&mut zip, DATABASE, &db_tmp, archive)?;
    if sum != manifest.database_sha256 {
        return Err(corrupt(format!(
            "{DATABASE} has checksum {sum}, the manifest says {}",
            manifest.database_sha256
        )));
    }
    let config = match &manifest.config_sha256 {
        Some(expected) => {
            let tmp = work.path().join(CONFIG);
            let sum = unpack(&mut zip, CONFIG, &tmp, archive)?;
            if &sum != expected {
                return Err(corrupt(format!(
                    "{CONFIG} has checksum {sum}, the manifest says {expected}"
                )));
            }
            let mut dest = data_dir.join(CONFIG);
            if dest.exists() {
                dest = data_dir.join("agentbase.toml.from-backup");
            }
            fs::rename(&tmp, &dest).map_err(io_err("move into place", &dest))?;
            Some(dest)
        }
        None => None,
    };
    fs::rename(&db_tmp, &database).map_err(io_err("move into place", &database))?;
    if let Ok(d) = File::open(data_dir) {
        let _ = d.sync_all();
    }
    Ok(Restored {
        manifest,
        database,
        config,
    })
}

/// Copies one member of the archive to `dest`, synced, and returns its SHA-256.
fn unpack(
    zip: &mut zip::ZipArchive<File>,
    name: &str,
    dest: &Path,
    archive: &Path,
) -> Result<String> {
    let mut entry = zip
        .by_name(name)
        .map_err(|_| corrupt(format!("{} has no {name}", archive.display())))?;
    let mut out = File::create(dest).map_err(io_err("create", dest))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| corrupt(format!("{name} cannot be read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err("write", dest))?;
    }
    out.sync_all().map_err(io_err("sync", dest))?;
    Ok(hex(&hasher.finalize()))
}

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(io_err("read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex(&hasher.finalize()), total))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
