//! Request bodies. What the headers say is checked before a byte of the body is read: a
//! declared `Content-Length` over the route's limit is answered 413 at once, an unknown
//! `Content-Encoding` 415. The body is then read up to the limit (chunked or not) and, when
//! gzip, inflated under the same limit (every member, as `zcat` reads them) so a small bomb
//! cannot blow up memory. Inflating is CPU work: callers do it off the async workers.

use std::io::Read;

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use warp::http::{HeaderMap, StatusCode};

use super::ApiError;

/// How many bytes a route reads, and the setting (or fixed limit) that says so.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub bytes: usize,
    pub name: &'static str,
}

/// The limit of the routes that take a small JSON document (silences, acknowledgements).
pub const SMALL_JSON: Limit = Limit { bytes: 64 * 1024, name: "the 64 KiB limit of this route" };

impl Limit {
    /// Pushed bodies: `limits.max_body_bytes`.
    pub fn pushed(bytes: usize) -> Limit {
        Limit { bytes, name: "limits.max_body_bytes" }
    }

    fn too_large(self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {} ({} bytes); send smaller batches", self.name, self.bytes),
        )
    }
}

/// What a request's headers say about its body.
#[derive(Debug, Clone, Default)]
pub struct BodyHead {
    pub content_type: Option<String>,
    content_length: Option<u64>,
    gzip: bool,
    unsupported_encoding: Option<String>,
}

impl BodyHead {
    pub fn from_headers(headers: &HeaderMap) -> BodyHead {
        let text = |name| headers.get(name).and_then(|v: &warp::http::HeaderValue| v.to_str().ok()).map(str::trim);
        let (gzip, unsupported_encoding) = match text(CONTENT_ENCODING) {
            None | Some("") => (false, None),
            Some(enc) if enc.eq_ignore_ascii_case("identity") => (false, None),
            Some(enc) if enc.eq_ignore_ascii_case("gzip") => (true, None),
            Some(other) => (false, Some(other.to_owned())),
        };
        BodyHead {
            content_type: text(CONTENT_TYPE).map(str::to_owned),
            content_length: text(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            gzip,
            unsupported_encoding,
        }
    }

    /// Refuses what the headers alone show cannot be taken, before the body is read.
    fn check(&self, limit: Limit) -> Result<(), ApiError> {
        if let Some(other) = &self.unsupported_encoding {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported; send identity or gzip"),
            ));
        }
        match self.content_length {
            Some(n) if n > limit.bytes as u64 => Err(limit.too_large()),
            _ => Ok(()),
        }
    }
}

/// A body as it arrived: read under its limit, not yet inflated.
pub struct RawBody {
    bytes: Vec<u8>,
    gzip: bool,
    limit: Limit,
}

impl RawBody {
    /// What handling the body costs, in bytes: its size, or unbounded when it must be
    /// inflated first (deflate expands up to about a thousand times, so a small gzip body can
    /// stand for `limits.max_body_bytes` of work).
    pub fn cost_bytes(&self) -> usize {
        if self.gzip { usize::MAX } else { self.bytes.len() }
    }

    /// The body's content: inflated when it was sent gzip (CPU work: not on an async worker).
    pub fn inflate(self) -> Result<Vec<u8>, ApiError> {
        if !self.gzip {
            return Ok(self.bytes);
        }
        // Grows as it inflates: reserving a multiple of the compressed size up front would
        // let small bodies claim large buffers.
        let mut inflated = Vec::new();
        flate2::read::MultiGzDecoder::new(self.bytes.as_slice())
            .take(self.limit.bytes as u64 + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("gzip body does not inflate: {e}")))?;
        if inflated.len() > self.limit.bytes {
            return Err(self.limit.too_large());
        }
        Ok(inflated)
    }
}

/// Reads the body under `limit`, refusing by the headers first.
pub async fn receive<S, B>(mut stream: S, head: &BodyHead, limit: Limit) -> Result<RawBody, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    head.check(limit)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("reading the body failed: {e}")))?;
        if bytes.len() + chunk.remaining() > limit.bytes {
            return Err(limit.too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(RawBody { bytes, gzip: head.gzip, limit })
}

/// A small JSON document (at most [`SMALL_JSON`]), read after the route's token was checked.
pub async fn json<T, S, B>(stream: S, head: &BodyHead) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let body = receive(stream, head, SMALL_JSON).await?.inflate()?;
    serde_json::from_slice(&body).map_err(|e| {
        let form = head.content_type.as_deref().is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let hint = if form { "; the body must be JSON (Content-Type: application/json), not a form" } else { "" };
        ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}{hint}"))
    })
}

/// The limit of the acknowledge page's form (a name and a comment).
pub const SMALL_FORM: Limit = Limit { bytes: 4096, name: "the 4 KiB limit of this form" };

/// A small HTML form (`application/x-www-form-urlencoded`, at most [`SMALL_FORM`]) as its
/// fields; a field sent twice keeps its last value.
pub async fn form<S, B>(stream: S, head: &BodyHead) -> Result<std::collections::HashMap<String, String>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let body = receive(stream, head, SMALL_FORM).await?.inflate()?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// The body as UTF-8 text.
pub fn text(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn raw(bytes: Vec<u8>, limit: usize) -> RawBody {
        RawBody { bytes, gzip: true, limit: Limit::pushed(limit) }
    }

    #[test]
    fn every_gzip_member_is_inflated() {
        let mut body = gzip(b"a 1\n");
        body.extend(gzip(b"b 2\n"));
        assert_eq!(raw(body, 1024).inflate().unwrap(), b"a 1\nb 2\n");
    }

    /// Defect 10 of issue 13: the buffer was reserved at four times the compressed size, so a
    /// body that barely compresses claimed four times its size. It grows as it inflates now.
    #[test]
    fn the_inflated_buffer_grows_with_what_it_holds() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let incompressible: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let body = gzip(&incompressible);
        assert!(body.len() > incompressible.len(), "random bytes do not compress");
        let inflated = raw(body, 1 << 20).inflate().unwrap();
        assert_eq!(inflated, incompressible);
        assert!(
            inflated.capacity() <= 2 * inflated.len(),
            "capacity {} for {} bytes",
            inflated.capacity(),
            inflated.len()
        );
    }

    #[test]
    fn inflating_past_the_limit_is_413() {
        let err = raw(gzip(&[b'x'; 4096]), 4095).inflate().unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.message.contains("limits.max_body_bytes (4095 bytes)"), "{}", err.message);
    }

    #[test]
    fn headers_are_refused_before_the_body() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "4294967296".parse().unwrap());
        let err = BodyHead::from_headers(&headers).check(SMALL_JSON).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.message.contains("64 KiB"), "{}", err.message);
        headers.insert(CONTENT_LENGTH, "10".parse().unwrap());
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        let err = BodyHead::from_headers(&headers).check(SMALL_JSON).unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
