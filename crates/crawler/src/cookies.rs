//! The crawl's cookie jar: `initialCookies` plus every cookie a response sets, kept for
//! the rest of the crawl and sent back only where RFC 6265 says (host-only cookies to
//! their host, domain cookies to that domain, path and `Secure` honoured), in HTTP and
//! browser mode alike. `initialCookies` without a domain belong to the start URLs'
//! hosts, so a redirect or a link to another host never carries them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::spec::InitialCookie;

/// Bounds on what a hostile site can make the jar hold.
const MAX_COOKIES: usize = 1000;
const MAX_PER_DOMAIN: usize = 60;
const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: String,
    /// Exact host for host-only cookies, else the domain (no leading dot).
    domain: String,
    host_only: bool,
    secure: bool,
    http_only: bool,
    /// Unix seconds; `None` for a session cookie (kept for the whole crawl).
    expires: Option<f64>,
}

/// A cookie as the DevTools protocol's `Network.setCookies`/`getCookies` spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserCookie {
    pub name: String,
    pub value: String,
    /// A leading dot marks a domain cookie; without one the cookie is host-only.
    pub domain: String,
    pub path: String,
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub http_only: bool,
    /// Unix seconds; absent or negative for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
}

/// Keyed by (domain, path, name), as a browser keys them.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: Mutex<BTreeMap<(String, String, String), Entry>>,
}

fn now_secs() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp() as f64
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[')
}

