//! Issue 4: the real ML stack under the preload. `tests/py/ml/ml_scenarios.py` saves real
//! models with torch, numpy, joblib/scikit-learn, pandas, transformers, dill, shelve and copyreg,
//! each benign file next to a malicious twin in the same format, loads them with the library's own
//! loader, and prints one JSON line per case.
//!
//! Every group runs twice. The control run, without the preload, proves that each twin's payload
//! really runs (it creates its marker file), so the guarded test can fail. The guarded run, with
//! the environment the README tells a user to set, proves that every benign file loads and equals
//! the original, and that every twin is refused with its marker never created.
//!
//! The libraries come from the ML venv (`make venv`) that `make test` passes in
//! `PICKLEGUARD_ML_PYTHON`. Without it each test prints a SKIP line and passes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, json_lines, run, script, text, TempDir};

/// The variable `make test` sets to the ML venv's python.
pub const ML_PYTHON_VAR: &str = "PICKLEGUARD_ML_PYTHON";

/// Benign cases that no configuration can load today, with the global that refuses them. The
/// tests assert exactly this, so a policy change that lets one load fails until it is moved out
/// of this list. Both globals live in the hard-denied `dill` module.
const KNOWN_LIMITATIONS: &[(&str, &str)] = &[
    // dill pickles every plain ndarray as `_create_array(ndarray.__reduce__())`: the opt-in
    // `dill` pack allows it (see `dill_arrays_load_with_the_dill_pack`).
    ("dill-numpy-array", "dill._dill._create_array"),
    // dill pickles a builtin type met as an object (complex's reduce names `complex`) as
    // `_load_type("complex")`, the lookup that also hands out CodeType and FunctionType.
    ("dill-complex", "dill._dill._load_type"),
];

/// The ML venv's python, or `None` after a visible SKIP line (written past the test harness's
/// output capture, so it shows in a passing run too).
pub fn ml_python(test: &str) -> Option<PathBuf> {
    let skip = |why: String| {
        let _ = writeln!(std::io::stderr(), "SKIP: {test}: {why}");
        None
    };
    match std::env::var_os(ML_PYTHON_VAR) {
        None => skip(format!(
            "{ML_PYTHON_VAR} is not set (`make test` sets it to the ML venv from `make venv`)"
        )),
        Some(path) if !PathBuf::from(&path).is_file() => skip(format!(
            "{ML_PYTHON_VAR}={} does not exist (run `make venv`)",
            PathBuf::from(path).display()
        )),
        Some(path) => Some(PathBuf::from(path)),
    }
}

/// One run of a scenario group.
struct Run {
    /// The header line: guard, python and library versions.
    header: Value,
    /// One line per case, in order.
    cases: Vec<Value>,
    /// The work dir; its `markers/` is where payloads leave their marker.
    dir: TempDir,
    /// For failure messages.
    label: String,
}

impl Run {
    fn case(&self, name: &str) -> &Value {
        self.cases
            .iter()
            .find(|c| c["case"] == name)
            .unwrap_or_else(|| panic!("{}: no case {name} in {:#?}", self.label, self.cases))
    }

    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Value> {
        let kind = kind.to_string();
        self.cases
            .iter()
            .filter(move |c| c["kind"] == kind.as_str())
    }

    fn markers(&self) -> Vec<String> {
        support::file_names(&self.dir.path().join("markers"))
    }
}

/// `module.name` of a blocked case.
fn refused_global(case: &Value) -> String {
    format!(
        "{}.{}",
        case["module"].as_str().unwrap_or("?"),
        case["name"].as_str().unwrap_or("?")
    )
}

