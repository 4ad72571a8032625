//! The guard never breaks its host: debug allocators, isolated mode, threads, forks, a missing
//! core, and start-up cost in imports.

use std::time::Duration;

use crate::support::{self, interpreters, run, run_ok, script, text, TempDir};

const BLOCKED_LOAD: &str = "import pickle, pickleguard\ntry:\n    pickle.loads(b'cos\\nsystem\\n(S\"true\"\\ntR.')\nexcept pickleguard.UnsafeFileError:\n    print('blocked')\n";

/// HP-1: a hook entry allocated before init with the raw allocator, then freed at exit by the
/// debug allocator, aborts CPython with `_PyMem_DebugRawFree: bad ID`. Passes because the core
/// hands that block back to its own allocator; fails if that pairing is lost.
#[test]
fn debug_allocator_and_dev_mode_exit_cleanly() {
    for python in interpreters() {
        for (flags, env) in [
            (&["-X", "dev"][..], None),
            (&[][..], Some(("PYTHONMALLOC", "debug"))),
        ] {
            let mut command = support::preloaded(&python.path);
            command.args(flags).args(["-c", BLOCKED_LOAD]);
            if let Some((key, value)) = env {
                command.env(key, value);
            }
            let output = run_ok(&mut command);
            assert_eq!(
                text(&output.stdout),
                "blocked\n",
                "{} {flags:?} {env:?}",
                python.label
            );
            assert!(
                !text(&output.stderr).contains("bad ID"),
                "{}: {}",
                python.label,
                text(&output.stderr)
            );
        }
    }
}

/// HP-2: `-I -S -E` ignores PYTHON* variables, user site and site.py; the guard does not rely
/// on any of them.
#[test]
fn isolated_mode_is_still_protected() {
    for python in interpreters() {
        let output =
            run_ok(support::preloaded(&python.path).args(["-I", "-S", "-E", "-c", BLOCKED_LOAD]));
        assert_eq!(text(&output.stdout), "blocked\n", "{}", python.label);
    }
}

/// HP-3: 8 threads loading at once while the main thread forks 8 children that load too.
/// Fails on a deadlock (timeout), a payload that ran, or a child that lost the guard.
#[test]
fn threads_and_forks_stay_protected() {
    for python in interpreters() {
        let markers = TempDir::new("threads");
        let output = run(
            support::preloaded(&python.path)
                .args(["-W", "ignore"])
                .arg(script("threads_and_forks.py"))
                .arg(markers.path()),
            Duration::from_secs(120),
        );
        assert!(
            output.status.success(),
            "{}: {}",
            python.label,
            text(&output.stderr)
        );
        assert_eq!(
            text(&output.stdout),
            "threads and forks passed\n",
            "{}",
            python.label
        );
        assert!(
            markers.files().is_empty(),
            "{}: {:?}",
            python.label,
            markers.files()
        );
    }
}

/// HP-4: nothing is imported at start-up beyond what the program imports itself.
#[test]
fn startup_imports_nothing() {
    let probe = "import sys; print(sorted(sys.modules))";
    for python in interpreters() {
        let plain = run_ok(support::command(&python.path).args(["-c", probe]));
        let guarded = run_ok(support::preloaded(&python.path).args(["-c", probe]));
        assert_eq!(
            text(&guarded.stdout),
            text(&plain.stdout),
            "{}",
            python.label
        );
        assert_eq!(text(&guarded.stderr), "", "{}", python.label);
    }
}

/// HP-5: a core that cannot be loaded is reported in one line, and the program still runs.
#[test]
fn missing_core_is_reported_once() {
    let python = &interpreters()[0];
    let output = run_ok(
        support::preloaded(&python.path)
            .env("PICKLEGUARD_CORE", "/nonexistent/libpickleguard_core.so")
            .args(["-c", "print('ran')"]),
    );
    assert_eq!(text(&output.stdout), "ran\n");
    let err = text(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pickleguard: cannot open the core library `/nonexistent/libpickleguard_core.so`: No such file or directory; "),
        "{err}"
    );
    assert!(err.contains("NOT protected"), "{err}");
}

/// HP-6: CPython < 3.8 has no audit hooks: one line says so, and nothing else changes.
#[test]
fn old_pythons_say_they_are_not_protected() {
    for prefix in ["2.7.", "3.6.", "3.7."] {
        let Some((version, path)) = support::pyenv_python(prefix) else {
            eprintln!("SKIP: CPython {prefix}x is not installed under pyenv");
            continue;
        };
        let output = run_ok(support::preloaded(&path).args(["-c", "print('ran')"]));
        assert_eq!(text(&output.stdout), "ran\n", "{version}");
        assert_eq!(
            text(&output.stderr),
            "pickleguard: this Python has no audit hooks (CPython < 3.8); this process is NOT protected against unsafe pickles\n",
            "{version}"
        );
    }
}
