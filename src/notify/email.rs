//! Email over SMTP (lettre, async, rustls): plain, STARTTLS or implicit TLS, optional AUTH.
//! Each mail is multipart text + HTML with a `Message-ID` derived from the notification id,
//! so a resend after a crash is recognisably the same mail, and follow-ups (escalated, acked,
//! resolved) carry `In-Reply-To`/`References` to the first mail of their group so they thread
//! under it. `Auto-Submitted: auto-generated` keeps auto-responders quiet.
//!
//! The relay's answer decides what happens next: accepted is delivered; a 5xx (recipient
//! unknown, authentication refused) will not change by retrying; 4xx, timeouts, refused
//! connections and TLS failures are retried with back-off.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Outcome;
use super::message::{AlertSummary, Message};
use super::settings::{EmailConfig, SmtpTls};
use crate::clock;
use crate::html::escape;

/// Alerts listed in one mail; the rest are counted.
const MAX_ALERTS_SHOWN: usize = 50;

/// A connection pool to one relay and the addresses to use.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
}

impl Mailer {
    pub fn new(config: &EmailConfig, timeout: Duration) -> Result<Mailer, lettre::transport::smtp::Error> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(config.port)
            .timeout(Some(timeout));
        if config.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.ca_pem {
                params = params.add_root_certificate(Certificate::from_pem(pem)?);
            }
            let params = params.build_rustls()?;
            builder =
                builder.tls(if config.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: config.from.clone(),
            to: config.to.clone(),
            cc: config.cc.clone(),
        })
    }

    pub async fn send(&self, id: &str, message: &Message) -> Outcome {
        let outcome = self.send_to(id, message, true).await;
        // A refused on-call address must not cost the page to everyone else: the configured
        // recipients get it, and the refusal is logged with where to fix it.
        if let Outcome::Failed(error) = &outcome
            && message.oncall.iter().any(|m| m.person.email.is_some())
        {
            let people: Vec<String> = message
                .oncall
                .iter()
                .filter_map(|m| Some(format!("people.{}.email ({})", m.person.id, m.person.email.as_ref()?)))
                .collect();
            let retried = self.send_to(id, message, false).await;
            if retried == Outcome::Delivered {
                tracing::error!(%error, people = %people.join(", "),
                    "the relay refused a mail that included on-call people; sent it to the configured recipients only; check those addresses");
            }
            return retried;
        }
        outcome
    }

    async fn send_to(&self, id: &str, message: &Message, with_oncall: bool) -> Outcome {
        let mail = match self.compose(id, message, with_oncall) {
            Ok(mail) => mail,
            Err(err) => return Outcome::Failed(format!("cannot compose the mail: {err}")),
        };
        match self.transport.send(mail).await {
            Ok(_) => Outcome::Delivered,
            Err(err) => classify(&err),
        }
    }

    /// The mail for notification `id`, to the on-call people it names too if `with_oncall`.
    fn compose(&self, id: &str, message: &Message, with_oncall: bool) -> Result<lettre::Message, lettre::error::Error> {
        let domain = self.from.email.domain();
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(message.title.clone())
            .message_id(Some(format!("<{id}@{domain}>")))
            .date_now()
            .user_agent(concat!("perfwatch/", env!("CARGO_PKG_VERSION")).to_owned())
            .raw_header(header("Auto-Submitted", "auto-generated"))
            .raw_header(header("X-Perfwatch-Notification", id));
        if message.severity.as_deref() == Some("critical") && message.pages() {
            builder = builder.raw_header(header("Importance", "high")).raw_header(header("X-Priority", "1"));
        }
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        for cc in &self.cc {
            builder = builder.cc(cc.clone());
        }
        // The on-call people the message names get it too.
        let configured: Vec<&lettre::Address> = self.to.iter().chain(&self.cc).map(|m| &m.email).collect();
        let mut added: Vec<lettre::Address> = Vec::new();
        for mention in message.oncall.iter().filter(|_| with_oncall) {
            let Some(address) = mention.person.email.as_deref().and_then(|e| e.parse::<lettre::Address>().ok()) else {
                continue;
            };
            if !configured.contains(&&address) && !added.contains(&address) {
                added.push(address.clone());
                builder = builder.to(Mailbox::new(Some(mention.person.name.clone()), address));
            }
        }
        if let Some(thread) = &message.thread {
            let first = format!("<{thread}@{domain}>");
            builder = builder.in_reply_to(first.clone()).references(first);
        }
        builder.multipart(MultiPart::alternative_plain_html(text(id, message), html(id, message)))
    }
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
}

