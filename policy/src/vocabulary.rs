//! One spelling for every decision and every event about a global.
//!
//! The hook's log events, the record file, `UnsafeFileError.reason`, the scanner's JSON and
//! SARIF, and `pickleguard learn`'s parser all write and read these words, so a value one part
//! writes is a value every other part reads. Nothing else may spell them.

use std::fmt;
use std::str::FromStr;

use crate::{Decision, Error};

/// What happened to one global, as every output spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// The policy allows it: `allowed`.
    Allowed,
    /// Not on the allowlist: `not-allowlisted`.
    NotAllowlisted,
    /// Refused whatever the configuration says: `hard-denied`.
    HardDenied,
    /// Resolved by multiprocessing's own channel, which skips the allowlist: `trusted-ipc`.
    TrustedIpc,
    /// The scanner could not name it statically, so it cannot be judged: `unresolved`.
    Unresolved,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Allowed,
        Outcome::NotAllowlisted,
        Outcome::HardDenied,
        Outcome::TrustedIpc,
        Outcome::Unresolved,
    ];

    /// The one spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::NotAllowlisted => "not-allowlisted",
            Outcome::HardDenied => "hard-denied",
            Outcome::TrustedIpc => "trusted-ipc",
            Outcome::Unresolved => "unresolved",
        }
    }

    /// The outcome of a policy decision (trusted IPC is decided by the caller, not the policy).
    pub const fn of(decision: Decision) -> Outcome {
        match decision {
            Decision::Allowed(_) => Outcome::Allowed,
            Decision::NotAllowed => Outcome::NotAllowlisted,
            Decision::HardDenied(_) => Outcome::HardDenied,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| Error::BadValue {
                value: text.to_string(),
                expected:
                    "a decision: allowed, not-allowlisted, hard-denied, trusted-ipc or unresolved",
            })
    }
}

/// The log events about one global (the `event` field of a JSON log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A global was refused: `blocked`.
    Blocked,
    /// Warn mode let a global through that enforce mode would refuse: `warned`.
    Warned,
    /// A global was written to the record file: `recorded`.
    Recorded,
    /// multiprocessing's own channel resolved a global: `trusted_ipc`.
    TrustedIpc,
}

impl Event {
    /// Every event about a global.
    pub const ALL: [Event; 4] = [
        Event::Blocked,
        Event::Warned,
        Event::Recorded,
        Event::TrustedIpc,
    ];

    /// The one spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Event::Blocked => "blocked",
            Event::Warned => "warned",
            Event::Recorded => "recorded",
            Event::TrustedIpc => "trusted_ipc",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Event {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Event::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
            .ok_or_else(|| Error::BadValue {
                value: text.to_string(),
                expected: "an event about a global: blocked, warned, recorded or trusted_ipc",
            })
    }
}

/// The fields of a record-file line (JSON Lines), as the core writes them and `learn` reads them.
pub mod record {
    /// `"module.name"` as the allowlist spells it.
    pub const GLOBAL: &str = "global";
    /// The module.
    pub const MODULE: &str = "module";
    /// The name looked up in it.
    pub const NAME: &str = "name";
    /// An [`super::Outcome`].
    pub const DECISION: &str = "decision";
    /// What allowed it, or why it is hard-denied.
    pub const SOURCE: &str = "source";
    /// `file:line` of the Python code that started the load.
    pub const CALLER: &str = "caller";
    /// The recording process.
    pub const PID: &str = "pid";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    #[test]
    fn outcomes_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
            assert_eq!(outcome.to_string(), outcome.as_str());
        }
        assert!("not allowlisted".parse::<Outcome>().is_err());
        assert!("not_allowed".parse::<Outcome>().is_err());
    }

    #[test]
    fn events_round_trip() {
        for event in Event::ALL {
            assert_eq!(event.as_str().parse::<Event>(), Ok(event));
        }
        assert!("trusted-ipc".parse::<Event>().is_err());
    }

    #[test]
    fn spellings_are_distinct() {
        let mut words: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), Outcome::ALL.len());
    }

    #[test]
    fn decisions_map_to_outcomes() {
        assert_eq!(
            Outcome::of(Decision::Allowed(Source::Env)),
            Outcome::Allowed
        );
        assert_eq!(Outcome::of(Decision::NotAllowed), Outcome::NotAllowlisted);
        assert_eq!(Outcome::of(Decision::HardDenied("x")), Outcome::HardDenied);
    }
}
