//! pickleguard's policy: which globals a pickle may resolve.
//!
//! Plain Rust with no Python in it, so that the runtime audit hook and the static scanner
//! reach the same decision for the same `(module, name)` pair.
//!
//! * [`Global`] is an exact `(module, name)` pair, parsed from `module.name` or `module:qualname`.
//! * [`packs`] holds the curated allowlists, read at build time from `policy/packs/*.toml`: each
//!   entry with a one-line reason, the opcodes that may apply it and the checks it must pass.
//! * [`reconstruct`] holds those checks: what a pickle may *do* with an allowed global (a
//!   dtype's state, an array's bytes, a tensor's view, a codec), shared by the runtime
//!   unpickler and the scanner through [`reconstruct::plan`], [`reconstruct::check_apply`] and
//!   [`reconstruct::check_build`].
//! * [`hard_deny`] lists globals that no configuration can allow.
//! * [`Policy::decide`] turns the raw names a pickle asks for into a [`Decision`], checking every
//!   spelling CPython may import (the raw name and its Python 2 mapping).
//! * [`settings`] reads the config file and the `PICKLEGUARD_*` variables (env > file >
//!   built-in), keeping each bad value as a [`Problem`].
//! * [`vocabulary`] spells each decision and event once, for every output and parser.
#![forbid(unsafe_code)]

mod config_file;
mod decision;
mod error;
mod global;
pub mod hard_deny;
pub mod packs;
mod problem;
mod py2;
mod py2_names;
pub mod reconstruct;
pub mod settings;
pub mod vocabulary;

pub use decision::{Allowance, Decision, Policy, Source};
pub use error::Error;
pub use global::Global;
pub use problem::Problem;
pub use settings::{LogFormat, LogLevel, LogSettings, Mode, Settings};
pub use vocabulary::{Event, Outcome};
