//! The examples of issue 4, each run for real: `examples/serve.py` serving torch models,
//! `examples/legacy/legacy_predict.py` protected only by the preload, and the container
//! entrypoint of `examples/docker/` installed as its Dockerfile says, checked against the
//! Makefile's `install` target.
//!
//! The torch examples need the ML venv (`PICKLEGUARD_ML_PYTHON`, set by `make test`); without it
//! they print a SKIP line and pass. The container test needs only a CPython.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::ml_stack::ml_python;
use crate::support::{self, interpreters, run, run_ok, script, text, TempDir};

/// The globals a whole `mlmodels.TinyNet` needs, as `ml_stack`'s allow loop finds them.
const TINY_NET_ALLOW: &str = "mlmodels.TinyNet,torch.nn.modules.container.Sequential,\
torch.nn.modules.linear.Linear,torch.nn.modules.batchnorm.BatchNorm1d,\
torch.nn.modules.activation.ReLU";

fn examples() -> PathBuf {
    support::repo().join("examples")
}

/// Writes the torch models (`tests/py/ml/make_torch_models.py`) into a new temp dir.
fn torch_models(python: &Path, label: &str) -> TempDir {
    let dir = TempDir::new(label);
    run_ok(
        support::command(python)
            .arg(script("ml/make_torch_models.py"))
            .arg(dir.path()),
    );
    dir
}

fn marker(dir: &TempDir, file: &str) -> PathBuf {
    dir.path().join("markers").join(file)
}

fn finished(command: &mut Command) -> Output {
    run(command, Duration::from_secs(120))
}

/// Asserts a run was refused with `global`'s UnsafeFileError, called from `caller`.
fn assert_refused(output: &Output, global: &str, caller: &str) {
    let err = text(&output.stderr);
    assert!(!output.status.success(), "{}", text(&output.stdout));
    assert!(
        err.contains(&format!(
            "pickleguard.UnsafeFileError: pickleguard refused to load `{global}`"
        )),
        "{err}"
    );
    assert!(err.contains(caller), "the caller is named: {err}");
}

/// serve.py loads a torch model (zip and legacy format) under the preload with the default
/// policy and answers; the malicious twin is refused before its payload runs, and runs its
/// payload without the preload. A whole nn.Module is refused by default and served once its
/// classes are allowed.
#[test]
fn serve_loads_torch_models_and_refuses_their_malicious_twins() {
    let Some(python) = ml_python("serve_loads_torch_models_and_refuses_their_malicious_twins")
    else {
        return;
    };
    let dir = torch_models(&python, "serve-torch");
    let serve = |mut command: Command, model: &str| {
        finished(
            command
                .arg(examples().join("serve.py"))
                .arg(dir.path().join(model))
                .arg("--once"),
        )
    };
    for benign in ["serve_model.pt", "serve_model_legacy.pt"] {
        let output = serve(support::preloaded(&python), benign);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let out = text(&output.stdout);
        assert!(
            out.contains("(linear-3-torch)") && out.contains("-> {'prediction': 1.5}"),
            "{out}"
        );
    }
    // The legacy format's malicious twin is covered by ml_stack's torch group.
    let evil = "serve_evil.pt";
    let refused = serve(support::preloaded(&python), evil);
    assert_refused(&refused, "posix.system", "serve.py:");
    assert!(!marker(&dir, evil).exists(), "the payload ran");
    // Control: without the preload the same file runs its payload.
    serve(support::command(&python), evil);
    assert!(
        marker(&dir, evil).exists(),
        "{evil} must really be malicious"
    );

    let refused = serve(support::preloaded(&python), "serve_module.pt");
    assert_refused(&refused, "mlmodels.TinyNet", "serve.py:");
    assert!(
        text(&refused.stderr).contains("PICKLEGUARD_ALLOW=mlmodels.TinyNet"),
        "{}",
        text(&refused.stderr)
    );
    let mut allowed = support::preloaded(&python);
    allowed
        .env("PICKLEGUARD_ALLOW", TINY_NET_ALLOW)
        .env("PYTHONPATH", script("ml"));
    let output = serve(allowed, "serve_module.pt");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("(TinyNet)\nPOST /predict"),
        "{}",
        text(&output.stdout)
    );
}

