//! pickleguard's policy: which globals a pickle may resolve.
//!
//! Plain Rust with no Python in it, so that the runtime audit hook and the static scanner
//! reach the same decision for the same `(module, name)` pair.
//!
//! * [`Global`] is an exact `(module, name)` pair, parsed from `module.name` or `module:qualname`.
//! * [`packs`] holds the curated allowlists, each entry with a one-line reason.
//! * [`hard_deny`] lists globals that no configuration can allow.
//! * [`Policy::decide`] turns the raw names a pickle asks for into a [`Decision`], checking every
//!   spelling CPython may import (the raw name and its Python 2 mapping).
//! * [`env`] reads the `PICKLEGUARD_*` variables.
#![forbid(unsafe_code)]

mod decision;
pub mod env;
mod error;
mod global;
pub mod hard_deny;
pub mod packs;
mod py2;
mod py2_names;

pub use decision::{Decision, Policy, Source};
pub use env::{Mode, Settings};
pub use error::Error;
pub use global::Global;
