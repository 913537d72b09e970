//! ARCHITECTURE.md stays true to the tree: every repository path, Rust item and
//! settings key it names in backticks must exist, so a rename or a move that
//! leaves the document behind fails here, naming the line to fix.
//!
//! What a backticked token is taken for (fenced blocks are not read; a token with
//! characters outside `A-Za-z0-9_./{},:-` is prose or code, not a name):
//! - a **path** when it starts with a top-level directory (`crates/`, `bench/`,
//!   `compat/`, `scripts/`, `docs/`, `.ci/`, `.cargo/`) or is a root file
//!   (`*.md`, `Containerfile`, …): it must exist from the workspace root. `{a,b}`
//!   alternatives are expanded; `path.rs::item` also needs `item` in that file.
//!   A relative path with an extension or a trailing `/` (`routes/agents.rs`) is
//!   resolved against the crate whose `### ` heading it sits under (and its
//!   `src/`); a bare source file name (`accounts.rs`) must exist in that crate.
//! - a **type** when it is one CamelCase word (`TtlCache`): a `struct`, `enum`,
//!   `trait` or `type` of that name under `crates/` or `bench/`.
//! - a **constant** when it is one ALL_CAPS word (`AUTH_CACHE_MS`): a `const` or
//!   `static` of that name, or a string literal spelling it (error codes, env vars).
//! - an **item path** when it is `a::b::…` (`App::start_workers`,
//!   `core::member::may_manage`, `Limiter::Memory`): a leading crate name
//!   (`core`, `agentbase_core`, …) narrows the search to that crate; lowercase
//!   segments are modules (a `name.rs` file or a `name/` directory); after a type,
//!   a snake_case name must be a `fn` in a file that defines or implements the
//!   type, a CamelCase name must appear there (a variant), an ALL_CAPS one must be
//!   a `const`. A trailing `(…)` is ignored.
//! - a **settings key** when it is `section.key` or `[section]` and `section` is a
//!   field of `Settings`: the key must be a field of that section's struct.
//! - an **accessor** when it is `app.name()`: `App` must have a `fn name`.
//! - any other snake_case word with an underscore (`keyset_page`, a column name)
//!   must at least occur as an identifier somewhere in the sources.
//!
//! External names the document mentions (std, axum, libc, HTTP headers) are in the
//! allow-lists below; add to them only names that are not ours.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use tree::workspace_root;

mod tree;

/// CamelCase and ALL_CAPS names that are not defined in this workspace.
const EXTERNAL_NAMES: &[&str] = &[
    // std, axum, candle, tantivy and serde names.
    "Arc",
    "HashMap",
    "Router",
    "Json",
    "QMatMul",
    "Debug",
    "Serialize",
    "IntoResponse",
    // HTTP header names.
    "Allow",
    "Origin",
    // Kernel and libc names.
    "SCHED_IDLE",
    "TCP_NODELAY",
    // The `// SAFETY:` comment convention.
    "SAFETY",
    // A pattern, not one variable: `AGENTBASE__SERVER__BIND` and its like.
    "AGENTBASE__SECTION__KEY",
];

/// First segments of item paths that belong to other crates.
const EXTERNAL_PATHS: &[&str] = &["std", "clippy", "sqlx", "axum", "tokio", "candle", "serde"];

/// Top-level directories whose paths are checked.
const ROOT_DIRS: &[&str] = &[
    "crates/", "bench/", "compat/", "scripts/", "docs/", ".ci/", ".cargo/",
];

/// Root files without a telling extension.
const ROOT_FILES: &[&str] = &[
    "Containerfile",
    "Cargo.toml",
    "Cargo.lock",
    "compose.yaml",
    "rustfmt.toml",
];

/// Extensions of bare file names that must exist in the section's crate.
const SOURCE_EXTENSIONS: &[&str] = &["rs", "sql", "html", "js", "mjs", "py", "sh", "css"];

const THIS_FILE: &str = "crates/cli/tests/architecture.rs";

/// One Rust source file with what it defines.
struct Source {
    /// Relative to the workspace root, with `/` separators.
    path: String,
    text: String,
    /// `struct`/`enum`/`trait`/`type` names.
    types: HashSet<String>,
    fns: HashSet<String>,
    consts: HashSet<String>,
    /// Names appearing on `impl` lines (the type and any trait).
    impls: HashSet<String>,
    /// Every identifier outside comments (for enum variants).
    words: HashSet<String>,
}

