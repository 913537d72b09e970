//! Arena → Markdown (GFM: headings, lists, pipe tables, fenced code with language,
//! links, emphasis, quotes, images) and arena → plain text (blocks on their own lines).

use crate::dom::{Data, Dom, Id};
use crate::readability::BLOCK_TAGS;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Markdown,
    Text,
}

/// Nesting deeper than this is flattened to text so hostile pages cannot exhaust the stack.
const MAX_DEPTH: usize = 200;

pub(crate) fn render(dom: &Dom, root: Id, mode: Mode) -> String {
    let mut r = Renderer { dom, mode };
    let out = r.blocks(root, 0);
    finalize(&out)
}

/// Collapses runs of blank lines and trims line ends outside code fences.
fn finalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    let mut in_fence = false;
    for line in s.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let l = if in_fence { line } else { line.trim_end() };
        if l.trim().is_empty() && !in_fence {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank > 0 {
                out.push('\n');
            }
        }
        blank = 0;
        out.push_str(l);
    }
    out
}

struct Renderer<'a> {
    dom: &'a Dom,
    mode: Mode,
}

/// Accumulates inline content with HTML whitespace collapsing.
#[derive(Default)]
struct Inline {
    s: String,
    space: bool,
}

impl Inline {
    fn text(&mut self, t: &str) {
        for c in t.chars() {
            if c.is_whitespace() {
                self.space = true;
            } else {
                if self.space && !self.s.is_empty() && !self.s.ends_with('\n') {
                    self.s.push(' ');
                }
                self.space = false;
                self.s.push(c);
            }
        }
    }
    fn raw(&mut self, t: &str) {
        if self.space && !self.s.is_empty() && !self.s.ends_with('\n') {
            self.s.push(' ');
        }
        self.space = false;
        self.s.push_str(t);
    }
    fn newline(&mut self, markdown: bool) {
        if markdown && !self.s.is_empty() {
            self.s.push_str("  ");
        }
        self.s.push('\n');
        self.space = false;
    }
}

