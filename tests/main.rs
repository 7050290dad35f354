//! The one integration-test binary (ripgrep's layout): every module below runs against the real
//! `tidings` library or binary, real SQLite and PostgreSQL, and loopback fixture servers.

mod support;

mod backup;
mod bounces;
mod bounces_imap;
mod bounces_ingest;
mod bounces_loop;
mod bounces_seen;
mod browser;
mod cli;
mod cli_input;
mod delivery;
mod doctor;
mod e2e;
mod extract;
mod idn_relay;
mod layering;
mod lifecycle;
mod operator;
mod operator_kit;
mod pipeline;
mod scheduler;
mod store;
mod tidy;
mod web;
