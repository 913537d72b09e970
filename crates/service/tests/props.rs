//! Property tests for the service's parsers: configuration (TOML file + `AGENTBASE__`
//! environment) and uploaded files of every kind (text, Markdown, HTML, PDF, DOCX,
//! Apify datasets) as arbitrary bytes, generated documents and mutated real ones.
//! Every case runs on its own thread (a runtime worker's 2 MiB stack) under a
//! wall-clock limit, so a runaway case fails instead of hanging the suite.
//!
//! Regressions for the cases the hardening fixed (a PDF nested a hundred thousand
//! deep, non-http dataset URLs) are at the end.

use std::io::Write;
use std::time::Duration;

use agentbase_service::files::{FileError, extract};
use agentbase_service::settings::{Layers, Overrides, Settings};
use proptest::prelude::*;

/// Runs `f` on a thread with a runtime worker's stack and fails when it takes longer
/// than `limit` (the thread is left behind; the case has failed either way).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .expect("spawn a case thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the case ran longer than {limit:?}"),
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Configuration.

fn load(file: Option<String>, env: Vec<(String, String)>) -> Result<Settings, String> {
    Settings::load(Layers {
        file: file.map(|t| ("agentbase.toml".to_owned(), t)),
        env,
        overrides: Overrides::default(),
    })
    .map_err(|e| {
        assert!(!e.key.is_empty() && !e.problem.is_empty(), "{e:?}");
        e.to_string()
    })
}

const SECTIONS: &[&str] = &[
    "server",
    "database",
    "rate_limit",
    "log",
    "plans",
    "agents",
    "chat",
    "providers",
    "models",
    "knowledge",
    "crawler",
    "knowledge__storage_limits",
    "providers__local",
    "models__auto",
    "nope",
];
const KEYS: &[&str] = &[
    "bind",
    "public_url",
    "body_limit_bytes",
    "trusted_proxies",
    "url",
    "max_connections",
    "backend",
    "redis_url",
    "requests",
    "window_secs",
    "format",
    "level",
    "free",
    "default_model",
    "max_tokens",
    "turn_lease_secs",
    "kind",
    "provider",
    "credits",
    "chunk_chars",
    "chunk_overlap",
    "min_relevance",
    "small_model_inline",
    "fusion",
    "embedder",
    "retrieval_limit",
    "max_pages",
    "allow_private_networks",
];

fn toml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_owned()),
        Just("-inf".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        Just("[\"127.0.0.1\", \"::1\"]".to_owned()),
        Just("{ kind = \"openai\" }".to_owned()),
        Just("\"redis\"".to_owned()),
        Just("\"json\"".to_owned()),
        Just("\"0.0.0.0:0\"".to_owned()),
        any::<String>(),
    ]
}

fn toml_file() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            (
                prop::sample::select(SECTIONS),
                prop::collection::vec((prop::sample::select(KEYS), toml_scalar()), 0..4),
            ),
            0..5,
        )
        .prop_map(|sections| {
            sections
                .into_iter()
                .map(|(section, keys)| {
                    let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                    format!("[{}]\n{body}", section.replace("__", "."))
                })
                .collect()
        }),
    ]
}

fn env_vars() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        (prop::sample::select(SECTIONS), prop::sample::select(KEYS)).prop_map(|(s, k)| format!(
            "AGENTBASE__{}__{}",
            s.to_ascii_uppercase(),
            k.to_ascii_uppercase()
        )),
        "AGENTBASE__[A-Za-z_]{0,24}",
        any::<String>(),
    ];
    prop::collection::vec((name, prop_oneof![toml_scalar(), any::<String>()]), 0..6)
}

/// A setting with a valid value, in file form (TOML text) and as it must load.
#[derive(Debug, Clone)]
enum Valid {
    Requests(u32),
    WindowSecs(u64),
    BodyLimit(u64),
    MaxTokens(u32),
    RetrievalLimit(u8),
    LogJson(bool),
    Level(String),
    PublicUrl(String),
}

