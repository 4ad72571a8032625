//! The attack corpus (`tests/py/corpus.py`) through every unpickling entry point, on every
//! interpreter, under the preload. A payload that ran would leave its marker file.

use std::collections::BTreeSet;

use std::process::Command;

use crate::support::{self, interpreters, json_lines, run_ok, script, TempDir};

/// Number of entry points `attack_matrix.py` tries when the start-up capture is present.
const ENTRY_POINTS: usize = 14;

/// Runs `attack_matrix.py` with `command`'s interpreter and environment; returns the marker
/// directory (to inspect) and one JSON result per attempt.
fn run_matrix(mut command: Command, label: &str) -> (TempDir, Vec<serde_json::Value>) {
    let markers = TempDir::new(label);
    let output = run_ok(command.arg(script("attack_matrix.py")).arg(markers.path()));
    (markers, json_lines(&output.stdout))
}

/// Control: without the guard the payloads really run. If this fails, the corpus is broken and
/// the guarded test below would prove nothing.
#[test]
fn payloads_run_without_the_guard() {
    let python = &interpreters()[0];
    let (markers, results) = run_matrix(support::command(&python.path), "control");
    let expected: BTreeSet<String> = results
        .iter()
        .filter(|r| r["has_marker"] == true)
        .map(|r| r["case"].as_str().unwrap().to_string())
        .collect();
    assert!(expected.len() >= 20, "corpus too small: {expected:?}");
    let created: BTreeSet<String> = markers.files().into_iter().collect();
    assert_eq!(
        created, expected,
        "every side-effect payload must work unguarded"
    );
}

/// Every payload is refused with `UnsafeFileError` through every entry point (including
/// references captured at start-up and `Unpickler` subclasses calling `super().find_class`),
/// and no marker exists afterwards.
#[test]
fn every_payload_is_blocked_on_every_interpreter() {
    for python in interpreters() {
        let mut command = support::preloaded(&python.path);
        command.env("PYTHONPATH", script("early"));
        let (markers, results) = run_matrix(command, "attacks");
        let cases: BTreeSet<&str> = results
            .iter()
            .map(|r| r["case"].as_str().unwrap())
            .collect();
        assert_eq!(
            results.len(),
            cases.len() * ENTRY_POINTS,
            "{}: expected every case through {ENTRY_POINTS} entry points",
            python.label
        );
        for result in &results {
            assert_eq!(result["outcome"], "blocked", "{}: {result}", python.label);
            assert_eq!(
                result["type"], "pickleguard.UnsafeFileError",
                "{}: {result}",
                python.label
            );
            let message = result["message"].as_str().unwrap();
            assert!(
                message.starts_with("pickleguard refused to load `"),
                "{message}"
            );
            assert!(!message.contains('\u{1b}'), "no ANSI escapes: {message:?}");
        }
        assert_eq!(
            markers.files(),
            Vec::<String>::new(),
            "{}: a payload ran",
            python.label
        );
    }
}

/// The refusal reason matches the policy: hard-denied for code execution, not-allowlisted for
/// merely unknown globals.
#[test]
fn refusals_name_the_global_and_the_reason() {
    let python = &interpreters()[0];
    let (_markers, results) = run_matrix(support::preloaded(&python.path), "reasons");
    let first = |case: &str| {
        results
            .iter()
            .find(|r| r["case"] == case && r["entry"] == "pickle.loads")
            .cloned()
            .unwrap_or_else(|| panic!("no result for {case}"))
    };
    let expect = |case: &str, module: &str, name: &str, reason: &str| {
        let r = first(case);
        assert_eq!(
            (
                r["module"].as_str(),
                r["name"].as_str(),
                r["reason"].as_str()
            ),
            (Some(module), Some(name), Some(reason)),
            "{case}: {r}"
        );
    };
    expect("AT-01", "os", "system", "hard-denied");
    expect("AT-06", "__builtin__", "getattr", "hard-denied");
    expect("AT-10", "os", "system", "hard-denied");
    expect("AT-13", "posixpath", "os.system", "hard-denied");
    expect("AT-14", "pickle", "loads", "hard-denied");
    expect("AT-17", "commands", "getoutput", "hard-denied");
    expect("AT-23", "shlex", "split", "not-allowlisted");
    expect(
        "AT-24",
        "collections",
        "OrderedDict.fromkeys",
        "not-allowlisted",
    );
    let message = first("AT-23")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("attack_matrix.py:"),
        "caller is named: {message}"
    );
    assert!(
        message.contains("PICKLEGUARD_ALLOW=shlex.split"),
        "{message}"
    );
}
