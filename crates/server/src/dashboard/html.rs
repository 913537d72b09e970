//! What the dashboard's templates ([`super::templates`]) are given: the escaping
//! their formatter uses, link and query-value checks, the navigation, the notice
//! and readable times. Pages themselves are templates; no HTML is built here.

use std::fmt::Write;

use serde::Serialize;

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

/// A one-line message at the top of a page, after a redirect.
#[derive(Debug, Default, Serialize)]
pub struct Notice {
    pub ok: Option<String>,
    pub error: Option<String>,
}

impl Notice {
    /// A notice that something went well.
    pub fn ok(message: impl Into<String>) -> Self {
        Notice {
            ok: Some(message.into()),
            error: None,
        }
    }
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
