//! One HTML page → title, metadata, readable text, Markdown, outgoing links.
//!
//! The pipeline mirrors WCC's: the remove selector runs first, then the keep selector,
//! then the HTML transformer (`readableText` = Readability-style main content,
//! `readableTextIfPossible` = that when the page looks like an article, else the whole
//! cleaned page, `none` = the whole cleaned page), then text and Markdown are rendered
//! from the same tree.

use std::collections::HashSet;

use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::dom::{Data, Dom, Frame};
use crate::readability;
use crate::render::{self, Mode};

/// WCC's default `removeElementsCssSelector`.
pub const DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR: &str = "nav, footer, script, style, noscript, svg, img[src^='data:'], [role=\"alert\"], [role=\"banner\"], [role=\"dialog\"], [role=\"alertdialog\"], [role=\"region\"][aria-label*=\"skip\" i], [aria-modal=\"true\"]";

/// WCC's `htmlTransformer` values that work without a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HtmlTransformer {
    /// Readability-style main content (WCC's default).
    #[default]
    ReadableText,
    /// Main content when the page looks like an article, else the whole cleaned page.
    ReadableTextIfPossible,
    /// The whole page after the remove/keep selectors.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    pub remove_elements_css_selector: String,
    pub keep_elements_css_selector: String,
    pub html_transformer: HtmlTransformer,
    pub readable_text_char_threshold: usize,
    pub save_markdown: bool,
    pub save_html: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            remove_elements_css_selector: DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR.to_string(),
            keep_elements_css_selector: String::new(),
            html_transformer: HtmlTransformer::ReadableText,
            readable_text_char_threshold: 100,
            save_markdown: true,
            save_html: false,
        }
    }
}

/// A CSS selector option that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: invalid CSS selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub field: &'static str,
    pub selector: String,
    pub reason: String,
}

impl ExtractOptions {
    /// Checks that both selectors parse (an empty selector is "not set").
    pub fn validate(&self) -> Result<(), SelectorError> {
        parse_selector(
            "removeElementsCssSelector",
            &self.remove_elements_css_selector,
        )?;
        parse_selector("keepElementsCssSelector", &self.keep_elements_css_selector)?;
        Ok(())
    }
}

/// Longest selector option taken. WCC's default remove selector is about 400
/// characters; the parser recurses into `:not()`/`:is()`, so nesting is bounded too.
pub const MAX_SELECTOR_CHARS: usize = 8192;
const MAX_SELECTOR_NESTING: usize = 16;

pub(crate) fn parse_selector(
    field: &'static str,
    s: &str,
) -> Result<Option<Selector>, SelectorError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let refuse = |reason: String| SelectorError {
        field,
        selector: s.chars().take(120).collect(),
        reason,
    };
    if s.len() > MAX_SELECTOR_CHARS {
        return Err(refuse(format!(
            "longer than {MAX_SELECTOR_CHARS} characters"
        )));
    }
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                if depth > MAX_SELECTOR_NESTING {
                    return Err(refuse(format!(
                        "brackets nested more than {MAX_SELECTOR_NESTING} deep"
                    )));
                }
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Selector::parse(s)
        .map(Some)
        .map_err(|e| refuse(e.to_string()))
}

/// One `og:*` (or `article:*`, `twitter:*`) meta tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenGraphEntry {
    pub property: String,
    pub content: String,
}

/// Page metadata in WCC's shape (without `headers`, which come from the response).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageMetadata {
    pub canonical_url: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub keywords: Option<String>,
    pub language_code: Option<String>,
    pub json_ld: Vec<serde_json::Value>,
    pub open_graph: Vec<OpenGraphEntry>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    /// Plain text of the content, one block per line group.
    pub text: String,
    /// GFM Markdown of the content (when `save_markdown`).
    pub markdown: Option<String>,
    /// The cleaned content as HTML (when `save_html`).
    pub html: Option<String>,
    pub metadata: PageMetadata,
    /// Absolute http(s) links found on the whole page (before cleaning), in page order,
    /// without duplicates; fragments kept (the crawler decides).
    pub links: Vec<String>,
    /// Whether the readability pass found article-like content.
    pub readable: bool,
}

