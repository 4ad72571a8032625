//! The pickleguard-preload wheel (`make wheel`): its binaries need glibc 2.17 at most, and
//! installed into a fresh venv it protects a server through `pickleguard run` and checks
//! itself with `python -m pickleguard_preload doctor`.
//!
//! `make test` builds the wheel first and sets `PICKLEGUARD_WHEEL_DIR`; without it these tests
//! print a SKIP line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{self, interpreters, run, run_ok, text, TempDir};

/// The wheel `make wheel` built, if `make test` said where.
fn wheel() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("PICKLEGUARD_WHEEL_DIR") else {
        eprintln!(
            "SKIP: PICKLEGUARD_WHEEL_DIR is not set (`make test` builds the wheel and sets it)"
        );
        return None;
    };
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", Path::new(&dir).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("pickleguard_preload-")
                && name.ends_with("-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
        })
        .collect();
    assert_eq!(found.len(), 1, "one wheel in {found:?}");
    found.into_iter().next()
}

/// The highest `GLIBC_x.y` symbol version `path` requires, as (x, y).
fn max_glibc(path: &Path) -> (u32, u32) {
    let out = run_ok(support::command("objdump").arg("-T").arg(path));
    text(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .unwrap_or((0, 0))
}

/// Unpacks the wheel (a zip) with Python's zipfile, keeping the file modes.
fn unpack(wheel: &Path, into: &Path) {
    run_ok(support::command(&interpreters()[0].path).args([
        "-c",
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor i in z.infolist():\n    z.extract(i, sys.argv[2])",
    ]).arg(wheel).arg(into));
}

/// WH-1: every binary in the wheel needs glibc 2.17 or older, so it runs on manylinux2014
/// systems (CentOS 7, Ubuntu 20.04, UBI 8, Amazon Linux 2). The control shows the check can
/// fail: `make build`'s own binaries, linked against this machine's glibc, need a newer one.
#[test]
fn wheel_binaries_need_glibc_2_17_at_most() {
    let Some(wheel) = wheel() else { return };
    let dir = TempDir::new("wheel-glibc");
    unpack(&wheel, dir.path());
    let data = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".data"))
        .expect("a .data directory");
    for binary in [
        "scripts/pickleguard",
        "data/lib/pickleguard/libpickleguard.so",
        "data/lib/pickleguard/libpickleguard_core.so",
    ] {
        let version = max_glibc(&data.join(binary));
        eprintln!("{binary}: GLIBC_{}.{}", version.0, version.1);
        assert!(
            version <= (2, 17),
            "{binary} needs GLIBC_{}.{}",
            version.0,
            version.1
        );
        assert!(version >= (2, 2), "{binary}: no GLIBC versions read");
    }
    for stub in ["pickleguard/__init__.pyi", "pickleguard/py.typed"] {
        assert!(dir.path().join(stub).is_file(), "{stub}");
    }
    let native = max_glibc(&support::repo().join("target/release/libpickleguard_core.so"));
    assert!(
        native > (2, 17),
        "control: the native build needs GLIBC_{}.{}",
        native.0,
        native.1
    );
}

