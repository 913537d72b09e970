//! The test site for rendering: a client-rendered single-page app (history-API routes,
//! content by `fetch`), an accordion whose text arrives only when clicked, a cookie
//! banner added by script, content in an iframe, a page setting the session cookie a
//! later page needs, a page whose script reaches for private addresses, and echo
//! endpoints that record the headers they got.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
pub struct Site {
    /// Path → how many times it was asked for.
    pub hits: Mutex<HashMap<String, usize>>,
    /// Echo path → the headers of its last request.
    pub echoes: Mutex<HashMap<String, HeaderMap>>,
    /// Where the SSRF page points its scripts (a second local server).
    pub forbidden_port: Mutex<u16>,
}

impl Site {
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn echo(&self, path: &str) -> Option<HeaderMap> {
        self.echoes.lock().unwrap().get(path).cloned()
    }
}

const FILLER: &str = "This paragraph is long enough to count as readable article text, with commas, words, and more words to pass every threshold the extractor has.";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{FILLER}</p>{body}<p>{FILLER}</p></article></body></html>"
    )
}

fn html(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], s).into_response()
}

const SPA_SHELL: &str = r#"<!DOCTYPE html><html lang="en"><head><title>Docs app</title></head>
<body><div id="app"></div><noscript>You need to enable JavaScript to run this app.</noscript>
<script src="/static/app.js"></script></body></html>"#;

/// A tiny router: the path picks a page, whose content comes from `/api/page`; links are
/// followed with `history.pushState` (no page load), as React/Vue routers do.
const SPA_JS: &str = r#"
async function show(path) {
  const r = await fetch('/api/page?path=' + encodeURIComponent(path));
  const p = await r.json();
  const app = document.getElementById('app');
  app.innerHTML = '<nav>' + p.links.map(l => '<a href="' + l + '">' + l + '</a>').join(' ') + '</nav>'
    + '<main><h1>' + p.title + '</h1><p>' + p.text + '</p></main>';
  document.title = p.title;
}
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || !a.getAttribute('href').startsWith('/spa/')) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('href'));
  show(location.pathname);
});
window.addEventListener('popstate', () => show(location.pathname));
show(location.pathname);
"#;

const ACCORDION_JS: &str = r#"
document.getElementById('toggle').addEventListener('click', async (e) => {
  const b = e.currentTarget;
  const r = await fetch('/api/details');
  document.getElementById('panel').innerHTML = await r.text();
  document.getElementById('panel').hidden = false;
  b.setAttribute('aria-expanded', 'true');
});
"#;

const BANNER_JS: &str = r#"
window.addEventListener('load', () => {
  const d = document.createElement('div');
  d.style.position = 'fixed'; d.style.bottom = '0'; d.style.left = '0'; d.style.right = '0';
  d.innerHTML = '<p>We use cookies to improve your experience on this site.</p><button>Accept all</button>';
  document.body.appendChild(d);
});
"#;

fn spa_page(path: &str) -> serde_json::Value {
    let (title, text) = match path {
        "/spa/" | "/spa" => (
            "Docs app home",
            "Welcome to the client-rendered docs. SPA-HOME-TEXT is only here after scripts ran.",
        ),
        "/spa/route-a" => (
            "Route A",
            "ALPHA-ROUTE-TEXT: configuring the gizmo, written into the page by a fetch call.",
        ),
        "/spa/route-b" => (
            "Route B",
            "BRAVO-ROUTE-TEXT: calibrating the gizmo, also rendered on the client side.",
        ),
        _ => ("Not found", "No such route."),
    };
    serde_json::json!({
        "title": title,
        "text": format!("{text} {FILLER}"),
        "links": ["/spa/", "/spa/route-a", "/spa/route-b"],
    })
}

