//! The alert page's forms: acknowledge (with a name and a comment), withdraw the
//! acknowledgement, silence for 1 h, 4 h or until the alert resolves. Each checks that the
//! request did not come from another site and carries the page's CSRF token, does what the
//! JSON API does (the same store calls, the scheduler told of an ack), and sends the browser
//! back to the alert page.

use std::collections::HashMap;
use std::sync::Arc;

use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::alert::silence::Silence;
use crate::api::csrf::cross_site;
use crate::api::page::message;
use crate::api::{ApiError, OncallState};
use crate::clock;
use crate::html::escape;
use crate::store::alerts::{Ack, SilenceRow};

/// What a form asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ack,
    Unack,
    Silence,
}

/// A silence "until resolved" ends then, or after this long if the alert never resolves: no
/// silence is forever.
pub const UNTIL_RESOLVED_MAX_S: i64 = 7 * 86_400;
const NAME_CHARS: usize = 100;
const COMMENT_CHARS: usize = 500;

pub async fn act(
    state: Arc<OncallState>,
    id: String,
    action: Action,
    headers: &HeaderMap,
    form: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    if cross_site(headers, state.public_url.as_deref()) || !state.csrf.check(&field("csrf"), &id, now_s) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            "This form cannot be used",
            "<p>It expired (forms work for 12 hours) or did not come from this perfwatch. \
             Go back, reload the alert page and try again.</p>",
        ));
    }
    let lookup = id.clone();
    let Some(alert) = state.reader.read(move |tx| tx.alert(&lookup)).await.map_err(ApiError::internal)? else {
        return Ok(message(StatusCode::NOT_FOUND, "No such alert", "<p>Go back to the status page.</p>"));
    };
    if alert.state == "inactive" {
        return Ok(resolved());
    }
    if action == Action::Ack && alert.state != "firing" {
        // Paging starts when it fires; an ack before that would not reach the escalation.
        return Ok(message(
            StatusCode::CONFLICT,
            "Not firing yet",
            "<p>It is pending: nobody has been paged. Acknowledge once it fires, or silence it.</p>",
        ));
    }
    let (by, comment) = (field("by"), field("comment"));
    if action != Action::Unack && (by.is_empty() || by.chars().count() > NAME_CHARS) {
        let body = format!("<p>Go back and enter your name (up to {NAME_CHARS} characters).</p>");
        return Ok(message(StatusCode::BAD_REQUEST, "Who is this?", &body));
    }
    if comment.chars().count() > COMMENT_CHARS {
        let body = format!("<p>Go back and shorten it to {COMMENT_CHARS} characters.</p>");
        return Ok(message(StatusCode::BAD_REQUEST, "The comment is too long", &body));
    }
    match action {
        Action::Ack => {
            let ack = Ack { by: by.clone(), at_s: now_s, comment };
            if state.store.ack(id.clone(), Some(ack), now_s).await.map_err(ApiError::internal)? {
                state.scheduler.acked(id.clone(), by).await;
            }
        }
        Action::Unack => {
            state.store.ack(id.clone(), None, now_s).await.map_err(ApiError::internal)?;
        }
        Action::Silence => {
            let (ends_s, until_resolved) = match field("for").as_str() {
                "1h" => (now_s + 3600, None),
                "4h" => (now_s + 4 * 3600, None),
                "resolved" => (now_s + UNTIL_RESOLVED_MAX_S, Some(id.clone())),
                other => {
                    let body = format!("<p>{} is not 1h, 4h or resolved.</p>", escape(&format!("{other:?}")));
                    return Ok(message(StatusCode::BAD_REQUEST, "Silence for how long?", &body));
                }
            };
            // The alert's own labels, exactly: the silence covers this alert, not its neighbours.
            Silence::new(String::new(), &alert.labels, now_s, ends_s).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the alert's labels do not parse: {e}"))
            })?;
            let row = SilenceRow {
                id: format!("{:016x}", rand::random::<u64>()),
                matchers: alert.labels.clone(),
                starts_s: now_s,
                ends_s,
                author: by,
                comment,
                created_s: now_s,
                until_resolved,
            };
            if row.until_resolved.is_none() {
                state.store.save_silence(row).await.map_err(ApiError::internal)?;
            } else if !state.store.save_silence_until_resolved(row).await.map_err(ApiError::internal)? {
                return Ok(resolved());
            }
        }
    }
    Ok(back_to(&id))
}

fn resolved() -> Response {
    message(
        StatusCode::CONFLICT,
        "This alert has resolved",
        "<p>There is nothing to acknowledge or silence any more. Go back and reload the page.</p>",
    )
}

/// 303 to the alert page, relative so a path prefix in front of perfwatch is kept.
fn back_to(id: &str) -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SEE_OTHER;
    // The id was found in the store (hex), so it is a valid header; anything else goes to the list.
    let location = warp::http::HeaderValue::from_str(&format!("../{id}#timeline"))
        .unwrap_or_else(|_| warp::http::HeaderValue::from_static("../"));
    response.headers_mut().insert("location", location);
    response
}
