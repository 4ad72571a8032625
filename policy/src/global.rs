use std::fmt;

use crate::Error;

/// An exact `(module, name)` pair, as a pickle's GLOBAL or STACK_GLOBAL asks for it.
///
/// `name` may be a dotted qualname (`Outer.Inner`), which protocols >= 4 resolve attribute by
/// attribute; it is matched as a whole, never as a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Global {
    /// The module to import, for example `collections`.
    pub module: String,
    /// The attribute looked up in it, for example `OrderedDict`.
    pub name: String,
}

impl Global {
    /// Builds a pair without validating it.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> Self {
        Global {
            module: module.into(),
            name: name.into(),
        }
    }

    /// Parses `module.name` (split at the last dot) or `module:qualname` (split at the colon).
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let malformed = |why| Error::MalformedGlobal {
            entry: spec.to_string(),
            why,
        };
        let spec_trimmed = spec.trim();
        if spec_trimmed.contains('*') {
            return Err(malformed(
                "wildcards are not supported: entries are exact pairs",
            ));
        }
        let (module, name) = match spec_trimmed.split_once(':') {
            Some(pair) => pair,
            None => spec_trimmed
                .rsplit_once('.')
                .ok_or_else(|| malformed("there is no module part"))?,
        };
        if !is_dotted_identifier(module) {
            return Err(malformed("the module is not a dotted Python identifier"));
        }
        if !is_dotted_identifier(name) {
            return Err(malformed("the name is not a Python identifier"));
        }
        Ok(Global::new(module, name))
    }
}

/// Shows the spelling [`Global::parse`] reads back: `module.name`, or `module:qualname` when
/// the name itself has dots.
impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.name.contains('.') { ':' } else { '.' };
        write!(f, "{}{sep}{}", self.module, self.name)
    }
}

fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}

fn is_identifier(part: &str) -> bool {
    let mut chars = part.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings() {
        assert_eq!(
            Global::parse("collections.OrderedDict").unwrap(),
            Global::new("collections", "OrderedDict")
        );
        assert_eq!(
            Global::parse("a.b.c").unwrap(),
            Global::new("a.b", "c"),
            "module.name splits at the last dot"
        );
        assert_eq!(
            Global::parse("pkg.mod:Outer.Inner").unwrap(),
            Global::new("pkg.mod", "Outer.Inner")
        );
        assert_eq!(Global::parse("  m.n ").unwrap(), Global::new("m", "n"));
    }

    #[test]
    fn display_round_trips() {
        for spec in ["collections.OrderedDict", "pkg.mod:Outer.Inner", "a.b.c"] {
            assert_eq!(Global::parse(spec).unwrap().to_string(), spec);
        }
    }

    #[test]
    fn rejects_non_globals() {
        for bad in [
            "",
            "os",
            "os.",
            ".system",
            "os..system",
            "os.*",
            "torch.*",
            "a b.c",
            "m:",
            ":n",
            "m:n:o",
            "1x.y",
            "x.y-z",
        ] {
            assert!(
                matches!(Global::parse(bad), Err(Error::MalformedGlobal { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
