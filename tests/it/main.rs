//! perfwatch's integration tests: a real daemon on loopback, real HTTP, real SQLite files.

mod alerts;
mod allocations;
mod cli;
mod crash;
mod dashboards;
mod email;
mod exposition;
mod fuzz_corpus;
mod gate;
mod influx;
mod json_push;
mod limits;
mod never_quiet;
mod node_clients;
mod notify;
mod otlp;
mod persistence;
mod pushgateway;
mod rule_kinds;
mod slack_standin;
mod smtp_server;
mod statsd;
mod status_page;
mod support;
mod systemd;
mod tiers;
