//! The knowledge base: an agent's sources (text, Q&A, website links, files), their
//! training state, the chunks training makes of them and what retrieval returns.
//! Validation collects every problem keyed by the wire field name.

use serde::{Deserialize, Serialize};

use crate::{FieldErrors, Millis};

pub const SOURCE_NAME_MAX: usize = 100;
/// Text source content limit (1 MiB), as in the contract.
pub const TEXT_CONTENT_MAX: usize = 1_048_576;
pub const QNA_QUESTIONS_MAX: usize = 50;
/// Uploaded files are at most 20 MB, as on chatbase.co.
pub const FILE_MAX_BYTES: usize = 20 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Text,
    Qna,
    Link,
    File,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [
        SourceKind::Link,
        SourceKind::File,
        SourceKind::Qna,
        SourceKind::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Text => "text",
            SourceKind::Qna => "qna",
            SourceKind::Link => "link",
            SourceKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(SourceKind::Text),
            "qna" => Some(SourceKind::Qna),
            "link" => Some(SourceKind::Link),
            "file" => Some(SourceKind::File),
            _ => None,
        }
    }
}

/// A source's training state, as the contract names them. `toBeDeleted` is never
/// stored: deletes take effect at once (the contract's current behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Created; its first training has not landed yet.
    Untrained,
    /// Live in the agent's knowledge.
    Trained,
    /// Changed since it was trained; the trained version stays live until the new
    /// one lands.
    Updated,
    /// The last training did not land; an earlier trained version, if any, stays live.
    Failed,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Untrained => "untrained",
            SourceStatus::Trained => "trained",
            SourceStatus::Updated => "updated",
            SourceStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "untrained" => Some(SourceStatus::Untrained),
            "trained" => Some(SourceStatus::Trained),
            "updated" => Some(SourceStatus::Updated),
            "failed" => Some(SourceStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    Individual,
    Crawl,
    Sitemap,
}

/// Path rules (`excludePaths`, `includeOnlyPaths`) a link source may have in each list:
/// every link its crawl finds is matched against each.
pub const MAX_PATH_RULES: usize = 50;
/// Characters in one path rule (a regular expression).
pub const MAX_PATH_RULE_CHARS: usize = 500;

/// How a link source is crawled (Chatbase's link source options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkOptions {
    pub link_type: LinkType,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default)]
    pub include_only_paths: Vec<String>,
    #[serde(default)]
    pub slow_scraping: bool,
}

/// What a source holds, by kind. Files keep the text extracted at upload; link
/// sources keep their options here and their fetched pages as documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceContent {
    Text {
        content: String,
    },
    Qna {
        questions: Vec<String>,
        answer: String,
    },
    Link {
        url: String,
        options: LinkOptions,
    },
    File {
        filename: String,
        media_type: String,
        /// The extracted text as Markdown.
        content: String,
        /// For an imported Apify dataset: its pages, each trained with its own URL
        /// and title (`content` then holds them all, for size and duplicates).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pages: Vec<Document>,
    },
}

