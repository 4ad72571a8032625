//! Every interpreter in the process is protected: later lifetimes of an embedded interpreter
//! (`Py_FinalizeEx` then `Py_Initialize`), libpython loaded after `main` starts, and
//! subinterpreters refusing in parallel (issue 11, items 3 and 4). Cases carry IDs LT-n.
//!
//! The C hosts live in `tests/c` and are built against pyenv's shared libpython by
//! [`support::c_host`]; the Python each lifetime runs is `tests/py/lifetime_probe.py`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, c_host, embeddable, interpreters, json_lines, run, script, text};
use crate::support::{EmbeddablePython, TempDir};

/// Versions the embedding hosts are built against: the oldest supported, and the two with
/// per-interpreter GILs; the others in between when pyenv has them.
const EMBEDDED_MINORS: [u32; 6] = [8, 9, 10, 11, 12, 13];

fn probe() -> String {
    std::fs::read_to_string(script("lifetime_probe.py")).expect("tests/py/lifetime_probe.py")
}

fn run_host(mut command: Command, markers: &Path) -> Output {
    command.env("LIFETIME_MARKERS", markers);
    run(&mut command, Duration::from_secs(120))
}

fn reinit_host(
    python: &EmbeddablePython,
    guarded: bool,
    lifetimes: u32,
    extra: &[&str],
) -> Command {
    let host = c_host("reinit_host", Some(python));
    let mut command = if guarded {
        support::preloaded(host)
    } else {
        support::command(host)
    };
    command.arg(probe()).arg(lifetimes.to_string()).args(extra);
    command
}

