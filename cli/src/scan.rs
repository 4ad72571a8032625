//! `pickleguard scan` and `pickleguard allowlist`: judge files without running them, with the
//! policy code the runtime hook uses, so a scan and a real load reach the same decision.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use pickleguard_policy::{Global, Settings};
use pickleguard_scan::{FileReport, Finding, Format, Scanner, Verdict};

use crate::learn::{self, Seen};
use crate::Error;

/// Exit statuses of `scan`.
mod exit {
    pub const CLEAN: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const NOTHING_SCANNED: u8 = 3;
}

/// Output shape.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One block per file, for people.
    Text,
    /// One JSON document: every file's report and a summary.
    Json,
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

/// Scans every file; a file in which no pickle was found is not counted as scanned.
fn scan_all(settings: &Settings, paths: &[PathBuf]) -> Vec<FileReport> {
    let scanner = Scanner::new(&settings.policy);
    files(paths)
        .iter()
        .map(|path| scanner.scan_file(path))
        .collect()
}

fn scanned(report: &FileReport) -> bool {
    report.format != Format::Unknown || report.error.is_some()
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

pub fn scan(
    settings: &Settings,
    paths: &[PathBuf],
    format: OutputFormat,
    verbose: bool,
) -> Result<ExitCode, Error> {
    if let Err(code) = check_settings(settings) {
        return Ok(code);
    }
    let reports = scan_all(settings, paths);
    let counted: Vec<&FileReport> = reports.iter().filter(|r| scanned(r)).collect();
    let errors = counted.iter().filter(|r| r.is_error()).count();
    let with_findings = counted.iter().filter(|r| r.has_findings()).count();
    // A finding wins over an error: a stream that breaks after a refused global still ran
    // that global in a real load (loaders execute what comes before the break).
    let code = if with_findings > 0 {
        exit::FINDINGS
    } else if errors > 0 {
        exit::ERROR
    } else if counted.is_empty() {
        exit::NOTHING_SCANNED
    } else {
        exit::CLEAN
    };
    match format {
        OutputFormat::Json => {
            let files: Vec<serde_json::Value> = counted
                .iter()
                .filter_map(|r| serde_json::from_str(&r.to_json()).ok())
                .collect();
            let document = serde_json::json!({
                "files": files,
                "summary": {
                    "scanned": counted.len(),
                    "skipped": reports.len() - counted.len(),
                    "with_findings": with_findings,
                    "errors": errors,
                    "exit_code": code,
                }
            });
            println!("{document}");
        }
        OutputFormat::Text => {
            for report in &reports {
                print_report(report, verbose);
            }
            println!(
                "{} file(s) scanned, {} with findings, {} with errors, {} skipped (no pickle found)",
                counted.len(),
                with_findings,
                errors,
                reports.len() - counted.len()
            );
        }
    }
    if counted.is_empty() && format == OutputFormat::Text {
        eprintln!("pickleguard: nothing was scanned: no pickle, torch, numpy or joblib file found");
    }
    Ok(ExitCode::from(code))
}

fn print_report(report: &FileReport, verbose: bool) {
    if !scanned(report) {
        if verbose {
            println!("{}: skipped, no pickle found", report.path);
        }
        return;
    }
    let findings = report
        .streams
        .iter()
        .flat_map(|s| &s.globals)
        .filter(|g| g.is_finding())
        .count();
    let globals: usize = report.streams.iter().map(|s| s.globals.len()).sum();
    let findings = findings + report.concerns.len();
    let status = match (report.is_error(), findings) {
        (true, 0) => "ERROR".to_string(),
        (false, 0) => "clean".to_string(),
        (true, n) => format!("{n} finding(s), ERROR"),
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
            println!("  {member}error: {error} (globals before it are listed)");
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
        println!("  error: {error}");
    }
}

fn describe(finding: &Finding) -> String {
    let global = match (&finding.module, &finding.name) {
        (Some(module), Some(name)) => format!("`{}`", Global::new(module.as_str(), name.as_str())),
        _ => "a global".to_string(),
    };
    let at = format!("{} at offset {}", finding.opcode, finding.offset);
    match &finding.decision {
        Verdict::Allowed { source } => format!("allowed {global} by {source} ({at})"),
        Verdict::NotAllowed => format!(
            "not allowlisted {global} ({at}); to trust it: PICKLEGUARD_ALLOW={}",
            finding.missing.join(",")
        ),
        Verdict::HardDenied { reason } => format!("hard-denied {global}: {reason} ({at})"),
        Verdict::Unresolved { why } => format!("unresolved {global}: {why} ({at})"),
    }
}

/// `pickleguard allowlist FILE...`: the config entries those files need.
pub fn allowlist(settings: &Settings, paths: &[PathBuf]) -> Result<ExitCode, Error> {
    if let Err(code) = check_settings(settings) {
        return Ok(code);
    }
    let reports = scan_all(settings, paths);
    let counted: Vec<&FileReport> = reports.iter().filter(|r| scanned(r)).collect();
    if counted.is_empty() {
        eprintln!("pickleguard: nothing was scanned: no pickle, torch, numpy or joblib file found");
        return Ok(ExitCode::from(exit::NOTHING_SCANNED));
    }
    let mut seen: BTreeMap<Global, Seen> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for report in &counted {
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
                        entry.decisions.insert("scanned".into());
                        entry.callers.insert(place(finding));
                    }
                    _ => unresolved.push(place(finding)),
                }
            }
        }
    }
    print!(
        "{}",
        learn::render(
            &seen,
            counted.len(),
            &settings.policy,
            "pickleguard allowlist"
        )
    );
    if !unresolved.is_empty() {
        println!(
            "# UNRESOLVED: {} global(s) could not be named statically; do not trust these files:",
            unresolved.len()
        );
        for place in unresolved {
            println!("#   {place}");
        }
    }
    let errors: Vec<&&FileReport> = counted.iter().filter(|r| r.is_error()).collect();
    for report in &errors {
        eprintln!(
            "pickleguard: {} could not be read to the end; the list may be incomplete",
            report.path
        );
    }
    Ok(ExitCode::from(if errors.is_empty() {
        exit::CLEAN
    } else {
        exit::ERROR
    }))
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
}
