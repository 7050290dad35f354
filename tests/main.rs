//! The one integration-test binary (ripgrep's layout): every module below runs against the real
//! `tidings` library or binary, real SQLite and PostgreSQL, and loopback fixture servers.

mod support;

mod bounces;
mod bounces_ingest;
mod bounces_seen;
mod browser;
mod cli;
mod cli_input;
mod delivery;
mod e2e;
mod extract;
mod idn_relay;
mod layering;
mod lifecycle;
mod operator;
mod pipeline;
mod scheduler;
mod store;
mod summarizer;
mod tidy;
mod web;
