//! `pickleguard learn`: turns learning records (`PICKLEGUARD_RECORD`, JSON Lines) and JSON log
//! lines into config entries for a person to review, judged by the active policy (`--config`,
//! `--pack`, `--allow`). Entries are de-duplicated, and a hard-denied global is never written
//! as allowed: it is listed in a comment, with a warning.
//!
//! The entries are printed, written to a new file (`--output`), or merged into the config file
//! (`--merge`), keeping its other settings; see [`crate::config_writer`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use pickleguard_policy::settings::DEFAULT_CONFIG_PATH;
use pickleguard_policy::vocabulary::record;
use pickleguard_policy::{Decision, Event, Global, Outcome, Policy, Settings};

use crate::config_writer::{self, Notes, Suggestion, REVIEW_MARKER};
use crate::Error;

/// What the records (or a scan) say about one global.
#[derive(Debug, Default)]
pub struct Seen {
    /// How many times it was seen.
    pub count: usize,
    /// The outcomes recorded for it.
    pub outcomes: BTreeSet<Outcome>,
    /// Where it was seen: `file:line`, or `file!member@offset` for a scan.
    pub callers: BTreeSet<String>,
}

/// Where `learn` and `allowlist` put their entries.
#[derive(Args, Debug, Default, Clone)]
pub struct Destination {
    /// Add the entries to the config file (--config, PICKLEGUARD_CONFIG or the default one),
    /// keeping its mode, packs, lock and comments.
    #[arg(long, conflicts_with = "output")]
    pub merge: bool,
    /// Write a new config file: the active config's settings plus the entries. Never
    /// overwrites an existing file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// One global as a record line or a JSON log line reports it.
#[derive(Debug, PartialEq, Eq)]
struct Sighting {
    global: Global,
    outcome: Outcome,
    caller: Option<String>,
}

pub fn run(files: &[PathBuf], settings: &Settings, to: &Destination) -> Result<ExitCode, Error> {
    check_settings(settings)?;
    let mut seen: BTreeMap<Global, Seen> = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        for sighting in text.lines().filter_map(parse_line) {
            let entry = seen.entry(sighting.global).or_default();
            entry.count += 1;
            entry.outcomes.insert(sighting.outcome);
            if let Some(caller) = sighting.caller.filter(|c| !c.is_empty()) {
                entry.callers.insert(caller);
            }
        }
    }
    if seen.is_empty() {
        return Err(Error::NothingLearned(files.len()));
    }
    emit(&seen, files.len(), settings, "pickleguard learn", to)?;
    Ok(ExitCode::SUCCESS)
}

/// Policy problems stop `learn` and `allowlist`: entries judged under a policy other than the
/// one intended would be wrong.
pub fn check_settings(settings: &Settings) -> Result<(), Error> {
    for problem in &settings.problems {
        eprintln!("error: {problem}");
    }
    match settings.problems.len() {
        0 => Ok(()),
        n => Err(Error::BadConfig(n)),
    }
}

/// Reads one record line or JSON log line; anything else is skipped.
fn parse_line(line: &str) -> Option<Sighting> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let outcome = match text("event") {
        // A JSON log line: only the events about one global.
        Some(event) => match event.parse::<Event>().ok()? {
            Event::TrustedIpc => Outcome::TrustedIpc,
            _ => text(record::DECISION)?.parse().ok()?,
        },
        // A record line.
        None => text(record::DECISION)?.parse().ok()?,
    };
    Some(Sighting {
        global: Global::new(text(record::MODULE)?, text(record::NAME)?),
        outcome,
        caller: text(record::CALLER),
    })
}

/// The entries for the globals the policy does not allow yet, and the notes about the others.
pub fn suggest(
    seen: &BTreeMap<Global, Seen>,
    files: usize,
    policy: &Policy,
    tool: &str,
) -> (Vec<Suggestion>, Notes) {
    let mut suggestions = Vec::new();
    let mut denied = Vec::new();
    let mut no_entry = Vec::new();
    let mut unspellable = Vec::new();
    for (global, info) in seen {
        let example = info
            .callers
            .iter()
            .next()
            .map(|c| format!(", e.g. {c}"))
            .unwrap_or_default();
        let summary = format!("seen {}x{example}", info.count);
        match policy.decide(&global.module, &global.name) {
            Decision::HardDenied(why) => denied.push(format!("  {global}: {why} ({summary})")),
            Decision::Allowed(source) => {
                no_entry.push(format!("  {global}: already allowed by {source}"))
            }
            Decision::NotAllowed
                if !info.outcomes.is_empty()
                    && info.outcomes.iter().all(|o| *o == Outcome::TrustedIpc) =>
            {
                no_entry.push(format!(
                    "  {global}: only seen in trusted multiprocessing IPC"
                ));
            }
            Decision::NotAllowed if !config_writer::spellable(global) => unspellable.push(format!(
                "  {:?} {:?}: not a Python name ({summary})",
                global.module, global.name
            )),
            Decision::NotAllowed => suggestions.push(Suggestion {
                global: global.clone(),
                reason: format!("{REVIEW_MARKER}: {summary}"),
                warning: config_writer::function_warning(global),
            }),
        }
    }
    let mut footer = Vec::new();
    if !denied.is_empty() {
        footer.push("HARD-DENIED, never allowed: whatever needed these must not be loaded.".into());
        footer.extend(denied);
    }
    if !unspellable.is_empty() {
        footer.push(
            "NOT ALLOWABLE, the names are not Python identifiers: do not trust what needed them."
                .into(),
        );
        footer.extend(unspellable);
    }
    if !no_entry.is_empty() {
        footer.push("No entry needed:".into());
        footer.extend(no_entry);
    }
    let header = vec![
        format!("{tool}: {} global(s) from {files} file(s).", seen.len()),
        "Review every entry before you enforce it: allow only what you trust.".into(),
    ];
    (suggestions, Notes { header, footer })
}

