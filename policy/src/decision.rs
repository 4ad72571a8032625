use std::collections::BTreeMap;
use std::fmt;

use crate::packs::{self, Pack};
use crate::{hard_deny, py2, Error, Global};

/// What allowed a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A built-in policy pack, by name.
    Pack(&'static str),
    /// The `PICKLEGUARD_ALLOW` variable.
    Env,
    /// A call from Python: `pickleguard.allow()` or `activate_safe_ml_environment(also_allow=)`.
    Call,
    /// An `allow` entry of the config file, at this line.
    Config(u32),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pack(name) => write!(f, "pack `{name}`"),
            Source::Env => f.write_str("PICKLEGUARD_ALLOW"),
            Source::Call => f.write_str("pickleguard.allow()"),
            Source::Config(line) => write!(f, "config file line {line}"),
        }
    }
}

/// The verdict on one `(module, name)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every spelling CPython may import is allowlisted.
    Allowed(Source),
    /// Not on the allowlist: refused in `enforce` mode, reported in `warn` mode.
    NotAllowed,
    /// Refused in every mode, whatever the configuration says.
    HardDenied(&'static str),
}

/// An extra allowed pair: where it came from, and the operator's reason if one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Where the entry came from.
    pub source: Source,
    /// Why it is trusted, as the operator wrote it.
    pub reason: Option<String>,
}

