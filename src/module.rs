//! The `pickleguard` module, registered with `PyImport_AppendInittab` so `import pickleguard`
//! works in every preloaded process without touching `sys.path`.

use pickleguard_policy::{Global, Mode, Source};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use pyo3::exceptions::PyPermissionError;

use crate::{caller, events, guard, lifetime, refusal, Error};

#[pymodule]
fn pickleguard(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("UnsafeFileError", refusal::unsafe_file_error(m.py())?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(allow, m)?)?;
    m.add_function(wrap_pyfunction!(allowed, m)?)?;
    m.add_function(wrap_pyfunction!(is_active, m)?)?;
    m.add_function(wrap_pyfunction!(mode, m)?)?;
    m.add_function(wrap_pyfunction!(activate_safe_ml_environment, m)?)?;
    m.add_function(wrap_pyfunction!(deactivate_safe_ml_environment, m)?)?;
    // Only in the process's first interpreter: pyo3's classes belong to it (see
    // `lifetime::later_lifetime`).
    if !crate::lifetime::later_lifetime() {
        crate::unpickler::add_to(m)?;
    }
    Ok(())
}

/// allow(*names)
/// --
///
/// Allows exact globals, each written `module.name` or `module:qualname`. All or none are
/// added: a malformed or hard-denied name raises ValueError and changes nothing.
#[pyfunction]
#[pyo3(signature = (*names))]
fn allow(names: &Bound<'_, PyTuple>) -> PyResult<()> {
    let guard = unlocked(names.py(), "pickleguard.allow()")?;
    let globals = parse_all(names.iter())?;
    guard.allow_all(&globals, Source::Call)?;
    Ok(())
}

/// allowed()
/// --
///
/// Every allowed global, sorted.
#[pyfunction]
fn allowed() -> PyResult<Vec<String>> {
    Ok(guard::get()?.allowed())
}

/// is_active()
/// --
///
/// Whether pickles are being checked: the audit hook is registered for this interpreter and
/// the mode is `enforce` or `warn`.
#[pyfunction]
fn is_active() -> PyResult<bool> {
    Ok(lifetime::hook_live() && guard::get()?.mode() != Mode::Off)
}

/// mode()
/// --
///
/// The mode in force: "enforce", "warn" or "off".
#[pyfunction]
fn mode() -> PyResult<String> {
    Ok(guard::get()?.mode().to_string())
}

/// activate_safe_ml_environment(also_allow=None)
/// --
///
/// Enforces the allowlist, with the globals in `also_allow` (an iterable of `module.name`
/// strings) added to it; fickling's function of the same name.
#[pyfunction]
#[pyo3(signature = (also_allow=None))]
fn activate_safe_ml_environment(
    py: Python<'_>,
    also_allow: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let mut guard = guard::get()?;
    if let Some(also_allow) = also_allow.filter(|a| !a.is_none()) {
        guard = unlocked(py, "activate_safe_ml_environment(also_allow=...)")?;
        let globals = if also_allow.is_instance_of::<PyString>() {
            parse_all(std::iter::once(also_allow.clone()))?
        } else {
            parse_all(also_allow.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
        };
        guard.allow_all(&globals, Source::Call)?;
    }
    guard.set_mode(Mode::Enforce);
    events::mode_changed(Mode::Enforce, caller_location(py).as_deref());
    Ok(())
}

/// deactivate_safe_ml_environment()
/// --
///
/// Stops checking pickles in this process; fickling's function of the same name.
#[pyfunction]
fn deactivate_safe_ml_environment(py: Python<'_>) -> PyResult<()> {
    let guard = unlocked(py, "deactivate_safe_ml_environment()")?;
    guard.set_mode(Mode::Off);
    events::unprotected(
        Mode::Off,
        &format!(
            "deactivate_safe_ml_environment() turned the guard off{}",
            caller_location(py)
                .map(|c| format!(" at {c}"))
                .unwrap_or_default()
        ),
    );
    Ok(())
}

/// The guard, if Python code may weaken it; otherwise logs the attempt and refuses it.
fn unlocked(py: Python<'_>, action: &str) -> PyResult<&'static guard::Guard> {
    let guard = guard::get()?;
    if guard.locked {
        events::locked(action, caller_location(py).as_deref());
        return Err(PyPermissionError::new_err(format!(
            "pickleguard: {action} is refused: the policy is locked (PICKLEGUARD_LOCK or `lock = true`)"
        )));
    }
    Ok(guard)
}

fn caller_location(py: Python<'_>) -> Option<String> {
    caller::find(py).map(|caller| caller.location)
}

fn parse_all<'py>(items: impl IntoIterator<Item = Bound<'py, PyAny>>) -> PyResult<Vec<Global>> {
    items
        .into_iter()
        .map(|item| {
            let text: String = item.extract().map_err(|_| {
                Error::NotAString(item.repr().map_or_else(|_| "?".into(), |r| r.to_string()))
            })?;
            Ok(Global::parse(&text).map_err(Error::from)?)
        })
        .collect()
}
