//! Dashboard sessions: the operator password and sign-in sessions with their CSRF
//! tokens (members sign in through `members.rs`, with the same hashing slots and
//! session rows). Pages themselves live in the server crate.

use std::sync::Arc;

use agentbase_core::keys::sha256_hex;
use agentbase_core::{Clock, Error, Millis, RateDecision, Result, ids, password};
use agentbase_limiter::{Limiter, LimiterError, Window};
use agentbase_store::{DashboardSession, Store};

/// How long a sign-in lasts.
pub const SESSION_TTL_MS: Millis = 12 * 60 * 60 * 1000;
/// Sign-in attempts allowed per client address per minute.
pub const SIGN_IN_ATTEMPTS_PER_MINUTE: u32 = 10;
/// Random tokens: 43 alphanumeric characters ≈ 256 bits.
const TOKEN_LEN: usize = 43;

/// A fresh sign-in: the cookie token (stored only as its hash) and the CSRF token
/// every form and script request of the session must carry.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// Password hashes computed at once. Each costs ~19 MiB and tens of milliseconds
/// of a core: unbounded, a burst of sign-ins (even refused ones, from many
/// addresses) would take the blocking pool and memory from everything else.
pub const HASHES_AT_ONCE: usize = 2;
/// A sign-in waits this long for a hashing slot before it is refused.
const HASH_QUEUE_MS: u64 = 10_000;

/// The key sign-in attempts are counted under: the address, or its /64 for IPv6.
pub fn throttle_group(client_ip: &str) -> String {
    match client_ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().expect("checked").to_string(),
        _ => client_ip.to_owned(),
    }
}

/// The operator's and members' sign-ins.
pub struct Sessions {
    store: Store,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    /// Password hashing slots (see [`HASHES_AT_ONCE`]).
    hash_slots: tokio::sync::Semaphore,
}

impl Sessions {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, limiter: Arc<Limiter>) -> Self {
        Sessions {
            store,
            clock,
            limiter,
            hash_slots: tokio::sync::Semaphore::new(HASHES_AT_ONCE),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Runs `f` (a password hash or check) off the runtime, at most
    /// [`HASHES_AT_ONCE`] at a time.
    pub(crate) async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _slot = tokio::time::timeout(
            std::time::Duration::from_millis(HASH_QUEUE_MS),
            self.hash_slots.acquire(),
        )
        .await
        .map_err(|_| Error::Unavailable("too many sign-ins at once; try again shortly".into()))?
        .map_err(|_| Error::Unavailable("password hashing is closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::Storage(format!("password hashing stopped: {e}")))
    }

    /// Replaces the operator password (signing everyone out).
    pub async fn set_admin_password(&self, chosen: &str) -> Result<()> {
        password::check_strength(chosen).map_err(|m| Error::invalid("password", m))?;
        let chosen = chosen.to_owned();
        let hash = self.hashing(move || password::hash(&chosen)).await?;
        self.store.set_admin_password_hash(&hash).await
    }

    /// On a record without an operator password, sets `chosen` or a generated one
    /// and returns the plaintext that was set; `None` when one was already set.
    pub async fn init_admin_password(&self, chosen: Option<&str>) -> Result<Option<String>> {
        if self.store.admin_password_hash().await?.is_some() {
            return Ok(None);
        }
        let plaintext = match chosen {
            Some(p) => {
                password::check_strength(p).map_err(|m| Error::invalid("password", m))?;
                p.to_owned()
            }
            None => password::generate(),
        };
        let to_hash = plaintext.clone();
        let hash = self.hashing(move || password::hash(&to_hash)).await?;
        Ok(self
            .store
            .init_admin_password_hash(&hash)
            .await?
            .then_some(plaintext))
    }

    /// Counts a sign-in attempt from `client_ip` against the per-minute allowance.
    /// IPv6 clients are counted per /64: one host usually holds a whole /64, so
    /// counting single addresses would let it try 2^64 times as often.
    pub async fn sign_in_allowed(&self, client_ip: &str) -> Result<RateDecision, LimiterError> {
        let window = Window {
            limit: SIGN_IN_ATTEMPTS_PER_MINUTE,
            window_ms: 60_000,
        };
        self.limiter
            .check(
                &format!("sign-in|{}", throttle_group(client_ip)),
                window,
                self.now(),
            )
            .await
    }

    /// Checks the password (off the async runtime: the hash is slow on purpose) and
    /// opens a session. `None` for a wrong password or when none is set.
    pub async fn sign_in(&self, attempt: &str) -> Result<Option<SignedIn>> {
        let Some(stored) = self.store.admin_password_hash().await? else {
            return Ok(None);
        };
        let attempt = attempt.to_owned();
        let ok = self
            .hashing(move || password::verify(&attempt, &stored))
            .await?;
        if !ok {
            return Ok(None);
        }
        let (signed_in, row) = self.fresh_session(None);
        self.store.insert_session(&row).await?;
        Ok(Some(signed_in))
    }

    /// New session tokens and the row that records them (by the token's hash),
    /// for the administrator (`member_id` `None`) or a member.
    pub(crate) fn fresh_session(&self, member_id: Option<String>) -> (SignedIn, DashboardSession) {
        let now = self.now();
        let signed_in = SignedIn {
            token: ids::alphanumeric(TOKEN_LEN),
            csrf_token: ids::alphanumeric(TOKEN_LEN),
            expires_at: now + SESSION_TTL_MS,
        };
        let row = DashboardSession {
            id: sha256_hex(&signed_in.token),
            csrf_token: signed_in.csrf_token.clone(),
            created_at: now,
            expires_at: signed_in.expires_at,
            member_id,
        };
        (signed_in, row)
    }

    /// The live session a cookie token names.
    pub async fn dashboard_session(&self, token: &str) -> Result<Option<DashboardSession>> {
        if token.is_empty() {
            return Ok(None);
        }
        self.store.session(&sha256_hex(token), self.now()).await
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        self.store.delete_session(&sha256_hex(token)).await
    }
}

#[cfg(test)]
mod tests {
    use super::throttle_group;

    #[test]
    fn ipv6_clients_are_throttled_per_64() {
        assert_eq!(throttle_group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            throttle_group("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(throttle_group("2001:db8:1:3::1"), "2001:db8:1:2::/64");
        assert_eq!(throttle_group("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(throttle_group("10.0.0.7"), "10.0.0.7");
        assert_eq!(throttle_group("unknown"), "unknown");
    }
}
