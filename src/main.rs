//! The `perfwatch` command: the daemon and its companions (check, push, query, oncall, loadgen).
//! The only place that uses `anyhow`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use perfwatch::config::Config;
use perfwatch::{Daemon, shutdown};

/// mimalloc keeps freed memory for reuse: a query's large point vectors, freed and asked for
/// again, otherwise go back to the kernel and come back as fresh pages it must zero (about
/// 30 % of a range query's time under glibc's allocator in `cargo bench --bench promql
/// overview`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "perfwatch", version, about = "Performance metrics in, alerts out, in one process")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run {
        /// YAML config file; without it the embedded defaults apply.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate the config and rule files; print every mistake as file:line:column and exit 1.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Rule files to check (default: the config's rules.paths).
        files: Vec<String>,
    },
    /// Run rule unit tests (no daemon or database needed); exit 1 with a diff on any failure.
    TestRules {
        /// Test files (globs allowed).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Push one metric to a running perfwatch (for shell scripts and cron jobs).
    Push(perfwatch::cli::push::PushArgs),
    /// Query a running perfwatch and print a table.
    Query(perfwatch::cli::query::QueryArgs),
    /// List alerts (pending and firing by default) as a table.
    Alerts(perfwatch::cli::alerts::AlertsArgs),
    /// Acknowledge an alert (or --undo).
    Ack(perfwatch::cli::alerts::AckArgs),
    /// Add, list or end silences.
    #[command(subcommand)]
    Silence(perfwatch::cli::alerts::SilenceCommand),
    /// Judge a release: evaluate rules once against history; exit 1 if any would fire, 2 if
    /// the gate could not judge.
    Gate(perfwatch::cli::gate::GateArgs),
    /// Send a test notification through a configured notifier and wait for the verdict.
    #[command(subcommand)]
    Notify(perfwatch::cli::notify::NotifyCommand),
    /// Notifications in the outbox (newest first) with their status and last error.
    Notifications(perfwatch::cli::notify::NotificationsArgs),
    /// Who is on call (from the config's schedules), until when, and who is next.
    Oncall(perfwatch::cli::oncall::OncallArgs),
    /// Push a realistic web-platform workload at a chosen rate, with a progress line.
    Loadgen(perfwatch::loadgen::LoadgenArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config),
        Command::Check { config, files } => check(config, files),
        Command::TestRules { files } => test_rules(&files),
        Command::Push(args) => client(perfwatch::cli::push::run(args)),
        Command::Query(args) => client(perfwatch::cli::query::run(args)),
        Command::Gate(args) => gate(args),
        Command::Notify(command) => client(perfwatch::cli::notify::notify(command)),
        Command::Notifications(args) => client(perfwatch::cli::notify::list(args)),
        Command::Loadgen(args) => client(perfwatch::loadgen::run(args)),
        Command::Oncall(args) => oncall(args),
        Command::Alerts(args) => client(perfwatch::cli::alerts::list(args)),
        Command::Ack(args) => client(perfwatch::cli::alerts::ack(args)),
        Command::Silence(command) => client(perfwatch::cli::alerts::silence(command)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("perfwatch: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a client command and prints what it returned.
fn client<F>(command: F) -> anyhow::Result<std::process::ExitCode>
where
    F: std::future::Future<Output = Result<String, perfwatch::cli::CliError>>,
{
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let output = runtime.block_on(command)?;
    println!("{}", output.trim_end());
    Ok(std::process::ExitCode::SUCCESS)
}

/// The deploy gate: its own exit codes so a pipeline can tell "roll back" (1) from "the gate
/// is broken" (2).
fn gate(args: perfwatch::cli::gate::GateArgs) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match runtime.block_on(perfwatch::cli::gate::run(args)) {
        Ok(verdict) => {
            println!("{}", verdict.text);
            Ok(if verdict.pass { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
        }
        Err(err) => {
            eprintln!("perfwatch gate: {err}");
            Ok(std::process::ExitCode::from(2))
        }
    }
}

fn oncall(args: perfwatch::cli::oncall::OncallArgs) -> anyhow::Result<std::process::ExitCode> {
    let schedules = match &args.config {
        Some(path) => Config::load_schedules(path)?,
        None => Default::default(),
    };
    print!("{}", perfwatch::cli::oncall::report(&schedules, &args)?);
    Ok(std::process::ExitCode::SUCCESS)
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::defaults(),
    })
}

fn check(path: Option<PathBuf>, files: Vec<String>) -> anyhow::Result<std::process::ExitCode> {
    let config_name = path.as_ref().map_or("<defaults>".into(), |p| p.display().to_string());
    let config = match load_config(path.as_ref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    let patterns = if files.is_empty() { config.rule_paths.clone() } else { files };
    match perfwatch::rules::load_patterns(&patterns, Some(&config.routing.route_names())) {
        Ok(groups) => {
            let n_rules: usize = groups.iter().map(|g| g.rules.len()).sum();
            println!(
                "{config_name}: ok; {} rule groups, {n_rules} rules in {}; notifiers: {}; routes: {}; schedules: {}",
                groups.len(),
                patterns.join(" "),
                config.notifiers.keys().cloned().collect::<Vec<_>>().join(", "),
                config.routing.route_names().join(", "),
                if config.routing.schedules.is_empty() {
                    "none".to_owned()
                } else {
                    config.routing.schedules.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} mistake(s); nothing was changed", errors.len());
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

fn test_rules(patterns: &[String]) -> anyhow::Result<std::process::ExitCode> {
    let files = perfwatch::rules::rule_test::files(patterns).map_err(anyhow::Error::msg)?;
    let (mut n_passed, mut n_failed) = (0, 0);
    for file in files {
        match perfwatch::rules::rule_test::run_file(&file) {
            Ok(report) => {
                for line in &report.lines {
                    println!("{line}");
                }
                n_passed += report.n_passed;
                n_failed += report.n_failed;
            }
            Err(message) => {
                println!("FAIL {message}");
                n_failed += 1;
            }
        }
    }
    println!("{n_passed} passed, {n_failed} failed");
    Ok(if n_failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}

fn run(path: Option<PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    let config = load_config(path.as_ref())?;
    init_tracing();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let stopped = runtime.block_on(async move {
        let daemon = Daemon::start(config, Some(prometheus)).await?;
        anyhow::Ok(daemon.run_until(shutdown::signal()).await)
    })?;
    // Data was lost (the log says what): a failed exit, so systemd and whoever reads its
    // journal see it.
    Ok(if stopped.error.is_none() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PERFWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("PERFWATCH_LOG_FORMAT").is_ok_and(|f| f == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