/// legacy_predict.py, which knows nothing of pickleguard and calls torch.load(weights_only=
/// False), scores a benign checkpoint under the preload exactly as without it, and is refused a
/// malicious one, whose payload runs only without the preload.
#[test]
fn legacy_script_is_protected_only_by_the_preload() {
    let Some(python) = ml_python("legacy_script_is_protected_only_by_the_preload") else {
        return;
    };
    let legacy = examples().join("legacy/legacy_predict.py");
    let source = std::fs::read_to_string(&legacy).expect("legacy_predict.py");
    assert!(
        !source.contains("pickleguard") && source.contains("weights_only=False"),
        "the legacy script must stay unaware of pickleguard"
    );
    let dir = torch_models(&python, "legacy");
    let predict = |mut command: Command, checkpoint: &str| {
        finished(
            command
                .arg(&legacy)
                .arg(dir.path().join(checkpoint))
                .args(["0.1,0.5,3,1", "0.9,0.2,1,0"]),
        )
    };

    let unguarded = predict(support::command(&python), "churn.pt");
    assert!(unguarded.status.success(), "{}", text(&unguarded.stderr));
    let guarded = predict(support::preloaded(&python), "churn.pt");
    assert!(guarded.status.success(), "{}", text(&guarded.stderr));
    assert_eq!(text(&guarded.stdout), text(&unguarded.stdout));
    assert_eq!(text(&guarded.stdout).lines().count(), 2);
    assert!(text(&guarded.stdout).starts_with("0.1,0.5,3,1 -> "));

    let refused = predict(support::preloaded(&python), "churn_evil.pt");
    assert_refused(&refused, "posix.system", "legacy_predict.py:");
    assert!(!marker(&dir, "churn_evil.pt").exists(), "the payload ran");
    predict(support::command(&python), "churn_evil.pt");
    assert!(
        marker(&dir, "churn_evil.pt").exists(),
        "the malicious checkpoint must really be malicious"
    );
}

/// One instruction of a Dockerfile, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn dockerfile(path: &Path) -> Vec<Instruction> {
    let body = std::fs::read_to_string(path).expect("Dockerfile");
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let (keyword, args) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        instructions.push(Instruction {
            keyword: keyword.to_uppercase(),
            args: args.trim().to_string(),
        });
        pending.clear();
    }
    instructions
}

/// The exec-form (JSON array) arguments of ENTRYPOINT or CMD.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|err| panic!("not exec form: {args}: {err}"))
}

