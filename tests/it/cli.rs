//! `pickleguard run` and `pickleguard doctor`.

use std::time::Duration;

use crate::support::{self, interpreters, run, run_ok, text, TempDir};

#[test]
fn run_preloads_the_guard_and_protects_the_server() {
    let python = &interpreters()[0];
    let dir = TempDir::new("run");
    let examples = support::repo().join("examples");
    run_ok(
        support::command(&python.path)
            .arg(examples.join("make_demo_models.py"))
            .arg(dir.path()),
    );
    let serve = |model: &str| {
        run(
            support::command(support::cli())
                .args(["run", "--"])
                .arg(&python.path)
                .arg(examples.join("serve.py"))
                .arg(dir.path().join(model))
                .arg("--once"),
            Duration::from_secs(60),
        )
    };
    let benign = serve("model.pkl");
    assert!(benign.status.success(), "{}", text(&benign.stderr));
    assert!(text(&benign.stdout).contains("'prediction': 1.5"));
    let evil = serve("evil.pkl");
    assert!(!evil.status.success());
    assert!(
        text(&evil.stderr).contains("pickleguard.UnsafeFileError"),
        "{}",
        text(&evil.stderr)
    );
    assert!(!dir.path().join("PWNED").exists(), "the payload ran");
}

#[test]
fn run_sets_options_and_keeps_ld_preload_entries_once() {
    let python = &interpreters()[0];
    let shim = support::shim();
    let output = run_ok(
        support::command(support::cli())
            .env("LD_PRELOAD", format!("{} /lib/x86_64-linux-gnu/libc.so.6", shim.display()))
            .args(["run", "--mode", "warn", "--allow", "a.B", "--pack", "stdlib-data", "--"])
            .arg(&python.path)
            .args(["-c", "import os, pickleguard; print(os.environ['LD_PRELOAD']); print(pickleguard.mode(), 'a.B' in pickleguard.allowed(), 'collections.Counter' in pickleguard.allowed())"]),
    );
    assert_eq!(
        text(&output.stdout),
        format!(
            "{}:/lib/x86_64-linux-gnu/libc.so.6\nwarn True True\n",
            shim.display()
        )
    );
}

