//! The `PICKLEGUARD_*` environment variables.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Global, Policy, Source};

/// Extra globals to allow, comma-separated.
pub const ALLOW_VAR: &str = "PICKLEGUARD_ALLOW";
/// `enforce`, `warn` or `off`.
pub const MODE_VAR: &str = "PICKLEGUARD_MODE";

/// What the guard does with a global that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse it (the default).
    #[default]
    Enforce,
    /// Report it and let it load; hard-denied globals are still refused.
    Warn,
    /// Check nothing.
    Off,
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            "off" => Ok(Mode::Off),
            _ => Err(Error::BadMode {
                value: value.to_string(),
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Off => "off",
        })
    }
}

/// The configuration read from the environment, with one message per problem found.
///
/// A problem never weakens protection: a bad mode leaves `enforce`, and a bad allow entry is
/// skipped while the valid ones apply.
#[derive(Debug, Default)]
pub struct Settings {
    /// The mode in force.
    pub mode: Mode,
    /// The default pack plus the valid `PICKLEGUARD_ALLOW` entries.
    pub policy: Policy,
    /// One line per problem, naming the variable and the bad text.
    pub problems: Vec<String>,
}

impl Settings {
    /// Reads the variables through `lookup` (for example `std::env::var_os`).
    pub fn from_env(lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        let mut settings = Settings::default();
        let mut read = |var: &str| -> Option<String> {
            let raw = lookup(var)?;
            match raw.into_string() {
                Ok(text) => Some(text),
                Err(raw) => {
                    settings
                        .problems
                        .push(format!("{var}={raw:?} is not valid UTF-8; it is ignored"));
                    None
                }
            }
        };
        let mode = read(MODE_VAR);
        let allow = read(ALLOW_VAR);
        if let Some(value) = mode.filter(|v| !v.trim().is_empty()) {
            match value.parse() {
                Ok(mode) => settings.mode = mode,
                Err(err) => settings.problems.push(format!(
                    "{MODE_VAR}={value}: {err}; the guard stays in `enforce` mode"
                )),
            }
        }
        for entry in allow
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|e| !e.trim().is_empty())
        {
            let added = Global::parse(entry).and_then(|g| settings.policy.allow(&g, Source::Env));
            if let Err(err) = added {
                settings.problems.push(format!(
                    "{ALLOW_VAR}={}: {err}; that entry is ignored and the rest apply",
                    allow.as_deref().unwrap_or_default()
                ));
            }
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Settings::from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_to_enforce_with_the_ml_pack() {
        let s = settings(&[]);
        assert_eq!(s.mode, Mode::Enforce);
        assert!(s.problems.is_empty());
        assert_eq!(s.policy.allowed(), Policy::new().allowed());
    }

    #[test]
    fn reads_mode_and_allow() {
        let s = settings(&[
            (MODE_VAR, " Warn "),
            (ALLOW_VAR, "a.B, pkg.mod:Outer.Inner,"),
        ]);
        assert_eq!(s.mode, Mode::Warn);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.policy.decide("a", "B"), Decision::Allowed(Source::Env));
        assert_eq!(
            s.policy.decide("pkg.mod", "Outer.Inner"),
            Decision::Allowed(Source::Env)
        );
    }

    #[test]
    fn bad_values_are_reported_and_never_weaken() {
        let s = settings(&[
            (MODE_VAR, "disabled"),
            (ALLOW_VAR, "os.system,good.One,torch.*"),
        ]);
        assert_eq!(s.mode, Mode::Enforce);
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        assert!(s.problems[0].contains("PICKLEGUARD_MODE=disabled"));
        assert!(s.problems[1].contains("`os.system` is hard-denied"));
        assert!(s.problems[2].contains("`torch.*`"));
        assert_eq!(
            s.policy.decide("good", "One"),
            Decision::Allowed(Source::Env)
        );
        assert!(matches!(
            s.policy.decide("os", "system"),
            Decision::HardDenied(_)
        ));
    }
}
