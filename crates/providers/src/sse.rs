//! An incremental Server-Sent Events decoder: bytes arrive in arbitrary chunks (a
//! line, a UTF-8 character or a `\r\n` pair may be split across two), events come out
//! whole. Only the fields providers use are kept (`event`, `data`); an event that the
//! body ends in the middle of is never dispatched, which is what lets the providers
//! tell a finished stream from a cut one.

/// A longer line than this is a broken or hostile upstream, not a model answer.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, empty when the server sent none.
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`, so a leading `\n` belongs to that line end.
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds one chunk and appends every event it completes to `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        for &byte in chunk {
            if std::mem::take(&mut self.skip_lf) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.skip_lf = byte == b'\r';
                    self.end_line(out);
                }
                _ => {
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(format!(
                            "event stream line longer than {MAX_LINE_BYTES} bytes"
                        ));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        // A line is complete here, so no UTF-8 sequence is split; lossy decoding only
        // touches bytes that were never text.
        let line = String::from_utf8_lossy(&self.line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            // Lines starting with ':' are comments (keep-alives such as OpenRouter's).
            "" => {}
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            decoder.push(chunk, &mut out).expect("valid stream");
        }
        out
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_come_out_whole_however_the_bytes_are_split() {
        let input = "event: message_start\ndata: {\"a\":\"é\"}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        let expected = vec![event("message_start", "{\"a\":\"é\"}"), event("", "[DONE]")];
        for piece in 1..input.len() {
            assert_eq!(
                decode_in_pieces(input.as_bytes(), piece),
                expected,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn crlf_and_cr_line_endings_are_accepted_even_when_split() {
        let input = b"data: one\r\n\r\ndata: two\r\rdata: x\r\ndata: y\r\n\r\n";
        let expected = vec![event("", "one"), event("", "two"), event("", "x\ny")];
        for piece in 1..input.len() {
            assert_eq!(
                decode_in_pieces(input, piece),
                expected,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn an_event_cut_off_before_its_blank_line_is_not_dispatched() {
        assert_eq!(decode_in_pieces(b"data: [DONE]\n", 4), vec![]);
    }

    #[test]
    fn a_field_without_a_space_or_value_is_read_as_the_spec_says() {
        let out = decode_in_pieces(b"event:ping\ndata:{}\n\ndata\n\n", 64);
        assert_eq!(out, vec![event("ping", "{}"), event("", "")]);
    }

    #[test]
    fn an_event_type_does_not_leak_into_the_next_event() {
        let out = decode_in_pieces(b"event: ping\n\ndata: x\n\n", 64);
        assert_eq!(out, vec![event("", "x")]);
    }
}
