//! Request bodies sent with `Content-Encoding: gzip`, `deflate` or `br` (Apify's
//! clients compress larger bodies) are decompressed before any handler reads them,
//! on every route. The output is capped, so a small bomb cannot expand into
//! memory: past the cap the request is refused with 413.

use std::io::Read;

use agentbase_api_types::codes;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

/// Most codings one body may carry: clients apply one; a stack of them is only
/// ever a way to multiply the decoding work.
const MAX_CODINGS: usize = 2;

/// The codings of a `Content-Encoding` header, in the order they were applied;
/// `Err` names one this server does not decode (or says there are too many).
fn codings(value: &str) -> Result<Vec<Coding>, String> {
    let list = value
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .map(|c| match c.as_str() {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            "br" => Ok(Coding::Brotli),
            _ => Err(format!(
                "Content-Encoding `{c}` is not supported; use gzip, deflate or br"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if list.len() > MAX_CODINGS {
        return Err(format!(
            "Content-Encoding lists {} codings; at most {MAX_CODINGS} are decoded",
            list.len()
        ));
    }
    Ok(list)
}

enum Failure {
    TooLarge,
    Corrupt,
}

/// Reads at most `cap` bytes from `r`; more is [`Failure::TooLarge`].
fn read_capped(mut r: impl Read, cap: usize) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    (&mut r)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| Failure::Corrupt)?;
    if out.len() > cap {
        return Err(Failure::TooLarge);
    }
    Ok(out)
}

/// The body as it arrives, at most `cap` bytes ([`Failure::TooLarge`] past it); one
/// that fails to arrive is [`Failure::Corrupt`].
async fn read_body(body: Body, cap: usize) -> Result<bytes::Bytes, Failure> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Failure::Corrupt)?;
        if out.len() + chunk.len() > cap {
            return Err(Failure::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

fn decode(mut data: Vec<u8>, codings: &[Coding], cap: usize) -> Result<Vec<u8>, Failure> {
    for c in codings.iter().rev() {
        data = match c {
            Coding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(&data[..]), cap)?,
            // HTTP's deflate is zlib-wrapped; some clients send it raw.
            Coding::Deflate => read_capped(flate2::read::ZlibDecoder::new(&data[..]), cap)
                .or_else(|_| read_capped(flate2::read::DeflateDecoder::new(&data[..]), cap))?,
            Coding::Brotli => {
                read_capped(brotli_decompressor::Decompressor::new(&data[..], 8192), cap)?
            }
        };
    }
    Ok(data)
}

pub async fn decompress(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return next.run(req).await;
    };
    let list = match value
        .to_str()
        .map_err(|_| "Content-Encoding is not valid text".to_owned())
        .and_then(codings)
    {
        Ok(list) => list,
        Err(message) => {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::VALIDATION_UNSUPPORTED_ENCODING,
                message,
            )
            .into_response();
        }
    };
    // The largest body any route takes (uploads), decompressed; each route's own
    // limit still applies to what its handler reads.
    let cap = state
        .app
        .settings()
        .server
        .body_limit_bytes
        .max(agentbase_core::knowledge::FILE_MAX_BYTES + 64 * 1024);
    let (mut parts, body) = req.into_parts();
    let compressed = match read_body(body, cap).await {
        Ok(bytes) => bytes,
        Err(Failure::TooLarge) => return ApiError::body_too_large().into_response(),
        Err(Failure::Corrupt) => return ApiError::body_unreadable().into_response(),
    };
    let decoded = if list.is_empty() {
        Ok(compressed.to_vec())
    } else {
        tokio::task::spawn_blocking(move || decode(compressed.to_vec(), &list, cap))
            .await
            .unwrap_or(Err(Failure::Corrupt))
    };
    let data = match decoded {
        Ok(d) => d,
        Err(Failure::TooLarge) => return ApiError::body_too_large().into_response(),
        Err(Failure::Corrupt) => {
            return ApiError::invalid_field(
                "body",
                "The body could not be decompressed as its Content-Encoding says",
            )
            .into_response();
        }
    };
    parts.headers.remove(header::CONTENT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
    next.run(Request::from_parts(parts, Body::from(data))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_coding_round_trips_and_bombs_stop_at_the_cap() {
        let text = b"{\"name\":\"compressed\"}".repeat(50);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decode(gz.clone(), &[Coding::Gzip], 1 << 20).ok(),
            Some(text.clone())
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode(z.finish().unwrap(), &[Coding::Deflate], 1 << 20).ok(),
            Some(text.clone())
        );
        assert!(matches!(
            decode(gz, &[Coding::Gzip], 100),
            Err(Failure::TooLarge)
        ));
        assert!(matches!(
            decode(b"nope".to_vec(), &[Coding::Gzip], 100),
            Err(Failure::Corrupt)
        ));
        assert_eq!(
            codings("gzip, br").unwrap(),
            vec![Coding::Gzip, Coding::Brotli]
        );
        assert!(
            codings("zstd")
                .unwrap_err()
                .contains("`zstd` is not supported")
        );
        assert!(
            codings("gzip, gzip, gzip")
                .unwrap_err()
                .contains("at most 2")
        );
    }
}
