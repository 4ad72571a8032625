//! `pickleguard.UnsafeFileError` and the messages users see.

use pickleguard_policy::packs::{self, Pack};
use pickleguard_policy::settings::vars::{ALLOW as ALLOW_VAR, PACKS as PACKS_VAR};
use pickleguard_policy::{Decision, Global, Outcome};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::ffi;

/// Where each interpreter keeps its own class, in its per-interpreter dictionary: a class is
/// a Python object of one interpreter, and subclasses that interpreter's `UnpicklingError`, so
/// no class is shared between interpreters (or between lifetimes of the main one).
const CLASS_KEY: &str = "pickleguard.UnsafeFileError";

/// `pickleguard.UnsafeFileError` of the running interpreter, a subclass of its
/// `pickle.UnpicklingError`; created on first use so that nothing is imported at start-up.
pub fn unsafe_file_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    let store = ffi::interpreter_dict(py);
    if let Some(store) = &store {
        if let Some(class) = store.get_item(CLASS_KEY)? {
            if let Ok(class) = class.cast_into::<PyType>() {
                return Ok(class);
            }
        }
    }
    let class = new_class(py)?;
    if let Some(store) = &store {
        store.set_item(CLASS_KEY, &class)?;
    }
    Ok(class)
}

fn new_class(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    // `pickle`'s own class when `_pickle` cannot be imported (its pure-Python fallback).
    let base = py
        .import("_pickle")
        .or_else(|_| py.import("pickle"))?
        .getattr("UnpicklingError")?;
    let base = base.cast_into::<PyType>()?;
    let class = PyErr::new_type(
        py,
        c"pickleguard.UnsafeFileError",
        Some(c"A pickle asked for a global that pickleguard's policy does not allow.\n\nAttributes: module, name, reason."),
        Some(&base),
        None,
    )?
    .into_bound(py);
    // Class-level defaults keep `err.module` readable when a framework re-raises the error
    // from its message alone (torch's DataLoader does). Set after creation: a dict passed to
    // pyo3 0.29's `new_type` is released before CPython reads it.
    for attribute in ["module", "name", "reason"] {
        class.setattr(attribute, py.None())?;
    }
    Ok(class)
}

/// Why a global was refused, in words.
pub fn reason_text(decision: Decision) -> String {
    match decision {
        Decision::HardDenied(why) => {
            format!("it is hard-denied ({why}) and no configuration can allow it")
        }
        _ => "it is not in the allowlist".to_string(),
    }
}

/// The message of an `UnsafeFileError`: what was refused, why, where from, and how to allow
/// it for someone who trusts the file: first the pack that covers it, if one that is not in
/// force does, then the single entry. `in_force` names the packs enabled now.
pub fn message(
    global: &Global,
    decision: Decision,
    caller: Option<&str>,
    missing: &[Global],
    in_force: &[&str],
) -> String {
    let mut text = format!(
        "pickleguard refused to load `{global}` from a pickle: {}.",
        reason_text(decision)
    );
    if let Some(caller) = caller {
        text.push_str(&format!(" The load was called from {caller}."));
    }
    if let Some(hint) = pack_hint(missing, in_force) {
        text.push(' ');
        text.push_str(&hint);
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(Global::to_string).collect();
        let mut value = std::env::var(ALLOW_VAR).unwrap_or_default();
        for name in &names {
            if !value.trim().is_empty() && !value.trim_end().ends_with(',') {
                value.push(',');
            }
            value.push_str(name);
        }
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        text.push_str(&format!(
            " If you trust this file, allow it with {ALLOW_VAR}={} in the environment, or call pickleguard.allow({}) before loading.",
            shell_quote(&value),
            quoted.join(", ")
        ));
    }
    text
}

/// Raises `UnsafeFileError(message)` with `module`, `name` and `reason` attributes.
pub fn raise(py: Python<'_>, global: &Global, decision: Decision, message: String) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let error = unsafe_file_error(py)?.call1((message.clone(),))?;
        error.setattr("module", global.module.as_str())?;
        error.setattr("name", global.name.as_str())?;
        error.setattr("reason", Outcome::of(decision).as_str())?;
        Ok(PyErr::from_value(error))
    };
    // If the class itself cannot be built, still refuse, with the same message.
    build().unwrap_or_else(|_| pyo3::exceptions::PyRuntimeError::new_err(message))
}