fn describe(python: &EmbeddablePython, output: &Output) -> String {
    format!(
        "CPython {}: {}\nstdout:\n{}\nstderr:\n{}",
        python.version,
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// LT-1: a host that finalises and initialises again is protected in every lifetime, not only
/// the first: the pickle is refused with the module's `UnsafeFileError` (caught as
/// `pickle.UnpicklingError`), `is_active()` says so, and the payload's marker is absent.
/// Passes because the hook asks `Py_AtExit` to register it again after CPython clears the
/// hook list; fails if lifetimes 2 and 3 load the pickle (the bug in issue 11), or if the
/// exception class of lifetime 1 (freed with it) is reused.
#[test]
fn lt1_every_lifetime_of_a_reinitialised_interpreter_is_protected() {
    for minor in EMBEDDED_MINORS {
        let Some(python) = embeddable(minor) else {
            continue;
        };
        let markers = TempDir::new("lt1");
        let output = run_host(reinit_host(&python, true, 3, &[]), markers.path());
        let context = describe(&python, &output);
        assert!(output.status.success(), "{context}");
        let lines = json_lines(&output.stdout);
        assert_eq!(lines.len(), 3, "{context}");
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(line["lifetime"], n + 1, "{context}");
            assert_eq!(line["refused"], "UnsafeFileError", "{context}");
            assert_eq!(line["module_class"], true, "{context}");
            assert_eq!(line["active"], true, "{context}");
            assert_eq!(line["marker"], false, "{context}");
        }
        assert!(markers.files().is_empty(), "{context}");
        assert!(!text(&output.stderr).contains("NOT protected"), "{context}");
    }
}

/// LT-2 (control for LT-1): the same host without the preload runs the payload in every
/// lifetime, so LT-1 can fail.
#[test]
fn lt2_without_the_guard_every_lifetime_runs_the_payload() {
    for minor in [8, 13] {
        let Some(python) = embeddable(minor) else {
            continue;
        };
        let markers = TempDir::new("lt2");
        let output = run_host(reinit_host(&python, false, 3, &[]), markers.path());
        let context = describe(&python, &output);
        assert!(output.status.success(), "{context}");
        for line in json_lines(&output.stdout) {
            assert_eq!(line["refused"], Value::Null, "{context}");
            assert_eq!(line["marker"], true, "{context}");
        }
        assert_eq!(
            markers.files(),
            ["PWNED-1", "PWNED-2", "PWNED-3"],
            "{context}"
        );
    }
}

/// LT-3: re-initialisation with the debug allocators (`PYTHONMALLOC=debug`, which switches
/// the raw domain during start-up): the hook entry registered between lifetimes is freed by
/// the allocator that made it, so no lifetime ends in `_PyMem_DebugRawFree: bad ID`. Fails
/// on an abort, or on a later lifetime that loads the pickle.
#[test]
fn lt3_reinitialisation_with_debug_allocators_exits_cleanly() {
    for minor in [8, 12, 13] {
        let Some(python) = embeddable(minor) else {
            continue;
        };
        for allocator in ["debug", "malloc_debug"] {
            let markers = TempDir::new("lt3");
            let mut command = reinit_host(&python, true, 3, &[]);
            command.env("PYTHONMALLOC", allocator);
            let output = run_host(command, markers.path());
            let context = format!("PYTHONMALLOC={allocator}: {}", describe(&python, &output));
            assert!(output.status.success(), "{context}");
            let lines = json_lines(&output.stdout);
            assert_eq!(lines.len(), 3, "{context}");
            assert!(
                lines.iter().all(|l| l["refused"] == "UnsafeFileError"),
                "{context}"
            );
            assert!(markers.files().is_empty(), "{context}");
        }
    }
}

/// LT-4: where the hook truly cannot come back (the host filled CPython's `Py_AtExit` table,
/// so nothing can be scheduled after the hook list is cleared), the process says so in one
/// stderr line and `is_active()` is False in the later lifetimes instead of lying. The
/// payload then runs there: that is the unprotected case being reported, not hidden. Fails if
/// `is_active()` says True while the pickle loads, or if the line is missing or repeated.
#[test]
fn lt4_a_lifetime_that_cannot_be_protected_says_so() {
    for minor in [8, 13] {
        let Some(python) = embeddable(minor) else {
            continue;
        };
        let markers = TempDir::new("lt4");
        let output = run_host(
            reinit_host(&python, true, 2, &["fill-atexit"]),
            markers.path(),
        );
        let context = describe(&python, &output);
        assert!(output.status.success(), "{context}");
        let lines = json_lines(&output.stdout);
        assert_eq!(lines.len(), 2, "{context}");
        assert_eq!(lines[0]["refused"], "UnsafeFileError", "{context}");
        assert_eq!(lines[0]["active"], true, "{context}");
        assert_eq!(lines[1]["active"], false, "{context}");
        assert_eq!(lines[1]["refused"], Value::Null, "{context}");
        let stderr = text(&output.stderr);
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("NOT protected"))
            .collect();
        assert_eq!(
            warnings,
            ["pickleguard: CPython's Py_AtExit table is full; an interpreter initialised again in this process is NOT protected against unsafe pickles"],
            "{context}"
        );
    }
}

/// LT-5: a host not linked to libpython that `dlopen`s it after `main` starts (PyInstaller's
/// bootloader does) is protected: the shim's `dlopen` interposer sees libpython arrive and
/// loads the core before the host can call `Py_Initialize`. Fails if the pickle loads (no
/// interposer: the shim's constructor found no Python and the core never came).
#[test]
fn lt5_libpython_loaded_after_start_is_protected() {
    for minor in [8, 12, 13] {
        let Some(python) = embeddable(minor) else {
            continue;
        };
        let host = c_host("late_dlopen_host", None);
        for guarded in [true, false] {
            let markers = TempDir::new("lt5");
            let mut command = if guarded {
                support::preloaded(&host)
            } else {
                support::command(&host)
            };
            command.arg(python.libpython()).arg(probe());
            let output = run_host(command, markers.path());
            let context = format!("guarded={guarded}: {}", describe(&python, &output));
            assert!(output.status.success(), "{context}");
            let lines = json_lines(&output.stdout);
            assert_eq!(lines.len(), 1, "{context}");
            if guarded {
                assert_eq!(lines[0]["refused"], "UnsafeFileError", "{context}");
                assert_eq!(lines[0]["active"], true, "{context}");
                assert!(markers.files().is_empty(), "{context}");
            } else {
                // The control: the same host without the shim runs the payload.
                assert_eq!(lines[0]["refused"], Value::Null, "{context}");
                assert_eq!(markers.files(), ["PWNED-1"], "{context}");
            }
        }
    }
}

