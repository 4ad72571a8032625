//! `pickleguard doctor [PYTHON]`: is this interpreter protected, and by what policy?
//!
//! It runs the interpreter twice: once plainly for its version and how libpython is linked,
//! once under the preload to see that the hook really landed, by importing `pickleguard` and
//! asking it to load a harmless global that the default policy refuses.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use pickleguard_policy::Settings;

use crate::{locate, Error};

/// The version, and whether libpython is a shared library mapped into the process (sysconfig
/// cannot tell: Debian's static `python3.11` reports `Py_ENABLE_SHARED`).
const FACTS: &str = r#"
import sys
print(sys.version.split()[0])
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libpython" in l})
print("shared" if libs else "static")
print(libs[0] if libs else "linked into " + sys.executable)
"#;

/// Loads `collections.Counter`, which no pack allows by default and which is harmless.
const HOOK_PROBE: &str = r#"
import pickle
try:
    import pickleguard
except ImportError:
    print("no-module"); raise SystemExit
print(pickleguard.mode())
try:
    pickle.loads(b"\x80\x04\x8c\x0bcollections\x8c\x07Counter\x93.")
    print("loaded")
except pickleguard.UnsafeFileError:
    print("refused")
"#;

pub fn run(python: Option<OsString>) -> Result<ExitCode, Error> {
    let python = python.unwrap_or_else(|| "python3".into());
    let shown = python.to_string_lossy().into_owned();
    let mut healthy = true;
    let mut report = |ok: bool, what: &str, detail: String| {
        healthy &= ok;
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    };

    let facts = output(
        Command::new(&python)
            .args(["-c", FACTS])
            .env_remove("LD_PRELOAD"),
    );
    let facts: Vec<String> = facts.lines().map(str::to_string).collect();
    match facts.as_slice() {
        [version, link, library] => {
            let supported = version_at_least(version, (3, 8));
            report(
                supported,
                "python",
                format!(
                    "{shown} is CPython {version}{}",
                    if supported {
                        ""
                    } else {
                        " (< 3.8 has no audit hooks)"
                    }
                ),
            );
            report(true, "libpython", format!("{link} ({library})"));
        }
        _ => report(false, "python", format!("cannot run `{shown}`")),
    }

    let shim = match locate::shim() {
        Ok(shim) => {
            report(true, "shim", shim.display().to_string());
            report(
                true,
                "core",
                shim.with_file_name(locate::CORE_FILE).display().to_string(),
            );
            Some(shim)
        }
        Err(err) => {
            report(false, "shim", err.to_string());
            None
        }
    };

    if let Some(shim) = shim {
        let probe = output(
            Command::new(&python)
                .args(["-c", HOOK_PROBE])
                .env("LD_PRELOAD", &shim),
        );
        let lines: Vec<&str> = probe.lines().collect();
        match lines.as_slice() {
            ["no-module", ..] => report(
                false,
                "hook",
                "`import pickleguard` fails under the preload: the core did not install".into(),
            ),
            [mode, "refused"] => report(
                true,
                "hook",
                format!("active, mode {mode}: a disallowed global was refused"),
            ),
            ["warn", "loaded"] => report(
                true,
                "hook",
                "active in warn mode: disallowed globals are reported, not refused".into(),
            ),
            ["off", "loaded"] => report(
                false,
                "hook",
                "installed but the mode is off: nothing is checked".into(),
            ),
            _ => report(false, "hook", format!("unexpected probe output: {probe:?}")),
        }
    }

    let settings = Settings::from_process();
    let source = settings.config_file.as_ref().map_or(
        "built-in defaults and PICKLEGUARD_* variables".to_string(),
        |file| format!("{} and PICKLEGUARD_* variables", file.display()),
    );
    let packs: Vec<&str> = settings.policy.packs().map(|p| p.name).collect();
    report(
        settings.problems.is_empty(),
        "policy",
        format!(
            "{source}; mode {}, packs {}, {} problem(s)",
            settings.mode,
            packs.join(", "),
            settings.problems.len()
        ),
    );
    for problem in &settings.problems {
        println!("     {problem}");
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn output(command: &mut Command) -> String {
    command
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default()
}

fn version_at_least(version: &str, minimum: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= minimum
}
