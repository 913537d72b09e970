//! Text from uploaded files: plain text and Markdown as they are, HTML through the
//! crawler's main-content extraction (as Markdown), PDF through `pdf-extract`, DOCX
//! from its `word/document.xml` (headings and list items kept as Markdown).
//!
//! Every failure is a [`FileError`] naming the problem; nothing here panics on a
//! corrupt file (the PDF parser is run under `catch_unwind` because it can panic on
//! malformed input). Each format is bounded: PDF nesting and inflated size
//! (`pdf_scan`), the DOCX body's decompressed size, dataset items, and the text
//! produced. What cannot be bounded from here (time, a parser's own recursion) is
//! bounded by running this in a worker process: see [`crate::extractor`].

use std::io::Read;

use agentbase_core::knowledge::{Document, FILE_MAX_BYTES};

mod pdf_scan;

/// A file as it was uploaded, not yet read: [`crate::knowledge::Knowledge`] reads it
/// with the extractor (off the runtime, in a worker process in the server).
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file that cannot be read is a problem with the request's `file`; no free
/// reader, a rejection the caller may retry.
impl From<FileError> for agentbase_core::Error {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Busy => {
                agentbase_core::Error::Rejected(agentbase_core::Rejection::ReaderBusy)
            }
            e => agentbase_core::Error::invalid("file", e.to_string()),
        }
    }
}

/// The text one file may produce.
pub const MAX_TEXT_BYTES: usize = 32 << 20;
/// The decompressed size of a DOCX's `word/document.xml`.
pub const MAX_DOCX_XML_BYTES: u64 = 64 << 20;
/// Items in one Apify dataset upload.
pub const MAX_DATASET_ITEMS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error(
        "unsupported file type `{0}`: upload .txt, .md, .html, .pdf, .docx or an Apify dataset (.json, .jsonl)"
    )]
    Unsupported(String),
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {FILE_MAX_BYTES} bytes")]
    TooLarge,
    #[error("the file could not be read as {kind}: {reason}")]
    Corrupt { kind: &'static str, reason: String },
    #[error("the file has no text to learn from")]
    NoText,
    #[error("the file could not be read: {0}")]
    Unreadable(String),
    #[error("the server is reading too many files at once; try again shortly")]
    Busy,
}

impl FileError {
    /// A short name of the file's format for messages ("PDF", "DOCX", …), from the
    /// same cheap checks [`extract`] starts with.
    pub fn kind_name(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> &'static str {
        match kind_of(filename, content_type, bytes) {
            Some(Kind::Dataset) => "an Apify dataset",
            Some(Kind::Text) => "text",
            Some(Kind::Markdown) => "Markdown",
            Some(Kind::Html) => "HTML",
            Some(Kind::Pdf) => "PDF",
            Some(Kind::Docx) => "DOCX",
            None => "a file",
        }
    }
}

/// The text of a file, as Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct FileText {
    pub media_type: String,
    pub markdown: String,
    /// For an Apify dataset (JSON array or JSONL of Website Content Crawler
    /// items): one document per item with its URL and title.
    pub pages: Vec<Document>,
}

/// Items of an Apify dataset export: `markdown` (or `text`), `url` and
/// `metadata.title` of each; `None` when the JSON is not such a dataset.
fn dataset_pages(bytes: &[u8]) -> Option<Vec<Document>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let items: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(_) => return None,
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(MAX_DATASET_ITEMS + 1)
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .ok()?,
    };
    if items.len() > MAX_DATASET_ITEMS {
        return None;
    }
    let pages: Vec<Document> = items
        .iter()
        .filter(|i| {
            i["crawl"]["httpStatusCode"]
                .as_u64()
                .is_none_or(|s| s < 400)
        })
        .filter_map(|i| {
            let url = i["url"].as_str()?.to_owned();
            // Only http(s) URLs become links (citations are rendered as links):
            // an item with any other is kept as text without one.
            let link = agentbase_core::knowledge::check_http_url(&url)
                .is_ok()
                .then(|| url.clone());
            let markdown = i["markdown"]
                .as_str()
                .filter(|m| !m.trim().is_empty())
                .or_else(|| i["text"].as_str())?
                .to_owned();
            let title = i["metadata"]["title"]
                .as_str()
                .filter(|t| !t.is_empty())
                .unwrap_or(&url)
                .to_owned();
            Some(Document {
                title,
                url: link,
                markdown,
            })
        })
        .collect();
    (!items.is_empty() && pages.len() * 2 >= items.len()).then_some(pages)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dataset,
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
}

