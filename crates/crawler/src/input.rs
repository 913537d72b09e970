//! WCC's input JSON (camelCase, WCC's defaults). Fields agentbase does not apply (Apify
//! platform features, screenshots, and the browser inputs when `crawlerType` is
//! `cheerio`) are accepted and reported by [`CrawlInput::ignored_inputs`]; unknown
//! fields are kept and reported by [`CrawlInput::unknown_inputs`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::extract::{DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR, ExtractOptions, HtmlTransformer};
use crate::glob::Glob;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartUrl {
    Url(String),
    Request {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        #[serde(default, rename = "userData", skip_serializing_if = "Option::is_none")]
        user_data: Option<serde_json::Value>,
    },
}

impl StartUrl {
    pub fn url(&self) -> &str {
        match self {
            StartUrl::Url(u) => u,
            StartUrl::Request { url, .. } => url,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GlobInput {
    Glob(String),
    Object { glob: String },
}

impl GlobInput {
    pub fn pattern(&self) -> &str {
        match self {
            GlobInput::Glob(g) | GlobInput::Object { glob: g } => g,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// At most this many globs in `includeUrlGlobs` or `excludeUrlGlobs`.
pub const MAX_GLOBS: usize = 100;
/// At most this many pattern tokens over all of a list's globs and their `{}`
/// expansions (each link costs this times its length to match).
pub const MAX_GLOB_COST: usize = 16_384;

fn d_true() -> bool {
    true
}
fn d_depth() -> u32 {
    20
}
fn d_max() -> u64 {
    9_999_999
}
fn d_concurrency() -> u32 {
    200
}
fn d_retries() -> u32 {
    3
}
fn d_timeout() -> u64 {
    60
}
fn d_threshold() -> usize {
    100
}
fn d_remove() -> String {
    DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR.to_string()
}
fn d_transformer() -> String {
    "readableText".to_string()
}

/// Fields WCC accepts that agentbase does not apply: Apify platform features (proxies,
/// sessions, request signing, key-value store files), custom page functions and
/// screenshots.
pub const UNSUPPORTED_INPUTS: &[&str] = &[
    "initialConcurrency",
    "signHttpRequests",
    "pageFunction",
    "proxyConfiguration",
    "maxSessionRotations",
    "minFileDownloadSpeedKBps",
    "stickyContainerCssSelector",
    "debugMode",
    "debugLog",
    "storeSkippedUrls",
    "saveHtmlAsFile",
    "saveFiles",
    "saveScreenshots",
];

/// Inputs that only a browser applies: WCC ignores them for `cheerio`, and so does
/// agentbase (reported by [`CrawlInput::ignored_inputs`] when given).
pub const BROWSER_ONLY_INPUTS: &[&str] = &[
    "dynamicContentWaitSecs",
    "waitForSelector",
    "softWaitForSelector",
    "maxScrollHeightPixels",
    "removeCookieWarnings",
    "blockMedia",
    "clickElementsCssSelector",
    "clientSideMinChangePercentage",
    "renderingTypeDetectionPercentage",
    "reuseStoredDetectionResults",
];

/// WCC's `crawlerType`: how pages are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CrawlerType {
    /// Render only the pages that need it, decided per page and remembered per site.
    #[default]
    #[serde(rename = "playwright:adaptive")]
    Adaptive,
    /// Always render (agentbase renders with Chromium whichever browser is named).
    #[serde(rename = "playwright:firefox")]
    Firefox,
    #[serde(rename = "playwright:chrome")]
    Chrome,
    /// The HTML as served, over plain HTTP.
    #[serde(rename = "cheerio")]
    Cheerio,
    /// Deprecated in WCC; runs as `cheerio`.
    #[serde(rename = "jsdom")]
    Jsdom,
}

impl CrawlerType {
    /// Whether every HTML page is rendered.
    pub fn always_renders(self) -> bool {
        matches!(self, CrawlerType::Firefox | CrawlerType::Chrome)
    }

    /// Whether pages may be rendered at all.
    pub fn uses_browser(self) -> bool {
        !matches!(self, CrawlerType::Cheerio | CrawlerType::Jsdom)
    }
}

fn d_wait() -> u64 {
    10
}
fn d_scroll() -> u64 {
    5000
}
fn d_click() -> String {
    "[aria-expanded=\"false\"]".to_string()
}
fn d_change() -> u32 {
    15
}
fn d_detection() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrawlInput {
    #[serde(default)]
    pub start_urls: Vec<StartUrl>,
    #[serde(default)]
    pub use_sitemaps: bool,
    #[serde(default)]
    pub use_llms_txt: bool,
    #[serde(default)]
    pub respect_robots_txt_file: bool,
    #[serde(default)]
    pub include_url_globs: Vec<GlobInput>,
    #[serde(default)]
    pub exclude_url_globs: Vec<GlobInput>,
    #[serde(default)]
    pub keep_url_fragments: bool,
    #[serde(default)]
    pub ignore_canonical_url: bool,
    #[serde(default)]
    pub ignore_https_errors: bool,
    #[serde(default = "d_depth")]
    pub max_crawl_depth: u32,
    #[serde(default = "d_max")]
    pub max_crawl_pages: u64,
    #[serde(default = "d_max")]
    pub max_results: u64,
    #[serde(default = "d_concurrency")]
    pub max_concurrency: u32,
    #[serde(default)]
    pub initial_cookies: Vec<Cookie>,
    #[serde(default)]
    pub custom_http_headers: BTreeMap<String, String>,
    #[serde(default = "d_retries")]
    pub max_request_retries: u32,
    #[serde(default = "d_timeout")]
    pub request_timeout_secs: u64,
    #[serde(default)]
    pub keep_elements_css_selector: String,
    #[serde(default = "d_remove")]
    pub remove_elements_css_selector: String,
    /// `readableText` | `readableTextIfPossible` | `none`; `extractus`, `defuddle` and
    /// `minimal` run as `readableText` and are reported as ignored.
    #[serde(default = "d_transformer")]
    pub html_transformer: String,
    /// Deprecated alias of `htmlTransformer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_extractor: Option<String>,
    #[serde(default = "d_threshold")]
    pub readable_text_char_threshold: usize,
    #[serde(default)]
    pub aggressive_prune: bool,
    #[serde(default = "d_true")]
    pub save_markdown: bool,
    #[serde(default)]
    pub save_html: bool,
    /// `playwright:adaptive` (the default), `playwright:firefox`/`playwright:chrome`
    /// (always render), `cheerio` (never render; `jsdom` is its deprecated alias).
    #[serde(default)]
    pub crawler_type: CrawlerType,
    /// Inline the documents of `<iframe>`s (HTTP mode too: same-host frames, including
    /// the `<noscript>` fallbacks a script-less client would load).
    #[serde(default = "d_true")]
    pub expand_iframes: bool,
    /// Most seconds to wait for the network to go idle after a rendered page loads.
    #[serde(default = "d_wait")]
    pub dynamic_content_wait_secs: u64,
    /// A rendered page fails (and is retried) unless this selector appears.
    #[serde(default)]
    pub wait_for_selector: String,
    /// Like `waitForSelector`, without failing.
    #[serde(default)]
    pub soft_wait_for_selector: String,
    /// How far down a rendered page is scrolled to load lazy content (0: not at all).
    #[serde(default = "d_scroll")]
    pub max_scroll_height_pixels: u64,
    #[serde(default = "d_true")]
    pub remove_cookie_warnings: bool,
    /// Images, video and audio are not loaded by the browser.
    #[serde(default)]
    pub block_media: bool,
    /// Elements clicked before extraction (accordions, "show more").
    #[serde(default = "d_click")]
    pub click_elements_css_selector: String,
    /// Adaptive mode: rendering that changes this % of the text means the page needs it.
    #[serde(default = "d_change")]
    pub client_side_min_change_percentage: u32,
    /// Adaptive mode: how often a page whose kind of site is known is checked again.
    #[serde(default = "d_detection")]
    pub rendering_type_detection_percentage: u32,
    /// Adaptive mode: start from what earlier crawls in this process learned per site.
    #[serde(default)]
    pub reuse_stored_detection_results: bool,
    /// Everything else: unsupported fields and unknown ones.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for CrawlInput {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).unwrap_or_else(|_| unreachable!())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("input is not valid WCC input: {0}")]
    Json(String),
    #[error("startUrls: at least one start URL is required")]
    NoStartUrls,
    #[error("startUrls[{index}]: {url:?} is not an absolute http(s) URL")]
    BadStartUrl { index: usize, url: String },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// A checked input, ready to crawl.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub start_urls: Vec<Url>,
    /// (origin, path prefix without trailing slash) per start URL.
    pub scopes: Vec<(String, String)>,
    pub include: Vec<Glob>,
    pub exclude: Vec<Glob>,
    pub extract: ExtractOptions,
}

impl CrawlInput {
    /// Parses WCC input JSON.
    pub fn from_json(value: serde_json::Value) -> Result<CrawlInput, InputError> {
        serde_json::from_value(value).map_err(|e| InputError::Json(e.to_string()))
    }

    /// Inputs present in this input that are accepted but not applied: unsupported
    /// ones, and browser-only ones when the crawler type never renders.
    pub fn ignored_inputs(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = UNSUPPORTED_INPUTS
            .iter()
            .copied()
            .filter(|k| self.other.contains_key(*k))
            .collect();
        if !self.crawler_type.uses_browser() {
            let defaults = CrawlInput::default();
            let given = [
                self.dynamic_content_wait_secs != defaults.dynamic_content_wait_secs,
                self.wait_for_selector != defaults.wait_for_selector,
                self.soft_wait_for_selector != defaults.soft_wait_for_selector,
                self.max_scroll_height_pixels != defaults.max_scroll_height_pixels,
                self.remove_cookie_warnings != defaults.remove_cookie_warnings,
                self.block_media != defaults.block_media,
                self.click_elements_css_selector != defaults.click_elements_css_selector,
                self.client_side_min_change_percentage
                    != defaults.client_side_min_change_percentage,
                self.rendering_type_detection_percentage
                    != defaults.rendering_type_detection_percentage,
                self.reuse_stored_detection_results != defaults.reuse_stored_detection_results,
            ];
            out.extend(
                BROWSER_ONLY_INPUTS
                    .iter()
                    .zip(given)
                    .filter(|(_, g)| *g)
                    .map(|(k, _)| *k),
            );
        }
        if matches!(
            self.transformer_name(),
            "extractus" | "defuddle" | "minimal"
        ) {
            out.push("htmlTransformer");
        }
        out
    }

    /// Fields WCC does not define (tolerated, not applied).
    pub fn unknown_inputs(&self) -> Vec<String> {
        self.other
            .keys()
            .filter(|k| !UNSUPPORTED_INPUTS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    fn transformer_name(&self) -> &str {
        match &self.text_extractor {
            Some(t) if self.html_transformer == "readableText" => t,
            _ => &self.html_transformer,
        }
    }

    /// The cleaning and output options as extraction options.
    pub fn extract_options(&self) -> Result<ExtractOptions, InputError> {
        let html_transformer = match self.transformer_name() {
            "readableText" | "extractus" | "defuddle" | "minimal" => HtmlTransformer::ReadableText,
            "readableTextIfPossible" => HtmlTransformer::ReadableTextIfPossible,
            "none" => HtmlTransformer::None,
            other => {
                return Err(InputError::Invalid {
                    field: "htmlTransformer",
                    reason: format!(
                        "unknown value {other:?} (readableText, readableTextIfPossible, none)"
                    ),
                });
            }
        };
        let options = ExtractOptions {
            remove_elements_css_selector: self.remove_elements_css_selector.clone(),
            keep_elements_css_selector: self.keep_elements_css_selector.clone(),
            html_transformer,
            readable_text_char_threshold: self.readable_text_char_threshold,
            save_markdown: self.save_markdown,
            save_html: self.save_html,
        };
        options.validate().map_err(|e| InputError::Invalid {
            field: e.field,
            reason: format!("invalid CSS selector {:?}: {}", e.selector, e.reason),
        })?;
        Ok(options)
    }

    /// Checks every field the crawler applies; reports the first bad one by name.
    pub fn validate(&self) -> Result<(), InputError> {
        self.prepare().map(|_| ())
    }

    pub(crate) fn prepare(&self) -> Result<Prepared, InputError> {
        if self.start_urls.is_empty() {
            return Err(InputError::NoStartUrls);
        }
        let mut start_urls = Vec::new();
        let mut scopes = Vec::new();
        for (index, s) in self.start_urls.iter().enumerate() {
            let bad = || InputError::BadStartUrl {
                index,
                url: s.url().to_string(),
            };
            let u = Url::parse(s.url().trim()).map_err(|_| bad())?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(bad());
            }
            scopes.push(scope_of(&u));
            start_urls.push(u);
        }
        let include = parse_globs("includeUrlGlobs", &self.include_url_globs)?;
        let exclude = parse_globs("excludeUrlGlobs", &self.exclude_url_globs)?;
        self.check_limits()?;
        self.check_browser_inputs()?;
        let extract = self.extract_options()?;
        Ok(Prepared {
            start_urls,
            scopes,
            include,
            exclude,
            extract,
        })
    }

    /// Concurrency, retries, timeouts, headers and cookies.
    fn check_limits(&self) -> Result<(), InputError> {
        if !(1..=999).contains(&self.max_concurrency) {
            return Err(InputError::Invalid {
                field: "maxConcurrency",
                reason: format!("{} is outside 1..=999", self.max_concurrency),
            });
        }
        if self.max_request_retries > 20 {
            return Err(InputError::Invalid {
                field: "maxRequestRetries",
                reason: format!("{} is outside 0..=20", self.max_request_retries),
            });
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return Err(InputError::Invalid {
                field: "requestTimeoutSecs",
                reason: format!("{} is outside 1..=600", self.request_timeout_secs),
            });
        }
        for (k, v) in &self.custom_http_headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(InputError::Invalid {
                    field: "customHttpHeaders",
                    reason: format!("{k:?} is not a valid header"),
                });
            }
        }
        for c in &self.initial_cookies {
            if c.name.is_empty() || c.name.contains([';', '=', ' ']) || c.value.contains(';') {
                return Err(InputError::Invalid {
                    field: "initialCookies",
                    reason: format!("cookie {:?} has an invalid name or value", c.name),
                });
            }
        }
        Ok(())
    }

    /// Selectors and the browser's waits, scrolling and detection figures.
    fn check_browser_inputs(&self) -> Result<(), InputError> {
        for (field, selector) in [
            ("waitForSelector", &self.wait_for_selector),
            ("softWaitForSelector", &self.soft_wait_for_selector),
            (
                "clickElementsCssSelector",
                &self.click_elements_css_selector,
            ),
        ] {
            if !selector.trim().is_empty()
                && let Err(e) = scraper::Selector::parse(selector)
            {
                return Err(InputError::Invalid {
                    field,
                    reason: format!("invalid CSS selector {selector:?}: {e}"),
                });
            }
        }
        let ranges: [(&'static str, u64, std::ops::RangeInclusive<u64>); 4] = [
            (
                "dynamicContentWaitSecs",
                self.dynamic_content_wait_secs,
                0..=600,
            ),
            (
                "maxScrollHeightPixels",
                self.max_scroll_height_pixels,
                0..=1_000_000,
            ),
            (
                "clientSideMinChangePercentage",
                self.client_side_min_change_percentage.into(),
                1..=100,
            ),
            (
                "renderingTypeDetectionPercentage",
                self.rendering_type_detection_percentage.into(),
                1..=100,
            ),
        ];
        for (field, value, range) in ranges {
            if !range.contains(&value) {
                return Err(InputError::Invalid {
                    field,
                    reason: format!("{value} is outside {}..={}", range.start(), range.end()),
                });
            }
        }
        Ok(())
    }
}

/// WCC's default scope: sub-pages of the start URL. A last segment that looks like a
/// file (`index.html`) scopes to its directory.
fn scope_of(u: &Url) -> (String, String) {
    let origin = u.origin().ascii_serialization();
    let path = u.path();
    let dir = match path.rsplit_once('/') {
        Some((head, last)) if last.contains('.') => head,
        _ => path.trim_end_matches('/'),
    };
    (origin, dir.to_string())
}

/// A glob list of the input, bounded in count and in total cost.
fn parse_globs(field: &'static str, list: &[GlobInput]) -> Result<Vec<Glob>, InputError> {
    if list.len() > MAX_GLOBS {
        return Err(InputError::Invalid {
            field,
            reason: format!("more than {MAX_GLOBS} globs"),
        });
    }
    let globs = list
        .iter()
        .map(|g| {
            Glob::new(g.pattern()).map_err(|e| InputError::Invalid {
                field,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Every link found is matched against every glob: bound the sum.
    if globs.iter().map(Glob::cost).sum::<usize>() > MAX_GLOB_COST {
        return Err(InputError::Invalid {
            field,
            reason: format!(
                "the globs expand to more than {MAX_GLOB_COST} pattern characters in all"
            ),
        });
    }
    Ok(globs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_wcc_and_browser_fields_are_reported() {
        let input = CrawlInput::from_json(serde_json::json!({
            "startUrls": [{"url": "https://docs.example.com/guide"}, "https://example.com/x/index.html"],
            "crawlerType": "playwright:adaptive",
            "includeUrlGlobs": [{"glob": "https://docs.example.com/**"}, "https://example.com/**"],
            "somethingNew": 1
        }))
        .unwrap();
        assert_eq!(input.max_crawl_depth, 20);
        assert_eq!(input.max_crawl_pages, 9_999_999);
        assert_eq!(input.max_concurrency, 200);
        assert_eq!(input.max_request_retries, 3);
        assert!(input.save_markdown && !input.save_html);
        assert_eq!(input.crawler_type, CrawlerType::Adaptive);
        assert!(input.expand_iframes && input.remove_cookie_warnings);
        assert_eq!(
            input.click_elements_css_selector,
            "[aria-expanded=\"false\"]"
        );
        assert_eq!(input.dynamic_content_wait_secs, 10);
        assert!(input.ignored_inputs().is_empty());
        assert_eq!(input.unknown_inputs(), vec!["somethingNew".to_string()]);
        let p = input.prepare().unwrap();
        assert_eq!(p.scopes[0].1, "/guide");
        assert_eq!(p.scopes[1].1, "/x");
        assert_eq!(p.include.len(), 2);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = CrawlInput::from_json(serde_json::json!({"startUrls": ["ftp://x"]}))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(matches!(e, InputError::BadStartUrl { index: 0, .. }));
        let e = CrawlInput::from_json(serde_json::json!({
            "startUrls": ["https://x.test"], "removeElementsCssSelector": "div[[["
        }))
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("removeElementsCssSelector"), "{e}");
        assert_eq!(
            CrawlInput::default().validate().unwrap_err(),
            InputError::NoStartUrls
        );
    }
}
