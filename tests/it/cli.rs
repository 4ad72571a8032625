//! `pickleguard run` and `pickleguard doctor`.

use std::time::Duration;

use crate::support::{self, interpreters, run, run_ok, text, TempDir};

#[test]
fn run_preloads_the_guard_and_protects_the_server() {
    let python = &interpreters()[0];
    let dir = TempDir::new("run");
    let examples = support::repo().join("examples");
    run_ok(
        support::command(&python.path)
            .arg(examples.join("make_demo_models.py"))
            .arg(dir.path()),
    );
    let serve = |model: &str| {
        run(
            support::command(support::cli())
                .args(["run", "--"])
                .arg(&python.path)
                .arg(examples.join("serve.py"))
                .arg(dir.path().join(model))
                .arg("--once"),
            Duration::from_secs(60),
        )
    };
    let benign = serve("model.pkl");
    assert!(benign.status.success(), "{}", text(&benign.stderr));
    assert!(text(&benign.stdout).contains("'prediction': 1.5"));
    let evil = serve("evil.pkl");
    assert!(!evil.status.success());
    assert!(
        text(&evil.stderr).contains("pickleguard.UnsafeFileError"),
        "{}",
        text(&evil.stderr)
    );
    assert!(!dir.path().join("PWNED").exists(), "the payload ran");
}

#[test]
fn run_sets_options_and_keeps_ld_preload_entries_once() {
    let python = &interpreters()[0];
    let shim = support::shim();
    let output = run_ok(
        support::command(support::cli())
            .env("LD_PRELOAD", format!("{} /lib/x86_64-linux-gnu/libc.so.6", shim.display()))
            .args(["run", "--mode", "warn", "--allow", "a.B", "--pack", "stdlib-data", "--"])
            .arg(&python.path)
            .args(["-c", "import os, pickleguard; print(os.environ['LD_PRELOAD']); print(pickleguard.mode(), 'a.B' in pickleguard.allowed(), 'collections.Counter' in pickleguard.allowed())"]),
    );
    assert_eq!(
        text(&output.stdout),
        format!(
            "{}:/lib/x86_64-linux-gnu/libc.so.6\nwarn True True\n",
            shim.display()
        )
    );
}

#[test]
fn run_refuses_a_bad_configuration_with_78() {
    let output = run(
        support::command(support::cli()).args(["run", "--allow", "os.system", "--", "true"]),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(78));
    assert!(
        text(&output.stderr).contains("`os.system` is hard-denied"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn run_reports_usage_and_missing_commands() {
    let usage = run(
        support::command(support::cli()).arg("run"),
        Duration::from_secs(30),
    );
    assert_eq!(usage.status.code(), Some(4));
    let missing = run(
        support::command(support::cli()).args(["run", "--", "/nonexistent/program"]),
        Duration::from_secs(30),
    );
    assert_eq!(missing.status.code(), Some(127));
}

#[test]
fn doctor_reports_a_protected_interpreter() {
    for python in interpreters() {
        let output = run(
            support::command(support::cli())
                .arg("doctor")
                .arg(&python.path),
            Duration::from_secs(60),
        );
        let out = text(&output.stdout);
        assert!(output.status.success(), "{}: {out}", python.label);
        assert!(
            out.contains("ok   hook: active, mode enforce"),
            "{}: {out}",
            python.label
        );
        let link = if python.label.contains("static") {
            "static"
        } else {
            "shared"
        };
        assert!(
            out.contains(&format!("ok   libpython: {link}")),
            "{}: {out}",
            python.label
        );
    }
}

#[test]
fn doctor_flags_an_unprotectable_interpreter() {
    let Some((version, path)) = support::pyenv_python("3.7.") else {
        eprintln!("SKIP: CPython 3.7 is not installed under pyenv");
        return;
    };
    let output = run(
        support::command(support::cli()).arg("doctor").arg(&path),
        Duration::from_secs(60),
    );
    assert_eq!(output.status.code(), Some(1), "{version}");
    assert!(
        text(&output.stdout).contains("FAIL python:"),
        "{}",
        text(&output.stdout)
    );
}
