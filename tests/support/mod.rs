//! Shared test helpers: fresh databases on both backends and running the built binary with a
//! temporary configuration.

#![allow(dead_code)]

pub mod cli;
pub mod db;