/// What the relay's refusal means for this notification.
fn classify(err: &lettre::transport::smtp::Error) -> Outcome {
    let code = err.status().map(|c| c.to_string());
    if err.is_permanent() {
        let hint = match code.as_deref() {
            Some("535" | "534") => "the relay refused the login; check smtp.username and the password",
            Some("530") => "the relay wants a login or TLS first; check smtp.username and smtp.tls",
            Some("550" | "551" | "552" | "553" | "554") => {
                "a recipient or the sender was refused; check from, to and cc"
            }
            _ => "the relay will not take this mail as sent",
        };
        return Outcome::Failed(format!("the SMTP relay refused the mail ({err}): {hint}"));
    }
    // A refused certificate surfaces as a connection error whose cause names it.
    if err.is_tls() || err.to_string().contains("certificate") {
        return Outcome::Retry(format!(
            "TLS with the SMTP relay failed ({err}); if it uses its own CA, set smtp.ca_file"
        ));
    }
    Outcome::Retry(format!(
        "SMTP delivery failed ({err}); check smtp.host, smtp.port and smtp.tls (starttls is usually port 587, tls 465)"
    ))
}

/// The plain-text part.
fn text(id: &str, message: &Message) -> String {
    let mut out = format!("{}\n\n", message.title);
    if let Some(text) = &message.text {
        out.push_str(text);
        out.push_str("\n\n");
    }
    let oncall = message.oncall_lines(|p| p.name.clone());
    if !oncall.is_empty() {
        out.push_str(&oncall.join("\n"));
        out.push_str("\n\n");
    }
    for alert in message.alerts.iter().take(MAX_ALERTS_SHOWN) {
        out.push_str(&format!("{} — {}", alert.rule, alert.state));
        if let Some(severity) = &alert.severity {
            out.push_str(&format!(" ({severity})"));
        }
        out.push('\n');
        for (name, value) in details(alert) {
            out.push_str(&format!("  {name}: {value}\n"));
        }
        out.push('\n');
    }
    if message.alerts.len() > MAX_ALERTS_SHOWN {
        out.push_str(&format!("…and {} more\n\n", message.alerts.len() - MAX_ALERTS_SHOWN));
    }
    for (label, url) in message.ordered_links() {
        out.push_str(&format!("{label}: {url}\n"));
    }
    out.push_str(&format!("\n-- \nperfwatch notification {id}\n"));
    out
}

/// The HTML part: the same content, self-contained (inline styles, no images).
fn html(id: &str, message: &Message) -> String {
    let mut body = format!(
        "<div style=\"border-left:6px solid {};padding:0 0 0 12px\"><h2 style=\"margin:0 0 8px\">{}</h2>",
        message.colour(),
        escape(&message.title)
    );
    if let Some(text) = &message.text {
        body.push_str(&format!("<p>{}</p>", escape(text)));
    }
    for line in message.oncall_lines(|p| p.name.clone()) {
        body.push_str(&format!("<p><strong>{}</strong></p>", escape(&line)));
    }
    for alert in message.alerts.iter().take(MAX_ALERTS_SHOWN) {
        let severity = alert.severity.as_deref().map(|s| format!(" ({})", escape(s))).unwrap_or_default();
        let rule = match &alert.url {
            Some(url) => format!("<a href=\"{}\">{}</a>", escape(url), escape(&alert.rule)),
            None => escape(&alert.rule),
        };
        body.push_str(&format!(
            "<h3 style=\"margin:16px 0 4px\">{rule} — {}{severity}</h3><table style=\"border-collapse:collapse\">",
            escape(&alert.state)
        ));
        for (name, value) in details(alert) {
            body.push_str(&format!(
                "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th><td>{}</td></tr>",
                escape(name),
                escape(&value)
            ));
        }
        body.push_str("</table>");
    }
    if message.alerts.len() > MAX_ALERTS_SHOWN {
        body.push_str(&format!("<p>…and {} more</p>", message.alerts.len() - MAX_ALERTS_SHOWN));
    }
    let links: Vec<String> = message
        .ordered_links()
        .map(|(label, url)| {
            format!(
                "<a href=\"{}\" style=\"display:inline-block;margin:12px 8px 0 0;padding:8px 14px;border:1px solid #888;\
                 border-radius:4px;text-decoration:none\">{}</a>",
                escape(url),
                escape(label)
            )
        })
        .collect();
    body.push_str(&format!("<p>{}</p></div>", links.join("")));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:system-ui,sans-serif\">{body}\
         <p style=\"color:#777;font-size:12px\">perfwatch notification {}</p></body></html>",
        escape(&message.title),
        escape(id)
    )
}

/// An alert's rows: value, since, labels, then annotations.
fn details(alert: &AlertSummary) -> Vec<(&str, String)> {
    let mut rows = vec![("Value", alert.value_text())];
    if let Some(url) = &alert.url {
        rows.push(("Alert page", url.clone()));
    }
    if let Some(since) = alert.since_s {
        rows.push(("Since", clock::rfc3339(since)));
    }
    let labels: Vec<String> =
        alert.labels.iter().filter(|(k, _)| k.as_str() != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
    if !labels.is_empty() {
        rows.push(("Labels", labels.join(", ")));
    }
    for (name, value) in &alert.annotations {
        let name = match name.as_str() {
            "summary" => "Summary",
            "description" => "Description",
            other => other,
        };
        rows.push((name, value.clone()));
    }
    rows
}
