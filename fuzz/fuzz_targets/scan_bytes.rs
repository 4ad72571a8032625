//! Any bytes through `Scanner::scan_bytes`: it must return a report, never panic, hang or
//! exhaust memory, and the report must serialize.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pickleguard_policy::Policy;
use pickleguard_scan::{Format, Limits, Scanner};

static POLICY: OnceLock<Policy> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let policy = POLICY.get_or_init(Policy::new);
    // Small container budgets keep each run fast; the logic under test is the same.
    let limits = Limits {
        max_decompressed: 8 << 20,
        max_members: 256,
        ..Limits::default()
    };
    let report = Scanner::new(policy).with_limits(limits).scan_bytes("fuzz", data);
    let json = report.to_json();
    assert!(json.starts_with('{'));
    // Offsets in a plain pickle point into the input.
    if report.format == Format::Pickle {
        for finding in report.streams.iter().flat_map(|s| &s.globals) {
            assert!(finding.offset < data.len() as u64);
        }
    }
    let _ = (report.has_findings(), report.is_error());
});
