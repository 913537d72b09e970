//! A bound on how deep a page's elements nest, applied before the HTML parser sees
//! it. Every later pass (selectors matching ancestors, readability's walks up the
//! tree) costs up to the depth per element, so a page of 200,000 nested `<div>`s
//! would otherwise cost 200,000² steps. Real pages nest a few dozen levels.
//!
//! The scan keeps a stack of open elements much as the HTML parser does (void
//! elements and elements whose end tag is optional are not counted; an end tag pops
//! up to its element, a stray one is ignored), and cuts the document where the stack
//! would pass the limit.

use std::borrow::Cow;

/// Open elements deeper than this end the document.
pub const MAX_NESTING: usize = 256;

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen", "command", "basefont", "bgsound", "frame",
];

/// Elements the parser closes implicitly (or never nests in practice).
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
    "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body",
];

/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
];

/// `html` itself when its elements nest at most `max` deep, else its start up to the
/// tag that would open level `max + 1`.
pub fn cut_deep_nesting(html: &str, max: usize) -> Cow<'_, str> {
    match deep_offset(html.as_bytes(), max) {
        Some(at) => Cow::Owned(html[..at].to_owned()),
        None => Cow::Borrowed(html),
    }
}

fn deep_offset(b: &[u8], max: usize) -> Option<usize> {
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let start = i + off;
        i = start + 1;
        if b[i..].starts_with(b"!--") {
            i = find(b, i + 3, b"-->").map_or(b.len(), |e| e + 3);
            continue;
        }
        let closing = b.get(i) == Some(&b'/');
        let name_start = if closing { i + 1 } else { i };
        if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_end = b[name_start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b':'))
            .map_or(b.len(), |p| name_start + p);
        let name = b[name_start..name_end].to_ascii_lowercase();
        let tag_end = tag_end(b, name_end);
        i = tag_end;
        let text = std::str::from_utf8(&name).unwrap_or("");
        if closing {
            if let Some(pos) = open.iter().rposition(|n| *n == name) {
                open.truncate(pos);
            }
            continue;
        }
        let self_closing = tag_end >= 2 && b[tag_end - 2] == b'/';
        if RAW_TEXT.contains(&text) {
            let mut end_tag = b"</".to_vec();
            end_tag.extend_from_slice(&name);
            i = find_ignore_case(b, i, &end_tag).unwrap_or(b.len());
            continue;
        }
        if self_closing || VOID.contains(&text) || OPTIONAL_END.contains(&text) {
            continue;
        }
        open.push(name);
        if open.len() > max {
            return Some(start);
        }
    }
    None
}

/// The offset just past the `>` ending a tag whose name ends at `from`, skipping
/// quoted attribute values.
fn tag_end(b: &[u8], from: usize) -> usize {
    let mut quote = None;
    for (k, &c) in b[from..].iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => return from + k + 1,
            _ => {}
        }
    }
    b.len()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn find_ignore_case(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_pass_untouched() {
        let html = "<html><body><div class=\"a>b\"><p>one<p>two<ul><li>x<li>y</ul><br><img src=x>\
                    <script>if (a < b) { '<div>' }</script></div></body></html>";
        assert!(matches!(cut_deep_nesting(html, 4), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_cut_where_it_passes_the_limit() {
        let html = format!("<body>{}x{}", "<div>".repeat(1_000), "</div>".repeat(1_000));
        let cut = cut_deep_nesting(&html, 10);
        assert_eq!(cut, format!("<body>{}", "<div>".repeat(10)));
    }

    #[test]
    fn stray_end_tags_do_not_hide_nesting() {
        // `</span>` with no open span is ignored by the parser, so it must not
        // lower the count here either.
        let html = "<div></span>".repeat(100);
        assert!(matches!(cut_deep_nesting(&html, 50), Cow::Owned(_)));
        let closed = "<div></div>".repeat(100);
        assert!(matches!(cut_deep_nesting(&closed, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn two_hundred_thousand_levels_scan_in_linear_time() {
        let html = "<div>".repeat(200_000);
        let started = std::time::Instant::now();
        assert_eq!(cut_deep_nesting(&html, MAX_NESTING).len(), 5 * MAX_NESTING);
        assert!(started.elapsed().as_secs() < 5);
    }
}
