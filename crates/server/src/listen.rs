//! The accept loop: HTTP/1.1 over hyper with the limits a server on the open
//! internet needs. At most `max_connections` connections are served at once (past
//! that, new ones wait in the kernel's listen backlog instead of costing memory); a
//! request's head must arrive within `header_timeout`, which hyper also applies
//! between requests, so a keep-alive connection that sends nothing is closed then
//! too; request heads are capped in size. One client address holds at most
//! `max_per_client` of those connections: past that, its new ones are closed as they
//! arrive, so one client cannot take every slot and lock everyone out. Per-request
//! limits (body read, handler deadline, JSON depth) are layers in [`crate::router`].

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use agentbase_core::concurrency::{Entered, PerKey};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Per-connection limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Connections one client address may have open (0: no bound), except the
    /// addresses in `exempt` (the trusted proxies, which carry many clients).
    pub max_per_client: usize,
    pub exempt: Vec<IpAddr>,
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
            max_per_client: s.max_connections_per_client,
            exempt: s.trusted_proxies.clone(),
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
    let clients = PerClient::new(limits.max_per_client, limits.exempt.clone());
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
        let Some(client) = clients.enter(peer.ip()) else {
            // Closed at once: the slot is free for another client's connection.
            drop(tcp);
            continue;
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
            drop((client, permit));
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

/// Connections open per client address (`None`: not bounded).
struct PerClient {
    counted: Option<Arc<PerKey<IpAddr>>>,
    exempt: Vec<IpAddr>,
}

/// One connection of a client, counted until it is dropped.
type ClientConnection = Option<Entered<IpAddr>>;

impl PerClient {
    fn new(max: usize, exempt: Vec<IpAddr>) -> Self {
        PerClient {
            counted: (max > 0).then(|| PerKey::new(max)),
            exempt,
        }
    }

    /// Counts a new connection from `ip`; `None` when the client already has its
    /// share open.
    fn enter(&self, ip: IpAddr) -> Option<ClientConnection> {
        let ip = ip.to_canonical();
        match &self.counted {
            Some(table) if !self.exempt.contains(&ip) => table.try_enter(client_key(ip)).map(Some),
            _ => Some(None),
        }
    }
}

/// A client's address as counted: an IPv4 address, or an IPv6 address's /64 (one
/// host usually has a whole /64 to pick addresses from).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize, exempt: &[&str]) -> PerClient {
        PerClient::new(max, exempt.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back_as_connections_close() {
        let clients = table(2, &["10.0.0.9"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = clients.enter(ip("10.0.0.1")).unwrap();
        let b = clients.enter(ip("10.0.0.1")).unwrap();
        assert!(clients.enter(ip("10.0.0.1")).is_none(), "a third one");
        // The same host under its IPv6-mapped address is the same client.
        assert!(clients.enter(ip("::ffff:10.0.0.1")).is_none());
        assert!(clients.enter(ip("10.0.0.2")).is_some(), "another client");
        drop(a);
        let c = clients.enter(ip("10.0.0.1")).unwrap();
        // A /64 is one client; the next /64 another.
        let v6: Vec<_> = ["2001:db8::1", "2001:db8::ffff:2"]
            .map(|s| clients.enter(ip(s)).unwrap())
            .into();
        assert!(clients.enter(ip("2001:db8::3")).is_none());
        assert!(clients.enter(ip("2001:db8:0:1::1")).is_some());
        // A trusted proxy carries many clients: not bounded.
        let proxied: Vec<_> = (0..10)
            .map(|_| clients.enter(ip("10.0.0.9")).unwrap())
            .collect();
        drop((b, c, v6, proxied));
        assert_eq!(
            clients.counted.as_ref().map(|t| t.keys()),
            Some(0),
            "nothing counted once every connection is closed"
        );
        assert!(table(0, &[]).enter(ip("10.0.0.1")).is_some());
    }
}
