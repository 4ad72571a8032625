//! Issue 11, item 5: installs that tell the truth. The shim finds its core through symlinks,
//! one process gets one policy however many copies are preloaded, a core of another version or
//! a damaged one is refused with one line (never a crash), and `PICKLEGUARD_REQUIRE=1` or
//! `require = true` stops a Python process that cannot be protected before its code runs,
//! while other programs are never affected.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, compile_c, interpreters, run_full, shim, text, TempDir};

const NOT_PROTECTED: &str = "; this process is NOT protected against unsafe pickles";

/// Prints whether the guard is active, then tries a payload that would create `argv[1]`.
const SCRIPT: &str = r#"
import os, pickle, sys
try:
    import pickleguard
    active = pickleguard.is_active()
except ImportError:
    active = None
cores = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libpickleguard_core" in line})
try:
    pickle.loads(b"cposix\nmkdir\n(S'" + sys.argv[1].encode() + b"'\ntR.")
    payload = "loaded"
except Exception as err:
    payload = type(err).__name__
print(active, payload, len(cores))
"#;

fn python() -> &'static Path {
    &interpreters()[0].path
}

/// Copies the shim (and, if `with_core`, the core) into `dir`.
fn install_copy(dir: &Path, with_core: bool) -> PathBuf {
    let shim = shim();
    let copy = dir.join("libpickleguard.so");
    std::fs::copy(&shim, &copy).expect("copy shim");
    if with_core {
        std::fs::copy(
            shim.with_file_name("libpickleguard_core.so"),
            dir.join("libpickleguard_core.so"),
        )
        .expect("copy core");
    }
    copy
}

/// Runs `SCRIPT` under `preload` with `env`; returns (status, stdout, stderr).
fn run_script(preload: &str, env: &[(&str, &str)], marker: &Path) -> (Option<i32>, String, String) {
    let mut command = support::command(python());
    command
        .env("LD_PRELOAD", preload)
        .envs(env.iter().copied())
        .args(["-c", SCRIPT])
        .arg(marker);
    run_full(&mut command)
}

/// IN-1: a shim reached through a symlink loads the core beside its real file. The control: a
/// copy of the shim with no core beside it says it cannot find one, so the lookup really is by
/// the real path. Fails if the shim looks beside the link (the old fail-open behaviour).
#[test]
fn a_symlinked_shim_finds_its_core() {
    let dir = TempDir::new("installs-symlink");
    let marker = dir.path().join("PAYLOAD-RAN");
    let link = dir.path().join("libpickleguard.so");
    std::os::unix::fs::symlink(shim(), &link).expect("symlink");
    let quiet = [("PICKLEGUARD_LOG", "error")];
    let (status, stdout, stderr) = run_script(link.to_str().unwrap(), &quiet, &marker);
    assert_eq!(
        (status, stdout.as_str(), stderr.as_str()),
        (Some(0), "True UnsafeFileError 1\n", ""),
        "IN-1"
    );
    assert!(!marker.exists(), "IN-1: the payload ran");

    let copies = TempDir::new("installs-lone-copy");
    let lone = install_copy(copies.path(), false);
    let (status, stdout, stderr) = run_script(lone.to_str().unwrap(), &[], &marker);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "None loaded 0\n"),
        "IN-1 control"
    );
    assert!(
        stderr.contains("cannot open the core library")
            && stderr.ends_with(&format!("{NOT_PROTECTED}\n")),
        "IN-1 control: {stderr}"
    );
}

/// IN-2: two installed copies in `LD_PRELOAD` load one core, so `pickleguard.allow()` and the
/// mode act on the only policy there is. Fails if each copy loads its own core (two policies).
#[test]
fn two_installed_copies_give_one_policy() {
    let first = TempDir::new("installs-first");
    let second = TempDir::new("installs-second");
    let a = install_copy(first.path(), true);
    let b = install_copy(second.path(), true);
    let marker = first.path().join("PAYLOAD-RAN");
    let preload = format!("{} {}", a.display(), b.display());
    let quiet = [("PICKLEGUARD_LOG", "error")];
    let (status, stdout, stderr) = run_script(&preload, &quiet, &marker);
    assert_eq!(
        (status, stdout.as_str(), stderr.as_str()),
        (Some(0), "True UnsafeFileError 1\n", ""),
        "IN-2"
    );
    let script = "import pickle, fractions, pickleguard\n\
                  data = pickle.dumps(fractions.Fraction(1, 3))\n\
                  pickleguard.allow('fractions.Fraction')\n\
                  print(pickle.loads(data))";
    let mut command = support::command(python());
    command.env("LD_PRELOAD", &preload).args(["-c", script]);
    let (status, stdout, stderr) = run_full(&mut command);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "1/3\n"),
        "IN-2 allow(): {stderr}"
    );
}

