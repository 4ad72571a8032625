//! `pickleguard scan` and `pickleguard allowlist`: judge files without running them, with the
//! policy code the runtime hook uses, so a scan and a real load reach the same decision.
//!
//! Text and JSON Lines results are printed file by file as each scan finishes; JSON and SARIF
//! are one document at the end. On a terminal, stderr shows a progress line.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pickleguard_policy::{Global, Outcome, Settings};
use pickleguard_scan::{FileReport, Finding, Format, ScanError, Scanner, Verdict};
use sha2::{Digest as _, Sha256};

use crate::learn::{self, Destination, Seen};
use crate::{sarif, Error};

/// Exit statuses of `scan`.
pub mod exit {
    /// Every scanned file is clean (or its findings are not in `--fail-on`).
    pub const CLEAN: u8 = 0;
    /// A hard-denied global, or one that cannot be named statically: likely malicious.
    pub const HARD_DENIED: u8 = 1;
    /// A file could not be read or scanned to its end.
    pub const ERROR: u8 = 2;
    /// No pickle was found in any file.
    pub const NOTHING_SCANNED: u8 = 3;
    /// Globals that are merely not on the allowlist: unreviewed, not known to be malicious.
    pub const NOT_ALLOWED: u8 = 5;
}

/// The version of the JSON document's layout; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 2;

/// Output shape.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One block per file as it is scanned, for people.
    Text,
    /// One JSON document: schema and tool version, every file's report with its SHA-256, and
    /// a summary.
    Json,
    /// One JSON object per line as each file is scanned, then a summary line.
    JsonLines,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// What makes the scan fail (exit non-zero).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailOn {
    /// Hard-denied or statically unresolvable globals (exit 1).
    HardDenied,
    /// Globals not on the allowlist (exit 5), and hard-denied ones (exit 1).
    NotAllowed,
    /// Files that cannot be read or scanned to the end (exit 2).
    Error,
}

/// What one file came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Scanned; nothing refused.
    Clean,
    /// A global the allowlist lacks, nothing worse.
    NotAllowed,
    /// A hard-denied or unresolvable global.
    HardDenied,
    /// Scanned only in part (its findings stand).
    Error,
    /// The file itself could not be opened or read.
    Unreadable,
    /// A format that holds no pickle and runs no code, such as safetensors.
    Safe(&'static str),
    /// No pickle in it.
    Skipped,
}

/// One scanned file with what the CLI adds to the scanner's report.
pub struct Scanned {
    pub report: FileReport,
    pub status: Status,
    pub sha256: Option<String>,
}

impl Scanned {
    /// Whether the file counts as scanned: a pickle (or a broken one) was found in it.
    pub fn counted(&self) -> bool {
        !matches!(
            self.status,
            Status::Unreadable | Status::Safe(_) | Status::Skipped
        )
    }

    fn has(&self, outcome: Outcome) -> bool {
        self.report
            .streams
            .iter()
            .flat_map(|s| &s.globals)
            .any(|g| g.decision.outcome() == outcome)
    }
}

/// Every file under `paths` (directories recursively, symlinked directories not followed),
/// in a stable order. Unreadable directories are reported as errors by the scan itself.
fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(path) = pending.pop() {
        let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !is_real_dir {
            out.push(path);
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            out.push(path);
            continue;
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        children.sort();
        pending.extend(children.into_iter().rev());
    }
    out
}