fn valid() -> impl Strategy<Value = Valid> {
    prop_oneof![
        (1u32..).prop_map(Valid::Requests),
        (1u64..i64::MAX as u64).prop_map(Valid::WindowSecs),
        (1024u64..i64::MAX as u64).prop_map(Valid::BodyLimit),
        (1u32..).prop_map(Valid::MaxTokens),
        (1u8..=50).prop_map(Valid::RetrievalLimit),
        any::<bool>().prop_map(Valid::LogJson),
        "[a-z=,_]{1,16}".prop_map(Valid::Level),
        "https://[a-z]{1,10}\\.test(/[a-z]{0,5})?".prop_map(Valid::PublicUrl),
    ]
}

impl Valid {
    fn key(&self) -> (&'static str, &'static str) {
        match self {
            Valid::Requests(_) => ("rate_limit", "requests"),
            Valid::WindowSecs(_) => ("rate_limit", "window_secs"),
            Valid::BodyLimit(_) => ("server", "body_limit_bytes"),
            Valid::MaxTokens(_) => ("chat", "max_tokens"),
            Valid::RetrievalLimit(_) => ("knowledge", "retrieval_limit"),
            Valid::LogJson(_) => ("log", "format"),
            Valid::Level(_) => ("log", "level"),
            Valid::PublicUrl(_) => ("server", "public_url"),
        }
    }

    /// The value as TOML; the environment takes the same text.
    fn toml(&self) -> String {
        match self {
            Valid::Requests(n) | Valid::MaxTokens(n) => n.to_string(),
            Valid::WindowSecs(n) | Valid::BodyLimit(n) => n.to_string(),
            Valid::RetrievalLimit(n) => n.to_string(),
            Valid::LogJson(json) => format!("\"{}\"", if *json { "json" } else { "text" }),
            Valid::Level(s) | Valid::PublicUrl(s) => format!("\"{s}\""),
        }
    }

