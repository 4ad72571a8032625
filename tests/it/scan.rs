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
        "a stream that breaks after a refused global is a finding (real loaders run what \
         comes before the break)"
    );
    assert_eq!(
        scan(&["--fail-on", "error"], std::slice::from_ref(&truncated))
            .status
            .code(),
        Some(2),
        "with --fail-on error, the damage decides"
    );
    let broken = dir.path().join("broken.pkl");
    std::fs::write(
        &broken,
        b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93\x8c",
    )
    .unwrap();
    assert_eq!(
        scan(&[], &[broken]).status.code(),
        Some(2),
        "a truncated stream with only allowed globals is an error"
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

/// A directory for the CI-output tests: a hard-denied payload under a name with a space, an
/// unreviewed global, a safetensors file, and a note that is not a model.
fn ci_models() -> TempDir {
    let dir = TempDir::new("scan-ci");
    std::fs::write(
        dir.path().join("evil one.pkl"),
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("counter.pkl"),
        b"\x80\x04\x8c\x0bcollections\x8c\x07Counter\x93)R.",
    )
    .unwrap();
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut safetensors = (header.len() as u64).to_le_bytes().to_vec();
    safetensors.extend(header);
    safetensors.extend([0u8; 4]);
    std::fs::write(dir.path().join("model.safetensors"), safetensors).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a model").unwrap();
    dir
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = run_ok(support::command("sha256sum").arg(path));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn scan_json_has_versions_hashes_and_statuses() {
    let dir = ci_models();
    let output = scan(&["--format", "json"], &[dir.path().to_path_buf()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["tool"]["name"], "pickleguard");
    assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
    let files = doc["files"].as_array().unwrap();
    let by_name = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {doc}"))
    };
    let evil = by_name("evil one.pkl");
    assert_eq!(evil["status"], "hard-denied");
    assert_eq!(
        evil["sha256"],
        sha256_of(&dir.path().join("evil one.pkl")).as_str()
    );
    assert_eq!(
        evil["streams"][0]["globals"][0]["decision"]["verdict"],
        "hard-denied"
    );
    assert_eq!(by_name("counter.pkl")["status"], "not-allowlisted");
    let safe = by_name("model.safetensors");
    assert_eq!(safe["status"], "safe_format");
    assert_eq!(safe["safe_format"], "safetensors");
    assert_eq!(doc["summary"]["scanned"], 2);
    assert_eq!(doc["summary"]["hard_denied"], 1);
    assert_eq!(doc["summary"]["not_allowlisted"], 1);
    assert_eq!(doc["summary"]["safe_format"], 1);

    let text_out = text(&scan(&[], &[dir.path().to_path_buf()]).stdout);
    assert!(
        text_out.contains("model.safetensors: safe format (safetensors)"),
        "{text_out}"
    );
}

#[test]
fn scan_fail_on_separates_malware_from_unreviewed_globals() {
    let dir = ci_models();
    let counter = vec![dir.path().join("counter.pkl")];
    let evil = vec![dir.path().join("evil one.pkl")];
    assert_eq!(scan(&[], &counter).status.code(), Some(5));
    assert_eq!(
        scan(&["--fail-on", "hard-denied"], &counter).status.code(),
        Some(0),
        "unreviewed globals pass when only malware fails"
    );
    assert_eq!(
        scan(&["--fail-on", "hard-denied"], &evil).status.code(),
        Some(1)
    );
    assert_eq!(
        scan(&["--fail-on", "error,not-allowed"], &counter)
            .status
            .code(),
        Some(5)
    );
}

#[test]
fn scan_json_lines_stream_one_file_per_line() {
    let dir = ci_models();
    let output = scan(&["--format", "json-lines"], &[dir.path().to_path_buf()]);
    let lines = support::json_lines(&output.stdout);
    assert_eq!(
        lines.len(),
        4,
        "3 files (the note is skipped) and a summary"
    );
    assert!(lines[..3].iter().all(|l| l["path"].is_string()));
    assert_eq!(lines[3]["summary"]["exit_code"], 1);
    assert!(
        text(&output.stderr).is_empty(),
        "no progress line when piped"
    );
}

#[test]
fn scan_missing_file_gives_the_os_reason_and_is_not_counted() {
    let dir = TempDir::new("scan-missing");
    let missing = dir.path().join("missing.pkl");
    let output = scan(&[], std::slice::from_ref(&missing));
    let out = text(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("No such file or directory (os error 2)"),
        "{out}"
    );
    assert!(out.contains("0 file(s) scanned"), "{out}");
    assert!(out.contains("1 unreadable"), "{out}");
}

/// Checks the parts of SARIF 2.1.0 that code-scanning dashboards read. When
/// `PICKLEGUARD_SARIF_SCHEMA` names the OASIS schema file and `PICKLEGUARD_JSONSCHEMA_PYTHON` a
/// Python with `jsonschema`, the document is also validated against the schema.
#[test]
fn scan_sarif_is_valid_sarif_2_1_0() {
    let dir = ci_models();
    let output = support::command(support::cli())
        .current_dir(dir.path())
        .args(["scan", "--format", "sarif", "."])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run0 = &doc["runs"][0];
    let driver = &run0["tool"]["driver"];
    assert_eq!(driver["name"], "pickleguard");
    let rules: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{doc:#}");
    for result in results {
        let id = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index], id);
        assert!(["none", "note", "warning", "error"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.contains(' ') && !uri.contains('"'), "{uri}");
        assert!(location["region"]["byteOffset"].as_u64().is_some());
    }
    let evil = results
        .iter()
        .find(|r| r["ruleId"] == "hard-denied")
        .unwrap();
    assert_eq!(
        evil["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "./evil%20one.pkl"
    );
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "not-allowlisted" && r["level"] == "warning"));
    for artifact in run0["artifacts"].as_array().unwrap() {
        let hash = artifact["hashes"]["sha-256"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
    }

    match (
        std::env::var_os("PICKLEGUARD_SARIF_SCHEMA"),
        std::env::var_os("PICKLEGUARD_JSONSCHEMA_PYTHON"),
    ) {
        (Some(schema), Some(python)) => {
            let sarif = dir.path().join("out.sarif");
            std::fs::write(&sarif, &output.stdout).unwrap();
            let check = run_ok(support::command(python).arg("-c").arg(
                "import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\nv = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)\nerrors = list(v.iter_errors(json.load(open(sys.argv[2]))))\nprint(len(errors), 'schema error(s)')\nsys.exit(1 if errors else 0)",
            ).arg(schema).arg(&sarif));
            assert_eq!(text(&check.stdout), "0 schema error(s)\n");
        }
        _ => eprintln!("SKIP: SARIF schema validation: set PICKLEGUARD_SARIF_SCHEMA and PICKLEGUARD_JSONSCHEMA_PYTHON"),
    }
}

#[test]
fn packs_lists_entries_and_risk_notes() {
    let output = run_ok(support::command(support::cli()).arg("packs"));
    let out = text(&output.stdout);
    assert!(out.contains("ml: numpy arrays"), "{out}");
    assert!(
        out.contains("applied by newobj, build; checks: no-args, joblib-array-wrapper"),
        "{out}"
    );
    assert!(out.contains("referenced only; no checks"), "{out}");
    assert!(out.contains("      risk: nothing checks"), "{out}");
    let help = run_ok(support::command(support::cli()).args(["scan", "--help"]));
    let help = text(&help.stdout);
    for pack in ["stdlib-data", "sklearn", "pandas", "dill"] {
        assert!(help.contains(pack), "--pack help lists `{pack}`:\n{help}");
    }
}

#[test]
fn messages_name_the_flag_the_user_gave() {
    let output = run(
        support::command(support::cli()).args(["run", "--mode", "bogus", "--", "true"]),
        Duration::from_secs(30),
    );
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{err}");
    assert!(err.contains("--mode bogus"), "{err}");
    assert!(!err.contains("PICKLEGUARD_MODE"), "{err}");

    for command in [&["check-config"][..], &["scan", "/nonexistent/model.pkl"]] {
        let output = run(
            support::command(support::cli())
                .args(command)
                .args(["--config", "/nonexistent/pg.toml"]),
            Duration::from_secs(30),
        );
        let err = text(&output.stderr);
        assert!(
            err.contains("error: --config /nonexistent/pg.toml: cannot read the config file: No such file or directory"),
            "{command:?}: {err}"
        );
        assert!(!err.contains("PICKLEGUARD_CONFIG"), "{command:?}: {err}");
    }
}

/// On a terminal (made by `script`), stderr carries a progress line that is erased as each
/// file finishes; piped, it is silent (`scan_json_lines_stream_one_file_per_line`).
#[test]
fn scan_shows_progress_only_on_a_terminal() {
    if support::command("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: `script` (util-linux) is not installed");
        return;
    }
    let dir = ci_models();
    let command = format!(
        "{} scan --format json {}",
        support::cli().display(),
        dir.path().display()
    );
    let output = run(
        support::command("script").args(["-qec", &command, "/dev/null"]),
        Duration::from_secs(60),
    );
    let tty = text(&output.stdout);
    assert!(tty.contains("\x1b[2K[0/4] "), "{tty:?}");
    assert!(tty.contains("\x1b[2K[3/4] "), "{tty:?}");
}
