//! The rule table's lookup and the dispatch from an opcode to an entry's checks.

use super::checks::{Check, Run};
use super::{Apply, Plan, Value, Violation};
use crate::packs::{RULES, RULE_HASHES};
use crate::{py2, Global};

/// The name a refusal carries when an opcode may not apply a global at all.
pub const RULE_CHECK: &str = "allowed-opcodes";

/// The name a refusal carries when a load's built objects would make the checks remember more
/// than [`super::bounds::MAX_KEPT`] values.
pub const KEPT_CHECK: &str = "kept-values";

/// Nesting depth beyond which a check refuses instead of recursing (dtypes in dtypes, rebuilds
/// calling rebuilds).
pub(crate) const MAX_DEPTH: u32 = 32;

/// How the packs say a global may be used: merged over every pack that lists it (the build
/// refuses packs that disagree).
#[derive(Debug)]
pub struct Rule {
    /// Module of the global.
    pub module: &'static str,
    /// Name of the global.
    pub name: &'static str,
    /// The opcodes that may apply it.
    pub apply: &'static [Apply],
    /// The checks its arguments or BUILD state must pass.
    pub checks: &'static [&'static Check],
}

impl Rule {
    /// Whether `apply` may apply this global at all. INST and OBJ call the class with the
    /// pickle's arguments, as REDUCE does, so an entry that REDUCE may apply INST/OBJ may too.
    pub fn allows(&self, apply: Apply) -> bool {
        self.apply.contains(&apply)
            || (apply == Apply::Instantiate && self.apply.contains(&Apply::Reduce))
    }

    fn checks_for(&self, apply: Apply) -> impl Iterator<Item = &'static Check> + '_ {
        self.checks
            .iter()
            .copied()
            .filter(move |check| matches!(check.run, Run::State(_)) == (apply == Apply::Build))
    }

    pub(crate) fn plan(&self, apply: Apply) -> Plan {
        if !self.allows(apply) {
            return Plan::Refuse(self.not_allowed(apply));
        }
        if self.checks_for(apply).next().is_some() {
            Plan::CheckValues
        } else {
            Plan::Allow
        }
    }

    fn not_allowed(&self, apply: Apply) -> Violation {
        let global = Global::new(self.module, self.name);
        let may = if self.apply.is_empty() {
            "it may only be referenced (passed as an argument), never applied".to_string()
        } else {
            let names: Vec<&str> = self.apply.iter().map(|a| a.as_str()).collect();
            format!("only {} may apply it", names.join(", "))
        };
        Violation {
            check: RULE_CHECK,
            detail: format!("`{global}` applied with {}: {may}", apply.as_str()),
        }
    }
}

/// The Python 2 modules whose names map onto globals that have rules (a test keeps this list
/// complete), so that a global without rules costs one binary search, not a mapping scan.
pub(crate) const PY2_MODULES_WITH_RULES: &[&str] = &[
    "UserDict",
    "UserList",
    "UserString",
    "__builtin__",
    "copy_reg",
    "exceptions",
    "itertools",
];

/// The rule for `(module, name)`, under its raw name or its Python 2 spelling's mapping.
pub(crate) fn lookup(module: &str, name: &str) -> Option<&'static Rule> {
    find(module, name).or_else(|| {
        if !PY2_MODULES_WITH_RULES.contains(&module) {
            return None;
        }
        let (module3, name3) = py2::map(module, name)?;
        find(module3, name3)
    })
}

fn find(module: &str, name: &str) -> Option<&'static Rule> {
    let hash = rule_hash(module, name);
    let at = RULE_HASHES.binary_search_by_key(&hash, |&(h, _)| h).ok()?;
    let rule = RULES.get(usize::from(RULE_HASHES[at].1))?;
    (rule.module == module && rule.name == name).then_some(rule)
}

