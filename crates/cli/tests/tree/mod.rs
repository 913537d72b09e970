//! What the tests that read the repository (architecture, msrv, function_length)
//! share: where the workspace is, its members, and its files. Each test binary uses
//! a part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root, canonical, so paths under it strip to the same prefix.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// `path` relative to the workspace root, with `/` separators.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The files under `dirs` (relative to the root), hidden entries, `target` and
/// `node_modules` left out, and any entry whose name is in `skip`.
pub fn files(dirs: &[&str], skip: &[&str]) -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), skip, &mut out);
    }
    out
}

/// The Rust files under `dirs` (see [`files`]).
pub fn rust_files(dirs: &[&str], skip: &[&str]) -> Vec<PathBuf> {
    let mut out = files(dirs, skip);
    out.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    out
}

fn walk(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            || name == "target"
            || name == "node_modules"
            || skip.contains(&name.as_ref())
        {
            continue;
        }
        if path.is_dir() {
            walk(&path, skip, out);
        } else {
            out.push(path);
        }
    }
}

/// The workspace members' directories, from the root Cargo.toml's `members`
/// (`dir/*` expanded), relative to the root.
pub fn members() -> Vec<String> {
    let root = workspace_root();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("the root Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a `members` line in the root Cargo.toml");
    let mut out = Vec::new();
    for entry in line.split('"').skip(1).step_by(2) {
        match entry.strip_suffix("/*") {
            Some(dir) => {
                let mut found: Vec<String> = fs::read_dir(root.join(dir))
                    .expect("a members directory")
                    .flatten()
                    .filter(|e| e.path().join("Cargo.toml").is_file())
                    .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                    .collect();
                found.sort();
                out.extend(found);
            }
            None => out.push(entry.to_owned()),
        }
    }
    out
}