/// Extracts one page. `url` is the page's address, used to resolve relative links
/// (a `<base href>` in the page wins). Invalid selectors are ignored here; check them up
/// front with [`ExtractOptions::validate`].
pub fn extract(html: &str, url: &str, options: &ExtractOptions) -> Extracted {
    extract_page(html, url, options, &[], None).0
}

/// Like [`extract`], with the documents of the page's iframes, as (absolute URL, HTML):
/// each is inlined where its `<iframe>` stands and cleaned like the page, and its links
/// count as the page's (also for frames in `<noscript>`, which a client without
/// scripts would load). This is how an HTTP crawl sees what a browser shows in frames.
pub fn extract_with_frames(
    html: &str,
    url: &str,
    options: &ExtractOptions,
    frames: &[(String, String)],
) -> Extracted {
    extract_page(html, url, options, frames, None).0
}

/// [`extract_with_frames`], also counting the page's matches of `probe` (at most 1000)
/// that a browser would click.
pub(crate) fn extract_page(
    html: &str,
    url: &str,
    options: &ExtractOptions,
    frames: &[(String, String)],
    probe: Option<&Selector>,
) -> (Extracted, usize) {
    let html = crate::nesting::cut_deep_nesting(html, crate::nesting::MAX_NESTING);
    let doc = Html::parse_document(&html);
    let page_url = Url::parse(url).ok();
    let base = base_url(&doc, page_url.as_ref());
    let metadata = metadata(&doc, base.as_ref());
    let mut links = links(&doc, base.as_ref());
    let probed = probe.map_or(0, |p| clickable_matches(&doc, p));
    let frame_docs: Vec<(Url, Html)> = frames
        .iter()
        .filter_map(|(u, h)| {
            // Frames are inlined only into the page itself, so the tree nests at
            // most twice the bound.
            let h = crate::nesting::cut_deep_nesting(h, crate::nesting::MAX_NESTING);
            Some((Url::parse(u).ok()?, Html::parse_document(&h)))
        })
        .collect();
    add_frame_links(&mut links, &frame_docs);

    let remove = parse_selector(
        "removeElementsCssSelector",
        &options.remove_elements_css_selector,
    )
    .ok()
    .flatten();
    let keep = parse_selector(
        "keepElementsCssSelector",
        &options.keep_elements_css_selector,
    )
    .ok()
    .flatten();
    let removed: HashSet<ego_tree::NodeId> = match &remove {
        Some(sel) => doc.select(sel).map(|e| e.id()).collect(),
        None => HashSet::new(),
    };
    let kept = keep.as_ref().map(|sel| outermost_matches(&doc, sel));
    let frames: Vec<Frame<'_>> = frame_docs
        .iter()
        .map(|(u, d)| Frame {
            url: u.as_str(),
            doc: d,
            removed: match &remove {
                Some(sel) => d.select(sel).map(|e| e.id()).collect(),
                None => HashSet::new(),
            },
            base: base_url(d, Some(u)),
        })
        .collect();
    let (mut dom, root) = Dom::from_html(&doc, &removed, kept.as_deref(), &frames, base.as_ref());
    absolutize(&mut dom, base.as_ref());

    let (content_dom, content_root, readable) = match options.html_transformer {
        HtmlTransformer::None => (dom, root, false),
        t => match readability::extract_article(
            &dom,
            root,
            options.readable_text_char_threshold,
            metadata.title.as_deref(),
        ) {
            Some(a)
                if t == HtmlTransformer::ReadableText
                    || a.text_len >= options.readable_text_char_threshold =>
            {
                (a.dom, a.root, true)
            }
            _ => (dom, root, false),
        },
    };
    let text = render::render(&content_dom, content_root, Mode::Text);
    let markdown = options
        .save_markdown
        .then(|| render::render(&content_dom, content_root, Mode::Markdown));
    let html = options
        .save_html
        .then(|| to_html(&content_dom, content_root));
    let out = Extracted {
        title: metadata.title.clone(),
        text,
        markdown,
        html,
        metadata,
        links,
        readable,
    };
    (out, probed)
}

