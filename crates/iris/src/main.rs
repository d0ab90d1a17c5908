//! `iris`: one binary for every role of the Iris unified-communications platform.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod logging;
mod netcheck_cmd;
mod ports;
mod secrets;
mod serve;
mod user_cmd;

use clap::Parser as _;
use std::process::ExitCode;

/// mimalloc: str0m allocates per forwarded packet (payloads, transmits, events) and the relay
/// per allocation; glibc's allocator cost measurably more (bench/conference/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `iris netcheck` uses 2 for "no media path"; its usage errors are EX_USAGE (64).
            let code = if !e.use_stderr() {
                0
            } else if std::env::args().any(|a| a == "netcheck") {
                64
            } else {
                2
            };
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
