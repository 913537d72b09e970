//! What one crawl does, typed and already checked: the only input [`crawl()`] takes.
//! Callers that speak WCC convert its input at the edge
//! (`CrawlSpec::try_from(&CrawlInput)`, in `input.rs`); the others (link sources, the
//! CLI) start from [`CrawlSpec::new`], which holds WCC's defaults, and set fields.
//! The field types keep the values valid: start URLs are absolute http(s) URLs, globs
//! and path rules are compiled and bounded, the browser's selectors parse, headers
//! and cookies can be sent, percentages lie in 1..=100 and concurrency is at least 1.
//!
//! [`crawl()`]: crate::crawl()

use std::num::NonZeroU32;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::extract::ExtractOptions;
use crate::glob::Glob;
use crate::input::{CrawlerType, InputError};

/// At most this many globs in one [`UrlGlobs`] list.
pub const MAX_GLOBS: usize = 100;
/// At most this many pattern tokens over all of a list's globs and their `{}`
/// expansions (each link costs this times its length to match).
pub const MAX_GLOB_COST: usize = 16_384;

/// One crawl: where it starts, which links it follows, how far it goes, and how pages
/// are fetched, rendered and extracted.
#[derive(Debug, Clone)]
pub struct CrawlSpec {
    /// Always fetched; each also scopes the crawl to its sub-pages (see [`Scope`]).
    pub start: StartUrls,
    pub scope: Scope,
    pub limits: Limits,
    /// The start origins' sitemaps (`/sitemap.xml`, robots.txt's `Sitemap:` lines) add
    /// their pages at depth 1.
    pub use_sitemaps: bool,
    /// The start origins' `/llms.txt` adds its links at depth 1, and links in plain
    /// text pages are followed.
    pub use_llms_txt: bool,
    /// robots.txt's `Disallow` skips pages and its `Crawl-delay` spaces requests.
    pub respect_robots_txt: bool,
    /// URLs differing only in their `#fragment` are different pages.
    pub keep_url_fragments: bool,
    /// Pages are not deduplicated by their canonical URL.
    pub ignore_canonical_url: bool,
    pub fetch: FetchOptions,
    /// Cleaning and output. Its selectors are plain strings (the type is also
    /// `extract`'s): the WCC conversion checks them, and extraction ignores one that
    /// does not parse.
    pub extract: ExtractOptions,
    /// Lines already seen on two earlier pages are dropped from items (menus, footers).
    pub aggressive_prune: bool,
    pub crawler_type: CrawlerType,
    /// `<iframe>` documents are inlined (HTTP mode too: same-host frames).
    pub expand_iframes: bool,
    /// How the browser crawler types load a page (unused by `cheerio`).
    pub render: RenderOptions,
}

impl CrawlSpec {
    /// A crawl of `start` and its sub-pages with WCC's defaults: depth 20, no page
    /// or result limit to speak of, 200 requests in flight, 3 retries, 60 s timeouts,
    /// `playwright:adaptive`, readable text saved as Markdown.
    pub fn new(start: StartUrls) -> CrawlSpec {
        CrawlSpec {
            start,
            scope: Scope::default(),
            limits: Limits::default(),
            use_sitemaps: false,
            use_llms_txt: false,
            respect_robots_txt: false,
            keep_url_fragments: false,
            ignore_canonical_url: false,
            fetch: FetchOptions::default(),
            extract: ExtractOptions::default(),
            aggressive_prune: false,
            crawler_type: CrawlerType::default(),
            expand_iframes: true,
            render: RenderOptions::default(),
        }
    }

    /// Whether a discovered link is followed: an http(s) URL the scope admits.
    pub(crate) fn follows(&self, u: &Url) -> bool {
        matches!(u.scheme(), "http" | "https") && self.scope.admits(&self.start, u)
    }
}

/// A crawl's start URLs: at least one, each an absolute http(s) URL with a host.
#[derive(Debug, Clone, PartialEq)]
pub struct StartUrls {
    urls: Vec<Url>,
    /// (origin, path prefix without a trailing slash) per URL: WCC's default scope.
    prefixes: Vec<(String, String)>,
}

