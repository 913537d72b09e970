//! Serves a directory over HTTP from memory (files are read once, then cached), so the
//! server is not what a crawl benchmark measures. `static-server ROOT ADDR [SPA_DIR]`:
//! with SPA_DIR, `/spa/...` is served from it, and paths there without a file get its
//! `index.html` (a single-page app's history-API routes, as SPA hosts serve them).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Files {
    root: PathBuf,
    spa: Option<PathBuf>,
    cache: RwLock<HashMap<String, Option<Bytes>>>,
}

fn content_type(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") | Some("md") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn serve(State(files): State<Arc<Files>>, req: Request) -> Response {
    let mut path = req.uri().path().trim_start_matches('/').to_string();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let rel = Path::new(&path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let cached = files.cache.read().ok().and_then(|c| c.get(&path).cloned());
    let body = match cached {
        Some(b) => b,
        None => {
            let file = match (&files.spa, path.strip_prefix("spa/")) {
                (Some(spa), Some(rest)) => {
                    let f = spa.join(rest);
                    if f.is_file() {
                        f
                    } else {
                        spa.join("index.html")
                    }
                }
                _ => files.root.join(rel),
            };
            let b = tokio::fs::read(file).await.ok().map(Bytes::from);
            if let Ok(mut c) = files.cache.write() {
                c.insert(path.clone(), b.clone());
            }
            b
        }
    };
    let path = if files.spa.is_some()
        && path.starts_with("spa/")
        && Path::new(&path).extension().is_none()
    {
        "index.html".to_string()
    } else {
        path
    };
    match body {
        Some(b) => ([(header::CONTENT_TYPE, content_type(&path))], b).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: static-server ROOT ADDR [SPA_DIR]");
        std::process::exit(2);
    }
    let files = Arc::new(Files {
        root: PathBuf::from(&args[1]),
        spa: args.get(3).map(PathBuf::from),
        cache: RwLock::new(HashMap::new()),
    });
    let app = axum::Router::new().fallback(serve).with_state(files);
    let listener = match tokio::net::TcpListener::bind(&args[2]).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot bind {}: {e}", args[2]);
            std::process::exit(1);
        }
    };
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}
