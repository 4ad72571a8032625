//! Replays every input saved under `tests/regressions/`: each once crashed or misled the scanner
//! (see the README there). Each must now produce a report that serializes.

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
        if path.extension().is_some_and(|ext| ext == "md") {
            continue;
        }
        let report = scanner.scan_file(&path);
        assert!(report.to_json().starts_with('{'), "{}", path.display());
        replayed += 1;
    }
    println!("replayed {replayed} regression inputs");
}
