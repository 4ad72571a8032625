//! Writes config files for `learn` and `allowlist` with a TOML serializer (`toml_edit`), never
//! by pasting text: a file name, a caller path or a global's name lands inside one quoted
//! string or one escaped comment line, so nothing a model file is called can add an entry.
//!
//! A suggestion merges into an existing config (its `mode`, `packs`, `lock`, comments and
//! layout kept) or starts a new one; files are written whole to a temporary file and renamed
//! over, and an existing file is only ever replaced by `--merge`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use pickleguard_policy::Global;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use crate::Error;

/// Marks a reason `learn` or `allowlist` wrote that nobody has reviewed yet; `check-config`
/// warns about every entry that still carries it.
pub const REVIEW_MARKER: &str = "TODO review";

/// One entry to suggest, with an optional warning written above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The global to allow; [`Global::parse`] reads its display back unchanged.
    pub global: Global,
    /// The reason to write.
    pub reason: String,
    /// A warning for the reviewer, written as a comment above the entry.
    pub warning: Option<String>,
}

/// What goes into the file around the entries.
#[derive(Debug, Default)]
pub struct Notes {
    /// Comment lines above `allow`.
    pub header: Vec<String>,
    /// Comment lines after the whole document.
    pub footer: Vec<String>,
}

/// `text` as one comment line: every control character (newlines included) is escaped, so a
/// hostile name cannot end the comment and start a TOML line of its own.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push_str("# ");
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `global` can be written as an allow entry that reads back as the same pair.
pub fn spellable(global: &Global) -> bool {
    Global::parse(&global.to_string()).as_ref() == Ok(global)
}

/// A warning for a global whose name reads like a function: an allowed function is called with
/// whatever arguments the pickle chooses, so it needs more review than a class.
pub fn function_warning(global: &Global) -> Option<String> {
    let last = global.name.rsplit('.').next().unwrap_or(&global.name);
    let first = last.chars().next()?;
    (first.is_lowercase() || first == '_').then(|| {
        format!(
            "WARNING: `{global}` looks like a function, not a class (its name starts in lower \
             case): a pickle calls an allowed function with any arguments it likes; allow it \
             only if every call is harmless"
        )
    })
}

/// `suggestions` merged into `base` (a config file's text; empty for a new file). Entries
/// already listed in `allow` are not added twice. Fails if `base` is not valid TOML or its
/// `allow` is not an array.
pub fn merge(
    base: &str,
    base_name: &Path,
    suggestions: &[Suggestion],
    notes: &Notes,
) -> Result<String, Error> {
    let mut doc: DocumentMut =
        base.parse()
            .map_err(|err: toml_edit::TomlError| Error::ConfigSyntax {
                path: base_name.to_path_buf(),
                message: err.message().trim().to_string(),
            })?;
    let fresh = !doc.contains_key("allow");
    if fresh {
        doc.insert("allow", Item::Value(Value::Array(Array::new())));
    }
    let allow = doc
        .get_mut("allow")
        .and_then(Item::as_array_mut)
        .ok_or_else(|| Error::ConfigSyntax {
            path: base_name.to_path_buf(),
            message: "`allow` is not an array".into(),
        })?;
    let listed: Vec<Global> = allow.iter().filter_map(listed_global).collect();
    // What follows the last item (a comment on its line, say) goes before the first new one.
    let mut carried = allow
        .trailing()
        .as_str()
        .map(str::to_string)
        .filter(|t| t.contains('#'));
    let mut pushed = 0;
    for suggestion in suggestions {
        if listed.contains(&suggestion.global) || !spellable(&suggestion.global) {
            continue;
        }
        let mut entry = InlineTable::new();
        entry.insert("global", suggestion.global.to_string().into());
        entry.insert("reason", suggestion.reason.as_str().into());
        let mut value = Value::InlineTable(entry);
        let mut prefix = match carried.take() {
            Some(old) if old.ends_with('\n') => old,
            Some(old) => old + "\n",
            None => String::from("\n"),
        };
        if let Some(warning) = &suggestion.warning {
            prefix.push_str("  ");
            prefix.push_str(&comment(warning));
            prefix.push('\n');
        }
        prefix.push_str("  ");
        value.decor_mut().set_prefix(prefix);
        value.decor_mut().set_suffix("");
        allow.push_formatted(value);
        pushed += 1;
    }
    if pushed > 0 {
        allow.set_trailing_comma(true);
        allow.set_trailing("\n");
    }
    if fresh || !notes.header.is_empty() {
        let mut header: String = notes
            .header
            .iter()
            .map(|line| comment(line) + "\n")
            .collect();
        if !fresh {
            let old = doc
                .key_mut("allow")
                .and_then(|key| {
                    key.leaf_decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            header = old + &header;
        }
        if let Some(mut key) = doc.key_mut("allow") {
            key.leaf_decor_mut().set_prefix(header);
        }
    }
    let mut out = doc.to_string();
    if !notes.footer.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for line in &notes.footer {
            out.push_str(&comment(line));
            out.push('\n');
        }
    }
    Ok(out)
}

/// The global an existing `allow` item names, if it is one.
fn listed_global(item: &Value) -> Option<Global> {
    let spec = match item {
        Value::String(text) => text.value().as_str(),
        Value::InlineTable(table) => table.get("global")?.as_str()?,
        _ => return None,
    };
    Global::parse(spec).ok()
}

/// Writes `text` as `path`: into a temporary file beside it, then renamed over it, keeping an
/// existing file's permissions and owner. With `replace` false an existing `path` is an error.
pub fn write_file(path: &Path, text: &str, replace: bool) -> Result<(), Error> {
    let cannot = |source: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let existing = std::fs::metadata(path).ok();
    if existing.is_some() && !replace {
        return Err(Error::WouldOverwrite(path.to_path_buf()));
    }
    let mode = existing.as_ref().map_or(0o644, |meta| meta.mode() & 0o7777);
    let tmp = temporary_beside(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(cannot)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)));
    // Keep the owner too, where this user may (root merging into another user's file).
    let written =
        written.and_then(|()| match &existing {
            Some(meta) => std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))
                .or_else(|err| match err.kind() {
                    std::io::ErrorKind::PermissionDenied => Ok(()),
                    _ => Err(err),
                }),
            None => Ok(()),
        });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(cannot(err));
    }
    if !replace {
        // Link, not rename: a file that appeared meanwhile is not replaced either.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        return linked.map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => Error::WouldOverwrite(path.to_path_buf()),
            _ => cannot(err),
        });
    }
    std::fs::rename(&tmp, path).map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        cannot(err)
    })
}

fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.pickleguard-{}.tmp", std::process::id()))
}

/// Whether standard output is the file at `path` (`pickleguard learn ... > config.toml`, which
/// the shell empties before the command can read it).
pub fn stdout_is(path: &Path) -> bool {
    let (Ok(out), Ok(file)) = (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata(path),
    ) else {
        return false;
    };
    out.is_file() && out.dev() == file.dev() && out.ino() == file.ino()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(global: Global, reason: &str) -> Suggestion {
        Suggestion {
            global,
            reason: reason.into(),
            warning: None,
        }
    }

    fn allowed(text: &str) -> Vec<(String, String)> {
        let doc: toml::Table = text.parse().unwrap();
        doc["allow"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["global"].as_str().unwrap().to_string(),
                    item["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    const HOSTILE: &str = r#"model" }, { global = "mymodel.Backdoor", reason = "ok.pkl"#;

    #[test]
    fn hostile_reasons_stay_inside_one_string() {
        let reason = format!("TODO review: seen 1x, e.g. /m/{HOSTILE}@2\n{HOSTILE}");
        let out = merge(
            "",
            Path::new("new.toml"),
            &[suggestion(Global::new("mymodel", "Net"), &reason)],
            &Notes {
                header: vec![format!("from {HOSTILE}\nallow = [\"os.system\"]")],
                footer: vec![format!("#   {HOSTILE}\n[log]")],
            },
        )
        .unwrap();
        assert_eq!(
            allowed(&out),
            [("mymodel.Net".to_string(), reason)],
            "{out}"
        );
        let doc: toml::Table = out.parse().unwrap();
        assert_eq!(doc.keys().collect::<Vec<_>>(), ["allow"], "{out}");
    }

    #[test]
    fn merging_keeps_settings_and_comments_and_adds_once() {
        let base = "# ours\nmode = \"enforce\"\npacks = [\"sklearn\"]\nlock = true\nallow = [\n  \"a.B\", # keep\n]\n\n[log]\nlevel = \"warn\"\n";
        let out = merge(
            base,
            Path::new("c.toml"),
            &[
                suggestion(Global::new("a", "B"), "dup"),
                suggestion(Global::new("c", "D"), "new"),
            ],
            &Notes::default(),
        )
        .unwrap();
        assert!(
            out.starts_with("# ours\nmode = \"enforce\"\npacks = [\"sklearn\"]\nlock = true\n"),
            "{out}"
        );
        assert!(out.contains("\"a.B\", # keep"), "{out}");
        let doc: toml::Table = out.parse().unwrap();
        assert_eq!(doc["allow"].as_array().unwrap().len(), 2, "{out}");
        assert_eq!(doc["log"]["level"].as_str(), Some("warn"));
        assert_eq!(doc["lock"].as_bool(), Some(true));
    }

    #[test]
    fn refuses_broken_files_and_unspellable_globals() {
        assert!(matches!(
            merge("allow = [", Path::new("x"), &[], &Notes::default()),
            Err(Error::ConfigSyntax { .. })
        ));
        let out = merge(
            "",
            Path::new("x"),
            &[suggestion(Global::new("m\" ]\nmode = \"off", "x"), "r")],
            &Notes::default(),
        )
        .unwrap();
        assert!(allowed(&out).is_empty(), "{out}");
    }

    #[test]
    fn comments_escape_line_breaks() {
        assert_eq!(comment("a\nb\r"), "# a\\u{a}b\\u{d}");
    }

    #[test]
    fn functions_get_a_warning() {
        assert!(function_warning(&Global::new("m", "load")).is_some());
        assert!(function_warning(&Global::new("m", "Outer._inner")).is_some());
        assert!(function_warning(&Global::new("m", "Net")).is_none());
    }

    #[test]
    fn new_files_are_never_replaced() {
        let dir = std::env::temp_dir().join(format!("pg-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        write_file(&path, "a = 1\n", false).unwrap();
        assert!(matches!(
            write_file(&path, "b = 2\n", false),
            Err(Error::WouldOverwrite(_))
        ));
        write_file(&path, "c = 3\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c = 3\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