pub async fn handler(State(site): State<Arc<Site>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    *site.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let port = host.rsplit(':').next().unwrap_or("80").to_string();
    if path.starts_with("/echo") {
        site.echoes
            .lock()
            .unwrap()
            .insert(path.clone(), req.headers().clone());
        return html(page("Echo", "<p>Headers noted.</p>"));
    }
    match path.as_str() {
        "/" => html(page(
            "Test site",
            r#"<ul><li><a href="/spa/">App</a></li><li><a href="/accordion">Accordion</a></li>
            <li><a href="/banner">Banner</a></li><li><a href="/framed">Framed</a></li>
            <li><a href="/login">Log in</a></li></ul>"#,
        )),
        p if p == "/spa" || p.starts_with("/spa/") => html(SPA_SHELL.to_string()),
        "/static/app.js" => (
            [(header::CONTENT_TYPE, "text/javascript")],
            SPA_JS.to_string(),
        )
            .into_response(),
        "/api/page" => {
            let q = req.uri().query().unwrap_or("");
            let p = q.strip_prefix("path=").unwrap_or("/spa/").replace("%2F", "/");
            axum::Json(spa_page(&p)).into_response()
        }
        "/accordion" => html(page(
            "Accordion",
            &format!(
                r#"<h2>Questions</h2><button id="toggle" aria-expanded="false" aria-controls="panel">How is the gizmo stored?</button>
                <div id="panel" hidden></div><script>{ACCORDION_JS}</script>"#
            ),
        )),
        "/api/details" => format!(
            "<p>HIDDEN-DETAILS: keep the gizmo dry, below thirty degrees.</p><p>{FILLER}</p>"
        )
        .into_response(),
        "/banner" => html(page(
            "Banner",
            &format!("<p>BANNER-PAGE-TEXT about the gizmo.</p><script>{BANNER_JS}</script>"),
        )),
        "/framed" => html(page(
            "Framed",
            r#"<p>Outside the frame.</p><iframe src="/frame-content"></iframe>"#,
        )),
        "/frame-content" => html(
            r#"<html><body><p>FRAME-TEXT: the gizmo manual, shown inside an iframe.</p><a href="/from-frame">More</a></body></html>"#
                .to_string(),
        ),
        "/from-frame" => html(page("From frame", "<p>Reached through the frame.</p>")),
        "/login" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::SET_COOKIE, "session=s3cret; Path=/; HttpOnly"),
            ],
            page("Log in", r#"<p>Logged in.</p><a href="/members">Members</a>"#),
        )
            .into_response(),
        "/members" => {
            let cookie = req
                .headers()
                .get(header::COOKIE)
                .and_then(|c| c.to_str().ok())
                .unwrap_or("");
            if cookie.split("; ").any(|c| c == "session=s3cret") {
                html(page("Members", "<p>MEMBERS-ONLY text for logged-in crawlers.</p>"))
            } else {
                (StatusCode::FORBIDDEN, "log in first").into_response()
            }
        }
        "/ssrf" => {
            let other = *site.forbidden_port.lock().unwrap();
            html(page(
                "Probe",
                &format!(
                    r#"<p>PROBE-TEXT.</p><script>
                    fetch('http://127.0.0.1:{other}/internal').catch(() => {{}});
                    fetch('http://169.254.169.254/latest/meta-data/').catch(() => {{}});
                    new Image().src = 'http://[::1]:{other}/pixel';
                    </script>"#
                ),
            ))
        }
        "/cross-host" => html(page(
            "Cross host",
            &format!(
                r#"<p>Loads things from another host.</p><script>
                fetch('http://localhost:{port}/echo-xhr').catch(() => {{}});
                fetch('/echo-same').catch(() => {{}});
                fetch('/to-other-host').catch(() => {{}});
                </script>"#
            ),
        )),
        "/to-other-host" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("http://localhost:{port}/echo-redirected"))],
        )
            .into_response(),
        "/away" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("http://localhost:{port}/back"))],
        )
            .into_response(),
        "/back" => html(page(
            "Back",
            &format!(
                r#"<p>Reached by a redirect; calls the origin the crawl asked for.</p><script>
                fetch('http://127.0.0.1:{port}/echo-back').catch(() => {{}});
                </script>"#
            ),
        )),
        "/lazy" => html(format!(
            r#"<!DOCTYPE html><html><head><title>Lazy</title></head><body><article><h1>Lazy</h1><p>{FILLER}</p>
            <div style="height: 4000px">Spacer.</div><div id="more"></div><img src="/pixel.png" alt="">
            <script>
            let asked = false;
            window.addEventListener('scroll', async () => {{
              if (asked || window.scrollY < 2500) return;
              asked = true;
              const r = await fetch('/api/lazy');
              document.getElementById('more').innerHTML = await r.text();
            }});
            </script></article></body></html>"#
        )),
        "/api/lazy" => format!("<p>LAZY-TEXT: loaded when scrolled to. {FILLER}</p>").into_response(),
        "/pixel.png" => ([(header::CONTENT_TYPE, "image/png")], vec![0u8; 16]).into_response(),
        "/js-login" => html(page(
            "Script log in",
            r#"<p>Logging in by script.</p><script>document.cookie = 'jsession=ok; path=/';</script><a href="/js-members">Members</a>"#,
        )),
        "/js-members" => {
            let cookie = req
                .headers()
                .get(header::COOKIE)
                .and_then(|c| c.to_str().ok())
                .unwrap_or("");
            if cookie.split("; ").any(|c| c == "jsession=ok") {
                html(page("Script members", "<p>JS-MEMBERS-ONLY text.</p>"))
            } else {
                (StatusCode::FORBIDDEN, "log in first").into_response()
            }
        }
        "/spin" => html(page(
            "Spin",
            "<p>SPIN-TEXT.</p><script>setTimeout(() => { for (;;) {} }, 10);</script>",
        )),
        "/hog" => html(page(
            "Hog",
            "<p>HOG-TEXT.</p><script>const keep = []; for (;;) keep.push(new Array(1 << 20).fill(1.5));</script>",
        )),
        _ => (StatusCode::NOT_FOUND, "no").into_response(),
    }
}

/// Serves the site on 127.0.0.1; returns its port.
pub async fn serve(site: Arc<Site>) -> u16 {
    let app = axum::Router::new().fallback(handler).with_state(site);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    port
}
