//! pickleguard's own unpickler: `pickle.Unpickler`, `pickle.load` and `pickle.loads` (and the
//! same names in `_pickle`) in every protected process.
//!
//! INTERFACE CONTRACT (shared with the installer that owns `_pickle`): [`add_to`] adds the
//! names `Unpickler`, `load` and `loads` to a module, with CPython's signatures.

use pyo3::prelude::*;

// The Python -> reconstruct::Value conversion, shared with the pure-Python unpickler's wrapper.
#[allow(dead_code)] // until the unpickler and the wrapper use it
pub mod value;

/// Adds `Unpickler`, `load` and `loads` to `module`.
#[allow(dead_code)] // wired in by the installer
pub fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let _ = module;
    Ok(())
}
