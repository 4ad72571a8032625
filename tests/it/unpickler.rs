//! pickleguard's own unpickler (`pickleguard.Unpickler`, `load`, `loads`): CPython's own
//! unpickling tests, and behaviour checks beside `_pickle`, on every interpreter.

use std::time::Duration;

use crate::support::{self, interpreters, json_lines, run, script, text};

/// CPython's `test.pickletester` against pickleguard's unpickler, twice per interpreter:
/// with the guard off (every test runs: the unpickler itself must behave as `_pickle`), and
/// enforcing with the tests' globals allowed (the tests that load hard-denied globals, listed
/// in the script, are skipped).
#[test]
fn cpython_pickletester_passes() {
    for python in interpreters() {
        for mode in ["off", "enforce"] {
            let output = run(
                support::preloaded(&python.path)
                    .env("PICKLEGUARD_MODE", mode)
                    .arg(script("unpickler_conformance.py")),
                Duration::from_secs(600),
            );
            let lines = json_lines(&output.stdout);
            let summary = lines.last().unwrap_or_else(|| {
                panic!(
                    "{} ({mode}): no summary\nstderr:\n{}",
                    python.label,
                    text(&output.stderr)
                )
            });
            if let Some(why) = summary.get("skip") {
                eprintln!("SKIP: {} has no test.pickletester ({why})", python.label);
                continue;
            }
            let failures = summary["failures"].as_i64().unwrap_or(-1);
            let errors = summary["errors"].as_i64().unwrap_or(-1);
            let tail: String = text(&output.stderr)
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                output.status.success() && failures == 0 && errors == 0,
                "{} ({mode}): {summary}\n{tail}",
                python.label
            );
            assert!(
                summary["ran"].as_i64().unwrap_or(0) > 150,
                "{} ({mode}): too few tests ran: {summary}",
                python.label
            );
            eprintln!("{} ({mode}): {summary}", python.label);
        }
    }
}

/// File positioning for every kind of file, subclassing, persistent_load, memo, Python 2
/// strings, out-of-band buffers, deep nesting, EXT codes, and a differential corpus (random and
/// mutated streams: the same objects or the same error class as `_pickle`).
#[test]
fn behaves_like_pickle_beside_it() {
    for python in interpreters() {
        let output = run(
            support::preloaded(&python.path).arg(script("unpickler_checks.py")),
            Duration::from_secs(600),
        );
        let lines = json_lines(&output.stdout);
        assert!(
            lines.len() >= 9,
            "{}: not every check reported\nstderr:\n{}",
            python.label,
            text(&output.stderr)
        );
        for line in &lines {
            assert_eq!(line["ok"], true, "{}: {line}", python.label);
        }
    }
}