/// LT-8: a libpython `dlopen`ed late with RTLD_LOCAL keeps its symbols from the core, which
/// binds to them globally: the process cannot be protected, and says so in one line instead
/// of failing silently. Fails if the line is missing or repeated.
#[test]
fn lt8_libpython_loaded_late_with_rtld_local_says_it_is_not_protected() {
    let Some(python) = embeddable(12) else {
        return;
    };
    let host = c_host("late_dlopen_host", None);
    let markers = TempDir::new("lt8");
    let mut command = support::preloaded(&host);
    command.arg(python.libpython()).arg(probe()).arg("local");
    let output = run_host(command, markers.path());
    let context = describe(&python, &output);
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pickleguard:"))
        .collect();
    assert_eq!(
        lines,
        ["pickleguard: libpython was loaded with dlopen(RTLD_LOCAL) after start-up, so the core cannot bind to it; this process is NOT protected against unsafe pickles"],
        "{context}"
    );
}

/// LT-10: a libpython opened by bare name is passed to libc unseen (its lookup depends on the
/// caller, LT-9), so the shim notices it only at the next `dlopen`; here that is an extension
/// module imported after `Py_Initialize`, too late to install the hook. The process says so in
/// one line instead of running unprotected in silence. Fails if the line is missing or
/// repeated.
#[test]
fn lt10_libpython_opened_late_by_bare_name_says_it_is_not_protected() {
    let Some(python) = embeddable(12) else {
        return;
    };
    let host = c_host("late_dlopen_host", None);
    let markers = TempDir::new("lt10");
    let libpython = python.libpython();
    let soname = libpython
        .file_name()
        .expect("libpython file name")
        .to_owned();
    let mut command = support::preloaded(&host);
    command
        .env("LD_LIBRARY_PATH", python.home.join("lib"))
        .arg(soname)
        .arg(probe());
    let output = run_host(command, markers.path());
    let context = describe(&python, &output);
    assert!(output.status.success(), "{context}");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pickleguard:"))
        .collect();
    assert_eq!(
        lines,
        ["pickleguard: the interpreter was already running when pickleguard loaded; start Python with LD_PRELOAD=libpickleguard.so instead; this process is NOT protected against unsafe pickles"],
        "{context}"
    );
}

/// LT-9: the `dlopen` interposer leaves the caller's own lookup rules alone: glibc resolves a
/// bare name through the RUNPATH of the object calling `dlopen`, and `$ORIGIN` to that
/// object's directory, and finds that object by the return address. A host whose plugin is
/// reachable only through its own RUNPATH (`$ORIGIN/plugins`) loads it by bare name, by
/// `$ORIGIN` path and by full path, identically with and without the preload. Fails if the
/// interposer calls libc's `dlopen` from the shim for those (then the shim is the caller).
#[test]
fn lt9_dlopen_keeps_the_callers_lookup_rules() {
    let dir = TempDir::new("lt9");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    support::compile_c(
        "int pickleguard_test_plugin(void) { return 42; }\n",
        &plugins.join("libpgplugin.so"),
        &["-shared", "-fPIC"],
    );
    let host = dir.path().join("runpath_host");
    support::compile_c(
        r#"#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        void *plugin = dlopen(argv[i], RTLD_NOW);
        int (*answer)(void) = plugin ? (int (*)(void))dlsym(plugin, "pickleguard_test_plugin") : 0;
        printf("%s: %d\n", argv[i], answer ? answer() : -1);
    }
    return 0;
}
"#,
        &host,
        &["-ldl", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/plugins"],
    );
    let full = plugins.join("libpgplugin.so");
    let args = [
        "libpgplugin.so",
        "$ORIGIN/plugins/libpgplugin.so",
        full.to_str().expect("utf-8 temp path"),
    ];
    let timeout = Duration::from_secs(60);
    let plain = run(support::command(&host).args(args), timeout);
    let guarded = run(support::preloaded(&host).args(args), timeout);
    assert_eq!(
        text(&plain.stdout).matches(": 42").count(),
        3,
        "control: {}",
        text(&plain.stdout)
    );
    assert_eq!(text(&guarded.stdout), text(&plain.stdout));
    assert_eq!(text(&guarded.stderr), text(&plain.stderr));
}

