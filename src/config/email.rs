//! The `email` notifier's settings: the SMTP relay (host, port, TLS mode, optional AUTH and an
//! extra CA to trust) and the addresses. Everything is checked here, so `perfwatch check`
//! catches a bad address or an unreadable certificate before the daemon starts.
//!
//! ```yaml
//! notifiers:
//!   oncall-mail:
//!     type: email
//!     smtp:
//!       host: smtp.example.com
//!       tls: starttls            # none | starttls (default) | tls (implicit, port 465)
//!       username: perfwatch
//!       password_file: /etc/perfwatch/smtp-password
//!     from: "perfwatch <perfwatch@example.com>"
//!     to: [oncall@example.com]
//!     cc: [sre-leads@example.com]
//! ```

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::Deserialize;

use super::read_secret;
use crate::notify::settings::{EmailConfig, SmtpTls};
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: String,
    port: Option<u16>,
    #[serde(default)]
    tls: SmtpTls,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// A PEM certificate to trust besides the system's (a relay with its own CA).
    ca_file: Option<PathBuf>,
}

pub(super) fn validate(
    what: &str,
    smtp: Option<RawSmtp>,
    from: Option<&str>,
    to: &[String],
    cc: &[String],
    problems: &mut Vec<String>,
) -> Option<EmailConfig> {
    let Some(smtp) = smtp else {
        problems.push(format!("{what}: an email notifier needs `smtp:` with at least `host:`"));
        return None;
    };
    let before = problems.len();
    if smtp.host.trim().is_empty() {
        problems.push(format!("{what}.smtp.host: name the SMTP relay"));
    }
    let credentials = credentials(what, &smtp, problems);
    if smtp.port == Some(0) {
        problems.push(format!("{what}.smtp.port: 0 is not a port; leave it out for the tls mode's default"));
    }
    if smtp.ca_file.is_some() && smtp.tls == SmtpTls::None {
        problems.push(format!("{what}.smtp.ca_file does nothing with tls: none; use tls: starttls or tls"));
    }
    if credentials.is_some() && smtp.tls == SmtpTls::None {
        problems.push(format!(
            "{what}.smtp: AUTH with tls: none would send the password in clear; use tls: starttls or tls"
        ));
    }
    let ca_pem = smtp.ca_file.as_deref().and_then(|path| ca_pem(what, path, problems));
    let from = match from {
        Some(text) => mailbox(what, "from", text, problems),
        None => {
            problems.push(format!("{what}.from: give the sender, e.g. \"perfwatch <perfwatch@example.com>\""));
            None
        }
    };
    let to: Vec<Mailbox> = to.iter().filter_map(|t| mailbox(what, "to", t, problems)).collect();
    let cc: Vec<Mailbox> = cc.iter().filter_map(|t| mailbox(what, "cc", t, problems)).collect();
    if to.is_empty() && cc.is_empty() && problems.len() == before {
        problems.push(format!("{what}.to: list at least one recipient"));
    }
    if problems.len() > before {
        return None;
    }
    Some(EmailConfig {
        port: smtp.port.unwrap_or(smtp.tls.default_port()),
        host: smtp.host,
        tls: smtp.tls,
        credentials,
        ca_pem,
        from: from?,
        to,
        cc,
    })
}

/// The relay login: a username with a password from a file or the environment, or neither.
fn credentials(what: &str, smtp: &RawSmtp, problems: &mut Vec<String>) -> Option<(String, Secret)> {
    let password = read_secret(
        &format!("{what}.smtp.password"),
        smtp.password_file.as_deref(),
        smtp.password_env.as_deref(),
        problems,
    );
    match (smtp.username.clone(), password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        (Some(_), None) => {
            problems.push(format!("{what}.smtp: a username needs password_file or password_env"));
            None
        }
        (None, Some(_)) => {
            problems.push(format!("{what}.smtp: a password needs a username"));
            None
        }
    }
}

/// The CA certificates to trust besides the system's.
fn ca_pem(what: &str, path: &std::path::Path, problems: &mut Vec<String>) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(pem) if has_certificates(&pem) => Some(pem),
        Ok(_) => {
            problems.push(format!("{what}.smtp.ca_file {}: not a PEM certificate", path.display()));
            None
        }
        Err(err) => {
            problems.push(format!("{what}.smtp.ca_file {}: {err}", path.display()));
            None
        }
    }
}

fn mailbox(what: &str, field: &str, text: &str, problems: &mut Vec<String>) -> Option<Mailbox> {
    match text.parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(err) => {
            problems.push(format!("{what}.{field}: {text:?} is not an email address ({err})"));
            None
        }
    }
}

/// Whether `pem` holds certificates and nothing unreadable.
fn has_certificates(pem: &[u8]) -> bool {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    certs.is_ok_and(|certs| !certs.is_empty())
}
