//! Request bodies: read up to the size limit (chunked or not), then gunzip when the client
//! said `Content-Encoding: gzip`, with the same limit on the inflated size so a small bomb
//! cannot blow up memory.

use std::io::Read;

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use warp::http::StatusCode;

use super::ApiError;

pub async fn read<S, B>(mut stream: S, content_encoding: Option<&str>, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than limits.max_body_bytes ({limit} bytes); send smaller batches"),
        )
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("reading the body failed: {e}")))?;
        if body.len() + chunk.remaining() > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    match content_encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(body),
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => {
            let mut inflated = Vec::with_capacity(body.len() * 4);
            flate2::read::GzDecoder::new(body.as_slice())
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("gzip body does not inflate: {e}")))?;
            if inflated.len() > limit {
                return Err(too_large());
            }
            Ok(inflated)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported; send identity or gzip"),
        )),
    }
}

/// The body as UTF-8 text.
pub fn text(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body is not UTF-8: {e}")))
}