/// Runs `ml_scenarios.py GROUP WORKDIR` with `env`, under the preload when `guarded`.
fn scenarios(python: &PathBuf, group: &str, env: &[(&str, &str)], guarded: bool) -> Run {
    let dir = TempDir::new(&format!("ml-{group}"));
    let mut command = if guarded {
        support::preloaded(python)
    } else {
        support::command(python)
    };
    command.args(["-W", "ignore"]);
    command.envs(env.iter().copied());
    command
        .arg(script("ml/ml_scenarios.py"))
        .arg(group)
        .arg(dir.path());
    let output = run(&mut command, Duration::from_secs(240));
    let label = format!(
        "{group} ({}, env {env:?})",
        if guarded { "preloaded" } else { "control" }
    );
    assert!(
        output.status.success(),
        "{label} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    let mut lines = json_lines(&output.stdout).into_iter();
    let header = lines.next().unwrap_or_default();
    assert_eq!(header["header"], true, "{label}: no header line");
    assert_eq!(header["guard"], guarded, "{label}: {header}");
    let cases: Vec<Value> = lines.collect();
    assert!(!cases.is_empty(), "{label}: no cases");
    Run {
        header,
        cases,
        dir,
        label,
    }
}

/// Loads through `torch.load(weights_only=True)` go through torch's own unpickler, which raises no
/// audit event: torch refuses those payloads itself.
fn weights_only(case: &Value) -> bool {
    case["case"].as_str().unwrap_or("").contains("weights-only")
}

/// The control run: every benign case loads and equals the original, and every malicious twin's
/// payload ran. A twin refused by torch's own weights_only unpickler must share its file with a
/// twin whose payload did run, so that file is proven malicious.
fn assert_control(run: &Run) {
    for case in run.of_kind("benign") {
        assert_eq!(case["outcome"], "loaded", "{}: {case}", run.label);
        assert_eq!(case["same"], true, "{}: {case}", run.label);
    }
    let ran: Vec<&Value> = run
        .of_kind("malicious")
        .filter(|c| c["marker_exists"] == true)
        .map(|c| &c["file"])
        .collect();
    for case in run.of_kind("malicious") {
        if weights_only(case) {
            assert_eq!(case["outcome"], "refused-by-torch", "{}: {case}", run.label);
            assert!(
                ran.contains(&&case["file"]),
                "{}: {} is not shown malicious by any other case",
                run.label,
                case["file"]
            );
        } else {
            assert_eq!(
                case["marker_exists"], true,
                "{}: the payload did not run unguarded, so the guarded run proves nothing: {case}",
                run.label
            );
        }
    }
}

/// The guarded run: every malicious twin is refused and no marker exists; every benign case
/// loads and equals the original, except those in `refused`, which must be refused naming the
/// given global.
fn assert_guarded(run: &Run, refused: &[(&str, &str)]) {
    let refused: BTreeMap<&str, &str> = refused.iter().copied().collect();
    for case in &run.cases {
        let name = case["case"].as_str().unwrap();
        assert_eq!(
            case["marker_exists"], false,
            "{}: a payload ran: {case}",
            run.label
        );
        let expected = if case["kind"] == "malicious" {
            if weights_only(case) {
                "refused-by-torch"
            } else {
                "blocked"
            }
        } else if refused.contains_key(name) {
            "blocked"
        } else {
            "loaded"
        };
        assert_eq!(case["outcome"], expected, "{}: {case}", run.label);
        if expected == "loaded" {
            assert_eq!(
                case["same"], true,
                "{}: loaded but differs: {case}",
                run.label
            );
        }
        if expected == "blocked" {
            let message = case["message"].as_str().unwrap_or("");
            assert!(
                message.starts_with("pickleguard refused to load `"),
                "{}: {case}",
                run.label
            );
        }
        if let Some(global) = refused.get(name) {
            assert_eq!(refused_global(case), *global, "{}: {case}", run.label);
        }
    }
    for name in refused.keys() {
        run.case(name);
    }
    assert_eq!(run.markers(), Vec::<String>::new(), "{}", run.label);
}

/// Runs `group` unguarded (the control) and guarded with `env`, checks both, and returns both.
fn control_and_guarded(
    python: &PathBuf,
    group: &str,
    env: &[(&str, &str)],
    refused: &[(&str, &str)],
) -> (Run, Run) {
    let control = scenarios(python, group, &[], false);
    assert_control(&control);
    let guarded = scenarios(python, group, env, true);
    assert_guarded(&guarded, refused);
    assert_scan_agrees(&guarded, env);
    (control, guarded)
}

/// `pickleguard scan`, with the same settings, reaches the decision the real load reached:
/// exit 0 for every file that loaded, 1 (hard-denied) or 5 (not allowlisted) for every file
/// that was refused. Files that are not
/// pickles at all (a shelve database) are skipped by the scanner and not counted.
fn assert_scan_agrees(run: &Run, env: &[(&str, &str)]) {
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    for case in &run.cases {
        let Some(file) = case["file"].as_str() else {
            continue;
        };
        let loaded = case["outcome"] == "loaded";
        let entry = verdicts.entry(file.to_string()).or_insert(loaded);
        *entry &= loaded;
    }
    for (file, loaded) in verdicts {
        let path = run.dir.path().join(&file);
        if !path.is_file() {
            continue;
        }
        let mut command = support::command(support::cli());
        command.envs(env.iter().copied()).arg("scan").arg(&path);
        let output = run_cmd(&mut command);
        let code = output.status.code();
        if code == Some(3) {
            continue;
        }
        let agrees = if loaded {
            code == Some(0)
        } else {
            matches!(code, Some(1 | 5))
        };
        assert!(
            agrees,
            "{}: scan of {file} disagrees with the load ({}):\n{}",
            run.label,
            if loaded { "loaded" } else { "refused" },
            text(&output.stdout)
        );
    }
}

fn run_cmd(command: &mut std::process::Command) -> std::process::Output {
    run(command, Duration::from_secs(60))
}

/// The value a refusal's message suggests for `PICKLEGUARD_ALLOW`, unquoted as a shell would.
fn suggested_allow(message: &str) -> String {
    let start = message
        .find("PICKLEGUARD_ALLOW=")
        .unwrap_or_else(|| panic!("no PICKLEGUARD_ALLOW suggestion in {message}"))
        + "PICKLEGUARD_ALLOW=".len();
    let rest = &message[start..];
    let end = rest
        .find(" in the environment")
        .unwrap_or_else(|| panic!("unterminated suggestion in {message}"));
    let value = &rest[..end];
    match value.strip_prefix('\'') {
        Some(quoted) => quoted
            .strip_suffix('\'')
            .expect("closing quote")
            .replace(r"'\''", "'"),
        None => value.to_string(),
    }
}

/// Runs `group` under the preload, each round with `PICKLEGUARD_ALLOW` set to exactly what the
/// previous refusal of `case` suggested, until `case` loads. Every round, the malicious twin
/// stays refused. Returns the globals allowed, in the order the refusals named them, and the run
/// in which `case` loaded.
fn allow_until_loaded(python: &PathBuf, group: &str, case: &str) -> (Vec<String>, Run) {
    let mut allow = String::new();
    let mut allowed = Vec::new();
    for _round in 0..12 {
        let env: Vec<(&str, &str)> = if allow.is_empty() {
            vec![]
        } else {
            vec![("PICKLEGUARD_ALLOW", allow.as_str())]
        };
        let run = scenarios(python, group, &env, true);
        let result = run.case(case);
        if result["outcome"] == "loaded" {
            assert_guarded(&run, &[]);
            return (allowed, run);
        }
        assert_guarded(&run, &[(case, refused_global(result).as_str())]);
        assert_eq!(result["reason"], "not-allowlisted", "{result}");
        let global = refused_global(result);
        let next = suggested_allow(result["message"].as_str().unwrap());
        assert!(
            next.starts_with(&allow) && next.ends_with(&global) && next != allow,
            "the suggestion {next:?} must add {global} to {allow:?}"
        );
        allowed.push(global);
        allow = next;
    }
    panic!("{case} still refused after allowing {allowed:?}");
}

/// The pinned `name==version` lines of requirements-ml.txt.
fn pinned_versions() -> BTreeMap<String, String> {
    let path = support::repo().join("requirements-ml.txt");
    let body = std::fs::read_to_string(&path).expect("requirements-ml.txt");
    body.lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, version) = line
                .split_once("==")
                .unwrap_or_else(|| panic!("unpinned requirement {line:?}"));
            (name.trim().to_lowercase(), version.trim().to_string())
        })
        .collect()
}

