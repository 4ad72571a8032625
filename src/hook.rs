//! The C audit hook: the one place CPython calls into the core while a program runs.
//!
//! CPython calls it for every audit event of the process. It compares the event name byte by
//! byte and returns at the first difference, so every event other than `pickle.find_class`
//! and `import` costs a few comparisons: no allocation, no lock, no Python object touched. An
//! `import` event (a module not imported yet) costs a few string comparisons more, unless the
//! module is one that [`import_watch`] acts on.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pickleguard_policy::{Decision, Global, Mode, Source};
use pyo3::ffi::PyObject;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::{caller, events, ffi, guard, import_watch, lifetime, raw_allocator, refusal, resolve};

const FIND_CLASS: &[u8] = b"pickle.find_class\0";
const CLEAR_HOOKS: &[u8] = b"cpython._PySys_ClearAuditHooks\0";
const IMPORT: &[u8] = b"import\0";

/// The registered `Py_AuditHookFunction`.
///
/// # Safety
/// Called by CPython only, with the GIL held, a NUL-terminated `event` and a tuple `args`.
pub unsafe extern "C" fn audit_hook(
    event: *const c_char,
    args: *mut PyObject,
    _user_data: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a NUL-terminated event name.
    if unsafe { event_is(event, FIND_CLASS) } {
        // SAFETY: audit hooks run with the GIL held.
        let py = unsafe { Python::assume_attached() };
        return on_find_class(py, args);
    }
    // SAFETY: CPython passes a NUL-terminated event name.
    if unsafe { event_is(event, IMPORT) } {
        // SAFETY: audit hooks run with the GIL held.
        let py = unsafe { Python::assume_attached() };
        // SAFETY: CPython passes the event's argument tuple as a borrowed reference (or null).
        let args = unsafe { Bound::from_borrowed_ptr_or_opt(py, args) };
        import_watch::on_import(py, args);
        return 0;
    }
    // SAFETY: CPython passes a NUL-terminated event name.
    if unsafe { event_is(event, CLEAR_HOOKS) } {
        // SAFETY: this is the hook for that event, with the GIL held.
        unsafe { raw_allocator::before_hook_list_freed() };
        // SAFETY: as above.
        unsafe { lifetime::hooks_cleared() };
    }
    0
}

/// Compares a C string with `expected` (which ends in NUL), stopping at the first difference.
///
/// # Safety
/// `event` must be a NUL-terminated string.
unsafe fn event_is(event: *const c_char, expected: &[u8]) -> bool {
    for (offset, &byte) in expected.iter().enumerate() {
        // SAFETY: every earlier byte matched a non-NUL byte of `expected`, so the string has
        // not ended before `offset`.
        if unsafe { *event.add(offset) } as u8 != byte {
            return false;
        }
    }
    true
}

/// Fails closed: any error or panic refuses the global.
#[inline(never)]
fn on_find_class(py: Python<'_>, args: *mut PyObject) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: CPython passes the event's argument tuple as a borrowed reference.
        let args = unsafe { Bound::from_borrowed_ptr_or_opt(py, args) };
        check_find_class(py, args)
    }));
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            err.restore(py);
            -1
        }
        Err(_) => {
            // SAFETY: the GIL is held; the exception type and message are static.
            unsafe {
                pyo3::ffi::PyErr_SetString(
                    pyo3::ffi::PyExc_RuntimeError,
                    c"pickleguard: internal error while checking a pickle global; it was refused"
                        .as_ptr(),
                )
            };
            -1
        }
    }
}

fn check_find_class(py: Python<'_>, args: Option<Bound<'_, PyAny>>) -> PyResult<()> {
    let guard = guard::get()?;
    let mode = guard.mode();
    if mode == Mode::Off {
        return Ok(());
    }
    let args = args.ok_or_else(|| refused_args(py, "no arguments"))?;
    let args = args
        .cast_into::<PyTuple>()
        .map_err(|_| refused_args(py, "arguments are not a tuple"))?;
    if args.len() != 2 {
        return Err(refused_args(py, "expected (module, name)"));
    }
    let (module, name) = (args.get_borrowed_item(0)?, args.get_borrowed_item(1)?);
    let (Some(module), Some(name)) = (ffi::str_view(&module), ffi::str_view(&name)) else {
        return Err(refused_args(py, "module and name must be str"));
    };
    let decision = guard.decide(module, name);
    let recording = guard
        .recorder
        .as_ref()
        .is_some_and(|recorder| recorder.first_time(module, name));
    if let Decision::Allowed(source) = decision {
        // A pack entry is curated; an operator's entry is judged once by what it resolves to.
        let settled = matches!(source, Source::Pack(_)) || resolve::known_clean(module, name);
        if settled && !recording {
            return Ok(());
        }
    }
    slow_path(
        py,
        guard,
        mode,
        Global::new(module, name),
        decision,
        recording,
    )
}

/// A global that is refused, warned about, trusted as IPC, or recorded: rare, so kept out of
/// line, away from the path every allowed global takes.
#[cold]
#[inline(never)]
fn slow_path(
    py: Python<'_>,
    guard: &guard::Guard,
    mode: Mode,
    global: Global,
    decision: Decision,
    recording: bool,
) -> PyResult<()> {
    let caller = caller::find(py);
    let location = caller.as_ref().map(|c| c.location.as_str());
    let trusted_ipc = !matches!(decision, Decision::Allowed(_))
        && guard.trust_ipc
        && caller.as_ref().is_some_and(|c| c.is_ipc);
    let decision = resolved(py, mode, &global, decision, trusted_ipc);
    if let (true, Some(recorder)) = (recording, &guard.recorder) {
        recorder.write(&global, decision, trusted_ipc, location);
        events::recorded(&global, decision, mode, location);
    }
    match decision {
        Decision::Allowed(_) => Ok(()),
        _ if trusted_ipc => {
            events::trusted_ipc(&global, decision, mode, location);
            Ok(())
        }
        Decision::NotAllowed if mode == Mode::Warn => {
            events::warned(&global, decision, location);
            Ok(())
        }
        _ => {
            events::blocked(&global, decision, mode, location);
            // Nothing to allow for a hard-denied global, even one only its resolution denies.
            let missing = match decision {
                Decision::HardDenied(_) => Vec::new(),
                _ => guard.missing(&global.module, &global.name),
            };
            let in_force = guard.pack_names();
            let message = refusal::message(&global, decision, location, &missing, &in_force);
            Err(refusal::raise(py, &global, decision, message))
        }
    }
}

/// Before a global that no pack covers runs — one `warn` mode lets through, or one an
/// operator allowed — judges what it resolves to: an alias of a hard-denied object is
/// hard-denied too. An allowed global that resolves cleanly is not judged again.
fn resolved(
    py: Python<'_>,
    mode: Mode,
    global: &Global,
    decision: Decision,
    trusted_ipc: bool,
) -> Decision {
    let judge = match decision {
        Decision::NotAllowed => mode == Mode::Warn,
        Decision::Allowed(source) => !matches!(source, Source::Pack(_)),
        Decision::HardDenied(_) => false,
    };
    if !judge || trusted_ipc {
        return decision;
    }
    match resolve::hard_denied(py, &global.module, &global.name) {
        Some(reason) => Decision::HardDenied(reason),
        None => {
            if matches!(decision, Decision::Allowed(_)) {
                resolve::mark_clean(&global.module, &global.name);
            }
            decision
        }
    }
}

fn refused_args(py: Python<'_>, why: &str) -> PyErr {
    ffi::raised_runtime_error(
        py,
        &format!("pickleguard refused a pickle global it could not read ({why})"),
    )
}
