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

/// The first millisecond of the UTC calendar month containing `ms`: credits reset
/// there.
pub fn month_start(ms: Millis) -> Millis {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return 0;
    };
    let Ok(first) = time::Date::from_calendar_date(t.year(), t.month(), 1) else {
        return 0;
    };
    first.midnight().assume_utc().unix_timestamp() * 1000
}

/// Parses `YYYY-MM-DD` (start or end of that UTC day) or an RFC 3339 date-time.
pub fn parse_date_bound(text: &str, end_of_day: bool) -> Option<Millis> {
    let text = text.trim();
    if let Ok(d) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        let start = d.midnight().assume_utc().unix_timestamp() * 1000;
        return Some(if end_of_day {
            start + 86_400_000 - 1
        } else {
            start
        });
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_at_utc_midnight_on_the_first() {
        // 2024-01-15T10:30:00Z → 2024-01-01T00:00:00Z
        assert_eq!(month_start(1_705_314_600_000), 1_704_067_200_000);
    }

    #[test]
    fn date_bounds_accept_dates_and_datetimes() {
        assert_eq!(
            parse_date_bound("2024-01-01", false),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_date_bound("2024-01-01", true),
            Some(1_704_067_200_000 + 86_399_999)
        );
        assert_eq!(
            parse_date_bound("2024-01-15T10:30:00.000Z", false),
            Some(1_705_314_600_000)
        );
        assert_eq!(
            parse_date_bound("2024-01-15T11:30:00+01:00", true),
            Some(1_705_314_600_000)
        );
        assert_eq!(parse_date_bound("yesterday", false), None);
        assert_eq!(parse_date_bound("2024-13-01", false), None);
    }

    #[test]
    fn renders_milliseconds_with_three_digits() {
        assert_eq!(iso8601(1_705_314_600_000), "2024-01-15T10:30:00.000Z");
        assert_eq!(iso8601(1_705_314_600_042), "2024-01-15T10:30:00.042Z");
    }
}
