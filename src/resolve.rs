//! What a global resolves to: the runtime half of the hard-deny set.
//!
//! The policy judges a global by its spelling (`pickleguard_policy::hard_deny`). Before `warn`
//! mode lets a global that is not allowlisted run, and the first time a global that an
//! operator allowed (not a pack) loads, this module also judges the object the name leads to, so an alias cannot carry a denied callable past the spelling check: a module
//! attribute that is a module gets that module's verdict (`_pyio`, `posix`), and a function,
//! class or instance gets the verdict of where it was defined (`mymodule.run = os.system`
//! resolves to `posix.system`; a `functools.partial` instance to `functools.partial`).
//!
//! It imports the module and walks the name the way `find_class` is about to, so it runs no
//! code that the load would not run next anyway.

use std::sync::Mutex;

use pickleguard_policy::hard_deny;
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyType};
use rustc_hash::{FxHashMap, FxHashSet};

/// Most allowed globals remembered as resolving cleanly before the set starts afresh.
const CLEAN_LIMIT: usize = 4096;

/// Allowed globals already resolved and found clean, by module then name, so a lookup needs
/// no allocation. Taken with the GIL held and never across a call into Python.
#[derive(Default)]
struct Clean {
    by_module: FxHashMap<String, FxHashSet<String>>,
    len: usize,
}

static CLEAN: Mutex<Option<Clean>> = Mutex::new(None);

/// Whether an allowed `(module, name)` was already resolved and found clean.
pub fn known_clean(module: &str, name: &str) -> bool {
    let clean = CLEAN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    clean
        .as_ref()
        .and_then(|clean| clean.by_module.get(module))
        .is_some_and(|names| names.contains(name))
}

/// Remembers that an allowed `(module, name)` resolves cleanly.
pub fn mark_clean(module: &str, name: &str) {
    let mut clean = CLEAN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let clean = clean.get_or_insert_with(Clean::default);
    if clean.len >= CLEAN_LIMIT {
        *clean = Clean::default();
    }
    if clean
        .by_module
        .entry(module.to_string())
        .or_default()
        .insert(name.to_string())
    {
        clean.len += 1;
    }
}

/// Why what `(module, name)` resolves to is hard-denied, or `None` if it is not (or cannot be
/// resolved, in which case the unpickler fails to import it too).
pub fn hard_denied(py: Python<'_>, module: &str, name: &str) -> Option<&'static str> {
    hard_deny::spellings(module, name)
        .into_iter()
        .find_map(|(module, name)| walk(py, module, name))
}

/// Imports `module` and follows each part of `name`, judging every object on the way.
fn walk(py: Python<'_>, module: &str, name: &str) -> Option<&'static str> {
    let mut object = py.import(module).ok()?.into_any();
    if let Some(reason) = judge(&object) {
        return Some(reason);
    }
    for part in name.split('.') {
        object = object.getattr(part).ok()?;
        if let Some(reason) = judge(&object) {
            return Some(reason);
        }
    }
    None
}

/// The hard-deny verdict on one object: a module by its real name; anything else by where it,
/// the module or object it is bound to, or its class was defined.
fn judge(object: &Bound<'_, PyAny>) -> Option<&'static str> {
    if let Ok(module) = object.cast::<PyModule>() {
        return module_verdict(module);
    }
    if let Some(reason) = defined_as(object) {
        return Some(reason);
    }
    if let Ok(owner) = object.getattr("__self__") {
        let verdict = match owner.cast::<PyModule>() {
            Ok(module) => module_verdict(module),
            Err(_) => defined_as(&owner.get_type().into_any()),
        };
        if verdict.is_some() {
            return verdict;
        }
    }
    if object.is_instance_of::<PyType>() {
        return None;
    }
    defined_as(&object.get_type().into_any())
}

fn module_verdict(module: &Bound<'_, PyModule>) -> Option<&'static str> {
    let name: String = module.getattr("__name__").ok()?.extract().ok()?;
    hard_deny::module_reason(&name)
}

/// The verdict on `__module__` and `__qualname__` (or `__name__`), when the object has them.
fn defined_as(object: &Bound<'_, PyAny>) -> Option<&'static str> {
    let module: String = object.getattr("__module__").ok()?.extract().ok()?;
    let qualname: String = object
        .getattr("__qualname__")
        .or_else(|_| object.getattr("__name__"))
        .ok()?
        .extract()
        .ok()?;
    hard_deny::check(&module, &qualname)
}