/// torch.save/torch.load of state_dicts (many dtypes, a view, a Parameter) and optimizer
/// state_dicts (SGD with momentum, Adam, after steps), zip and legacy formats, with
/// weights_only=False and True; and a malicious `.pt` made by rewriting `data.pkl` inside a real
/// benign checkpoint, whose unguarded load returns the original data and runs the payload.
#[test]
fn torch_state_dicts_optimizers_and_file_formats() {
    let Some(python) = ml_python("torch_state_dicts_optimizers_and_file_formats") else {
        return;
    };
    let (control, run) = control_and_guarded(&python, "torch", &[], &[]);
    // Unguarded, the rewritten checkpoint returns the original data while its payload runs.
    let unguarded = control.case("zip-rewritten-data-pkl-evil");
    assert_eq!(unguarded["same"], true, "{unguarded}");
    for case in [
        "state-dict",
        "state-dict-weights-only",
        "optimizer-sgd",
        "optimizer-adam",
        "optimizer-adam-weights-only",
        "legacy-format",
        "legacy-format-weights-only",
    ] {
        assert_eq!(run.case(case)["outcome"], "loaded");
    }
    let rewritten = run.case("zip-rewritten-data-pkl-evil");
    assert_eq!(refused_global(rewritten), "os.system", "{rewritten}");
    assert_eq!(rewritten["reason"], "hard-denied");
    assert_eq!(
        run.case("zip-rewritten-data-pkl-weights-only-evil")["outcome"],
        "refused-by-torch"
    );
    let message = run.case("state-dict-evil")["message"].as_str().unwrap();
    assert!(
        message.contains("`posix.system`") && message.contains("ml_scenarios.py:"),
        "the message names the global and the caller: {message}"
    );

    // The versions the compatibility table states are the ones tested.
    let versions = &run.header["versions"];
    for (name, version) in pinned_versions() {
        assert_eq!(versions[&name], version.as_str(), "{name}: {versions}");
    }
}

