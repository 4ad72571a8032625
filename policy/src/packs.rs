//! Curated allowlists. Every entry is an exact `(module, name)` pair with a one-line reason, the
//! opcodes that may apply it and the checks its arguments or state must pass
//! ([`crate::reconstruct`]). The packs are data, one file each in `policy/packs/*.toml`, turned
//! into these static tables by `policy/build.rs` (a malformed pack fails the build), and mirrored
//! in ALLOWLIST.md (a test keeps the two in sync).
//!
//! An entry belongs here only if it rebuilds data: it must not run code, import modules by
//! name, open files or sockets, or hand out attribute-access or call-forwarding primitives. And
//! every way a pickle may apply it must be checked: an entry whose state its library does not
//! validate, and the rules cannot either, is not in any pack.

use crate::reconstruct::{checks, Apply, Rule};
use crate::Global;

/// One allowlisted global, why it is safe, and how a pickle may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Module the pickle imports.
    pub module: &'static str,
    /// Attribute (possibly a dotted qualname) looked up in it.
    pub name: &'static str,
    /// One line on what it rebuilds and why that is safe.
    pub reason: &'static str,
    /// The opcodes that may apply it; empty when it may only be referenced (a class passed as
    /// an argument, a constant). `Build` means an object made by applying it may then take a
    /// BUILD state.
    pub apply: &'static [Apply],
    /// The checks (by name, see [`crate::reconstruct::checks`]) its arguments or state must pass.
    pub checks: &'static [&'static str],
}

impl Entry {
    /// The entry as a [`Global`].
    pub fn global(&self) -> Global {
        Global::new(self.module, self.name)
    }
}

/// A named allowlist that operators enable as a whole.
#[derive(Debug)]
pub struct Pack {
    /// The name used in `packs = [...]` and `PICKLEGUARD_PACKS`.
    pub name: &'static str,
    /// One line on what it covers.
    pub summary: &'static str,
    /// Its entries, sorted by `(module, name)`.
    pub entries: &'static [Entry],
    /// Packs that enabling this one enables too.
    pub requires: &'static [&'static str],
}

impl Pack {
    /// The entry for `(module, name)`, if the pack has it.
    pub fn find(&self, module: &str, name: &str) -> Option<&'static Entry> {
        let entries = self.entries;
        entries
            .binary_search_by(|entry| (entry.module, entry.name).cmp(&(module, name)))
            .ok()
            .map(|index| &entries[index])
    }
}

/// The pack called `name`.
pub fn by_name(name: &str) -> Option<&'static Pack> {
    PACKS.iter().copied().find(|pack| pack.name == name)
}

