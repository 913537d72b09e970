//! Property tests for the crawler's parsers of tenant input: URL globs (the Apify run
//! body's include/exclude globs), WCC input JSON, robots.txt, page extraction on
//! arbitrary and mutated HTML, and URL normalisation. Every case runs on its own
//! thread (a runtime worker's 2 MiB stack) under a wall-clock limit, so a runaway
//! case fails instead of hanging the suite.
//!
//! Cases that once overflowed the stack (which aborts the
//! whole test binary, so they could not simply fail) are kept at the end as
//! regressions.

use std::collections::HashSet;
use std::time::Duration;

use agentbase_crawler::glob::Glob;
use agentbase_crawler::robots::Robots;
use agentbase_crawler::{CrawlInput, ExtractOptions, HtmlTransformer, extract, normalize_url};
use proptest::prelude::*;
use url::Url;

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

/// Bounded shrinking (a timed-out case would otherwise be re-run for each shrink
/// step); failures are reported, not persisted: a real one becomes a named test.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const QUICK: Duration = Duration::from_secs(10);
/// Extraction is unoptimised in test builds and the machine is shared.
const SLOW: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Globs: a naive reference (brace expansion by enumeration, backtracking matcher).

/// A small glob over the alphabet `a b c . /`, with every construct the glob
/// language has: `*`, `**`, `?`, classes, escapes and (nested) braces.
fn glob_pattern() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", ".", "/"]).prop_map(str::to_owned),
        2 => Just("*".to_owned()),
        1 => Just("**".to_owned()),
        1 => Just("?".to_owned()),
        1 => prop::sample::select(vec!["[ab]", "[a-b]", "[!a]", "[^b.]", "[/c]", "[]a]"])
            .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["\\*", "\\?", "\\[", "\\a"]).prop_map(str::to_owned),
    ];
    let seq =
        |inner: BoxedStrategy<String>| prop::collection::vec(inner, 0..4).prop_map(|v| v.concat());
    let node = leaf.prop_recursive(2, 12, 3, move |inner| {
        prop_oneof![
            3 => seq(inner.clone().boxed()),
            1 => prop::collection::vec(seq(inner.boxed()), 2..4)
                .prop_map(|alts| format!("{{{}}}", alts.join(","))),
        ]
    });
    prop::collection::vec(node, 1..6).prop_map(|v| v.concat())
}

