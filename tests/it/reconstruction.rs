//! Attacks that name only allowlisted globals (issue 9, `tests/py/reconstruction_attacks.py`,
//! cases RC-1..RC-9): forged numpy dtype states, pointer-making and uninitialised-memory
//! constructors, torch's integer-pointer constructor, expensive codecs, and out-of-range
//! scikit-learn/numpy RNG state. Each case runs in its own child process, so a crash shows up
//! as a signal in the report instead of killing the test.

use std::collections::BTreeMap;

use crate::ml_stack::ml_python;
use crate::support::{self, json_lines, run_ok, script};

/// What each payload does to a process that loads it without validated reconstruction.
const HARM: &[(&str, &str)] = &[
    ("RC-1", "crashed"),
    ("RC-2", "crashed"),
    ("RC-3", "crashed"),
    ("RC-4", "crashed"),
    ("RC-5", "leaked"),
    ("RC-6", "crashed"),
    ("RC-7", "hung"),
    ("RC-8", "crashed"),
    ("RC-9", "crashed"),
];

/// Runs every case through `entry` with `command`'s environment; outcome by case ID.
fn outcomes(
    mut command: std::process::Command,
    entry: &str,
) -> BTreeMap<String, serde_json::Value> {
    let output = run_ok(
        command
            .arg(script("reconstruction_attacks.py"))
            .arg("run")
            .arg(entry),
    );
    json_lines(&output.stdout)
        .into_iter()
        .map(|report| (report["case"].as_str().unwrap().to_string(), report))
        .collect()
}

/// Control: without the guard every payload does its harm. If this fails the corpus is
/// broken, and a test showing the guard refuses it would prove nothing.
#[test]
fn rc_payloads_harm_an_unguarded_process() {
    let Some(python) = ml_python("rc_payloads_harm_an_unguarded_process") else {
        return;
    };
    let reports = outcomes(support::command(&python), "pickle.loads");
    for (case, harm) in HARM {
        assert_eq!(
            reports[*case]["outcome"], *harm,
            "{case} without the guard: {}",
            reports[*case]
        );
    }
}
