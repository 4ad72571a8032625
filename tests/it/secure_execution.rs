//! Issue 11, item 2: in secure-execution mode (setuid, setgid, file capabilities) the caller's
//! environment is not the program's: no `PICKLEGUARD_*` variable and no path from the
//! environment counts, only root-owned configuration in `/etc`, and logs go to stderr.
//!
//! The privileged program is a setuid-root copy of Debian's `python3.11`, made and removed by
//! the test, run as `nobody` with `setpriv`. The shim is installed the way platforms install it
//! for such programs, in `/etc/ld.so.preload` (the loader ignores `LD_PRELOAD` paths for setuid
//! programs), inside a private mount namespace whose `/etc` is an overlay: the machine's own
//! `/etc/ld.so.preload` is never touched.
//!
//! Every case has a control: the same program and environment run by root (no privilege
//! change, so no secure-execution mode) shows the variable would have taken effect.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{self, compile_c, run_full, shim, PrivateEtc, TempDir};

const PYTHON: &str = "/usr/bin/python3.11";

/// What the Python side does: report whether the guard is active, then load a pickle that calls
/// `posix.mkdir(<marker>)` (no shell: a shell may drop the privileges) and a benign
/// `fractions.Fraction` (not in any default pack).
const SCRIPT: &str = r#"
import fractions, json, os, pickle, sys
marker = sys.argv[1].encode()
out = {"uid": os.getuid(), "euid": os.geteuid()}
try:
    import pickleguard
    out["active"] = pickleguard.is_active()
except ImportError:
    out["active"] = None
try:
    pickle.loads(b"cposix\nmkdir\n(S'" + marker + b"'\ntR.")
    out["payload"] = "loaded"
except Exception as err:
    out["payload"] = type(err).__name__
try:
    pickle.loads(pickle.dumps(fractions.Fraction(1, 3)))
    out["fraction"] = "loaded"
except Exception as err:
    out["fraction"] = type(err).__name__
print(json.dumps(out))
"#;

/// A constructor that leaves a marker: proof that a library was loaded and ran code.
const EVIL_CORE: &str = r#"
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) { (void)write(fd, "pwned\n", 6); close(fd); }
}
"#;

struct Setup {
    dir: TempDir,
    etc: PrivateEtc,
    python: PathBuf,
    evil_core: PathBuf,
}

impl Setup {
    /// The setuid Python, the evil library and `/etc/ld.so.preload` naming the shim; `None`
    /// (with a SKIP line) where the test cannot run.
    fn new() -> Option<Setup> {
        if !support::root_or_skip("the secure-execution tests (setuid, namespaces)") {
            return None;
        }
        if !Path::new(PYTHON).is_file() {
            support::skip(&format!(
                "the secure-execution tests: Debian's {PYTHON} is not installed"
            ));
            return None;
        }
        let dir = TempDir::new("secure-execution");
        if !support::honours_setuid(dir.path()) {
            support::skip(&format!(
                "the secure-execution tests: {} is on a nosuid filesystem",
                dir.path().display()
            ));
            return None;
        }
        let python = dir.path().join("python-setuid");
        std::fs::copy(PYTHON, &python).expect("copy python");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o4755))
            .expect("chmod u+s");
        let evil_core = dir.path().join("evil.so");
        let marker = dir.path().join("EVIL-CORE-RAN");
        compile_c(
            EVIL_CORE,
            &evil_core,
            &[
                "-shared",
                "-fPIC",
                &format!("-DMARKER=\"{}\"", marker.display()),
            ],
        );
        let etc = PrivateEtc::new("secure-execution-etc");
        etc.write(
            "ld.so.preload",
            &format!("{}\n", shim().display()),
            0,
            0o644,
        );
        Some(Setup {
            dir,
            etc,
            python,
            evil_core,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the script with `env`; as `nobody` through the setuid bit (secure-execution mode)
    /// when `secure`, as root otherwise (the control). Returns the script's JSON and stderr.
    fn run(&self, secure: bool, env: &[(&str, &str)]) -> (serde_json::Value, String) {
        self.run_program(&self.python, secure, env)
    }

    /// [`Setup::run`] with another setuid program that takes Python's command line.
    fn run_program(
        &self,
        program: &Path,
        secure: bool,
        env: &[(&str, &str)],
    ) -> (serde_json::Value, String) {
        let _ = std::fs::remove_dir(self.path("PAYLOAD-RAN"));
        let mut argv: Vec<&OsStr> = Vec::new();
        if secure {
            argv.extend(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                ]
                .map(OsStr::new),
            );
        }
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        argv.extend(["/usr/bin/env", "-i"].map(OsStr::new));
        argv.extend(pairs.iter().map(OsStr::new));
        let marker = self.path("PAYLOAD-RAN");
        argv.extend([
            program.as_os_str(),
            OsStr::new("-c"),
            OsStr::new(SCRIPT),
            marker.as_os_str(),
        ]);
        let (status, stdout, stderr) = run_full(&mut self.etc.command(&argv));
        assert_eq!(
            status,
            Some(0),
            "secure={secure} {env:?}\n{stdout}\n{stderr}"
        );
        let result: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|err| panic!("bad output {stdout:?}: {err}\n{stderr}"));
        let expected_uid = if secure { 65534 } else { 0 };
        assert_eq!(
            (result["uid"].as_u64(), result["euid"].as_u64()),
            (Some(expected_uid), Some(0)),
            "the privileged run must be setuid root, run by nobody"
        );
        (result, stderr)
    }

    /// Whether the payload's directory exists.
    fn payload_ran(&self) -> bool {
        self.path("PAYLOAD-RAN").exists()
    }
}

