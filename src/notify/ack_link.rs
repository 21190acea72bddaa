//! Signed, expiring acknowledge links: `…/ack/{token}` where the token carries what to
//! acknowledge (a notification group), when the link expires and a nonce, signed with
//! HMAC-SHA256 under a key only this perfwatch knows. The nonce lets a link be used once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use thiserror::Error;

const VERSION: &str = "v1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("this acknowledge link is not valid (mistyped, cut off, or from another perfwatch)")]
    Invalid,
    #[error("this acknowledge link expired")]
    Expired { subject: String },
}

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub expires_s: i64,
    pub nonce: String,
}

pub struct AckKey(hmac::Key);

/// How long an acknowledge link works.
pub const LINK_TTL_S: i64 = 24 * 3600;

/// Where links point and what signs them.
#[derive(Clone)]
pub struct AckLinks {
    pub key: std::sync::Arc<AckKey>,
    /// `https://perfwatch.example` (no trailing slash).
    pub base: String,
}

impl AckLinks {
    /// A link acknowledging `subject`, valid for [`LINK_TTL_S`] from `now_s`.
    pub fn link(&self, subject: &str, now_s: i64) -> String {
        format!("{}/ack/{}", self.base, self.key.issue(subject, now_s + LINK_TTL_S))
    }
}

impl AckKey {
    pub fn new(secret: &[u8]) -> AckKey {
        AckKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A token for acknowledging `subject` until `expires_s`.
    pub fn issue(&self, subject: &str, expires_s: i64) -> String {
        let nonce = format!("{:016x}", rand::random::<u64>());
        let payload = format!("{VERSION}\n{expires_s}\n{nonce}\n{subject}");
        let tag = hmac::sign(&self.0, payload.as_bytes());
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks the signature (in constant time) and the expiry.
    pub fn verify(&self, token: &str, now_s: i64) -> Result<Claims, LinkError> {
        let (payload, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Invalid)?;
        hmac::verify(&self.0, &payload, &tag).map_err(|_| LinkError::Invalid)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Invalid)?;
        let mut parts = payload.splitn(4, '\n');
        let (Some(VERSION), Some(expires), Some(nonce), Some(subject)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Invalid);
        };
        let expires_s: i64 = expires.parse().map_err(|_| LinkError::Invalid)?;
        if now_s >= expires_s {
            return Err(LinkError::Expired { subject: subject.to_owned() });
        }
        Ok(Claims { subject: subject.to_owned(), expires_s, nonce: nonce.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire_and_not_when_touched() {
        let key = AckKey::new(b"0123456789abcdef0123456789abcdef");
        let token = key.issue("route-0{alertname=\"ApiSlow\"}", 1_000);
        let claims = key.verify(&token, 999).unwrap();
        assert_eq!((claims.subject.as_str(), claims.expires_s), ("route-0{alertname=\"ApiSlow\"}", 1_000));
        assert_ne!(key.issue("s", 1_000), key.issue("s", 1_000), "each link has its own nonce");
        assert!(matches!(key.verify(&token, 1_000), Err(LinkError::Expired { .. })));
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert_eq!(key.verify(&tampered, 999), Err(LinkError::Invalid));
        assert_eq!(AckKey::new(b"another key").verify(&token, 999), Err(LinkError::Invalid));
        assert_eq!(key.verify("garbage", 999), Err(LinkError::Invalid));
    }
}
