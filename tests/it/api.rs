//! The `pickleguard` module in every preloaded interpreter (`tests/py/api_checks.py`).

use crate::support::{self, interpreters, run_ok, script, text, TempDir};

#[test]
fn module_api_works_in_every_interpreter() {
    for python in interpreters() {
        let work = TempDir::new("api");
        let output = run_ok(
            support::preloaded(&python.path)
                .arg(script("api_checks.py"))
                .arg(work.path()),
        );
        assert_eq!(
            text(&output.stdout).trim(),
            "api checks passed",
            "{}",
            python.label
        );
    }
}

/// Without the preload there is no `pickleguard` module: the tests above are not vacuous.
#[test]
fn module_exists_only_under_the_preload() {
    let python = &interpreters()[0];
    let output = support::run(
        support::command(&python.path).args(["-c", "import pickleguard"]),
        std::time::Duration::from_secs(30),
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("No module named 'pickleguard'"));
}