/// "It is in pack `sklearn`: PICKLEGUARD_PACKS=ml,sklearn ...", when one pack that is not in
/// force covers every missing spelling.
fn pack_hint(missing: &[Global], in_force: &[&str]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let covers = |pack: &&Pack| {
        !in_force.contains(&pack.name)
            && missing
                .iter()
                .all(|g| pack.find(&g.module, &g.name).is_some())
    };
    let pack = packs::PACKS.iter().copied().find(|pack| covers(pack))?;
    let mut names: Vec<&str> = in_force.to_vec();
    names.push(pack.name);
    Some(format!(
        "It is in pack `{}`: enable the pack with {PACKS_VAR}={} in the environment (or `packs = [\"{}\"]` in the config file).",
        pack.name,
        names.join(","),
        pack.name
    ))
}

/// Raises `UnsafeFileError(message)` for a code-bearing archive: `module` and `name` name the
/// loader, `reason` is `contains code`.
pub fn raise_code_archive(py: Python<'_>, loader: &Global, message: String) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let error = unsafe_file_error(py)?.call1((message.clone(),))?;
        error.setattr("module", loader.module.as_str())?;
        error.setattr("name", loader.name.as_str())?;
        error.setattr("reason", "contains code")?;
        Ok(PyErr::from_value(error))
    };
    build().unwrap_or_else(|_| pyo3::exceptions::PyRuntimeError::new_err(message))
}

fn shell_quote(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.,:-/".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The message of an `UnsafeFileError` for a reconstruction step that failed its rules: the
/// global, the opcode, the check and what it saw.
pub fn reconstruction_message(
    global: &Global,
    apply: &str,
    check: &str,
    detail: &str,
    caller: Option<&str>,
) -> String {
    let mut text = format!(
        "pickleguard refused to {apply} `{global}` while loading a pickle: it fails the `{check}` check ({detail})."
    );
    if let Some(caller) = caller {
        text.push_str(&format!(" The load was called from {caller}."));
    }
    text.push_str(
        " This check guards the process against forged library state and is not configurable.",
    );
    text
}

/// Logs and raises the refusal of a reconstruction step that failed its rules, in every mode:
/// a forged library state is never part of a genuine file, so warn mode refuses it too, as it
/// does hard-denied globals. Both unpicklers (pickleguard's and the wrapped pure-Python one)
/// refuse through here, so a refusal reads the same whichever one ran.
pub fn refuse_reconstruction(
    py: Python<'_>,
    global: &Global,
    apply: pickleguard_policy::reconstruct::Apply,
    violation: &pickleguard_policy::reconstruct::Violation,
) -> PyErr {
    let caller = crate::caller::find(py);
    let location = caller.as_ref().map(|c| c.location.as_str());
    let mode = crate::guard::get()
        .map(|guard| guard.mode())
        .unwrap_or_default();
    crate::events::reconstruction(
        global,
        apply.as_str(),
        violation.check,
        &violation.detail,
        mode,
        location,
    );
    let message = reconstruction_message(
        global,
        apply.as_str(),
        violation.check,
        &violation.detail,
        location,
    );
    raise_reconstruction(py, global, violation.check, message)
}

/// Raises `UnsafeFileError(message)` for a reconstruction refusal, with `module`, `name`,
/// `reason` (`reconstruction`) and `check` attributes.
pub fn raise_reconstruction(
    py: Python<'_>,
    global: &Global,
    check: &str,
    message: String,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let error = unsafe_file_error(py)?.call1((message.clone(),))?;
        error.setattr("module", global.module.as_str())?;
        error.setattr("name", global.name.as_str())?;
        error.setattr("reason", "reconstruction")?;
        error.setattr("check", check)?;
        Ok(PyErr::from_value(error))
    };
    build().unwrap_or_else(|_| pyo3::exceptions::PyRuntimeError::new_err(message))
}
