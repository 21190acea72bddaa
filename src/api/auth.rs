//! Bearer tokens (`Authorization: Bearer …`, or `Token …` as InfluxDB clients send them),
//! compared in constant time. A route guarded by an unset token is open (the
//! config refuses to serve a non-loopback address that way unless told to).

use subtle::ConstantTimeEq;
use warp::http::StatusCode;
use warp::http::header::HeaderValue;

use super::ApiError;
use crate::secret::Secret;

pub fn check(expected: Option<&Secret>, authorization: Option<&HeaderValue>, what: &str) -> Result<(), ApiError> {
    let Some(expected) = expected else { return Ok(()) };
    let presented = authorization
        .and_then(|value| value.to_str().ok())
        // `Token` is how InfluxDB clients (and Telegraf) send theirs.
        .and_then(|value| {
            ["Bearer ", "bearer ", "Token ", "token "].iter().find_map(|scheme| value.strip_prefix(scheme))
        })
        .map(str::trim);
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, format!("the bearer token is not valid for {what}"))),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{what} needs an 'Authorization: Bearer <token>' header"),
        )),
    }
}