impl SourceContent {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceContent::Text { .. } => SourceKind::Text,
            SourceContent::Qna { .. } => SourceKind::Qna,
            SourceContent::Link { .. } => SourceKind::Link,
            SourceContent::File { .. } => SourceKind::File,
        }
    }

    /// Bytes counted against the plan's storage (link sources count their pages).
    pub fn size(&self) -> i64 {
        let n = match self {
            SourceContent::Text { content } => content.len(),
            SourceContent::Qna { questions, answer } => {
                questions.iter().map(String::len).sum::<usize>() + answer.len()
            }
            SourceContent::Link { .. } => 0,
            SourceContent::File { content, .. } => content.len(),
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    /// The text that identifies a duplicate: same kind and same key.
    pub fn identity(&self, name: &str) -> String {
        match self {
            SourceContent::Text { content } => format!("text\n{name}\n{content}"),
            SourceContent::Qna { questions, answer } => {
                format!("qna\n{}\n{answer}", questions.join("\n"))
            }
            SourceContent::Link { url, options } => {
                format!("link\n{:?}\n{}", options.link_type, normalise_url(url))
            }
            SourceContent::File { content, .. } => format!("file\n{name}\n{content}"),
        }
    }

    /// The documents training chunks: one for most kinds.
    pub fn documents(&self, name: &str) -> Vec<Document> {
        match self {
            SourceContent::File { pages, .. } if !pages.is_empty() => pages.clone(),
            SourceContent::Text { content } | SourceContent::File { content, .. } => {
                vec![Document {
                    title: name.to_owned(),
                    url: None,
                    markdown: content.clone(),
                }]
            }
            SourceContent::Qna { questions, answer } => {
                let mut md = String::new();
                for q in questions {
                    md.push_str("Q: ");
                    md.push_str(q);
                    md.push('\n');
                }
                md.push_str("A: ");
                md.push_str(answer);
                vec![Document {
                    title: name.to_owned(),
                    url: None,
                    markdown: md,
                }]
            }
            SourceContent::Link { .. } => Vec::new(),
        }
    }
}

fn normalise_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// One page or text of a source, as training sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    pub url: Option<String>,
    pub markdown: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub content: SourceContent,
    pub size: i64,
    pub status: SourceStatus,
    /// Which generation of chunks is live (0: none yet).
    pub generation: i64,
    pub error: Option<String>,
    /// For link sources: fetching, fetched or failed (the contract's crawlStatus).
    pub crawl_status: Option<String>,
    /// For link sources: pages fetched.
    pub pages: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub trained_at: Option<Millis>,
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        self.content.kind()
    }
}

/// A chunk of a source, with its embedding, as the record keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: String,
    pub source_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading: String,
    pub text: String,
    pub embedding: Vec<f32>,
}

