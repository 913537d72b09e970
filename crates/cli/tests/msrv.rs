//! `rust-version` in the root Cargo.toml is the oldest Rust that builds the workspace,
//! and the manifests stay in the shape that keeps it checkable. No older toolchain is
//! installed to try a build with, so this checks what decides the minimum:
//! - every package of the locked dependency graph (`cargo metadata --locked`) declares
//!   a `rust-version` no newer than ours;
//! - every target feature the kernels enable (`#[target_feature(enable = "…")]`) or
//!   detect (`is_x86_feature_detected!("…")`) is stable in ours (the table below);
//! - ours is no newer than the newest of those and of [`LANGUAGE_NEEDS`], so it is the
//!   true minimum, not just a safe one;
//! - every member inherits it (clippy's `incompatible_msrv`, denied in the root
//!   Cargo.toml, checks the std APIs against each package's own `rust-version`), and
//!   README.md states it.
//!
//! And every member declares its dependencies only as `workspace = true`: each
//! dependency has one spec, in the root Cargo.toml's `[workspace.dependencies]`.

use std::fmt;
use std::fs;
use std::process::Command;

use serde_json::Value;
use tree::workspace_root;

mod tree;

/// The Rust versions that stabilised the target features this workspace may use
/// (`None`: still unstable on stable Rust, so the code must use inline assembly, as
/// crates/llm/src/fast_bert/amx.rs does for the AMX tiles). From the `accepted`
/// feature gates of rustc (`*_target_feature`).
const TARGET_FEATURES: &[(&str, Option<&str>)] = &[
    // The original `std::arch` (x86).
    ("sse", Some("1.27")),
    ("sse2", Some("1.27")),
    ("sse3", Some("1.27")),
    ("ssse3", Some("1.27")),
    ("sse4.1", Some("1.27")),
    ("sse4.2", Some("1.27")),
    ("popcnt", Some("1.27")),
    ("avx", Some("1.27")),
    ("avx2", Some("1.27")),
    ("fma", Some("1.27")),
    ("bmi1", Some("1.27")),
    ("bmi2", Some("1.27")),
    ("lzcnt", Some("1.27")),
    ("pclmulqdq", Some("1.27")),
    ("aes", Some("1.27")),
    ("sha", Some("1.27")),
    ("rdrand", Some("1.27")),
    ("rdseed", Some("1.27")),
    ("fxsr", Some("1.27")),
    ("xsave", Some("1.27")),
    ("xsaveopt", Some("1.27")),
    ("xsavec", Some("1.27")),
    ("xsaves", Some("1.27")),
    ("adx", Some("1.61")),
    ("f16c", Some("1.68")),
    ("cmpxchg16b", Some("1.69")),
    // `avx512_target_feature`, with the VEX-encoded VNNI and friends.
    ("avx512f", Some("1.89")),
    ("avx512bw", Some("1.89")),
    ("avx512cd", Some("1.89")),
    ("avx512dq", Some("1.89")),
    ("avx512vl", Some("1.89")),
    ("avx512ifma", Some("1.89")),
    ("avx512vbmi", Some("1.89")),
    ("avx512vbmi2", Some("1.89")),
    ("avx512vnni", Some("1.89")),
    ("avx512bitalg", Some("1.89")),
    ("avx512vpopcntdq", Some("1.89")),
    ("avx512bf16", Some("1.89")),
    ("avx512fp16", Some("1.89")),
    ("avx512vp2intersect", Some("1.89")),
    ("avxvnni", Some("1.89")),
    ("avxifma", Some("1.89")),
    ("avxneconvert", Some("1.89")),
    ("avxvnniint8", Some("1.89")),
    ("avxvnniint16", Some("1.89")),
    ("gfni", Some("1.89")),
    ("vaes", Some("1.89")),
    ("vpclmulqdq", Some("1.89")),
    // Still unstable (`x86_amx_intrinsics`).
    ("amx-tile", None),
    ("amx-bf16", None),
    ("amx-int8", None),
    ("amx-fp16", None),
    ("amx-complex", None),
];

/// Language features the code relies on, with the Rust that stabilised them: what
/// sets the minimum besides the dependencies and the target features. Add a line
/// when a newer one is used (clippy's `incompatible_msrv` only sees std APIs).
const LANGUAGE_NEEDS: &[(&str, &str)] = &[
    ("edition 2024", "1.85"),
    ("let chains (`if let … && …`)", "1.88"),
];

/// This file spells feature names it does not use.
const THIS_FILE: &str = "crates/cli/tests/msrv.rs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u32, u32, u32);