fn escape_md(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '*' | '_' | '`' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Renderer<'_> {
    fn md(&self) -> bool {
        self.mode == Mode::Markdown
    }

    fn is_block(&self, id: Id) -> bool {
        match &self.dom.nodes[id].data {
            Data::Element { name, .. } => BLOCK_TAGS.contains(&name.as_str()),
            Data::Text(_) => false,
        }
    }

    /// Renders the children of `id` as a sequence of blocks separated by blank lines.
    fn blocks(&mut self, id: Id, depth: usize) -> String {
        let mut out = String::new();
        let mut inline = Inline::default();
        let children = self.dom.nodes[id].children.clone();
        for c in children {
            if self.is_block(c) {
                flush_inline(&mut out, &mut inline);
                let b = self.block(c, depth + 1);
                push_block(&mut out, &b);
            } else {
                self.inline(c, &mut inline, depth + 1);
            }
        }
        flush_inline(&mut out, &mut inline);
        out
    }

    fn block(&mut self, id: Id, depth: usize) -> String {
        let dom = self.dom;
        if depth > MAX_DEPTH {
            let mut i = Inline::default();
            i.text(&dom.text(id));
            return i.s;
        }
        let tag = dom.tag(id).to_string();
        let md = self.md();
        match tag.as_str() {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = (tag.as_bytes()[1] - b'0') as usize;
                let text = self.inline_of(id, depth).replace('\n', " ");
                let text = text.trim();
                if text.is_empty() {
                    return String::new();
                }
                if md {
                    format!("{} {}", "#".repeat(level), text)
                } else {
                    text.to_string()
                }
            }
            "pre" => {
                let code = dom.text(id);
                let code = code.trim_matches('\n');
                if md {
                    let lang = code_language(dom, id);
                    let fence = if code.contains("```") { "~~~~" } else { "```" };
                    format!("{fence}{lang}\n{code}\n{fence}")
                } else {
                    code.to_string()
                }
            }
            "ul" | "ol" | "menu" | "dir" => self.list(id, tag == "ol", depth),
            "blockquote" => {
                let inner = self.blocks(id, depth);
                if md {
                    inner
                        .lines()
                        .map(|l| {
                            if l.is_empty() {
                                ">".to_string()
                            } else {
                                format!("> {l}")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                } else {
                    inner
                }
            }
            "table" => self.table(id, depth),
            "hr" => {
                if md {
                    "---".to_string()
                } else {
                    String::new()
                }
            }
            "dt" => {
                let t = self.inline_of(id, depth);
                let t = t.trim();
                if md && !t.is_empty() {
                    format!("**{t}**")
                } else {
                    t.to_string()
                }
            }
            _ => self.blocks(id, depth),
        }
    }

    fn list(&mut self, id: Id, ordered: bool, depth: usize) -> String {
        let dom = self.dom;
        let mut out = String::new();
        let mut n = dom
            .attr(id, "start")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1);
        for c in dom.nodes[id].children.clone() {
            let body = if dom.tag(c) == "li" {
                let b = self.blocks(c, depth + 1);
                // A tight item (no paragraphs or code inside) keeps its nested list on
                // the next line instead of after a blank one.
                let tight = !dom
                    .descendants(c)
                    .iter()
                    .any(|d| matches!(dom.tag(*d), "p" | "pre" | "blockquote" | "table"));
                if tight { b.replace("\n\n", "\n") } else { b }
            } else if self.is_block(c) {
                self.block(c, depth + 1)
            } else {
                let mut i = Inline::default();
                self.inline(c, &mut i, depth + 1);
                i.s
            };
            let body = body.trim();
            if body.is_empty() {
                continue;
            }
            let marker = if !self.md() {
                String::new()
            } else if ordered {
                format!("{n}. ")
            } else {
                "- ".to_string()
            };
            n += 1;
            let indent = " ".repeat(marker.len());
            if !out.is_empty() {
                out.push('\n');
            }
            for (i, line) in body.lines().enumerate() {
                if i == 0 {
                    out.push_str(&marker);
                    out.push_str(line);
                } else {
                    out.push('\n');
                    if !line.is_empty() {
                        out.push_str(&indent);
                        out.push_str(line);
                    }
                }
            }
        }
        out
    }

    fn table(&mut self, id: Id, depth: usize) -> String {
        let dom = self.dom;
        let mut caption = String::new();
        for &c in &dom.nodes[id].children {
            if dom.tag(c) == "caption" {
                caption = self.inline_of(c, depth).trim().to_string();
            }
        }
        let rows = self.table_rows(id, depth);
        if rows.is_empty() {
            caption
        } else if self.md() {
            markdown_table(caption, &rows)
        } else {
            let mut out = caption;
            for (cells, _) in rows {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(
                    &cells
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            out
        }
    }

    /// The table's rows in document order (through `thead`, `tbody`, `tfoot`), each
    /// with its cells (a `colspan` adds empty cells) and whether it holds only `th`.
    fn table_rows(&mut self, id: Id, depth: usize) -> Vec<(Vec<String>, bool)> {
        let dom = self.dom;
        let mut stack = vec![id];
        let mut trs = Vec::new();
        while let Some(n) = stack.pop() {
            for &c in dom.nodes[n].children.iter().rev() {
                match dom.tag(c) {
                    "tr" => trs.push(c),
                    "thead" | "tbody" | "tfoot" => stack.push(c),
                    _ => {}
                }
            }
        }
        // `stack` popped in reverse order of sections; restore document order.
        trs.sort_unstable();
        let mut rows = Vec::new();
        for tr in trs {
            let mut cells = Vec::new();
            let mut header = true;
            for &cell in &dom.nodes[tr].children {
                let t = dom.tag(cell);
                if t != "td" && t != "th" {
                    continue;
                }
                if t == "td" {
                    header = false;
                }
                let content = self.blocks(cell, depth + 1);
                let content = content
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(if self.md() { "<br>" } else { " " });
                let span = dom
                    .attr(cell, "colspan")
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .unwrap_or(1)
                    .clamp(1, 50);
                cells.push(content);
                for _ in 1..span {
                    cells.push(String::new());
                }
            }
            if !cells.is_empty() {
                rows.push((cells, header));
            }
        }
        rows
    }

    fn inline_of(&mut self, id: Id, depth: usize) -> String {
        let mut i = Inline::default();
        for c in self.dom.nodes[id].children.clone() {
            self.inline(c, &mut i, depth + 1);
        }
        i.s
    }

    fn inline(&mut self, id: Id, out: &mut Inline, depth: usize) {
        let dom = self.dom;
        let md = self.md();
        let name = match &dom.nodes[id].data {
            Data::Text(t) => {
                if md {
                    out.text(&escape_md(t));
                } else {
                    out.text(t);
                }
                return;
            }
            Data::Element { name, .. } => name.as_str(),
        };
        if depth > MAX_DEPTH {
            out.text(&dom.text(id));
            return;
        }
        if is_permalink_marker(dom, id, name) {
            return;
        }
        match name {
            "br" => out.newline(md),
            "img" if md => {
                if let Some(image) = markdown_image(dom, id) {
                    out.raw(&image);
                }
            }
            "code" | "kbd" | "samp" | "tt" if md => {
                if let Some(code) = code_span(&dom.text(id)) {
                    out.raw(&code);
                }
            }
            "strong" | "b" | "em" | "i" | "del" | "s" | "strike" if md => {
                let mark = match name {
                    "strong" | "b" => "**",
                    "em" | "i" => "*",
                    _ => "~~",
                };
                let inner = self.inline_of(id, depth);
                if inner.trim().is_empty() {
                    out.text(&inner);
                } else {
                    spaced(out, &inner, |t| format!("{mark}{t}{mark}"));
                }
            }
            "a" if md => {
                let inner = self.inline_of(id, depth);
                let href = dom.attr(id, "href").unwrap_or("").trim();
                // Same-page anchors (heading permalinks, footnotes) are noise in Markdown.
                if href.is_empty() || href.starts_with('#') || href.starts_with("javascript:") {
                    spaced(out, &inner, str::to_owned);
                } else {
                    spaced(out, &inner, |t| markdown_link(t, href));
                }
            }
            _ if self.is_block(id) => {
                // A block inside inline content (invalid but common).
                let b = self.block(id, depth);
                out.newline(false);
                out.raw(b.trim());
                out.newline(false);
            }
            _ => {
                for c in dom.nodes[id].children.clone() {
                    self.inline(c, out, depth + 1);
                }
            }
        }
    }
}

/// Writes `wrap(inner.trim())` raw, keeping a space before and after it when
/// `inner` had one there.
fn spaced(out: &mut Inline, inner: &str, wrap: impl FnOnce(&str) -> String) {
    if inner.starts_with(char::is_whitespace) {
        out.space = true;
    }
    out.raw(&wrap(inner.trim()));
    if inner.ends_with(char::is_whitespace) {
        out.space = true;
    }
}

/// `[text](href)`, or the bare text when there is none.
fn markdown_link(text: &str, href: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!(
        "[{}]({})",
        text.replace('\n', " "),
        href.replace(' ', "%20").replace(')', "%29")
    )
}

/// Permalink markers (`§`, `¶`, `#`) next to headings carry no text.
fn is_permalink_marker(dom: &Dom, id: Id, name: &str) -> bool {
    name == "a"
        && dom
            .attr(id, "href")
            .is_some_and(|h| h.trim_start().starts_with('#'))
        && matches!(dom.text(id).trim(), "§" | "¶" | "#" | "🔗")
}

/// `![alt](src)` for an image with a source that is not inline data.
fn markdown_image(dom: &Dom, id: Id) -> Option<String> {
    let src = dom.attr(id, "src").unwrap_or("");
    if src.is_empty() || src.starts_with("data:") {
        return None;
    }
    let alt = dom.attr(id, "alt").unwrap_or("").replace(['[', ']'], "");
    Some(format!("![{}]({})", alt.trim(), src.replace(' ', "%20")))
}

/// Inline code with its whitespace collapsed, fenced with enough backticks.
fn code_span(text: &str) -> Option<String> {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        return None;
    }
    let tick = if t.contains('`') { "``" } else { "`" };
    let pad = if t.starts_with('`') || t.ends_with('`') {
        " "
    } else {
        ""
    };
    Some(format!("{tick}{pad}{t}{pad}{tick}"))
}

/// A Markdown table: the first row is the header when it holds only `th` cells,
/// otherwise the header is empty; a `|` inside a cell is escaped.
fn markdown_table(caption: String, rows: &[(Vec<String>, bool)]) -> String {
    let width = rows.iter().map(|(c, _)| c.len()).max().unwrap_or(1);
    let fmt_row = |cells: &[String]| {
        let mut s = String::from("|");
        for i in 0..width {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            s.push(' ');
            s.push_str(&c.replace('|', "\\|"));
            s.push_str(" |");
        }
        s
    };
    let mut out = caption;
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    let empty = vec![String::new(); width];
    let (first, rest) = match rows.first() {
        Some((cells, true)) => (cells, &rows[1..]),
        _ => (&empty, rows),
    };
    out.push_str(&fmt_row(first));
    out.push('\n');
    out.push('|');
    for _ in 0..width {
        out.push_str(" --- |");
    }
    for (cells, _) in rest {
        out.push('\n');
        out.push_str(&fmt_row(cells));
    }
    out
}

fn flush_inline(out: &mut String, inline: &mut Inline) {
    let t = std::mem::take(&mut inline.s);
    inline.space = false;
    let t = t.trim();
    if !t.is_empty() {
        push_block(out, t);
    }
}

fn push_block(out: &mut String, b: &str) {
    let b = b.trim_matches('\n');
    if b.trim().is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(b);
}

fn code_language(dom: &Dom, pre: Id) -> String {
    let mut ids = vec![pre];
    ids.extend(
        dom.nodes[pre]
            .children
            .iter()
            .copied()
            .filter(|c| dom.tag(*c) == "code"),
    );
    for id in ids {
        if let Some(class) = dom.attr(id, "class") {
            for c in class.split_whitespace() {
                for prefix in ["language-", "lang-"] {
                    if let Some(l) = c.strip_prefix(prefix)
                        && !l.is_empty()
                    {
                        return l.to_string();
                    }
                }
            }
            // rustdoc marks Rust blocks with `rust` as a bare class.
            if class.split_whitespace().any(|c| c == "rust") {
                return "rust".to_string();
            }
        }
        if let Some(l) = dom.attr(id, "data-lang") {
            return l.trim().to_string();
        }
    }
    String::new()
}
