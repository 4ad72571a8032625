//! pickleguard's static scanner: finds every global a pickle would resolve, in raw pickles,
//! torch checkpoints (zip and legacy), numpy `.npy`/`.npz` files, joblib dumps (plain or
//! compressed) and pickles inside zip archives, and judges each one with the same
//! [`Policy::decide`] the runtime audit hook uses.
//!
//! * [`Scanner`] is the entry point: [`Scanner::scan_file`] maps a file and sniffs its format by
//!   content, [`Scanner::scan_bytes`] does the same for bytes in memory.
//! * The pickle machine (`machine`) runs every opcode of protocols 0-5 over small summaries of
//!   the values, following strings through the memo so STACK_GLOBAL resolves to concrete names,
//!   and never builds an object or copies a payload.
//! * Where a stream applies a global whose reconstruction rules read its arguments or state,
//!   `reconstruction` runs it again over rebuilt objects and asks the runtime's own checks
//!   (`pickleguard_policy::reconstruct`), so a forged dtype state is a finding here as it is a
//!   refusal at load.
//! * [`Limits`] bounds memory and time for any input; reaching one is an error in the report,
//!   never a silent pass.
//! * Reports ([`FileReport`], [`StreamReport`], [`Finding`], [`Verdict`]) serialize to JSON.
#![deny(unsafe_code)]

mod code;
mod container;
mod decompress;
mod detect;
mod error;
mod limits;
mod literal;
mod machine;
mod memo;
mod mmap;
mod npy;
mod objects;
mod opcodes;
mod reader;
mod reconstruction;
mod report;
mod stream;
mod tar;
#[cfg(test)]
mod test_pickles;
mod text;
mod value;
mod zip;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pickleguard_policy::Policy;

use crate::container::{Ctx, Place};
pub use crate::error::ScanError;
pub use crate::limits::Limits;
pub use crate::report::{
    Codec, Concern, ConcernKind, FileReport, Finding, Format, StreamReport, Verdict,
};

/// Scans files for the globals their pickles would resolve, and judges each with a policy.
#[derive(Debug, Clone)]
pub struct Scanner<'p> {
    policy: &'p Policy,
    limits: Limits,
}

impl<'p> Scanner<'p> {
    /// A scanner judging with `policy`, under the default [`Limits`].
    pub fn new(policy: &'p Policy) -> Self {
        Scanner {
            policy,
            limits: Limits::default(),
        }
    }

    /// The same scanner under other limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        Scanner { limits, ..self }
    }

    /// Scans one file, of any supported format, detected by content, not by extension.
    pub fn scan_file(&self, path: &Path) -> FileReport {
        let shown = path.display().to_string();
        let io_error = |source| FileReport {
            path: shown.clone(),
            format: Format::Unknown,
            streams: Vec::new(),
            concerns: Vec::new(),
            error: Some(ScanError::Io {
                path: shown.clone(),
                source,
            }),
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) => return io_error(err),
        };
        let metadata = match file.metadata() {
            Ok(metadata) => metadata,
            Err(err) => return io_error(err),
        };
        if metadata.is_dir() {
            return io_error(std::io::Error::other("is a directory"));
        }
        if metadata.is_file() && metadata.len() > 0 {
            return match mmap::map(&file) {
                Ok(map) => self.scan_bytes(&shown, &map),
                Err(err) => io_error(err),
            };
        }
        // Empty files cannot be mapped; pipes and devices have no length: read them, capped.
        let mut data = Vec::new();
        let cap = self.limits.max_decompressed;
        if let Err(err) = file.take(cap).read_to_end(&mut data) {
            return io_error(err);
        }
        self.scan_bytes(&shown, &data)
    }

    /// Scans bytes in memory (used by fuzzing and tests); `name` is for reporting.
    pub fn scan_bytes(&self, name: &str, data: &[u8]) -> FileReport {
        let mut ctx = Ctx::new(self.policy, self.limits);
        let place = Place {
            member: None,
            depth: 0,
            named_pickle: false,
            joblib: true,
            one: false,
        };
        let (format, error) = ctx.scan(data, place);
        FileReport {
            path: name.to_string(),
            format,
            streams: ctx.streams,
            error,
            concerns: ctx.concerns,
        }
    }
}