impl StartUrls {
    /// Parses `urls`; the error names the first bad one by its index.
    pub fn parse<S: AsRef<str>>(
        urls: impl IntoIterator<Item = S>,
    ) -> Result<StartUrls, InputError> {
        let mut start = StartUrls {
            urls: Vec::new(),
            prefixes: Vec::new(),
        };
        for (index, s) in urls.into_iter().enumerate() {
            let s = s.as_ref();
            let bad = || InputError::BadStartUrl {
                index,
                url: s.to_string(),
            };
            let u = Url::parse(s.trim()).map_err(|_| bad())?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(bad());
            }
            start.prefixes.push(prefix_of(&u));
            start.urls.push(u);
        }
        if start.urls.is_empty() {
            return Err(InputError::NoStartUrls);
        }
        Ok(start)
    }

    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Whether `u` is a start URL's page or one of its sub-pages.
    pub fn cover(&self, u: &Url) -> bool {
        let origin = u.origin().ascii_serialization();
        let path = u.path();
        self.prefixes.iter().any(|(o, prefix)| {
            *o == origin
                && (prefix.is_empty()
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/')))
        })
    }
}

/// WCC's default scope: sub-pages of the start URL. A last segment that looks like a
/// file (`index.html`) scopes to its directory.
fn prefix_of(u: &Url) -> (String, String) {
    let origin = u.origin().ascii_serialization();
    let path = u.path();
    let dir = match path.rsplit_once('/') {
        Some((head, last)) if last.contains('.') => head,
        _ => path.trim_end_matches('/'),
    };
    (origin, dir.to_string())
}

/// Which discovered links a crawl follows: sitemap and llms.txt entries, page links
/// and canonical URLs alike. Start URLs are always fetched.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// On the whole URL (WCC's `includeUrlGlobs`): when there are any, they replace
    /// the default scope (the start URLs' sub-pages).
    pub include_globs: UrlGlobs,
    /// On the whole URL (WCC's `excludeUrlGlobs`): a link one matches is not followed.
    pub exclude_globs: UrlGlobs,
    /// On the path and query (a link source's `includeOnlyPaths`/`excludePaths`),
    /// on top of the globs or the default scope.
    pub paths: PathRules,
}

impl Scope {
    fn admits(&self, start: &StartUrls, u: &Url) -> bool {
        let s = u.as_str();
        if self.exclude_globs.is_match(s) {
            return false;
        }
        let in_scope = if self.include_globs.is_empty() {
            start.cover(u)
        } else {
            self.include_globs.is_match(s)
        };
        in_scope && self.paths.check(u).is_ok()
    }
}

/// A list of WCC URL globs, bounded in count and in total cost: every link found is
/// matched against every glob.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UrlGlobs(Vec<Glob>);

