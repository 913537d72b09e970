//! Identifier generation. Agent ids look like Chatbase's (21 url-safe characters);
//! everything else is opaque to clients too.

use rand::Rng;
use rand::distributions::Alphanumeric;

const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A nanoid-style id: `len` characters from the url-safe alphabet.
pub fn nanoid(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| URL_SAFE[rng.gen_range(0..URL_SAFE.len())] as char)
        .collect()
}

/// Alphanumeric only, for ids embedded in API keys (no separators inside).
pub fn alphanumeric(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// 21 url-safe characters, the first alphanumeric: an id starting with `-` would be
/// read as a flag by command-line tools (`agentbase agents show -Lx…`).
pub fn agent_id() -> String {
    format!("{}{}", alphanumeric(1), nanoid(20))
}

pub fn workspace_id() -> String {
    format!("ws_{}", alphanumeric(16))
}

/// Conversation ids are UUID v4 text, as in Chatbase's examples.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn message_id() -> String {
    format!("msg_{}", alphanumeric(20))
}

pub fn tool_call_id() -> String {
    format!("call_{}", alphanumeric(20))
}

#[cfg(test)]
mod agent_id_tests {
    #[test]
    fn agent_ids_never_start_like_a_flag() {
        for _ in 0..2_000 {
            let id = super::agent_id();
            assert_eq!(id.len(), 21);
            assert!(id.chars().next().unwrap().is_ascii_alphanumeric(), "{id}");
        }
    }
}
