//! CSRF tokens for the pages' forms. A browser sends basic-auth credentials with any request
//! to perfwatch, including a form another site makes it post, so each form carries a token
//! only a page served by perfwatch can hold: HMAC-SHA256 under a key this perfwatch made for
//! itself, over what the form acts on and when the token expires. Checked in constant time;
//! a cross-site request (by `Sec-Fetch-Site` or `Origin`) is refused before the token is read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use warp::http::HeaderMap;

/// A page left open overnight still acts in the morning; not longer.
pub const TOKEN_TTL_S: i64 = 12 * 3600;
const DOMAIN: &str = "perfwatch-form-v1";

pub struct CsrfKey(hmac::Key);

impl CsrfKey {
    pub fn new(secret: &[u8]) -> CsrfKey {
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A token for forms acting on `subject` (an alert id), valid from `now_s` for
    /// [`TOKEN_TTL_S`].
    pub fn token(&self, subject: &str, now_s: i64) -> String {
        let expires_s = now_s + TOKEN_TTL_S;
        let tag = hmac::sign(&self.0, message(subject, expires_s).as_bytes());
        format!("{expires_s}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `token` was made by [`CsrfKey::token`] for `subject` and has not expired.
    pub fn check(&self, token: &str, subject: &str, now_s: i64) -> bool {
        let Some((expires, tag)) = token.split_once('.') else { return false };
        let (Ok(expires_s), Ok(tag)) = (expires.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else { return false };
        now_s < expires_s && hmac::verify(&self.0, message(subject, expires_s).as_bytes(), &tag).is_ok()
    }
}

fn message(subject: &str, expires_s: i64) -> String {
    format!("{DOMAIN}\n{expires_s}\n{subject}")
}

/// Whether the browser says the request came from another site: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` that is neither the request's `Host` nor the origin of
/// `public_url` (`http.public_url`: behind a reverse proxy, `Host` is often perfwatch's own
/// address while the browser's `Origin` is the proxy's).
pub fn cross_site(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    let Some(origin) = text("origin") else { return false };
    let from_host = text("host").is_some_and(|host| origin.split_once("://").map(|(_, rest)| rest) == Some(host));
    let from_public = public_url.is_some_and(|url| origin_of(url) == origin);
    !(from_host || from_public)
}

/// `https://perfwatch.example:8443` of `https://perfwatch.example:8443/some/path`.
fn origin_of(url: &str) -> &str {
    let Some((_, rest)) = url.split_once("://") else { return url };
    let end = url.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_for_its_subject_until_it_expires_and_not_when_touched() {
        let key = CsrfKey::new(b"k");
        let token = key.token("abc", 1000);
        assert!(key.check(&token, "abc", 1000 + TOKEN_TTL_S - 1));
        assert!(!key.check(&token, "abc", 1000 + TOKEN_TTL_S), "expired");
        assert!(!key.check(&token, "abd", 1001), "another alert");
        assert!(!CsrfKey::new(b"other").check(&token, "abc", 1001), "another perfwatch");
        let later = token.replacen(&(1000 + TOKEN_TTL_S).to_string(), &(2000 + TOKEN_TTL_S).to_string(), 1);
        assert!(!key.check(&later, "abc", 1001), "a stretched expiry");
        for bad in ["", ".", "x.y", "1.", "99999999999"] {
            assert!(!key.check(bad, "abc", 1001), "{bad:?}");
        }
    }

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, v.parse().unwrap());
            }
            map
        };
        let direct = |pairs: &[(&'static str, &'static str)]| cross_site(&headers(pairs), None);
        assert!(!direct(&[("host", "pw:9464")]), "no Origin: older browsers, curl");
        assert!(!direct(&[("host", "pw:9464"), ("origin", "http://pw:9464")]));
        assert!(direct(&[("host", "pw:9464"), ("origin", "https://evil.example")]));
        assert!(direct(&[("host", "pw:9464"), ("origin", "null")]));
        assert!(direct(&[("host", "pw:9464"), ("sec-fetch-site", "cross-site")]));
        assert!(!direct(&[("host", "pw:9464"), ("sec-fetch-site", "same-origin")]));
        // Behind a proxy that sends perfwatch its own address as Host: the public URL's origin.
        let proxied = headers(&[("host", "127.0.0.1:9464"), ("origin", "https://perfwatch.example")]);
        assert!(cross_site(&proxied, None));
        assert!(!cross_site(&proxied, Some("https://perfwatch.example/pw")));
        assert!(cross_site(&proxied, Some("https://perfwatch.example.evil.test")));
        assert_eq!(origin_of("https://a.example:8443/x/y"), "https://a.example:8443");
        assert_eq!(origin_of("http://a.example"), "http://a.example");
    }
}
