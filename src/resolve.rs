//! What a global resolves to: the runtime half of the hard-deny set.
//!
//! The policy judges a global by its spelling (`pickleguard_policy::hard_deny`). Before `warn`
//! mode lets a global that is not allowlisted run, this module also judges the object the name
//! leads to, so an alias cannot carry a denied callable past the spelling check: a module
//! attribute that is a module gets that module's verdict (`_pyio`, `posix`), and a function,
//! class or instance gets the verdict of where it was defined (`mymodule.run = os.system`
//! resolves to `posix.system`; a `functools.partial` instance to `functools.partial`).
//!
//! It imports the module and walks the name the way `find_class` is about to, so it runs no
//! code that the load would not run next anyway.

use pickleguard_policy::hard_deny;
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyType};

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
