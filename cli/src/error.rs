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
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { .. } => 2,
            Error::NothingLearned(_) => 3,
        }
    }
}
