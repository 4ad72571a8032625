//! Configuration through real interpreters: the environment, the config file, their
//! precedence, every kind of bad value, modes, lock, and `pickleguard check-config`.
//! A bad value is reported and never weakens protection.

use std::path::Path;
use std::process::Output;

use crate::support::{self, interpreters, run, run_ok, text, TempDir};

/// Loads a `collections.Counter` (not allowlisted by default) and an `os.system` payload, and
/// prints what happened to each.
pub const PROBE: &str = r#"
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
"#;

/// Runs [`PROBE`] with `vars` and checks the payload never ran.
pub fn probe(vars: &[(&str, &str)]) -> (String, String) {
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

const ENFORCED: &str =
    "counter blocked:not-allowlisted\nsystem blocked:hard-denied\nactive True enforce\n";
const BLOCKED_LINES: &str = "pickleguard: blocked `collections.Counter` (not in the allowlist) at <string>:7\npickleguard: blocked `os.system` (hard-denied: runs commands and touches files) at <string>:7\n";

#[test]
fn default_is_enforce_with_one_line_per_blocked_global() {
    let (out, err) = probe(&[]);
    assert_eq!(out, ENFORCED);
    assert_eq!(err, BLOCKED_LINES);
}

#[test]
fn allow_variable_adds_exact_globals() {
    let (out, _) = probe(&[("PICKLEGUARD_ALLOW", "collections.Counter")]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\n"),
        "{out}"
    );
}

#[test]
fn bad_allow_entries_are_reported_and_the_rest_apply() {
    let value = "os.system, collections.Counter,notaglobal,torch.*";
    let (out, err) = probe(&[("PICKLEGUARD_ALLOW", value)]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\n"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("blocked `")).collect();
    assert_eq!(lines.len(), 3, "one line per bad entry: {err}");
    // Each line names its own entry, never the whole value (issue 11: bounded problems).
    for (line, entry) in lines.iter().zip(["os.system", "notaglobal", "torch.*"]) {
        assert!(
            line.starts_with(&format!("pickleguard: PICKLEGUARD_ALLOW={entry}: ")),
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
    assert_eq!(
        out,
        "counter loaded\nsystem blocked:hard-denied\nactive True warn\n"
    );
    assert_eq!(
        err,
        "pickleguard: warn mode: allowed `collections.Counter`, which enforce mode would refuse: it is not in the allowlist at <string>:7\n\
         pickleguard: blocked `os.system` (hard-denied: runs commands and touches files) at <string>:7\n"
    );
}

#[test]
fn bad_values_keep_the_guard_on() {
    for (var, bad) in [
        ("PICKLEGUARD_MODE", "disabled"),
        ("PICKLEGUARD_MODE", "0"),
        ("PICKLEGUARD_LOCK", "maybe"),
        ("PICKLEGUARD_LOG_FORMAT", "xml"),
        ("PICKLEGUARD_PACKS", "everything"),
    ] {
        let (out, err) = probe(&[(var, bad)]);
        assert_eq!(out, ENFORCED, "{var}={bad}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("pickleguard: {var}={bad}: ")),
            "{var}: {err}"
        );
        assert!(first.contains(&format!("`{bad}`")), "{var}: {err}");
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
        "pickleguard: mode `off`: pickles in this process are not checked\n"
    );
}

#[test]
fn suggested_allow_value_extends_the_current_one() {
    let python = &interpreters()[0];
    let output = run(
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

const FILE: &str = r#"
mode = "warn"
packs = ["stdlib-data"]
allow = [
  { global = "collections.Counter", reason = "reviewed" },
]
[log]
level = "warn"
"#;

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("pickleguard.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn config_file_applies_and_env_overrides_it() {
    let dir = TempDir::new("file");
    let config = write_config(dir.path(), FILE);
    let (out, err) = probe(&[("PICKLEGUARD_CONFIG", &config)]);
    assert_eq!(
        out,
        "counter loaded\nsystem blocked:hard-denied\nactive True warn\n"
    );
    assert!(
        !err.contains("Counter"),
        "allowed by the file, so neither warned nor blocked: {err}"
    );
    let (out, _) = probe(&[
        ("PICKLEGUARD_CONFIG", &config),
        ("PICKLEGUARD_MODE", "enforce"),
    ]);
    assert!(
        out.ends_with("active True enforce\n"),
        "env beats file: {out}"
    );
}

#[test]
fn every_bad_config_file_entry_is_reported_with_its_line() {
    let dir = TempDir::new("badfile");
    let config = write_config(
        dir.path(),
        "mode = \"sometimes\"\nallow = [\"os.system\", \"collections.Counter\", { global = \"x.*\" }]\nmdoe = 1\n",
    );
    let (out, err) = probe(&[("PICKLEGUARD_CONFIG", &config)]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\nactive True enforce"),
        "{out}"
    );
    let problems: Vec<&str> = err.lines().filter(|l| l.contains(&config)).collect();
    assert_eq!(problems.len(), 4, "{err}");
    assert!(
        problems[0].starts_with(&format!(
            "pickleguard: {config}:1: `sometimes` is not a mode"
        )),
        "{err}"
    );
    assert!(
        problems[1].starts_with(&format!(
            "pickleguard: {config}:2: `os.system` is hard-denied"
        )),
        "{err}"
    );
    assert!(
        problems[2].starts_with(&format!("pickleguard: {config}:2: `x.*` is not a global")),
        "{err}"
    );
    assert!(
        problems[3].starts_with(&format!("pickleguard: {config}:3: unknown setting `mdoe`")),
        "{err}"
    );
}

#[test]
fn unreadable_or_broken_config_keeps_the_defaults() {
    let dir = TempDir::new("broken");
    let broken = write_config(dir.path(), "mode = \"off\"\nallow = [\n");
    for config in [broken.as_str(), "/nonexistent/pickleguard.toml"] {
        let (out, err) = probe(&[("PICKLEGUARD_CONFIG", config)]);
        assert!(
            out.contains("system blocked:hard-denied"),
            "{config}: {out}"
        );
        assert!(
            err.lines().next().unwrap_or_default().contains(config),
            "{config}: {err}"
        );
    }
}

#[test]
fn lock_forbids_weakening_from_python() {
    let script = r#"
import pickleguard
for call in (lambda: pickleguard.allow("collections.Counter"),
             pickleguard.deactivate_safe_ml_environment,
             lambda: pickleguard.activate_safe_ml_environment(also_allow=["collections.Counter"])):
    try:
        call()
        print("accepted")
    except PermissionError as exc:
        print("refused")
pickleguard.activate_safe_ml_environment()
print(pickleguard.mode(), "collections.Counter" in pickleguard.allowed())
"#;
    let python = &interpreters()[0];
    let output = run_ok(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_LOCK", "1")
            .args(["-c", script]),
    );
    assert_eq!(
        text(&output.stdout),
        "refused\nrefused\nrefused\nenforce False\n"
    );
    let err = text(&output.stderr);
    assert_eq!(
        err.matches("the policy is locked").count(),
        3,
        "each attempt is logged: {err}"
    );
    let unlocked = run_ok(support::preloaded(&python.path).args(["-c", script]));
    assert_eq!(
        text(&unlocked.stdout),
        "accepted\naccepted\naccepted\nenforce True\n"
    );
}

fn check_config(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = support::command(support::cli());
    command.arg("check-config").args(args);
    for (key, value) in vars {
        command.env(key, value);
    }
    run(&mut command, std::time::Duration::from_secs(30))
}

#[test]
fn check_config_exits_78_on_any_problem() {
    let dir = TempDir::new("check");
    let good = write_config(dir.path(), FILE);
    let ok = check_config(&[], &["--config", &good]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let summary = text(&ok.stdout);
    assert!(
        summary.contains("mode: warn") && summary.contains("packs: ml, stdlib-data"),
        "{summary}"
    );
    assert!(
        summary.contains("collections.Counter  from config file line 5 (reviewed)"),
        "{summary}"
    );

    let bad = check_config(&[("PICKLEGUARD_MODE", "nope")], &["--config", &good]);
    assert_eq!(bad.status.code(), Some(78));
    assert!(
        text(&bad.stderr).contains("error: PICKLEGUARD_MODE=nope: `nope` is not a mode"),
        "{}",
        text(&bad.stderr)
    );

    let missing = check_config(&[("PICKLEGUARD_CONFIG", "/nonexistent.toml")], &["--quiet"]);
    assert_eq!(missing.status.code(), Some(78));
    assert_eq!(text(&missing.stdout), "");
}
