//! Structured logs: JSON lines with the documented fields, levels, a log file, fork safety
//! under heavy logging, and the host's RUST_LOG ignored.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::{probe, PROBE};
use crate::support::{self, interpreters, json_lines, run, run_ok, script, text, TempDir};

const FIELDS: [&str; 15] = [
    "ts",
    "level",
    "event",
    "module",
    "name",
    "decision",
    "mode",
    "policy_source",
    "caller",
    "pid",
    "ppid",
    "exe",
    "python_version",
    "pickleguard_version",
    "message",
];

#[test]
fn json_lines_carry_every_documented_field() {
    let (_, err) = probe(&[
        ("PICKLEGUARD_LOG_FORMAT", "json"),
        ("PICKLEGUARD_LOG", "info"),
        ("PICKLEGUARD_MODE", "warn"),
        ("PICKLEGUARD_ALLOW", "not-a-global"),
    ]);
    let lines = json_lines(err.as_bytes());
    assert_eq!(
        lines.len(),
        err.lines().count(),
        "every stderr line is JSON: {err}"
    );
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["config_error", "warned", "blocked"], "{err}");
    for line in &lines {
        let keys: BTreeSet<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, FIELDS.into_iter().collect(), "{line}");
        assert!(line["pid"].as_u64().unwrap() > 0 && line["ppid"].as_u64().unwrap() > 0);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(
            line["python_version"].as_str().unwrap().starts_with("3."),
            "{line}"
        );
        assert_eq!(line["pickleguard_version"], env!("CARGO_PKG_VERSION"));
    }
    let warned = &lines[1];
    assert_eq!(
        (
            &warned["level"],
            &warned["module"],
            &warned["name"],
            &warned["decision"],
            &warned["mode"]
        ),
        (
            &"warn".into(),
            &"collections".into(),
            &"Counter".into(),
            &"not-allowlisted".into(),
            &"warn".into()
        )
    );
    assert_eq!(warned["caller"], "<string>:7");
    let blocked = &lines[2];
    assert_eq!(
        (&blocked["decision"], &blocked["policy_source"]),
        (&"hard-denied".into(), &"hard-deny".into())
    );
    assert_eq!(lines[0]["level"], "error");
}

#[test]
fn levels_and_log_file() {
    let (_, quiet) = probe(&[("PICKLEGUARD_LOG", "none")]);
    assert_eq!(quiet, "", "level none logs nothing");
    let (_, errors_only) = probe(&[("PICKLEGUARD_LOG", "error"), ("PICKLEGUARD_ALLOW", "bad")]);
    assert_eq!(
        errors_only.lines().count(),
        1,
        "only the config error: {errors_only}"
    );

    let dir = TempDir::new("logfile");
    let log = dir.path().join("pg.jsonl");
    let (_, err) = probe(&[
        ("PICKLEGUARD_LOG_FILE", log.to_str().unwrap()),
        ("PICKLEGUARD_LOG_FORMAT", "json"),
    ]);
    assert_eq!(err, "", "logs go to the file, not stderr");
    let lines = json_lines(&std::fs::read(&log).unwrap());
    assert_eq!(lines.len(), 2, "two blocked globals");
    assert!(lines.iter().all(|l| l["event"] == "blocked"));
}

#[test]
fn the_hosts_rust_log_is_ignored() {
    let python = &interpreters()[0];
    let dir = TempDir::new("rustlog");
    let plain = run_ok(
        support::preloaded(&python.path)
            .args(["-c", PROBE])
            .arg(dir.path().join("m")),
    );
    let with_rust_log = run_ok(
        support::preloaded(&python.path)
            .env("RUST_LOG", "trace")
            .args(["-c", PROBE])
            .arg(dir.path().join("m")),
    );
    assert_eq!(text(&with_rust_log.stderr), text(&plain.stderr));
}

/// HP-10: 8 threads logging a refusal on every round (JSON, to stderr and to a file) while
/// the main thread forks 8 children that log too. A lock inherited mid-write would hang a
/// child; the timeout turns that into a failure.
#[test]
fn forks_while_threads_log_never_deadlock() {
    for python in interpreters() {
        for target in ["stderr", "file"] {
            let markers = TempDir::new("forklog");
            let logs = TempDir::new("forklog-file");
            let mut command = support::preloaded(&python.path);
            command
                .env("PICKLEGUARD_LOG_FORMAT", "json")
                .args(["-W", "ignore"])
                .arg(script("threads_and_forks.py"))
                .arg(markers.path());
            if target == "file" {
                command.env("PICKLEGUARD_LOG_FILE", logs.path().join("pg.jsonl"));
            }
            let output = run(&mut command, Duration::from_secs(120));
            assert!(
                output.status.success(),
                "{} {target}: {}",
                python.label,
                text(&output.stderr)
            );
            assert_eq!(
                text(&output.stdout),
                "threads and forks passed\n",
                "{}",
                python.label
            );
            let log = match target {
                "file" => std::fs::read(logs.path().join("pg.jsonl")).unwrap(),
                _ => output.stderr,
            };
            let lines = json_lines(&log);
            let pids: BTreeSet<u64> = lines.iter().map(|l| l["pid"].as_u64().unwrap()).collect();
            assert!(
                lines.len() >= 8 * 300,
                "{} {target}: {} lines",
                python.label,
                lines.len()
            );
            assert!(pids.len() >= 9, "parent and children all logged: {pids:?}");
        }
    }
}
