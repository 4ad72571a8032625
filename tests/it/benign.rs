//! Benign data loads unchanged under the preload, at every protocol, through every entry point,
//! and the guard prints nothing while doing so.

use crate::support::{self, interpreters, json_lines, run_ok, script, text};

#[test]
fn round_trips_load_identically_at_every_protocol() {
    for python in interpreters() {
        let output = run_ok(support::preloaded(&python.path).arg(script("benign_roundtrip.py")));
        let results = json_lines(&output.stdout);
        let protocols: std::collections::BTreeSet<i64> = results
            .iter()
            .map(|r| r["protocol"].as_i64().unwrap())
            .collect();
        assert!(
            protocols.iter().copied().eq(0..=protocols.len() as i64 - 1) && protocols.len() >= 5,
            "{}: protocols 0-4 or 0-5 expected, got {protocols:?}",
            python.label
        );
        for result in &results {
            assert_eq!(result["ok"], true, "{}: {result}", python.label);
        }
        assert_eq!(
            text(&output.stderr),
            "",
            "{}: the guard must be silent",
            python.label
        );
    }
}
