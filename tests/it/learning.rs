//! Learning mode: many processes recording into one file at once, and `pickleguard learn`
//! turning the records into a reviewed snippet that never allows a hard-denied global.

use std::time::Duration;

use crate::config::PROBE;
use crate::support::{self, interpreters, run, text, TempDir};

/// Each process resolves its own global (`collections.Counter`, `collections.deque`, ...).
const RECORDER: &str = r#"
import collections, pickle, sys
name = sys.argv[1]
for _ in range(50):
    try:
        pickle.loads(b"\x80\x04\x8c\x0bcollections\x8c" + bytes([len(name)]) + name.encode() + b"\x93.")
    except pickle.UnpicklingError:
        pass
pickle.loads(pickle.dumps(collections.OrderedDict(a=1)))
"#;

#[test]
fn eight_processes_record_concurrently_without_torn_lines() {
    let python = &interpreters()[0];
    let dir = TempDir::new("record");
    let record = dir.path().join("records.toml");
    let names = [
        "Counter",
        "deque",
        "defaultdict",
        "ChainMap",
        "UserDict",
        "UserList",
        "UserString",
        "namedtuple",
    ];
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            let mut command = support::preloaded(&python.path);
            command
                .env("PICKLEGUARD_RECORD", &record)
                .env("PICKLEGUARD_LOG", "none")
                .args(["-c", RECORDER, name]);
            std::thread::spawn(move || run(&mut command, Duration::from_secs(60)))
        })
        .collect();
    for child in children {
        assert!(child.join().unwrap().status.success());
    }
    let records = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = records.lines().collect();
    assert_eq!(
        lines.len(),
        16,
        "one line per distinct global per process:\n{records}"
    );
    for name in names {
        let needed = format!("  {{ global = \"collections.{name}\", reason = \"recorded\" }}, # decision=not-allowlisted caller=<string>:6 pid=");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&needed)).count(),
            1,
            "{name}:\n{records}"
        );
    }
    let ordered = lines
        .iter()
        .filter(|l| l.starts_with("# { global = \"collections.OrderedDict\""))
        .count();
    assert_eq!(
        ordered, 8,
        "allowed globals are recorded commented out:\n{records}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" pid=") && l.ends_with(|c: char| c.is_ascii_digit())),
        "{records}"
    );
}

#[test]
fn learn_turns_records_into_a_reviewed_snippet() {
    let python = &interpreters()[0];
    let dir = TempDir::new("learn");
    let record = dir.path().join("records.toml");
    let output = run(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_RECORD", &record)
            .env("PICKLEGUARD_MODE", "warn")
            .args(["-c", PROBE])
            .arg(dir.path().join("marker")),
        Duration::from_secs(30),
    );
    assert!(output.status.success());
    let snippet = run(
        support::command(support::cli()).arg("learn").arg(&record),
        Duration::from_secs(30),
    );
    assert!(snippet.status.success(), "{}", text(&snippet.stderr));
    let snippet = text(&snippet.stdout);
    let allow = support::allow_block(&snippet);
    assert!(allow.contains("{ global = \"collections.Counter\", reason = \"TODO review: seen 1x, e.g. <string>:7\" },"), "{snippet}");
    assert!(
        !allow.contains("os.system"),
        "hard-denied globals are never allowed: {snippet}"
    );
    assert!(
        snippet.contains("#   os.system: runs commands and touches files"),
        "{snippet}"
    );

    // The snippet is a valid config that loads the recorded global.
    let config = dir.path().join("pickleguard.toml");
    std::fs::write(&config, &snippet).unwrap();
    let check = run(
        support::command(support::cli())
            .args(["check-config", "--quiet", "--config"])
            .arg(&config),
        Duration::from_secs(30),
    );
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let (out, _) = crate::config::probe(&[("PICKLEGUARD_CONFIG", config.to_str().unwrap())]);
    assert!(
        out.starts_with("counter loaded\nsystem blocked:hard-denied\n"),
        "{out}"
    );
}

#[test]
fn learn_with_nothing_to_learn_fails() {
    let dir = TempDir::new("learn-empty");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let output = run(
        support::command(support::cli()).arg("learn").arg(&empty),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(3));
}
