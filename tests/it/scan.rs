//! `pickleguard scan` and `pickleguard allowlist` against the project's own samples: every
//! attack-corpus payload is flagged, every benign sample passes, exit codes are as documented.

use std::time::Duration;

use crate::support::{self, interpreters, run, run_ok, script, text, TempDir};

/// The corpus and benign samples written as files.
fn samples() -> TempDir {
    let dir = TempDir::new("samples");
    run_ok(
        support::command(&interpreters()[0].path)
            .arg(script("write_samples.py"))
            .arg(dir.path()),
    );
    dir
}

fn scan(args: &[&str], paths: &[std::path::PathBuf]) -> std::process::Output {
    run(
        support::command(support::cli())
            .arg("scan")
            .args(args)
            .args(paths),
        Duration::from_secs(60),
    )
}

#[test]
fn scan_flags_every_attack_payload() {
    let dir = samples();
    let payloads: Vec<_> = std::fs::read_dir(dir.path().join("malicious"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(payloads.len() >= 25, "{payloads:?}");
    for payload in &payloads {
        let output = scan(&[], std::slice::from_ref(payload));
        // 1: hard-denied or unresolvable; 5: not allowlisted (and nothing worse).
        assert!(
            matches!(output.status.code(), Some(1 | 5)),
            "{}: {}",
            payload.display(),
            text(&output.stdout)
        );
    }
    let json = scan(&["--format", "json"], &[dir.path().join("malicious")]);
    assert_eq!(json.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["summary"]["scanned"], payloads.len());
    assert_eq!(document["summary"]["with_findings"], payloads.len());
}

#[test]
fn scan_passes_every_benign_sample_and_the_demo_model() {
    let dir = samples();
    let output = scan(&[], &[dir.path().join("benign")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout)
            .contains("6 file(s) scanned: 0 hard-denied, 0 not allowlisted, 0 with errors"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn scan_exit_codes() {
    let dir = TempDir::new("scan-codes");
    let nothing = dir.path().join("notes.txt");
    std::fs::write(&nothing, "not a pickle").unwrap();
    assert_eq!(
        scan(&[], &[nothing]).status.code(),
        Some(3),
        "nothing scanned"
    );
    let truncated = dir.path().join("truncated.pkl");
    std::fs::write(&truncated, b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c").unwrap();
    let output = scan(&[], std::slice::from_ref(&truncated));
    assert_eq!(
        output.status.code(),
        Some(1),
        "a hard-denied global before the damage decides the exit status"
    );
    assert_eq!(
        scan(&["--fail-on", "error"], std::slice::from_ref(&truncated))
            .status
            .code(),
        Some(2),
        "a truncated stream is an error"
    );
    let out = text(&output.stdout);
    assert!(
        out.contains("hard-denied `os.system`"),
        "globals before the damage are listed: {out}"
    );
    let usage = run(
        support::command(support::cli()).arg("scan"),
        Duration::from_secs(30),
    );
    assert_eq!(usage.status.code(), Some(4));
}

#[test]
fn scan_uses_the_runtime_policy_sources() {
    let dir = TempDir::new("scan-policy");
    let counter = dir.path().join("counter.pkl");
    std::fs::write(
        &counter,
        b"\x80\x04\x8c\x0bcollections\x8c\x07Counter\x93)R.",
    )
    .unwrap();
    assert_eq!(
        scan(&[], std::slice::from_ref(&counter)).status.code(),
        Some(5),
        "not allowlisted, nothing worse"
    );
    assert_eq!(
        scan(
            &["--allow", "collections.Counter"],
            std::slice::from_ref(&counter)
        )
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        scan(&["--pack", "stdlib-data"], std::slice::from_ref(&counter))
            .status
            .code(),
        Some(0)
    );
    let env = run(
        support::command(support::cli())
            .env("PICKLEGUARD_ALLOW", "collections.Counter")
            .arg("scan")
            .arg(&counter),
        Duration::from_secs(30),
    );
    assert_eq!(env.status.code(), Some(0));
    let config = dir.path().join("pg.toml");
    std::fs::write(&config, "allow = [\"collections.Counter\"]\n").unwrap();
    assert_eq!(
        scan(
            &["--config", config.to_str().unwrap()],
            std::slice::from_ref(&counter)
        )
        .status
        .code(),
        Some(0)
    );
}

#[test]
fn allowlist_prints_what_files_need_and_never_allows_hard_denied() {
    let dir = samples();
    let mixed = TempDir::new("allowlist");
    std::fs::write(
        mixed.path().join("counter.pkl"),
        b"\x80\x04\x8c\x0bcollections\x8c\x07Counter\x93)R.",
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("malicious/AT-01.pkl"),
        mixed.path().join("evil.pkl"),
    )
    .unwrap();
    let output = run(
        support::command(support::cli())
            .arg("allowlist")
            .arg(mixed.path()),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    let allow = support::allow_block(&out);
    assert!(
        allow.contains("{ global = \"collections.Counter\""),
        "{out}"
    );
    assert!(!allow.contains("os.system"), "{out}");
    assert!(
        out.contains("#   os.system: runs commands and touches files"),
        "{out}"
    );
}
