//! `pickleguard`: the command-line side of pickleguard. It links no libpython, and every
//! decision comes from `pickleguard-policy`, the code the runtime hook uses.

mod check_config;
mod doctor;
mod error;
mod learn;
mod locate;
mod options;
mod run;
mod scan;
mod sys;

use std::error::Error as _;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::Error;
use options::PolicyOptions;

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
        #[command(flatten)]
        policy: PolicyOptions,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Scan files and directories without running them: every global their pickles would
    /// resolve, judged by the runtime's policy. Exit 0 clean, 1 findings, 2 error, 3 nothing
    /// scanned, 4 usage.
    Scan {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: scan::OutputFormat,
        /// List allowed globals and skipped files too.
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        policy: PolicyOptions,
        /// Files and directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print config-ready allow entries for the globals these files need; hard-denied ones are
    /// listed as comments, never as allowed.
    Allowlist {
        #[command(flatten)]
        policy: PolicyOptions,
        /// Files and directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
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
            policy,
            command,
        } => run::run(run::RunOptions {
            mode,
            policy,
            command,
        }),
        Command::Doctor { python } => doctor::run(python),
        Command::Scan {
            format,
            verbose,
            policy,
            paths,
        } => scan::scan(&policy.settings(None), &paths, format, verbose),
        Command::Allowlist { policy, paths } => scan::allowlist(&policy.settings(None), &paths),
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