/// LT-6: subinterpreters refusing pickles in parallel, each in its own thread, while the main
/// interpreter refuses too: own-GIL ones on 3.12+ (`_xxsubinterpreters` / `_interpreters`),
/// shared-GIL ones before. Every refusal is caught by `except pickle.UnpicklingError` of the
/// interpreter that raised it, the find_class event with malformed arguments is refused with
/// a RuntimeError, no payload runs, and the process exits 0. Passes because the exception
/// class lives in each interpreter's own dictionary and no Python object is shared or
/// released across interpreters; fails with a SIGSEGV or "double free" (one class for the
/// process, or pyo3's reference pool), or with refusals that `except` does not catch.
#[test]
fn lt6_subinterpreters_refuse_in_parallel() {
    for python in interpreters() {
        let markers = TempDir::new("lt6");
        let output = run(
            support::preloaded(&python.path)
                .arg(script("subinterpreters.py"))
                .args(["6", "1000"])
                .arg(markers.path()),
            Duration::from_secs(120),
        );
        let context = format!(
            "{}: {}\nstdout:\n{}\nstderr (last lines):\n{}",
            python.label,
            output.status,
            text(&output.stdout),
            tail(&text(&output.stderr))
        );
        if text(&output.stdout).starts_with("SKIP") {
            support::skip(&format!(
                "{}: {}",
                python.label,
                text(&output.stdout).trim().trim_start_matches("SKIP: ")
            ));
            continue;
        }
        assert!(output.status.success(), "{context}");
        assert!(text(&output.stdout).ends_with("done\n"), "{context}");
        let lines = json_lines(&output.stdout);
        assert_eq!(lines.len(), 7, "{context}");
        assert_eq!(lines[0]["failures"], serde_json::json!([]), "{context}");
        assert!(lines[0]["caught"].as_u64() >= Some(1000), "{context}");
        for line in &lines[1..] {
            assert_eq!(line["caught"], 1000, "{context}");
            assert_eq!(line["bad_args"], 1000, "{context}");
            assert_eq!(line["other"], serde_json::json!([]), "{context}");
        }
        assert!(markers.files().is_empty(), "{context}");
    }
}

/// LT-7 (control for LT-6): without the guard every subinterpreter's payload runs.
#[test]
fn lt7_without_the_guard_subinterpreters_run_the_payload() {
    let Some(python) = interpreters()
        .iter()
        .find(|p| p.label.starts_with("3.13") || p.label.starts_with("3.12"))
    else {
        support::skip("LT-7: no CPython 3.12 or 3.13 for the subinterpreter control");
        return;
    };
    let markers = TempDir::new("lt7");
    let output = run(
        support::command(&python.path)
            .arg(script("subinterpreters.py"))
            .args(["3", "2"])
            .arg(markers.path()),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let files = markers.files();
    assert_eq!(files, ["PWNED-1", "PWNED-2", "PWNED-3"], "{}", python.label);
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
