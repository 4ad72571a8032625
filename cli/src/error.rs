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
    #[error("no records or JSON log events found in {0} file(s)")]
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
            Error::Read { .. } | Error::ShimNotFound(_) | Error::UnusableShimPath(_) => 2,
            Error::NothingLearned(_) => 3,
            Error::NoCommand => 4,
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
        }
    }
}
