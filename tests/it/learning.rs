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
    let record = dir.path().join("records.jsonl");
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
    let lines = support::json_lines(records.as_bytes());
    assert_eq!(
        lines.len(),
        16,
        "one line per distinct global per process:\n{records}"
    );
    assert_eq!(records.lines().count(), 16, "no torn lines:\n{records}");
    for name in names {
        let matching: Vec<_> = lines
            .iter()
            .filter(|l| l["global"] == format!("collections.{name}").as_str())
            .collect();
        assert_eq!(matching.len(), 1, "{name}:\n{records}");
        assert_eq!(matching[0]["decision"], "not-allowlisted", "{records}");
        assert_eq!(matching[0]["caller"], "<string>:6", "{records}");
    }
    let ordered = lines
        .iter()
        .filter(|l| l["global"] == "collections.OrderedDict" && l["decision"] == "allowed")
        .count();
    assert_eq!(ordered, 8, "allowed globals are recorded too:\n{records}");
    assert!(
        lines.iter().all(|l| l["pid"].as_u64().is_some()),
        "{records}"
    );
}

#[test]
fn learn_turns_records_into_a_reviewed_snippet() {
    let python = &interpreters()[0];
    let dir = TempDir::new("learn");
    let record = dir.path().join("records.jsonl");
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
    assert!(
        text(&check.stderr).contains("still marked `TODO review`"),
        "unreviewed entries are warned about: {}",
        text(&check.stderr)
    );
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

/// A model file name that closes a TOML string and opens an allow entry of its own (issue 13).
const HOSTILE_NAME: &str = r#"model" }, { global = "mymodel.Backdoor", reason = "ok.pkl"#;

/// A protocol 4 pickle that resolves `module.name`.
fn pickle_of(module: &str, name: &str) -> Vec<u8> {
    let mut data = b"\x80\x04\x8c".to_vec();
    data.push(u8::try_from(module.len()).unwrap());
    data.extend(module.as_bytes());
    data.push(0x8c);
    data.push(u8::try_from(name.len()).unwrap());
    data.extend(name.as_bytes());
    data.extend(b"\x93.");
    data
}

fn cli(args: &[&std::ffi::OsStr]) -> std::process::Output {
    run(
        support::command(support::cli()).args(args),
        Duration::from_secs(60),
    )
}

/// PG-1: a hostile file name cannot add an allow entry. It passes because `allowlist` writes
/// the file name inside one TOML string with a serializer; it would fail if the entry were
/// built with `format!` (the control shows that splice really allows `mymodel.Backdoor`).
#[test]
fn hostile_file_names_cannot_inject_allow_entries() {
    let dir = TempDir::new("hostile");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join(HOSTILE_NAME), pickle_of("mymodel", "Net")).unwrap();
    let config = dir.path().join("suggested.toml");
    let output = cli(&[
        "allowlist".as_ref(),
        "--output".as_ref(),
        config.as_os_str(),
        models.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let written = std::fs::read_to_string(&config).unwrap();
    let check = cli(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    let summary = text(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        summary.contains("extra allowed globals: 1\n"),
        "{summary}\n{written}"
    );
    assert!(
        summary.contains("  mymodel.Net  from config file line"),
        "{summary}"
    );
    assert!(!summary.contains("Backdoor  from"), "{summary}\n{written}");
    assert!(
        text(&check.stderr).contains("`mymodel.Net` is still marked `TODO review`"),
        "{}",
        text(&check.stderr)
    );
    assert!(!summary.contains("ok: no problems\n"), "{summary}");

    // Control: the same reason spliced into the line with format! allows the backdoor.
    let spliced = dir.path().join("spliced.toml");
    std::fs::write(
        &spliced,
        format!(
            "allow = [\n  {{ global = \"mymodel.Net\", reason = \"TODO review: seen 1x, e.g. {}@2\" }},\n]\n",
            models.join(HOSTILE_NAME).display()
        ),
    )
    .unwrap();
    let check = cli(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        spliced.as_os_str(),
    ]);
    assert!(
        text(&check.stdout).contains("mymodel.Backdoor  from config file line 2"),
        "the control must show the injection: {}",
        text(&check.stdout)
    );
}

/// PG-2: a caller path with a space survives the record file and `learn` whole; `learn`
/// honours `--pack`, and flags a function.
#[test]
fn learn_keeps_caller_paths_and_honours_packs() {
    let python = &interpreters()[0];
    let dir = TempDir::new("learn-paths");
    let scripts = dir.path().join("my models");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("run it.py");
    std::fs::write(
        &script,
        "import pickle\nfor data in (b'\\x80\\x04\\x8c\\x0bcollections\\x8c\\x07Counter\\x93.', b'\\x80\\x04\\x8c\\x07mymodel\\x8c\\x05build\\x93.'):\n    try:\n        pickle.loads(data)\n    except Exception:\n        pass\n",
    )
    .unwrap();
    let record = dir.path().join("records.jsonl");
    let out = run(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_RECORD", &record)
            .env("PICKLEGUARD_LOG", "none")
            .arg(&script),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snippet = cli(&["learn".as_ref(), record.as_os_str()]);
    let snippet = text(&snippet.stdout);
    let caller = format!("e.g. {}:4", script.display());
    assert!(snippet.contains(&caller), "{caller} in:\n{snippet}");
    assert!(
        snippet.contains("# WARNING: `mymodel.build` looks like a function"),
        "{snippet}"
    );
    let with_pack = cli(&[
        "learn".as_ref(),
        "--pack".as_ref(),
        "stdlib-data".as_ref(),
        record.as_os_str(),
    ]);
    let with_pack = text(&with_pack.stdout);
    assert!(
        !support::allow_block(&with_pack).contains("collections.Counter"),
        "{with_pack}"
    );
    assert!(
        with_pack.contains("#   collections.Counter: already allowed by pack `stdlib-data`"),
        "{with_pack}"
    );
}

/// PG-3: `--merge` keeps mode, packs, lock and comments; `--output` never overwrites; and
/// `learn ... > config` is refused instead of silently losing the settings.
#[test]
fn learn_merges_without_losing_settings_and_never_overwrites() {
    let dir = TempDir::new("learn-merge");
    let record = dir.path().join("records.jsonl");
    std::fs::write(
        &record,
        "{\"global\":\"mymodel.Net\",\"module\":\"mymodel\",\"name\":\"Net\",\"decision\":\"not-allowlisted\",\"source\":\"\",\"caller\":\"serve.py:3\",\"pid\":1}\n",
    )
    .unwrap();
    let config = dir.path().join("pickleguard.toml");
    let original = "# production policy\nmode = \"enforce\"\npacks = [\"sklearn\"]\nlock = true\nallow = [\n  { global = \"a.B\", reason = \"ours\" }, # reviewed 2026-01\n]\n";
    std::fs::write(&config, original).unwrap();

    let refused = cli(&[
        "learn".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        config.as_os_str(),
        record.as_os_str(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("not overwriting"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);

    let beside = dir.path().join("pickleguard.new.toml");
    let wrote = cli(&[
        "learn".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        beside.as_os_str(),
        record.as_os_str(),
    ]);
    assert_eq!(wrote.status.code(), Some(0), "{}", text(&wrote.stderr));
    let new = std::fs::read_to_string(&beside).unwrap();
    assert!(
        new.contains("packs = [\"sklearn\"]\nlock = true\n"),
        "{new}"
    );
    assert!(new.contains("mymodel.Net"), "{new}");

    let merged = cli(&[
        "learn".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--merge".as_ref(),
        record.as_os_str(),
    ]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(
        after.starts_with(
            "# production policy\nmode = \"enforce\"\npacks = [\"sklearn\"]\nlock = true\n"
        ),
        "{after}"
    );
    assert!(after.contains("# reviewed 2026-01"), "{after}");
    assert!(
        after.contains(
            "{ global = \"mymodel.Net\", reason = \"TODO review: seen 1x, e.g. serve.py:3\" }"
        ),
        "{after}"
    );
    let check = cli(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("lock: on"),
        "{}",
        text(&check.stdout)
    );

    // `learn > the config` (the shell empties it first) is an error, not a silent loss.
    let redirected = std::fs::File::create(&config).unwrap();
    let output = support::command(support::cli())
        .args(["learn", "--config"])
        .arg(&config)
        .arg(&record)
        .stdout(redirected)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("standard output is the config file"),
        "{}",
        text(&output.stderr)
    );
}