/// Brace expansion as an enumeration over a parsed tree: `{x,y}` groups are split at
/// their top-level commas and every combination is produced.
fn reference_expand(p: &[char]) -> Vec<String> {
    let Some(open) = p.iter().position(|c| *c == '{') else {
        return vec![p.iter().collect()];
    };
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = open + 1;
    let mut close = p.len();
    for (i, c) in p.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&p[start..i]);
                    close = i;
                    break;
                }
            }
            ',' if depth == 1 => {
                parts.push(&p[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let head: String = p[..open].iter().collect();
    let rest = reference_expand(&p[close + 1..]);
    let mut out = Vec::new();
    for part in parts {
        for alt in reference_expand(part) {
            for tail in &rest {
                out.push(format!("{head}{alt}{tail}"));
            }
        }
    }
    out
}

/// How many patterns [`reference_expand`] makes, without making them.
fn reference_count(p: &[char]) -> u128 {
    let Some(open) = p.iter().position(|c| *c == '{') else {
        return 1;
    };
    let mut depth = 0;
    let mut start = open + 1;
    let mut alternatives = 0u128;
    for (i, c) in p.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    alternatives += reference_count(&p[start..i]);
                    return alternatives.saturating_mul(reference_count(&p[i + 1..]));
                }
            }
            ',' if depth == 1 => {
                alternatives += reference_count(&p[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    1
}

#[derive(Debug)]
enum RefTok {
    Lit(char),
    Star,
    Globstar,
    Any,
    Class(Vec<(char, char)>, bool),
}

fn reference_tokens(p: &str) -> Vec<RefTok> {
    let c: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '*' => {
                let run = c[i..].iter().take_while(|x| **x == '*').count();
                out.push(if run >= 2 {
                    RefTok::Globstar
                } else {
                    RefTok::Star
                });
                i += run;
                continue;
            }
            '?' => out.push(RefTok::Any),
            '\\' if i + 1 < c.len() => {
                i += 1;
                out.push(RefTok::Lit(c[i]));
            }
            '[' => {
                let close = (i + 2..c.len())
                    .find(|&j| c[j] == ']' && !(j == i + 2 && matches!(c[i + 1], '!' | '^')))
                    .expect("generated classes are closed");
                let mut body = &c[i + 1..close];
                let negate = matches!(body.first(), Some('!' | '^'));
                if negate {
                    body = &body[1..];
                }
                let mut ranges = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        ranges.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        ranges.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(RefTok::Class(ranges, negate));
                i = close;
            }
            x => out.push(RefTok::Lit(x)),
        }
        i += 1;
    }
    out
}

/// Backtracking: `*` takes any run without `/`, `**` any run, `?` one non-`/`
/// character, a class one character.
fn reference_match(toks: &[RefTok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((RefTok::Star, rest)) => (0..=s.len())
            .take_while(|&n| n == 0 || s[n - 1] != '/')
            .any(|n| reference_match(rest, &s[n..])),
        Some((RefTok::Globstar, rest)) => (0..=s.len()).any(|n| reference_match(rest, &s[n..])),
        Some((tok, rest)) => {
            let Some((first, tail)) = s.split_first() else {
                return false;
            };
            let ok = match tok {
                RefTok::Lit(l) => l == first,
                RefTok::Any => *first != '/',
                RefTok::Class(ranges, negate) => {
                    ranges.iter().any(|(lo, hi)| lo <= first && first <= hi) != *negate
                }
                RefTok::Star | RefTok::Globstar => unreachable!(),
            };
            ok && reference_match(rest, tail)
        }
    }
}

fn reference_is_match(pattern: &str, s: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    reference_expand(&chars)
        .iter()
        .any(|p| reference_match(&reference_tokens(p), &s))
}

/// A string the pattern matches (one alternative, each wildcard filled in), so
/// positive cases are common.
fn instance_of(pattern: &str, pick: &[u8]) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let alts = reference_expand(&chars);
    let mut pick = pick.iter().copied().cycle();
    let mut next = || usize::from(pick.next().unwrap_or(0));
    let alt = &alts[next() % alts.len()];
    let mut out = String::new();
    for tok in reference_tokens(alt) {
        match tok {
            RefTok::Lit(c) => out.push(c),
            RefTok::Star => out.push_str(["", "a", "b.c"][next() % 3]),
            RefTok::Globstar => out.push_str(["", "a/b", "/"][next() % 3]),
            RefTok::Any => out.push('c'),
            RefTok::Class(ranges, false) => out.push(ranges[next() % ranges.len()].0),
            RefTok::Class(ranges, true) => {
                if let Some(c) = "abc./"
                    .chars()
                    .find(|c| !ranges.iter().any(|(lo, hi)| lo <= c && c <= hi))
                {
                    out.push(c);
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn globs_match_exactly_what_the_naive_reference_matches(
        pattern in glob_pattern(),
        other in "[abc./]{0,8}",
        pick in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        prop_assume!(!pattern.trim().is_empty());
        let count = reference_count(&pattern.chars().collect::<Vec<_>>());
        let glob = match Glob::new(&pattern) {
            Ok(g) => g,
            // Caps on alternatives and on `{}` groups are fine, as long as they are
            // not small ones.
            Err(e) => {
                let groups = pattern.matches('{').count();
                prop_assert!(
                    count > 16 || groups > 16,
                    "{pattern:?} ({count} alternatives, {groups} groups) is refused: {e}"
                );
                return Ok(());
            }
        };
        prop_assume!(count <= 256);
        let positive = instance_of(&pattern, &pick);
        for s in [positive.as_str(), other.as_str()] {
            prop_assert_eq!(
                glob.is_match(s),
                reference_is_match(&pattern, s),
                "pattern {:?} on {:?}", pattern, s
            );
        }
        prop_assert!(glob.is_match(&positive), "{pattern:?} matches its own instance {positive:?}");
    }

    #[test]
    fn any_text_compiles_or_is_refused_and_matches_in_bounded_time(
        pattern in prop_oneof![
            any::<String>(),
            "[{},*?\\[\\]!^a/\\\\-]{0,64}",
            // Deeper and wider braces than the reference test (the deepest are
            // refused by the bounds in `glob.rs`; see the regressions below).
            (1usize..60, 0usize..40).prop_map(|(d, w)| format!(
                "https://x.test/{}a{}{}",
                "{".repeat(d),
                ",b".repeat(w),
                "}".repeat(d)
            )),
            // Fan-out: 2^k alternatives, refused past the cap.
            (0usize..24).prop_map(|k| format!("https://x.test/{}", "{a,b}".repeat(k))),
        ],
        subject in any::<String>(),
    ) {
        within(QUICK, move || {
            if let Ok(g) = Glob::new(&pattern) {
                assert_eq!(g.as_str(), pattern);
                g.is_match(&subject);
                g.is_match(&pattern);
            }
        });
    }
}

// ---------------------------------------------------------------------------------
// WCC input and robots.txt.

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "https://example.com/docs",
            "https://example.com/**",
            "http://[::1]/x",
            "ftp://x",
            "readableText",
            "none",
            "div[[[",
            "article, main",
            "{a,b}",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

const WCC_FIELDS: &[&str] = &[
    "startUrls",
    "useSitemaps",
    "useLlmsTxt",
    "respectRobotsTxtFile",
    "includeUrlGlobs",
    "excludeUrlGlobs",
    "keepUrlFragments",
    "maxCrawlDepth",
    "maxCrawlPages",
    "maxResults",
    "maxConcurrency",
    "initialCookies",
    "customHttpHeaders",
    "maxRequestRetries",
    "requestTimeoutSecs",
    "keepElementsCssSelector",
    "removeElementsCssSelector",
    "htmlTransformer",
    "textExtractor",
    "readableTextCharThreshold",
    "saveMarkdown",
    "saveHtml",
    "crawlerType",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_wcc_input_is_accepted_or_refused_without_panicking(
        fields in prop::collection::vec((prop::sample::select(WCC_FIELDS), json_value()), 0..8),
    ) {
        let input: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        within(QUICK, move || {
            if let Ok(i) = CrawlInput::from_json(serde_json::Value::Object(input)) {
                let _ = i.validate();
                let _ = (i.ignored_inputs(), i.unknown_inputs(), i.extract_options());
            }
        });
    }

    #[test]
    fn any_robots_txt_parses_and_answers_in_bounded_time(
        lines in prop::collection::vec(
            prop_oneof![
                any::<String>(),
                ("(?i)(user-agent|allow|disallow|crawl-delay|sitemap)", "[ */$a-z.é?=#-]{0,20}")
                    .prop_map(|(k, v)| format!("{k}: {v}")),
            ],
            0..24,
        ),
        paths in prop::collection::vec("/[ */$a-z.é?=-]{0,24}", 1..6),
    ) {
        within(QUICK, move || {
            let robots = Robots::parse(&lines.join("\n"));
            if let Some(d) = robots.crawl_delay {
                assert!(d.is_finite() && d >= 0.0, "crawl delay {d}");
            }
            for p in &paths {
                robots.allowed(p);
            }
        });
    }
}

// ---------------------------------------------------------------------------------
// Extraction: generated tag soup, arbitrary text, and mutated real pages.

fn html_soup() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        "[a-zA-Z ,.é漢🦀]{0,40}",
        Just("&amp;&lt;&#0;&#x110000;&#xD800;&nbsp;&bogus;".to_owned()),
        Just("https://example.com/a b".to_owned()),
        any::<String>(),
    ];
    let attr = prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            " class=\"content article\"",
            " class=\"comment sidebar\"",
            " id=\"main\"",
            " hidden",
            " style=\"display:none\"",
            " role=\"dialog\"",
            " href=\"/relative?q=1#frag\"",
            " href=\"javascript:alert(1)\"",
            " href=\"//other.test/x\"",
            " href=\"http://[::1\"",
            " href=\"https://example.com/%zz\"",
            " src=\"data:image/png;base64,AAAA\"",
            " colspan=\"99999999999\"",
            " lang=\"\u{0}\"",
        ])
        .prop_map(str::to_owned),
    ];
    let tag = prop::sample::select(vec![
        "div",
        "p",
        "span",
        "a",
        "article",
        "main",
        "section",
        "nav",
        "footer",
        "table",
        "tr",
        "td",
        "th",
        "thead",
        "ul",
        "ol",
        "li",
        "pre",
        "code",
        "h1",
        "h2",
        "h3",
        "h6",
        "br",
        "img",
        "blockquote",
        "em",
        "strong",
        "script",
        "style",
        "title",
        "base",
        "meta",
        "svg",
        "noscript",
        "dl",
        "dt",
        "dd",
        "sup",
        "figure",
        "iframe",
        "template",
    ]);
    let leaf = prop_oneof![
        3 => text,
        1 => (tag.clone(), attr.clone()).prop_map(|(t, a)| format!("<{t}{a}>")),
        1 => tag.clone().prop_map(|t| format!("</{t}>")),
        1 => prop::sample::select(vec![
            "<!-- c -->", "<!--", "<![CDATA[x]]>", "<!DOCTYPE html>", "<?xml?>", "</", "<",
            "<meta property=\"og:title\" content=\"T\">",
            "<link rel=\"canonical\" href=\"/canon\">",
            "<script type=\"application/ld+json\">{\"@type\":\"Article\"</script>",
            "<base href=\"https://base.test/dir/\">",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(6, 96, 8, move |inner| {
        (
            tag.clone(),
            attr.clone(),
            prop::collection::vec(inner, 0..8),
            any::<bool>(),
        )
            .prop_map(|(t, a, children, close)| {
                let mut s = format!("<{t}{a}>{}", children.concat());
                if close {
                    s.push_str(&format!("</{t}>"));
                }
                s
            })
    })
}

fn options() -> impl Strategy<Value = ExtractOptions> {
    (
        prop::sample::select(vec![
            HtmlTransformer::ReadableText,
            HtmlTransformer::ReadableTextIfPossible,
            HtmlTransformer::None,
        ]),
        prop::sample::select(vec!["", "article", "main, .content", "p", "div div", "*"]),
        prop::sample::select(vec!["", "div", "nav, footer", "*", "[[["]),
        0usize..500,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(t, keep, remove, threshold, md, html)| ExtractOptions {
            html_transformer: t,
            keep_elements_css_selector: keep.to_owned(),
            remove_elements_css_selector: if remove.is_empty() {
                ExtractOptions::default().remove_elements_css_selector
            } else {
                remove.to_owned()
            },
            readable_text_char_threshold: threshold,
            save_markdown: md,
            save_html: html,
        })
}

/// What holds for every page: links are absolute http(s) URLs without repeats, and
/// the outputs asked for are there.
fn check_extraction(html: String, url: &'static str, options: ExtractOptions) {
    let asked = (options.save_markdown, options.save_html);
    let out = within(SLOW, move || extract(&html, url, &options));
    let mut seen = HashSet::new();
    for link in &out.links {
        let parsed = Url::parse(link).unwrap_or_else(|e| panic!("link {link:?}: {e}"));
        assert!(
            matches!(parsed.scheme(), "http" | "https"),
            "link {link:?} is http(s)"
        );
        assert!(seen.insert(link.clone()), "link {link:?} repeated");
    }
    assert_eq!((out.markdown.is_some(), out.html.is_some()), asked);
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).expect("read fixture")
}

const FIXTURES: &[&str] = &[
    "book-data-types.html",
    "book-operators.html",
    "book-vectors.html",
    "reference-numeric.html",
    "std-keyword-loop.html",
];

/// Cuts, duplicates and splices at arbitrary (char-aligned) offsets of a real page.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..4000).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 0usize..4000).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), html_soup()).prop_map(|(a, s)| Mutation::Insert(a, s)),
    ]
}