/// IN-3: a core cut short inside its loadable segments is refused with one line, and the
/// process runs on. The control: loading that file directly kills the process with SIGBUS,
/// which is what the shim did before it checked the file.
#[test]
fn a_truncated_core_is_one_line_not_a_crash() {
    let dir = TempDir::new("installs-truncated");
    let core = shim().with_file_name("libpickleguard_core.so");
    let bytes = std::fs::read(&core).expect("read core");
    let cut = first_writable_segment_offset(&core) / 4096 * 4096;
    let truncated = dir.path().join("libpickleguard_core.so");
    std::fs::write(&truncated, &bytes[..cut]).expect("write truncated core");
    let marker = dir.path().join("PAYLOAD-RAN");
    let env = [("PICKLEGUARD_CORE", truncated.to_str().unwrap())];
    let (status, stdout, stderr) = run_script(shim().to_str().unwrap(), &env, &marker);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "None loaded 0\n"),
        "IN-3: {stderr}"
    );
    assert_eq!(
        stderr,
        format!(
            "pickleguard: the core library `{}` is unusable: it is truncated (its headers describe data past its end){NOT_PROTECTED}\n",
            truncated.display()
        ),
        "IN-3"
    );

    let mut control = support::command(python());
    control
        .args(["-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])"])
        .arg(&truncated);
    let output = support::run(&mut control, std::time::Duration::from_secs(60));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGBUS),
        "IN-3 control: {}",
        text(&output.stderr)
    );
}

/// The file offset of the first writable `PT_LOAD` segment, from `readelf -lW`.
fn first_writable_segment_offset(object: &Path) -> usize {
    let output = Command::new("readelf")
        .arg("-lW")
        .arg(object)
        .output()
        .expect("readelf");
    text(&output.stdout)
        .lines()
        .filter(|line| line.trim_start().starts_with("LOAD") && line.contains("RW"))
        .filter_map(|line| {
            let offset = line.split_whitespace().nth(1)?;
            usize::from_str_radix(offset.trim_start_matches("0x"), 16).ok()
        })
        .min()
        .expect("a writable LOAD segment")
}

/// A library that looks like a core of another version; its install function leaves a marker.
const OTHER_VERSION_CORE: &str = r#"
#include <fcntl.h>
#include <unistd.h>
const char *pickleguard_core_version(void) { return "0.0.0-other"; }
int pickleguard_install(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
    return 0;
}
"#;

/// IN-4: a core of another version is refused with one line naming both versions, and its
/// install function never runs. Fails if the shim calls into a mismatched core.
#[test]
fn a_core_of_another_version_is_refused() {
    let dir = TempDir::new("installs-version");
    let fake = dir.path().join("libpickleguard_core.so");
    let installed = dir.path().join("INSTALL-CALLED");
    compile_c(
        OTHER_VERSION_CORE,
        &fake,
        &[
            "-shared",
            "-fPIC",
            &format!("-DMARKER=\"{}\"", installed.display()),
        ],
    );
    let marker = dir.path().join("PAYLOAD-RAN");
    let env = [("PICKLEGUARD_CORE", fake.to_str().unwrap())];
    let (status, _, stderr) = run_script(shim().to_str().unwrap(), &env, &marker);
    assert_eq!(status, Some(0));
    assert_eq!(
        stderr,
        format!(
            "pickleguard: the core library `{}` is version `0.0.0-other` but this shim is `{}`; install both from the same build{NOT_PROTECTED}\n",
            fake.display(),
            env!("CARGO_PKG_VERSION")
        ),
        "IN-4"
    );
    assert!(
        !installed.exists(),
        "IN-4: the mismatched core's install ran"
    );
}