/// Prints the entries, or writes them where `to` says.
pub fn emit(
    seen: &BTreeMap<Global, Seen>,
    files: usize,
    settings: &Settings,
    tool: &str,
    to: &Destination,
) -> Result<(), Error> {
    let (suggestions, notes) = suggest(seen, files, &settings.policy, tool);
    let active = settings.config_file.as_deref();
    if to.merge {
        let target = active.ok_or(Error::NothingToMerge(DEFAULT_CONFIG_PATH))?;
        let base = read(target)?;
        let merged = config_writer::merge(&base, target, &suggestions, &Notes::default())?;
        config_writer::write_file(target, &merged, true)?;
        for line in &notes.footer {
            eprintln!("{}", config_writer::comment(line));
        }
        eprintln!(
            "pickleguard: {} entr(ies) to review added to `{}`; its other settings are kept",
            added(&base, &merged),
            target.display()
        );
        return Ok(());
    }
    if let Some(output) = &to.output {
        let (base, name) = match active {
            Some(path) => (read(path)?, path),
            None => (String::new(), output.as_path()),
        };
        let text = config_writer::merge(&base, name, &suggestions, &notes)?;
        config_writer::write_file(output, &text, false)?;
        eprintln!(
            "pickleguard: wrote `{}`{}; review it, then point PICKLEGUARD_CONFIG at it",
            output.display(),
            active
                .map(|p| format!(" (the settings of `{}` plus the entries)", p.display()))
                .unwrap_or_default()
        );
        return Ok(());
    }
    if let Some(path) = active.filter(|path| config_writer::stdout_is(path)) {
        return Err(Error::StdoutIsConfig(path.to_path_buf()));
    }
    print!(
        "{}",
        config_writer::merge("", Path::new("<new>"), &suggestions, &notes)?
    );
    Ok(())
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// How many `allow` entries `after` has beyond `before`.
fn added(before: &str, after: &str) -> usize {
    let count = |text: &str| {
        text.parse::<toml_edit::DocumentMut>()
            .ok()
            .and_then(|doc| doc.get("allow").and_then(|a| a.as_array()).map(|a| a.len()))
            .unwrap_or(0)
    };
    count(after).saturating_sub(count(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_record_lines() {
        let line = r#"{"global":"collections.Counter","module":"collections","name":"Counter","decision":"not-allowlisted","source":"","caller":"/my models/t.py:5","pid":1}"#;
        assert_eq!(
            parse_line(line),
            Some(Sighting {
                global: Global::new("collections", "Counter"),
                outcome: Outcome::NotAllowlisted,
                caller: Some("/my models/t.py:5".into()),
            })
        );
        assert_eq!(parse_line("# just a comment"), None);
        assert_eq!(
            parse_line(r#"{"module":"a","name":"b","decision":"bogus"}"#),
            None
        );
    }

    #[test]
    fn reads_json_log_events() {
        let line = r#"{"event":"warned","module":"a.b","name":"C.D","decision":"not-allowlisted","caller":"x.py:1"}"#;
        assert_eq!(parse_line(line).unwrap().global, Global::new("a.b", "C.D"));
        let ipc = r#"{"event":"trusted_ipc","module":"a","name":"B","decision":"not-allowlisted"}"#;
        assert_eq!(parse_line(ipc).unwrap().outcome, Outcome::TrustedIpc);
        assert_eq!(
            parse_line(r#"{"event":"config_error","message":"x"}"#),
            None
        );
    }

    #[test]
    fn never_suggests_hard_denied_or_allowed_globals() {
        let mut seen = BTreeMap::new();
        for global in [
            Global::new("os", "system"),
            Global::new("collections", "Counter"),
            Global::new("collections", "OrderedDict"),
            Global::new("mymodel", "build"),
        ] {
            seen.insert(
                global,
                Seen {
                    count: 1,
                    ..Seen::default()
                },
            );
        }
        let (suggestions, notes) = suggest(&seen, 1, &Policy::new(), "test");
        let globals: Vec<String> = suggestions.iter().map(|s| s.global.to_string()).collect();
        assert_eq!(globals, ["collections.Counter", "mymodel.build"]);
        assert!(suggestions[0].warning.is_none());
        assert!(suggestions[1].warning.is_some(), "a function is flagged");
        assert!(notes
            .footer
            .iter()
            .any(|l| l.contains("os.system: runs commands")));
    }
}
