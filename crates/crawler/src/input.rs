//! WCC's input JSON (camelCase, WCC's defaults). Fields agentbase does not apply (Apify
//! platform features, screenshots, and the browser inputs when `crawlerType` is
//! `cheerio`) are accepted and reported by [`CrawlInput::ignored_inputs`]; unknown
//! fields are kept and reported by [`CrawlInput::unknown_inputs`]. This is the wire
//! shape only: `CrawlSpec::try_from(&input)` checks it field by field into the typed
//! [`CrawlSpec`] the engine runs.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::extract::{DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR, ExtractOptions, HtmlTransformer};
use crate::spec::{
    CrawlSpec, CssSelector, CustomHeaders, FetchOptions, InitialCookie, Limits, PathRules, Percent,
    RenderOptions, Scope, StartUrls, UrlGlobs,
};

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

/// WCC's names: `playwright:adaptive`, `playwright:firefox`, `playwright:chrome`,
/// `cheerio`, `jsdom`.
impl std::str::FromStr for CrawlerType {
    type Err = String;

    fn from_str(s: &str) -> Result<CrawlerType, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            format!(
                "unknown crawler type {s:?} (playwright:adaptive, playwright:firefox, \
                 playwright:chrome, cheerio)"
            )
        })
    }
}

fn d_wait() -> u64 {
    10
}
fn d_scroll() -> u64 {
    5000
}
fn d_click() -> String {
    crate::spec::DEFAULT_CLICK.to_string()
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

/// The lists whose items are objects (or, where `true`, a string instead). serde
/// would also fill an object's fields from an array, in order, which WCC's input
/// schema refuses: `"startUrls": [["https://x.test"]]` is not a start URL.
const STRUCTURED_LISTS: [(&str, bool); 4] = [
    ("startUrls", true),
    ("includeUrlGlobs", true),
    ("excludeUrlGlobs", true),
    ("initialCookies", false),
];

fn structured_items(
    input: &serde_json::Value,
    field: &'static str,
    strings: bool,
) -> Result<(), InputError> {
    let Some(serde_json::Value::Array(items)) = input.get(field) else {
        return Ok(());
    };
    let wrong = items
        .iter()
        .position(|item| !(item.is_object() || strings && item.is_string()));
    match wrong {
        None => Ok(()),
        Some(index) => Err(InputError::Invalid {
            field,
            reason: format!(
                "item {index} must be {}",
                if strings {
                    "a string or an object"
                } else {
                    "an object"
                }
            ),
        }),
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

impl CrawlInput {
    /// Parses WCC input JSON.
    pub fn from_json(value: serde_json::Value) -> Result<CrawlInput, InputError> {
        for (field, strings) in STRUCTURED_LISTS {
            structured_items(&value, field, strings)?;
        }
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
        CrawlSpec::try_from(self).map(|_| ())
    }

    /// `includeUrlGlobs` and `excludeUrlGlobs`.
    fn scope(&self) -> Result<Scope, InputError> {
        let include = self.include_url_globs.iter().map(GlobInput::pattern);
        let exclude = self.exclude_url_globs.iter().map(GlobInput::pattern);
        Ok(Scope {
            include_globs: UrlGlobs::parse("includeUrlGlobs", include)?,
            exclude_globs: UrlGlobs::parse("excludeUrlGlobs", exclude)?,
            paths: PathRules::default(),
        })
    }

    fn limits(&self) -> Result<Limits, InputError> {
        let max_concurrency = NonZeroU32::new(self.max_concurrency)
            .filter(|n| n.get() <= 999)
            .ok_or_else(|| InputError::Invalid {
                field: "maxConcurrency",
                reason: format!("{} is outside 1..=999", self.max_concurrency),
            })?;
        Ok(Limits {
            max_depth: self.max_crawl_depth,
            max_pages: self.max_crawl_pages,
            max_results: self.max_results,
            max_concurrency,
        })
    }

    /// Retries, timeouts, headers and cookies.
    fn fetch_options(&self) -> Result<FetchOptions, InputError> {
        check_range("maxRequestRetries", self.max_request_retries.into(), 0..=20)?;
        check_range("requestTimeoutSecs", self.request_timeout_secs, 1..=600)?;
        let headers = CustomHeaders::parse(&self.custom_http_headers)?;
        let cookies = self
            .initial_cookies
            .iter()
            .map(|c| {
                let mut cookie = InitialCookie::new(&c.name, &c.value)?;
                cookie.domain = c.domain.clone();
                cookie.path = c.path.clone();
                cookie.secure = c.other.get("secure").and_then(|v| v.as_bool()) == Some(true);
                Ok(cookie)
            })
            .collect::<Result<Vec<_>, InputError>>()?;
        Ok(FetchOptions {
            max_retries: self.max_request_retries,
            timeout: Duration::from_secs(self.request_timeout_secs),
            ignore_https_errors: self.ignore_https_errors,
            cookies,
            headers,
        })
    }

    /// Selectors and the browser's waits, scrolling and detection figures.
    fn render_options(&self) -> Result<RenderOptions, InputError> {
        let selector = |field, s: &str| {
            (!s.trim().is_empty())
                .then(|| CssSelector::parse(field, s))
                .transpose()
        };
        let wait_for_selector = selector("waitForSelector", &self.wait_for_selector)?;
        let soft_wait_for_selector = selector("softWaitForSelector", &self.soft_wait_for_selector)?;
        let click_elements = selector(
            "clickElementsCssSelector",
            &self.click_elements_css_selector,
        )?;
        check_range(
            "dynamicContentWaitSecs",
            self.dynamic_content_wait_secs,
            0..=600,
        )?;
        check_range(
            "maxScrollHeightPixels",
            self.max_scroll_height_pixels,
            0..=1_000_000,
        )?;
        let percent = |field, n: u32| {
            Percent::new(n).ok_or_else(|| InputError::Invalid {
                field,
                reason: format!("{n} is outside 1..=100"),
            })
        };
        Ok(RenderOptions {
            dynamic_content_wait: Duration::from_secs(self.dynamic_content_wait_secs),
            wait_for_selector,
            soft_wait_for_selector,
            click_elements,
            max_scroll_height_pixels: self.max_scroll_height_pixels,
            remove_cookie_warnings: self.remove_cookie_warnings,
            block_media: self.block_media,
            client_side_min_change: percent(
                "clientSideMinChangePercentage",
                self.client_side_min_change_percentage,
            )?,
            rendering_type_detection: percent(
                "renderingTypeDetectionPercentage",
                self.rendering_type_detection_percentage,
            )?,
            reuse_stored_detection_results: self.reuse_stored_detection_results,
        })
    }
}

fn check_range(
    field: &'static str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), InputError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(InputError::Invalid {
        field,
        reason: format!("{value} is outside {}..={}", range.start(), range.end()),
    })
}

/// WCC's input, checked field by field (the error names the first bad one), as the
/// crawl it asks for.
impl TryFrom<&CrawlInput> for CrawlSpec {
    type Error = InputError;

    fn try_from(input: &CrawlInput) -> Result<CrawlSpec, InputError> {
        let mut spec = CrawlSpec::new(StartUrls::parse(
            input.start_urls.iter().map(StartUrl::url),
        )?);
        spec.scope = input.scope()?;
        spec.limits = input.limits()?;
        spec.fetch = input.fetch_options()?;
        spec.render = input.render_options()?;
        spec.extract = input.extract_options()?;
        spec.use_sitemaps = input.use_sitemaps;
        spec.use_llms_txt = input.use_llms_txt;
        spec.respect_robots_txt = input.respect_robots_txt_file;
        spec.keep_url_fragments = input.keep_url_fragments;
        spec.ignore_canonical_url = input.ignore_canonical_url;
        spec.aggressive_prune = input.aggressive_prune;
        spec.crawler_type = input.crawler_type;
        spec.expand_iframes = input.expand_iframes;
        Ok(spec)
    }
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
        assert_eq!("cheerio".parse(), Ok(CrawlerType::Cheerio));
        assert!("chrome".parse::<CrawlerType>().is_err());
        assert!(input.expand_iframes && input.remove_cookie_warnings);
        assert_eq!(
            input.click_elements_css_selector,
            "[aria-expanded=\"false\"]"
        );
        assert_eq!(input.dynamic_content_wait_secs, 10);
        assert!(input.ignored_inputs().is_empty());
        assert_eq!(input.unknown_inputs(), vec!["somethingNew".to_string()]);
        let spec = CrawlSpec::try_from(&input).unwrap();
        let url = |s| url::Url::parse(s).unwrap();
        assert!(spec.start.cover(&url("https://docs.example.com/guide/a")));
        assert!(spec.start.cover(&url("https://example.com/x/a")));
        assert!(!spec.start.cover(&url("https://example.com/y")));
        assert_eq!(spec.scope.include_globs.globs().len(), 2);
    }

    #[test]
    fn the_default_input_converts_to_the_specs_defaults() {
        let input = CrawlInput {
            start_urls: vec![StartUrl::Url("https://a.test/".into())],
            ..CrawlInput::default()
        };
        let converted = CrawlSpec::try_from(&input).unwrap();
        let built = CrawlSpec::new(StartUrls::parse(["https://a.test/"]).unwrap());
        assert_eq!(format!("{converted:?}"), format!("{built:?}"));
    }

    #[test]
    fn fields_convert_to_typed_values() {
        let input = CrawlInput::from_json(serde_json::json!({
            "startUrls": ["https://a.test/"],
            "requestTimeoutSecs": 5,
            "dynamicContentWaitSecs": 0,
            "waitForSelector": " ",
            "softWaitForSelector": "#app",
            "clientSideMinChangePercentage": 100,
            "initialCookies": [{"name": "s", "value": "1", "secure": true}],
            "customHttpHeaders": {"X-A": "1"},
            "maxConcurrency": 7
        }))
        .unwrap();
        let spec = CrawlSpec::try_from(&input).unwrap();
        assert_eq!(spec.fetch.timeout, Duration::from_secs(5));
        assert_eq!(spec.render.dynamic_content_wait, Duration::ZERO);
        assert!(spec.render.wait_for_selector.is_none(), "blank is unset");
        assert_eq!(
            spec.render
                .soft_wait_for_selector
                .as_ref()
                .map(CssSelector::as_str),
            Some("#app")
        );
        assert_eq!(spec.render.client_side_min_change.get(), 100);
        assert!(spec.fetch.cookies[0].secure);
        assert!(!spec.fetch.headers.is_empty());
        assert_eq!(spec.limits.max_concurrency.get(), 7);
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
        for (field, value) in [
            ("maxConcurrency", serde_json::json!(0)),
            ("maxConcurrency", serde_json::json!(1000)),
            ("maxRequestRetries", serde_json::json!(21)),
            ("requestTimeoutSecs", serde_json::json!(0)),
            ("waitForSelector", serde_json::json!("div[[[")),
            ("clientSideMinChangePercentage", serde_json::json!(0)),
            ("renderingTypeDetectionPercentage", serde_json::json!(101)),
            (
                "initialCookies",
                serde_json::json!([{"name": "a;b", "value": "c"}]),
            ),
            ("customHttpHeaders", serde_json::json!({"bad name": "x"})),
            ("excludeUrlGlobs", serde_json::json!([""])),
        ] {
            let mut input = serde_json::json!({"startUrls": ["https://x.test"]});
            input[field] = value;
            let e = CrawlInput::from_json(input)
                .unwrap()
                .validate()
                .unwrap_err();
            assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
        }
    }

    #[test]
    fn objects_are_not_read_from_arrays() {
        for (field, value) in [
            ("startUrls", serde_json::json!([["https://x.test"]])),
            ("startUrls", serde_json::json!(["https://x.test", 7])),
            (
                "includeUrlGlobs",
                serde_json::json!([["https://x.test/**"]]),
            ),
            ("excludeUrlGlobs", serde_json::json!([null])),
            ("initialCookies", serde_json::json!([["a", "b"]])),
            ("initialCookies", serde_json::json!(["a=b"])),
        ] {
            let mut input = serde_json::json!({"startUrls": ["https://x.test"]});
            input[field] = value;
            let e = CrawlInput::from_json(input).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{field}: item ")), "{e}");
        }
        let input = CrawlInput::from_json(serde_json::json!({
            "startUrls": ["https://x.test", {"url": "https://x.test/b"}],
            "includeUrlGlobs": ["https://x.test/**", {"glob": "https://x.test/c/**"}],
            "initialCookies": [{"name": "a", "value": "b"}],
        }))
        .unwrap();
        input.validate().unwrap();
    }
}