/// The page's matches of `probe` (at most 1000) a browser would click open: menus
/// and search boxes are left alone there (browser/page.js), so not counted here.
fn clickable_matches(doc: &Html, probe: &Selector) -> usize {
    doc.select(probe)
        .take(1000)
        .filter(|e| {
            let v = e.value();
            let said = [v.id(), v.attr("aria-controls"), v.attr("aria-label")];
            v.attr("aria-haspopup").is_none()
                && !said
                    .iter()
                    .flatten()
                    .any(|s| s.to_ascii_lowercase().contains("search"))
        })
        .count()
}

/// The elements matching `sel` that no other match contains: nested matches would
/// repeat their content.
fn outermost_matches(doc: &Html, sel: &Selector) -> Vec<ego_tree::NodeId> {
    let ids: Vec<_> = doc.select(sel).map(|e| e.id()).collect();
    let set: HashSet<_> = ids.iter().copied().collect();
    ids.into_iter()
        .filter(|id| {
            let mut cur = doc.tree.get(*id).and_then(|n| n.parent());
            while let Some(p) = cur {
                if set.contains(&p.id()) {
                    return false;
                }
                cur = p.parent();
            }
            true
        })
        .collect()
}

/// Adds the links of the inlined frames that the page does not have already.
fn add_frame_links(links: &mut Vec<String>, frame_docs: &[(Url, Html)]) {
    if frame_docs.is_empty() {
        return;
    }
    let mut seen: HashSet<String> = links.iter().cloned().collect();
    for (u, d) in frame_docs {
        for l in self::links(d, base_url(d, Some(u)).as_ref()) {
            if seen.insert(l.clone()) {
                links.push(l);
            }
        }
    }
}

fn base_url(doc: &Html, page: Option<&Url>) -> Option<Url> {
    let sel = Selector::parse("base[href]").ok()?;
    if let Some(href) = doc.select(&sel).next().and_then(|b| b.attr("href")) {
        let joined = match page {
            Some(p) => p.join(href.trim()).ok(),
            None => Url::parse(href.trim()).ok(),
        };
        if joined.is_some() {
            return joined;
        }
    }
    page.cloned()
}

fn resolve(base: Option<&Url>, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let u = match base {
        Some(b) => b.join(href).ok()?,
        None => Url::parse(href).ok()?,
    };
    matches!(u.scheme(), "http" | "https").then_some(u)
}

fn links(doc: &Html, base: Option<&Url>) -> Vec<String> {
    let Ok(sel) = Selector::parse("a[href], area[href]") else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for a in doc.select(&sel) {
        if let Some(href) = a.attr("href")
            && let Some(u) = resolve(base, href)
        {
            let s = u.to_string();
            if seen.insert(s.clone()) {
                out.push(s);
            }
        }
    }
    out
}

fn absolutize(dom: &mut Dom, base: Option<&Url>) {
    let Some(base) = base else { return };
    for node in &mut dom.nodes {
        if let Data::Element { name, attrs } = &mut node.data {
            let key = match name.as_str() {
                "a" => "href",
                "img" => "src",
                _ => continue,
            };
            for (k, v) in attrs.iter_mut() {
                if k == key
                    && !v.starts_with('#')
                    && let Ok(u) = base.join(v.trim())
                {
                    *v = u.to_string();
                }
            }
        }
    }
}

