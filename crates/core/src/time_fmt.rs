//! ISO-8601 rendering for the timestamps the contract gives as strings (agents,
//! sources); conversations use Unix seconds and need no helper.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Millis;

/// `2024-01-15T10:30:00.000Z`, the form Chatbase's examples use.
pub fn iso8601(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::from("1970-01-01T00:00:00.000Z");
    };
    let t = t
        .replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000)
        .unwrap_or(t);
    let s = t.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 drops trailing zero fractions; pin exactly three digits.
    let (head, _) = s.split_once('.').unwrap_or((s.trim_end_matches('Z'), ""));
    format!("{head}.{:03}Z", ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_milliseconds_with_three_digits() {
        assert_eq!(iso8601(1_705_314_600_000), "2024-01-15T10:30:00.000Z");
        assert_eq!(iso8601(1_705_314_600_042), "2024-01-15T10:30:00.042Z");
    }
}