fn kind_of(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Option<Kind> {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "txt" | "text" | "csv" => Some(Kind::Text),
        "md" | "markdown" => Some(Kind::Markdown),
        "html" | "htm" => Some(Kind::Html),
        "pdf" => Some(Kind::Pdf),
        "docx" => Some(Kind::Docx),
        "json" | "jsonl" | "ndjson" => Some(Kind::Dataset),
        _ => None,
    };
    let by_type = content_type.and_then(|t| {
        let t = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match t.as_str() {
            "text/plain" | "text/csv" => Some(Kind::Text),
            "text/markdown" => Some(Kind::Markdown),
            "text/html" => Some(Kind::Html),
            "application/pdf" => Some(Kind::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(Kind::Docx)
            }
            _ => None,
        }
    });
    // Magic numbers win over names for the binary formats.
    if bytes.starts_with(b"%PDF-") {
        return Some(Kind::Pdf);
    }
    by_ext.or(by_type)
}

/// The refusals that need no parsing: empty, too large, not a type we read.
pub fn precheck(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Result<(), FileError> {
    checked_kind(filename, content_type, bytes).map(|_| ())
}

fn checked_kind(
    filename: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Kind, FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    if bytes.len() > FILE_MAX_BYTES {
        return Err(FileError::TooLarge);
    }
    kind_of(filename, content_type, bytes).ok_or_else(|| {
        FileError::Unsupported(
            filename
                .rsplit_once('.')
                .map_or(filename, |(_, e)| e)
                .chars()
                .take(32)
                .collect(),
        )
    })
}

/// Extracts the text of an uploaded file, on the calling thread. Untrusted files
/// go through [`crate::extractor::Extractor`], which calls this where a crash or a
/// runaway parse cannot reach the server.
pub fn extract(
    filename: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<FileText, FileError> {
    let kind = checked_kind(filename, content_type, bytes)?;
    let utf8 = |kind: &'static str| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| FileError::Corrupt {
                kind,
                reason: format!("not UTF-8 text ({e})"),
            })
    };
    if kind == Kind::Dataset {
        let pages = dataset_pages(bytes).ok_or_else(|| FileError::Corrupt {
            kind: "an Apify dataset",
            reason: format!(
                "expected a JSON array or JSONL of at most {MAX_DATASET_ITEMS} items with `url` and `markdown` or `text`"
            ),
        })?;
        if pages.is_empty() {
            return Err(FileError::NoText);
        }
        let markdown = pages
            .iter()
            .map(|p| format!("# {}\n\n{}", p.title, p.markdown))
            .collect::<Vec<_>>()
            .join("\n\n");
        return Ok(FileText {
            media_type: "application/json".into(),
            markdown,
            pages,
        });
    }
    let (media_type, markdown) = match kind {
        Kind::Dataset => unreachable!("handled above"),
        Kind::Text => ("text/plain", utf8("text")?),
        Kind::Markdown => ("text/markdown", utf8("Markdown")?),
        Kind::Html => {
            let html = String::from_utf8_lossy(bytes);
            let options = agentbase_crawler::extract::ExtractOptions::default();
            let page = agentbase_crawler::extract::extract(&html, "file:///upload", &options);
            let mut md = page.markdown.unwrap_or(page.text);
            if let Some(title) = page.metadata.title.filter(|t| !t.is_empty())
                && !md.trim_start().starts_with('#')
            {
                md = format!("# {title}\n\n{md}");
            }
            ("text/html", md)
        }
        Kind::Pdf => ("application/pdf", pdf_text(bytes)?),
        Kind::Docx => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx_text(bytes)?,
        ),
    };
    let markdown = markdown.replace('\0', "");
    if markdown.trim().is_empty() {
        return Err(FileError::NoText);
    }
    if markdown.len() > MAX_TEXT_BYTES {
        return Err(FileError::Unreadable(format!(
            "its text is larger than {} MB",
            MAX_TEXT_BYTES >> 20
        )));
    }
    Ok(FileText {
        media_type: media_type.to_owned(),
        markdown,
        pages: Vec::new(),
    })
}