/// The allowlist in force: the `ml` pack, any enabled packs, and extra exact pairs.
#[derive(Debug, Clone)]
pub struct Policy {
    packs: Vec<&'static Pack>,
    extra: BTreeMap<String, BTreeMap<String, Allowance>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            packs: vec![&packs::ML_PACK],
            extra: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// The default policy: the `ml` pack and nothing else.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables a pack by name. Enabling one twice is harmless.
    pub fn enable_pack(&mut self, name: &str) -> Result<(), Error> {
        let pack = packs::by_name(name.trim()).ok_or_else(|| Error::UnknownPack {
            name: name.to_string(),
            known: packs::PACKS
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        if !self.packs.iter().any(|p| p.name == pack.name) {
            self.packs.push(pack);
            for required in pack.requires {
                self.enable_pack(required)?;
            }
        }
        Ok(())
    }

    /// The packs in force, `ml` first.
    pub fn packs(&self) -> impl Iterator<Item = &'static Pack> + '_ {
        self.packs.iter().copied()
    }

    /// Adds one exact pair. Hard-denied pairs are refused, and the policy is left unchanged.
    pub fn allow(
        &mut self,
        global: &Global,
        source: Source,
        reason: Option<String>,
    ) -> Result<(), Error> {
        // The Python 2 spelling (`__builtin__.eval`) of a hard-denied pair is refused too:
        // protocols 0-2 import what it maps to.
        let mapped = py2::map(&global.module, &global.name);
        let spellings = [Some((global.module.as_str(), global.name.as_str())), mapped];
        if let Some(why) = spellings
            .iter()
            .flatten()
            .find_map(|&(m, n)| hard_deny::check(m, n))
        {
            return Err(Error::HardDenied {
                entry: global.to_string(),
                reason: why,
            });
        }
        self.extra
            .entry(global.module.clone())
            .or_default()
            .entry(global.name.clone())
            .or_insert(Allowance { source, reason });
        Ok(())
    }

    /// The extra pairs (beyond packs), with where each came from.
    pub fn extra(&self) -> impl Iterator<Item = (Global, &Allowance)> + '_ {
        self.extra.iter().flat_map(|(module, names)| {
            names.iter().map(move |(name, allowance)| {
                (Global::new(module.as_str(), name.as_str()), allowance)
            })
        })
    }

    /// Decides on the raw names a pickle asks for, as the `pickle.find_class` event reports them.
    ///
    /// At protocols 0-2 CPython may import the Python 2 mapping of the raw names instead, so
    /// every spelling that can be imported must pass: none may be hard-denied, and all must be
    /// allowlisted.
    pub fn decide(&self, module: &str, name: &str) -> Decision {
        let mapped = py2::map(module, name);
        let spellings = [Some((module, name)), mapped];
        if let Some(reason) = spellings
            .iter()
            .flatten()
            .find_map(|&(m, n)| hard_deny::check(m, n))
        {
            return Decision::HardDenied(reason);
        }
        let mut source = None;
        for (m, n) in Self::importable(module, name) {
            match self.lookup(m, n) {
                Some(found) => {
                    source.get_or_insert(found);
                }
                None => return Decision::NotAllowed,
            }
        }
        source.map_or(Decision::NotAllowed, Decision::Allowed)
    }

    /// The spellings of `(module, name)` that CPython may import and the policy does not allow
    /// yet: what an operator has to allow for the pair to load. Empty if it loads already or
    /// is hard-denied.
    pub fn missing(&self, module: &str, name: &str) -> Vec<Global> {
        if !matches!(self.decide(module, name), Decision::NotAllowed) {
            return Vec::new();
        }
        Self::importable(module, name)
            .filter(|&(m, n)| self.lookup(m, n).is_none())
            .map(|(m, n)| Global::new(m, n))
            .collect()
    }

    /// Every allowed global, spelled as [`Global::parse`] reads it, sorted.
    pub fn allowed(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .packs
            .iter()
            .flat_map(|pack| pack.entries.iter().map(|entry| entry.global().to_string()))
            .chain(self.extra().map(|(global, _)| global.to_string()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    fn importable<'a>(module: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let mapped = py2::map(module, name);
        let raw_importable = mapped.is_none() || py2::raw_also_importable(module);
        [raw_importable.then_some((module, name)), mapped]
            .into_iter()
            .flatten()
    }

    fn lookup(&self, module: &str, name: &str) -> Option<Source> {
        if let Some(pack) = self
            .packs
            .iter()
            .find(|pack| pack.find(module, name).is_some())
        {
            return Some(Source::Pack(pack.name));
        }
        self.extra
            .get(module)?
            .get(name)
            .map(|allowance| allowance.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_allowing(specs: &[&str]) -> Policy {
        let mut policy = Policy::new();
        for spec in specs {
            policy
                .allow(&Global::parse(spec).unwrap(), Source::Call, None)
                .unwrap();
        }
        policy
    }

    #[test]
    fn default_allows_ml_data_and_nothing_else() {
        let policy = Policy::new();
        assert_eq!(
            policy.decide("collections", "OrderedDict"),
            Decision::Allowed(Source::Pack("ml"))
        );
        assert_eq!(
            policy.decide("collections", "Counter"),
            Decision::NotAllowed
        );
        assert!(matches!(
            policy.decide("os", "system"),
            Decision::HardDenied(_)
        ));
    }

    #[test]
    fn exact_pairs_only() {
        let policy = policy_allowing(&["mymodel.Net"]);
        assert_eq!(
            policy.decide("mymodel", "Net"),
            Decision::Allowed(Source::Call)
        );
        assert_eq!(policy.decide("mymodel", "Net2"), Decision::NotAllowed);
        assert_eq!(policy.decide("mymodel", "Net.helper"), Decision::NotAllowed);
        assert_eq!(policy.decide("mymodel.sub", "Net"), Decision::NotAllowed);
        assert_eq!(
            policy.decide("collections", "OrderedDict.fromkeys"),
            Decision::NotAllowed
        );
    }

    #[test]
    fn hard_denied_entries_are_refused() {
        let mut policy = Policy::new();
        for spec in [
            "os.system",
            "builtins.eval",
            "subprocess.Popen",
            "posix:system",
        ] {
            let err = policy.allow(&Global::parse(spec).unwrap(), Source::Env, None);
            assert!(matches!(err, Err(Error::HardDenied { .. })), "{spec}");
        }
        assert_eq!(policy.allowed(), Policy::new().allowed());
    }

    #[test]
    fn python2_spellings_are_judged_by_what_gets_imported() {
        let policy = Policy::new();
        assert_eq!(
            policy.decide("__builtin__", "set"),
            policy.decide("builtins", "set")
        );
        assert!(matches!(
            policy.decide("__builtin__", "eval"),
            Decision::HardDenied(_)
        ));
        assert!(matches!(
            policy.decide("commands", "getoutput"),
            Decision::HardDenied(_)
        ));
        assert_eq!(
            policy.decide("__builtin__", "complex"),
            Decision::Allowed(Source::Pack("ml"))
        );
        assert_eq!(
            policy.decide("copy_reg", "_reconstructor"),
            Decision::NotAllowed
        );
    }

    #[test]
    fn missing_names_what_to_allow() {
        let policy = Policy::new();
        assert_eq!(
            policy.missing("mymodel", "Net"),
            vec![Global::new("mymodel", "Net")]
        );
        assert_eq!(
            policy.missing("__builtin__", "range"),
            vec![Global::new("builtins", "range")]
        );
        assert_eq!(
            policy.missing("dbm", "library"),
            vec![
                Global::new("dbm", "library"),
                Global::new("dbm.ndbm", "library")
            ]
        );
        assert!(policy.missing("builtins", "set").is_empty());
        assert!(policy.missing("os", "system").is_empty());
    }

    #[test]
    fn python2_spelling_importable_as_is_needs_both_allowed() {
        // `dbm` exists in Python 3 too, so at protocol >= 3 the raw name is imported.
        let only_mapped = policy_allowing(&["dbm.ndbm.library"]);
        assert_eq!(only_mapped.decide("dbm", "library"), Decision::NotAllowed);
        let both = policy_allowing(&["dbm.ndbm.library", "dbm.library"]);
        assert_eq!(
            both.decide("dbm", "library"),
            Decision::Allowed(Source::Call)
        );
    }
}
