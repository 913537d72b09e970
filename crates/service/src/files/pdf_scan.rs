//! A structural check of a PDF before `lopdf` parses it. lopdf's parser recurses into
//! nested arrays and dictionaries (100,000 `[` overflow any thread's stack, and a
//! stack overflow cannot be caught), and it inflates every compressed stream whole.
//! This scan walks the file once without recursion: it refuses nesting deeper than
//! [`MAX_NESTING`] (in the file and in compressed object streams) and compressed
//! streams that inflate past [`MAX_INFLATED_BYTES`] in all.
//!
//! It is a first line, not the only one: uploads and crawled documents are parsed in
//! a worker process with memory, CPU and time limits (`crate::extractor`), so what
//! this scan misses costs the worker, never the server.

use std::io::Read;

/// Arrays and dictionaries nested deeper than this are refused; real documents
/// nest a handful of levels.
pub const MAX_NESTING: usize = 64;
/// Compressed streams may inflate to this much in all.
pub const MAX_INFLATED_BYTES: usize = 256 << 20;

pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut budget = MAX_INFLATED_BYTES;
    scan(bytes, &mut budget, true)
}

fn scan(b: &[u8], budget: &mut usize, file_level: bool) -> Result<(), String> {
    let deep = || format!("its objects are nested more than {MAX_NESTING} deep");
    let mut depth = 0usize;
    let mut object_start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                i = skip_string(b, i)?;
                continue;
            }
            b'<' if b.get(i + 1) == Some(&b'<') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(deep());
                }
                i += 2;
                continue;
            }
            b'<' => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(b.len(), |p| i + p + 1);
                continue;
            }
            b'>' if b.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 2;
                continue;
            }
            b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(deep());
                }
            }
            b']' => depth = depth.saturating_sub(1),
            b'o' if keyword_at(b, i, b"obj") => object_start = i,
            b's' if file_level && keyword_at(b, i, b"stream") => {
                let mut start = i + 6;
                if b[start..].starts_with(b"\r\n") {
                    start += 2;
                } else if b[start..].starts_with(b"\n") || b[start..].starts_with(b"\r") {
                    start += 1;
                }
                let end = find(b, start, b"endstream").unwrap_or(b.len());
                let data = &b[start..end];
                if looks_zlib(data) {
                    // Objects packed in an object stream are parsed like the file's.
                    if find(&b[object_start..i], 0, b"/ObjStm").is_some() {
                        let inflated = inflate(data, budget)?;
                        scan(&inflated, budget, false)?;
                    } else {
                        inflated_len(data, budget)?;
                    }
                }
                i = end + "endstream".len();
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The offset just past a literal string starting at `b[at] == '('`.
fn skip_string(b: &[u8], at: usize) -> Result<usize, String> {
    let mut level = 0usize;
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' => {
                level += 1;
                if level > MAX_NESTING {
                    return Err(format!(
                        "a string's parentheses are nested more than {MAX_NESTING} deep"
                    ));
                }
            }
            b')' => {
                level -= 1;
                if level == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(b.len())
}

fn is_delimiter(c: u8) -> bool {
    c.is_ascii_whitespace() || b"()<>[]{}/%".contains(&c)
}

/// `word` at `i`, standing alone (delimited on both sides).
fn keyword_at(b: &[u8], i: usize, word: &[u8]) -> bool {
    b[i..].starts_with(word)
        && (i == 0 || is_delimiter(b[i - 1]))
        && b.get(i + word.len()).is_none_or(|&c| is_delimiter(c))
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// A zlib header (RFC 1950): deflate method, header checksum divisible by 31.
fn looks_zlib(d: &[u8]) -> bool {
    d.len() >= 2 && d[0] & 0x0f == 8 && (u16::from(d[0]) << 8 | u16::from(d[1])) % 31 == 0
}

/// The stream inflated, charging `budget`; broken data ends the stream quietly
/// (the parser decides what it makes of it), but going over budget is refused.
fn inflate(data: &[u8], budget: &mut usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(*budget as u64 + 1);
    let _ = decoder.read_to_end(&mut out);
    charge(out.len(), budget)?;
    Ok(out)
}

/// [`inflate`] without keeping the bytes.
fn inflated_len(data: &[u8], budget: &mut usize) -> Result<(), String> {
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(*budget as u64 + 1);
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0usize;
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    charge(total, budget)
}

fn charge(len: usize, budget: &mut usize) -> Result<(), String> {
    if len > *budget {
        return Err(format!(
            "its compressed streams expand to more than {} MB",
            MAX_INFLATED_BYTES >> 20
        ));
    }
    *budget -= len;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn ordinary_structure_passes() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /A [1 [2 (a(b)c\\)) <41>]] >>\nendobj\n\
                    2 0 obj\n<< /Length 5 >>\nstream\n[[[[[\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF";
        assert_eq!(check(pdf), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut pdf = b"%PDF-1.4\ntrailer\n<< /Root ".to_vec();
        pdf.extend(std::iter::repeat_n(b'[', 100_000));
        let e = check(&pdf).unwrap_err();
        assert!(e.contains("nested more than 64"), "{e}");
        let strings = format!("%PDF-1.4\n1 0 obj\n{}\nendobj", "(".repeat(100_000));
        assert!(check(strings.as_bytes()).is_err());
    }

    #[test]
    fn a_flate_bomb_is_refused() {
        let bomb = zlib(&vec![0u8; MAX_INFLATED_BYTES + 1]);
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        let mut pdf = b"%PDF-1.4\n4 0 obj\n<< /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend(&bomb);
        pdf.extend(b"\nendstream\nendobj\n");
        let e = check(&pdf).unwrap_err();
        assert!(e.contains("expand to more than 256 MB"), "{e}");
    }

    #[test]
    fn nesting_inside_an_object_stream_is_refused() {
        let packed = zlib(format!("1 0 {}", "[".repeat(1_000)).as_bytes());
        let mut pdf =
            b"%PDF-1.5\n7 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>\nstream\n"
                .to_vec();
        pdf.extend(&packed);
        pdf.extend(b"\nendstream\nendobj\n");
        assert!(check(&pdf).unwrap_err().contains("nested"));
    }
}