/// A training checkpoint: numpy and torch RNG state load by default; `argparse.Namespace` needs
/// `stdlib-data`; `transformers.TrainingArguments` needs `transformers-args` (which brings
/// `stdlib-data`), and nothing less.
#[test]
fn torch_checkpoint_needs_exactly_the_transformers_args_pack() {
    let Some(python) = ml_python("torch_checkpoint_needs_exactly_the_transformers_args_pack")
    else {
        return;
    };
    let packs = |value: &'static str| [("PICKLEGUARD_PACKS", value)];
    control_and_guarded(&python, "checkpoint", &packs("transformers-args"), &[]);
    let default = scenarios(&python, "checkpoint", &[], true);
    assert_guarded(
        &default,
        &[
            ("checkpoint-namespace", "argparse.Namespace"),
            ("checkpoint-training-args", "argparse.Namespace"),
        ],
    );
    let stdlib = scenarios(&python, "checkpoint", &packs("stdlib-data"), true);
    assert_guarded(
        &stdlib,
        &[(
            "checkpoint-training-args",
            "transformers.training_args.TrainingArguments",
        )],
    );
}

/// `torch.save(model)` of a whole nn.Module is refused by default, naming the model class first;
/// allowing exactly what each refusal suggests makes it load (equal state and outputs), and the
/// malicious twin, a model carrying a payload attribute, is still refused.
#[test]
fn torch_whole_module_loads_with_the_allow_its_refusals_suggest() {
    let Some(python) = ml_python("torch_whole_module_loads_with_the_allow_its_refusals_suggest")
    else {
        return;
    };
    assert_control(&scenarios(&python, "torch-module", &[], false));
    let (allowed, loaded) = allow_until_loaded(&python, "torch-module", "module-pickle");
    assert_eq!(
        allowed.first().map(String::as_str),
        Some("mlmodels.TinyNet"),
        "the first refusal names the model class: {allowed:?}"
    );
    let evil = loaded.case("module-pickle-evil");
    assert_eq!(refused_global(evil), "posix.system", "{evil}");
    assert_eq!(evil["reason"], "hard-denied", "{evil}");
    let _ = writeln!(
        std::io::stderr(),
        "ml_stack: a whole TinyNet loads with PICKLEGUARD_ALLOW={}",
        allowed.join(",")
    );
}

