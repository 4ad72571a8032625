use std::fmt;

/// One thing wrong with the configuration: where it is, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line`, or `VARIABLE=value`.
    pub origin: String,
    /// What is wrong and what happens instead.
    pub message: String,
}

impl Problem {
    /// A problem at `origin`.
    pub fn new(origin: String, message: String) -> Self {
        Problem { origin, message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}
