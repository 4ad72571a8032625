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
    /// A mode value is not one of the known modes.
    #[error("`{value}` is not a mode: use `enforce`, `warn` or `off`")]
    BadMode {
        /// The value as given.
        value: String,
    },
}