/// A training job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Succeeded or failed: nothing more will happen to the job.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(JobStatus::Queued),
            "running" => Some(JobStatus::Running),
            "succeeded" => Some(JobStatus::Succeeded),
            "failed" => Some(JobStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainingJob {
    pub id: String,
    pub agent_id: String,
    pub source_id: String,
    pub status: JobStatus,
    /// Steps done of `total` (pages fetched, chunks embedded).
    pub done: i64,
    pub total: i64,
    pub stage: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What a client asks to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSource {
    pub name: String,
    pub content: SourceContent,
}

impl NewSource {
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.insert("name".into(), "Required".into());
        } else if name.chars().count() > SOURCE_NAME_MAX {
            errors.insert(
                "name".into(),
                format!("at most {SOURCE_NAME_MAX} characters"),
            );
        }
        validate_content(&self.content, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

pub fn validate_content(content: &SourceContent, errors: &mut FieldErrors) {
    match content {
        SourceContent::Text { content } | SourceContent::File { content, .. } => {
            if content.trim().is_empty() {
                errors.insert("content".into(), "must not be empty".into());
            } else if content.chars().count() > TEXT_CONTENT_MAX {
                errors.insert(
                    "content".into(),
                    format!("at most {TEXT_CONTENT_MAX} characters"),
                );
            }
        }
        SourceContent::Qna { questions, answer } => {
            if questions.is_empty() || questions.len() > QNA_QUESTIONS_MAX {
                errors.insert(
                    "questions".into(),
                    format!("1 to {QNA_QUESTIONS_MAX} questions"),
                );
            }
            for (i, q) in questions.iter().enumerate() {
                if q.trim().is_empty() {
                    errors.insert(format!("questions.{i}"), "must not be empty".into());
                }
            }
            if answer.trim().is_empty() {
                errors.insert("answer".into(), "must not be empty".into());
            }
        }
        SourceContent::Link { url, options } => {
            if let Err(problem) = check_http_url(url) {
                errors.insert("url".into(), problem.into());
            }
            check_path_rules("excludePaths", &options.exclude_paths, errors);
            check_path_rules("includeOnlyPaths", &options.include_only_paths, errors);
        }
    }
}

/// A list of path rules is bounded in count and in each rule's length (the crawler
/// compiles them with a size limit of its own).
fn check_path_rules(field: &str, rules: &[String], errors: &mut FieldErrors) {
    if rules.len() > MAX_PATH_RULES {
        let most = format!("at most {MAX_PATH_RULES} rules");
        errors.insert(field.into(), most);
    } else if let Some(i) = rules
        .iter()
        .position(|r| r.chars().count() > MAX_PATH_RULE_CHARS)
    {
        let most = format!("at most {MAX_PATH_RULE_CHARS} characters");
        errors.insert(format!("{field}.{i}"), most);
    }
}

/// An absolute http(s) URL with a host.
pub fn check_http_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an absolute http(s) URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("must be an absolute http(s) URL");
    }
    if url.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, content: &str) -> NewSource {
        NewSource {
            name: name.into(),
            content: SourceContent::Text {
                content: content.into(),
            },
        }
    }

    #[test]
    fn text_sources_need_a_name_and_content() {
        assert!(text("Handbook", "Refunds take 5 days.").validate().is_ok());
        let e = text(" ", "").validate().unwrap_err();
        assert_eq!(e["name"], "Required");
        assert_eq!(e["content"], "must not be empty");
        let e = text(&"n".repeat(101), "x").validate().unwrap_err();
        assert!(e.contains_key("name"));
    }

    #[test]
    fn qna_limits_questions() {
        let qna = |n: usize| NewSource {
            name: "FAQ".into(),
            content: SourceContent::Qna {
                questions: vec!["Why?".into(); n],
                answer: "Because.".into(),
            },
        };
        assert!(qna(1).validate().is_ok());
        assert!(qna(50).validate().is_ok());
        assert!(qna(0).validate().unwrap_err().contains_key("questions"));
        assert!(qna(51).validate().unwrap_err().contains_key("questions"));
    }

    #[test]
    fn link_urls_must_be_http() {
        assert!(check_http_url("https://docs.example.com/guide").is_ok());
        assert!(check_http_url("http://127.0.0.1:8080").is_ok());
        for bad in [
            "ftp://x",
            "docs.example.com",
            "https://",
            "https:// a",
            "javascript:alert(1)//https://x",
            "JavaScript://x.com/%0aalert(1)",
            "https://x.com/\nline",
            "data:text/html,<script>",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicates_are_recognised_by_kind_and_key() {
        let a = SourceContent::Link {
            url: "https://Docs.example.com/".into(),
            options: LinkOptions {
                link_type: LinkType::Crawl,
                exclude_paths: vec![],
                include_only_paths: vec![],
                slow_scraping: false,
            },
        };
        let mut b = a.clone();
        if let SourceContent::Link { url, .. } = &mut b {
            *url = "https://docs.example.com".into();
        }
        assert_eq!(a.identity("x"), b.identity("y"));
        assert_ne!(
            text("a", "same").content.identity("a"),
            text("b", "same").content.identity("b")
        );
    }

    #[test]
    fn qna_becomes_one_document() {
        let c = SourceContent::Qna {
            questions: vec!["How long do refunds take?".into(), "Refund time?".into()],
            answer: "Five days.".into(),
        };
        let docs = c.documents("Refunds");
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0].markdown,
            "Q: How long do refunds take?\nQ: Refund time?\nA: Five days."
        );
    }

    #[test]
    fn link_path_rules_are_bounded_in_count_and_length() {
        let link = |exclude: Vec<String>, include: Vec<String>| NewSource {
            name: "docs".into(),
            content: SourceContent::Link {
                url: "https://docs.example.com/".into(),
                options: LinkOptions {
                    link_type: LinkType::Crawl,
                    exclude_paths: exclude,
                    include_only_paths: include,
                    slow_scraping: false,
                },
            },
        };
        let fine = vec!["^/docs/private".to_string(); MAX_PATH_RULES];
        assert!(link(fine.clone(), fine).validate().is_ok());
        let errors = link(vec!["x".into(); MAX_PATH_RULES + 1], vec![])
            .validate()
            .unwrap_err();
        assert_eq!(errors["excludePaths"], "at most 50 rules");
        let long = "a".repeat(MAX_PATH_RULE_CHARS + 1);
        let errors = link(vec![], vec!["^/ok".into(), long])
            .validate()
            .unwrap_err();
        assert_eq!(errors["includeOnlyPaths.1"], "at most 500 characters");
    }
}
