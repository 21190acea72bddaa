//! Slack's Web API with a bot token: the page is a `chat.postMessage` in the configured
//! channel, and its follow-ups keep the channel quiet — escalations and repeats reply in the
//! page's thread (also shown in the channel, so they are seen), the acknowledgement and the
//! resolve edit the page itself with `chat.update`. The page's channel and `ts` are kept as
//! the notification's receipt in the outbox, so follow-ups find it after a restart.
//!
//! Answers follow Slack's documentation: HTTP 429 waits `Retry-After`; 5xx and the errors
//! Slack calls transient (`ratelimited`, `internal_error`, `fatal_error`,
//! `service_unavailable`, `request_timeout`) retry; other `"ok": false` errors fail with what
//! to do. The token is a secret: errors never include it.

use std::time::Duration;

use serde_json::{Value, json};

use super::Outcome;
use super::message::{Kind, Message};
use super::slack::payload;
use crate::secret::Secret;

/// The bot's credentials and where it posts.
pub struct Bot<'a> {
    pub token: &'a Secret,
    pub channel: &'a str,
    pub api_url: &'a str,
}

/// Sends `message`; `page` is the receipt (`channel/ts`) of the page it follows up, if any.
pub async fn send(
    client: &reqwest::Client,
    bot: &Bot<'_>,
    timeout: Duration,
    message: &Message,
    page: Option<&str>,
) -> Outcome {
    let mut body = payload(message);
    let Some((channel, ts)) = page.and_then(|receipt| receipt.split_once('/')) else {
        body["channel"] = json!(bot.channel);
        return call(client, bot, timeout, "chat.postMessage", &body).await.0;
    };
    if matches!(message.kind, Kind::Acked | Kind::Resolved) {
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        match call(client, bot, timeout, "chat.update", &body).await {
            // The page was deleted or is too old to edit: say it in its thread instead.
            (_, Some(error))
                if ["message_not_found", "cant_update_message", "edit_window_closed"].contains(&error.as_str()) =>
            {
                tracing::info!(%error, "cannot edit the page; replying in its thread");
            }
            (outcome, _) => return outcome,
        }
        body.as_object_mut().expect("a JSON object").remove("ts");
        body["thread_ts"] = json!(ts);
        return call(client, bot, timeout, "chat.postMessage", &body).await.0;
    }
    body["channel"] = json!(channel);
    body["thread_ts"] = json!(ts);
    body["reply_broadcast"] = json!(true);
    call(client, bot, timeout, "chat.postMessage", &body).await.0
}

/// One Web API call: its outcome (a success's receipt is `channel/ts`) and Slack's error
/// code when it refused.
async fn call(
    client: &reqwest::Client,
    bot: &Bot<'_>,
    timeout: Duration,
    method: &str,
    body: &Value,
) -> (Outcome, Option<String>) {
    let request = client.post(format!("{}/{method}", bot.api_url)).bearer_auth(bot.token.expose()).json(body);
    match super::exchange(request, timeout, &format!("Slack's {method}")).await {
        Ok(answer) => classify(method, answer.status, answer.retry_after, &answer.body),
        Err(outcome) => (outcome, None),
    }
}

/// What the Web API's answer means, and Slack's error code if it refused.
fn classify(method: &str, status: u16, retry_after: Duration, text: &str) -> (Outcome, Option<String>) {
    if status == 429 {
        let error = format!("Slack rate-limited {method} (429)");
        return (Outcome::RetryAfter { wait: retry_after, error }, None);
    }
    if status >= 500 {
        return (Outcome::Retry(format!("Slack answered {method} with {status}")), None);
    }
    let Ok(answer) = serde_json::from_str::<Value>(text) else {
        // Not Slack's JSON: a proxy or load balancer answered; worth another try.
        let start: String = text.chars().take(80).collect();
        let error = format!("{method} answered {status} with something other than Slack's JSON: {start:?}");
        return (Outcome::Retry(error), None);
    };
    if answer["ok"] == true {
        let outcome = match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Outcome::DeliveredAs(format!("{channel}/{ts}")),
            _ => Outcome::Delivered,
        };
        return (outcome, None);
    }
    let error = answer["error"].as_str().unwrap_or("no answer Slack documents").to_owned();
    let outcome = match error.as_str() {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => Outcome::Retry(format!("Slack's {method} answered {error}")),
        _ => Outcome::Failed(format!("Slack's {method} refused the message ({status} {error}): {}", hint(&error))),
    };
    (outcome, Some(error))
}

fn hint(error: &str) -> &'static str {
    match error {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "the bot token is invalid or revoked; reinstall the Slack app and update the token secret"
        }
        "channel_not_found" => "check `channel` (use the channel ID, like C0123456789) and that the bot can see it",
        "not_in_channel" => "invite the bot to the channel (/invite @your-app)",
        "is_archived" => "the channel is archived; post to a live one",
        "missing_scope" => "give the Slack app the chat:write scope and reinstall it",
        "message_not_found" | "cant_update_message" | "edit_window_closed" => "the page cannot be edited any more",
        _ => "Slack will not accept this message as sent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn web_api_answers_are_classified_as_slack_documents_them() {
        let ok = r#"{"ok":true,"channel":"C0PLATFORM","ts":"1732449600.000100"}"#;
        assert_eq!(
            classify("chat.postMessage", 200, WAIT, ok).0,
            Outcome::DeliveredAs("C0PLATFORM/1732449600.000100".into())
        );
        assert!(matches!(classify("chat.update", 429, Duration::from_secs(3), "").0,
            Outcome::RetryAfter { wait, .. } if wait == Duration::from_secs(3)));
        assert!(matches!(classify("chat.update", 503, WAIT, "").0, Outcome::Retry(_)));
        assert!(matches!(classify("chat.update", 200, WAIT, "<html>proxy</html>").0, Outcome::Retry(_)));
        assert_eq!(classify("chat.update", 200, WAIT, r#"{"ok":true}"#).0, Outcome::Delivered, "no ts: no receipt");
        let (outcome, code) = classify("chat.postMessage", 200, WAIT, r#"{"ok":false,"error":"internal_error"}"#);
        assert!(matches!(outcome, Outcome::Retry(_)) && code.as_deref() == Some("internal_error"));
        match classify("chat.postMessage", 200, WAIT, r#"{"ok":false,"error":"not_in_channel"}"#).0 {
            Outcome::Failed(error) => assert!(error.contains("not_in_channel") && error.contains("/invite"), "{error}"),
            other => panic!("{other:?}"),
        }
        match classify("chat.postMessage", 200, WAIT, r#"{"ok":false,"error":"invalid_auth"}"#).0 {
            Outcome::Failed(error) => assert!(error.contains("reinstall the Slack app"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
