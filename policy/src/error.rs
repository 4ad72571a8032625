use thiserror::Error;

/// Everything that can be wrong with a piece of configuration.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An allow entry is not an exact global.
    #[error("`{entry}` is not a global: write `module.name`, or `module:qualname` for a dotted name ({why})")]
    MalformedGlobal {
        /// The text as given.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An allow entry names a global that no configuration can allow.
    #[error("`{entry}` is hard-denied and can never be allowed: {reason}")]
    HardDenied {
        /// The entry as given.
        entry: String,
        /// Why it is denied.
        reason: &'static str,
    },
    /// A setting has a value it cannot take.
    #[error("`{value}` is not {expected}")]
    BadValue {
        /// The value as given.
        value: String,
        /// What the setting takes.
        expected: &'static str,
    },
    /// A pack name that does not exist.
    #[error("`{name}` is not a policy pack: the packs are {known}")]
    UnknownPack {
        /// The name as given.
        name: String,
        /// The pack names, for the message.
        known: String,
    },
}
