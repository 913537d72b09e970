//! The accept loop: HTTP/1.1 over hyper with the limits a server on the open
//! internet needs. At most `max_connections` connections are served at once (past
//! that, new ones wait in the kernel's listen backlog instead of costing memory); a
//! request's head must arrive within `header_timeout`, which hyper also applies
//! between requests, so a keep-alive connection that sends nothing is closed then
//! too; request heads are capped in size. Per-request limits (body read, handler
//! deadline, JSON depth) are layers in [`crate::router`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Per-connection limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Time for a request's head, counted from when the connection is opened or
    /// goes idle after a response.
    pub header_timeout: Duration,
    /// Bytes hyper buffers for one request head (and body chunk) before refusing it.
    pub max_buffer_bytes: usize,
    /// In-flight requests get this long after shutdown starts.
    pub grace: Duration,
}

impl ConnectionLimits {
    pub fn from_settings(s: &agentbase_service::settings::ServerSettings) -> Self {
        ConnectionLimits {
            max_connections: s.max_connections,
            header_timeout: Duration::from_secs(s.header_timeout_secs),
            max_buffer_bytes: 256 * 1024,
            grace: Duration::from_secs(s.shutdown_grace_secs),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_settings(&agentbase_service::Settings::default().server)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish for up to `limits.grace`.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_buffer_bytes.max(8192))
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streams write small frames; without TCP_NODELAY, Nagle's algorithm holds
        // each one back until the previous is acknowledged.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        // No route upgrades the connection (no WebSockets), so none is offered.
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            // Timeouts and resets end connections all the time; nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.grace) => {
            tracing::warn!(grace_secs = limits.grace.as_secs(), "shutdown deadline passed; dropping remaining connections");
        }
    }
    Ok(())
}