fn pdf_text(bytes: &[u8]) -> Result<String, FileError> {
    pdf_scan::check(bytes).map_err(|reason| FileError::Corrupt {
        kind: "PDF",
        reason,
    })?;
    let owned = bytes.to_vec();
    let result = std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&owned));
    match result {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(FileError::Corrupt {
            kind: "PDF",
            reason: e.to_string(),
        }),
        Err(_) => Err(FileError::Corrupt {
            kind: "PDF",
            reason: "the document structure is broken".into(),
        }),
    }
}

/// Paragraph text of a DOCX, with `Heading N` styles as `#` headings and list
/// paragraphs as `- ` items.
fn docx_text(bytes: &[u8]) -> Result<String, FileError> {
    let corrupt = |reason: String| FileError::Corrupt {
        kind: "DOCX",
        reason,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| corrupt(format!("not a DOCX (zip) file: {e}")))?;
    let mut xml = String::new();
    archive
        .by_name("word/document.xml")
        .map_err(|_| corrupt("word/document.xml is missing".into()))?
        .take(MAX_DOCX_XML_BYTES + 1)
        .read_to_string(&mut xml)
        .map_err(|e| corrupt(format!("word/document.xml is unreadable: {e}")))?;
    if xml.len() as u64 > MAX_DOCX_XML_BYTES {
        return Err(corrupt(format!(
            "word/document.xml expands to more than {} MB",
            MAX_DOCX_XML_BYTES >> 20
        )));
    }
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut para = String::new();
    let mut prefix = String::new();
    let mut in_text = false;
    loop {
        use quick_xml::events::Event;
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == b"t" => in_text = true,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                docx_element(&e, &mut prefix, &mut para);
            }
            Ok(Event::Text(t)) if in_text => {
                para.push_str(&t.unescape().map_err(|e| corrupt(e.to_string()))?);
            }
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => {
                    let text = para.trim();
                    if !text.is_empty() {
                        out.push_str(&prefix);
                        out.push_str(text);
                        out.push_str("\n\n");
                    }
                    para.clear();
                    prefix.clear();
                }
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(e) => return Err(corrupt(format!("broken XML: {e}"))),
            _ => {}
        }
    }
    Ok(out)
}