/// numpy.load(allow_pickle=True) of object arrays (.npy), of an .npz holding one, and of a plain
/// pickle file (structured, datetime64, float16, complex and StringDType arrays, scalars, dtypes).
#[test]
fn numpy_object_arrays_npz_and_pickle_files() {
    let Some(python) = ml_python("numpy_object_arrays_npz_and_pickle_files") else {
        return;
    };
    control_and_guarded(&python, "numpy", &[], &[]);
}

/// joblib.dump/joblib.load of fitted estimators (logistic regression, random forest,
/// histogram gradient boosting) and a scaler+PCA+classifier Pipeline, plain and compressed with
/// zlib, gzip, bz2, lzma and xz, compared by predictions and probabilities on a fixed input.
/// They need the `sklearn` pack: without it the first estimator class is refused. Tree models
/// are refused even with it: their Cython node arrays follow indices the rules cannot see, so
/// `Tree` and `TreePredictor` are in no pack (ALLOWLIST.md, "taken out").
#[test]
fn joblib_sklearn_estimators_plain_and_compressed() {
    let Some(python) = ml_python("joblib_sklearn_estimators_plain_and_compressed") else {
        return;
    };
    const TREE: &str = "sklearn.tree._tree.Tree";
    const PREDICTOR: &str = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor";
    let refused = [
        ("joblib-random-forest-plain", TREE),
        ("joblib-random-forest-zlib", TREE),
        ("joblib-hist-gradient-boosting-plain", PREDICTOR),
        ("joblib-hist-gradient-boosting-zlib", PREDICTOR),
    ];
    let packs = [("PICKLEGUARD_PACKS", "sklearn")];
    let (_, run) = control_and_guarded(&python, "joblib", &packs, &refused);
    for compression in ["plain", "zlib", "gzip", "bz2", "lzma", "xz"] {
        run.case(&format!("joblib-pipeline-{compression}"));
    }
    let default = scenarios(&python, "joblib", &[], true);
    for case in default.of_kind("benign") {
        assert_eq!(case["outcome"], "blocked", "needs the sklearn pack: {case}");
        assert!(
            refused_global(case).starts_with("sklearn."),
            "the estimator class is refused first: {case}"
        );
    }
    assert_eq!(default.markers(), Vec::<String>::new());
}

/// joblib.dump/joblib.load of plain numpy arrays (C and Fortran order, structured) loads with
/// the default pack alone (`NumpyArrayWrapper`, its header checked by `joblib-array-wrapper`);
/// an object array, which joblib writes as a nested pickle, has its payload refused.
#[test]
fn joblib_numpy_arrays_load_with_the_defaults() {
    let Some(python) = ml_python("joblib_numpy_arrays_load_with_the_defaults") else {
        return;
    };
    let (_, run) = control_and_guarded(&python, "joblib-arrays", &[], &[]);
    run.case("joblib-arrays-plain");
    run.case("joblib-arrays-zlib");
}