impl UrlGlobs {
    /// Compiles `patterns`; `field` names the list in errors (`includeUrlGlobs`).
    pub fn parse<S: AsRef<str>>(
        field: &'static str,
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<UrlGlobs, InputError> {
        let patterns: Vec<S> = patterns.into_iter().collect();
        if patterns.len() > MAX_GLOBS {
            return Err(InputError::Invalid {
                field,
                reason: format!("more than {MAX_GLOBS} globs"),
            });
        }
        let globs = patterns
            .iter()
            .map(|p| {
                Glob::new(p.as_ref()).map_err(|e| InputError::Invalid {
                    field,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if globs.iter().map(Glob::cost).sum::<usize>() > MAX_GLOB_COST {
            return Err(InputError::Invalid {
                field,
                reason: format!(
                    "the globs expand to more than {MAX_GLOB_COST} pattern characters in all"
                ),
            });
        }
        Ok(UrlGlobs(globs))
    }

    pub fn globs(&self) -> &[Glob] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any glob matches `url`.
    pub fn is_match(&self, url: &str) -> bool {
        self.0.iter().any(|g| g.is_match(url))
    }
}

/// Regular expressions searched for in a URL's path and query (`/guide/intro?x=1`),
/// as chatbase.co applies a link source's `includeOnlyPaths` and `excludePaths`. A
/// URL passes when no exclude rule matches it and, if there are include-only rules,
/// one of them does. A link that does not pass is never queued (so it is neither
/// fetched nor counted against `max_pages`); a start URL that does not pass is still
/// fetched, so its links can be followed, but yields no item.
#[derive(Debug, Clone, Default)]
pub struct PathRules {
    include_only: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl PathRules {
    /// Compiles the rules; the error names the list (`includeOnlyPaths`,
    /// `excludePaths`) and the pattern that does not compile.
    pub fn new<S: AsRef<str>>(include_only: &[S], exclude: &[S]) -> Result<PathRules, InputError> {
        Ok(PathRules {
            include_only: compile("includeOnlyPaths", include_only)?,
            exclude: compile("excludePaths", exclude)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.include_only.is_empty() && self.exclude.is_empty()
    }

    /// Whether `u` passes the rules; why not when it does not.
    pub fn check(&self, u: &Url) -> Result<(), &'static str> {
        if self.is_empty() {
            return Ok(());
        }
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        if self.exclude.iter().any(|r| r.is_match(&path)) {
            return Err("excluded by excludePaths");
        }
        if !self.include_only.is_empty() && !self.include_only.iter().any(|r| r.is_match(&path)) {
            return Err("not matched by includeOnlyPaths");
        }
        Ok(())
    }
}

/// The compiled size one path rule may take (the regex crate allows 10 MiB): a rule
/// like `a{1000}{1000}` is refused rather than compiled.
const PATH_RULE_SIZE_LIMIT: usize = 1 << 20;

fn compile<S: AsRef<str>>(field: &'static str, patterns: &[S]) -> Result<Vec<Regex>, InputError> {
    patterns
        .iter()
        .map(|p| compile_one(p.as_ref()).map_err(|reason| InputError::Invalid { field, reason }))
        .collect()
}

/// One path rule compiled as a crawl compiles it (within the size limit); why not
/// when it does not.
fn compile_one(p: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(p)
        .size_limit(PATH_RULE_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("`{p}` is not a valid regular expression: {e}"))
}

impl PathRules {
    /// Whether one path rule compiles as a crawl will compile it: checked when the
    /// rule is given, so that it is not the crawl that finds out.
    pub fn check_rule(pattern: &str) -> Result<(), String> {
        compile_one(pattern).map(drop)
    }
}

/// How far a crawl goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Link hops from the start URLs (0: the start URLs alone).
    pub max_depth: u32,
    /// Pages fetched at most, start URLs included.
    pub max_pages: u64,
    /// Items emitted at most.
    pub max_results: u64,
    /// Requests in flight at most.
    pub max_concurrency: NonZeroU32,
}

impl Limits {
    /// Lowers the requests in flight to `cap` when it is lower; 0 is no cap.
    pub fn cap_concurrency(&mut self, cap: u32) {
        if let Some(cap) = NonZeroU32::new(cap) {
            self.max_concurrency = self.max_concurrency.min(cap);
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 20,
            max_pages: 9_999_999,
            max_results: 9_999_999,
            max_concurrency: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// How each page is requested.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// Further attempts after a network error, a timeout, 429 or 5xx.
    pub max_retries: u32,
    /// One request's timeout (connecting takes at most 30 s of it).
    pub timeout: Duration,
    /// TLS certificates are not checked.
    pub ignore_https_errors: bool,
    /// In the crawl's cookie jar from the start (see `cookies.rs`).
    pub cookies: Vec<InitialCookie>,
    /// Sent to the origin a request was made for, never after a redirect elsewhere.
    pub headers: CustomHeaders,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_retries: 3,
            timeout: Duration::from_secs(60),
            ignore_https_errors: false,
            cookies: Vec::new(),
            headers: CustomHeaders::default(),
        }
    }
}

/// A cookie the crawl starts with. Without a domain it belongs to the start URLs'
/// hosts alone.
#[derive(Debug, Clone, PartialEq)]
pub struct InitialCookie {
    name: String,
    value: String,
    pub domain: Option<String>,
    pub path: Option<String>,
    /// Sent over https only.
    pub secure: bool,
}

impl InitialCookie {
    /// A cookie whose name is not empty and holds no `;`, `=` or space, and whose
    /// value holds no `;` (either would be a second cookie in the header); neither
    /// holds a control character (CR and LF would end the header line).
    pub fn new(name: &str, value: &str) -> Result<InitialCookie, InputError> {
        let control = |s: &str| s.contains(|c: char| c.is_control());
        if name.is_empty()
            || name.contains([';', '=', ' '])
            || value.contains(';')
            || control(name)
            || control(value)
        {
            return Err(InputError::Invalid {
                field: "initialCookies",
                reason: format!("cookie {name:?} has an invalid name or value"),
            });
        }
        Ok(InitialCookie {
            name: name.to_string(),
            value: value.to_string(),
            domain: None,
            path: None,
            secure: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Request headers every one of the crawl's requests to its own origins carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomHeaders(HeaderMap);

impl CustomHeaders {
    /// Checks every name and value; a later header replaces an earlier one of the
    /// same name.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<CustomHeaders, InputError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let (k, v) = (k.as_ref(), v.as_ref());
            match (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                (Ok(name), Ok(value)) => {
                    map.insert(name, value);
                }
                _ => {
                    return Err(InputError::Invalid {
                        field: "customHttpHeaders",
                        reason: format!("{k:?} is not a valid header"),
                    });
                }
            }
        }
        Ok(CustomHeaders(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn map(&self) -> &HeaderMap {
        &self.0
    }
}

/// How a rendered page is loaded, and how adaptive mode decides to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Most time to wait for the network to go idle after the page loads.
    pub dynamic_content_wait: Duration,
    /// The page fails (and is retried) unless this appears.
    pub wait_for_selector: Option<CssSelector>,
    /// Waited for, without failing.
    pub soft_wait_for_selector: Option<CssSelector>,
    /// Clicked before extraction (accordions, "show more").
    pub click_elements: Option<CssSelector>,
    /// How far down the page is scrolled to load lazy content (0: not at all).
    pub max_scroll_height_pixels: u64,
    pub remove_cookie_warnings: bool,
    /// Images, video and audio are not loaded.
    pub block_media: bool,
    /// Adaptive mode: rendering that changes this much of a page means its kind needs it.
    pub client_side_min_change: Percent,
    /// Adaptive mode: how often a page whose kind's verdict is known is checked again.
    pub rendering_type_detection: Percent,
    /// Adaptive mode: start from what earlier crawls of this process learned per site
    /// (the settings' `rendering_memory`).
    pub reuse_stored_detection_results: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            dynamic_content_wait: Duration::from_secs(10),
            wait_for_selector: None,
            soft_wait_for_selector: None,
            click_elements: CssSelector::parse("clickElementsCssSelector", DEFAULT_CLICK).ok(),
            max_scroll_height_pixels: 5000,
            remove_cookie_warnings: true,
            block_media: false,
            client_side_min_change: Percent(15),
            rendering_type_detection: Percent(10),
            reuse_stored_detection_results: false,
        }
    }
}

/// WCC's default `clickElementsCssSelector`.
pub const DEFAULT_CLICK: &str = "[aria-expanded=\"false\"]";

/// A CSS selector that parses, kept with its text (the browser is given the text).
#[derive(Debug, Clone)]
pub struct CssSelector {
    text: String,
    parsed: scraper::Selector,
}

impl CssSelector {
    /// Parses `text`; `field` names the option in the error.
    pub fn parse(field: &'static str, text: &str) -> Result<CssSelector, InputError> {
        match scraper::Selector::parse(text) {
            Ok(parsed) => Ok(CssSelector {
                text: text.to_string(),
                parsed,
            }),
            Err(e) => Err(InputError::Invalid {
                field,
                reason: format!("invalid CSS selector {text:?}: {e}"),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn selector(&self) -> &scraper::Selector {
        &self.parsed
    }
}

/// A whole percentage from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(u8);

impl Percent {
    pub fn new(n: u32) -> Option<Percent> {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=100).contains(n))
            .map(Percent)
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn spec(start: &str) -> CrawlSpec {
        CrawlSpec::new(StartUrls::parse([start]).unwrap())
    }

    #[test]
    fn start_urls_scope_to_their_sub_pages_or_their_directory() {
        let s = StartUrls::parse([
            "https://docs.example.com/guide",
            "https://x.test/a/index.html",
        ])
        .unwrap();
        assert!(s.cover(&url("https://docs.example.com/guide")));
        assert!(s.cover(&url("https://docs.example.com/guide/intro")));
        assert!(!s.cover(&url("https://docs.example.com/guides")));
        assert!(!s.cover(&url("http://docs.example.com/guide/intro")));
        assert!(s.cover(&url("https://x.test/a/b")));
        assert!(!s.cover(&url("https://x.test/b")));
        assert_eq!(
            StartUrls::parse(["https://a.test/", "ftp://x"]).unwrap_err(),
            InputError::BadStartUrl {
                index: 1,
                url: "ftp://x".into()
            }
        );
        assert_eq!(
            StartUrls::parse(Vec::<String>::new()).unwrap_err(),
            InputError::NoStartUrls
        );
    }

    #[test]
    fn path_rules_match_the_path_and_query_without_the_host() {
        let rules = PathRules::new(&["^/docs/"], &["^/docs/private", r"\?print"]).unwrap();
        assert!(rules.check(&url("https://a.test/docs/guide")).is_ok());
        assert_eq!(
            rules.check(&url("https://a.test/docs/private/keys")),
            Err("excluded by excludePaths")
        );
        assert!(rules.check(&url("https://a.test/docs/x?print=1")).is_err());
        assert_eq!(
            rules.check(&url("https://docs.test/blog/")),
            Err("not matched by includeOnlyPaths")
        );
        // The host is not part of what is matched.
        let rules = PathRules::new(&["docs"], &[]).unwrap();
        assert!(rules.check(&url("https://docs.test/blog/")).is_err());
        assert!(PathRules::default().check(&url("https://a.test/")).is_ok());
    }

    #[test]
    fn bad_path_rules_are_named_with_their_list() {
        let e = PathRules::new(&[] as &[&str], &["("]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("excludePaths: `(` is not a valid"),
            "{e}"
        );
        let e = PathRules::new(&["[z-a]"], &[]).unwrap_err();
        assert!(
            e.to_string().starts_with("includeOnlyPaths: `[z-a]`"),
            "{e}"
        );
    }

    #[test]
    fn scope_combines_globs_the_start_urls_and_path_rules() {
        let mut s = spec("https://a.test/docs/");
        assert!(s.follows(&url("https://a.test/docs/x")));
        assert!(!s.follows(&url("https://a.test/blog/x")));
        assert!(!s.follows(&url("mailto:x@a.test")));
        s.scope.paths = PathRules::new(&[] as &[&str], &["/x$"]).unwrap();
        assert!(!s.follows(&url("https://a.test/docs/x")));
        assert!(s.follows(&url("https://a.test/docs/y")));
        s.scope.include_globs = UrlGlobs::parse("includeUrlGlobs", ["https://a.test/**"]).unwrap();
        assert!(s.follows(&url("https://a.test/blog/y")));
        assert!(
            !s.follows(&url("https://a.test/blog/x")),
            "path rules still apply"
        );
        s.scope.exclude_globs =
            UrlGlobs::parse("excludeUrlGlobs", ["https://a.test/blog/*"]).unwrap();
        assert!(!s.follows(&url("https://a.test/blog/y")));
    }

    #[test]
    fn checked_values_refuse_what_cannot_be_sent() {
        assert!(InitialCookie::new("a=b", "c").is_err());
        assert!(InitialCookie::new("a", "b;c").is_err());
        assert!(InitialCookie::new("a", "c\r\nX-Injected: y").is_err());
        assert!(InitialCookie::new("a\n", "b").is_err());
        assert!(InitialCookie::new("a", "b\u{0}").is_err());
        assert!(InitialCookie::new("a", "b").is_ok());
        let e = CustomHeaders::parse([("X Bad", "v")]).unwrap_err();
        assert!(e.to_string().starts_with("customHttpHeaders: "), "{e}");
        assert!(CustomHeaders::parse([("X-Ok", "v")]).is_ok());
        assert_eq!(Percent::new(0), None);
        assert_eq!(Percent::new(101), None);
        assert_eq!(Percent::new(100).map(Percent::get), Some(100));
        assert!(CssSelector::parse("waitForSelector", "div[[[").is_err());
        let globs = vec!["https://a.test/*"; MAX_GLOBS + 1];
        assert!(UrlGlobs::parse("includeUrlGlobs", globs).is_err());
    }
}