/// SX-1..SX-4, each with its control. Fails if any `PICKLEGUARD_*` variable takes effect in
/// the setuid process, or if the controls show a variable would not have had an effect anyway.
#[test]
fn a_setuid_python_ignores_the_callers_pickleguard_variables() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let evil_marker = setup.path("EVIL-CORE-RAN");

    // The baseline: the setuid process is protected through /etc/ld.so.preload.
    let (result, stderr) = setup.run(true, &[]);
    assert_eq!(result["active"], true, "baseline: {result} {stderr}");
    assert_eq!(result["payload"], "UnsafeFileError", "baseline: {result}");
    assert!(!setup.payload_ran(), "baseline: the payload ran");

    // SX-1: PICKLEGUARD_CORE names attacker code; the shim must load only the core beside it.
    let evil = setup.evil_core.to_str().expect("utf-8 temp path");
    let (result, stderr) = setup.run(true, &[("PICKLEGUARD_CORE", evil)]);
    assert!(!evil_marker.exists(), "SX-1: the evil core ran as root");
    assert_eq!(result["active"], true, "SX-1: {result} {stderr}");
    assert_eq!(result["payload"], "UnsafeFileError", "SX-1: {result}");
    let (_, stderr) = setup.run(false, &[("PICKLEGUARD_CORE", evil)]);
    assert!(
        evil_marker.exists(),
        "SX-1 control: the variable had no effect: {stderr}"
    );
    std::fs::remove_file(&evil_marker).expect("remove marker");

    // SX-2: PICKLEGUARD_MODE=off must not switch the guard off.
    let (result, stderr) = setup.run(true, &[("PICKLEGUARD_MODE", "off")]);
    assert_eq!(
        result["payload"], "UnsafeFileError",
        "SX-2: {result} {stderr}"
    );
    assert!(!setup.payload_ran(), "SX-2: the payload ran as root");
    let (result, _) = setup.run(false, &[("PICKLEGUARD_MODE", "off")]);
    assert_eq!(result["payload"], "loaded", "SX-2 control: {result}");
    assert!(
        setup.payload_ran(),
        "SX-2 control: the payload would have run"
    );

    // SX-3: PICKLEGUARD_LOG_FILE must not create (or append to) a file as root.
    let log = setup.path("root-owned.log");
    let log_env = [
        ("PICKLEGUARD_LOG", "debug"),
        (
            "PICKLEGUARD_LOG_FILE",
            log.to_str().expect("utf-8 temp path"),
        ),
    ];
    let (result, stderr) = setup.run(true, &log_env);
    assert!(
        !log.exists(),
        "SX-3: the log file was created: {result} {stderr}"
    );
    assert!(
        stderr.contains("pickleguard: blocked `posix.mkdir`"),
        "SX-3: the refusal is logged to stderr instead: {stderr}"
    );
    setup.run(false, &log_env);
    assert!(log.exists(), "SX-3 control: the variable had no effect");

    // SX-4: PICKLEGUARD_CONFIG must not make root read a file of the caller's choosing.
    let config_env = [("PICKLEGUARD_CONFIG", "/etc/shadow")];
    let (result, stderr) = setup.run(true, &config_env);
    assert!(
        !stderr.contains("/etc/shadow"),
        "SX-4: /etc/shadow was read: {stderr}"
    );
    assert_eq!(result["payload"], "UnsafeFileError", "SX-4: {result}");
    let (_, stderr) = setup.run(false, &config_env);
    assert!(
        stderr.contains("/etc/shadow"),
        "SX-4 control: the variable had no effect: {stderr}"
    );
}