/// DataFrame.to_pickle/pandas.read_pickle, plain and gzip/bz2/xz/zip, with int, float, str,
/// bool, categorical, nullable Int64, datetime (naive and UTC) and timedelta columns, and a
/// Series. They need the `pandas` pack.
#[test]
fn pandas_frames_plain_and_compressed() {
    let Some(python) = ml_python("pandas_frames_plain_and_compressed") else {
        return;
    };
    control_and_guarded(&python, "pandas", &[("PICKLEGUARD_PACKS", "pandas")], &[]);
    let default = scenarios(&python, "pandas", &[], true);
    for case in default.of_kind("benign") {
        assert_eq!(case["outcome"], "blocked", "needs the pandas pack: {case}");
    }
}

/// dill: plain data round-trips by default; a dill-pickled lambda that loading would call and an
/// os.system payload are refused. Arrays and complex numbers through dill are a known limitation
/// (`KNOWN_LIMITATIONS`). shelve: a benign entry loads, a malicious entry of the same shelf is
/// refused.
#[test]
fn dill_and_shelve() {
    let Some(python) = ml_python("dill_and_shelve") else {
        return;
    };
    let (_, run) = control_and_guarded(&python, "dill-shelve", &[], KNOWN_LIMITATIONS);
    let lambda = run.case("dill-lambda-evil");
    assert_eq!(refused_global(lambda), "dill._dill._create_function");
    assert_eq!(lambda["reason"], "hard-denied");
    assert_eq!(refused_global(run.case("dill-data-evil")), "posix.system");
    assert_eq!(
        refused_global(run.case("shelve-entry-evil")),
        "posix.system"
    );
}

/// With the `dill` pack, dill pickles of numpy arrays load too; `_load_type` stays refused, and
/// every malicious twin is still refused.
#[test]
fn dill_arrays_load_with_the_dill_pack() {
    let Some(python) = ml_python("dill_arrays_load_with_the_dill_pack") else {
        return;
    };
    let env = [("PICKLEGUARD_PACKS", "dill")];
    let run = scenarios(&python, "dill-shelve", &env, true);
    assert_guarded(&run, &[("dill-complex", "dill._dill._load_type")]);
    assert_scan_agrees(&run, &env);
}

/// A class pickled through a `copyreg.pickle` reducer is refused by default, naming its
/// reconstructor; the suggested `PICKLEGUARD_ALLOW` makes it load, and a class whose registered
/// reducer returns os.system stays refused.
#[test]
fn copyreg_reconstructor_loads_with_the_allow_its_refusal_suggests() {
    let Some(python) = ml_python("copyreg_reconstructor_loads_with_the_allow_its_refusal_suggests")
    else {
        return;
    };
    assert_control(&scenarios(&python, "copyreg", &[], false));
    let (allowed, run) = allow_until_loaded(&python, "copyreg", "copyreg-reducer");
    assert_eq!(allowed, ["mlfixtures.rebuild_point"]);
    assert_eq!(
        refused_global(run.case("copyreg-reducer-evil")),
        "posix.system"
    );
}

/// torch DataLoader(num_workers=2), with fork and spawn workers, over a Dataset defined in the
/// script, and multiprocessing.Pool returning objects no pack allows: they work with the default
/// configuration (multiprocessing's own IPC is trusted). A worker that loads a malicious file is
/// still refused, and the refusal reaches the caller.
#[test]
fn dataloader_workers_and_pool_work_under_the_default_config() {
    let Some(python) = ml_python("dataloader_workers_and_pool_work_under_the_default_config")
    else {
        return;
    };
    let (_, run) = control_and_guarded(&python, "processes", &[], &[]);
    for case in [
        "dataloader-workers-fork",
        "dataloader-workers-spawn",
        "pool-map",
    ] {
        assert_eq!(run.case(case)["outcome"], "loaded");
    }
    for evil in ["dataloader-workers-fork-evil", "pool-worker-file-evil"] {
        let case = run.case(evil);
        assert_eq!(refused_global(case), "posix.system", "{case}");
        assert!(
            case["message"]
                .as_str()
                .unwrap()
                .contains("The load was called from"),
            "{case}"
        );
    }
}
