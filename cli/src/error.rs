use std::path::PathBuf;

use thiserror::Error;

/// Everything the `pickleguard` command can fail on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Nothing usable was found in the inputs.
    #[error("no records or JSON log events found in {0} file(s) (record files are JSON Lines; the TOML-like records of pickleguard 0.1 are not read: record again)")]
    NothingLearned(usize),
    /// The preload shim is not installed where it is looked for.
    #[error("cannot find libpickleguard.so with libpickleguard_core.so beside it; looked at {}; set PICKLEGUARD_SHIM", .0.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    ShimNotFound(Vec<PathBuf>),
    /// The shim's path cannot go into LD_PRELOAD.
    #[error("the shim path `{}` contains whitespace or is not UTF-8, which LD_PRELOAD cannot carry; install it elsewhere", .0.display())]
    UnusableShimPath(PathBuf),
    /// `run` was given no command.
    #[error("no command to run: use `pickleguard run [options] -- COMMAND [ARGS...]`")]
    NoCommand,
    /// A config file to merge into is not valid TOML.
    #[error("cannot merge into `{}`: {message}; fix it first (nothing was written)", .path.display())]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A file could not be written.
    #[error("cannot write `{}`", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--output` names a file that exists.
    #[error("`{}` exists; not overwriting it: use --merge to add to it, or give a new --output file", .0.display())]
    WouldOverwrite(PathBuf),
    /// `--merge` without a config file to merge into.
    #[error(
        "--merge needs a config file: give --config PATH, set PICKLEGUARD_CONFIG, or create `{0}`"
    )]
    NothingToMerge(&'static str),
    /// Standard output is the active config file, which the shell has already emptied.
    #[error("standard output is the config file `{}`, which the shell emptied before pickleguard could read it; restore it and use --merge (or --output NEW) instead of `>`", .0.display())]
    StdoutIsConfig(PathBuf),
    /// The configuration has problems, so decisions under it cannot be trusted.
    #[error("the configuration has {0} problem(s) (listed above); fix it first")]
    BadConfig(usize),
    /// The command could not be started.
    #[error("cannot run `{command}`")]
    Exec {
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { .. }
            | Error::ShimNotFound(_)
            | Error::UnusableShimPath(_)
            | Error::ConfigSyntax { .. }
            | Error::Write { .. }
            | Error::WouldOverwrite(_)
            | Error::NothingToMerge(_)
            | Error::StdoutIsConfig(_) => 2,
            Error::BadConfig(_) => 78,
            Error::NothingLearned(_) => 3,
            Error::NoCommand => 4,
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
        }
    }
}
