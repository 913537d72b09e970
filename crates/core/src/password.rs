//! The dashboard's operator password: Argon2id (a deliberately slow, memory-hard
//! hash) in PHC string form, so the parameters travel with the hash and can be
//! raised later without breaking stored passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::ids::alphanumeric;

/// Shorter passwords are refused when set by hand.
pub const MIN_LEN: usize = 12;
/// A generated password: 24 alphanumeric characters ≈ 143 bits.
const GENERATED_LEN: usize = 24;

/// OWASP's Argon2id recommendation: 19 MiB, two passes, one lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh random password for an operator who did not choose one.
pub fn generate() -> String {
    alphanumeric(GENERATED_LEN)
}

/// Whether a chosen password is acceptable; the message says why not.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$m=…`) for `password` with a random salt.
/// Takes tens of milliseconds by design: call it off the async runtime.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks `password` against a stored PHC string, in constant time. A malformed
/// stored hash verifies nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("", &stored));
        // Salted: the same password hashes differently each time.
        assert_ne!(stored, hash("correct horse battery"));
    }

    #[test]
    fn malformed_stored_hashes_verify_nothing() {
        assert!(!verify("x", ""));
        assert!(!verify("x", "not-a-phc-string"));
        assert!(!verify("x", "$argon2id$v=19$m=19456,t=2,p=1$bad"));
    }

    #[test]
    fn short_passwords_are_refused_and_generated_ones_are_strong() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("twelve chars").is_ok());
        let g = generate();
        assert_eq!(g.len(), GENERATED_LEN);
        assert!(check_strength(&g).is_ok());
        assert_ne!(g, generate());
    }
}