fn apply(page: &mut String, m: &Mutation) {
    let at = |page: &String, x: usize| {
        let mut i = x % (page.len() + 1);
        while !page.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match m {
        Mutation::Truncate(x) => {
            let i = at(page, *x);
            page.truncate(i);
        }
        Mutation::Delete(x, n) => {
            let i = at(page, *x);
            let j = at(page, i + n);
            page.replace_range(i..j.max(i), "");
        }
        Mutation::Duplicate(x, n) => {
            let i = at(page, *x);
            let j = at(page, i + n).max(i);
            let copy = page[i..j].to_owned();
            page.insert_str(j, &copy);
        }
        Mutation::Insert(x, s) => {
            let i = at(page, *x);
            page.insert_str(i, s);
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn extraction_of_any_tag_soup_ends_with_well_formed_links(
        body in html_soup(),
        head in html_soup(),
        options in options(),
        url in prop::sample::select(vec![
            "https://example.com/docs/page.html",
            "file:///upload",
            "not a url",
            "https://[::1]:8080/",
        ]),
    ) {
        let html = format!("<html><head>{head}</head><body>{body}</body></html>");
        check_extraction(html, url, options);
    }

    #[test]
    fn extraction_of_arbitrary_text_never_panics(text in any::<String>(), options in options()) {
        check_extraction(text, "https://example.com/", options);
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn extraction_of_mutated_real_pages_ends_with_well_formed_links(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..5),
        options in options(),
    ) {
        let mut page = fixture(FIXTURES[which]);
        for m in &mutations {
            apply(&mut page, m);
        }
        check_extraction(page, "http://127.0.0.1/book/page.html", options);
    }
}

// ---------------------------------------------------------------------------------
// URL normalisation.

fn url_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["http", "https", "HTTP", "ftp", "javascript", "file"]),
        prop::sample::select(vec![
            "example.com",
            "EXAMPLE.com.",
            "user:pw@example.com:8080",
            "[::ffff:127.0.0.1]",
            "127.1",
            "xn--nxasmq6b.test",
            "bücher.de",
            "a%2Fb.test",
            "",
        ]),
        "(/[a-zA-Z0-9%._~é -]{0,8}){0,4}",
        prop::option::of("[a-z=&%?/#é ]{0,12}"),
        prop::option::of("[a-z=&%?/#é ]{0,12}"),
    )
        .prop_map(|(scheme, host, path, query, fragment)| {
            let mut u = format!("{scheme}://{host}{path}");
            if let Some(q) = query {
                u.push('?');
                u.push_str(&q);
            }
            if let Some(f) = fragment {
                u.push('#');
                u.push_str(&f);
            }
            u
        })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn normalised_urls_are_stable_and_keep_only_what_they_should(
        text in prop_oneof![url_text(), any::<String>()],
        href in prop_oneof!["[a-z/.?#%:]{0,16}", any::<String>()],
        keep_fragment in any::<bool>(),
    ) {
        let Ok(base) = Url::parse(&text) else { return Ok(()); };
        // Links reach the frontier resolved against their page, then normalised.
        for u in [Some(base.clone()), base.join(&href).ok()].into_iter().flatten() {
            let n = normalize_url(&u, keep_fragment);
            prop_assert_eq!(normalize_url(&n, keep_fragment), n.clone(), "idempotent");
            let reparsed = Url::parse(n.as_str()).expect("a normalised URL parses again");
            prop_assert_eq!(&reparsed, &n, "its text is the same URL");
            prop_assert_ne!(n.query(), Some(""));
            if keep_fragment {
                prop_assert_eq!(n.fragment(), u.fragment());
            } else {
                prop_assert_eq!(n.fragment(), None);
            }
            prop_assert_eq!(n.path(), u.path());
            prop_assert_eq!(n.host_str(), u.host_str());
        }
    }
}

// ---------------------------------------------------------------------------------
// Regressions: each of these overflowed the stack before the hardening pass bounded
// glob brace expansion and HTML nesting.

#[test]
fn a_glob_with_twenty_thousand_nested_braces_is_refused_not_a_crash() {
    let pattern = format!(
        "https://example.com/{}a{}",
        "{".repeat(20_000),
        "}".repeat(20_000)
    );
    let result = within(QUICK, move || Glob::new(&pattern).map(|_| ()));
    assert!(result.is_err(), "so deep a glob is refused with a reason");
}

#[test]
fn html_nested_two_hundred_thousand_deep_extracts_without_a_crash() {
    let html = format!(
        "<html><body>{}deep text{}</body></html>",
        "<div>".repeat(200_000),
        "</div>".repeat(200_000)
    );
    check_extraction(html, "https://example.com/", ExtractOptions::default());
}