// `ML`, `ML_PACK`, ..., `PACKS` and the rule table, from `policy/packs/*.toml`.
include!(concat!(env!("OUT_DIR"), "/packs.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hard_deny;

    #[test]
    fn packs_are_sorted_unique_and_findable() {
        for pack in PACKS {
            for pair in pack.entries.windows(2) {
                assert!(
                    (pair[0].module, pair[0].name) < (pair[1].module, pair[1].name),
                    "pack {} must be sorted and unique: {:?} then {:?}",
                    pack.name,
                    pair[0],
                    pair[1]
                );
            }
            for entry in pack.entries {
                assert_eq!(pack.find(entry.module, entry.name), Some(entry));
            }
            assert_eq!(by_name(pack.name).map(|p| p.name), Some(pack.name));
        }
        assert_eq!(ML_PACK.find("collections", "Counter"), None);
    }

    #[test]
    fn no_entry_is_hard_denied_or_unexplained() {
        for entry in PACKS.iter().flat_map(|pack| pack.entries) {
            assert_eq!(
                hard_deny::check(entry.module, entry.name),
                None,
                "{entry:?}"
            );
            assert!(!entry.reason.trim().is_empty(), "{entry:?}");
            assert!(
                !entry.reason.contains('\n'),
                "reasons are one line: {entry:?}"
            );
        }
    }
}

/// The pack files' opcodes and checks agree with the rule table the runtime reads.
#[cfg(test)]
mod rules_data {
    use super::{PACKS, RULES};
    use crate::reconstruct::checks::{Run, ALL};
    use crate::reconstruct::Apply;

    #[test]
    fn every_entry_has_its_rule_and_every_check_is_used() {
        for pack in PACKS {
            for entry in pack.entries {
                let rule = RULES
                    .iter()
                    .find(|r| (r.module, r.name) == (entry.module, entry.name))
                    .unwrap_or_else(|| panic!("no rule for {entry:?}"));
                assert_eq!(rule.apply, entry.apply, "{entry:?}");
                let names: Vec<&str> = rule.checks.iter().map(|c| c.name).collect();
                assert_eq!(names, entry.checks, "{entry:?}");
                for check in rule.checks {
                    let applicable = match check.run {
                        Run::State(_) => entry.apply.contains(&Apply::Build),
                        Run::Args(_) => entry.apply.iter().any(|a| *a != Apply::Build),
                    };
                    assert!(
                        applicable,
                        "{entry:?}: check `{}` can never run",
                        check.name
                    );
                }
            }
        }
        for check in ALL {
            assert!(
                RULES
                    .iter()
                    .any(|r| r.checks.iter().any(|c| c.name == check.name)),
                "check `{}` is in no pack",
                check.name
            );
        }
        for pair in RULES.windows(2) {
            assert!((pair[0].module, pair[0].name) < (pair[1].module, pair[1].name));
        }
    }

    #[test]
    fn no_entry_is_an_unchecked_memory_safety_risk() {
        for entry in PACKS.iter().flat_map(|pack| pack.entries) {
            assert!(!entry.reason.contains("MEMORY-SAFETY RISK"), "{entry:?}");
        }
        for (module, name) in [
            ("sklearn.tree._tree", "Tree"),
            (
                "sklearn.ensemble._hist_gradient_boosting.predictor",
                "TreePredictor",
            ),
            ("sklearn.neighbors._kd_tree", "KDTree"),
            ("sklearn.neighbors._ball_tree", "BallTree"),
        ] {
            assert!(
                PACKS.iter().all(|pack| pack.find(module, name).is_none()),
                "{module}.{name} cannot be validated and must be in no pack"
            );
        }
    }

    #[test]
    fn joblib_arrays_load_with_the_defaults() {
        let entry = super::ML_PACK
            .find("joblib.numpy_pickle", "NumpyArrayWrapper")
            .expect("in ml");
        assert_eq!(entry.apply, &[Apply::NewObj, Apply::Build]);
    }
}

/// Keeps ALLOWLIST.md's tables equal to the code. `make allowlist` rewrites them.
#[cfg(test)]
mod allowlist_md {
    use crate::hard_deny;

    const BEGIN: &str = "<!-- generated by `make allowlist`: begin -->";
    const END: &str = "<!-- generated by `make allowlist`: end -->";

    fn opcodes(entry: &super::Entry) -> String {
        if entry.apply.is_empty() {
            return "none (referenced only)".to_string();
        }
        let names: Vec<&str> = entry.apply.iter().map(|a| a.as_str()).collect();
        names.join(", ")
    }

    fn checks(entry: &super::Entry) -> String {
        if entry.checks.is_empty() {
            return "-".to_string();
        }
        let names: Vec<String> = entry.checks.iter().map(|c| format!("`{c}`")).collect();
        names.join(", ")
    }

    fn tables() -> String {
        let mut out = String::new();
        for pack in super::PACKS {
            let title = if pack.name == "ml" {
                "### Pack `ml` (the default)".to_string()
            } else {
                format!("### Pack `{}`", pack.name)
            };
            out.push_str(&format!("\n{title}\n\n{}", pack.summary));
            if !pack.requires.is_empty() {
                let names: Vec<String> = pack.requires.iter().map(|r| format!("`{r}`")).collect();
                out.push_str(&format!(" (enables {} too)", names.join(", ")));
            }
            out.push_str(
                ".\n\n| module | name | opcodes | checks | reason |\n|---|---|---|---|---|\n",
            );
            for entry in pack.entries {
                out.push_str(&format!(
                    "| `{}` | `{}` | {} | {} | {} |\n",
                    entry.module,
                    entry.name,
                    opcodes(entry),
                    checks(entry),
                    entry.reason
                ));
            }
        }
        out.push_str("\n### Checks\n\n| check | on | what it verifies |\n|---|---|---|\n");
        for check in crate::reconstruct::checks::ALL {
            let on = match check.run {
                crate::reconstruct::checks::Run::Args(_) => "arguments",
                crate::reconstruct::checks::Run::State(_) => "BUILD state",
            };
            out.push_str(&format!(
                "| `{}` | {on} | {} |\n",
                check.name, check.verifies
            ));
        }
        out.push_str(
            "\n### Hard-denied modules (with every submodule)\n\n| module | why |\n|---|---|\n",
        );
        let mut modules = hard_deny::MODULES.to_vec();
        modules.sort();
        for (module, why) in modules {
            out.push_str(&format!("| `{module}` | {why} |\n"));
        }
        out.push_str("\n### Hard-denied names\n\n| module | name | why |\n|---|---|---|\n");
        let mut names = hard_deny::NAMES.to_vec();
        names.sort();
        for (module, name, why) in names {
            out.push_str(&format!("| `{module}` | `{name}` | {why} |\n"));
        }
        out.push('\n');
        out
    }

    #[test]
    fn allowlist_md_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ALLOWLIST.md");
        let text = std::fs::read_to_string(path).expect("ALLOWLIST.md");
        let (head, rest) = text
            .split_once(BEGIN)
            .expect("begin marker in ALLOWLIST.md");
        let (current, tail) = rest.split_once(END).expect("end marker in ALLOWLIST.md");
        let expected = tables();
        if std::env::var_os("PICKLEGUARD_BLESS").is_some() {
            std::fs::write(path, format!("{head}{BEGIN}{expected}{END}{tail}")).expect("write");
            return;
        }
        assert!(
            current == expected,
            "ALLOWLIST.md is out of date with the policy code: run `make allowlist`"
        );
    }
}