fn identifiers(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

impl Source {
    fn read(root: &Path, file: &Path) -> Source {
        let text = fs::read_to_string(file).unwrap_or_default();
        let path = tree::relative(root, file);
        let mut s = Source {
            path,
            text: String::new(),
            types: HashSet::new(),
            fns: HashSet::new(),
            consts: HashSet::new(),
            impls: HashSet::new(),
            words: HashSet::new(),
        };
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            let ids = identifiers(trimmed);
            for pair in ids.windows(2) {
                let set = match pair[0] {
                    "struct" | "enum" | "trait" | "type" => &mut s.types,
                    "fn" => &mut s.fns,
                    "const" | "static" => &mut s.consts,
                    _ => continue,
                };
                set.insert(pair[1].to_owned());
            }
            if ids.first() == Some(&"impl") || ids.starts_with(&["unsafe", "impl"]) {
                s.impls.extend(ids.iter().map(|w| (*w).to_owned()));
            }
            s.words.extend(ids.iter().map(|w| (*w).to_owned()));
        }
        s.text = text;
        s
    }

    fn dir(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(d, _)| d)
    }
}

struct Tree {
    root: PathBuf,
    /// Every file under the checked top-level directories, relative, `/`-separated.
    files: Vec<String>,
    sources: Vec<Source>,
    /// `Settings` section → the fields of its struct (`None`: a map, any key).
    settings: HashMap<String, Option<HashSet<String>>>,
}

impl Tree {
    fn load() -> Tree {
        let root = workspace_root();
        let paths = tree::files(&["crates", "bench", "compat", "scripts", "docs"], &[]);
        let files: Vec<String> = paths.iter().map(|p| tree::relative(&root, p)).collect();
        let sources: Vec<Source> = paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .filter(|p| {
                let rel = p.strip_prefix(&root).unwrap_or(p);
                // This file spells the bogus names it tests with.
                (rel.starts_with("crates") || rel.starts_with("bench"))
                    && rel != Path::new(THIS_FILE)
            })
            .map(|p| Source::read(&root, p))
            .collect();
        let settings = fs::read_to_string(root.join("crates/service/src/settings.rs"))
            .map(|t| settings_sections(&t))
            .unwrap_or_default();
        Tree {
            root,
            files,
            sources,
            settings,
        }
    }

    fn exists(&self, rel: &str) -> bool {
        !rel.is_empty() && !rel.contains("..") && self.root.join(rel).exists()
    }

    fn source(&self, path: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.path == path)
    }
}

/// `pub struct Settings { pub server: ServerSettings, … }` → `server` → the fields
/// of `ServerSettings`.
fn settings_sections(text: &str) -> HashMap<String, Option<HashSet<String>>> {
    let mut structs: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("pub struct ") {
            current = rest
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .map(str::to_owned);
            if let Some(name) = &current {
                structs.entry(name.clone()).or_default();
            }
            if !t.ends_with('{') {
                current = None;
            }
            continue;
        }
        if t.starts_with('}') {
            current = None;
            continue;
        }
        if let (Some(name), Some(field)) = (&current, t.strip_prefix("pub "))
            && let Some((field, ty)) = field.split_once(':')
        {
            let ty = ty.trim().trim_end_matches(',');
            structs
                .entry(name.clone())
                .or_default()
                .push((field.trim().to_owned(), ty.to_owned()));
        }
    }
    let Some(top) = structs.get("Settings") else {
        return HashMap::new();
    };
    top.iter()
        .map(|(field, ty)| {
            let keys = structs
                .get(ty.as_str())
                .map(|fields| fields.iter().map(|(f, _)| f.clone()).collect());
            (field.clone(), keys)
        })
        .collect()
}

/// A backticked token with the line it starts on and the section it sits in.
struct Mention {
    line: usize,
    token: String,
    /// The crate directory of the enclosing `### ` heading, if it names one.
    base: Option<String>,
}