    fn holds_in(&self, s: &Settings) -> bool {
        match self {
            Valid::Requests(n) => s.rate_limit.requests == *n,
            Valid::WindowSecs(n) => s.rate_limit.window_secs == *n,
            Valid::BodyLimit(n) => s.server.body_limit_bytes as u64 == *n,
            Valid::MaxTokens(n) => s.chat.max_tokens == *n,
            Valid::RetrievalLimit(n) => s.knowledge.retrieval_limit == usize::from(*n),
            Valid::LogJson(json) => (s.log.format == agentbase_service::LogFormat::Json) == *json,
            Valid::Level(v) => s.log.level == *v,
            Valid::PublicUrl(v) => s.server.public_url == *v,
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_file_and_environment_load_or_name_the_bad_key(file in prop::option::of(toml_file()), env in env_vars()) {
        let loaded = within(LIMIT, move || load(file, env));
        if let Ok(settings) = loaded {
            // What loaded is a complete configuration: written out, it loads the same.
            let text = toml::to_string(&settings).expect("settings serialise");
            prop_assert_eq!(load(Some(text), Vec::new()), Ok(settings));
        }
    }

    #[test]
    fn valid_values_arrive_from_the_file_and_the_environment_wins(
        in_file in prop::collection::vec(valid(), 0..4),
        in_env in prop::collection::vec(valid(), 0..4),
    ) {
        // A key given twice in one file is a TOML error; keep the last of each.
        let dedup = |list: &[Valid]| {
            let mut out: Vec<Valid> = Vec::new();
            for v in list.iter().rev() {
                if !out.iter().any(|o| o.key() == v.key()) {
                    out.push(v.clone());
                }
            }
            out
        };
        let in_file = dedup(&in_file);
        let file: String = in_file
            .iter()
            .map(|v| format!("{}.{} = {}\n", v.key().0, v.key().1, v.toml()))
            .collect();
        let env: Vec<(String, String)> = in_env
            .iter()
            .map(|v| {
                let (section, key) = v.key();
                (
                    format!("AGENTBASE__{}__{}", section.to_ascii_uppercase(), key.to_ascii_uppercase()),
                    v.toml(),
                )
            })
            .collect();
        let settings = load(Some(file), env).unwrap_or_else(|e| panic!("valid values load: {e}"));
        // The environment is applied in order, so its last value per key wins.
        let in_env = dedup(&in_env);
        for v in &in_env {
            prop_assert!(v.holds_in(&settings), "{v:?} from the environment");
        }
        for v in in_file.iter().filter(|f| !in_env.iter().any(|e| e.key() == f.key())) {
            prop_assert!(v.holds_in(&settings), "{v:?} from the file");
        }
    }
}

#[test]
fn a_deeply_nested_configuration_file_is_refused_not_a_crash() {
    for text in [
        format!("a = {}", "[".repeat(100_000)),
        format!("a = {}", "{ b = ".repeat(100_000)),
        // A valid header a thousand tables deep: parsed, then refused as unknown.
        format!("[{}a]", "a.".repeat(1_000)),
    ] {
        let result = within(LIMIT, move || load(Some(text), Vec::new()));
        assert!(result.is_err());
    }
}

// ---------------------------------------------------------------------------------
// Uploaded files.

const NAMES: &[&str] = &[
    "notes.txt",
    "README.md",
    "page.html",
    "manual.pdf",
    "report.docx",
    "dataset.json",
    "dataset.jsonl",
    "data.csv",
    "noextension",
    "archive.zip",
];
const TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain; charset=utf-8"),
    Some("text/html"),
    Some("application/pdf"),
    Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    Some("application/octet-stream"),
    Some(";;;"),
];

/// Extracts on a fresh thread under the limit and checks what holds for any file.
fn extract_checked(
    name: &'static str,
    content_type: Option<&'static str>,
    bytes: Vec<u8>,
) -> Result<agentbase_service::files::FileText, FileError> {
    let result = within(LIMIT, move || extract(name, content_type, &bytes));
    if let Ok(t) = &result {
        assert!(!t.markdown.trim().is_empty(), "{name}: text was found");
        assert!(
            !t.markdown.contains('\0'),
            "{name}: no NUL reaches the record"
        );
        assert!(!t.media_type.is_empty());
    }
    result
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_under_any_name_are_text_or_a_clear_error(
        name in prop::sample::select(NAMES),
        content_type in prop::sample::select(TYPES),
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            any::<String>().prop_map(String::into_bytes),
            // The PDF magic number makes any name a PDF.
            prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| [b"%PDF-1.4\n".as_slice(), &b].concat()),
            // A zip's magic number, for the DOCX reader.
            prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| [b"PK\x03\x04".as_slice(), &b].concat()),
        ],
    ) {
        let _ = extract_checked(name, content_type, bytes);
    }

    #[test]
    fn text_uploads_are_kept_as_they_are(
        name in prop::sample::select(vec!["a.txt", "a.md", "a.csv"]),
        text in prop_oneof![any::<String>(), "[ \t\n\0a-z]{0,12}"],
        broken in any::<bool>(),
    ) {
        prop_assume!(!text.starts_with("%PDF-"));
        let mut bytes = text.clone().into_bytes();
        if broken {
            bytes.push(0xff);
        }
        let result = extract_checked(name, None, bytes.clone());
        let kept = text.replace('\0', "");
        match result {
            _ if bytes.is_empty() => prop_assert_eq!(result, Err(FileError::Empty)),
            Err(FileError::Corrupt { .. }) => prop_assert!(broken),
            Err(FileError::NoText) => prop_assert!(!broken && kept.trim().is_empty()),
            Ok(t) => {
                prop_assert!(!broken);
                prop_assert_eq!(t.markdown, kept);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn any_html_upload_is_markdown_or_no_text(
        parts in prop::collection::vec(
            prop_oneof![
                any::<String>(),
                prop::sample::select(vec![
                    "<div>", "</div>", "<p>", "<h1>", "</h1>", "<title>T</title>", "<table><tr><td>",
                    "<pre><code>", "<a href=\"javascript:x\">", "<script>", "<!--", "&#0;", "\0",
                    "<article class=\"content\">", "<ul><li>", "<base href=\"ftp://x\">",
                ]).prop_map(str::to_owned),
            ],
            0..40,
        ),
    ) {
        match extract_checked("page.html", None, parts.concat().into_bytes()) {
            Ok(t) => prop_assert_eq!(t.media_type, "text/html"),
            Err(e) => prop_assert!(matches!(e, FileError::Empty | FileError::NoText), "{e:?}"),
        }
    }

    #[test]
    fn any_dataset_upload_is_pages_or_a_clear_error(
        items in prop::collection::vec(dataset_item(), 0..6),
        jsonl in any::<bool>(),
        junk in prop::option::of(any::<String>()),
    ) {
        let mut text = if jsonl {
            items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
        } else {
            serde_json::Value::Array(items.clone()).to_string()
        };
        if let Some(j) = &junk {
            text.push_str(j);
        }
        let name = if jsonl { "items.jsonl" } else { "items.json" };
        let result = extract_checked(name, None, text.into_bytes());
        if let Ok(t) = result {
            prop_assert!(!t.pages.is_empty());
            prop_assert!(t.pages.len() <= items.len().max(1));
        }
    }
}

fn dataset_item() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::option::of(prop_oneof![
            "https://example\\.com/[a-z]{0,8}".boxed(),
            Just("javascript:alert(1)".to_owned()).boxed(),
            any::<String>().boxed(),
        ]),
        prop::option::of(any::<String>()),
        prop::option::of(any::<String>()),
        prop::option::of(any::<String>()),
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(url, markdown, text, title, status)| {
            let mut item = serde_json::json!({});
            if let Some(u) = url {
                item["url"] = u.into();
            }
            if let Some(m) = markdown {
                item["markdown"] = m.into();
            }
            if let Some(t) = text {
                item["text"] = t.into();
            }
            if let Some(t) = title {
                item["metadata"] = serde_json::json!({ "title": t });
            }
            if let Some(s) = status {
                item["crawl"] = serde_json::json!({ "httpStatusCode": s });
            }
            item
        })
}

