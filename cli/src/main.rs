//! `pickleguard`: the command-line side of pickleguard. It links no libpython, and every
//! decision comes from `pickleguard-policy`, the code the runtime hook uses.

mod check_config;
mod error;
mod learn;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::Error;

/// Exit status for usage errors.
const EXIT_USAGE: u8 = 4;

#[derive(Parser)]
#[command(name = "pickleguard", version, about = "Safe unpickling for ML models: configuration and tooling", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the effective configuration (config file + PICKLEGUARD_* variables); exit 78
    /// (EX_CONFIG) on any problem.
    CheckConfig {
        /// Config file to check instead of PICKLEGUARD_CONFIG or /etc/pickleguard/pickleguard.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print only problems.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Turn learning records (PICKLEGUARD_RECORD) or JSON logs into a config snippet to review.
    Learn {
        /// Record files or JSON log files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let result = match cli.command {
        Command::CheckConfig { config, quiet } => check_config::run(config, quiet),
        Command::Learn { files } => learn::run(&files),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pickleguard: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
