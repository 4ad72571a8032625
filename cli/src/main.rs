//! `pickleguard`: the command-line side of pickleguard. It links no libpython, and every
//! decision comes from `pickleguard-policy`, the code the runtime hook uses.

mod check_config;
mod config_writer;
mod doctor;
mod error;
mod learn;
mod locate;
mod options;
mod packs;
mod run;
mod sarif;
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
    /// Turn learning records (PICKLEGUARD_RECORD) or JSON logs into config entries to review,
    /// judged by the active config and packs: printed, written to a new file (--output), or
    /// merged into the config file (--merge) keeping its other settings.
    Learn {
        #[command(flatten)]
        policy: PolicyOptions,
        #[command(flatten)]
        to: learn::Destination,
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
    /// resolve, judged by the runtime's policy. Exit 0 clean, 1 hard-denied or unresolvable
    /// globals, 2 a file could not be read or scanned, 3 nothing scanned, 4 usage, 5 globals
    /// not on the allowlist (and nothing worse).
    Scan {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: scan::OutputFormat,
        /// What fails the scan; repeatable or comma-separated. `hard-denied`: only likely
        /// malware; `not-allowed`: unreviewed globals too; `error`: unreadable files.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "not-allowed,error"
        )]
        fail_on: Vec<scan::FailOn>,
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
        #[command(flatten)]
        to: learn::Destination,
        /// Files and directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check that a Python started from this environment is protected: LD_PRELOAD and
    /// /etc/ld.so.preload as they are, the shim and core they load and their versions, the
    /// hook really landing, and the policy in effect. Exit 1 and `NOT protected` if not.
    Doctor {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// The interpreter to check (default: python3).
        python: Option<OsString>,
    },
    /// List the policy packs: each entry, why it is allowed, and its risk notes.
    Packs {
        /// Only the pack summaries.
        #[arg(long, short)]
        brief: bool,
        /// Packs to show (default: all).
        names: Vec<String>,
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
        Command::Learn { policy, to, files } => learn::run(&files, &policy.settings(None), &to),
        Command::Run {
            mode,
            policy,
            command,
        } => run::run(run::RunOptions {
            mode,
            policy,
            command,
        }),
        Command::Doctor { json, python } => doctor::run(python, json),
        Command::Packs { brief, names } => Ok(packs::run(&names, brief)),
        Command::Scan {
            format,
            fail_on,
            verbose,
            policy,
            paths,
        } => scan::scan(&policy.settings(None), &paths, format, &fail_on, verbose),
        Command::Allowlist { policy, to, paths } => {
            scan::allowlist(&policy.settings(None), &paths, &to)
        }
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
