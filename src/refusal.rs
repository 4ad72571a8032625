//! `pickleguard.UnsafeFileError` and the messages users see.

use pickleguard_policy::settings::vars::ALLOW as ALLOW_VAR;
use pickleguard_policy::{Decision, Global, Outcome};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The exception class, created on first use so that nothing is imported at start-up.
static UNSAFE_FILE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pickleguard.UnsafeFileError`, a subclass of `pickle.UnpicklingError`.
pub fn unsafe_file_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UNSAFE_FILE_ERROR
        .get_or_try_init(py, || {
            let base = py.import("_pickle")?.getattr("UnpicklingError")?;
            let base = base.cast_into::<PyType>()?;
            let class = PyErr::new_type(
                py,
                c"pickleguard.UnsafeFileError",
                Some(c"A pickle asked for a global that pickleguard's policy does not allow.\n\nAttributes: module, name, reason."),
                Some(&base),
                None,
            )?;
            // Class-level defaults keep `err.module` readable when a framework re-raises the
            // error from its message alone (torch's DataLoader does). Set after creation: a
            // dict passed to pyo3 0.29's `new_type` is released before CPython reads it.
            for attribute in ["module", "name", "reason"] {
                class.bind(py).setattr(attribute, py.None())?;
            }
            Ok::<_, PyErr>(class)
        })
        .map(|class| class.bind(py))
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
/// it for someone who trusts the file.
pub fn message(
    global: &Global,
    decision: Decision,
    caller: Option<&str>,
    missing: &[Global],
) -> String {
    let mut text = format!(
        "pickleguard refused to load `{global}` from a pickle: {}.",
        reason_text(decision)
    );
    if let Some(caller) = caller {
        text.push_str(&format!(" The load was called from {caller}."));
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
