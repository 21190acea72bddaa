//! A real SMTP server process for the email tests: `smtp_server.py` (aiosmtpd) on loopback,
//! plain, STARTTLS or implicit TLS with a certificate from a CA the test makes (and perfwatch
//! is told to trust), optionally requiring AUTH. It reports every mail it accepted as JSON.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::{python_with, wait_for};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_server.py");

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    mails: Arc<Mutex<Vec<Value>>>,
}

/// A CA and a certificate it issued for 127.0.0.1, as PEM files in `dir`.
pub struct TestCa {
    /// What perfwatch's `smtp.ca_file` points at.
    pub ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "perfwatch test relay CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        let files = TestCa {
            ca_file: dir.join("relay-ca.pem"),
            cert_file: dir.join("relay-cert.pem"),
            key_file: dir.join("relay-key.pem"),
        };
        std::fs::write(&files.ca_file, ca.pem()).unwrap();
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }
}

impl SmtpServer {
    /// Starts the server with `args` (see smtp_server.py); `None` when aiosmtpd is missing
    /// and interop tests may be skipped.
    pub fn start(args: &[&str]) -> Option<SmtpServer> {
        let python = python_with("aiosmtpd", "aiosmtpd")?;
        Some(SmtpServer::start_with(&python, args))
    }

    /// The same with TLS (`starttls` or `tls`) using `ca`'s certificate.
    pub fn start_tls(mode: &str, ca: &TestCa, args: &[&str]) -> Option<SmtpServer> {
        let mut all =
            vec!["--tls", mode, "--cert", ca.cert_file.to_str().unwrap(), "--key", ca.key_file.to_str().unwrap()];
        all.extend_from_slice(args);
        SmtpServer::start(&all)
    }

    fn start_with(python: &str, args: &[&str]) -> SmtpServer {
        let mut child = Command::new(python)
            .args(["-W", "ignore", "-u", SCRIPT])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first line names the port; it comes at once or the server failed.
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first.strip_prefix("listening ").and_then(|p| p.parse().ok());
        let Some(port) = port else { panic!("the SMTP server did not start: {first:?}") };
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sink = mails.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(serde_json::from_str(&line).expect("the server prints JSON"));
            }
        });
        SmtpServer { port, child, mails }
    }

    pub fn mails(&self) -> Vec<Value> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until at least `n` mails came.
    pub async fn wait_for_mails(&self, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} mail(s)"), Duration::from_secs(30), || async {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
        .await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mail's header, as the server decoded it.
pub fn header<'a>(mail: &'a Value, name: &str) -> &'a str {
    mail["headers"][name].as_str().unwrap_or_else(|| panic!("no {name} header in {}", mail["headers"]))
}
