//! Issue 12 item 3: code-bearing torch formats are refused by default. `tests/py/ml/
//! code_archives.py` writes a TorchScript model and a torch.package whose code creates a
//! marker as they load, then loads them (TS-1 `torch.jit.load`, TS-2 `torch.load`, PK-1
//! `PackageImporter.load_pickle`).
//!
//! They pass because `src/torch_guard.rs` gates `torch.jit.load` and `PackageImporter` when
//! torch imports them; neither format's code goes through `pickle.find_class`, so without the
//! gate the markers appear (the control shows they do).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::ml_stack::ml_python;
use crate::support::{self, json_lines, run, script, text, TempDir};

const CASES: &[&str] = &["PK-1", "TS-1", "TS-2"];

fn archives(
    action: &str,
    mut command: Command,
    dir: &Path,
    markers: &Path,
) -> (Vec<Value>, String) {
    command
        .arg(script("ml/code_archives.py"))
        .arg(action)
        .arg(dir)
        .arg(markers);
    let output = run(&mut command, Duration::from_secs(240));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    (json_lines(&output.stdout), text(&output.stderr))
}

/// Loads the archives under the preload with `env`. The archives' code writes into `markers`
/// (fixed when they were made), which is emptied first.
fn load(
    python: &Path,
    env: &[(&str, &str)],
    dir: &Path,
    markers: &TempDir,
) -> (Vec<Value>, String) {
    for name in markers.files() {
        std::fs::remove_file(markers.path().join(name)).expect("remove marker");
    }
    let mut command = support::preloaded(python);
    command.envs(env.iter().copied());
    let (results, stderr) = archives("load", command, dir, markers.path());
    assert_eq!(results.len(), CASES.len(), "{results:?}\n{stderr}");
    (results, stderr)
}

#[test]
fn code_archives_are_refused_by_default_and_load_when_allowed() {
    let Some(python) = ml_python("code_archives_are_refused_by_default_and_load_when_allowed")
    else {
        return;
    };
    let dir = TempDir::new("code-archives");
    let control = TempDir::new("code-archive-control");
    archives(
        "make",
        support::command(&python),
        dir.path(),
        control.path(),
    );
    assert_eq!(
        control.files(),
        Vec::<String>::new(),
        "writing runs nothing"
    );

    // Control: without the guard each archive's code runs as it loads.
    let (results, _) = archives(
        "load",
        support::command(&python),
        dir.path(),
        control.path(),
    );
    for result in &results {
        assert_eq!(result["outcome"], "loaded", "unguarded: {result}");
    }
    let all: BTreeSet<String> = CASES.iter().map(|c| c.to_string()).collect();
    assert_eq!(control.files().into_iter().collect::<BTreeSet<_>>(), all);

    // Enforce (the default): refused, saying the file contains code and how to allow it.
    let markers = control;
    let (results, _) = load(&python, &[], dir.path(), &markers);
    for result in &results {
        assert_eq!(result["outcome"], "refused", "{result}");
        assert_eq!(result["type"], "pickleguard.UnsafeFileError", "{result}");
        assert_eq!(result["reason"], "contains code", "{result}");
        let message = result["message"].as_str().unwrap();
        let format = if result["case"] == "PK-1" {
            "torch.package"
        } else {
            "torchscript"
        };
        assert!(message.contains("the file contains code"), "{message}");
        assert!(
            message.contains(&format!("PICKLEGUARD_ALLOW_CODE={format}")),
            "{message}"
        );
        assert!(
            message.contains(&format!("allow_code = [\"{format}\"]")),
            "{message}"
        );
        assert!(
            message.contains("code_archives.py:"),
            "caller named: {message}"
        );
    }
    assert_eq!(markers.files(), Vec::<String>::new(), "a payload ran");

    // Allowed on purpose: the code runs.
    let (results, _) = load(
        &python,
        &[("PICKLEGUARD_ALLOW_CODE", "torchscript,torch.package")],
        dir.path(),
        &markers,
    );
    for result in &results {
        assert_eq!(result["outcome"], "loaded", "{result}");
    }
    assert_eq!(markers.files().into_iter().collect::<BTreeSet<_>>(), all);

    // Warn mode logs each load and lets it run.
    let (results, stderr) = load(
        &python,
        &[("PICKLEGUARD_MODE", "warn")],
        dir.path(),
        &markers,
    );
    for result in &results {
        assert_eq!(result["outcome"], "loaded", "{result}");
    }
    assert_eq!(markers.files().into_iter().collect::<BTreeSet<_>>(), all);
    assert_eq!(
        stderr
            .matches("warn mode: loading a torchscript archive")
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("warn mode: loading a torch.package archive")
            .count(),
        1,
        "{stderr}"
    );
}

/// A process that never imports torch is untouched: the watch waits for torch's modules.
#[test]
fn torch_is_not_imported_or_patched_by_the_guard() {
    let python = &crate::support::interpreters()[0];
    let output = run(
        support::preloaded(&python.path).args([
            "-c",
            "import sys, pickle, collections; pickle.loads(pickle.dumps(collections.OrderedDict())); print(any(m.startswith('torch') for m in sys.modules))",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(text(&output.stdout), "False\n", "{}", text(&output.stderr));
}
