//! Learning mode (`PICKLEGUARD_RECORD=path`): one config-ready line per distinct global the
//! process resolves, allowed or not.
//!
//! Lines fit in an `allow = [ ... ]` array; the decision rides in a trailing comment, and
//! hard-denied globals are written commented out, so pasting a record never allows them.
//! Each line is appended with one `write(2)` on an `O_APPEND` descriptor: many processes can
//! record into one file without tearing or interleaving lines.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use pickleguard_policy::{Decision, Global};

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

/// One record line, newline included.
///
/// Only a `not-allowlisted` global is written as an entry; the others are written commented
/// out, because they need no entry (allowed, or trusted as multiprocessing IPC) or can never
/// have one (hard-denied).
pub fn record_line(
    global: &Global,
    decision: Decision,
    trusted_ipc: bool,
    caller: Option<&str>,
    pid: u32,
) -> String {
    let entry = format!(
        "{{ global = {}, reason = \"recorded\" }},",
        toml_string(&global.to_string())
    );
    let mut comment = match (decision, trusted_ipc) {
        (Decision::Allowed(source), _) => format!("decision=allowed source=\"{source}\""),
        (_, true) => "decision=trusted-ipc".to_string(),
        (Decision::HardDenied(why), _) => format!("decision=hard-denied NEVER-ALLOW ({why})"),
        (Decision::NotAllowed, _) => "decision=not-allowlisted".to_string(),
    };
    if let Some(caller) = caller {
        comment.push_str(&format!(" caller={caller}"));
    }
    comment.push_str(&format!(" pid={pid}"));
    let needs_entry = decision == Decision::NotAllowed && !trusted_ipc;
    let prefix = if needs_entry { "  " } else { "# " };
    format!("{prefix}{entry} # {}\n", comment.replace('\n', " "))
}

fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