/// The backticked tokens outside fenced blocks.
fn mentions(markdown: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut base: Option<String> = None;
    let mut in_fence = false;
    let mut open: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let n = i + 1;
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if open.is_none() {
            if line.starts_with("## ") {
                base = None;
            } else if let Some(heading) = line.strip_prefix("### ") {
                base = heading
                    .split('`')
                    .nth(1)
                    .filter(|t| ROOT_DIRS.iter().any(|d| t.starts_with(d)))
                    .map(|t| t.trim_end_matches('/').to_owned());
            }
        }
        for (j, piece) in line.split('`').enumerate() {
            if j > 0 {
                // A backtick: close the open span, or open one.
                match open.take() {
                    Some((start, token)) => out.push(Mention {
                        line: start,
                        token: token.trim().to_owned(),
                        base: base.clone(),
                    }),
                    None => open = Some((n, String::new())),
                }
            }
            if let Some((_, token)) = &mut open {
                if j == 0 && !token.is_empty() {
                    token.push(' ');
                }
                token.push_str(piece);
            }
        }
    }
    out
}

/// `a/{b,c}/d` → `a/b/d`, `a/c/d` (nested groups too).
fn expand_braces(s: &str) -> Vec<String> {
    let Some(open) = s.find('{') else {
        return vec![s.to_owned()];
    };
    let Some(close) = s[open..].find('}').map(|c| c + open) else {
        return vec![s.to_owned()];
    };
    let (head, tail) = (&s[..open], &s[close + 1..]);
    s[open + 1..close]
        .split(',')
        .flat_map(|alt| expand_braces(&format!("{head}{alt}{tail}")))
        .collect()
}

fn is_camel(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && s.chars().any(|c| c.is_ascii_lowercase())
}

