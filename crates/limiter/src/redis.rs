//! The Redis backend: the same sliding log kept in a sorted set per key, checked
//! and updated atomically by one Lua script. Speaks RESP2 directly over a small
//! pool of TCP connections; the script is the only command it needs.

use std::sync::Mutex;
use std::time::Duration;

use agentbase_core::{Millis, RateDecision};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{LimiterError, Window, decision};

const SCRIPT: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, window)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local first = -1
if oldest[2] then first = tonumber(oldest[2]) end
return {allowed, count, first}
";

const IO_TIMEOUT: Duration = Duration::from_secs(2);
const POOL_MAX: usize = 16;

type Conn = BufReader<TcpStream>;

pub struct RedisLimiter {
    addr: String,
    db: u32,
    prefix: String,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Debug)]
enum Reply {
    Int(i64),
    Bulk,
    Array(Vec<Reply>),
    Status,
}

fn unavailable(e: impl std::fmt::Display) -> LimiterError {
    LimiterError::Unavailable(e.to_string())
}

impl RedisLimiter {
    /// `url` is `redis://host:port[/db]`. The connection is tried once here so a
    /// wrong address fails at start-up, not on the first request.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LimiterError> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| unavailable(format!("`{url}` is not a redis:// URL")))?;
        let (addr, db) = match rest.split_once('/') {
            Some((a, d)) if !d.is_empty() => {
                (a, d.parse().map_err(|_| unavailable("bad db number"))?)
            }
            Some((a, _)) => (a, 0),
            None => (rest, 0),
        };
        let limiter = Self {
            addr: addr.to_owned(),
            db,
            prefix: prefix.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let conn = limiter.open().await?;
        limiter.release(conn);
        Ok(limiter)
    }

    async fn open(&self) -> Result<Conn, LimiterError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| unavailable("connect timed out"))?
            .map_err(unavailable)?;
        stream.set_nodelay(true).map_err(unavailable)?;
        let mut conn = BufReader::new(stream);
        if self.db != 0 {
            let db = self.db.to_string();
            round_trip(&mut conn, &[b"SELECT", db.as_bytes()]).await?;
        }
        Ok(conn)
    }

    fn release(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_MAX {
            idle.push(conn);
        }
    }

    pub async fn check(
        &self,
        key: &str,
        window: Window,
        now: Millis,
    ) -> Result<RateDecision, LimiterError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.open().await?,
        };
        let full_key = format!("{}{}", self.prefix, key);
        let member = format!("{now}-{:016x}", rand::random::<u64>());
        let (now_s, window_s, limit_s) = (
            now.to_string(),
            window.window_ms.to_string(),
            window.limit.to_string(),
        );
        let args: [&[u8]; 8] = [
            b"EVAL",
            SCRIPT.as_bytes(),
            b"1",
            full_key.as_bytes(),
            now_s.as_bytes(),
            window_s.as_bytes(),
            limit_s.as_bytes(),
            member.as_bytes(),
        ];
        // A connection that failed mid-reply is dropped rather than reused.
        let reply = round_trip(&mut conn, &args).await?;
        self.release(conn);
        let Reply::Array(items) = reply else {
            return Err(unavailable("unexpected reply to the rate-limit script"));
        };
        let int = |i: usize| match items.get(i) {
            Some(Reply::Int(v)) => Ok(*v),
            _ => Err(unavailable("unexpected reply to the rate-limit script")),
        };
        let (allowed, count, first) = (int(0)? == 1, int(1)?, int(2)?);
        let oldest = (first >= 0).then_some(first);
        Ok(decision(allowed, count.max(0) as u32, oldest, window, now))
    }
}

async fn round_trip(conn: &mut Conn, args: &[&[u8]]) -> Result<Reply, LimiterError> {
    let mut buf = Vec::with_capacity(512);
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
    tokio::time::timeout(IO_TIMEOUT, async {
        conn.get_mut().write_all(&buf).await.map_err(unavailable)?;
        read_reply(conn).await
    })
    .await
    .map_err(|_| unavailable("redis timed out"))?
}

async fn read_line(conn: &mut Conn) -> Result<String, LimiterError> {
    let mut line = String::new();
    let n = conn.read_line(&mut line).await.map_err(unavailable)?;
    if n == 0 {
        return Err(unavailable("redis closed the connection"));
    }
    Ok(line.trim_end_matches("\r\n").to_owned())
}

fn read_reply(
    conn: &mut Conn,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, LimiterError>> + Send + '_>> {
    Box::pin(async move {
        let line = read_line(conn).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| unavailable(format!("bad RESP line {line:?}")))
        };
        match kind {
            "+" => Ok(Reply::Status),
            "-" => Err(unavailable(format!("redis error: {rest}"))),
            ":" => Ok(Reply::Int(number()?)),
            "$" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Bulk);
                }
                let mut data = vec![0; len as usize + 2];
                conn.read_exact(&mut data).await.map_err(unavailable)?;
                Ok(Reply::Bulk)
            }
            "*" => {
                let len = number()?;
                let mut items = Vec::with_capacity(len.max(0) as usize);
                for _ in 0..len.max(0) {
                    items.push(read_reply(conn).await?);
                }
                Ok(Reply::Array(items))
            }
            _ => Err(unavailable(format!("bad RESP line {line:?}"))),
        }
    })
}
