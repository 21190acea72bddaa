//! Configuration in two phases: YAML is read strictly (unknown keys are errors, reported with
//! file:line:column by the parser), then validated into a [`Config`], collecting every problem
//! at once. Nothing is bound or opened before this succeeds.
//!
//! One file per section, each with its raw (YAML) form, its defaults and its validator:
//! `http`, `storage`, `ingest` (`limits`, `statsd`, `otlp`), `export`, `notify` (with
//! `email`), `oncall` (`people`, `schedules`), `routing` (`routes`, `policies`) and
//! `heartbeat`. `duration` and `secrets` are the value types they share. This file puts the
//! sections together into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::aggregate::AggregatorSettings;
use crate::alert::routing::Routing;
use crate::export::ExportSettings;
use crate::ingest::limits::Limits;
use crate::notify::settings::{NotifierConfig, NotifierKind};
use crate::oncall::Schedule;
use crate::secret::Secret;
use crate::store::tiers::Tier;

mod duration;
mod email;
mod export;
mod heartbeat;
mod http;
mod ingest;
mod notify;
mod oncall;
mod query;
mod routing;
mod secrets;
mod storage;

pub use self::duration::{Delay, Seconds};
pub use self::heartbeat::HeartbeatConfig;
pub use self::http::HttpLimits;
use self::secrets::read_secret;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: String, line: usize, column: usize, message: String },
    #[error("{path}: {}", .problems.join(&format!("\n{path}: ")))]
    Invalid { path: String, problems: Vec<String> },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    http: http::RawHttp,
    statsd: ingest::RawStatsd,
    storage: storage::RawStorage,
    limits: ingest::RawLimits,
    rules: RawRules,
    notifiers: std::collections::BTreeMap<String, notify::RawNotifier>,
    routes: Vec<routing::RawRoute>,
    policies: std::collections::BTreeMap<String, routing::RawPolicy>,
    people: std::collections::BTreeMap<String, oncall::RawPerson>,
    schedules: std::collections::BTreeMap<String, oncall::RawSchedule>,
    export: export::RawExport,
    otlp: ingest::RawOtlp,
    heartbeat: Option<heartbeat::RawHeartbeat>,
    query: query::RawQuery,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    paths: Vec<String>,
}

impl Default for RawRules {
    fn default() -> RawRules {
        RawRules { paths: vec!["./rules/*.yaml".into()] }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_listen: SocketAddr,
    pub http_limits: HttpLimits,
    pub push_token: Option<Secret>,
    pub api_token: Option<Secret>,
    /// Base of links in notifications (acknowledge); default `http://<bound address>`.
    pub public_url: Option<String>,
    pub statsd_listen: Option<SocketAddr>,
    pub statsd_receive_buffer: usize,
    pub db_path: PathBuf,
    /// Memory for rollups the database could not take yet; pushes past it get 503.
    pub max_unflushed_bytes: u64,
    /// Disk space kept in reserve beside the database for a final flush on a full disk.
    pub ballast_bytes: u64,
    /// Whether perfwatch records its own metrics (for `rules/perfwatch-self.yaml`).
    pub record_own_metrics: bool,
    pub aggregator: AggregatorSettings,
    pub tiers: Vec<Tier>,
    pub limits: Limits,
    pub rule_paths: Vec<String>,
    /// What /metrics re-exports of the pushed metrics.
    pub export: ExportSettings,
    /// Which OTLP resource attributes become which labels.
    pub otlp_labels: crate::ingest::otlp::ResourceLabels,
    /// Named notifiers; without any, notifications go to the log.
    pub notifiers: std::collections::BTreeMap<String, NotifierConfig>,
    /// Where alerts go; with nothing configured, every alert to every notifier.
    pub routing: Routing,
    /// The dead man's switch, if configured.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Bounds of one PromQL query.
    pub query_limits: crate::query::promql::Limits,
}

impl Config {
    /// The embedded defaults: loopback listeners, `./perfwatch.db` (or under
    /// `$STATE_DIRECTORY` when systemd sets it).
    pub fn defaults() -> Config {
        validate(RawConfig::default(), "<defaults>").expect("the defaults are valid")
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses YAML `text`; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        validate(parse_raw(text, origin)?, origin)
    }