#[test]
fn run_refuses_a_bad_configuration_with_78() {
    let output = run(
        support::command(support::cli()).args(["run", "--allow", "os.system", "--", "true"]),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(78));
    assert!(
        text(&output.stderr).contains("`os.system` is hard-denied"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn run_reports_usage_and_missing_commands() {
    let usage = run(
        support::command(support::cli()).arg("run"),
        Duration::from_secs(30),
    );
    assert_eq!(usage.status.code(), Some(4));
    let missing = run(
        support::command(support::cli()).args(["run", "--", "/nonexistent/program"]),
        Duration::from_secs(30),
    );
    assert_eq!(missing.status.code(), Some(127));
}

#[test]
fn doctor_reports_a_protected_interpreter() {
    for python in interpreters() {
        let output = run(
            support::preloaded(support::cli())
                .arg("doctor")
                .arg(&python.path),
            Duration::from_secs(60),
        );
        let out = text(&output.stdout);
        assert!(output.status.success(), "{}: {out}", python.label);
        assert!(
            out.contains("ok   hook: active (core ") && out.contains("mode enforce"),
            "{}: {out}",
            python.label
        );
        let link = if python.label.contains("static") {
            "static"
        } else {
            "shared"
        };
        assert!(
            out.contains(&format!("ok   libpython: {link}")),
            "{}: {out}",
            python.label
        );
        assert!(
            out.ends_with(
                "protected: a Python started from this environment refuses unsafe pickles\n"
            ),
            "{}: {out}",
            python.label
        );
    }
}

#[test]
fn doctor_flags_an_unprotectable_interpreter() {
    let Some((version, path)) = support::pyenv_python("3.7.") else {
        eprintln!("SKIP: CPython 3.7 is not installed under pyenv");
        return;
    };
    let output = run(
        support::command(support::cli()).arg("doctor").arg(&path),
        Duration::from_secs(60),
    );
    assert_eq!(output.status.code(), Some(1), "{version}");
    assert!(
        text(&output.stdout).contains("FAIL python:"),
        "{}",
        text(&output.stdout)
    );
}

/// `doctor` with `LD_PRELOAD` set to `preload`, on the first interpreter.
fn doctor_with(preload: &std::ffi::OsStr, extra: &[&str]) -> std::process::Output {
    run(
        support::command(support::cli())
            .env("LD_PRELOAD", preload)
            .arg("doctor")
            .args(extra)
            .arg(&interpreters()[0].path),
        Duration::from_secs(60),
    )
}

/// What a Python started with `preload` does with a global the default policy refuses:
/// `refused` or `loaded`. The control that shows the doctor's verdict is the truth.
fn counter_under(preload: &std::ffi::OsStr) -> String {
    let out = run(
        support::command(&interpreters()[0].path)
            .env("LD_PRELOAD", preload)
            .args(["-c", "import pickle\ntry:\n    pickle.loads(b'\\x80\\x04\\x8c\\x0bcollections\\x8c\\x07Counter\\x93.'); print('loaded')\nexcept pickle.UnpicklingError:\n    print('refused')"]),
        Duration::from_secs(60),
    );
    text(&out.stdout).trim().to_string()
}

/// DR-1..DR-4: every broken `LD_PRELOAD` is `NOT protected` with its reason, and exit 1. Each
/// passes because the doctor inspects the entries this environment gives and probes through
/// them; it would fail if the doctor checked its own copy of the shim (the old behaviour said
/// `ok` to all of these). The control shows a Python in that environment really loads a
/// refused global, and one under the working preload refuses it.
#[test]
fn doctor_fails_on_a_broken_ld_preload() {
    let dir = TempDir::new("doctor");
    let shim = support::shim();
    // DR-0: the working setup, and its control.
    assert_eq!(counter_under(shim.as_os_str()), "refused");
    let ok = doctor_with(shim.as_os_str(), &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));

    // DR-1: a missing file.
    let missing = dir.path().join("gone/libpickleguard.so");
    assert_eq!(counter_under(missing.as_os_str()), "loaded");
    let out = doctor_with(missing.as_os_str(), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("NOT protected: LD_PRELOAD entry"),
        "{stdout}"
    );
    assert!(stdout.contains("No such file or directory"), "{stdout}");

    // DR-2: the wrong ELF class (a 32-bit library under a 64-bit interpreter).
    let elf32 = dir.path().join("libpickleguard.so");
    let mut header = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x03\0".to_vec();
    header.resize(64, 0);
    std::fs::write(&elf32, &header).unwrap();
    let out = doctor_with(elf32.as_os_str(), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("wrong ELF class: it is 32-bit"), "{stdout}");
    assert!(stdout.contains("NOT protected"), "{stdout}");

    // DR-3: a library that is not a pickleguard shim.
    let out = doctor_with(std::ffi::OsStr::new("libc.so.6"), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("NOT protected: no pickleguard shim is preloaded"),
        "{stdout}"
    );

    // DR-4: a shim without its core beside it.
    let lonely = dir.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(&shim, lonely.join("libpickleguard.so")).unwrap();
    let lonely_shim = lonely.join("libpickleguard.so");
    assert_eq!(counter_under(lonely_shim.as_os_str()), "loaded");
    let out = doctor_with(lonely_shim.as_os_str(), &["--json"]);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{document}");
    assert_eq!(document["protected"], false, "{document}");
    let reason = document["reason"].as_str().unwrap();
    assert!(reason.contains("libpickleguard_core.so"), "{reason}");
    assert!(reason.contains("No such file or directory"), "{reason}");
}

#[test]
fn doctor_json_reports_versions_and_os_reasons() {
    let ok = doctor_with(support::shim().as_os_str(), &["--json"]);
    let document: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(document["protected"], true, "{document}");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(document["versions"]["shim"], version, "{document}");
    assert_eq!(document["versions"]["core"], version, "{document}");
    assert_eq!(document["preload"][0]["status"], "shim", "{document}");

    let bad = run(
        support::preloaded(support::cli()).args(["doctor", "/nonexistent/python"]),
        Duration::from_secs(60),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stdout)
            .contains("cannot run `/nonexistent/python`: No such file or directory (os error 2)"),
        "{}",
        text(&bad.stdout)
    );
}

/// `doctor` in a private mount namespace whose `/etc` is an overlay holding `ld.so.preload`
/// with `lines`; `None` if namespaces or overlays are not available here.
fn doctor_with_ld_so_preload(lines: &str) -> Option<std::process::Output> {
    let dir = TempDir::new("doctor-etc");
    for sub in ["upper", "work"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("upper/ld.so.preload"), lines).unwrap();
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/upper,workdir={0}/work /etc || exit 99\nexec \"$@\"",
        dir.path().display()
    );
    let output = run(
        support::command("unshare")
            .args(["-m", "sh", "-c", &script, "sh"])
            .arg(support::cli())
            .arg("doctor")
            .arg(&interpreters()[0].path),
        Duration::from_secs(60),
    );
    if output.status.code() == Some(99) || text(&output.stderr).contains("unshare:") {
        eprintln!(
            "SKIP: no private mount namespace with an overlay here: {}",
            text(&output.stderr)
        );
        return None;
    }
    Some(output)
}

/// DR-5: a shim listed in `/etc/ld.so.preload` protects with no `LD_PRELOAD` at all, and the
/// doctor says so. DR-6: a missing file there is `NOT protected`. They pass because the doctor
/// reads `/etc/ld.so.preload` and probes through it; they would fail if it only looked at
/// `LD_PRELOAD` (DR-5) or trusted the file's list without checking each entry (DR-6).
#[test]
fn doctor_reads_etc_ld_so_preload() {
    let shim = support::shim();
    let Some(ok) = doctor_with_ld_so_preload(&format!("{}\n", shim.display())) else {
        return;
    };
    let out = text(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "ok   /etc/ld.so.preload entry `{}`: a pickleguard shim",
            shim.display()
        )),
        "{out}"
    );
    assert!(out.contains("protected: a Python started"), "{out}");

    let Some(broken) =
        doctor_with_ld_so_preload("/usr/lib/pickleguard/missing/libpickleguard.so\n")
    else {
        return;
    };
    let out = text(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(
        out.contains("NOT protected: /etc/ld.so.preload entry `/usr/lib/pickleguard/missing/libpickleguard.so`: cannot open it: No such file or directory"),
        "{out}"
    );
}
