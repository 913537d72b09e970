//! Text logs that tenant text cannot forge: every field value and message is
//! written with control characters escaped, so a newline or an ANSI escape in an
//! agent name, a URL or an upstream error stays on its own log line, inert. (JSON
//! logs are escaped by their encoder.)

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The text format's field formatter: `name=value` pairs separated by spaces, the
/// message bare, every control character escaped.
pub fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
            let text = escape_controls(&format!("{value:?}"));
            if field.name() == "message" {
                w.write_str(&text)
            } else {
                write!(w, "{}={}", field.name(), text)
            }
        },
    )
    .delimited(" ")
}

/// `s` with every control character (newlines, escapes, DEL…) written as a Rust
/// escape (`\n`, `\u{1b}`).
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tenant_text_cannot_start_a_log_line_or_colour_the_terminal() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .fmt_fields(escaped_fields())
            .finish();
        let forged = "x\nERROR agentbase: forged line\u{1b}[31m";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(url = %forged, name = forged, "saw {}", forged);
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(
            out.contains("url=x\\nERROR agentbase: forged line\\u{1b}[31m"),
            "{out}"
        );
    }
}