    /// Only the `people:` and `schedules:` of the config file at `path` (for `perfwatch
    /// oncall`, which must not need the daemon's secrets); the whole file is still read strictly.
    pub fn load_schedules(path: &Path) -> Result<std::collections::BTreeMap<String, Schedule>, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let origin = path.display().to_string();
        let raw = parse_raw(&text, &origin)?;
        let mut problems = Vec::new();
        let people = oncall::validate_people(raw.people, &mut problems);
        let schedules = oncall::validate_schedules(raw.schedules, &people, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path: origin, problems });
        }
        Ok(schedules)
    }
}

fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    serde_yaml_ng::from_str(text).map_err(|err| {
        let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
        ConfigError::Syntax { path: origin.to_owned(), line, column, message: strip_location(&err.to_string()) }
    })
}

/// serde_yaml_ng appends " at line L column C"; we print the location first instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_owned(),
        None => message.to_owned(),
    }
}

/// Every section checked by its own validator; all problems are reported at once.
fn validate(raw: RawConfig, origin: &str) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let http = http::validate(raw.http, &mut problems);
    let storage = storage::validate(raw.storage, &mut problems);
    let limits = ingest::validate_limits(raw.limits, &mut problems);
    let export = export::validate(raw.export, &mut problems);
    let mut notifiers = notify::validate(raw.notifiers, &mut problems);
    if notifiers.is_empty() {
        notifiers = notify::default_log();
    }
    let people = oncall::validate_people(raw.people, &mut problems);
    let schedules = oncall::validate_schedules(raw.schedules, &people, &mut problems);
    let routing = routing::validate(raw.routes, raw.policies, &reach(&notifiers), schedules, &mut problems);
    let heartbeat = heartbeat::validate(raw.heartbeat, &mut problems);
    let query_limits = query::validate(raw.query, http.limits.request_timeout, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid { path: origin.to_owned(), problems });
    }
    Ok(Config {
        http_listen: http.listen,
        http_limits: http.limits,
        push_token: http.push_token,
        api_token: http.api_token,
        public_url: http.public_url,
        statsd_listen: raw.statsd.listen,
        statsd_receive_buffer: raw.statsd.receive_buffer_bytes,
        db_path: storage.db_path,
        max_unflushed_bytes: storage.max_unflushed_bytes,
        ballast_bytes: storage.ballast_bytes,
        record_own_metrics: storage.record_own_metrics,
        aggregator: AggregatorSettings {
            interval_s: storage.interval_s,
            lateness_intervals: storage.lateness_intervals,
            future_intervals: storage.future_intervals,
            max_series: limits.max_series,
            idle_after_s: limits.series_idle_after_s,
            cumulative_idle_after_s: limits.cumulative_idle_after_s,
        },
        tiers: storage.tiers,
        limits: limits.push,
        rule_paths: raw.rules.paths,
        export,
        otlp_labels: crate::ingest::otlp::ResourceLabels(raw.otlp.resource_labels),
        notifiers,
        routing,
        heartbeat,
        query_limits,
    })
}