/// Scans one file and classifies it. With `hash`, the file's SHA-256 is computed on a second
/// thread while it is scanned (on large files hashing costs more than scanning).
fn scan_one(scanner: &Scanner, path: &Path, hash: bool) -> Scanned {
    let (report, digest) = std::thread::scope(|scope| {
        let digest = hash.then(|| scope.spawn(|| sha256(path)));
        let report = scanner.scan_file(path);
        (
            report,
            digest.and_then(|digest| digest.join().ok().flatten()),
        )
    });
    let mut digest = Some(digest);
    let mut sha256 = move || digest.take().flatten();
    let unreadable =
        matches!(&report.error, Some(ScanError::Io { .. })) && report.streams.is_empty();
    let status = if unreadable {
        Status::Unreadable
    } else if let Format::Safe { kind } = &report.format {
        Status::Safe(kind)
    } else if report.format == Format::Unknown && !report.is_error() {
        match safe_format(path) {
            Some(name) => Status::Safe(name),
            None => Status::Skipped,
        }
    } else {
        let mut scanned = Scanned {
            report,
            status: Status::Clean,
            sha256: None,
        };
        scanned.status = if scanned.has(Outcome::HardDenied)
            || scanned.has(Outcome::Unresolved)
            || !scanned.report.concerns.is_empty()
        {
            Status::HardDenied
        } else if scanned.report.is_error() {
            Status::Error
        } else if scanned.has(Outcome::NotAllowlisted) {
            Status::NotAllowed
        } else {
            Status::Clean
        };
        scanned.sha256 = sha256();
        return scanned;
    };
    Scanned {
        report,
        sha256: (status != Status::Unreadable).then(sha256).flatten(),
        status,
    }
}

/// A format that cannot hold a pickle, recognised by its content: safetensors (an 8-byte
/// little-endian header length, then a JSON object) and GGUF.
fn safe_format(path: &Path) -> Option<&'static str> {
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.read_exact(&mut head).ok()?;
    if &head[..4] == b"GGUF" {
        return Some("gguf");
    }
    let header = u64::from_le_bytes(head[..8].try_into().ok()?);
    (head[8] == b'{' && header >= 2 && header <= len.saturating_sub(8)).then_some("safetensors")
}

