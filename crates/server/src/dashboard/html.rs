//! HTML building blocks for the pages not yet on templates: escaping, the layout
//! around a body, and small components. These pages are strings assembled with
//! `format!`; every value that came from a user or the record goes through [`esc`].
//! Pages on templates ([`super::templates`]) get escaping from the template engine.

use std::fmt::Write;

use serde::Serialize;

use super::templates::{NavContext, Shell};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `url` when it is an absolute http(s) URL, for an `href`; anything else
/// (`javascript:`, `data:`, relative paths) is shown as text instead.
pub fn safe_href(url: &str) -> Option<&str> {
    let scheme_end = url.find(':')?;
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end + 1..];
    ((scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && rest.starts_with("//")
        && !url.chars().any(|c| c.is_control() || c.is_whitespace()))
    .then_some(url)
}

/// Percent-encodes a query value.
pub fn url_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where a page sits, for the navigation.
pub struct Nav<'a> {
    pub workspace: Option<(&'a str, &'a str)>,
    pub agent: Option<(&'a str, &'a str)>,
    /// The current tab's key (`keys`, `agents`, `usage`, `settings`, `sources`,
    /// `conversations`, `playground`).
    pub current: &'a str,
}

impl Nav<'_> {
    pub const TOP: Nav<'static> = Nav {
        workspace: None,
        agent: None,
        current: "workspaces",
    };
}

/// A whole page: the layout template around `body` (already HTML). `csrf` is present
/// for signed-in pages (scripts read it from the meta tag; forms carry it in a
/// hidden field).
pub fn page(
    title: &str,
    nav: Option<&Nav>,
    csrf: Option<&str>,
    notice: &Notice,
    body: &str,
) -> String {
    let shell = Shell {
        title,
        csrf,
        notice,
        nav: nav.map(NavContext::from),
    };
    super::templates::render("layout.html", &shell, minijinja::context! { body => body })
        // The layout has its own test; should it fail anyway, the page still shows.
        .unwrap_or_else(|_| {
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · agentbase</title></head><body>{body}</body></html>",
                esc(title)
            )
        })
}

/// A one-line message at the top of a page, after a redirect.
#[derive(Debug, Default, Serialize)]
pub struct Notice {
    pub ok: Option<String>,
    pub error: Option<String>,
}

pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A value with a button that copies it.
pub fn copyable(id: &str, value: &str) -> String {
    format!(
        "<span class=\"copy\"><code id=\"{id}\">{}</code>\
         <button type=\"button\" data-copy=\"#{id}\">Copy</button></span>",
        esc(value)
    )
}

/// `<option>`s with `selected` on the current value.
pub fn options<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>, current: &str) -> String {
    values
        .into_iter()
        .map(|(v, label)| {
            let sel = if v == current { " selected" } else { "" };
            format!("<option value=\"{}\"{sel}>{}</option>", esc(v), esc(label))
        })
        .collect()
}

/// A table with a header row; cells are already HTML.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let head: String = head
        .iter()
        .map(|h| format!("<th scope=\"col\">{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|r| {
            format!(
                "<tr>{}</tr>",
                r.iter()
                    .map(|c| format!("<td>{c}</td>"))
                    .collect::<String>()
            )
        })
        .collect();
    format!(
        "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>{head}</tr></thead>\
         <tbody>{body}</tbody></table></div>",
        esc(caption)
    )
}

/// A short, readable UTC time.
pub fn when(ms: i64) -> String {
    let iso = agentbase_core::time_fmt::iso8601(ms);
    // 2026-11-29T21:13:49.000Z → 2026-11-29 21:13 UTC
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attribute_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(url_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn times_read_as_utc_minutes() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
