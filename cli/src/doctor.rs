//! `pickleguard doctor [PYTHON]`: would a Python started from this environment be protected?
//!
//! It checks what this environment really loads, not a copy of its own: every entry of
//! `LD_PRELOAD` as given and of `/etc/ld.so.preload` (missing file, wrong ELF class, not a
//! pickleguard shim), the shim those resolve to and the core beside it, with their versions.
//! Then it starts the interpreter in this very environment and asks it to load a harmless
//! global that the default policy refuses. Anything short of a refusal is `NOT protected`,
//! with the reason, and exit 1.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use pickleguard_policy::Settings;
use serde_json::json;

use crate::locate::{CORE_FILE, SHIM_FILE};
use crate::Error;

/// The version, whether libpython is a shared library mapped into the process (sysconfig
/// cannot tell: Debian's static `python3.11` reports `Py_ENABLE_SHARED`), and the executable.
const FACTS: &str = r#"
import sys
print(sys.version.split()[0])
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libpython" in l})
print("shared" if libs else "static")
print(libs[0] if libs else "linked into " + sys.executable)
print(sys.executable)
"#;

/// Loads `collections.Counter`, which no pack allows by default and which is harmless.
const HOOK_PROBE: &str = r#"
import pickle
try:
    import pickleguard
except ImportError:
    print("no-module"); raise SystemExit
if getattr(pickleguard, "__file__", None):
    # A `pickleguard` package from sys.path (the wheel's stub), not the guard's built-in module.
    print("no-module"); raise SystemExit
print(pickleguard.mode())
print(getattr(pickleguard, "__version__", "unknown"))
try:
    pickle.loads(b"\x80\x04\x8c\x0bcollections\x8c\x07Counter\x93.")
    print("loaded")
except pickleguard.UnsafeFileError:
    print("refused")
"#;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// The doctor's findings, printed as text or JSON at the end.
#[derive(Default)]
struct Findings {
    checks: Vec<(Level, String, String)>,
    /// The first reason the environment is not protected.
    not_protected: Option<String>,
    shim_version: Option<String>,
    core_version: Option<String>,
    preload: Vec<serde_json::Value>,
    json: bool,
}

impl Findings {
    fn check(&mut self, level: Level, what: &str, detail: String) {
        if !self.json {
            let tag = match level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{tag} {what}: {detail}");
        }
        self.checks.push((level, what.to_string(), detail));
    }

    fn unprotected(&mut self, reason: String) {
        self.not_protected.get_or_insert(reason);
    }
}

/// One preload entry and what it is.
struct Entry {
    given: String,
    path: Option<PathBuf>,
    kind: Result<Kind, String>,
}

/// What a preload entry's file is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A pickleguard shim, with its version if the file carries one.
    Shim(Option<String>),
    /// Some other library of the right class.
    Other,
}

