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
use crate::config::Secret;

/// How long to wait on a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

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
        return call(client, bot, timeout, "chat.postMessage", &body).await;
    };
    if matches!(message.kind, Kind::Acked | Kind::Resolved) {
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        match call(client, bot, timeout, "chat.update", &body).await {
            // The page was deleted or is too old to edit: say it in its thread instead.
            Outcome::Failed(error)
                if ["message_not_found", "cant_update_message", "edit_window_closed"]
                    .iter()
                    .any(|e| error.contains(e)) =>
            {
                tracing::info!(%error, "cannot edit the page; replying in its thread");
            }
            outcome => return outcome,
        }
        body.as_object_mut().expect("a JSON object").remove("ts");
        body["thread_ts"] = json!(ts);
        return call(client, bot, timeout, "chat.postMessage", &body).await;
    }
    body["channel"] = json!(channel);
    body["thread_ts"] = json!(ts);
    body["reply_broadcast"] = json!(true);
    call(client, bot, timeout, "chat.postMessage", &body).await
}

/// One Web API call; a success's receipt is `channel/ts`.
async fn call(client: &reqwest::Client, bot: &Bot<'_>, timeout: Duration, method: &str, body: &Value) -> Outcome {
    let url = format!("{}/{method}", bot.api_url);
    let request = client.post(&url).timeout(timeout).bearer_auth(bot.token.expose()).json(body);
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) if err.is_timeout() => {
            return Outcome::Retry(format!("Slack's {method} did not answer within {timeout:?}"));
        }
        Err(err) => return Outcome::Retry(format!("cannot reach Slack's {method}: {}", err.without_url())),
    };
    let status = response.status().as_u16();
    let retry_after = super::retry_after(response.headers());
    let text = match response.text().await {
        Ok(text) => text,
        Err(err) => return Outcome::Retry(format!("reading Slack's answer to {method} failed: {}", err.without_url())),
    };
    classify(method, status, retry_after, &text)
}

/// What the Web API's answer means.
fn classify(method: &str, status: u16, retry_after: Option<Duration>, text: &str) -> Outcome {
    if status == 429 {
        return Outcome::RetryAfter {
            wait: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            error: format!("Slack rate-limited {method} (429)"),
        };
    }
    if status >= 500 {
        return Outcome::Retry(format!("Slack answered {method} with {status}"));
    }
    let Ok(answer) = serde_json::from_str::<Value>(text) else {
        // Not Slack's JSON: a proxy or load balancer answered; worth another try.
        let start: String = text.chars().take(80).collect();
        return Outcome::Retry(format!("{method} answered {status} with something other than Slack's JSON: {start:?}"));
    };
    if answer["ok"] == true {
        return match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Outcome::DeliveredAs(format!("{channel}/{ts}")),
            _ => Outcome::Delivered,
        };
    }
    let error = answer["error"].as_str().unwrap_or("no answer Slack documents");
    match error {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => Outcome::Retry(format!("Slack's {method} answered {error}")),
        _ => Outcome::Failed(format!("Slack's {method} refused the message ({status} {error}): {}", hint(error))),
    }
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

    #[test]
    fn web_api_answers_are_classified_as_slack_documents_them() {
        let ok = r#"{"ok":true,"channel":"C0PLATFORM","ts":"1732449600.000100"}"#;
        assert_eq!(
            classify("chat.postMessage", 200, None, ok),
            Outcome::DeliveredAs("C0PLATFORM/1732449600.000100".into())
        );
        assert!(matches!(classify("chat.update", 429, Some(Duration::from_secs(3)), ""),
            Outcome::RetryAfter { wait, .. } if wait == Duration::from_secs(3)));
        assert!(matches!(classify("chat.update", 503, None, ""), Outcome::Retry(_)));
        assert!(matches!(classify("chat.update", 200, None, "<html>proxy</html>"), Outcome::Retry(_)));
        assert_eq!(classify("chat.update", 200, None, r#"{"ok":true}"#), Outcome::Delivered, "no ts: no receipt");
        assert!(matches!(
            classify("chat.postMessage", 200, None, r#"{"ok":false,"error":"internal_error"}"#),
            Outcome::Retry(_)
        ));
        match classify("chat.postMessage", 200, None, r#"{"ok":false,"error":"not_in_channel"}"#) {
            Outcome::Failed(error) => assert!(error.contains("not_in_channel") && error.contains("/invite"), "{error}"),
            other => panic!("{other:?}"),
        }
        match classify("chat.postMessage", 200, None, r#"{"ok":false,"error":"invalid_auth"}"#) {
            Outcome::Failed(error) => assert!(error.contains("reinstall the Slack app"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
