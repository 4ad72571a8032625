//! The TOML config file. Every key is checked on its own, so one bad entry is reported with its
//! `file:line` and the rest of the file still applies. A file that is not valid TOML is
//! ignored as a whole.
//!
//! ```toml
//! mode = "enforce"                 # enforce | warn | off
//! packs = ["sklearn"]              # "ml" is always on
//! lock = true                      # Python code may not weaken the policy
//! require = true                   # a Python process that cannot be protected does not run
//! trust_ipc = true                 # multiprocessing's own pickles skip the allowlist
//! record = "/var/lib/pickleguard/records.toml"
//! allow = [
//!   { global = "mymodel.Net", reason = "our model class" },
//!   "mymodel:Outer.Inner",
//! ]
//!
//! [log]
//! level = "warn"                   # none | error | warn | info | debug
//! format = "json"                  # text | json
//! file = "/var/log/pickleguard.jsonl"
//! ```

use std::cell::OnceCell;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::settings::{clip_message, Flag};
use crate::{Error, Global, Problem, Settings, Source};

/// Applies the file's settings onto `settings`, noting each problem.
pub(crate) fn apply(path: &Path, text: &str, settings: &mut Settings) {
    let file = File {
        path,
        text,
        line_starts: OnceCell::new(),
    };
    let first_problem = settings.problems.len();
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // What a broken file means cannot be trusted (an unclosed array swallows the lines
        // after it), so none of it applies: nothing in it can weaken the guard.
        for error in errors {
            let at = error.span().unwrap_or(0..0);
            file.problem(
                settings,
                at,
                format!(
                    "invalid TOML: {}; the whole file is ignored",
                    error.message().trim()
                ),
            );
        }
        return;
    }
    for (key, value) in table.get_ref().iter() {
        match key.get_ref().as_ref() {
            "mode" => {
                if let Some(mode) = file.parsed(settings, value) {
                    settings.mode = mode;
                }
            }
            "lock" => {
                if let Some(lock) = file.flag(settings, value) {
                    settings.lock = lock;
                }
            }
            "require" => {
                if let Some(require) = file.flag(settings, value) {
                    settings.require = require;
                }
            }
            "trust_ipc" => {
                if let Some(trust) = file.flag(settings, value) {
                    settings.trust_ipc = trust;
                }
            }
            "record" => {
                if let Some(path) = file.string(settings, value, "a file path") {
                    settings.record = Some(PathBuf::from(path));
                }
            }
            "packs" => {
                for item in file.array(settings, value, "a list of pack names") {
                    if let Some(name) = file.string(settings, item, "a pack name") {
                        if let Err(err) = settings.policy.enable_pack(&name) {
                            file.problem(settings, item.span(), format!("{err}; the other packs apply"));
                        }
                    }
                }
            }
            "allow" => {
                for item in file.array(settings, value, "a list of globals") {
                    file.allow_entry(settings, item);
                }
            }
            "log" => file.log(settings, value),
            "allow_code" => {
                for item in file.array(settings, value, "a list of code archive formats") {
                    if let Some(format) = file.parsed(settings, item) {
                        settings.allow_code_format(format);
                    }
                }
            }
            other => file.problem(
                settings,
                key.span(),
                format!("unknown setting `{other}`: the settings are mode, packs, allow, allow_code, lock, require, trust_ipc, record and [log]"),
            ),
        }
    }
    // Keys come back sorted by name; report in file order.
    settings.problems[first_problem..].sort_by_key(|problem| {
        let line = problem
            .origin
            .rsplit(':')
            .next()
            .and_then(|n| n.parse::<usize>().ok());
        line.unwrap_or(0)
    });
}

struct File<'a> {
    path: &'a Path,
    text: &'a str,
    /// Where each line starts, computed once on first use: every line number is then a binary
    /// search, so a file full of errors costs linear time, not quadratic.
    line_starts: OnceCell<Vec<usize>>,
}