/// The file's SHA-256 in hex, read in blocks.
fn sha256(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut block) {
            Ok(0) => break,
            Ok(n) => hasher.update(&block[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A progress line on stderr, only when stderr is a terminal.
struct Progress {
    on: bool,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            on: std::io::stderr().is_terminal(),
            total,
        }
    }

    fn show(&self, done: usize, path: &Path) {
        if self.on {
            let name: String = path.display().to_string().chars().take(60).collect();
            eprint!("\r\x1b[2K[{done}/{}] {name}", self.total);
            let _ = std::io::stderr().flush();
        }
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Scans every file, calling `each` as each one finishes.
fn scan_all(
    settings: &Settings,
    paths: &[PathBuf],
    hash: bool,
    mut each: impl FnMut(&Scanned),
) -> Vec<Scanned> {
    let scanner = Scanner::new(&settings.policy);
    let all = files(paths);
    let progress = Progress::new(all.len());
    let mut out = Vec::with_capacity(all.len());
    for (done, path) in all.iter().enumerate() {
        progress.show(done, path);
        let scanned = scan_one(&scanner, path, hash);
        progress.clear();
        each(&scanned);
        out.push(scanned);
    }
    out
}

/// Policy problems stop the scan: a verdict under a policy other than the one intended is
/// worse than none.
fn check_settings(settings: &Settings) -> Result<(), ExitCode> {
    if settings.problems.is_empty() {
        return Ok(());
    }
    for problem in &settings.problems {
        eprintln!("error: {problem}");
    }
    eprintln!("pickleguard: not scanning: fix the configuration first");
    Err(ExitCode::from(exit::ERROR))
}

/// The counts a summary reports.
#[derive(Debug, Default)]
pub struct Summary {
    pub scanned: usize,
    pub hard_denied: usize,
    pub not_allowed: usize,
    pub errors: usize,
    pub unreadable: usize,
    pub safe: usize,
    pub skipped: usize,
}

impl Summary {
    fn of(all: &[Scanned]) -> Self {
        let mut s = Summary::default();
        for file in all {
            s.scanned += usize::from(file.counted());
            match file.status {
                Status::HardDenied => s.hard_denied += 1,
                Status::NotAllowed => s.not_allowed += 1,
                Status::Error => s.errors += 1,
                Status::Unreadable => s.unreadable += 1,
                Status::Safe(_) => s.safe += 1,
                Status::Skipped => s.skipped += 1,
                Status::Clean => {}
            }
            if file.status == Status::HardDenied && file.report.is_error() {
                s.errors += 1;
            }
        }
        s
    }

    /// The exit status under `fail_on`: the gravest condition that is asked to fail.
    fn exit_code(&self, fail_on: &[FailOn]) -> u8 {
        let asks = |what: FailOn| fail_on.contains(&what);
        let dangerous = asks(FailOn::HardDenied) || asks(FailOn::NotAllowed);
        if dangerous && self.hard_denied > 0 {
            exit::HARD_DENIED
        } else if asks(FailOn::Error) && self.errors + self.unreadable > 0 {
            exit::ERROR
        } else if asks(FailOn::NotAllowed) && self.not_allowed > 0 {
            exit::NOT_ALLOWED
        } else if self.scanned == 0 && self.safe == 0 {
            exit::NOTHING_SCANNED
        } else {
            exit::CLEAN
        }
    }

    fn to_json(&self, code: u8) -> serde_json::Value {
        serde_json::json!({
            "scanned": self.scanned,
            "with_findings": self.hard_denied + self.not_allowed,
            "hard_denied": self.hard_denied,
            "not_allowlisted": self.not_allowed,
            "errors": self.errors,
            "unreadable": self.unreadable,
            "safe_format": self.safe,
            "skipped": self.skipped,
            "exit_code": code,
        })
    }
}

/// The tool object every JSON output carries.
pub fn tool_json() -> serde_json::Value {
    serde_json::json!({"name": "pickleguard", "version": env!("CARGO_PKG_VERSION")})
}

/// One file as JSON: the scanner's report plus status and SHA-256.
fn file_json(file: &Scanned) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(&file.report.to_json())
        .unwrap_or_else(|_| serde_json::json!({"path": file.report.path}));
    if let Some(object) = value.as_object_mut() {
        object.insert("status".into(), status_word(file.status).into());
        if let Status::Safe(name) = file.status {
            object.insert("safe_format".into(), name.into());
        }
        object.insert("sha256".into(), file.sha256.clone().into());
        if let Some(error) = &file.report.error {
            object.insert("error_message".into(), error_chain(error).into());
        }
    }
    value
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Clean => "clean",
        Status::NotAllowed => Outcome::NotAllowlisted.as_str(),
        Status::HardDenied => Outcome::HardDenied.as_str(),
        Status::Error => "error",
        Status::Unreadable => "unreadable",
        Status::Safe(_) => "safe_format",
        Status::Skipped => "skipped",
    }
}

/// An error with its causes, so the OS reason is always shown.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

pub fn scan(
    settings: &Settings,
    paths: &[PathBuf],
    format: OutputFormat,
    fail_on: &[FailOn],
    verbose: bool,
) -> Result<ExitCode, Error> {
    if let Err(code) = check_settings(settings) {
        return Ok(code);
    }
    let hash = format != OutputFormat::Text;
    let all = scan_all(settings, paths, hash, |file| match format {
        OutputFormat::Text => print_report(file, verbose),
        OutputFormat::JsonLines if verbose || file.status != Status::Skipped => {
            println!("{}", file_json(file))
        }
        OutputFormat::JsonLines => {}
        OutputFormat::Json | OutputFormat::Sarif => {}
    });
    let summary = Summary::of(&all);
    let code = summary.exit_code(fail_on);
    match format {
        OutputFormat::Json => {
            let files: Vec<serde_json::Value> = all
                .iter()
                .filter(|f| verbose || f.status != Status::Skipped)
                .map(file_json)
                .collect();
            let document = serde_json::json!({
                "schema_version": JSON_SCHEMA_VERSION,
                "tool": tool_json(),
                "files": files,
                "summary": summary.to_json(code),
            });
            println!("{document}");
        }
        OutputFormat::JsonLines => {
            println!(
                "{}",
                serde_json::json!({"schema_version": JSON_SCHEMA_VERSION, "tool": tool_json(), "summary": summary.to_json(code)})
            );
        }
        OutputFormat::Sarif => println!("{}", sarif::document(&all)),
        OutputFormat::Text => {
            println!(
                "{} file(s) scanned: {} hard-denied, {} not allowlisted, {} with errors; {} unreadable, {} safe format, {} skipped (no pickle found)",
                summary.scanned,
                summary.hard_denied,
                summary.not_allowed,
                summary.errors,
                summary.unreadable,
                summary.safe,
                summary.skipped,
            );
        }
    }
    if summary.scanned == 0 && summary.safe == 0 {
        eprintln!("pickleguard: nothing was scanned: no pickle, torch, numpy or joblib file found");
    }
    Ok(ExitCode::from(code))
}

fn print_report(file: &Scanned, verbose: bool) {
    let report = &file.report;
    match file.status {
        Status::Skipped => {
            if verbose {
                println!("{}: skipped, no pickle found", report.path);
            }
            return;
        }
        Status::Safe(name) => {
            println!("{}: safe format ({name})", report.path);
            return;
        }
        Status::Unreadable => {
            let why = report
                .error
                .as_ref()
                .map(|e| error_chain(e))
                .unwrap_or_default();
            println!("{}: UNREADABLE: {why}", report.path);
            return;
        }
        _ => {}
    }
    let count = |outcome: Outcome| {
        report
            .streams
            .iter()
            .flat_map(|s| &s.globals)
            .filter(|g| g.decision.outcome() == outcome)
            .count()
    };
    let globals: usize = report.streams.iter().map(|s| s.globals.len()).sum();
    let findings = globals - count(Outcome::Allowed) + report.concerns.len();
    let status = match (report.is_error(), findings) {
        (true, 0) => "ERROR".to_string(),
        (true, n) => format!("ERROR, {n} finding(s)"),
        (false, 0) => "clean".to_string(),
        (false, n) => format!("{n} finding(s)"),
    };
    println!(
        "{} [{}]: {status} ({globals} global(s))",
        report.path, report.format
    );
    for stream in &report.streams {
        let member = stream
            .member
            .as_deref()
            .map(|m| format!("{m}: "))
            .unwrap_or_default();
        for finding in stream.globals.iter().filter(|g| verbose || g.is_finding()) {
            println!("  {member}{}", describe(finding));
        }
        if let Some(error) = &stream.error {
            println!(
                "  {member}error: {} (globals before it are listed)",
                error_chain(error)
            );
        }
    }
    for concern in &report.concerns {
        let member = concern
            .member
            .as_deref()
            .map(|m| format!("{m}: "))
            .unwrap_or_default();
        let at = concern
            .offset
            .map(|offset| format!(" (at offset {offset})"))
            .unwrap_or_default();
        println!("  {member}{}: {}{at}", concern.kind, concern.detail);
    }
    if let Some(error) = &report.error {
        println!("  error: {}", error_chain(error));
    }
}

/// One global in words, with the vocabulary's word for its verdict first.
pub fn describe(finding: &Finding) -> String {
    let global = match (&finding.module, &finding.name) {
        (Some(module), Some(name)) => format!("`{}`", Global::new(module.as_str(), name.as_str())),
        _ => "a global".to_string(),
    };
    let at = format!("{} at offset {}", finding.opcode, finding.offset);
    let word = finding.decision.outcome();
    match &finding.decision {
        Verdict::Allowed { source } => format!("{word} {global} by {source} ({at})"),
        Verdict::NotAllowed => format!(
            "{word} {global} ({at}); to trust it: PICKLEGUARD_ALLOW={}",
            finding.missing.join(",")
        ),
        Verdict::HardDenied { reason } => format!("{word} {global}: {reason} ({at})"),
        Verdict::Unresolved { why } => format!("{word} {global}: {why} ({at})"),
    }
}

/// `pickleguard allowlist FILE...`: the config entries those files need.
pub fn allowlist(
    settings: &Settings,
    paths: &[PathBuf],
    to: &Destination,
) -> Result<ExitCode, Error> {
    learn::check_settings(settings)?;
    let all = scan_all(settings, paths, false, |_| {});
    let counted: Vec<&Scanned> = all.iter().filter(|f| f.counted()).collect();
    for file in all.iter().filter(|f| f.status == Status::Unreadable) {
        let why = file
            .report
            .error
            .as_ref()
            .map(|e| error_chain(e))
            .unwrap_or_default();
        eprintln!("pickleguard: {why}");
    }
    if counted.is_empty() {
        eprintln!("pickleguard: nothing was scanned: no pickle, torch, numpy or joblib file found");
        return Ok(ExitCode::from(exit::NOTHING_SCANNED));
    }
    let mut seen: BTreeMap<Global, Seen> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for file in &counted {
        let report = &file.report;
        for stream in &report.streams {
            let place = |finding: &Finding| {
                let member = stream
                    .member
                    .as_deref()
                    .map(|m| format!("!{m}"))
                    .unwrap_or_default();
                format!("{}{member}@{}", report.path, finding.offset)
            };
            for finding in &stream.globals {
                match (&finding.module, &finding.name) {
                    (Some(module), Some(name)) => {
                        let entry = seen
                            .entry(Global::new(module.as_str(), name.as_str()))
                            .or_default();
                        entry.count += 1;
                        entry.outcomes.insert(finding.decision.outcome());
                        entry.callers.insert(place(finding));
                    }
                    _ => unresolved.push(place(finding)),
                }
            }
        }
    }
    learn::emit(&seen, counted.len(), settings, "pickleguard allowlist", to)?;
    if !unresolved.is_empty() {
        eprintln!(
            "{}",
            crate::config_writer::comment(&format!(
                "UNRESOLVED: {} global(s) could not be named statically; do not trust these files:",
                unresolved.len()
            ))
        );
        for place in unresolved {
            eprintln!("{}", crate::config_writer::comment(&format!("  {place}")));
        }
    }
    let errors: Vec<&&Scanned> = counted.iter().filter(|f| f.report.is_error()).collect();
    for file in &errors {
        eprintln!(
            "pickleguard: {} could not be read to the end; the list may be incomplete",
            file.report.path
        );
    }
    Ok(ExitCode::from(
        if errors.is_empty() && all.iter().all(|f| f.status != Status::Unreadable) {
            exit::CLEAN
        } else {
            exit::ERROR
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_directories_in_order_without_following_symlinked_dirs() {
        let root = std::env::temp_dir().join(format!("pg-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/z.pkl"), b"x").unwrap();
        std::fs::write(root.join("a.pkl"), b"x").unwrap();
        std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();
        let found = files(std::slice::from_ref(&root));
        let _ = std::fs::remove_dir_all(&root);
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.pkl", "b/c/z.pkl", "b/loop"]);
    }

    #[test]
    fn exit_codes_follow_fail_on() {
        let all = [FailOn::HardDenied, FailOn::NotAllowed, FailOn::Error];
        let s = Summary {
            scanned: 3,
            hard_denied: 1,
            not_allowed: 1,
            errors: 1,
            ..Summary::default()
        };
        assert_eq!(s.exit_code(&all), exit::HARD_DENIED);
        assert_eq!(s.exit_code(&[FailOn::Error]), exit::ERROR);
        let unreviewed = Summary {
            scanned: 1,
            not_allowed: 1,
            ..Summary::default()
        };
        assert_eq!(unreviewed.exit_code(&all), exit::NOT_ALLOWED);
        assert_eq!(unreviewed.exit_code(&[FailOn::HardDenied]), exit::CLEAN);
        assert_eq!(Summary::default().exit_code(&all), exit::NOTHING_SCANNED);
    }
}