fn clean_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn metadata(doc: &Html, base: Option<&Url>) -> PageMetadata {
    let mut m = PageMetadata::default();
    let meta_named = |names: &[&str]| -> Option<String> {
        let sel = Selector::parse("meta").ok()?;
        for name in names {
            for e in doc.select(&sel) {
                let key = e
                    .attr("name")
                    .or_else(|| e.attr("property"))
                    .or_else(|| e.attr("itemprop"))
                    .unwrap_or("");
                if key.eq_ignore_ascii_case(name)
                    && let Some(c) = e.attr("content")
                {
                    let c = clean_ws(c);
                    if !c.is_empty() {
                        return Some(c);
                    }
                }
            }
        }
        None
    };
    let title_tag = Selector::parse("title").ok().and_then(|s| {
        doc.select(&s)
            .next()
            .map(|t| clean_ws(&t.text().collect::<String>()))
            .filter(|t| !t.is_empty())
    });
    m.title = title_tag.or_else(|| meta_named(&["og:title", "twitter:title"]));
    m.description = meta_named(&["description", "og:description", "twitter:description"]);
    m.author = meta_named(&[
        "author",
        "article:author",
        "byl",
        "dc.creator",
        "sailthru.author",
    ]);
    m.keywords = meta_named(&["keywords", "news_keywords"]);
    if let Ok(sel) = Selector::parse("html[lang]") {
        m.language_code = doc
            .select(&sel)
            .next()
            .and_then(|h| h.attr("lang"))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
    }
    if m.language_code.is_none() {
        m.language_code = meta_named(&["og:locale", "language", "content-language"]);
    }
    if let Ok(sel) = Selector::parse("link[rel][href]") {
        for l in doc.select(&sel) {
            let rel = l.attr("rel").unwrap_or("");
            if rel
                .split_whitespace()
                .any(|r| r.eq_ignore_ascii_case("canonical"))
                && let Some(u) = l.attr("href").and_then(|h| resolve(base, h))
            {
                m.canonical_url = Some(u.to_string());
                break;
            }
        }
    }
    if let Ok(sel) = Selector::parse("script[type]") {
        for s in doc.select(&sel) {
            let ty = s.attr("type").unwrap_or("");
            if ty.trim().eq_ignore_ascii_case("application/ld+json") {
                let raw: String = s.text().collect();
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.trim()) {
                    m.json_ld.push(v);
                }
            }
        }
    }
    if let Ok(sel) = Selector::parse("meta[content]") {
        for e in doc.select(&sel) {
            let prop = e.attr("property").or_else(|| e.attr("name")).unwrap_or("");
            let p = prop.to_ascii_lowercase();
            if p.starts_with("og:") || p.starts_with("article:") || p.starts_with("twitter:") {
                m.open_graph.push(OpenGraphEntry {
                    property: prop.to_string(),
                    content: e.attr("content").unwrap_or("").to_string(),
                });
            }
        }
    }
    m
}

