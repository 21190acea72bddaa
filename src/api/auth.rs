//! Bearer tokens (`Authorization: Bearer …`, or `Token …` as InfluxDB clients send them),
//! compared in constant time. The pages a person opens in a browser also take the API token
//! as HTTP basic auth's password (any user name), and a refusal there asks the browser for it.
//! A route guarded by an unset token is open (the config refuses to serve a non-loopback
//! address that way unless told to).

use base64::Engine;
use subtle::ConstantTimeEq;
use warp::http::StatusCode;
use warp::http::header::HeaderValue;

use super::ApiError;
use crate::secret::Secret;

pub fn check(expected: Option<&Secret>, authorization: Option<&HeaderValue>, what: &str) -> Result<(), ApiError> {
    let Some(expected) = expected else { return Ok(()) };
    match bearer(authorization) {
        Some(token) if matches(token.as_bytes(), expected) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, format!("the bearer token is not valid for {what}"))),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{what} needs an 'Authorization: Bearer <token>' header"),
        )),
    }
}

/// For a page: the token as a bearer token or as basic auth's password. A refusal carries
/// `WWW-Authenticate: Basic`, so a browser asks for it (any user name, the token as password).
pub fn check_page(expected: Option<&Secret>, authorization: Option<&HeaderValue>) -> Result<(), ApiError> {
    let Some(expected) = expected else { return Ok(()) };
    let accepted = match (bearer(authorization), basic_password(authorization)) {
        (Some(token), _) => matches(token.as_bytes(), expected),
        (None, Some(password)) => matches(&password, expected),
        (None, None) => false,
    };
    if accepted {
        return Ok(());
    }
    let mut refused = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this page needs the API token: as the password when the browser asks (any user name), \
         or as an 'Authorization: Bearer <token>' header"
            .into(),
    );
    refused.challenge = true;
    Err(refused)
}

fn bearer(authorization: Option<&HeaderValue>) -> Option<&str> {
    let value = authorization?.to_str().ok()?;
    // `Token` is how InfluxDB clients (and Telegraf) send theirs.
    ["Bearer ", "bearer ", "Token ", "token "].iter().find_map(|scheme| value.strip_prefix(scheme)).map(str::trim)
}

/// The password of `Authorization: Basic base64(user:password)`.
fn basic_password(authorization: Option<&HeaderValue>) -> Option<Vec<u8>> {
    let value = authorization?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

fn matches(presented: &[u8], expected: &Secret) -> bool {
    bool::from(presented.ct_eq(expected.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn pages_take_the_token_as_bearer_or_as_basic_password() {
        let token = Secret::new("s3cret".into());
        let basic = |user_password: &str| {
            header(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password)))
        };
        assert!(check_page(Some(&token), Some(&header("Bearer s3cret"))).is_ok());
        assert!(check_page(Some(&token), Some(&basic("ana:s3cret"))).is_ok());
        assert!(check_page(Some(&token), Some(&basic(":s3cret"))).is_ok());
        for refused in [Some(basic("ana:wrong")), Some(basic("s3cret")), Some(header("Basic !!")), None] {
            let err = check_page(Some(&token), refused.as_ref()).unwrap_err();
            assert!(err.status == StatusCode::UNAUTHORIZED && err.challenge, "{refused:?}");
        }
        // The API proper does not take basic auth, and never asks a browser.
        let err = check(Some(&token), Some(&basic("ana:s3cret")), "this API").unwrap_err();
        assert!(!err.challenge);
        assert!(check_page(None, None).is_ok());
    }
}
