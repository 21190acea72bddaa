//! `GET /ack/{token}` and `POST /ack/{token}`: acknowledging from a notification. The GET only
//! shows a confirmation page (mail scanners follow links); its button POSTs the ack for every
//! firing alert of the group. The signed token is the authority, so no API token is needed.
//! Invalid, expired and used links get a page that says so, never a 500.

use crate::html::escape;
use std::collections::HashMap;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::page::message as page;
use super::{ApiError, OncallState};
use crate::alert::dispatch::Group;
use crate::clock;
use crate::notify::ack_link::{Claims, LinkError};
use crate::store::alerts::Ack;

pub async fn show(state: Arc<OncallState>, token: String) -> Result<Response, ApiError> {
    let (claims, group) = match check(&state, &token).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let mut rows = String::new();
    for alert in group.alerts.values().filter(|a| a.state == "firing") {
        let value = alert.value.map_or(String::new(), |v| format!("{v:.4}"));
        let summary = alert.annotations.get("summary").cloned().unwrap_or_default();
        rows.push_str(&format!("<li><b>{}</b> {} {}</li>", escape(&alert.rule), escape(&value), escape(&summary)));
    }
    let body = format!(
        "<p>{} firing in <code>{}</code>.</p><ul>{rows}</ul>\
         <form method=\"post\"><label>Your name <input name=\"by\" required autofocus></label> \
         <button type=\"submit\">Acknowledge</button></form>\
         <p class=\"note\">Acknowledging stops further escalation; everyone already paged is told.</p>",
        group.alerts.values().filter(|a| a.state == "firing").count(),
        escape(&claims.subject)
    );
    Ok(page(StatusCode::OK, "Acknowledge this alert?", &body))
}

pub async fn acknowledge(
    state: Arc<OncallState>,
    token: String,
    form: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let by = form.get("by").map(|b| b.trim().to_owned()).unwrap_or_default();
    if by.is_empty() {
        return Ok(page(StatusCode::BAD_REQUEST, "Who is acknowledging?", "<p>Go back and enter your name.</p>"));
    }
    let (claims, group) = match check(&state, &token).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let now_s = clock::now_s();
    if let Some((used_by, used_s)) =
        state.store.use_ack_link(claims.nonce.clone(), by.clone(), now_s).await.map_err(ApiError::internal)?
    {
        return Ok(used(&used_by, used_s));
    }
    let mut n = 0;
    for id in group.alerts.iter().filter(|(_, a)| a.state == "firing").map(|(id, _)| id) {
        let ack = Ack { by: by.clone(), at_s: now_s, comment: "via the acknowledge link".into() };
        if state.store.ack(id.clone(), Some(ack), now_s).await.map_err(ApiError::internal)? {
            state.scheduler.acked(id.clone(), by.clone()).await;
            n += 1;
        }
    }
    let body = format!(
        "<p>{n} alert(s) acknowledged by {}. Escalation stopped; everyone already paged is told.</p>",
        escape(&by)
    );
    Ok(page(StatusCode::OK, "Acknowledged", &body))
}

/// The link's claims and its group, or the page to answer instead.
async fn check(state: &OncallState, token: &str) -> Result<Result<(Claims, Group), Response>, ApiError> {
    let claims = match state.ack_key.verify(token, clock::now_s()) {
        Ok(claims) => claims,
        Err(LinkError::Invalid) => {
            return Ok(Err(page(
                StatusCode::BAD_REQUEST,
                "This link is not valid",
                "<p>It may be cut off or mistyped, or come from another perfwatch. Acknowledge from the alerts list instead (<code>perfwatch ack ID</code>).</p>",
            )));
        }
        Err(LinkError::Expired { .. }) => {
            return Ok(Err(page(
                StatusCode::GONE,
                "This link has expired",
                "<p>Acknowledge links work for 24 hours. Use the link in a newer notification, or <code>perfwatch ack ID</code>.</p>",
            )));
        }
    };
    let (nonce, subject) = (claims.nonce.clone(), claims.subject.clone());
    let (used_before, saved) = state
        .reader
        .read(move |tx| Ok((tx.link_use(&nonce)?, tx.notify_group(&subject)?)))
        .await
        .map_err(ApiError::internal)?;
    if let Some((by, at)) = used_before {
        return Ok(Err(used(&by, at)));
    }
    let group = saved.and_then(|json| serde_json::from_str::<Group>(&json).ok());
    let Some(group) = group.filter(|g| g.alerts.values().any(|a| a.state == "firing")) else {
        return Ok(Err(page(
            StatusCode::GONE,
            "Nothing to acknowledge",
            "<p>These alerts have resolved since the notification was sent.</p>",
        )));
    };
    if !claims.episode_s.is(group.started_s) {
        let body = format!(
            "<p>The incident this link was sent for resolved; these alerts fired again at {} UTC, a new incident this link does not acknowledge. Use the link in the newest notification, or <code>perfwatch ack ID</code>.</p>",
            escape(&clock::rfc3339(group.started_s))
        );
        return Ok(Err(page(StatusCode::GONE, "This link is for an earlier incident", &body)));
    }
    if let Some((by, at_s)) = &group.acked {
        let body = format!(
            "<p>{} acknowledged it at {} UTC; escalation has stopped.</p>",
            escape(by),
            escape(&clock::rfc3339(*at_s))
        );
        return Ok(Err(page(StatusCode::CONFLICT, "Already acknowledged", &body)));
    }
    Ok(Ok((claims, group)))
}

fn used(by: &str, at_s: i64) -> Response {
    let body = format!("<p>{} used it at {} UTC.</p>", escape(by), escape(&clock::rfc3339(at_s)));
    page(StatusCode::CONFLICT, "This link was already used", &body)
}
