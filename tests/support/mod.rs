//! Shared test helpers: fresh databases on both backends, running the built binary with a
//! temporary configuration, and an SMTP server on loopback with scripted faults.

#![allow(dead_code)]

pub mod cli;
pub mod db;
pub mod dns;
pub mod feed;
pub mod imap;
pub mod scheduler;
pub mod smtp;
