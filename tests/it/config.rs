//! `PICKLEGUARD_ALLOW` and `PICKLEGUARD_MODE`, including every kind of bad value: a bad value
//! is reported on stderr and never weakens protection.

use std::process::Output;

use crate::support::{self, interpreters, run_ok, text, TempDir};

/// Loads a `collections.Counter` (not allowlisted by default) and an `os.system` payload, and
/// prints what happened to each.
const PROBE: &str = r#"
import collections, os, pickle, sys
import pickleguard
marker = sys.argv[1]
def outcome(data):
    try:
        pickle.loads(data)
        return "loaded"
    except pickleguard.UnsafeFileError as exc:
        return "blocked:" + exc.reason
print("counter", outcome(pickle.dumps(collections.Counter("ab"))))
print("system", outcome(b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."))
print("active", pickleguard.is_active(), pickleguard.mode())
print("marker", os.path.exists(marker))
"#;

fn probe(vars: &[(&str, &str)]) -> (String, String) {
    let python = &interpreters()[0];
    let dir = TempDir::new("config");
    let marker = dir.path().join("ran");
    let mut command = support::preloaded(&python.path);
    command.args(["-c", PROBE]).arg(&marker);
    for (key, value) in vars {
        command.env(key, value);
    }
    let Output { stdout, stderr, .. } = run_ok(&mut command);
    assert!(!marker.exists(), "the os.system payload ran with {vars:?}");
    (text(&stdout), text(&stderr))
}

#[test]
fn default_is_enforce() {
    let (out, err) = probe(&[]);
    assert_eq!(
        out,
        "counter blocked:not allowlisted\nsystem blocked:hard-denied\nactive True enforce\nmarker False\n"
    );
    assert_eq!(err, "");
}

#[test]
fn allow_variable_adds_exact_globals() {
    let (out, err) = probe(&[("PICKLEGUARD_ALLOW", "collections.Counter")]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\n"),
        "{out}"
    );
    assert_eq!(err, "");
}

#[test]
fn bad_allow_entries_are_reported_and_the_rest_apply() {
    let value = "os.system, collections.Counter,notaglobal,torch.*";
    let (out, err) = probe(&[("PICKLEGUARD_ALLOW", value)]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\n"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "one line per bad entry: {err}");
    for line in &lines {
        assert!(
            line.starts_with(&format!("pickleguard: PICKLEGUARD_ALLOW={value}: ")),
            "{line}"
        );
    }
    assert!(
        lines[0].contains("`os.system` is hard-denied"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("`notaglobal` is not a global"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("`torch.*`") && lines[2].contains("wildcards"),
        "{}",
        lines[2]
    );
}

#[test]
fn warn_mode_reports_and_allows_but_hard_denies_stay() {
    let (out, err) = probe(&[("PICKLEGUARD_MODE", "warn")]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\nactive True warn\n"),
        "{out}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pickleguard: warn mode: allowed `collections.Counter`"),
        "{err}"
    );
    assert!(err.contains("The load was called from <string>:"), "{err}");
}

#[test]
fn bad_mode_keeps_enforce() {
    for bad in ["disabled", "0", "enforcing"] {
        let (out, err) = probe(&[("PICKLEGUARD_MODE", bad)]);
        assert!(
            out.starts_with(
                "counter blocked:not allowlisted\nsystem blocked:hard-denied\nactive True enforce"
            ),
            "{out}"
        );
        assert_eq!(
            err,
            format!("pickleguard: PICKLEGUARD_MODE={bad}: `{bad}` is not a mode: use `enforce`, `warn` or `off`; the guard stays in `enforce` mode\n")
        );
    }
}

#[test]
fn off_mode_is_announced_once_and_checks_nothing() {
    let python = &interpreters()[0];
    let output = run_ok(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_MODE", "off")
            .args(["-c", "import pickle, collections, pickleguard; pickle.loads(pickle.dumps(collections.Counter())); print(pickleguard.is_active())"]),
    );
    assert_eq!(text(&output.stdout), "False\n");
    assert_eq!(
        text(&output.stderr),
        "pickleguard: PICKLEGUARD_MODE=off: pickles in this process are not checked\n"
    );
}

#[test]
fn suggested_allow_value_extends_the_current_one() {
    let python = &interpreters()[0];
    let output = support::run(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_ALLOW", "a.b")
            .args([
                "-c",
                "import pickle, collections; pickle.loads(pickle.dumps(collections.Counter()))",
            ]),
        std::time::Duration::from_secs(30),
    );
    let err = text(&output.stderr);
    assert!(
        err.contains("PICKLEGUARD_ALLOW=a.b,collections.Counter in the environment"),
        "{err}"
    );
}