fn is_caps(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.len() > 1
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_snake(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// What is wrong with a token, if anything; `None` also for tokens that are not
/// names this test checks.
fn check(tree: &Tree, m: &Mention) -> Option<String> {
    let token = m.token.split('(').next().unwrap_or("").trim();
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./{},:-[]".contains(c))
    {
        return None;
    }
    if let Some(section) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
        && is_snake(section)
    {
        return check_settings_key(tree, section, None);
    }
    if token.contains('[') || token.contains(']') {
        return None;
    }
    // Paths from the workspace root.
    if ROOT_DIRS.iter().any(|d| token.starts_with(d))
        || ROOT_FILES.contains(&token)
        || (!token.contains('/') && token.ends_with(".md"))
    {
        return check_path(tree, token, None);
    }
    if token.starts_with('/') || token.contains("//") {
        return None; // a URL route
    }
    if token.contains("::") && !token.contains('/') && !token.contains('.') {
        let segments: Vec<&str> = token.split("::").collect();
        if segments.iter().all(|s| is_ident(s)) {
            return check_item_path(tree, &segments, token);
        }
        return None;
    }
    if token.contains('/') {
        if extension(token).is_some() || token.ends_with('/') {
            return check_path(tree, token, m.base.as_deref());
        }
        return None;
    }
    if let Some(ext) = extension(token)
        && SOURCE_EXTENSIONS.contains(&ext)
        && !token.contains(',')
    {
        return check_file_name(tree, token, m.base.as_deref());
    }
    if let Some(accessor) = token.strip_prefix("app.")
        && is_snake(accessor)
    {
        return check_item_path(tree, &["App", accessor], token);
    }
    if let Some((section, key)) = token.split_once('.')
        && is_snake(section)
        && is_snake(key)
        && tree.settings.contains_key(section)
    {
        return check_settings_key(tree, section, Some(key));
    }
    if EXTERNAL_NAMES.contains(&token) {
        return None;
    }
    if is_camel(token) {
        let defined = tree.sources.iter().any(|s| s.types.contains(token));
        return (!defined).then(|| {
            "no struct, enum, trait or type of that name under crates/ or bench/".to_owned()
        });
    }
    if is_caps(token) {
        return (!constant_exists(tree.sources.iter(), token, true)).then(|| {
            "no const or static of that name (nor a string literal spelling it)".to_owned()
        });
    }
    if is_snake(token) && token.contains('_') {
        let used = tree.sources.iter().any(|s| s.words.contains(token));
        return (!used).then(|| "no identifier of that name under crates/ or bench/".to_owned());
    }
    None
}

fn constant_exists<'a>(
    mut files: impl Iterator<Item = &'a Source>,
    name: &str,
    or_literal: bool,
) -> bool {
    let literal = format!("\"{name}\"");
    files.any(|s| s.consts.contains(name) || (or_literal && s.text.contains(&literal)))
}

fn check_settings_key(tree: &Tree, section: &str, key: Option<&str>) -> Option<String> {
    let Some(fields) = tree.settings.get(section) else {
        return Some(format!("`{section}` is not a section of `Settings`"));
    };
    match (key, fields) {
        (Some(key), Some(fields)) if !fields.contains(key) => Some(format!(
            "`{key}` is not a field of the `{section}` settings section"
        )),
        _ => None,
    }
}

/// A path from the root, or (with `base`) from a crate directory or its `src/`.
fn check_path(tree: &Tree, token: &str, base: Option<&str>) -> Option<String> {
    let (path, item) = match token.split_once("::") {
        Some((p, i)) => (p, Some(i)),
        None => (token, None),
    };
    let mut missing = Vec::new();
    for alt in expand_braces(path) {
        let candidates: Vec<String> = match base {
            None => vec![alt.clone()],
            Some(b) => vec![format!("{b}/{alt}"), format!("{b}/src/{alt}")],
        };
        let Some(found) = candidates.iter().find(|c| tree.exists(c)) else {
            missing.push(alt);
            continue;
        };
        if let Some(item) = item {
            let Some(source) = tree.source(found) else {
                return Some(format!(
                    "`{found}` is not a Rust source, so has no `{item}`"
                ));
            };
            let ok = source.fns.contains(item)
                || source.types.contains(item)
                || source.consts.contains(item);
            if !ok {
                return Some(format!("`{found}` defines no `{item}`"));
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let from = match base {
        None => "the workspace root".to_owned(),
        Some(b) => format!("`{b}/` or `{b}/src/`"),
    };
    Some(format!("no {} from {from}", list(&missing)))
}

/// A bare file name: somewhere in the section's crate, else anywhere checked.
fn check_file_name(tree: &Tree, name: &str, base: Option<&str>) -> Option<String> {
    let under = |prefix: &str| {
        tree.files
            .iter()
            .any(|f| f.starts_with(prefix) && f.rsplit('/').next() == Some(name))
    };
    let found = match base {
        Some(b) => under(&format!("{b}/")),
        None => under(""),
    };
    (!found).then(|| match base {
        Some(b) => format!("no file of that name under `{b}/`"),
        None => "no file of that name in the repository".to_owned(),
    })
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scope for resolving a path's next segment: the files of a crate or module,
/// and the directory its submodules would live in.
#[derive(Clone)]
struct Scope<'a> {
    files: Vec<&'a Source>,
    /// `None`: any directory (the path named no crate).
    module_dir: Option<String>,
}

fn crate_dir(tree: &Tree, segment: &str) -> Option<String> {
    let name = segment.strip_prefix("agentbase_").unwrap_or(segment);
    let dir = format!("crates/{}", name.replace('_', "-"));
    tree.exists(&format!("{dir}/Cargo.toml"))
        .then(|| format!("{dir}/src"))
}

/// The modules named `segment` within `scope`: a `segment.rs` file or a
/// `segment/` directory (with everything under it).
fn submodules<'a>(scope: &Scope<'a>, segment: &str) -> Vec<Scope<'a>> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for s in &scope.files {
        let in_dir = |d: &str| scope.module_dir.as_deref().is_none_or(|m| m == d);
        if s.path.ends_with(&format!("/{segment}.rs")) && in_dir(s.dir()) {
            dirs.insert(format!("{}/{segment}", s.dir()));
        }
        let mut parts: Vec<&str> = s.path.split('/').collect();
        parts.pop();
        for (i, part) in parts.iter().enumerate() {
            if *part == segment && i > 0 && in_dir(&parts[..i].join("/")) {
                dirs.insert(parts[..=i].join("/"));
            }
        }
    }
    dirs.into_iter()
        .map(|dir| Scope {
            files: scope
                .files
                .iter()
                .copied()
                .filter(|s| s.path == format!("{dir}.rs") || s.path.starts_with(&format!("{dir}/")))
                .collect(),
            module_dir: Some(dir),
        })
        .collect()
}

fn check_item_path(tree: &Tree, segments: &[&str], token: &str) -> Option<String> {
    if EXTERNAL_PATHS.contains(&segments[0]) {
        return None;
    }
    let all = Scope {
        files: tree.sources.iter().collect(),
        module_dir: None,
    };
    let (scope, rest) = match crate_dir(tree, segments[0]) {
        Some(dir) => (
            Scope {
                files: all
                    .files
                    .iter()
                    .copied()
                    .filter(|s| s.path.starts_with(&format!("{dir}/")))
                    .collect(),
                module_dir: Some(dir),
            },
            &segments[1..],
        ),
        None => (all, segments),
    };
    if resolve(&scope, rest) {
        None
    } else {
        Some(format!(
            "`{token}` does not resolve to a module, fn, type, variant or const"
        ))
    }
}

fn resolve(scope: &Scope<'_>, rest: &[&str]) -> bool {
    let Some((&first, after)) = rest.split_first() else {
        return true; // the crate or module itself
    };
    if is_snake(first) {
        let modules = submodules(scope, first);
        if modules.iter().any(|m| resolve(m, after)) {
            return true;
        }
        // Not a module: a function of this scope (re-exports included).
        return after.is_empty() && scope.files.iter().any(|s| s.fns.contains(first));
    }
    if is_caps(first) {
        return after.is_empty() && scope.files.iter().any(|s| s.consts.contains(first));
    }
    let defining: Vec<&Source> = scope
        .files
        .iter()
        .copied()
        .filter(|s| s.types.contains(first))
        .collect();
    if defining.is_empty() {
        return false;
    }
    let Some((&member, more)) = after.split_first() else {
        return true;
    };
    if !more.is_empty() {
        return false;
    }
    let implementing: Vec<&Source> = scope
        .files
        .iter()
        .copied()
        .filter(|s| s.types.contains(first) || s.impls.contains(first))
        .collect();
    if is_snake(member) {
        implementing.iter().any(|s| s.fns.contains(member))
    } else if is_caps(member) {
        implementing.iter().any(|s| s.consts.contains(member))
    } else {
        // A variant or associated item, named in the defining file.
        defining.iter().any(|s| s.words.contains(member))
    }
}

fn architecture_md() -> String {
    let path = workspace_root().join("ARCHITECTURE.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_path_and_name_in_architecture_md_exists() {
    let tree = Tree::load();
    let mentions = mentions(&architecture_md());
    let problems: Vec<String> = mentions
        .iter()
        .filter_map(|m| {
            check(&tree, m).map(|why| format!("  line {}: `{}`: {why}", m.line, m.token))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md names things that do not exist ({} of {} backticked tokens):\n{}\n\
         Fix the document (or, for a name from outside this workspace, the allow-lists in \
         crates/cli/tests/architecture.rs).",
        problems.len(),
        mentions.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checks_see_the_document_and_the_tree() {
    let tree = Tree::load();
    assert!(
        tree.sources.len() > 100,
        "found only {} Rust files",
        tree.sources.len()
    );
    assert!(
        tree.settings.contains_key("knowledge"),
        "the settings sections were not read"
    );
    let mentions = mentions(&architecture_md());
    // The kinds of name the document relies on are each recognised and checked.
    for expected in [
        "App",
        "TtlCache",
        "App::start_workers",
        "crates/service/src/lib.rs",
    ] {
        assert!(
            mentions.iter().any(|m| m.token == expected),
            "ARCHITECTURE.md no longer mentions `{expected}`; pick another example here"
        );
    }
    let bogus = |token: &str, base: Option<&str>| Mention {
        line: 0,
        token: token.to_owned(),
        base: base.map(str::to_owned),
    };
    for (token, base) in [
        ("NoSuchTypeAnywhere", None),
        ("crates/no-such-crate/src/lib.rs", None),
        ("crates/service/src/{accounts,no_such}.rs", None),
        ("crates/service/src/lib.rs::no_such_fn", None),
        ("App::no_such_method", None),
        ("core::no_such_module", None),
        ("Limiter::NoSuchVariant", None),
        ("NO_SUCH_CONSTANT", None),
        ("knowledge.no_such_key", None),
        ("[no_such_section]", None),
        ("no_such_function_anywhere", None),
        ("app.no_such_service()", None),
        ("routes/no_such.rs", Some("crates/server")),
        ("no_such_file.rs", Some("crates/service")),
    ] {
        assert!(
            check(&tree, &bogus(token, base)).is_some(),
            "`{token}` passed the check"
        );
    }
    for (token, base) in [
        ("crates/llm/src/fast_llama/{avx512,avx2,scalar}.rs", None),
        ("core::member::may_manage", None),
        ("agentbase_crawler::post_guarded", None),
        ("extract::parse_json_object", None),
        ("Limiter::Memory", None),
        ("Store::finish_turn", None),
        ("app.knowledge().retrieve(…)", None),
        ("routes/agents.rs", Some("crates/server")),
        ("/api/v2/agents/{agentId}", None),
        ("Option<Option<T>>", None),
    ] {
        assert_eq!(check(&tree, &bogus(token, base)), None, "`{token}`");
    }
}

/// The body of the `### ` section whose heading names `member` in backticks.
fn section<'a>(markdown: &'a str, member: &str) -> Option<&'a str> {
    let names = [format!("`{member}`"), format!("`{member}/`")];
    let start = markdown
        .lines()
        .position(|l| l.starts_with("### ") && names.iter().any(|n| l.contains(n.as_str())))?;
    let lines: Vec<&str> = markdown.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## ") || l.starts_with("### "))
        .map_or(lines.len(), |p| start + 1 + p);
    let from = lines[..=start].iter().map(|l| l.len() + 1).sum::<usize>();
    let to = lines[..end].iter().map(|l| l.len() + 1).sum::<usize>();
    markdown.get(from..to.min(markdown.len()))
}

/// What every member's section must say.
const SECTION_PARTS: &[&str] = &["Entry points:", "Architecture Invariant:", "Must not know:"];

fn missing_parts(markdown: &str, member: &str) -> Vec<&'static str> {
    match section(markdown, member) {
        None => vec!["`### ` section naming it"],
        Some(body) => SECTION_PARTS
            .iter()
            .copied()
            .filter(|part| !body.contains(part))
            .collect(),
    }
}

#[test]
fn every_member_has_a_section_with_entry_points_invariants_and_what_it_must_not_know() {
    let members = tree::members();
    assert!(
        members.iter().any(|m| m == "crates/core") && members.iter().any(|m| m == "bench/rag"),
        "the members were not read: {members:?}"
    );
    let doc = architecture_md();
    let problems: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let missing = missing_parts(&doc, m);
            (!missing.is_empty()).then(|| format!("  `{m}`: no {}", missing.join(", no ")))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md needs a `### ` section per workspace member, saying what it is \
         for, its \"Entry points:\", at least one \"Architecture Invariant:\" and what it \
         \"Must not know:\":\n{}",
        problems.join("\n")
    );
    // The check sees a missing part.
    let bogus = "### `crates/x`\n\nEntry points: `a`.\n\nMust not know: b.\n\n### `crates/y`\n\
                 **Architecture Invariant:** c.\n";
    assert_eq!(
        missing_parts(bogus, "crates/x"),
        vec!["Architecture Invariant:"]
    );
    assert_eq!(missing_parts(bogus, "crates/z").len(), 1);
}

/// Where `#[allow(unsafe_code)]` may appear: what the `unsafe` invariant in
/// ARCHITECTURE.md names (the kernels, the thread pool and scheduling of llm, search's
/// dot products, the binary's memory module, the crawl benchmark's thread priority).
const UNSAFE_ALLOWED: &[&str] = &[
    "crates/llm/",
    "crates/search/src/dense/simd.rs",
    "crates/cli/src/memory.rs",
    "bench/crawl/src/bin/crawl-bench.rs",
];

#[test]
fn unsafe_code_is_allowed_only_where_architecture_md_says() {
    let tree = Tree::load();
    let elsewhere: Vec<&str> = tree
        .sources
        .iter()
        .filter(|s| {
            s.text
                .lines()
                .any(|l| l.trim_start().starts_with("#") && l.contains("allow(unsafe_code)"))
        })
        .map(|s| s.path.as_str())
        .filter(|p| !UNSAFE_ALLOWED.iter().any(|a| p.starts_with(a)))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "unsafe code allowed outside the places ARCHITECTURE.md names (use a safe API, or \
         change the invariant in the search section and UNSAFE_ALLOWED here): {elsewhere:?}"
    );
    assert!(
        tree.sources
            .iter()
            .any(|s| s.path == "crates/search/src/dense/simd.rs"
                && s.text.contains("allow(unsafe_code)")),
        "the scan no longer sees dense/simd.rs's allow"
    );
}
