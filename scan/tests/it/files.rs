//! `scan_file` against the file system.

use pickleguard_policy::Policy;
use pickleguard_scan::{Format, ScanError, Scanner, Verdict};

use crate::support::TempDir;

#[test]
fn mapped_file_empty_file_directory_and_missing_file() {
    let dir = TempDir::new("files");
    let policy = Policy::new();
    let scanner = Scanner::new(&policy);

    let evil = dir.path().join("evil.bin");
    std::fs::write(&evil, b"\x80\x02cos\nsystem\nq\x00.").unwrap();
    let report = scanner.scan_file(&evil);
    assert_eq!(report.format, Format::Pickle);
    assert_eq!(report.path, evil.display().to_string());
    assert!(report.has_findings());
    assert!(!report.is_error());
    assert!(matches!(
        report.streams[0].globals[0].decision,
        Verdict::HardDenied { .. }
    ));

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let report = scanner.scan_file(&empty);
    assert_eq!(report.format, Format::Unknown);
    assert!(!report.has_findings() && !report.is_error());

    let report = scanner.scan_file(dir.path());
    assert!(matches!(report.error, Some(ScanError::Io { .. })));

    let report = scanner.scan_file(&dir.path().join("missing"));
    assert!(matches!(report.error, Some(ScanError::Io { .. })));
    assert!(report.is_error());
    assert!(report.to_json().contains("\"kind\":\"io\""));
}

#[test]
fn allowed_globals_are_not_findings() {
    let policy = Policy::new();
    let report =
        Scanner::new(&policy).scan_bytes("ok.pkl", b"\x80\x02ccollections\nOrderedDict\n)R.");
    assert!(!report.has_findings());
    let Verdict::Allowed { source } = &report.streams[0].globals[0].decision else {
        panic!("{report:?}");
    };
    assert_eq!(source, "pack `ml`");
    assert!(report.streams[0].globals[0].missing.is_empty());

    let report = Scanner::new(&policy).scan_bytes("net.pkl", b"\x80\x02cmymodel\nNet\n)R.");
    assert!(report.has_findings());
    assert_eq!(report.streams[0].globals[0].missing, ["mymodel.Net"]);
}
