//! multiprocessing's own pickles keep working under the default config (Pool, Process, Queue,
//! Pipe, Manager, ProcessPoolExecutor; spawn, fork and forkserver), while a malicious file
//! loaded inside a worker is still refused.

use std::time::Duration;

use crate::support::{self, interpreters, run, script, text, TempDir};

#[test]
fn multiprocessing_works_and_worker_file_loads_are_enforced() {
    for python in interpreters() {
        let markers = TempDir::new("ipc");
        let output = run(
            support::preloaded(&python.path)
                .args(["-W", "ignore"])
                .arg(script("ipc_checks.py"))
                .arg(markers.path()),
            Duration::from_secs(300),
        );
        let out = text(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {out}\n{}",
            python.label,
            text(&output.stderr)
        );
        assert!(
            out.ends_with("ok payload never ran\nipc checks passed\n"),
            "{}: {out}",
            python.label
        );
        assert_eq!(out.matches("worker file load").count(), 6, "{out}");
        assert!(!markers.path().join("PWNED").exists());
    }
}

/// Trust is by channel: the same object through a Pipe is refused once trust is off.
#[test]
fn ipc_trust_can_be_turned_off() {
    let probe = r#"
import collections, multiprocessing, pickleguard
a, b = multiprocessing.Pipe()
a.send(collections.Counter("x"))
try:
    print(b.recv())
except pickleguard.UnsafeFileError as exc:
    print("refused", exc.module, exc.name)
"#;
    let python = &interpreters()[0];
    let trusted = run(
        support::preloaded(&python.path).args(["-c", probe]),
        Duration::from_secs(30),
    );
    assert_eq!(text(&trusted.stdout), "Counter({'x': 1})\n");
    let untrusted = run(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_TRUST_IPC", "0")
            .args(["-c", probe]),
        Duration::from_secs(30),
    );
    assert_eq!(text(&untrusted.stdout), "refused collections Counter\n");
}
