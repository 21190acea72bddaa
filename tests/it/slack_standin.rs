//! A local HTTP server that answers like Slack's incoming-webhook endpoint, from a script:
//! `200 ok`, `429` with `Retry-After`, `500`, 4xx bodies such as `no_service`, or a slow
//! answer; once the script is used up it answers `200 ok`. It records what it received, when.
//! It takes any path, so it also stands in for a generic webhook receiver.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub body: &'static str,
    pub retry_after_s: Option<u64>,
    pub delay: Duration,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer { status: 200, body: "ok", retry_after_s: None, delay: Duration::ZERO }
    }

    pub fn status(status: u16, body: &'static str) -> Answer {
        Answer { status, body, retry_after_s: None, delay: Duration::ZERO }
    }

    pub fn rate_limited(retry_after_s: u64) -> Answer {
        Answer { status: 429, body: "rate_limited", retry_after_s: Some(retry_after_s), delay: Duration::ZERO }
    }

    pub fn slow(delay: Duration) -> Answer {
        Answer { delay, ..Answer::ok() }
    }
}

/// One request as it arrived.
#[derive(Clone)]
pub struct Request {
    pub headers: warp::http::HeaderMap,
    pub body: bytes::Bytes,
}

pub struct SlackStandin {
    /// The webhook URL to configure.
    pub url: String,
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl SlackStandin {
    pub async fn start(script: Vec<Answer>) -> SlackStandin {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let received: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (log, raw) = (received.clone(), requests.clone());
        let route = warp::post().and(warp::header::headers_cloned()).and(warp::body::bytes()).then(
            move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let answer = script.lock().unwrap().pop_front().unwrap_or_else(Answer::ok);
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock().unwrap().push((Instant::now(), json));
                raw.lock().unwrap().push(Request { headers, body });
                async move {
                    tokio::time::sleep(answer.delay).await;
                    let mut response = answer.body.into_response();
                    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
                    if let Some(after) = answer.retry_after_s {
                        response.headers_mut().insert("retry-after", after.into());
                    }
                    response
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/services/T000/B000/XXXX", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        SlackStandin { url, received, requests }
    }

    /// The raw requests so far (headers and body bytes).
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// What arrived so far, with when.
    pub fn received(&self) -> Vec<(Instant, Value)> {
        self.received.lock().unwrap().clone()
    }
}

/// A local server that answers like Slack's Web API (`chat.postMessage`, `chat.update`) for one
/// bot token and one channel: it checks the bearer token, hands out `ts` values, keeps each
/// message's current content (edits replace it) and the thread it is in. A script of forced
/// answers (e.g. a 429) goes first.
pub struct SlackApiStandin {
    /// The `api_url` to configure.
    pub api_url: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    messages: Arc<Mutex<Vec<PostedMessage>>>,
}

/// A message as the channel shows it now.
#[derive(Clone, Debug)]
pub struct PostedMessage {
    pub ts: String,
    pub thread_ts: Option<String>,
    pub broadcast: bool,
    /// Its current content; `edits` counts the `chat.update`s.
    pub content: Value,
    pub edits: usize,
}

pub const BOT_TOKEN: &str = "xoxb-test-0000";
pub const CHANNEL: &str = "C0PLATFORM";

impl SlackApiStandin {
    pub async fn start(script: Vec<Answer>) -> SlackApiStandin {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let messages: Arc<Mutex<Vec<PostedMessage>>> = Arc::default();
        let (log, store) = (calls.clone(), messages.clone());
        let route = warp::post()
            .and(warp::path!("api" / String))
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::body::json())
            .map(move |method: String, auth: Option<String>, body: Value| {
                log.lock().unwrap().push((method.clone(), body.clone()));
                if let Some(answer) = script.lock().unwrap().pop_front() {
                    let mut response = answer.body.into_response();
                    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
                    if let Some(after) = answer.retry_after_s {
                        response.headers_mut().insert("retry-after", after.into());
                    }
                    return response;
                }
                let answer = if auth.as_deref() != Some(&format!("Bearer {BOT_TOKEN}")) {
                    serde_json::json!({"ok": false, "error": "invalid_auth"})
                } else if body["channel"] != CHANNEL {
                    serde_json::json!({"ok": false, "error": "channel_not_found"})
                } else {
                    let mut messages = store.lock().unwrap();
                    match method.as_str() {
                        "chat.postMessage" => {
                            let ts = format!("1732449600.{:06}", messages.len() + 1);
                            messages.push(PostedMessage {
                                ts: ts.clone(),
                                thread_ts: body["thread_ts"].as_str().map(str::to_owned),
                                broadcast: body["reply_broadcast"] == true,
                                content: body.clone(),
                                edits: 0,
                            });
                            serde_json::json!({"ok": true, "channel": CHANNEL, "ts": ts})
                        }
                        "chat.update" => match messages.iter_mut().find(|m| body["ts"] == m.ts.as_str()) {
                            Some(message) => {
                                message.content = body.clone();
                                message.edits += 1;
                                serde_json::json!({"ok": true, "channel": CHANNEL, "ts": message.ts})
                            }
                            None => serde_json::json!({"ok": false, "error": "message_not_found"}),
                        },
                        _ => serde_json::json!({"ok": false, "error": "unknown_method"}),
                    }
                };
                warp::reply::json(&answer).into_response()
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        SlackApiStandin { api_url, calls, messages }
    }

    /// Every call so far: the method and its JSON body.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// The channel's messages, oldest first.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.messages.lock().unwrap().clone()
    }
}
