//! The `kith` command.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::print_stderr)] // The one place a failure is told to the person who ran the command.

mod accounts;
mod cli;
mod commands;
mod geo;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: bulk imports allocate and free millions of small strings, where
/// the system allocator spends a fifth of the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kith: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // One line a person can act on; the chain of causes joined with ": ".
            eprintln!("kith: {e:#}");
            ExitCode::FAILURE
        }
    }
}