/// RFC 6265 §5.1.3.
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || (!is_ip(host)
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// RFC 6265 §5.1.4.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.4's default path: the request path up to its last `/`.
fn default_path(u: &Url) -> String {
    let p = u.path();
    match p.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

fn parse_http_date(v: &str) -> Option<f64> {
    let v = v.trim();
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
        .ok()
        .or_else(|| {
            // RFC 850 / asctime variants are rare; `Wed, 21-Oct-2015 07:28:00 GMT` is not.
            let fixed = v.replacen('-', " ", 2);
            time::OffsetDateTime::parse(&fixed, &time::format_description::well_known::Rfc2822).ok()
        })?;
    Some(t.unix_timestamp() as f64)
}

impl CookieJar {
    /// A jar holding `initialCookies`: one with a domain is a domain cookie there;
    /// one without belongs to each start URL's host only.
    pub fn with_initial(cookies: &[InitialCookie], start_urls: &[Url]) -> CookieJar {
        let jar = CookieJar::default();
        let mut hosts: Vec<String> = start_urls
            .iter()
            .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
            .collect();
        hosts.dedup();
        for c in cookies {
            let path = c.path.clone().filter(|p| p.starts_with('/'));
            let path = path.unwrap_or_else(|| "/".to_string());
            let secure = c.secure;
            let targets: Vec<(String, bool)> = match c.domain.as_deref() {
                Some(d) if !d.trim_matches('.').is_empty() => {
                    let d = d.trim_start_matches('.').to_ascii_lowercase();
                    vec![(d.clone(), is_ip(&d))]
                }
                _ => hosts.iter().map(|h| (h.clone(), true)).collect(),
            };
            for (domain, host_only) in targets {
                jar.put(
                    c.name().to_string(),
                    path.clone(),
                    Entry {
                        value: c.value().to_string(),
                        domain,
                        host_only,
                        secure,
                        http_only: false,
                        expires: None,
                    },
                );
            }
        }
        jar
    }

    fn put(&self, name: String, path: String, e: Entry) {
        let mut map = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        let key = (e.domain.clone(), path, name);
        if !map.contains_key(&key) {
            let same_domain = map.keys().filter(|k| k.0 == key.0).count();
            if map.len() >= MAX_COOKIES || same_domain >= MAX_PER_DOMAIN {
                return;
            }
        }
        map.insert(key, e);
    }

    /// Stores (or deletes) the cookie one `Set-Cookie` header sets for `url`.
    pub fn set_from_header(&self, url: &Url, header: &str) {
        if header.len() > MAX_COOKIE_BYTES {
            return;
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return;
        };
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() {
            return;
        }
        let mut domain: Option<String> = None;
        let mut path: Option<String> = None;
        let mut secure = false;
        let mut http_only = false;
        let mut max_age: Option<f64> = None;
        let mut expires: Option<f64> = None;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "domain" if !v.trim_matches('.').is_empty() => {
                    domain = Some(v.trim_start_matches('.').to_ascii_lowercase())
                }
                "path" if v.starts_with('/') => path = Some(v.to_string()),
                "secure" => secure = true,
                "httponly" => http_only = true,
                "max-age" => max_age = v.parse::<f64>().ok(),
                "expires" => expires = parse_http_date(v),
                _ => {}
            }
        }
        // A site may only set cookies for itself or a parent domain (never for a
        // sibling or an unrelated host), and a bare top-level label is refused.
        let (domain, host_only) = match domain {
            Some(d) if domain_matches(&host, &d) && (d.contains('.') || d == host) => (d, false),
            Some(_) => return,
            None => (host, true),
        };
        if secure && url.scheme() != "https" {
            return;
        }
        let expires = match max_age {
            Some(a) => Some(now_secs() + a),
            None => expires,
        };
        let path = path.unwrap_or_else(|| default_path(url));
        if expires.is_some_and(|e| e <= now_secs()) {
            let mut map = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&(domain, path, name));
            return;
        }
        self.put(
            name,
            path,
            Entry {
                value,
                domain,
                host_only,
                secure,
                http_only,
                expires,
            },
        );
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str()?.to_ascii_lowercase();
        let path = url.path();
        let now = now_secs();
        let map = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        let mut matching: Vec<(&(String, String, String), &Entry)> = map
            .iter()
            .filter(|(k, e)| {
                (if e.host_only {
                    host == e.domain
                } else {
                    domain_matches(&host, &e.domain)
                }) && path_matches(path, &k.1)
                    && (!e.secure || url.scheme() == "https")
                    && e.expires.is_none_or(|x| x > now)
            })
            .collect();
        // Longer paths first, as browsers send them.
        matching.sort_by_key(|(k, _)| std::cmp::Reverse(k.1.len()));
        let pairs: Vec<String> = matching
            .into_iter()
            .map(|(k, e)| format!("{}={}", k.2, e.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Every live cookie, for a browser context about to load a page.
    pub fn to_browser(&self) -> Vec<BrowserCookie> {
        let now = now_secs();
        let map = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, e)| e.expires.is_none_or(|x| x > now))
            .map(|((_, path, name), e)| BrowserCookie {
                name: name.clone(),
                value: e.value.clone(),
                domain: if e.host_only {
                    e.domain.clone()
                } else {
                    format!(".{}", e.domain)
                },
                path: path.clone(),
                secure: e.secure,
                http_only: e.http_only,
                expires: e.expires,
            })
            .collect()
    }

    /// Takes in the cookies a rendered page ended with (its scripts may have set some).
    pub fn merge_from_browser(&self, cookies: &[BrowserCookie]) {
        for c in cookies {
            if c.name.is_empty() || c.name.len() + c.value.len() > MAX_COOKIE_BYTES {
                continue;
            }
            let host_only = !c.domain.starts_with('.');
            let domain = c.domain.trim_start_matches('.').to_ascii_lowercase();
            if domain.is_empty() {
                continue;
            }
            self.put(
                c.name.clone(),
                if c.path.starts_with('/') {
                    c.path.clone()
                } else {
                    "/".to_string()
                },
                Entry {
                    value: c.value.clone(),
                    domain,
                    host_only,
                    secure: c.secure,
                    http_only: c.http_only,
                    expires: c.expires.filter(|e| *e > 0.0),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn response_cookies_go_back_only_to_their_host_domain_and_path() {
        let jar = CookieJar::default();
        let docs = url("https://docs.example.com/guide/intro");
        jar.set_from_header(&docs, "session=abc; Path=/; HttpOnly");
        jar.set_from_header(&docs, "wide=1; Domain=.example.com; Path=/");
        jar.set_from_header(&docs, "local=2");
        jar.set_from_header(&docs, "evil=3; Domain=other.com");
        jar.set_from_header(&docs, "tld=4; Domain=com");
        assert_eq!(
            jar.header_for(&url("https://docs.example.com/guide/next"))
                .unwrap(),
            "local=2; session=abc; wide=1"
        );
        assert_eq!(
            jar.header_for(&url("https://docs.example.com/other"))
                .unwrap(),
            "session=abc; wide=1"
        );
        assert_eq!(
            jar.header_for(&url("https://api.example.com/")).unwrap(),
            "wide=1"
        );
        assert_eq!(jar.header_for(&url("https://other.com/")), None);
        assert_eq!(jar.header_for(&url("https://xexample.com/")), None);
        jar.set_from_header(&docs, "session=gone; Path=/; Max-Age=0");
        assert_eq!(
            jar.header_for(&url("https://docs.example.com/other"))
                .unwrap(),
            "wide=1"
        );
    }

    #[test]
    fn secure_cookies_stay_on_https_and_expired_ones_are_dropped() {
        let jar = CookieJar::default();
        let u = url("https://a.test/");
        jar.set_from_header(&u, "s=1; Secure");
        jar.set_from_header(&u, "old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
        jar.set_from_header(&url("http://a.test/"), "insecure-secure=1; Secure");
        assert_eq!(jar.header_for(&u).unwrap(), "s=1");
        assert_eq!(jar.header_for(&url("http://a.test/")), None);
    }

    #[test]
    fn initial_cookies_without_a_domain_belong_to_the_start_hosts() {
        let mut wide = InitialCookie::new("wide", "w").unwrap();
        wide.domain = Some(".example.com".into());
        let cookies = [InitialCookie::new("token", "t").unwrap(), wide];
        let jar = CookieJar::with_initial(&cookies, &[url("https://docs.example.com/")]);
        assert_eq!(
            jar.header_for(&url("https://docs.example.com/x")).unwrap(),
            "token=t; wide=w"
        );
        assert_eq!(
            jar.header_for(&url("https://evil.example.com/")).unwrap(),
            "wide=w"
        );
        assert_eq!(jar.header_for(&url("https://evil.test/")), None);
    }

    #[test]
    fn browser_cookies_round_trip() {
        let jar = CookieJar::default();
        jar.set_from_header(&url("https://a.test/x/y"), "h=1; Path=/");
        jar.set_from_header(&url("https://a.test/"), "d=2; Domain=a.test");
        let out = jar.to_browser();
        assert_eq!(out.len(), 2);
        let copy = CookieJar::default();
        copy.merge_from_browser(&out);
        copy.merge_from_browser(&[BrowserCookie {
            name: "js".into(),
            value: "3".into(),
            domain: "a.test".into(),
            path: "/".into(),
            secure: false,
            http_only: false,
            expires: Some(-1.0),
        }]);
        assert_eq!(
            copy.header_for(&url("https://a.test/")).unwrap(),
            "d=2; h=1; js=3"
        );
        assert_eq!(copy.header_for(&url("https://sub.a.test/")).unwrap(), "d=2");
    }

    #[test]
    fn the_jar_is_bounded() {
        let jar = CookieJar::default();
        let u = url("https://a.test/");
        for i in 0..500 {
            jar.set_from_header(&u, &format!("c{i}=1"));
        }
        assert_eq!(jar.to_browser().len(), MAX_PER_DOMAIN);
    }
}