/// FNV-1a over `module`, a 0xff byte (never in UTF-8), and `name`, as `policy/build.rs` hashes
/// the rule table.
fn rule_hash(module: &str, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in module
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(name.as_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub(crate) fn check_apply(
    global: &Global,
    apply: Apply,
    args: &Value,
    kwargs: Option<&Value>,
    depth: u32,
) -> Result<(), Violation> {
    let Some(rule) = lookup(&global.module, &global.name) else {
        return Ok(());
    };
    if apply == Apply::Build || !rule.allows(apply) {
        return Err(rule.not_allowed(apply));
    }
    if depth > MAX_DEPTH {
        return Err(Violation {
            check: RULE_CHECK,
            detail: format!("`{global}` nested more than {MAX_DEPTH} deep"),
        });
    }
    let mut checks = rule.checks_for(apply).peekable();
    if checks.peek().is_none() {
        return Ok(());
    }
    let Value::Tuple(items) = args else {
        return Err(Violation {
            check: RULE_CHECK,
            detail: format!("`{global}` applied to arguments that are not a tuple"),
        });
    };
    let call = Call {
        global,
        apply,
        args: items,
        kwargs,
        depth,
    };
    for check in checks {
        if let Run::Args(run) = check.run {
            run(&call).map_err(|detail| Violation {
                check: check.name,
                detail: format!("`{global}`: {detail}"),
            })?;
        }
    }
    Ok(())
}

pub(crate) fn check_build(target: &Value, state: &Value, depth: u32) -> Result<(), Violation> {
    if let Value::Global(global) = target {
        // BUILD onto a class or function itself sets attributes on it for the whole process.
        return match lookup(&global.module, &global.name) {
            Some(_) => Err(Violation {
                check: RULE_CHECK,
                detail: format!("BUILD onto `{global}` itself, not onto an object made from it"),
            }),
            None => Ok(()),
        };
    }
    let Value::Built { by, .. } = target else {
        return Ok(());
    };
    let Some(rule) = lookup(&by.module, &by.name) else {
        return Ok(());
    };
    if !rule.allows(Apply::Build) {
        return Err(rule.not_allowed(Apply::Build));
    }
    if depth > MAX_DEPTH {
        return Err(Violation {
            check: RULE_CHECK,
            detail: format!("BUILD on `{by}` nested more than {MAX_DEPTH} deep"),
        });
    }
    let build = Build {
        target,
        state,
        depth,
    };
    for check in rule.checks_for(Apply::Build) {
        if let Run::State(run) = check.run {
            run(&build).map_err(|detail| Violation {
                check: check.name,
                detail: format!("BUILD on `{by}`: {detail}"),
            })?;
        }
    }
    Ok(())
}

/// An application being checked: the global, the opcode, the positional arguments and (for
/// NEWOBJ_EX) the keyword arguments.
pub struct Call<'a> {
    /// The global being applied.
    pub global: &'a Global,
    /// How.
    pub apply: Apply,
    /// The positional arguments.
    pub args: &'a [Value],
    /// The keyword arguments (NEWOBJ_EX only).
    pub kwargs: Option<&'a Value>,
    pub(crate) depth: u32,
}

/// A BUILD being checked.
pub struct Build<'a> {
    /// The object the state goes onto (a [`Value::Built`]).
    pub target: &'a Value,
    /// The state.
    pub state: &'a Value,
    pub(crate) depth: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py2_names::{IMPORT_MAPPING, NAME_MAPPING};

    #[test]
    fn every_python2_spelling_of_a_ruled_global_is_looked_up() {
        for &(module, name, module3, name3) in NAME_MAPPING {
            if find(module3, name3).is_some() {
                assert!(PY2_MODULES_WITH_RULES.contains(&module), "{module}.{name}");
                assert!(lookup(module, name).is_some(), "{module}.{name}");
            }
        }
        for &(module, module3) in IMPORT_MAPPING {
            if RULES.iter().any(|rule| rule.module == module3) {
                assert!(PY2_MODULES_WITH_RULES.contains(&module), "{module}");
            }
        }
        assert!(lookup("__builtin__", "set").is_some());
        for rule in RULES {
            assert!(std::ptr::eq(find(rule.module, rule.name).unwrap(), rule));
        }
        assert_eq!(RULE_HASHES.len(), RULES.len());
        assert!(lookup("copy_reg", "_reconstructor").is_some());
    }
}