pub fn run(python: Option<OsString>, json: bool) -> Result<ExitCode, Error> {
    let python = python.unwrap_or_else(|| "python3".into());
    let shown = python.to_string_lossy().into_owned();
    let mut f = Findings {
        json,
        ..Findings::default()
    };

    // 1. The interpreter itself, without any preload.
    let facts = Command::new(&python)
        .args(["-c", FACTS])
        .env_remove("LD_PRELOAD")
        .output();
    let mut elf = None;
    match facts {
        Err(err) => {
            f.check(
                Level::Fail,
                "python",
                format!("cannot run `{shown}`: {err}"),
            );
            f.unprotected(format!("`{shown}` cannot be started: {err}"));
        }
        Ok(out) if !out.status.success() => {
            let why = last_line(&out.stderr);
            f.check(
                Level::Fail,
                "python",
                format!("`{shown}` failed ({}): {why}", out.status),
            );
            f.unprotected(format!("`{shown}` does not run: {why}"));
        }
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            if let [version, link, library, executable] = lines.as_slice() {
                let supported = version_at_least(version, (3, 8));
                if supported {
                    f.check(
                        Level::Ok,
                        "python",
                        format!("{shown} is CPython {version} ({executable})"),
                    );
                } else {
                    f.check(
                        Level::Fail,
                        "python",
                        format!(
                            "{shown} is CPython {version}, older than 3.8: it has no audit hooks"
                        ),
                    );
                    f.unprotected(format!("CPython {version} has no audit hooks"));
                }
                f.check(Level::Ok, "libpython", format!("{link} ({library})"));
                elf = elf_header(Path::new(executable)).ok();
            } else {
                f.check(
                    Level::Fail,
                    "python",
                    format!("`{shown}` is not a CPython: {text:?}"),
                );
                f.unprotected(format!("`{shown}` is not a CPython"));
            }
        }
    }

    // 2. What this environment preloads, entry by entry.
    let mut shims = Vec::new();
    let from_env = std::env::var_os("LD_PRELOAD");
    match &from_env {
        None => f.check(Level::Warn, "LD_PRELOAD", "not set".into()),
        Some(value) => {
            let entries = preload_entries(value, elf);
            report_entries(&mut f, "LD_PRELOAD", &entries, &mut shims);
        }
    }
    match std::fs::read("/etc/ld.so.preload") {
        Ok(bytes) => {
            let entries = preload_entries(
                OsStr::new(&String::from_utf8_lossy(&bytes).into_owned()),
                elf,
            );
            report_entries(&mut f, "/etc/ld.so.preload", &entries, &mut shims);
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            f.check(Level::Ok, "/etc/ld.so.preload", "absent".into());
        }
        Err(err) => f.check(
            Level::Warn,
            "/etc/ld.so.preload",
            format!("cannot read it: {err}"),
        ),
    }
    match shims.first() {
        None => {
            let hint = crate::locate::shim()
                .map(|s| {
                    format!(
                        "; use `pickleguard run -- {shown} ...` or LD_PRELOAD={}",
                        s.display()
                    )
                })
                .unwrap_or_default();
            f.check(
                Level::Fail,
                "shim",
                format!("neither LD_PRELOAD nor /etc/ld.so.preload loads a pickleguard shim{hint}"),
            );
            f.unprotected(format!(
                "no pickleguard shim is preloaded in this environment{hint}"
            ));
        }
        Some((shim, version)) => {
            f.shim_version = version.clone();
            let shown_version = version
                .as_deref()
                .unwrap_or("unknown (a shim without a version mark)");
            f.check(
                Level::Ok,
                "shim",
                format!("{} (version {shown_version})", shim.display()),
            );
            check_core(&mut f, shim, elf);
        }
    }

    // 3. The probe, through this environment as it is.
    match Command::new(&python).args(["-c", HOOK_PROBE]).output() {
        Err(err) => {
            f.check(Level::Fail, "hook", format!("cannot run `{shown}`: {err}"));
            f.unprotected(format!("`{shown}` cannot be started: {err}"));
        }
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let said = said_by_pickleguard(&out.stderr);
            let lines: Vec<&str> = stdout.lines().collect();
            match lines.as_slice() {
                [mode, version, "refused"] => {
                    f.core_version.get_or_insert(version.to_string());
                    f.check(
                        Level::Ok,
                        "hook",
                        format!(
                            "active (core {version}), mode {mode}: a disallowed global was refused"
                        ),
                    );
                }
                ["warn", version, "loaded"] => {
                    f.core_version.get_or_insert(version.to_string());
                    f.check(
                        Level::Warn,
                        "hook",
                        format!("active (core {version}) in warn mode: hard-denied globals are refused, other disallowed ones only reported"),
                    );
                }
                ["off", _, "loaded"] => {
                    f.check(
                        Level::Fail,
                        "hook",
                        "installed but the mode is off: nothing is checked".into(),
                    );
                    f.unprotected("the guard is installed but its mode is off".into());
                }
                ["no-module", ..] => {
                    let why = said.unwrap_or_else(|| "the preload did not install the core".into());
                    f.check(
                        Level::Fail,
                        "hook",
                        format!("the guard's module is not in `{shown}`: {why}"),
                    );
                    f.unprotected(format!(
                        "a Python started here does not load the guard: {why}"
                    ));
                }
                _ => {
                    let why = said.unwrap_or_else(|| last_line(&out.stderr));
                    f.check(
                        Level::Fail,
                        "hook",
                        format!("the probe did not finish ({}): {why}", out.status),
                    );
                    f.unprotected(format!("the probe failed: {why}"));
                }
            }
        }
    }
    if let (Some(shim), Some(core)) = (&f.shim_version, &f.core_version) {
        if shim != core {
            f.check(
                Level::Warn,
                "versions",
                format!("shim {shim} with core {core}: install them together"),
            );
        }
    }

    // 4. The policy in effect here.
    let settings = Settings::from_process();
    let source = settings.config_file.as_ref().map_or(
        "built-in defaults and PICKLEGUARD_* variables".to_string(),
        |file| format!("{} and PICKLEGUARD_* variables", file.display()),
    );
    let packs: Vec<&str> = settings.policy.packs().map(|p| p.name).collect();
    let level = if settings.problems.is_empty() {
        Level::Ok
    } else {
        Level::Fail
    };
    f.check(
        level,
        "policy",
        format!(
            "{source}; mode {}, lock {}, packs {}, {} problem(s)",
            settings.mode,
            if settings.lock { "on" } else { "off" },
            packs.join(", "),
            settings.problems.len()
        ),
    );
    if !json {
        for problem in &settings.problems {
            println!("     {problem}");
        }
    }

    let failed = f.checks.iter().any(|(level, _, _)| *level == Level::Fail);
    if json {
        let checks: Vec<serde_json::Value> = f
            .checks
            .iter()
            .map(|(level, what, detail)| json!({"check": what, "status": level.word(), "detail": detail}))
            .collect();
        let document = json!({
            "protected": f.not_protected.is_none(),
            "reason": f.not_protected,
            "python": shown,
            "versions": {
                "cli": env!("CARGO_PKG_VERSION"),
                "shim": f.shim_version,
                "core": f.core_version,
            },
            "preload": f.preload,
            "checks": checks,
            "problems": settings.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "exit_code": u8::from(failed || f.not_protected.is_some()),
        });
        println!("{document:#}");
    } else {
        match &f.not_protected {
            None => {
                println!("protected: a Python started from this environment refuses unsafe pickles")
            }
            Some(reason) => println!("NOT protected: {reason}"),
        }
    }
    Ok(if failed || f.not_protected.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reports each entry of one preload source, collecting the shims.
fn report_entries(
    f: &mut Findings,
    source: &str,
    entries: &[Entry],
    shims: &mut Vec<(PathBuf, Option<String>)>,
) {
    if entries.is_empty() {
        f.check(Level::Warn, source, "set but empty".into());
    }
    for entry in entries {
        let label = format!("{source} entry `{}`", entry.given);
        let (level, detail, status) = match (&entry.kind, &entry.path) {
            (Ok(Kind::Shim(version)), Some(path)) => {
                shims.push((path.clone(), version.clone()));
                (Level::Ok, "a pickleguard shim".to_string(), "shim")
            }
            (Ok(Kind::Other), _) => (
                Level::Ok,
                "another library (not pickleguard)".to_string(),
                "other",
            ),
            (Err(why), _) => {
                let looks_like_ours = entry.given.contains("pickleguard");
                let level = if looks_like_ours {
                    Level::Fail
                } else {
                    Level::Warn
                };
                (
                    level,
                    format!("{why}; the dynamic loader skips it"),
                    "unusable",
                )
            }
            (Ok(Kind::Shim(_)), None) => (Level::Warn, "unresolved".into(), "unusable"),
        };
        f.preload.push(json!({
            "source": source,
            "entry": entry.given,
            "path": entry.path.as_ref().map(|p| p.display().to_string()),
            "status": status,
            "detail": detail,
        }));
        if level == Level::Fail {
            f.unprotected(format!("{label}: {detail}"));
        }
        f.check(level, &label, detail);
    }
}

/// The core beside the shim (or at `PICKLEGUARD_CORE`): present, right class, a core, version.
fn check_core(f: &mut Findings, shim: &Path, elf: Option<(u8, u16)>) {
    let core = std::env::var_os("PICKLEGUARD_CORE")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| shim.with_file_name(CORE_FILE));
    match inspect(&core, elf) {
        Ok((bytes, _)) if !contains(&bytes, b"pickleguard_install") => {
            f.check(
                Level::Fail,
                "core",
                format!("`{}` is not a pickleguard core", core.display()),
            );
            f.unprotected(format!("`{}` is not a pickleguard core", core.display()));
        }
        Ok((bytes, _)) => {
            let version = mark(&bytes, b"pickleguard-core-version=");
            let shown = version
                .clone()
                .unwrap_or_else(|| "unknown (a core without a version mark)".into());
            f.core_version = version;
            f.check(
                Level::Ok,
                "core",
                format!("{} (version {shown})", core.display()),
            );
        }
        Err(why) => {
            f.check(Level::Fail, "core", format!("`{}`: {why}", core.display()));
            f.unprotected(format!("the core `{}`: {why}", core.display()));
        }
    }
}

