use std::io;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use thiserror::Error;

/// Everything that stops the scanner from reading a file, a member or a pickle to its end.
///
/// Offsets count bytes from the start of the stream being read: the file itself, or the
/// decompressed bytes of a member or a compressed file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The file could not be opened, mapped or read.
    #[error("cannot read `{path}`")]
    Io {
        /// The path as given.
        path: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The data ends inside an opcode's argument or payload.
    #[error("pickle data is truncated at offset `{offset}`: `{opcode}` needs `{needed}` more bytes, `{left}` are left")]
    Truncated {
        /// Where the opcode starts.
        offset: u64,
        /// The opcode being read.
        opcode: &'static str,
        /// Bytes it still needs.
        needed: u64,
        /// Bytes left in the stream.
        left: u64,
    },
    /// A byte that is not an opcode of any protocol.
    #[error("unknown opcode `{byte:#04x}` at offset `{offset}`")]
    UnknownOpcode {
        /// Where it is.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// An opcode that CPython's unpickler would refuse at this point: it stops loading there.
    #[error("malformed pickle at offset `{offset}`: `{opcode}` {why}")]
    Malformed {
        /// Where the opcode starts.
        offset: u64,
        /// The opcode.
        opcode: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// Bytes after the last pickle that do not start another one.
    #[error("trailing data at offset `{offset}` is not a pickle")]
    TrailingData {
        /// Where the trailing data starts.
        offset: u64,
    },
    /// A configured limit was reached; the rest of the stream or archive was not scanned.
    #[error("{what} exceeds the limit of `{limit}` (at offset `{offset}`)")]
    Limit {
        /// What grew too large.
        what: &'static str,
        /// The limit in force.
        limit: u64,
        /// Where it was reached.
        offset: u64,
    },
    /// Archives or compressed files nested deeper than the limit.
    #[error("containers are nested deeper than the limit of `{limit}`")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A zip archive whose structure cannot be read.
    #[error("malformed zip archive: {why}")]
    Zip {
        /// What is wrong with it.
        why: String,
    },
    /// A feature of a container that the scanner does not read, so the contents stay unchecked.
    #[error("unsupported {what}")]
    Unsupported {
        /// What it is.
        what: String,
    },
    /// Compressed data that does not decompress.
    #[error("cannot decompress `{codec}` data")]
    Decompress {
        /// The codec.
        codec: &'static str,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// An `.npy` header that cannot be read.
    #[error("malformed .npy header: {why}")]
    Npy {
        /// What is wrong with it.
        why: &'static str,
    },
    /// A joblib array whose byte size the scanner cannot work out, so it cannot step over it.
    #[error("cannot size the joblib array data at offset `{offset}`: {why}")]
    Joblib {
        /// Where the array data starts.
        offset: u64,
        /// What is missing.
        why: &'static str,
    },
}

impl ScanError {
    /// A stable snake_case name for the variant, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            ScanError::Io { .. } => "io",
            ScanError::Truncated { .. } => "truncated",
            ScanError::UnknownOpcode { .. } => "unknown_opcode",
            ScanError::Malformed { .. } => "malformed",
            ScanError::TrailingData { .. } => "trailing_data",
            ScanError::Limit { .. } => "limit",
            ScanError::TooDeep { .. } => "too_deep",
            ScanError::Zip { .. } => "zip",
            ScanError::Unsupported { .. } => "unsupported",
            ScanError::Decompress { .. } => "decompress",
            ScanError::Npy { .. } => "npy",
            ScanError::Joblib { .. } => "joblib",
        }
    }

    /// The message with its causes, joined by `: `.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            cause = inner.source();
        }
        message
    }
}

/// Serialized as `{"kind": ..., "message": ...}`, the message including its causes.
impl Serialize for ScanError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("ScanError", 2)?;
        state.serialize_field("kind", self.kind())?;
        state.serialize_field("message", &self.full_message())?;
        state.end()
    }
}