/// IN-5: with `PICKLEGUARD_REQUIRE=1`, or `require = true` in the config file, a Python process
/// that cannot be protected (no core; a CPython without audit hooks) exits 69 before any Python
/// code runs, while bash under the same settings runs unchanged. Fails if the program's code
/// runs (it would print) or if a non-Python process is affected. The control: without require,
/// the same process runs (unprotected, with its one line).
#[test]
fn require_stops_an_unprotectable_python_before_its_code_runs() {
    let dir = TempDir::new("installs-require");
    let config = dir.path().join("pickleguard.toml");
    std::fs::write(
        &config,
        "mode = \"enforce\"\nrequire = true  # no exceptions\n[log]\nlevel = \"warn\"\n",
    )
    .expect("write config");
    let missing = "/nonexistent/libpickleguard_core.so";
    let settings: [&[(&str, &str)]; 2] = [
        &[("PICKLEGUARD_REQUIRE", "1")],
        &[("PICKLEGUARD_CONFIG", config.to_str().unwrap())],
    ];
    let mut pythons: Vec<PathBuf> = vec![python().to_path_buf()];
    match support::pyenv_python("3.7.") {
        Some((_, old)) => pythons.push(old),
        None => support::skip("IN-5 with CPython 3.7: not installed under pyenv"),
    }
    for env in settings {
        for python in &pythons {
            let mut command = support::preloaded(python);
            command
                .env("PICKLEGUARD_CORE", missing)
                .envs(env.iter().copied())
                .args(["-c", "print('user code ran')"]);
            let (status, stdout, stderr) = run_full(&mut command);
            assert_eq!(
                status,
                Some(69),
                "IN-5 {env:?} {}: {stderr}",
                python.display()
            );
            assert_eq!(stdout, "", "IN-5: user code ran");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 2, "IN-5: {stderr}");
            assert!(
                lines[0].ends_with(NOT_PROTECTED.trim_start_matches("; "))
                    || lines[0].contains("NOT protected")
            );
            assert!(
                lines[1].starts_with("pickleguard: protection is required"),
                "IN-5: {stderr}"
            );
        }
        let mut bash = support::preloaded("bash");
        bash.env("PICKLEGUARD_CORE", missing)
            .envs(env.iter().copied())
            .args(["-c", "echo ok"]);
        let (status, stdout, stderr) = run_full(&mut bash);
        assert_eq!(
            (status, stdout.as_str(), stderr.as_str()),
            (Some(0), "ok\n", ""),
            "IN-5 bash {env:?}"
        );
    }
    // The control: the same failure without require lets the program run, unprotected.
    let mut command = support::preloaded(python());
    command
        .env("PICKLEGUARD_CORE", missing)
        .args(["-c", "print('user code ran')"]);
    let (status, stdout, stderr) = run_full(&mut command);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "user code ran\n"),
        "IN-5 control: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "IN-5 control: {stderr}");
    // PICKLEGUARD_REQUIRE=0 overrides the file, as every variable does.
    let mut command = support::preloaded(python());
    command
        .env("PICKLEGUARD_CORE", missing)
        .env("PICKLEGUARD_CONFIG", &config)
        .env("PICKLEGUARD_REQUIRE", "0")
        .args(["-c", "print('user code ran')"]);
    let (status, stdout, _) = run_full(&mut command);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "user code ran\n"),
        "IN-5 env over file"
    );
}

/// IN-6: the shim honours the core's install status: when the core cannot protect the process
/// and the configuration it read requires protection, the process exits 69. The core sees
/// `"require" = true` (a quoted key, which the shim's own line scan does not read), and fails
/// because the shim is loaded into a running interpreter. The control: without the setting,
/// the program goes on after the one line.
#[test]
fn the_cores_install_status_is_honoured() {
    let dir = TempDir::new("installs-status");
    let config = dir.path().join("pickleguard.toml");
    std::fs::write(&config, "\"require\" = true\n").expect("write config");
    let late_load = "import ctypes, sys; ctypes.CDLL(sys.argv[1]); print('went on')";
    let mut command = support::command(python());
    command
        .env("PICKLEGUARD_CONFIG", &config)
        .args(["-c", late_load])
        .arg(shim());
    let (status, stdout, stderr) = run_full(&mut command);
    assert_eq!((status, stdout.as_str()), (Some(69), ""), "IN-6: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "IN-6: {stderr}");
    assert!(lines[0].contains("already running"), "IN-6: {stderr}");
    assert!(
        lines[1].starts_with("pickleguard: protection is required"),
        "IN-6: {stderr}"
    );

    let mut control = support::command(python());
    control.args(["-c", late_load]).arg(shim());
    let (status, stdout, stderr) = run_full(&mut control);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "went on\n"),
        "IN-6 control: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "IN-6 control: {stderr}");
}
