//! API keys. A key is `agb_<id>_<secret>`: the id finds the row, the secret is
//! checked against a SHA-256 hash in constant time. Only the hash is stored; the
//! full key is shown once, when it is made.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Millis;
use crate::ids::alphanumeric;

const PREFIX: &str = "agb_";
const ID_LEN: usize = 12;
/// 43 alphanumeric characters ≈ 256 bits of entropy.
const SECRET_LEN: usize = 43;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// Shown in listings so operators can tell keys apart: `agb_<id>`.
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// A freshly generated key: the plaintext to show once and the row to store.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub plaintext: String,
    pub id: String,
    pub prefix: String,
    pub secret_hash: String,
}

pub fn generate() -> GeneratedKey {
    let id = alphanumeric(ID_LEN);
    let secret = alphanumeric(SECRET_LEN);
    GeneratedKey {
        plaintext: format!("{PREFIX}{id}_{secret}"),
        prefix: format!("{PREFIX}{id}"),
        secret_hash: hash_secret(&secret),
        id,
    }
}

pub fn hash_secret(secret: &str) -> String {
    sha256_hex(secret)
}

/// Lowercase hex SHA-256 of `text`.
/// Whether two secrets (or their hashes) are equal, compared in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a presented key into (id, secret); `None` when it is not shaped like ours.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_LEN && !secret.is_empty()).then_some((id, secret))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    Valid,
    Invalid,
    Revoked,
    Expired,
}

impl ApiKey {
    /// Checks a presented secret against this row at time `now`. The hash comparison
    /// runs in constant time whatever the outcome.
    pub fn check(&self, secret: &str, now: Millis) -> KeyCheck {
        let presented = hash_secret(secret);
        if !same_secret(&presented, &self.secret_hash) {
            KeyCheck::Invalid
        } else if self.revoked_at.is_some() {
            KeyCheck::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyCheck::Expired
        } else {
            KeyCheck::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(generated: &GeneratedKey) -> ApiKey {
        ApiKey {
            id: generated.id.clone(),
            workspace_id: "ws".into(),
            name: "k".into(),
            prefix: generated.prefix.clone(),
            secret_hash: generated.secret_hash.clone(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_generated_key_parses_and_checks_valid() {
        let g = generate();
        let (id, secret) = parse(&g.plaintext).expect("parses");
        assert_eq!(id, g.id);
        assert!(!g.plaintext.contains(&g.secret_hash));
        assert_eq!(row(&g).check(secret, 0), KeyCheck::Valid);
    }

    #[test]
    fn wrong_secret_revoked_and_expired_keys_are_told_apart() {
        let g = generate();
        let mut k = row(&g);
        let (_, secret) = parse(&g.plaintext).unwrap();
        assert_eq!(k.check("nope", 0), KeyCheck::Invalid);
        k.expires_at = Some(100);
        assert_eq!(k.check(secret, 99), KeyCheck::Valid);
        assert_eq!(k.check(secret, 100), KeyCheck::Expired);
        k.revoked_at = Some(1);
        assert_eq!(k.check(secret, 0), KeyCheck::Revoked);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        for bad in ["", "agb_", "agb_short_x", "sk-123", "agb_abcdefghijkl_"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