fn docx_element(e: &quick_xml::events::BytesStart<'_>, prefix: &mut String, para: &mut String) {
    match e.local_name().as_ref() {
        b"pStyle" => {
            for a in e.attributes().flatten() {
                if a.key.local_name().as_ref() == b"val" {
                    let v = String::from_utf8_lossy(&a.value).to_ascii_lowercase();
                    if let Some(n) = v
                        .strip_prefix("heading")
                        .and_then(|n| n.trim().parse::<usize>().ok())
                    {
                        *prefix = format!("{} ", "#".repeat(n.clamp(1, 6)));
                    } else if v == "title" {
                        *prefix = "# ".into();
                    } else if v.contains("list") {
                        *prefix = "- ".into();
                    }
                }
            }
        }
        b"numPr" if prefix.is_empty() => *prefix = "- ".into(),
        b"tab" => para.push('\t'),
        b"br" => para.push('\n'),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn docx(body: &str) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        write!(
            z,
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        )
        .unwrap();
        z.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn text_and_markdown_pass_through() {
        let t = extract("notes.txt", None, b"Refunds take 5 days.").unwrap();
        assert_eq!(t.markdown, "Refunds take 5 days.");
        let m = extract("guide.md", Some("text/markdown"), b"# Guide\n\nHello").unwrap();
        assert_eq!(m.media_type, "text/markdown");
    }

    #[test]
    fn docx_keeps_headings_and_lists() {
        let bytes = docx(
            r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Refunds</w:t></w:r></w:p><w:p><w:r><w:t xml:space="preserve">Refunds take </w:t></w:r><w:r><w:t>five days.</w:t></w:r></w:p><w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t>Keep the receipt</w:t></w:r></w:p>"#,
        );
        let t = extract("policy.docx", None, &bytes).unwrap();
        assert_eq!(
            t.markdown,
            "# Refunds\n\nRefunds take five days.\n\n- Keep the receipt\n\n"
        );
    }

    #[test]
    fn html_becomes_markdown_of_the_main_content() {
        let html = b"<html><head><title>Refunds</title></head><body><nav>Home | About</nav><main><h1>Refund policy</h1><p>Refunds take five days from the day we receive the item back in our warehouse.</p><ul><li>Keep the receipt</li></ul></main><footer>(c) shop</footer></body></html>";
        let t = extract("policy.html", None, html).unwrap();
        assert!(
            t.markdown.contains("Refunds take five days"),
            "{}",
            t.markdown
        );
        assert!(!t.markdown.contains("Home | About"), "{}", t.markdown);
    }

    /// A minimal one-page PDF showing `text` in Helvetica, with a correct xref.
    fn pdf(text: &str) -> Vec<u8> {
        let stream = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> >>"
                .to_owned(),
            format!(
                "<< /Length {} >>\nstream\n{stream}\nendstream",
                stream.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
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

    #[test]
    fn pdf_text_is_extracted() {
        let t = extract(
            "policy.pdf",
            Some("application/pdf"),
            &pdf("Refunds take five days"),
        )
        .unwrap();
        assert_eq!(t.media_type, "application/pdf");
        assert!(
            t.markdown.contains("Refunds take five days"),
            "{:?}",
            t.markdown
        );
    }

    #[test]
    fn an_apify_dataset_becomes_one_page_per_item() {
        let items = r#"[
            {"url": "https://docs.example.com/a", "crawl": {"httpStatusCode": 200}, "metadata": {"title": "A"}, "text": "a", "markdown": "Alpha page"},
            {"url": "https://docs.example.com/b", "metadata": {"title": ""}, "text": "Beta page"},
            {"url": "https://docs.example.com/gone", "crawl": {"httpStatusCode": 404}, "text": "Not found"}
        ]"#;
        let t = extract("dataset.json", None, items.as_bytes()).unwrap();
        assert_eq!(t.pages.len(), 2);
        assert_eq!(t.pages[0].title, "A");
        assert_eq!(t.pages[0].markdown, "Alpha page");
        assert_eq!(t.pages[1].title, "https://docs.example.com/b");
        assert_eq!(
            t.pages[1].url.as_deref(),
            Some("https://docs.example.com/b")
        );
        let jsonl = "{\"url\": \"https://x/1\", \"text\": \"one\"}\n{\"url\": \"https://x/2\", \"text\": \"two\"}\n";
        assert_eq!(
            extract("items.jsonl", None, jsonl.as_bytes())
                .unwrap()
                .pages
                .len(),
            2
        );
        assert!(matches!(
            extract("config.json", None, br#"{"not": "a dataset"}"#),
            Err(FileError::Corrupt { .. })
        ));
    }

    #[test]
    fn bad_files_get_clear_errors() {
        assert_eq!(extract("a.txt", None, b""), Err(FileError::Empty));
        assert!(matches!(
            extract("a.exe", Some("application/octet-stream"), b"MZ\x90"),
            Err(FileError::Unsupported(e)) if e == "exe"
        ));
        assert!(matches!(
            extract("a.pdf", None, b"%PDF-1.7 this is not really a pdf"),
            Err(FileError::Corrupt { kind: "PDF", .. })
        ));
        assert!(matches!(
            extract("a.docx", None, b"PK not a zip"),
            Err(FileError::Corrupt { kind: "DOCX", .. })
        ));
        assert!(matches!(
            extract("a.txt", None, &[0xff, 0xfe, 0xfd]),
            Err(FileError::Corrupt { kind: "text", .. })
        ));
        assert_eq!(extract("a.md", None, b"   \n  "), Err(FileError::NoText));
    }
}
