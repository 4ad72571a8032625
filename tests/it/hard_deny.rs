//! Issue 12: the hard-deny set holds in every mode. `tests/py/hard_deny_payloads.py` sends the
//! payloads that got past it in warn mode (HD-1..HD-7) and two aliases that only resolution
//! catches (HD-8, HD-9); each would create its marker file if it ran.
//!
//! HD-n pass because the spelling check walks dotted names and lists the C twins and gadget
//! modules (`policy/src/hard_deny.rs`), and because warn mode judges what a name resolves to
//! before letting it run (`src/resolve.rs`). Dropping either makes a case load and its marker
//! appear. The controls prove every payload works without the guard.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::ml_stack::ml_python;
use crate::support::{self, interpreters, json_lines, run, script, text, TempDir};

/// Cases whose global is hard-denied by its spelling: refused as hard-denied in both modes.
const SPELLED: &[&str] = &["HD-1", "HD-2", "HD-3", "HD-4", "HD-5", "HD-6", "HD-7"];
/// Aliases: refused as not allowlisted in enforce mode and, after resolution, as hard-denied in
/// warn mode.
const ALIASES: &[&str] = &["HD-8", "HD-9"];

fn run_group(mut command: Command, group: &str, control: bool) -> (TempDir, Vec<Value>) {
    let markers = TempDir::new(&format!("hard-deny-{group}"));
    command
        .arg(script("hard_deny_payloads.py"))
        .arg(markers.path())
        .arg(group);
    if control {
        command.arg("--control");
    }
    let output = run(&mut command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let results = json_lines(&output.stdout);
    assert!(!results.is_empty(), "no results: {}", text(&output.stderr));
    (markers, results)
}

fn cases(results: &[Value]) -> BTreeSet<String> {
    results
        .iter()
        .map(|r| r["case"].as_str().unwrap().to_string())
        .collect()
}

/// Control: without the guard every payload runs and leaves its marker.
fn assert_control(python: &std::path::Path, group: &str) {
    let (markers, results) = run_group(support::command(python), group, true);
    for result in &results {
        assert_eq!(
            result["marker"], true,
            "the payload must work unguarded: {result}"
        );
    }
    assert_eq!(
        markers.files().into_iter().collect::<BTreeSet<_>>(),
        cases(&results)
    );
}

/// Guarded, in `mode`: every case is refused at its own global, with no marker.
fn assert_guarded(python: &std::path::Path, label: &str, group: &str, mode: &str) {
    let mut command = support::preloaded(python);
    command.env("PICKLEGUARD_MODE", mode);
    let (markers, results) = run_group(command, group, false);
    for result in &results {
        let case = result["case"].as_str().unwrap();
        assert_eq!(result["outcome"], "refused", "{label} {mode}: {result}");
        assert_eq!(
            result["type"], "pickleguard.UnsafeFileError",
            "{label} {mode}: {result}"
        );
        let expected = if SPELLED.contains(&case) || mode == "warn" {
            "hard-denied"
        } else {
            assert!(ALIASES.contains(&case), "unknown case {case}");
            "not-allowlisted"
        };
        assert_eq!(result["reason"], expected, "{label} {mode}: {result}");
        if expected == "hard-denied" {
            let message = result["message"].as_str().unwrap();
            assert!(
                !message.contains("PICKLEGUARD_ALLOW="),
                "nothing to allow: {message}"
            );
        }
        assert_eq!(result["marker"], false, "{label} {mode}: {result}");
    }
    assert_eq!(
        markers.files(),
        Vec::<String>::new(),
        "{label} {mode}: a payload ran"
    );
}

#[test]
fn issue_12_stdlib_payloads_run_without_the_guard() {
    assert_control(&interpreters()[0].path, "stdlib");
}

#[test]
fn issue_12_stdlib_payloads_are_refused_in_warn_and_enforce_on_every_interpreter() {
    for python in interpreters() {
        for mode in ["warn", "enforce"] {
            assert_guarded(&python.path, &python.label, "stdlib", mode);
        }
    }
}

#[test]
fn issue_12_torch_payloads_are_refused_in_warn_and_enforce() {
    let Some(python) = ml_python("issue_12_torch_payloads_are_refused_in_warn_and_enforce") else {
        return;
    };
    assert_control(&python, "torch");
    for mode in ["warn", "enforce"] {
        assert_guarded(&python, "ML venv", "torch", mode);
    }
}

/// Issue 12 item 4: a global that a pack which is not in force covers is refused with that
/// pack named first, then the single-entry fix.
#[test]
fn a_refusal_names_the_pack_that_covers_it() {
    let probe = r#"
import pickle, pickleguard
try:
    pickle.loads(b"csklearn.linear_model._logistic\nLogisticRegression\n.")
except pickleguard.UnsafeFileError as exc:
    print(exc)
"#;
    let python = &interpreters()[0];
    let output = run(
        support::preloaded(&python.path).args(["-c", probe]),
        Duration::from_secs(30),
    );
    let message = text(&output.stdout);
    let pack = message
        .find("It is in pack `sklearn`: enable the pack with PICKLEGUARD_PACKS=ml,sklearn")
        .unwrap_or_else(|| panic!("no pack hint: {message}"));
    let entry = message
        .find("PICKLEGUARD_ALLOW=sklearn.linear_model._logistic.LogisticRegression")
        .unwrap_or_else(|| panic!("no entry fix: {message}"));
    assert!(pack < entry, "the pack comes first: {message}");
}

/// HD-8/HD-9 allowed by the operator: the hard-deny set is the backstop for operators who allow
/// too much, so an allowed name that resolves to `os.system` (or a partial of it) is still
/// refused, in enforce mode too. Judging operator entries by spelling only would let them run.
#[test]
fn issue_12_allowed_aliases_of_denied_callables_stay_refused() {
    for python in interpreters() {
        let mut command = support::preloaded(&python.path);
        command.env("PICKLEGUARD_ALLOW", "pg_alias.run,pg_alias.later");
        let (markers, results) = run_group(command, "stdlib", false);
        for result in &results {
            assert_eq!(result["outcome"], "refused", "{}: {result}", python.label);
            assert_eq!(
                result["reason"], "hard-denied",
                "{}: {result}",
                python.label
            );
        }
        assert_eq!(
            markers.files(),
            Vec::<String>::new(),
            "{}: a payload ran",
            python.label
        );
    }
}