/// SX-5: root's `/etc/pickleguard/pickleguard.toml` applies in secure-execution mode (it allows
/// `fractions.Fraction` here). SX-6: the same file owned by `nobody` is ignored, with a line
/// saying why. Fails if the file is ignored when trusted, or obeyed when not.
#[test]
fn a_setuid_python_trusts_only_root_owned_configuration_in_etc() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let config = "allow = [\"fractions.Fraction\"]\n";
    let (result, _) = setup.run(true, &[]);
    assert_eq!(
        result["fraction"], "UnsafeFileError",
        "SX-5 baseline: {result}"
    );

    setup
        .etc
        .write("pickleguard/pickleguard.toml", config, 0, 0o644);
    let (result, stderr) = setup.run(true, &[]);
    assert_eq!(result["fraction"], "loaded", "SX-5: {result} {stderr}");
    assert_eq!(result["payload"], "UnsafeFileError", "SX-5: {result}");

    setup
        .etc
        .write("pickleguard/pickleguard.toml", config, 65534, 0o644);
    let (result, stderr) = setup.run(true, &[]);
    assert_eq!(
        result["fraction"], "UnsafeFileError",
        "SX-6: {result} {stderr}"
    );
    assert!(
        stderr.contains("must be owned by root"),
        "SX-6: the ignored file is not reported: {stderr}"
    );
    // The control: the same nobody-owned file applies to an ordinary process.
    let (result, _) = setup.run(false, &[]);
    assert_eq!(result["fraction"], "loaded", "SX-6 control: {result}");
}

/// A C program that embeds CPython through its shared libpython: `Py_BytesMain` runs Python's
/// own command line, as many embedding hosts do.
const C_HOST: &str = r#"
#include <Python.h>
int main(int argc, char **argv) { return Py_BytesMain(argc, argv); }
"#;

/// SX-7: a setuid-root C program embedding pyenv's libpython 3.12, run by `nobody`, ignores
/// `PICKLEGUARD_MODE=off` and `PICKLEGUARD_CORE`, like the setuid interpreter. The control run
/// by root obeys `PICKLEGUARD_MODE=off`. Fails if the embedding host, with its libpython loaded
/// as a dependency rather than linked in, escapes secure-execution mode.
#[test]
fn a_setuid_c_host_embedding_libpython_ignores_the_callers_variables() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let Some(python) = support::embeddable_python("3.12.", "SX-7") else {
        return;
    };
    let host = setup.path("embedding-host");
    support::compile_c_host(&python, C_HOST, &host);
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let home = python.home.to_str().expect("utf-8 pyenv path");
    let evil = setup.evil_core.to_str().expect("utf-8 temp path");
    let env = [
        ("PYTHONHOME", home),
        ("PICKLEGUARD_MODE", "off"),
        ("PICKLEGUARD_CORE", evil),
    ];
    let (result, stderr) = setup.run_program(&host, true, &env);
    let label = format!("SX-7 (libpython {})", python.version);
    assert_eq!(result["active"], true, "{label}: {result} {stderr}");
    assert_eq!(
        result["payload"], "UnsafeFileError",
        "SX-7: {result} {stderr}"
    );
    assert!(!setup.payload_ran(), "SX-7: the payload ran as root");
    assert!(
        !setup.path("EVIL-CORE-RAN").exists(),
        "SX-7: the evil core ran"
    );

    let control = [("PYTHONHOME", home), ("PICKLEGUARD_MODE", "off")];
    let (result, stderr) = setup.run_program(&host, false, &control);
    assert_eq!(
        result["payload"], "loaded",
        "SX-7 control: {result} {stderr}"
    );
    assert!(
        setup.payload_ran(),
        "SX-7 control: the payload would have run"
    );
}

/// SX-8: in secure-execution mode the core must sit in a directory only root can write to,
/// or someone else could swap it between the shim's check and the load. The shim and core in
/// a world-writable directory leave the setuid process unprotected, with one line saying why;
/// the control: the same copies in a 0755 directory protect it.
#[test]
fn a_core_in_a_directory_others_can_write_is_not_loaded_by_a_setuid_python() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let dir = setup.path("install");
    std::fs::create_dir(&dir).expect("create install dir");
    let shim = shim();
    std::fs::copy(&shim, dir.join("libpickleguard.so")).expect("copy shim");
    std::fs::copy(
        shim.with_file_name("libpickleguard_core.so"),
        dir.join("libpickleguard_core.so"),
    )
    .expect("copy core");
    let preload = format!("{}\n", dir.join("libpickleguard.so").display());
    setup.etc.write("ld.so.preload", &preload, 0, 0o644);

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod 777");
    let (result, stderr) = setup.run(true, &[]);
    assert_eq!(
        result["active"],
        serde_json::Value::Null,
        "SX-8: {result} {stderr}"
    );
    assert!(
        stderr.contains("or its directory is not owned by root or is writable by others")
            && stderr.contains("NOT protected"),
        "SX-8: {stderr}"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
    let (result, stderr) = setup.run(true, &[]);
    assert_eq!(result["active"], true, "SX-8 control: {result} {stderr}");
}
