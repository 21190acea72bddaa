//! Signed, expiring acknowledge links: `…/ack/{token}` where the token carries what to
//! acknowledge (a notification group and the episode of it the link was sent for), when the
//! link expires and a nonce, signed with HMAC-SHA256 under a key only this perfwatch knows.
//! The nonce lets a link be used once; the episode keeps it from acknowledging a later
//! incident of the same group.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use thiserror::Error;

/// v2 names the episode; v1 links (before episodes) are still read, see [`Claims::episode_s`].
const VERSION: &str = "v2";
const VERSION_1: &str = "v1";

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
    /// When the episode the link was sent for started (the group's `started_s`).
    pub episode_s: EpisodeClaim,
    pub expires_s: i64,
    pub nonce: String,
}

/// Which episode of its group a link acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeClaim {
    /// The episode that started at this time.
    StartedAt(i64),
    /// A v1 link, issued at this time: it is for whichever episode was running then.
    IssuedAt(i64),
}

impl EpisodeClaim {
    /// Whether the link was sent for the episode that started at `started_s`.
    pub fn is(&self, started_s: i64) -> bool {
        match *self {
            EpisodeClaim::StartedAt(episode_s) => episode_s == started_s,
            EpisodeClaim::IssuedAt(issued_s) => issued_s >= started_s,
        }
    }
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
    /// A link acknowledging the episode of `subject` that started at `episode_s`, valid for
    /// [`LINK_TTL_S`] from `now_s`.
    pub fn link(&self, subject: &str, episode_s: i64, now_s: i64) -> String {
        format!("{}/ack/{}", self.base, self.key.issue(subject, episode_s, now_s + LINK_TTL_S))
    }

    /// The page of alert `id` (no signature: the page is behind the API token's login).
    pub fn alert_page(&self, id: &str) -> String {
        format!("{}/alerts/{id}", self.base)
    }
}

impl AckKey {
    pub fn new(secret: &[u8]) -> AckKey {
        AckKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A token for acknowledging the episode of `subject` that started at `episode_s`, until
    /// `expires_s`.
    pub fn issue(&self, subject: &str, episode_s: i64, expires_s: i64) -> String {
        let nonce = format!("{:016x}", rand::random::<u64>());
        self.sign(format!("{VERSION}\n{expires_s}\n{nonce}\n{episode_s}\n{subject}"))
    }

    fn sign(&self, payload: String) -> String {
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
        let (version, rest) = payload.split_once('\n').ok_or(LinkError::Invalid)?;
        let mut parts = rest.splitn(if version == VERSION { 4 } else { 3 }, '\n');
        let (Some(expires), Some(nonce)) = (parts.next(), parts.next()) else {
            return Err(LinkError::Invalid);
        };
        let expires_s: i64 = expires.parse().map_err(|_| LinkError::Invalid)?;
        let episode_s = match version {
            VERSION => EpisodeClaim::StartedAt(parts.next().and_then(|e| e.parse().ok()).ok_or(LinkError::Invalid)?),
            VERSION_1 => EpisodeClaim::IssuedAt(expires_s.saturating_sub(LINK_TTL_S)),
            _ => return Err(LinkError::Invalid),
        };
        let subject = parts.next().ok_or(LinkError::Invalid)?;
        if now_s >= expires_s {
            return Err(LinkError::Expired { subject: subject.to_owned() });
        }
        Ok(Claims { subject: subject.to_owned(), episode_s, expires_s, nonce: nonce.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire_and_not_when_touched() {
        let key = AckKey::new(b"0123456789abcdef0123456789abcdef");
        let token = key.issue("route-0{alertname=\"ApiSlow\"}", 500, 1_000);
        let claims = key.verify(&token, 999).unwrap();
        assert_eq!((claims.subject.as_str(), claims.expires_s), ("route-0{alertname=\"ApiSlow\"}", 1_000));
        assert_eq!(claims.episode_s, EpisodeClaim::StartedAt(500));
        assert!(claims.episode_s.is(500) && !claims.episode_s.is(700), "a later episode is not this link's");
        assert_ne!(key.issue("s", 0, 1_000), key.issue("s", 0, 1_000), "each link has its own nonce");
        assert!(matches!(key.verify(&token, 1_000), Err(LinkError::Expired { .. })));
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert_eq!(key.verify(&tampered, 999), Err(LinkError::Invalid));
        assert_eq!(AckKey::new(b"another key").verify(&token, 999), Err(LinkError::Invalid));
        assert_eq!(key.verify("garbage", 999), Err(LinkError::Invalid));
    }

    #[test]
    fn links_from_before_episodes_are_bound_to_the_episode_running_when_sent() {
        let key = AckKey::new(b"0123456789abcdef0123456789abcdef");
        let issued_s = 10_000;
        let v1 = key.sign(format!("v1\n{}\nabcdef\nroute-0{{}}", issued_s + LINK_TTL_S));
        let claims = key.verify(&v1, issued_s + 60).unwrap();
        assert_eq!(claims.subject, "route-0{}");
        assert!(claims.episode_s.is(issued_s - 300), "the episode that was running when it was sent");
        assert!(!claims.episode_s.is(issued_s + 30), "an episode that started later");
    }
}