/// What each notifier can reach people on, for routes that page people.
fn reach(
    notifiers: &std::collections::BTreeMap<String, NotifierConfig>,
) -> std::collections::BTreeMap<String, routing::Reach> {
    notifiers
        .iter()
        .map(|(name, n)| {
            let reach = match n.kind {
                NotifierKind::Slack(_) => routing::Reach { slack: true, email: false },
                NotifierKind::Email(_) => routing::Reach { slack: false, email: true },
                _ => routing::Reach::default(),
            };
            (name.clone(), reach)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::settings::{SlackTarget, SmtpTls};

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = Config::parse("", "c.yaml").unwrap();
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:9464");
        assert_eq!(config.statsd_listen.unwrap().to_string(), "127.0.0.1:8125");
        assert_eq!(config.aggregator.interval_s, 10);
        assert_eq!(config.tiers.len(), 4);
    }

    #[test]
    fn unknown_keys_report_line_and_column() {
        let err = Config::parse("storage:\n  interval: 10s\n  retension: 2d\n", "c.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.yaml:3:"), "{text}");
        assert!(text.contains("unknown field `retension`"), "{text}");
    }

    #[test]
    fn bad_durations_report_where() {
        let err = Config::parse("storage:\n  interval: ten\n", "c.yaml").unwrap_err().to_string();
        assert!(err.starts_with("c.yaml:2:"), "{err}");
        assert!(err.contains("is not a positive duration"), "{err}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let yaml = "http:\n  listen: 0.0.0.0:9464\nstorage:\n  interval: 7s\n  tiers:\n    - {resolution: 7s, retention: 1d}\n    - {resolution: 10s, retention: 1d}\n";
        let err = Config::parse(yaml, "c.yaml").unwrap_err().to_string();
        assert!(err.contains("not loopback"), "{err}");
        assert!(err.contains("multiple of the tier before"), "{err}");
        assert!(err.contains("divide a day"), "{err}");
    }

    #[test]
    fn notifiers_read_their_secret_and_refuse_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hook");
        std::fs::write(&secret, "https://hooks.slack.com/services/T/B/X\n").unwrap();
        let yaml = format!(
            "notifiers:\n  platform-slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 2\n  stdout:\n    type: log\n",
            secret.display()
        );
        let config = Config::parse(&yaml, "n.yaml").unwrap();
        let slack = &config.notifiers["platform-slack"];
        assert_eq!(
            slack.kind,
            NotifierKind::Slack(SlackTarget::Webhook {
                url: Secret::new("https://hooks.slack.com/services/T/B/X".into())
            })
        );
        assert_eq!(slack.delivery.min_interval_ms, 500);
        assert_eq!(config.notifiers["stdout"].kind, NotifierKind::Log);

        let typo = Config::parse("notifiers:\n  s:\n    type: slack\n    webhok_url_file: /x\n", "t.yaml").unwrap_err();
        assert!(typo.to_string().contains("t.yaml:4:") && typo.to_string().contains("webhok_url_file"), "{typo}");
        let missing = Config::parse("notifiers:\n  s:\n    type: slack\n", "m.yaml").unwrap_err();
        assert!(missing.to_string().contains("notifiers.s: set either webhook_url_file/_env"), "{missing}");
        let hook = Config::parse(
            "notifiers:\n  scaler:\n    type: webhook\n    url: https://scaler.internal/hook\n    headers: {X-Team: platform}\n",
            "w.yaml",
        )
        .unwrap();
        assert!(matches!(&hook.notifiers["scaler"].kind,
            NotifierKind::Webhook { url, hmac_secret: None, headers } if url == "https://scaler.internal/hook" && headers["X-Team"] == "platform"));
        let no_url = Config::parse("notifiers:\n  h:\n    type: webhook\n", "u.yaml").unwrap_err();
        assert!(no_url.to_string().contains("notifiers.h.url: give the URL"), "{no_url}");
        let mixed = Config::parse("notifiers:\n  h:\n    type: log\n    url: https://x\n", "x.yaml").unwrap_err();
        assert!(
            mixed
                .to_string()
                .contains("notifiers.h.url: only a webhook notifier takes this key (this one is type: log)"),
            "{mixed}"
        );
        let token = dir.path().join("bot-token");
        std::fs::write(&token, "xoxb-1-2\n").unwrap();
        let bot = format!(
            "notifiers:\n  s:\n    type: slack\n    bot_token_file: {}\n    channel: C0PLATFORM\n",
            token.display()
        );
        let bot = Config::parse(&bot, "b.yaml").unwrap();
        assert!(matches!(&bot.notifiers["s"].kind,
            NotifierKind::Slack(SlackTarget::Bot { channel, api_url, .. }) if channel == "C0PLATFORM" && api_url == "https://slack.com/api"));
        let both = format!(
            "notifiers:\n  s:\n    type: slack\n    bot_token_file: {}\n    webhook_url_file: {}\n",
            token.display(),
            secret.display()
        );
        let both = Config::parse(&both, "2.yaml").unwrap_err().to_string();
        assert!(
            both.contains("set either webhook_url_file/_env (an incoming webhook) or bot_token_file/_env"),
            "{both}"
        );
        let no_channel = format!("notifiers:\n  s:\n    type: slack\n    bot_token_file: {}\n", secret.display());
        let no_channel = Config::parse(&no_channel, "c.yaml").unwrap_err().to_string();
        assert!(no_channel.contains("a Slack bot token starts with xoxb-"), "{no_channel}");
        assert!(no_channel.contains("notifiers.s.channel: name the channel"), "{no_channel}");
        let clear = format!(
            "notifiers:\n  s:\n    type: slack\n    bot_token_file: {}\n    channel: C1\n    api_url: http://slack.example\n",
            token.display()
        );
        let clear = Config::parse(&clear, "h.yaml").unwrap_err().to_string();
        assert!(clear.contains("api_url must start with https:// (plain http:// only to this machine)"), "{clear}");
        let kind = Config::parse("notifiers:\n  s:\n    type: pager\n", "k.yaml").unwrap_err();
        assert!(kind.to_string().contains("k.yaml:3:") && kind.to_string().contains("slack"), "{kind}");
    }

    #[test]
    fn email_notifiers_check_the_relay_addresses_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("smtp-password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let yaml = format!(
            "notifiers:\n  mail:\n    type: email\n    smtp:\n      host: smtp.example.com\n      username: perfwatch\n      password_file: {}\n    from: 'perfwatch <alerts@wedding.example>'\n    to: [oncall@wedding.example]\n    cc: ['SRE <sre@wedding.example>']\n",
            password.display()
        );
        let config = Config::parse(&yaml, "e.yaml").unwrap();
        let NotifierKind::Email(mail) = &config.notifiers["mail"].kind else { panic!("an email notifier") };
        assert_eq!((mail.host.as_str(), mail.port, mail.tls), ("smtp.example.com", 587, SmtpTls::Starttls));
        assert_eq!(mail.credentials, Some(("perfwatch".to_owned(), Secret::new("s3cret".into()))));
        assert_eq!(mail.from.email.to_string(), "alerts@wedding.example");
        assert_eq!(mail.cc[0].name.as_deref(), Some("SRE"));
        let implicit = Config::parse(
            "notifiers:\n  m:\n    type: email\n    smtp: {host: relay, tls: tls}\n    from: a@b.c\n    to: [d@e.f]\n",
            "i.yaml",
        )
        .unwrap();
        assert!(matches!(&implicit.notifiers["m"].kind, NotifierKind::Email(m) if m.port == 465));

        let bad = format!(
            "notifiers:\n  m:\n    type: email\n    smtp:\n      host: relay\n      tls: none\n      username: u\n      password_file: {}\n      ca_file: {}\n    from: not an address\n    to: [ok@x.y, 'bad@']\n    url: https://x\n",
            password.display(),
            password.display()
        );
        let message = Config::parse(&bad, "b.yaml").unwrap_err().to_string();
        for expected in [
            "notifiers.m.smtp: AUTH with tls: none would send the password in clear",
            "notifiers.m.smtp.ca_file",
            "not a PEM certificate",
            "notifiers.m.from: \"not an address\" is not an email address",
            "notifiers.m.to: \"bad@\" is not an email address",
            "notifiers.m.url: only a webhook notifier takes this key (this one is type: email)",
            "notifiers.m.smtp.ca_file does nothing with tls: none",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
        let port = Config::parse(
            "notifiers:\n  m: {type: email, smtp: {host: relay, port: 0}, from: a@b.c, to: [d@e.f]}\n",
            "p.yaml",
        );
        assert!(port.unwrap_err().to_string().contains("smtp.port: 0 is not a port"));
        let typo = Config::parse("notifiers:\n  m:\n    type: email\n    smtp: {host: relay, prot: 25}\n", "t.yaml");
        assert!(typo.unwrap_err().to_string().contains("t.yaml:4:"));
        let empty =
            Config::parse("notifiers:\n  m:\n    type: email\n    smtp: {host: relay}\n    from: a@b.c\n", "n.yaml");
        assert!(empty.unwrap_err().to_string().contains("notifiers.m.to: list at least one recipient"));
        let no_smtp = Config::parse("notifiers:\n  m:\n    type: email\n    to: [a@b.c]\n", "s.yaml");
        assert!(no_smtp.unwrap_err().to_string().contains("needs `smtp:`"));
    }

    #[test]
    fn people_schedules_and_policy_windows_are_checked() {
        let good = "notifiers:\n  stdout: {type: log}\n  mail: {type: email, smtp: {host: relay}, from: a@b.c, to: [d@e.f]}\npeople:\n  ana: {name: Ana, slack: U012ABCDEF, email: ana@wedding.example}\n  ben: {email: ben@wedding.example}\nschedules:\n  platform:\n    time_zone: Europe/London\n    rotation: [ana, ben]\n    start: 2026-11-02\n    shift: 48h\n    overrides: [{person: ben, from: '2026-12-24 18:00', until: '2026-12-27T09:00:00Z'}]\nroutes:\n  - policy: page\npolicies:\n  page:\n    steps: [{after: 0s, notify: [stdout, mail], oncall: [platform, platform/next]}]\n    repeat: 30m\n    windows:\n      - name: event-days\n        time_zone: Europe/London\n        days: [fri, sat]\n        hours: ['10:00-23:00']\n        steps: [{after: 0s, notify: [stdout]}]\n        repeat: 5m\n      - name: nights\n        time_zone: Europe/London\n        hours: ['22:00-06:00']\n        steps: [{after: 0s, notify: [stdout]}]\n";
        let config = Config::parse(good, "good.yaml").unwrap();
        let schedule = &config.routing.schedules["platform"];
        assert_eq!(schedule.shift, crate::oncall::ShiftLength::Days(2), "48h is two local days");
        assert_eq!(schedule.first_handoff.to_string(), "2026-11-02T09:00:00", "handoff defaults to 09:00");
        assert_eq!(schedule.overrides[0].from.to_string(), "2026-12-24T18:00:00Z", "local GMT time");
        let page = &config.routing.policies["page"];
        assert_eq!(
            page.steps[0].oncall[1],
            crate::alert::routing::OnCallTarget { schedule: "platform".into(), next: true }
        );
        assert_eq!(page.windows[0].repeat_s, Some(300));
        assert_eq!(page.windows[0].window.days, [false, false, false, false, true, true, false]);
        assert_eq!(page.windows[1].repeat_s, Some(1800), "a window without repeat repeats as its policy");

        let unreachable = "notifiers:\n  stdout: {type: log}\n  mail: {type: email, smtp: {host: relay}, from: a@b.c, to: [d@e.f]}\npeople:\n  ana: {slack: U012ABCDEF}\nschedules:\n  solo: {time_zone: UTC, rotation: [ana], start: 2026-11-02, shift: 1w}\nroutes:\n  - policy: page\npolicies:\n  page:\n    steps:\n      - {after: 0s, notify: [stdout], oncall: [solo]}\n      - {after: 5m, notify: [mail], oncall: [solo/next]}\n";
        let message = Config::parse(unreachable, "u.yaml").unwrap_err().to_string();
        for expected in [
            "policies.page.steps[0].oncall: none of the step's notifiers (stdout) can reach a person",
            "policies.page.steps[1].oncall: people.ana in schedule solo has no email address",
            "policies.page.steps[1].oncall: solo/next: the rotation has nobody besides the on-call person",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
        let no_zone = "policies:\n  p:\n    steps: [{after: 0s, notify: [log]}]\n    windows: [{name: w, steps: [{after: 0s, notify: [log]}]}]\nroutes: [{policy: p}]\n";
        let message = Config::parse(no_zone, "z.yaml").unwrap_err().to_string();
        assert!(message.contains("z.yaml:4:") && message.contains("missing field `time_zone`"), "{message}");

        let bad = "notifiers:\n  stdout: {type: log}\npeople:\n  ana: {slack: ana}\n  nobody: {name: No One}\nschedules:\n  platform:\n    time_zone: Mars/Olympus\n    rotation: [ana, zed]\n    start: 2026-13-01\n    handoff: '9am'\n    shift: 5h\n  empty:\n    time_zone: UTC\n    rotation: []\n    start: 2026-11-02\n    shift: 1w\nroutes:\n  - policy: page\npolicies:\n  page:\n    steps: [{after: 0s, notify: [stdout], oncall: [secondary, platform/later]}]\n    windows:\n      - {name: w, time_zone: UTC, days: [caturday], hours: ['23:00'], steps: [{after: 0s, notify: [stdout]}]}\n";
        let message = Config::parse(bad, "bad.yaml").unwrap_err().to_string();
        for expected in [
            "people.ana.slack: \"ana\" is not a Slack member ID",
            "people.nobody: give a slack member ID, an email address or both",
            "schedules.platform.time_zone: \"Mars/Olympus\" is not a time zone name",
            "schedules.platform.rotation: unknown person \"zed\"; people: ana, nobody",
            "schedules.platform.start: \"2026-13-01\" is not a date",
            "schedules.platform.handoff: \"9am\" is not a time of day",
            "schedules.platform.shift: \"5h\" is not a shift length",
            "schedules.empty.rotation: list the people who take turns",
            "policies.page.steps[0].oncall: unknown schedule \"secondary\"",
            "policies.page.steps[0].oncall: \"platform/later\": write SCHEDULE or SCHEDULE/next",
            "policies.page.windows[0].days: \"caturday\" is not a weekday",
            "policies.page.windows[0].hours: \"23:00\" is not a range",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
    }

    #[test]
    fn routes_and_policies_are_checked_against_each_other_and_the_notifiers() {
        let config = Config::parse("", "none.yaml").unwrap();
        assert_eq!(config.routing.routes.len(), 1, "a catch-all route by default");
        assert_eq!(config.routing.policies["default"].steps[0].notify, vec!["log".to_owned()]);

        let good = "notifiers:\n  stdout: {type: log}\nroutes:\n  - match: '{severity=\"critical\"}'\n    policy: page\n    group_wait: 10s\n  - policy: page\npolicies:\n  page:\n    steps:\n      - {after: 0s, notify: [stdout]}\n      - {after: 10m, notify: [stdout]}\n    repeat: 30m\n";
        let config = Config::parse(good, "good.yaml").unwrap();
        assert_eq!(config.routing.routes.len(), 2);
        assert_eq!(config.routing.routes[0].group_wait_s, 10);
        assert_eq!(config.routing.policies["page"].repeat_s, Some(1800));

        let bad = "notifiers:\n  stdout: {type: log}\nroutes:\n  - policy: page\n  - match: '{a=\"b\"}'\n    policy: pager\npolicies:\n  page:\n    steps:\n      - {after: 5m, notify: [stdout]}\n      - {after: 1m, notify: [slack]}\n";
        let message = Config::parse(bad, "bad.yaml").unwrap_err().to_string();
        for expected in [
            "routes[0]: only the last route may match everything",
            "routes[1].policy: unknown policy \"pager\"",
            "policies.page.steps[1].after must be later",
            "policies.page.steps[1].notify: unknown notifier \"slack\"; configured: stdout",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
