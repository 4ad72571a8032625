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

/// Validated reconstruction through the Rust unpickler, with the real ML stack: each attack is
/// refused naming a check, through `loads`, `load` and a `find_class`-overriding subclass,
/// while stock `_pickle` (the control, in a child without the preload) runs it; genuine numpy
/// arrays and a torch checkpoint (`torch.load(pickle_module=...)` subclassing our Unpickler)
/// load unchanged.
///
/// RV-1 `numpy.ndarray` applied directly: stock hands out 4096 bytes of uninitialised heap.
/// RV-2 a `V8` dtype given numpy's object flags by BUILD: stock accepts the forged flags.
/// RV-3 `scalar()` over such a dtype reads 8 file bytes as an object pointer: stock SIGSEGVs.
/// They pass because the unpickler asks `reconstruct::plan`/`check_*` before applying or
/// building; they fail if a step is applied before its check, or an entry point skips it.
/// Needs the rules of the `policy/packs` data; without them (this branch before the merge)
/// the test prints SKIP.
#[test]
fn reconstruction_attacks_are_refused_through_every_entry() {
    let Some(python) = crate::ml_stack::ml_python("unpickler reconstruction") else {
        return;
    };
    if !support::repo().join("policy/packs/ml.toml").is_file() {
        eprintln!(
            "SKIP: unpickler reconstruction: no reconstruction rules (policy/packs) in this tree"
        );
        return;
    }
    let output = run(
        support::preloaded(&python).arg(script("unpickler_reconstruction.py")),
        Duration::from_secs(600),
    );
    let lines = json_lines(&output.stdout);
    let attacks: Vec<_> = lines.iter().filter(|l| l.get("case").is_some()).collect();
    assert_eq!(
        attacks.len(),
        9,
        "three cases through three entries expected\nstderr:\n{}",
        text(&output.stderr)
    );
    for line in &attacks {
        assert_eq!(line["refused"], true, "{line}");
        assert!(line["check"].is_string(), "no check named: {line}");
        let control = &line["control"];
        match line["case"].as_str() {
            Some("RV-1") => assert_eq!(control["out"], "ndarray 4096", "control: {line}"),
            Some("RV-2") => assert_eq!(control["out"], "63", "control: {line}"),
            Some("RV-3") => assert!(
                control["status"].as_i64().is_some_and(|s| s < 0),
                "the control should crash: {line}"
            ),
            _ => panic!("unknown case {line}"),
        }
    }
    let genuine: Vec<_> = lines
        .iter()
        .filter(|l| l.get("genuine").is_some())
        .collect();
    assert!(
        genuine.len() >= 60,
        "genuine loads missing: {}",
        genuine.len()
    );
    for line in genuine {
        assert_eq!(line["ok"], true, "{line}");
    }
}