// PDF: generated documents (a page whose resources nest arrays and dictionaries,
// with the content stream's text drawn from the strategy) and mutated real ones.

/// A one-page PDF with a correct cross-reference table.
fn pdf(text: &str, nesting: usize, extra: &str) -> Vec<u8> {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)");
    let content = format!("BT /F1 12 Tf 72 712 Td ({escaped}) Tj ET");
    let nested = format!("{}1{}", "[".repeat(nesting), "]".repeat(nesting));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> /Extra {nested} {extra} >>"
        ),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Byte-level damage: flips, cuts, repeats and PDF/zip syntax spliced in.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Damage::Flip(a, b)),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 0usize..256).prop_map(|(a, n)| Damage::Delete(a, n)),
        (any::<usize>(), 0usize..256).prop_map(|(a, n)| Damage::Duplicate(a, n)),
        (
            any::<usize>(),
            prop_oneof![
                prop::sample::select(vec![
                    "[",
                    "]",
                    "<<",
                    ">>",
                    " 0 R ",
                    "obj",
                    "endobj",
                    "stream\n",
                    "endstream",
                    "/Length 99999999999",
                    "/Filter /FlateDecode",
                    "xref\n0 1\n",
                    "trailer",
                    "startxref\n0\n",
                    "/Type /Pages /Kids [1 0 R]",
                    "(",
                    ")",
                    "\\",
                    "/",
                    "PK\x03\x04",
                    "PK\x01\x02",
                    "PK\x05\x06",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..32),
            ],
        )
            .prop_map(|(a, b)| Damage::Insert(a, b)),
    ]
}

fn damaged(mut bytes: Vec<u8>, damage: &[Damage]) -> Vec<u8> {
    for d in damage {
        let at = |bytes: &Vec<u8>, x: usize| x % (bytes.len() + 1);
        match d {
            Damage::Flip(x, b) => {
                if !bytes.is_empty() {
                    let i = x % bytes.len();
                    bytes[i] ^= b | 1;
                }
            }
            Damage::Truncate(x) => {
                let i = at(&bytes, *x);
                bytes.truncate(i);
            }
            Damage::Delete(x, n) => {
                let i = at(&bytes, *x);
                let j = (i + n).min(bytes.len());
                bytes.drain(i..j);
            }
            Damage::Duplicate(x, n) => {
                let i = at(&bytes, *x);
                let j = (i + n).min(bytes.len());
                let copy = bytes[i..j].to_vec();
                bytes.splice(j..j, copy);
            }
            Damage::Insert(x, b) => {
                let i = at(&bytes, *x);
                bytes.splice(i..i, b.iter().copied());
            }
        }
    }
    bytes
}

