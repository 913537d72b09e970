//! A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe`: the browser
//! reads commands on its fd 3 and writes replies and events on its fd 4, one JSON
//! message per NUL-terminated frame. Only what rendering needs: commands with replies,
//! and events routed by session id. No debugging port is opened, so nothing else on the
//! machine (or a page the browser loads) can drive the browser.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Longest message accepted from the browser (a rendered page's HTML travels in one).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CdpError {
    /// The browser answered the command with an error.
    #[error("{method}: {message}")]
    Command { method: String, message: String },
    /// The pipe closed: the browser exited or crashed.
    #[error("the browser is gone")]
    Closed,
}

/// One event: its method, parameters and the session it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub session: Option<String>,
    pub method: String,
    pub params: Value,
}

type Pending = HashMap<u64, (String, oneshot::Sender<Result<Value, CdpError>>)>;

pub(crate) struct Connection {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    next_id: AtomicU64,
    pending: Mutex<Pending>,
    /// Session id ("" for the browser itself) → where its events go.
    routes: Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
    closed: AtomicBool,
}

impl Connection {
    /// Starts reading `from` in a task; commands are written to `to`.
    pub fn start(
        to: impl AsyncWrite + Send + Unpin + 'static,
        from: impl AsyncRead + Send + Unpin + 'static,
    ) -> Arc<Connection> {
        let conn = Arc::new(Connection {
            writer: tokio::sync::Mutex::new(Box::new(to)),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let reader = Arc::downgrade(&conn);
        tokio::spawn(async move {
            let mut from = BufReader::with_capacity(1 << 16, from);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = (&mut from)
                    .take(MAX_MESSAGE_BYTES as u64)
                    .read_until(0, &mut buf)
                    .await
                    .unwrap_or_default();
                let Some(conn) = reader.upgrade() else { return };
                if n == 0 || buf.last() != Some(&0) {
                    conn.close();
                    return;
                }
                buf.pop();
                conn.dispatch(&buf);
            }
        });
        conn
    }

    fn dispatch(&self, frame: &[u8]) {
        let Ok(mut msg) = serde_json::from_slice::<Value>(frame) else {
            return;
        };
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            let waiter = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if let Some((method, tx)) = waiter {
                let result = match msg.get_mut("error") {
                    Some(e) => Err(CdpError::Command {
                        method,
                        message: e
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("error")
                            .to_string(),
                    }),
                    None => Ok(msg
                        .get_mut("result")
                        .map(Value::take)
                        .unwrap_or(Value::Null)),
                };
                let _ = tx.send(result);
            }
            return;
        }
        let Some(method) = msg.get("method").and_then(Value::as_str) else {
            return;
        };
        let session = msg
            .get("sessionId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let event = Event {
            method: method.to_string(),
            params: msg
                .get_mut("params")
                .map(Value::take)
                .unwrap_or(Value::Null),
            session: session.clone(),
        };
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = routes.get(session.as_deref().unwrap_or("")) {
            let _ = tx.send(event);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, (_, tx)) in pending {
            let _ = tx.send(Err(CdpError::Closed));
        }
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sends `method` (to `session`, or to the browser) and waits for its reply.
    pub async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        if self.is_closed() {
            return Err(CdpError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s.to_string());
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (method.to_string(), tx));
        let mut frame = serde_json::to_vec(&msg).unwrap_or_default();
        frame.push(0);
        {
            let mut w = self.writer.lock().await;
            if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
                drop(w);
                self.close();
                return Err(CdpError::Closed);
            }
        }
        // The reader may have closed between the check and the insert.
        if self.is_closed() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            return Err(CdpError::Closed);
        }
        rx.await.unwrap_or(Err(CdpError::Closed))
    }

    /// Sends events of `session` ("" for browser-level ones) to `tx`.
    pub fn route(&self, session: &str, tx: mpsc::UnboundedSender<Event>) {
        if !self.is_closed() {
            self.routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session.to_string(), tx);
        }
    }

    pub fn unroute(&self, session: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_find_their_callers_and_events_their_sessions() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (read_ours, write_ours) = tokio::io::split(ours);
        let conn = Connection::start(write_ours, read_ours);
        let (tx, mut events) = mpsc::unbounded_channel();
        conn.route("S1", tx);
        let (mut their_read, mut their_write) = tokio::io::split(theirs);
        let browser = tokio::spawn(async move {
            let mut r = BufReader::new(&mut their_read);
            let mut buf = Vec::new();
            r.read_until(0, &mut buf).await.unwrap();
            buf.pop();
            let cmd: Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(cmd["method"], "Page.navigate");
            assert_eq!(cmd["sessionId"], "S1");
            let id = cmd["id"].as_u64().unwrap();
            let mut out = Vec::new();
            out.extend_from_slice(
                br#"{"method":"Page.loadEventFired","params":{"t":1},"sessionId":"S1"}"#,
            );
            out.push(0);
            out.extend_from_slice(br#"{"method":"Other","params":{},"sessionId":"S2"}"#);
            out.push(0);
            out.extend_from_slice(
                format!(r#"{{"id":{id},"result":{{"frameId":"F"}}}}"#).as_bytes(),
            );
            out.push(0);
            their_write.write_all(&out).await.unwrap();
            buf.clear();
            r.read_until(0, &mut buf).await.unwrap();
            buf.pop();
            let cmd: Value = serde_json::from_slice(&buf).unwrap();
            let id = cmd["id"].as_u64().unwrap();
            their_write
                .write_all(
                    format!("{{\"id\":{id},\"error\":{{\"message\":\"nope\"}}}}\0").as_bytes(),
                )
                .await
                .unwrap();
            // Then the browser goes away.
        });
        let r = conn
            .call(Some("S1"), "Page.navigate", json!({"url": "about:blank"}))
            .await
            .unwrap();
        assert_eq!(r["frameId"], "F");
        let e = events.recv().await.unwrap();
        assert_eq!(e.method, "Page.loadEventFired");
        let err = conn.call(None, "Bad.method", json!({})).await.unwrap_err();
        assert_eq!(
            err,
            CdpError::Command {
                method: "Bad.method".into(),
                message: "nope".into()
            }
        );
        browser.await.unwrap();
        let err = conn.call(None, "After.close", json!({})).await.unwrap_err();
        assert_eq!(err, CdpError::Closed);
        assert!(conn.is_closed());
    }
}