impl Version {
    fn parse(s: &str) -> Version {
        let mut parts = s.trim().split('.').map(|p| {
            p.parse::<u32>()
                .unwrap_or_else(|_| panic!("not a Rust version: {s:?}"))
        });
        let major = parts.next().unwrap_or(0);
        Version(major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.2 {
            0 => write!(f, "{}.{}", self.0, self.1),
            patch => write!(f, "{}.{}.{patch}", self.0, self.1),
        }
    }
}

fn read(rel: &str) -> String {
    let path = workspace_root().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `rust-version` of `[workspace.package]` in the root Cargo.toml.
fn declared() -> Version {
    let manifest = read("Cargo.toml");
    let mut section = "";
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
        } else if section == "[workspace.package]"
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "rust-version"
        {
            return Version::parse(value.trim().trim_matches('"'));
        }
    }
    panic!("the root Cargo.toml has no `rust-version` in [workspace.package]");
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .expect("runs cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

fn packages(metadata: &Value) -> &[Value] {
    metadata["packages"].as_array().expect("packages")
}

fn is_member(metadata: &Value, package: &Value) -> bool {
    metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .contains(&package["id"])
}

/// Every package of the resolved graph that is not a member, with its `rust-version`
/// (those that declare one).
fn dependency_versions(metadata: &Value) -> Vec<(String, Version)> {
    packages(metadata)
        .iter()
        .filter(|p| !is_member(metadata, p))
        .filter_map(|p| {
            let version = p["rust_version"].as_str()?;
            let name = format!("{} {}", p["name"].as_str()?, p["version"].as_str()?);
            Some((name, Version::parse(version)))
        })
        .collect()
}

/// Each target feature named in the workspace's Rust sources, with one place naming it.
fn target_features_used() -> Vec<(String, String)> {
    let root = workspace_root();
    let files = tree::rust_files(&["crates", "bench"], &[]);
    let mut found: Vec<(String, String)> = Vec::new();
    for file in files {
        let rel = tree::relative(&root, &file);
        if rel == THIS_FILE {
            continue;
        }
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for marker in ["target_feature(enable", "is_x86_feature_detected!("] {
                let mut rest = line;
                while let Some(at) = rest.find(marker) {
                    rest = &rest[at + marker.len()..];
                    let Some(open) = rest.find('"') else { break };
                    let Some(len) = rest[open + 1..].find('"') else {
                        break;
                    };
                    let names = &rest[open + 1..open + 1 + len];
                    for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !found.iter().any(|(f, _)| f == name) {
                            found.push((name.to_owned(), format!("{rel}:{}", n + 1)));
                        }
                    }
                    rest = &rest[open + 1 + len..];
                }
            }
        }
    }
    found
}

/// What the target features need: the newest stabilisation among them, and the
/// problems (unknown or unstable features).
fn target_feature_needs(used: &[(String, String)]) -> (Vec<(String, Version)>, Vec<String>) {
    let mut needs = Vec::new();
    let mut problems = Vec::new();
    for (name, at) in used {
        match TARGET_FEATURES.iter().find(|(f, _)| f == name) {
            Some((_, Some(since))) => needs.push((format!("{name} ({at})"), Version::parse(since))),
            Some((_, None)) => problems.push(format!(
                "  {at}: target feature `{name}` is not stable; use inline assembly (see \
                 crates/llm/src/fast_bert/amx.rs)"
            )),
            None => problems.push(format!(
                "  {at}: target feature `{name}` is not in the table of \
                 crates/cli/tests/msrv.rs; add it with the Rust version that stabilised it"
            )),
        }
    }
    (needs, problems)
}

fn newest(needs: &[(String, Version)]) -> Option<&(String, Version)> {
    needs.iter().max_by_key(|(_, v)| *v)
}

#[test]
fn no_dependency_needs_a_newer_rust() {
    let ours = declared();
    let metadata = metadata();
    let deps = dependency_versions(&metadata);
    assert!(
        deps.len() > 100,
        "only {} packages with a rust-version",
        deps.len()
    );
    let mut newer: Vec<String> = deps
        .iter()
        .filter(|(_, v)| *v > ours)
        .map(|(name, v)| format!("  {name} needs Rust {v}"))
        .collect();
    newer.sort();
    assert!(
        newer.is_empty(),
        "Cargo.lock has packages that need a newer Rust than rust-version = \"{ours}\":\n{}\n\
         Raise rust-version in the root Cargo.toml (and README.md), or pin older versions.",
        newer.join("\n")
    );
}

