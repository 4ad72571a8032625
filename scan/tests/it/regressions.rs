//! Replays every input saved under `tests/regressions/`: each once crashed or misled the scanner
//! (see the README there). Each must now produce a report that serializes; a differential
//! harness find (`diff-*`, with a `.json` naming the globals the real loaders resolved) must
//! list every one of those globals, or be a finding. A rules harness find (`rules-*`, whose
//! `.json` holds the runtime's verdict under the preload) must have a `rule` concern naming the
//! check the runtime refused it by, or none if the runtime loaded it.

use pickleguard_policy::Policy;
use pickleguard_scan::{Limits, Scanner};

#[test]
fn saved_inputs_scan_without_panicking() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/regressions");
    let policy = Policy::new();
    let scanner = Scanner::new(&policy).with_limits(Limits {
        max_decompressed: 64 << 20,
        ..Limits::default()
    });
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).expect("tests/regressions") {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|ext| ext == "md" || ext == "json")
        {
            continue;
        }
        let report = scanner.scan_file(&path);
        assert!(report.to_json().starts_with('{'), "{}", path.display());
        replayed += 1;
        let expected = path.with_file_name(format!(
            "{}.json",
            path.file_name().unwrap().to_string_lossy()
        ));
        let Ok(expected) = std::fs::read(&expected) else {
            continue;
        };
        let expected: serde_json::Value = serde_json::from_slice(&expected).unwrap();
        if expected["harness"] == "rules" {
            rules_find_agrees(&path, &expected);
            continue;
        }
        let listed: Vec<(String, String)> = report
            .streams
            .iter()
            .flat_map(|s| &s.globals)
            .filter_map(|g| Some((g.module.clone()?, g.name.clone()?)))
            .collect();
        for missed in expected["missed"].as_array().unwrap() {
            let pair = (
                missed[0].as_str().unwrap().to_string(),
                missed[1].as_str().unwrap().to_string(),
            );
            assert!(
                listed.contains(&pair) || report.has_findings(),
                "{}: a loader resolves {pair:?}, the scan does not list it: {}",
                path.display(),
                report.to_json()
            );
        }
    }
    println!("replayed {replayed} regression inputs");
}

/// A `rules-*` find of scan/tests/differential/rules_differential.py, scanned with the packs the
/// load had: `expect.rule` names the check the runtime refused it by, which a `rule` concern must
/// name too; `expect.loaded` says the runtime loaded it, so no `rule` concern may refuse it.
fn rules_find_agrees(path: &std::path::Path, expected: &serde_json::Value) {
    let mut policy = Policy::new();
    for pack in expected["packs"].as_array().into_iter().flatten() {
        policy.enable_pack(pack.as_str().unwrap()).unwrap();
    }
    let report = Scanner::new(&policy).scan_file(path);
    let rules: Vec<&str> = report
        .concerns
        .iter()
        .filter(|c| c.kind == pickleguard_scan::ConcernKind::Rule)
        .map(|c| c.detail.as_str())
        .collect();
    if let Some(check) = expected["expect"]["rule"].as_str() {
        let named = format!("refused by `{check}`");
        assert!(
            rules.iter().any(|detail| detail.contains(&named)),
            "{}: the runtime refuses it by `{check}`, the scan does not: {}",
            path.display(),
            report.to_json()
        );
    }
    if expected["expect"]["loaded"] == true {
        assert!(
            rules.is_empty(),
            "{}: the runtime loads it, the scan refuses it by a rule: {}",
            path.display(),
            report.to_json()
        );
    }
}
