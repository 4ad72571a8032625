//! Issue 12: trusted IPC by identity. `tests/py/ipc_identity.py` runs each case in its own
//! process and prints one JSON line per case.
//!
//! IPC-1 and IPC-2 pass because trust goes only to the code objects captured when
//! multiprocessing was imported (`src/trust.rs`, `src/import_watch.rs`): a file named
//! `multiprocessing/connection.py` and a `recv` patched in later are program code. Trusting by
//! file name, or looking the receiving ends up at load time, would make them run their payload.
//! The `channel` control sends the same bytes through a real Pipe, which trusted IPC runs (the
//! documented residual risk): it proves the payload is one that trust lets through.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::ml_stack::ml_python;
use crate::support::{self, interpreters, json_lines, run, script, text, TempDir};

fn case(mut command: Command, markers: &Path, name: &str) -> Vec<Value> {
    command
        .args(["-W", "ignore"])
        .arg(script("ipc_identity.py"))
        .arg(markers)
        .arg(name);
    let output = run(&mut command, Duration::from_secs(240));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let results = json_lines(&output.stdout);
    assert!(!results.is_empty(), "{name}: {}", text(&output.stderr));
    results
}

fn locked(python: &Path) -> Command {
    let mut command = support::preloaded(python);
    command.env("PICKLEGUARD_LOCK", "1");
    command
}

#[test]
fn ipc_1_2_spoofed_receiving_ends_get_no_trust_on_every_interpreter() {
    for python in interpreters() {
        let control = TempDir::new("ipc-identity-control");
        for name in ["spoof", "patched", "channel"] {
            for result in case(support::command(&python.path), control.path(), name) {
                assert_eq!(
                    result["marker"], true,
                    "{}: unguarded: {result}",
                    python.label
                );
            }
        }
        let guarded = TempDir::new("ipc-identity");
        for name in ["spoof", "patched"] {
            for result in case(locked(&python.path), guarded.path(), name) {
                assert_eq!(result["outcome"], "refused", "{}: {result}", python.label);
                assert_eq!(result["module"], "posix", "{}: {result}", python.label);
                assert_eq!(result["marker"], false, "{}: {result}", python.label);
            }
        }
        for result in case(locked(&python.path), guarded.path(), "channel") {
            assert_eq!(result["outcome"], "loaded", "{}: {result}", python.label);
        }
        assert_eq!(
            guarded.files(),
            vec!["control".to_string()],
            "{}",
            python.label
        );
    }
}

/// scikit-learn with `n_jobs=2` on joblib's loky (default), multiprocessing and threading
/// backends, under the default configuration.
#[test]
fn sklearn_n_jobs_2_works_on_every_joblib_backend() {
    let Some(python) = ml_python("sklearn_n_jobs_2_works_on_every_joblib_backend") else {
        return;
    };
    let markers = TempDir::new("ipc-sklearn");
    let results = case(support::preloaded(&python), markers.path(), "sklearn");
    assert_eq!(results.len(), 3, "{results:?}");
    for result in &results {
        assert_eq!(result["outcome"], "loaded", "{result}");
    }
}

/// IPC-3: a task that loads a malicious pickle in a loky or multiprocessing worker is refused
/// there, and the parent gets the `UnsafeFileError`, not a crashed-worker error. Passes because
/// the task's own load is program code (not a receiving end) and the exception travels back on
/// the trusted result channel. The unguarded control shows the task's load runs the payload.
#[test]
fn ipc_3_a_refusal_in_a_worker_reaches_the_parent_as_unsafe_file_error() {
    let Some(python) = ml_python("ipc_3_a_refusal_in_a_worker_reaches_the_parent") else {
        return;
    };
    let control = TempDir::new("ipc-worker-control");
    for result in case(support::command(&python), control.path(), "worker") {
        assert_eq!(result["marker"], true, "unguarded: {result}");
    }
    let markers = TempDir::new("ipc-worker");
    let results = case(support::preloaded(&python), markers.path(), "worker");
    assert_eq!(results.len(), 2, "{results:?}");
    for result in &results {
        assert_eq!(result["outcome"], "refused", "{result}");
        assert_eq!(result["type"], "pickleguard.UnsafeFileError", "{result}");
        assert_eq!(result["marker"], false, "{result}");
    }
}