/// The entries of a preload list (separated by spaces and colons, as ld.so splits them), each
/// resolved and classified.
fn preload_entries(value: &OsStr, elf: Option<(u8, u16)>) -> Vec<Entry> {
    let text = value.to_string_lossy();
    text.split([' ', ':', '\t', '\n'])
        .filter(|e| !e.is_empty())
        .map(|given| {
            let path = resolve(given);
            let kind = match &path {
                None => Err("no such library in the library path".to_string()),
                Some(path) => inspect(path, elf).map(|(bytes, _)| {
                    if contains(&bytes, b"pickleguard-shim-version=")
                        || (contains(&bytes, CORE_FILE.as_bytes())
                            && contains(&bytes, b"pickleguard_install"))
                    {
                        Kind::Shim(mark(&bytes, b"pickleguard-shim-version="))
                    } else {
                        Kind::Other
                    }
                }),
            };
            let kind = match kind {
                Ok(Kind::Other) if Path::new(given).file_name() == Some(OsStr::new(SHIM_FILE)) => {
                    Err(format!("named {SHIM_FILE} but not a pickleguard shim"))
                }
                other => other,
            };
            Entry {
                given: given.to_string(),
                path,
                kind,
            }
        })
        .collect()
}

/// A path as ld.so finds it: as is when it has a slash (with glibc's `$LIB` token expanded to
/// the first of this ABI's library directories where the file exists), else in the usual
/// library directories.
fn resolve(given: &str) -> Option<PathBuf> {
    if given.contains("$LIB") || given.contains("${LIB}") {
        let expanded = |lib: &str| PathBuf::from(given.replace("${LIB}", lib).replace("$LIB", lib));
        let candidates = ["lib/x86_64-linux-gnu", "lib64", "lib"];
        return candidates
            .iter()
            .map(|lib| expanded(lib))
            .find(|path| path.exists())
            .or_else(|| Some(expanded(candidates[0])));
    }
    if given.contains('/') {
        return Some(PathBuf::from(given));
    }
    let mut dirs: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    for dir in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs.into_iter()
        .map(|d| d.join(given))
        .find(|p| p.is_file())
}

