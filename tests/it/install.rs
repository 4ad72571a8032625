//! pickleguard's `_pickle` and the guarded `pickle._Unpickler` (`tests/py/install_checks.py`):
//! which unpickler `pickle` hands out, from the first import, in every interpreter, with
//! isolated flags, the debug allocator, subinterpreters and embedded hosts.
//!
//! Cases carry IDs (IN-n). An "evil" pickle calls `os.system("touch <marker>")`; every case
//! that loads it checks the marker, and `IN-0` proves the same pickle creates it unguarded.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::ml_stack::ml_python;
use crate::support::{self, interpreters, json_lines, run, run_ok, script, text, TempDir};

/// Runs one scenario of `install_checks.py` under the preload and returns its facts, the
/// standard error, and the work dir (kept alive for the marker).
fn scenario(
    python: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> (Value, String, TempDir) {
    let work = TempDir::new(&format!("install-{name}"));
    let mut command = support::preloaded(python);
    configure(&mut command);
    command
        .arg(script("install_checks.py"))
        .arg(name)
        .arg(work.path());
    let output = run_ok(&mut command);
    let mut facts = json_lines(&output.stdout);
    assert_eq!(facts.len(), 1, "{}", text(&output.stdout));
    (facts.remove(0), text(&output.stderr), work)
}

/// The facts every preloaded interpreter must show, however it was started.
fn assert_names(label: &str, facts: &Value) {
    let expect = |key: &str, want: Value| {
        assert_eq!(facts[key], want, "{label}: `{key}` in {facts}");
    };
    expect("imported_before", serde_json::json!([]));
    expect("unpickler_is_type", true.into());
    expect("same_as_pickle_module", true.into());
    expect("not_pure_python", true.into());
    expect("captured_forking_pickler", true.into());
    expect("captured_shelve", true.into());
    expect("pickler_module", "_pickle".into());
    expect("pickler_is_c", true.into());
    expect("dumps_from_stock", true.into());
    expect("has_pickle_buffer", true.into());
    expect("exceptions", serde_json::json!([true, true]));
    expect("roundtrip", true.into());
    expect("evil_loads", "UnsafeFileError".into());
    expect("evil_forking_pickler", "UnsafeFileError".into());
    expect("held_back_gone", true.into());
    expect("marker_exists", false.into());
    // TODO(vm): once `unpickler::add_to` adds pickleguard's unpickler, `pickle.Unpickler` is
    // it; until then the stock names stay, and this fact is absent.
    if facts["vm_landed"] == true {
        expect("unpickler_is_pickleguards", true.into());
    }
}

/// IN-0 (control): without the preload the evil pickle runs its command. Makes every marker
/// check below meaningful: if the payload could not run anyway, they would prove nothing.
#[test]
fn in0_the_evil_pickle_runs_without_the_guard() {
    let python = &interpreters()[0];
    let work = TempDir::new("install-control");
    let output = run_ok(
        support::command(&python.path)
            .arg(script("install_checks.py"))
            .arg("pure")
            .arg(work.path()),
    );
    let facts = &json_lines(&output.stdout)[0];
    assert_eq!(facts["evil_pure"], "loaded", "{facts}");
    assert_eq!(facts["marker_exists"], true, "{facts}");
    assert_eq!(facts["steps_guarded"][0], false, "{facts}");
}

/// IN-1: `pickle.Unpickler`/`load`/`loads` and `_pickle`'s are the same objects from the first
/// import; the C `Pickler`/`dump`/`dumps` are the stock module's; references taken at import
/// time (multiprocessing's `ForkingPickler`, shelve) are the same; a disallowed global is
/// refused through each of them. Fails if the inittab entry is not ours (`held_back_gone`,
/// `dumps_from_stock` false), or if the stock module was not copied (no `PickleBuffer`).
#[test]
fn in1_pickle_names_come_from_pickleguards_pickle_module() {
    for python in interpreters() {
        let (facts, _, _work) = scenario(&python.path, "names", |_| {});
        assert_names(&python.label, &facts);
    }
}

/// IN-2: the same with `-I -S -E` (no site, no environment, isolated sys.path).
#[test]
fn in2_isolated_flags() {
    for python in interpreters() {
        let (facts, _, _work) = scenario(&python.path, "names", |command| {
            command.args(["-I", "-S", "-E"]);
        });
        assert_names(&format!("{} -I -S -E", python.label), &facts);
    }
}

/// IN-3: the same under the debug allocator and development mode, which check every block is
/// freed by the allocator that made it (the stock module is built inside ours).
#[test]
fn in3_debug_allocator() {
    for python in interpreters() {
        let (facts, stderr, _work) = scenario(&python.path, "names", |command| {
            command.env("PYTHONMALLOC", "debug").args(["-X", "dev"]);
        });
        assert_names(&format!("{} PYTHONMALLOC=debug", python.label), &facts);
        assert!(!stderr.contains("Fatal Python error"), "{stderr}");
    }
}

/// IN-4: nothing is imported at start-up that the program would not import: a program that
/// never imports pickle has no `pickle`, `_pickle` or `pickleguard` in `sys.modules`.
#[test]
fn in4_a_program_that_never_imports_pickle_does_not_import_it() {
    let probe = "import sys; print(sorted(m for m in ('pickle', '_pickle', 'pickleguard', \
                 '_compat_pickle') if m in sys.modules))";
    for python in interpreters() {
        let output = run_ok(support::preloaded(&python.path).args(["-c", probe]));
        assert_eq!(text(&output.stdout).trim(), "[]", "{}", python.label);
        assert_eq!(text(&output.stderr), "", "{}", python.label);
    }
}

/// IN-5: mode `off` at start-up leaves the stock `_pickle` untouched: `pickle.loads` is a
/// function of the very module `sys.modules['_pickle']` and `_Unpickler` is not wrapped.
/// Fails if the inittab is changed in mode off.
#[test]
fn in5_mode_off_leaves_the_stock_pickle_module() {
    for python in interpreters() {
        let (facts, _, _work) = scenario(&python.path, "plain", |command| {
            command.env("PICKLEGUARD_MODE", "off");
        });
        assert_eq!(
            facts["loads_from_its_module"], true,
            "{}: {facts}",
            python.label
        );
        assert_eq!(facts["pure_guarded"], false, "{}: {facts}", python.label);
        assert_eq!(facts["roundtrip"], true, "{}: {facts}", python.label);
        // Enforce mode, for contrast: pickleguard's module, the stock functions inside it.
        let (facts, _, _work) = scenario(&python.path, "plain", |_| {});
        assert_eq!(
            facts["loads_from_its_module"], false,
            "{}: {facts}",
            python.label
        );
        assert_eq!(facts["pure_guarded"], true, "{}: {facts}", python.label);
    }
}

/// IN-6: `pickle._Unpickler` (and a subclass that calls `super().find_class`) has its
/// reconstruction steps and their `dispatch` entries wrapped, loads every protocol and INST/OBJ
/// as before, and refuses a disallowed global without running it. Fails if the wrapping is
/// skipped (`steps_guarded`) or breaks loading (`pure_loads_protocols`, `inst_obj`).
#[test]
fn in6_the_pure_python_unpickler_is_guarded() {
    for python in interpreters() {
        let (facts, _, _work) = scenario(&python.path, "pure", |_| {});
        let label = &python.label;
        assert_eq!(
            facts["steps_guarded"],
            serde_json::json!([true, true, true, true, true, true]),
            "{label}: {facts}"
        );
        assert_eq!(
            facts["dispatch_guarded"],
            serde_json::json!([true, true, true, true]),
            "{label}: {facts}"
        );
        for key in ["subclass_loads", "pure_loads_protocols", "inst_obj"] {
            assert_eq!(facts[key], true, "{label}: `{key}` in {facts}");
        }
        assert_eq!(facts["evil_pure"], "UnsafeFileError", "{label}: {facts}");
        assert_eq!(
            facts["evil_subclass"], "UnsafeFileError",
            "{label}: {facts}"
        );
        assert_eq!(facts["marker_exists"], false, "{label}: {facts}");
    }
    // TODO(rules): once `reconstruct::plan` has rules, add a forged-state case here that the
    // pure-Python unpickler refuses by its check name (the same cases as the Rust unpickler's).
}

/// IN-7: when the stock `_pickle` cannot be built (its extension is off `sys.path`), `import
/// pickle` still works with the pure-Python classes, one stderr line says so, and the audit
/// hook still refuses a disallowed global. pyenv builds only: where `_pickle` is built in
/// there is no file to lose.
#[test]
fn in7_a_missing_stock_module_falls_back_loudly_once() {
    for python in interpreters().iter().filter(|p| p.label.contains("pyenv")) {
        let (facts, stderr, _work) = scenario(&python.path, "fallback", |_| {});
        let label = &python.label;
        assert_eq!(facts["pure_python_installed"], true, "{label}: {facts}");
        assert_eq!(facts["roundtrip"], true, "{label}: {facts}");
        assert_eq!(facts["evil_loads"], "UnsafeFileError", "{label}: {facts}");
        assert_eq!(facts["marker_exists"], false, "{label}: {facts}");
        let said = stderr.matches("cannot build the stock `_pickle`").count();
        assert_eq!(said, 1, "{label}: {stderr}");
    }
}

/// IN-8: a subinterpreter (its own GIL on 3.12+) imports `pickle` with the stock unpickler,
/// which the process-wide audit hook still checks; the main interpreter is unaffected. Fails if
/// `_pickle` refuses to load there (3.12 rejects modules without the per-interpreter GIL
/// declaration) or if the payload runs.
#[test]
fn in8_subinterpreters_import_pickle() {
    for python in interpreters() {
        let has = run(
            support::command(&python.path).args([
                "-c",
                "import importlib.util as u; print(any(u.find_spec(m) for m in ('_interpreters', '_xxsubinterpreters')))",
            ]),
            Duration::from_secs(30),
        );
        if text(&has.stdout).trim() != "True" {
            eprintln!("SKIP: {}: no subinterpreter module", python.label);
            continue;
        }
        let (facts, _, _work) = scenario(&python.path, "subinterp", |_| {});
        let label = &python.label;
        assert_eq!(facts["roundtrip"], true, "{label}: {facts}");
        assert_eq!(facts["c_unpickler"], true, "{label}: {facts}");
        assert_eq!(facts["evil"], "UnsafeFileError", "{label}: {facts}");
        assert_eq!(facts["main_roundtrip"], true, "{label}: {facts}");
        assert_eq!(facts["marker_exists"], false, "{label}: {facts}");
    }
}

/// IN-9: joblib's `NumpyUnpickler` subclasses `pickle._Unpickler` and copies its `dispatch`
/// when joblib is imported: both its copy and the `Unpickler.load_build` it calls directly are
/// the guarded steps, and a joblib-dumped array loads once `NumpyArrayWrapper` is allowed.
#[test]
fn in9_joblibs_numpy_unpickler_is_guarded() {
    let Some(python) = ml_python("in9_joblibs_numpy_unpickler_is_guarded") else {
        return;
    };
    let (facts, _, _work) = scenario(&python, "joblib", |command| {
        command.env("PICKLEGUARD_ALLOW", "joblib.numpy_pickle.NumpyArrayWrapper");
    });
    assert_eq!(
        facts["numpy_unpickler_steps_guarded"],
        serde_json::json!([true, true, true]),
        "{facts}"
    );
    assert_eq!(facts["loaded_equal"], true, "{facts}");
}

/// Builds `tests/c/embedded_host.c` against a pyenv CPython (`3.8.`, `3.12.`) in `work`;
/// `None` after a SKIP line when that CPython is not installed.
fn embedded_host(prefix: &str, work: &TempDir) -> Option<(String, std::path::PathBuf)> {
    let Some((version, python)) = support::pyenv_python(prefix) else {
        eprintln!("SKIP: embedded host: CPython {prefix} is not installed under pyenv");
        return None;
    };
    let root = python
        .parent()
        .and_then(Path::parent)
        .expect("pyenv prefix");
    let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let host = work.path().join("host");
    run_ok(
        Command::new("cc")
            .arg(support::repo().join("tests/c/embedded_host.c"))
            .arg("-o")
            .arg(&host)
            .arg(format!("-I{}/include/python{minor}", root.display()))
            .arg(format!("-L{}/lib", root.display()))
            .arg(format!("-lpython{minor}"))
            .arg(format!("-Wl,-rpath,{}/lib", root.display())),
    );
    Some((version, host))
}

/// Python code for the embedded host: runs one scenario of `install_checks.py`.
fn embedded_code(scenario: &str, work: &TempDir) -> String {
    format!(
        "import sys; sys.argv = ['install_checks.py', {scenario:?}, {work:?}]; \
         exec(compile(open({script:?}).read(), {script:?}, 'exec'))",
        work = work.path().display().to_string(),
        script = script("install_checks.py").display().to_string(),
    )
}

/// IN-10: embedded hosts. A C program built here against pyenv's libpython calls
/// `Py_Initialize` itself; under the preload it gets the same `pickle` as `python` does.
#[test]
fn in10_embedded_hosts() {
    for prefix in ["3.8.", "3.12."] {
        let work = TempDir::new("install-embed");
        let Some((version, host)) = embedded_host(prefix, &work) else {
            continue;
        };
        let output = run_ok(support::preloaded(&host).arg(embedded_code("names", &work)));
        let facts = &json_lines(&output.stdout)[0];
        assert_names(&format!("embedded {version}"), facts);
    }
}

/// IN-11: a host that finalises Python and initialises it again. `Py_FinalizeEx` clears the
/// audit hooks; `lifetime` adds the hook back for the next interpreter, so every round
/// refuses the payload (the marker would appear in round 2 without it). Later rounds keep the
/// stock unpickler (pyo3's classes belong to the first interpreter), so only the first has
/// the pure-Python wrappers, and the later ones say so in one stderr line.
#[test]
fn in11_an_embedded_host_that_initialises_python_again_stays_guarded() {
    for prefix in ["3.8.", "3.12."] {
        let work = TempDir::new("install-reinit");
        let Some((version, host)) = embedded_host(prefix, &work) else {
            continue;
        };
        let output = run_ok(
            support::preloaded(&host)
                .arg(embedded_code("reinit", &work))
                .arg("3"),
        );
        let rounds = json_lines(&output.stdout);
        assert_eq!(rounds.len(), 3, "{version}: {}", text(&output.stdout));
        let said = text(&output.stderr)
            .lines()
            .filter(|line| line.contains("Python was initialised again"))
            .count();
        assert_eq!(said, 1, "{version}: {}", text(&output.stderr));
        for (round, facts) in rounds.iter().enumerate() {
            let label = format!("embedded {version}, round {}", round + 1);
            for key in ["evil_loads", "evil_unpickler", "evil_pure"] {
                assert_eq!(facts[key], "UnsafeFileError", "{label}: `{key}` in {facts}");
            }
            assert_eq!(facts["roundtrip"], true, "{label}: {facts}");
            assert_eq!(facts["pure_guarded"], round == 0, "{label}: {facts}");
            assert_eq!(facts["marker_exists"], false, "{label}: {facts}");
        }
    }
}