/// WH-2: the wheel installed into a fresh venv protects a server through `pickleguard run`
/// (the payload's marker file is not created; without the guard the same file creates it) and
/// `python -m pickleguard_preload doctor` reports protection under it, and its absence without.
#[test]
fn wheel_installs_into_a_fresh_venv_and_protects() {
    let Some(wheel) = wheel() else { return };
    let python = &interpreters()[0];
    let dir = TempDir::new("wheel-venv");
    let venv = dir.path().join("venv");
    run_ok(
        support::command(&python.path)
            .args(["-m", "venv"])
            .arg(&venv),
    );
    run_ok(
        support::command(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--no-index",
                "--disable-pip-version-check",
                "-q",
            ])
            .arg(&wheel),
    );
    let pickleguard = venv.join("bin/pickleguard");
    let vpython = venv.join("bin/python");
    let models = dir.path().join("models");
    run_ok(
        support::command(&vpython)
            .arg(support::repo().join("examples/make_demo_models.py"))
            .arg(&models),
    );
    let serve = support::repo().join("examples/serve.py");
    let guarded = |model: &str| {
        run(
            support::command(&pickleguard)
                .args(["run", "--"])
                .arg(&vpython)
                .arg(&serve)
                .arg(models.join(model))
                .arg("--once"),
            Duration::from_secs(60),
        )
    };
    let benign = guarded("model.pkl");
    assert!(benign.status.success(), "{}", text(&benign.stderr));
    assert!(text(&benign.stdout).contains("'prediction': 1.5"));
    let evil = guarded("evil.pkl");
    assert!(!evil.status.success());
    assert!(
        text(&evil.stderr).contains("pickleguard.UnsafeFileError"),
        "{}",
        text(&evil.stderr)
    );
    assert!(
        !models.join("PWNED").exists(),
        "the payload ran under the wheel's guard"
    );

    let doctor = run(
        support::command(&pickleguard)
            .args(["run", "--"])
            .arg(&vpython)
            .args(["-m", "pickleguard_preload", "doctor"]),
        Duration::from_secs(60),
    );
    let out = text(&doctor.stdout);
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{out}{}",
        text(&doctor.stderr)
    );
    assert!(
        out.contains(&format!(
            "ok   shim: {}",
            venv.join("lib/pickleguard/libpickleguard.so").display()
        )),
        "{out}"
    );
    assert!(
        out.ends_with("protected: a Python started from this environment refuses unsafe pickles\n"),
        "{out}"
    );

    let bare = run(
        support::command(&vpython).args(["-m", "pickleguard_preload", "doctor"]),
        Duration::from_secs(60),
    );
    assert_eq!(bare.status.code(), Some(1), "{}", text(&bare.stdout));
    let bare_out = text(&bare.stdout);
    assert!(bare_out.contains("NOT protected"), "{bare_out}");
    assert!(
        bare_out.contains("FAIL hook: the guard's module is not in"),
        "the wheel's stub package is not taken for the guard: {bare_out}"
    );

    // Control: the same malicious file without the guard runs its payload.
    run(
        support::command(&vpython)
            .arg(&serve)
            .arg(models.join("evil.pkl"))
            .arg("--once"),
        Duration::from_secs(60),
    );
    assert!(
        models.join("PWNED").exists(),
        "control: the payload runs without the guard"
    );
}

/// WH-3: the `.deb` (`make deb`) lays out the same glibc-2.17 binaries at `make install
/// PREFIX=/usr`'s paths; unpacked into a directory, its command reports protection through its
/// own shim and refuses the demo's malicious model (the marker file stays absent).
#[test]
fn deb_holds_the_guard_at_the_install_paths() {
    let Some(dir) = std::env::var_os("PICKLEGUARD_DEB_DIR") else {
        eprintln!("SKIP: PICKLEGUARD_DEB_DIR is not set (`make test` builds the .deb and sets it)");
        return;
    };
    let Some(deb) = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
    else {
        eprintln!(
            "SKIP: no .deb in {} (no dpkg-deb here)",
            Path::new(&dir).display()
        );
        return;
    };
    let root = TempDir::new("deb");
    run_ok(
        support::command("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(root.path()),
    );
    let shim = root.path().join("usr/lib/pickleguard/libpickleguard.so");
    let command = root.path().join("usr/bin/pickleguard");
    for binary in [
        &shim,
        &command,
        &shim.with_file_name("libpickleguard_core.so"),
    ] {
        assert!(max_glibc(binary) <= (2, 17), "{}", binary.display());
    }
    let python = &interpreters()[0];
    let doctor = run(
        support::command(&command)
            .env("LD_PRELOAD", &shim)
            .arg("doctor")
            .arg(&python.path),
        Duration::from_secs(60),
    );
    let out = text(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("ok   shim: {}", shim.display())),
        "{out}"
    );
    let models = root.path().join("models");
    run_ok(
        support::command(&python.path)
            .arg(support::repo().join("examples/make_demo_models.py"))
            .arg(&models),
    );
    let evil = run(
        support::command(&command)
            .args(["run", "--"])
            .arg(&python.path)
            .arg(support::repo().join("examples/serve.py"))
            .arg(models.join("evil.pkl"))
            .arg("--once"),
        Duration::from_secs(60),
    );
    assert!(!evil.status.success());
    assert!(!models.join("PWNED").exists(), "the payload ran");
}
