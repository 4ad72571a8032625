//! `pickleguard learn`: turns learning records (`PICKLEGUARD_RECORD`) and JSON log lines into
//! a config snippet for a person to review. Entries are de-duplicated, and a hard-denied
//! global is never written as allowed: it is listed in a comment, with a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use pickleguard_policy::{Decision, Global, Policy};

use crate::Error;

/// What the records (or a scan) say about one global.
#[derive(Debug, Default)]
pub struct Seen {
    /// How many times it was seen.
    pub count: usize,
    /// The decisions recorded for it (`not-allowlisted`, `trusted-ipc`, ...).
    pub decisions: BTreeSet<String>,
    /// Where it was seen: `file:line`, or `file!member@offset` for a scan.
    pub callers: BTreeSet<String>,
}

/// One global as a record line or a JSON log line reports it.
#[derive(Debug, PartialEq, Eq)]
struct Sighting {
    global: Global,
    decision: String,
    caller: Option<String>,
}

pub fn run(files: &[PathBuf]) -> Result<ExitCode, Error> {
    let mut seen: BTreeMap<Global, Seen> = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        for sighting in text.lines().filter_map(parse_line) {
            let entry = seen.entry(sighting.global).or_default();
            entry.count += 1;
            entry.decisions.insert(sighting.decision);
            if let Some(caller) = sighting.caller.filter(|c| !c.is_empty()) {
                entry.callers.insert(caller);
            }
        }
    }
    if seen.is_empty() {
        return Err(Error::NothingLearned(files.len()));
    }
    print!(
        "{}",
        render(&seen, files.len(), &Policy::new(), "pickleguard learn")
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads one line of a record file or of a JSON log; anything else is skipped.
fn parse_line(line: &str) -> Option<Sighting> {
    let line = line.trim();
    if line.starts_with('{') && line.contains("\"event\"") {
        return parse_json(line);
    }
    let body = line.trim_start_matches('#').trim_start();
    let spec = quoted_after(body, "global = ")?;
    let comment = body.split_once(" # ").map(|(_, c)| c).unwrap_or("");
    let field = |key: &str| {
        comment
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .map(str::to_string)
    };
    Some(Sighting {
        global: Global::parse(&spec).ok()?,
        decision: field("decision=").unwrap_or_else(|| "unknown".into()),
        caller: field("caller="),
    })
}

fn parse_json(line: &str) -> Option<Sighting> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let event = value.get("event")?.as_str()?;
    if !["blocked", "warned", "recorded", "trusted_ipc"].contains(&event) {
        return None;
    }
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let decision = if event == "trusted_ipc" {
        "trusted-ipc".to_string()
    } else {
        text("decision")?
    };
    Some(Sighting {
        global: Global::new(text("module")?, text("name")?),
        decision,
        caller: text("caller"),
    })
}

/// The TOML basic string that follows `key` in `text`.
fn quoted_after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// A config snippet: an `allow` entry for each global the policy does not allow yet, and
/// comments for hard-denied globals and for those that need no entry.
pub fn render(seen: &BTreeMap<Global, Seen>, files: usize, policy: &Policy, tool: &str) -> String {
    let mut allow = Vec::new();
    let mut denied = Vec::new();
    let mut no_entry = Vec::new();
    for (global, info) in seen {
        let example = info
            .callers
            .iter()
            .next()
            .map(|c| format!(", e.g. {c}"))
            .unwrap_or_default();
        let summary = format!("seen {}x{example}", info.count);
        match policy.decide(&global.module, &global.name) {
            Decision::HardDenied(why) => denied.push(format!("#   {global}: {why} ({summary})")),
            Decision::Allowed(source) => {
                no_entry.push(format!("#   {global}: already allowed by {source}"))
            }
            Decision::NotAllowed
                if !info.decisions.is_empty()
                    && info.decisions.iter().all(|d| d == "trusted-ipc") =>
            {
                no_entry.push(format!(
                    "#   {global}: only seen in trusted multiprocessing IPC"
                ));
            }
            Decision::NotAllowed => allow.push(format!(
                "  {{ global = \"{global}\", reason = \"TODO review: {summary}\" }},"
            )),
        }
    }
    let mut out = format!(
        "# {tool}: {} global(s) from {files} file(s).\n# Review every entry before you enforce it: allow only what you trust.\nallow = [\n",
        seen.len()
    );
    for line in &allow {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("]\n");
    if !denied.is_empty() {
        out.push_str("# HARD-DENIED, never allowed: whatever needed these must not be loaded.\n");
        out.push_str(&denied.join("\n"));
        out.push('\n');
    }
    if !no_entry.is_empty() {
        out.push_str("# No entry needed:\n");
        out.push_str(&no_entry.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_record_lines_including_commented_ones() {
        let line = r#"  { global = "collections.Counter", reason = "recorded" }, # decision=not-allowlisted caller=/t.py:5 pid=1"#;
        assert_eq!(
            parse_line(line),
            Some(Sighting {
                global: Global::new("collections", "Counter"),
                decision: "not-allowlisted".into(),
                caller: Some("/t.py:5".into()),
            })
        );
        let denied = r#"# { global = "os.system", reason = "recorded" }, # decision=hard-denied NEVER-ALLOW (x) caller=/t.py:5 pid=1"#;
        assert_eq!(
            parse_line(denied).unwrap().global,
            Global::new("os", "system")
        );
        assert_eq!(parse_line("# just a comment"), None);
    }

    #[test]
    fn reads_json_log_events() {
        let line = r#"{"event":"warned","module":"a.b","name":"C.D","decision":"not-allowlisted","caller":"x.py:1"}"#;
        assert_eq!(parse_line(line).unwrap().global, Global::new("a.b", "C.D"));
        assert_eq!(
            parse_line(r#"{"event":"config_error","message":"x"}"#),
            None
        );
    }

    #[test]
    fn never_emits_hard_denied_as_allowed() {
        let mut seen = BTreeMap::new();
        for global in [
            Global::new("os", "system"),
            Global::new("collections", "Counter"),
            Global::new("collections", "OrderedDict"),
        ] {
            seen.insert(
                global,
                Seen {
                    count: 1,
                    ..Seen::default()
                },
            );
        }
        let out = render(&seen, 1, &Policy::new(), "test");
        let allow_block = out
            .split("allow = [")
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap();
        assert!(allow_block.contains("collections.Counter"), "{out}");
        assert!(!allow_block.contains("os.system"), "{out}");
        assert!(!allow_block.contains("OrderedDict"), "{out}");
        assert!(out.contains("#   os.system: runs commands"), "{out}");
    }
}
