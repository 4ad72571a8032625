//! Files written by CPython, checked against what CPython itself would resolve.

use std::collections::BTreeSet;
use std::process::Command;

use pickleguard_policy::Policy;
use pickleguard_scan::{Limits, Scanner, Verdict};
use serde_json::Value;

use crate::support::{python, TempDir};

#[test]
fn python_written_fixtures_scan_to_what_cpython_resolves() {
    let Some(python) = python("python_written_fixtures_scan_to_what_cpython_resolves") else {
        return;
    };
    let dir = TempDir::new("fixtures");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/make_fixtures.py");
    let status = Command::new(&python)
        .arg(script)
        .arg(dir.path())
        .status()
        .expect("run make_fixtures.py");
    assert!(status.success(), "make_fixtures.py failed");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest is JSON");

    let policy = Policy::new();
    let fixtures = manifest["fixtures"].as_array().expect("fixtures");
    assert!(
        fixtures.len() >= 30,
        "the fixture script wrote too few files"
    );
    let mut failures = Vec::new();
    for fixture in fixtures {
        let file = fixture["file"].as_str().unwrap();
        let mut limits = Limits::default();
        if let Some(max) = fixture["limits"]["max_decompressed"].as_u64() {
            limits.max_decompressed = max;
        }
        let report = Scanner::new(&policy)
            .with_limits(limits)
            .scan_file(&dir.path().join(file));

        let format = serde_json::to_value(&report.format).unwrap();
        if format != fixture["format"] {
            failures.push(format!(
                "{file}: format {format}, expected {}",
                fixture["format"]
            ));
        }
        let got: BTreeSet<(String, String)> = report
            .streams
            .iter()
            .flat_map(|s| &s.globals)
            .filter_map(|f| Some((f.module.clone()?, f.name.clone()?)))
            .collect();
        let expected: BTreeSet<(String, String)> = fixture["globals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g[0].as_str().unwrap().into(), g[1].as_str().unwrap().into()))
            .collect();
        if got != expected {
            failures.push(format!("{file}: globals {got:?}, expected {expected:?}"));
        }
        let unresolved = report
            .streams
            .iter()
            .flat_map(|s| &s.globals)
            .filter(|f| matches!(f.decision, Verdict::Unresolved { .. }))
            .count();
        if unresolved != 0 {
            failures.push(format!("{file}: {unresolved} unresolved globals"));
        }
        if report.is_error() != fixture["error"].as_bool().unwrap() {
            failures.push(format!(
                "{file}: is_error() is {}: {}",
                report.is_error(),
                report.to_json()
            ));
        }
        if let Some(members) = fixture["members"].as_array() {
            let got: Vec<Option<&str>> =
                report.streams.iter().map(|s| s.member.as_deref()).collect();
            let expected: Vec<Option<&str>> = members.iter().map(|m| m.as_str()).collect();
            if got != expected {
                failures.push(format!("{file}: members {got:?}, expected {expected:?}"));
            }
        }
        let mut kinds: Vec<String> = report
            .concerns
            .iter()
            .map(|c| {
                serde_json::to_value(c.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        let expected_kinds: Vec<String> = fixture["concerns"]
            .as_array()
            .map(|kinds| {
                kinds
                    .iter()
                    .map(|k| k.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if kinds != expected_kinds {
            failures.push(format!(
                "{file}: concerns {kinds:?}, expected {expected_kinds:?}: {:?}",
                report.concerns
            ));
        }
        // Adversarial fixtures (SP-n) are all findings, except the safe formats (SP-3, SP-11),
        // which must stay clean.
        let safe = fixture["format"].get("safe").is_some();
        if file.starts_with("sp") && report.has_findings() == safe {
            failures.push(format!(
                "{file}: has_findings() is {}: {}",
                report.has_findings(),
                report.to_json()
            ));
        }
        // Every fixture that names os.system must be flagged.
        if expected.iter().any(|(_, name)| name == "system") && !report.has_findings() {
            failures.push(format!("{file}: os.system not reported as a finding"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "checked {} fixtures written by Python {}",
        fixtures.len(),
        manifest["python"]
    );
}

#[test]
fn limits_show_in_the_report() {
    let Some(python) = python("limits_show_in_the_report") else {
        return;
    };
    let dir = TempDir::new("bomb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/make_fixtures.py");
    assert!(Command::new(&python)
        .arg(script)
        .arg(dir.path())
        .status()
        .unwrap()
        .success());
    let policy = Policy::new();
    let limits = Limits {
        max_decompressed: 1 << 20,
        ..Limits::default()
    };
    let report = Scanner::new(&policy)
        .with_limits(limits)
        .scan_file(&dir.path().join("bomb.zip"));
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["streams"][0]["member"], "bomb.pkl");
    assert_eq!(json["streams"][0]["error"]["kind"], "limit", "{json}");

    let report = Scanner::new(&policy).scan_file(&dir.path().join("nested.zip"));
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["streams"][0]["error"]["kind"], "too_deep", "{json}");
}