fn fixture_pdf() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kettle-manual.pdf"
    ))
    .expect("read the fixture PDF")
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn generated_pdfs_give_their_text(
        text in "[A-Za-z0-9 ,.()\\\\]{1,80}",
        nesting in 0usize..64,
    ) {
        prop_assume!(!text.trim().is_empty());
        let t = extract_checked("doc.pdf", None, pdf(&text, nesting, ""))
            .unwrap_or_else(|e| panic!("a well-formed PDF reads: {e}"));
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        prop_assert!(squash(&t.markdown).contains(&squash(&text)), "{:?} in {:?}", text, t.markdown);
    }

    #[test]
    fn damaged_pdfs_are_text_or_a_clear_error(
        from_fixture in any::<bool>(),
        text in "[a-z ]{1,40}",
        damage in prop::collection::vec(damage(), 1..6),
    ) {
        let original = if from_fixture { fixture_pdf() } else { pdf(&text, 3, "") };
        let _ = extract_checked("doc.pdf", None, damaged(original, &damage));
    }
}

// DOCX: generated documents and damaged zips.

#[derive(Debug, Clone)]
struct Para {
    style: Option<String>,
    numbered: bool,
    runs: Vec<String>,
}

fn para() -> impl Strategy<Value = Para> {
    (
        prop::option::of(prop_oneof![
            (0u64..12).prop_map(|n| format!("Heading{n}")),
            Just("Heading99999999999999999999999".to_owned()),
            Just("Title".to_owned()),
            Just("ListParagraph".to_owned()),
            "[A-Za-z ]{0,12}",
        ]),
        any::<bool>(),
        prop::collection::vec("[A-Za-z0-9 <>&\"'é漢-]{0,20}", 0..4),
    )
        .prop_map(|(style, numbered, runs)| Para {
            style,
            numbered,
            runs,
        })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn docx(paras: &[Para]) -> Vec<u8> {
    let mut body = String::new();
    for p in paras {
        body.push_str("<w:p><w:pPr>");
        if let Some(s) = &p.style {
            body.push_str(&format!("<w:pStyle w:val=\"{}\"/>", xml_escape(s)));
        }
        if p.numbered {
            body.push_str("<w:numPr><w:ilvl w:val=\"0\"/></w:numPr>");
        }
        body.push_str("</w:pPr>");
        for r in &p.runs {
            body.push_str(&format!(
                "<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r>",
                xml_escape(r)
            ));
        }
        body.push_str("</w:p>");
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(document.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn generated_docx_files_give_every_paragraph(paras in prop::collection::vec(para(), 1..8)) {
        let result = extract_checked("report.docx", None, docx(&paras));
        let texts: Vec<String> = paras
            .iter()
            .map(|p| p.runs.concat().trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        match result {
            Ok(t) => {
                for text in &texts {
                    prop_assert!(t.markdown.contains(text.as_str()), "{:?} in {:?}", text, t.markdown);
                }
                for line in t.markdown.lines() {
                    let hashes = line.chars().take_while(|c| *c == '#').count();
                    prop_assert!(hashes <= 6, "heading levels stop at 6: {:?}", line);
                }
            }
            Err(e) => prop_assert!(texts.is_empty() && e == FileError::NoText, "{e:?}"),
        }
    }

    #[test]
    fn damaged_docx_files_are_text_or_a_clear_error(
        paras in prop::collection::vec(para(), 1..4),
        damage in prop::collection::vec(damage(), 1..6),
    ) {
        let _ = extract_checked("report.docx", None, damaged(docx(&paras), &damage));
    }
}

// ---------------------------------------------------------------------------------
// Regressions the hardening fixed: the deep PDF overflowed the parser's stack (which
// kills the process, and this test binary with it, so it stays a separate test).

#[test]
fn a_pdf_nesting_arrays_a_hundred_thousand_deep_is_refused_not_a_crash() {
    let bytes = pdf("hello", 100_000, "");
    let result = extract_checked("deep.pdf", None, bytes);
    assert!(
        matches!(result, Err(FileError::Corrupt { .. })),
        "{result:?}"
    );
}

#[test]
fn dataset_items_with_a_non_http_url_never_become_links() {
    let items = serde_json::json!([
        {"url": "javascript:alert(document.cookie)", "markdown": "Click me, operator."},
        {"url": "https://docs.example.com/a", "markdown": "A real page."},
    ]);
    let t = extract_checked("items.json", None, items.to_string().into_bytes()).unwrap();
    for page in &t.pages {
        if let Some(url) = &page.url {
            assert!(
                url.starts_with("https://") || url.starts_with("http://"),
                "{url}"
            );
        }
    }
}
