//! pickleguard's own unpickler: `pickle.Unpickler`, `pickle.load` and `pickle.loads` (and the
//! same names in `_pickle`) in every protected process.
//!
//! INTERFACE CONTRACT (shared with the installer that owns `_pickle`): [`add_to`] adds the
//! names `Unpickler`, `load` and `loads` to a module, with CPython's signatures.
//!
//! It follows CPython's `_pickle.c`: every opcode of protocols 0-5, the same stream handling
//! and the same exception types. Each global goes through `find_class`, which raises the
//! `pickle.find_class` audit event that the hook answers with the policy (one decision per
//! global); before an object from a global is applied or given a state, the reconstruction
//! rules of `pickleguard_policy::reconstruct` are asked.
//!
//! Modules: [`input`] reads bytes and files, [`machine`] runs the opcodes, [`memo`] stores
//! by index, [`globals`] is `find_class`, [`provenance`] asks the reconstruction rules (with
//! [`value`] converting objects for them, and [`freeze`] copying a checked state),
//! [`class`] is the Python-facing `Unpickler`, `load` and `loads`, [`errors`] the exceptions,
//! and [`raw`] holds the unsafe CPython calls.

mod class;
pub mod encoded;
mod errors;
// A checked BUILD state's private copy, shared with the pure-Python unpickler's wrapper.
pub mod freeze;
mod globals;
mod input;
mod machine;
mod memo;
mod opcodes;
pub(crate) mod provenance;
mod raw;
// The Python -> reconstruct::Value conversion, shared with the pure-Python unpickler's wrapper.
pub mod value;

use pyo3::prelude::*;

pub use pickleguard_policy::reconstruct::Apply;

/// Adds `Unpickler`, `load` and `loads` to `module`.
pub fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    class::add_to(module)
}
