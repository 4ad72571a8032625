//! Learning mode (`PICKLEGUARD_RECORD=path`): one config-ready line per distinct global the
//! process resolves, allowed or not.
//!
//! Each line is a JSON object (JSON Lines): the global, its decision spelled by the shared
//! vocabulary, what decided, the caller and the pid. `pickleguard learn` turns a record into a
//! config to review; nothing in a record is ever pasted into a config as is.
//! Each line is appended with one `write(2)` on an `O_APPEND` descriptor: many processes can
//! record into one file without tearing or interleaving lines.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use pickleguard_policy::vocabulary::record;
use pickleguard_policy::{Decision, Global, Outcome};

/// The record file and the globals already written by this process.
pub struct Recorder {
    file: File,
    seen: Mutex<HashSet<(String, String)>>,
}

impl Recorder {
    /// Opens (or creates) the record file for appending.
    pub fn open(path: &Path) -> std::io::Result<Recorder> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Ok(Recorder {
            file,
            seen: Mutex::new(HashSet::new()),
        })
    }

    /// Whether this is the first time the process resolves `(module, name)`.
    pub fn first_time(&self, module: &str, name: &str) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.insert((module.to_string(), name.to_string()))
    }

    /// Appends the line for one global.
    pub fn write(
        &self,
        global: &Global,
        decision: Decision,
        trusted_ipc: bool,
        caller: Option<&str>,
    ) {
        let line = record_line(global, decision, trusted_ipc, caller, std::process::id());
        let _ = (&self.file).write_all(line.as_bytes());
    }
}

/// One record line, newline included: a JSON object with the fields named in
/// [`pickleguard_policy::vocabulary::record`], serialized by serde_json, so no module name, file
/// name or caller path can add a field or a line.
pub fn record_line(
    global: &Global,
    decision: Decision,
    trusted_ipc: bool,
    caller: Option<&str>,
    pid: u32,
) -> String {
    let outcome = if trusted_ipc && !matches!(decision, Decision::Allowed(_)) {
        Outcome::TrustedIpc
    } else {
        Outcome::of(decision)
    };
    let source = match decision {
        Decision::Allowed(source) => source.to_string(),
        Decision::HardDenied(why) => why.to_string(),
        Decision::NotAllowed => String::new(),
    };
    let mut fields = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        fields.insert(key.to_string(), value);
    };
    put(record::GLOBAL, global.to_string().into());
    put(record::MODULE, global.module.as_str().into());
    put(record::NAME, global.name.as_str().into());
    put(record::DECISION, outcome.as_str().into());
    put(record::SOURCE, source.into());
    put(record::CALLER, caller.unwrap_or("").into());
    put(record::PID, pid.into());
    let mut line = serde_json::Value::Object(fields).to_string();
    line.push('\n');
    line
}