/// `path` inside the fake image root.
fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The Dockerfile installs exactly the files `make install PREFIX=/usr` installs, at the same
/// paths and with the same modes; its LD_PRELOAD names the installed shim with the core beside
/// it; its ENTRYPOINT is the entrypoint script. Then the image is assembled in a temp dir as the
/// Dockerfile says and the entrypoint runs for real: it starts a guarded serve.py (the CMD), which
/// refuses the demo's malicious model; and it refuses to start on a bad configuration or without
/// the preload, before running the command.
#[test]
fn docker_entrypoint_runs_and_dockerfile_matches_make_install() {
    let instructions = dockerfile(&examples().join("docker/Dockerfile"));
    let stages: Vec<&Instruction> = instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and the image: {stages:?}");
    let build_stage = stages[0]
        .args
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("AS"))
        .map(|w| w[1].to_string())
        .expect("FROM ... AS name");
    let final_start = instructions
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .unwrap();
    let (build, image) = instructions.split_at(final_start);

    // The build stage runs `make install` with a PREFIX and a DESTDIR.
    let install = build
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.starts_with("make install"))
        .expect("RUN make install in the build stage");
    let var = |name: &str| {
        install
            .args
            .split_whitespace()
            .find_map(|word| word.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= in {}", install.args))
            .to_string()
    };
    let (prefix, destdir) = (var("PREFIX"), var("DESTDIR"));
    assert_eq!(prefix, "/usr", "the README's `make install PREFIX=/usr`");

    // What that make command installs, as the Makefile itself says (`make -n`), staged for real
    // into a temp DESTDIR by running its install lines.
    let staging = TempDir::new("docker-staging");
    let mut make = support::command("make");
    for var in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
        make.env_remove(var);
    }
    let dry = run_ok(
        make.current_dir(support::repo())
            .args(["-n", "--no-print-directory", "install"])
            .arg(format!("PREFIX={prefix}"))
            .arg(format!("DESTDIR={}", staging.path().display())),
    );
    let mut installed = BTreeSet::new();
    for line in text(&dry.stdout)
        .lines()
        .filter(|l| l.starts_with("install "))
    {
        run_ok(
            support::command("sh")
                .current_dir(support::repo())
                .args(["-c", line]),
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[1] == "-d" {
            continue;
        }
        assert_eq!(&words[1..3], ["-m", "0755"], "{line}");
        let (target, sources) = words[3..].split_last().unwrap();
        let target = target
            .strip_prefix(&staging.path().display().to_string())
            .unwrap_or_else(|| panic!("{line} installs outside DESTDIR"));
        for source in sources {
            let name = Path::new(source).file_name().unwrap().to_str().unwrap();
            installed.insert(format!("{}/{name}", target.trim_end_matches('/')));
        }
    }
    let expected: BTreeSet<String> = [
        format!("{prefix}/lib/pickleguard/libpickleguard.so"),
        format!("{prefix}/lib/pickleguard/libpickleguard_core.so"),
        format!("{prefix}/bin/pickleguard"),
    ]
    .into();
    assert_eq!(installed, expected, "make install's layout");

    // The image copies from the build stage's DESTDIR exactly those files to the same paths.
    let root = TempDir::new("docker-root");
    let mut copied = BTreeSet::new();
    for copy in image.iter().filter(|i| i.keyword == "COPY") {
        let words: Vec<&str> = copy.args.split_whitespace().collect();
        let from_build = words[0] == format!("--from={build_stage}");
        let paths: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let (dest, sources) = paths.split_last().unwrap();
        assert!(
            sources.len() == 1 || dest.ends_with('/'),
            "several sources need a directory destination: {copy:?}"
        );
        for source in sources {
            let (from, name) = if from_build {
                let inside = source
                    .strip_prefix(destdir.as_str())
                    .unwrap_or_else(|| panic!("{source} is not under DESTDIR {destdir}"));
                (staging.path().join(inside.trim_start_matches('/')), inside)
            } else {
                (support::repo().join(source), *source)
            };
            let to = if dest.ends_with('/') {
                format!(
                    "{dest}{}",
                    Path::new(name).file_name().unwrap().to_str().unwrap()
                )
            } else {
                dest.to_string()
            };
            if from_build {
                assert_eq!(name, to, "copied to the path make install uses");
                copied.insert(to.clone());
            }
            let target = in_root(root.path(), &to);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&from, &target)
                .unwrap_or_else(|err| panic!("COPY {}: {err}", from.display()));
        }
    }
    assert_eq!(copied, expected, "the image gets every installed file");
    for file in &expected {
        let mode = std::fs::metadata(in_root(root.path(), file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{file}");
    }

    // LD_PRELOAD names the installed shim; ENTRYPOINT is the copied, executable script.
    let preload = image
        .iter()
        .filter(|i| i.keyword == "ENV")
        .find_map(|i| i.args.strip_prefix("LD_PRELOAD="))
        .expect("ENV LD_PRELOAD=...")
        .to_string();
    assert_eq!(
        preload,
        format!("{prefix}/lib/pickleguard/libpickleguard.so")
    );
    assert!(expected.contains(&preload));
    assert!(
        image
            .iter()
            .any(|i| i.keyword == "ENV" && i.args == "PICKLEGUARD_LOCK=1"),
        "the image locks the policy, so no library in it can switch the guard off"
    );
    let entrypoint = exec_form(
        &image
            .iter()
            .find(|i| i.keyword == "ENTRYPOINT")
            .unwrap()
            .args,
    );
    assert_eq!(entrypoint.len(), 1, "{entrypoint:?}");
    let script_source = examples().join("docker/entrypoint.sh");
    let entry_copy = image
        .iter()
        .find(|i| i.keyword == "COPY" && i.args.starts_with("examples/docker/entrypoint.sh "))
        .expect("COPY examples/docker/entrypoint.sh");
    assert!(entry_copy.args.ends_with(&format!(" {}", entrypoint[0])));
    let script_mode = std::fs::metadata(&script_source)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        script_mode & 0o111,
        0o111,
        "entrypoint.sh must be executable"
    );
    let body = std::fs::read_to_string(&script_source).unwrap();
    assert!(body.contains("pickleguard check-config --quiet || exit $?"));
    assert!(body.trim_end().ends_with("exec \"$@\""));

    // Run the entrypoint in the assembled root: PATH and LD_PRELOAD point into it, `python` is a
    // CPython the suite tests, and container paths in the CMD map into the root.
    let python = &interpreters()[0];
    let python_link = in_root(root.path(), "/usr/local/bin/python");
    std::fs::create_dir_all(python_link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&python.path, &python_link).unwrap();
    let models = in_root(root.path(), "/models");
    run_ok(
        support::command(&python.path)
            .arg(examples().join("make_demo_models.py"))
            .arg(&models),
    );
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        in_root(root.path(), &format!("{prefix}/bin")).display(),
        in_root(root.path(), "/usr/local/bin").display()
    );
    let shim = in_root(root.path(), &preload);
    let entry = in_root(root.path(), &entrypoint[0]);
    let container = |args: &[String], env: &[(&str, &str)], preloaded: bool| {
        let mut command = support::command(&entry);
        command.env("PATH", &path).envs(env.iter().copied());
        if preloaded {
            command.env("LD_PRELOAD", &shim);
        }
        command.args(args.iter().map(|arg| {
            let mapped = in_root(root.path(), arg);
            if arg.starts_with('/') && mapped.exists() {
                mapped.display().to_string()
            } else {
                arg.clone()
            }
        }));
        run(&mut command, Duration::from_secs(60))
    };
    let mut cmd = exec_form(&image.iter().find(|i| i.keyword == "CMD").unwrap().args);
    // One request and out, on loopback (argparse: the last --host wins).
    cmd.extend(["--once", "--host", "127.0.0.1"].map(String::from));
    let served = container(&cmd, &[], true);
    assert!(served.status.success(), "{}", text(&served.stderr));
    assert!(
        text(&served.stdout).contains("-> {'prediction': 1.5}"),
        "{}",
        text(&served.stdout)
    );
    let evil_cmd: Vec<String> = cmd
        .iter()
        .map(|arg| arg.replace("/models/model.pkl", "/models/evil.pkl"))
        .collect();
    let refused = container(&evil_cmd, &[], true);
    assert_refused(&refused, "posix.system", "serve.py:");
    assert!(
        !models.join("PWNED").exists(),
        "the payload ran in the image"
    );
    let probe = |ran: &Path| {
        vec![
            "python".to_string(),
            "-c".into(),
            format!(
                "import pickleguard; print(pickleguard.is_active(), pickleguard.mode()); open({:?}, 'w')",
                ran.display().to_string()
            ),
        ]
    };
    let ran = root.path().join("ran");
    let active = container(&probe(&ran), &[], true);
    assert_eq!(
        text(&active.stdout),
        "True enforce\n",
        "{}",
        text(&active.stderr)
    );

    // A bad configuration: exit 78 with the problem on stderr, and the command never runs.
    std::fs::remove_file(&ran).unwrap();
    let bad = container(&probe(&ran), &[("PICKLEGUARD_ALLOW", "os.system")], true);
    assert_eq!(bad.status.code(), Some(78), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("os.system"),
        "{}",
        text(&bad.stderr)
    );
    assert!(!ran.exists(), "the command ran despite a bad configuration");

    // No preload: refuses to start unguarded.
    let unguarded = container(&probe(&ran), &[], false);
    assert_eq!(
        unguarded.status.code(),
        Some(78),
        "{}",
        text(&unguarded.stderr)
    );
    assert!(!ran.exists(), "the command ran unguarded");
}
