//! `examples/serve.py`, the program `make demo` runs: unmodified, protected only by the preload.

use crate::support::{self, interpreters, run, run_ok, text, TempDir};

#[test]
fn serve_loads_the_benign_model_and_refuses_its_malicious_twin() {
    let python = &interpreters()[0];
    let dir = TempDir::new("serve");
    let examples = support::repo().join("examples");
    run_ok(
        support::command(&python.path)
            .arg(examples.join("make_demo_models.py"))
            .arg(dir.path()),
    );
    let marker = dir.path().join("PWNED");
    let serve = |model: &str| {
        run(
            support::preloaded(&python.path)
                .arg(examples.join("serve.py"))
                .arg(dir.path().join(model))
                .arg("--once"),
            std::time::Duration::from_secs(60),
        )
    };

    let benign = serve("model.pkl");
    assert!(benign.status.success(), "{}", text(&benign.stderr));
    assert!(
        text(&benign.stdout).contains("-> {'prediction': 1.5}"),
        "{}",
        text(&benign.stdout)
    );

    let evil = serve("evil.pkl");
    assert!(!evil.status.success());
    let err = text(&evil.stderr);
    assert!(
        err.contains("pickleguard.UnsafeFileError: pickleguard refused to load `posix.system`"),
        "{err}"
    );
    assert!(err.contains("serve.py:"), "{err}");
    assert!(!marker.exists(), "the payload ran");

    // Control: without the preload the same file runs its payload.
    run(
        support::command(&python.path)
            .arg(examples.join("serve.py"))
            .arg(dir.path().join("evil.pkl"))
            .arg("--once"),
        std::time::Duration::from_secs(60),
    );
    assert!(
        marker.exists(),
        "the demo's malicious model must really be malicious"
    );
}