#[test]
fn every_target_feature_is_stable_in_the_declared_rust() {
    let ours = declared();
    let used = target_features_used();
    for expected in ["avx2", "avx512f", "avxvnni"] {
        assert!(
            used.iter().any(|(f, _)| f == expected),
            "the scan did not find `{expected}`; pick another example here"
        );
    }
    let (needs, mut problems) = target_feature_needs(&used);
    problems.extend(
        needs
            .iter()
            .filter(|(_, v)| *v > ours)
            .map(|(what, v)| format!("  {what} needs Rust {v}")),
    );
    assert!(
        problems.is_empty(),
        "target features against rust-version = \"{ours}\":\n{}",
        problems.join("\n")
    );
    // The table itself rejects what it should.
    let (_, bogus) = target_feature_needs(&[
        ("amx-tile".to_owned(), "here".to_owned()),
        ("no-such-feature".to_owned(), "here".to_owned()),
    ]);
    assert_eq!(bogus.len(), 2, "{bogus:?}");
}

#[test]
fn the_declared_rust_is_the_oldest_that_works() {
    let ours = declared();
    let metadata = metadata();
    let mut needs = dependency_versions(&metadata);
    let (features, _) = target_feature_needs(&target_features_used());
    needs.extend(features);
    needs.extend(
        LANGUAGE_NEEDS
            .iter()
            .map(|(what, v)| ((*what).to_owned(), Version::parse(v))),
    );
    let (why, minimum) = newest(&needs).expect("something needs some Rust").clone();
    assert_eq!(
        ours, minimum,
        "rust-version = \"{ours}\" in the root Cargo.toml, but the oldest Rust that builds \
         the workspace is {minimum} (for {why}); if something else needs {ours}, add it to \
         LANGUAGE_NEEDS in crates/cli/tests/msrv.rs"
    );
}

#[test]
fn every_member_inherits_rust_version_and_the_readme_states_it() {
    let ours = declared();
    let metadata = metadata();
    let members: Vec<&Value> = packages(&metadata)
        .iter()
        .filter(|p| is_member(&metadata, p))
        .collect();
    assert!(members.len() >= 10, "only {} members", members.len());
    for member in members {
        let version = member["rust_version"].as_str().map(Version::parse);
        assert_eq!(
            version,
            Some(ours),
            "{} does not say `rust-version.workspace = true` (clippy's incompatible_msrv \
             reads each package's own rust-version)",
            member["name"]
        );
    }
    let readme = read("README.md");
    let stated = format!("Rust {ours} or later");
    assert!(
        readme.contains(&stated),
        "README.md's prerequisites should say \"{stated}\""
    );
}

fn is_dependency_table(section: &str) -> bool {
    let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
    section
        .split('.')
        .any(|part| kinds.contains(&part.trim_matches('\'').trim_matches('"')))
}

/// The dependencies of one manifest not declared as `workspace = true`.
fn own_specs(manifest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut section = String::new();
    // `[dependencies.foo]` tables: the name, and whether `workspace = true` was seen.
    let mut table: Option<(String, bool)> = None;
    fn close_table(table: &mut Option<(String, bool)>, problems: &mut Vec<String>) {
        if let Some((name, false)) = table.take() {
            problems.push(format!("[{name}] without `workspace = true`"));
        }
    }
    for line in manifest.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            close_table(&mut table, &mut problems);
            section = name.trim().to_owned();
            let parts: Vec<&str> = section.split('.').collect();
            if is_dependency_table(&section)
                && parts.last().is_some_and(|p| !p.ends_with("dependencies"))
            {
                table = Some((section.clone(), false));
            }
            continue;
        }
        if !is_dependency_table(&section) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some((_, seen)) = &mut table {
            *seen |= key == "workspace" && value == "true";
            continue;
        }
        let inherited = (key.ends_with(".workspace") && value == "true")
            || (value.starts_with('{') && value.replace(' ', "").contains("workspace=true"));
        if !inherited {
            problems.push(format!("[{section}] {line}"));
        }
    }
    close_table(&mut table, &mut problems);
    problems
}

#[test]
fn members_declare_dependencies_only_through_the_workspace() {
    let manifests: Vec<String> = (tree::members().into_iter())
        .map(|m| format!("{m}/Cargo.toml"))
        .collect();
    assert!(manifests.len() >= 10, "only {manifests:?}");
    let problems: Vec<String> = manifests
        .iter()
        .flat_map(|m| {
            own_specs(&read(m))
                .into_iter()
                .map(move |p| format!("  {m}: {p}"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "dependencies with their own spec (declare them once in the root Cargo.toml's \
         [workspace.dependencies] and say `foo = {{ workspace = true }}`, adding `features` \
         where a crate needs more):\n{}",
        problems.join("\n")
    );
    let bogus = "[dependencies]\nfoo.workspace = true\nbar = \"1\"\n\
                 [target.'cfg(unix)'.dev-dependencies]\nbaz = { version = \"1\" }\n\
                 qux = { workspace = true, features = [\"x\"] }\n\
                 [dependencies.quux]\nversion = \"2\"\n[lints]\nworkspace = true\n";
    assert_eq!(own_specs(bogus).len(), 3, "{:?}", own_specs(bogus));
}