impl File<'_> {
    fn problem(&self, settings: &mut Settings, at: Range<usize>, message: String) {
        let line = self.line(&at);
        settings.problems.push(Problem::new(
            format!("{}:{line}", self.path.display()),
            clip_message(message),
        ));
    }

    /// The 1-based line a span starts on.
    fn line(&self, at: &Range<usize>) -> u32 {
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(at, _)| at + 1))
                .collect()
        });
        let line = starts.partition_point(|&start| start <= at.start);
        u32::try_from(line.max(1)).unwrap_or(u32::MAX)
    }

    fn string(
        &self,
        settings: &mut Settings,
        value: &Spanned<DeValue<'_>>,
        expected: &str,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            _ => {
                self.problem(
                    settings,
                    value.span(),
                    format!("expected {expected} in quotes; it is ignored"),
                );
                None
            }
        }
    }

    fn parsed<T: FromStr<Err = Error>>(
        &self,
        settings: &mut Settings,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<T> {
        let text = self.string(settings, value, "a string")?;
        match text.parse() {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.problem(settings, value.span(), format!("{err}; it is ignored"));
                None
            }
        }
    }

    fn flag(&self, settings: &mut Settings, value: &Spanned<DeValue<'_>>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            DeValue::String(text) => match text.parse::<Flag>() {
                Ok(Flag(flag)) => Some(flag),
                Err(err) => {
                    self.problem(settings, value.span(), format!("{err}; it is ignored"));
                    None
                }
            },
            _ => {
                self.problem(
                    settings,
                    value.span(),
                    "expected true or false; it is ignored".into(),
                );
                None
            }
        }
    }

    fn array<'v, 'i>(
        &self,
        settings: &mut Settings,
        value: &'v Spanned<DeValue<'i>>,
        expected: &str,
    ) -> &'v [Spanned<DeValue<'i>>] {
        match value.get_ref() {
            DeValue::Array(items) => &items[..],
            _ => {
                self.problem(
                    settings,
                    value.span(),
                    format!("expected {expected} in [brackets]; it is ignored"),
                );
                &[]
            }
        }
    }

    /// `"module.name"` or `{ global = "module.name", reason = "why" }`.
    fn allow_entry(&self, settings: &mut Settings, item: &Spanned<DeValue<'_>>) {
        let (spec, reason) = match item.get_ref() {
            DeValue::String(text) => (text.to_string(), None),
            DeValue::Table(table) => {
                let mut spec = None;
                let mut reason = None;
                for (key, value) in table.iter() {
                    match key.get_ref().as_ref() {
                        "global" => spec = self.string(settings, value, "a global such as `module.name`"),
                        "reason" => reason = self.string(settings, value, "a reason"),
                        other => self.problem(
                            settings,
                            key.span(),
                            format!("unknown key `{other}` in an allow entry: use `global` and `reason`"),
                        ),
                    }
                }
                let Some(spec) = spec else {
                    self.problem(
                        settings,
                        item.span(),
                        "an allow entry needs `global = \"module.name\"`; it is ignored".into(),
                    );
                    return;
                };
                (spec, reason)
            }
            _ => {
                self.problem(
                    settings,
                    item.span(),
                    "expected a global such as \"module.name\"; it is ignored".into(),
                );
                return;
            }
        };
        let source = Source::Config(self.line(&item.span()));
        let added =
            Global::parse(&spec).and_then(|global| settings.policy.allow(&global, source, reason));
        if let Err(err) = added {
            self.problem(
                settings,
                item.span(),
                format!("{err}; that entry is ignored and the rest apply"),
            );
        }
    }

    fn log(&self, settings: &mut Settings, value: &Spanned<DeValue<'_>>) {
        let DeValue::Table(table) = value.get_ref() else {
            self.problem(
                settings,
                value.span(),
                "expected a [log] table; it is ignored".into(),
            );
            return;
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "level" => {
                    if let Some(level) = self.parsed(settings, value) {
                        settings.log.level = level;
                    }
                }
                "format" => {
                    if let Some(format) = self.parsed(settings, value) {
                        settings.log.format = format;
                    }
                }
                "file" => {
                    if let Some(path) = self.string(settings, value, "a file path") {
                        settings.log.file = Some(PathBuf::from(path));
                    }
                }
                other => self.problem(
                    settings,
                    key.span(),
                    format!("unknown log setting `{other}`: use level, format and file"),
                ),
            }
        }
    }
}