/// Reads a library and checks its ELF header against the interpreter's (class, machine).
/// Returns its bytes, or why the dynamic loader would refuse it, with the OS reason.
fn inspect(path: &Path, elf: Option<(u8, u16)>) -> Result<(Vec<u8>, (u8, u16)), String> {
    let mut file = std::fs::File::open(path).map_err(|err| format!("cannot open it: {err}"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read it: {err}"))?;
    let header = parse_elf(&bytes).ok_or_else(|| "not an ELF shared library".to_string())?;
    if let Some(wanted) = elf {
        if header.0 != wanted.0 {
            return Err(format!(
                "wrong ELF class: it is {}-bit, the interpreter is {}-bit",
                bits(header.0),
                bits(wanted.0)
            ));
        }
        if header.1 != wanted.1 {
            return Err(format!(
                "built for another machine (e_machine {}, the interpreter's is {})",
                header.1, wanted.1
            ));
        }
    }
    Ok((bytes, header))
}

fn bits(class: u8) -> u32 {
    if class == 1 {
        32
    } else {
        64
    }
}

/// (class, machine) of an ELF file.
fn elf_header(path: &Path) -> std::io::Result<(u8, u16)> {
    let mut head = [0u8; 20];
    std::fs::File::open(path)?.read_exact(&mut head)?;
    parse_elf(&head).ok_or_else(|| std::io::Error::other("not an ELF file"))
}

fn parse_elf(bytes: &[u8]) -> Option<(u8, u16)> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || !matches!(bytes[4], 1 | 2) {
        return None;
    }
    let machine = if bytes[5] == 2 {
        u16::from_be_bytes([bytes[18], bytes[19]])
    } else {
        u16::from_le_bytes([bytes[18], bytes[19]])
    };
    Some((bytes[4], machine))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The text after `key` up to `;`, if the file carries that mark.
fn mark(bytes: &[u8], key: &[u8]) -> Option<String> {
    let start = bytes.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &bytes[start..bytes.len().min(start + 64)];
    let end = rest.iter().position(|&b| b == b';')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The lines pickleguard's shim or core wrote to stderr, joined.
fn said_by_pickleguard(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pickleguard") || l.contains("ld.so"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(" / "))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .to_string()
}

fn version_at_least(version: &str, minimum: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= minimum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_marks() {
        assert_eq!(
            mark(
                b"xx pickleguard-shim-version=1.2.3;yy",
                b"pickleguard-shim-version="
            ),
            Some("1.2.3".into())
        );
        assert_eq!(mark(b"nothing", b"pickleguard-shim-version="), None);
    }

    #[test]
    fn expands_the_lib_token() {
        let path = resolve("/nonexistent/$LIB/pickleguard/libpickleguard.so").unwrap();
        assert_eq!(
            path,
            PathBuf::from("/nonexistent/lib/x86_64-linux-gnu/pickleguard/libpickleguard.so")
        );
        assert!(resolve("/usr/${LIB}/libc.so.6").unwrap().exists());
    }

    #[test]
    fn parses_elf_headers() {
        let mut h = *b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0";
        assert_eq!(parse_elf(&h), Some((2, 62)));
        h[4] = 1;
        assert_eq!(parse_elf(&h), Some((1, 62)));
        assert_eq!(parse_elf(b"#!/bin/sh\n0123456789"), None);
    }
}
