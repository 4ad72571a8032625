//! `pickleguard`: the command-line side of pickleguard. It links no libpython, and every
//! decision comes from `pickleguard-policy`, the code the runtime hook uses.

mod check_config;
mod doctor;
mod error;
mod learn;
mod locate;
mod run;
mod sys;

use std::error::Error as _;
use std::ffi::OsString;
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
    /// Run a command with the guard preloaded: validates the configuration (exit 78 on a
    /// problem), puts libpickleguard.so first in LD_PRELOAD, then execs the command.
    Run {
        /// enforce, warn or off (sets PICKLEGUARD_MODE).
        #[arg(long)]
        mode: Option<String>,
        /// Extra global to allow, `module.name` or `module:qualname`; repeatable.
        #[arg(long = "allow", value_name = "GLOBAL")]
        allow: Vec<String>,
        /// Extra policy pack; repeatable.
        #[arg(long = "pack", value_name = "PACK")]
        packs: Vec<String>,
        /// Config file (sets PICKLEGUARD_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Check that an interpreter is protected: its version, libpython, the shim and core, the
    /// hook really landing, and the policy in effect. Exit 1 if anything is wrong.
    Doctor {
        /// The interpreter to check (default: python3).
        python: Option<OsString>,
    },
}

fn main() -> ExitCode {
    sys::default_sigpipe();
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
        Command::Run {
            mode,
            allow,
            packs,
            config,
            command,
        } => run::run(run::RunOptions {
            mode,
            allow,
            packs,
            config,
            command,
        }),
        Command::Doctor { python } => doctor::run(python),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pickleguard: {err}");
            let mut cause = err.source();
            while let Some(inner) = cause {
                eprintln!("  caused by: {inner}");
                cause = inner.source();
            }
            ExitCode::from(err.exit_code())
        }
    }
}