fn escape_html(s: &str, attr: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' if attr => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

const VOID: &[&str] = &["br", "hr", "img", "wbr", "col", "area"];

/// Serialises the cleaned content back to HTML (only structural attributes kept).
fn to_html(dom: &Dom, root: usize) -> String {
    enum Step {
        Open(usize),
        Close(String),
    }
    let mut out = String::new();
    let mut stack = vec![Step::Open(root)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(name) => {
                out.push_str("</");
                out.push_str(&name);
                out.push('>');
            }
            Step::Open(id) => match &dom.nodes[id].data {
                Data::Text(t) => out.push_str(&escape_html(t, false)),
                Data::Element { name, attrs } => {
                    out.push('<');
                    out.push_str(name);
                    for (k, v) in attrs {
                        if matches!(
                            k.as_str(),
                            "href" | "src" | "alt" | "title" | "colspan" | "rowspan" | "lang"
                        ) || (k == "class" && name == "code")
                        {
                            out.push(' ');
                            out.push_str(k);
                            out.push_str("=\"");
                            out.push_str(&escape_html(v, true));
                            out.push('"');
                        }
                    }
                    out.push('>');
                    if VOID.contains(&name.as_str()) {
                        continue;
                    }
                    stack.push(Step::Close(name.clone()));
                    for c in dom.nodes[id].children.iter().rev() {
                        stack.push(Step::Open(*c));
                    }
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html lang="de"><head>
<title>The Title</title><base href="https://example.com/docs/">
<link rel="canonical" href="/docs/page">
<meta name="description" content=" A  page. "><meta name="author" content="Ann">
<meta property="og:title" content="OG Title"><meta name="keywords" content="a, b">
<script type="application/ld+json">{"@type": "Article", "headline": "H"}</script>
<script>var junk = 1;</script>
</head><body>
<nav><a href="/nav">Nav link</a></nav>
<div class="sidebar"><a href="side.html">Sidebar</a></div>
<article>
<h1>The Title</h1>
<p>First paragraph of the article, long enough, with commas, to be scored as content by the readability pass.</p>
<h2>Section <em>two</em></h2>
<ul><li>one <a href="one.html">link</a></li><li>two<ol><li>nested</li></ol></li></ul>
<blockquote><p>Quoted words.</p></blockquote>
<pre><code class="language-python">def f():
    return 1</code></pre>
<table><tr><td>a</td><td>b|c</td></tr><tr><td>1</td><td>2</td></tr></table>
<p>Second paragraph, also long enough to count as article text, mentioning <strong>bold</strong> and <code>code</code>.</p>
<div class="keep-me"><p>Kept block text.</p></div>
</article>
<footer>Footer text</footer>
</body></html>"#;

    #[test]
    fn metadata_links_and_markdown_come_out_of_one_page() {
        let out = extract(
            PAGE,
            "https://example.com/docs/page",
            &ExtractOptions::default(),
        );
        let m = &out.metadata;
        assert_eq!(m.title.as_deref(), Some("The Title"));
        assert_eq!(
            m.canonical_url.as_deref(),
            Some("https://example.com/docs/page")
        );
        assert_eq!(m.description.as_deref(), Some("A page."));
        assert_eq!(m.author.as_deref(), Some("Ann"));
        assert_eq!(m.keywords.as_deref(), Some("a, b"));
        assert_eq!(m.language_code.as_deref(), Some("de"));
        assert_eq!(m.json_ld[0]["headline"], "H");
        assert_eq!(m.open_graph[0].property, "og:title");
        assert!(out.links.contains(&"https://example.com/nav".to_string()));
        assert!(
            out.links
                .contains(&"https://example.com/docs/one.html".to_string())
        );
        let md = out.markdown.unwrap();
        assert!(md.contains("## Section *two*"), "{md}");
        assert!(
            md.contains("- one [link](https://example.com/docs/one.html)"),
            "{md}"
        );
        assert!(md.contains("- two\n  1. nested"), "{md}");
        assert!(md.contains("> Quoted words."), "{md}");
        assert!(
            md.contains("```python\ndef f():\n    return 1\n```"),
            "{md}"
        );
        assert!(md.contains("| a | b\\|c |"), "{md}");
        assert!(md.contains("**bold** and `code`"), "{md}");
        for junk in ["Nav link", "Sidebar", "Footer text", "junk", "# The Title"] {
            assert!(!md.contains(junk), "{junk} leaked: {md}");
            assert!(
                !out.text.contains(junk) || junk == "# The Title",
                "{junk} leaked"
            );
        }
        assert!(out.text.contains("First paragraph") && out.text.contains("Kept block text."));
        assert!(out.html.is_none());
        assert!(out.readable);
    }

    #[test]
    fn keep_selector_transformer_none_and_save_html() {
        let keep = ExtractOptions {
            keep_elements_css_selector: ".keep-me".into(),
            html_transformer: HtmlTransformer::None,
            save_html: true,
            ..ExtractOptions::default()
        };
        let out = extract(PAGE, "https://example.com/docs/page", &keep);
        assert_eq!(out.text, "Kept block text.");
        assert_eq!(
            out.html.as_deref(),
            Some("<body><div><p>Kept block text.</p></div></body>")
        );
        let none = ExtractOptions {
            html_transformer: HtmlTransformer::None,
            ..ExtractOptions::default()
        };
        let out = extract(PAGE, "https://example.com/docs/page", &none);
        assert!(
            out.text.contains("Sidebar"),
            "none keeps everything but the removed elements"
        );
        assert!(!out.text.contains("Nav link") && !out.text.contains("Footer text"));
        assert!(!out.readable);
        let nothing_removed = ExtractOptions {
            remove_elements_css_selector: "dummy_keep_everything".into(),
            html_transformer: HtmlTransformer::None,
            ..ExtractOptions::default()
        };
        let out = extract(PAGE, "https://example.com/docs/page", &nothing_removed);
        assert!(out.text.contains("Nav link") && out.text.contains("Footer text"));
        assert!(!out.text.contains("junk"), "script text never leaks");
    }

    #[test]
    fn readable_if_possible_falls_back_on_non_articles() {
        let page =
            "<html><body><ul><li><a href=/a>A</a></li><li><a href=/b>B</a></li></ul></body></html>";
        let options = ExtractOptions {
            html_transformer: HtmlTransformer::ReadableTextIfPossible,
            ..ExtractOptions::default()
        };
        let out = extract(page, "https://x.test/", &options);
        assert_eq!(out.text, "A\nB");
        assert!(!out.readable);
    }

    #[test]
    fn bad_selectors_are_reported_by_validate_and_ignored_by_extract() {
        let bad = ExtractOptions {
            keep_elements_css_selector: "p[[".into(),
            ..ExtractOptions::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "keepElementsCssSelector");
        assert!(
            extract(PAGE, "not a url", &bad)
                .text
                .contains("First paragraph")
        );
        assert!(ExtractOptions::default().validate().is_ok());
    }

    #[test]
    fn frames_are_inlined_where_they_stand_and_their_links_count() {
        let page = r#"<html><body><noscript><iframe src="toc.html"></iframe></noscript>
<article><h1>Guide</h1><p>Before the frame, a paragraph long enough to count as content for the readability pass.</p>
<iframe src="/frames/inner.html"></iframe>
<p>After the frame, another paragraph long enough to count as content for the readability pass.</p></article></body></html>"#;
        let frames = vec![
            (
                "https://x.test/book/toc.html".to_string(),
                r#"<html><body><ol><li><a href="ch1.html">Chapter 1</a></li><li><a href="sub/ch2.html">Chapter 2</a></li></ol></body></html>"#.to_string(),
            ),
            (
                "https://x.test/frames/inner.html".to_string(),
                r#"<html><body><p>Framed words, said inside the iframe, <a href="deep.html">deeper</a>.</p><nav>Frame nav</nav></body></html>"#.to_string(),
            ),
        ];
        let out = extract_with_frames(
            page,
            "https://x.test/book/index.html",
            &ExtractOptions::default(),
            &frames,
        );
        for l in [
            "https://x.test/book/ch1.html",
            "https://x.test/book/sub/ch2.html",
            "https://x.test/frames/deep.html",
        ] {
            assert!(out.links.contains(&l.to_string()), "{l} in {:?}", out.links);
        }
        let md = out.markdown.unwrap();
        let (before, framed, after) = (
            md.find("Before the frame").unwrap(),
            md.find("Framed words").unwrap(),
            md.find("After the frame").unwrap(),
        );
        assert!(before < framed && framed < after, "{md}");
        assert!(
            md.contains("[deeper](https://x.test/frames/deep.html)"),
            "{md}"
        );
        assert!(
            !md.contains("Frame nav"),
            "the remove selector applies inside frames: {md}"
        );
        assert!(
            !md.contains("Chapter 1"),
            "a <noscript> frame adds links, not text: {md}"
        );
        let plain = extract(
            page,
            "https://x.test/book/index.html",
            &ExtractOptions::default(),
        );
        assert!(!plain.text.contains("Framed words"));
    }
}
