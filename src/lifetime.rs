//! Every lifetime of the interpreter is protected, not only the first.
//!
//! A host may call `Py_FinalizeEx` and then `Py_Initialize` again. CPython clears every C audit
//! hook while it finalises (raising `cpython._PySys_ClearAuditHooks` just before), so the next
//! interpreter would run without the guard. On that event the core asks CPython, with
//! `Py_AtExit`, to call [`reinstall`] at the very end of the same finalisation. By then the
//! hook list is empty and the runtime is no longer initialised, which is exactly when
//! `PySys_AddAuditHook` may be called again; CPython keeps the list across the next
//! `Py_Initialize`. A process that never initialises again only carries one unused entry.
//!
//! The `pickleguard` built-in module is registered again too if the table of built-in modules
//! lost it (CPython 3.8-3.13 keep it).
//!
//! [`hook_live`] says whether the hook is registered for the interpreter running now, so
//! `pickleguard.is_active()` tells the truth if re-registering ever fails, and that failure is
//! reported in one stderr line.

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{ffi, hook, raw_allocator};

/// Whether an interpreter was finalised in this process: the running one (if any) is a later
/// lifetime.
static LATER_LIFETIME: AtomicBool = AtomicBool::new(false);

/// Whether the running interpreter is not the process's first. pyo3 keeps its classes in
/// process-wide statics made by the first interpreter, so pickleguard's unpickler and the
/// pure-Python wrappers (both pyo3 classes) are only installed in the first lifetime; later
/// ones keep the stock unpickler, whose globals the audit hook still checks.
pub fn later_lifetime() -> bool {
    LATER_LIFETIME.load(Ordering::Acquire)
}

/// Whether the audit hook is in CPython's list for the current (or next) interpreter.
static HOOK_LIVE: AtomicBool = AtomicBool::new(false);

/// Records that the hook was registered.
pub fn hook_registered() {
    HOOK_LIVE.store(true, Ordering::Release);
}

/// Whether pickles loaded now go through the hook.
pub fn hook_live() -> bool {
    HOOK_LIVE.load(Ordering::Acquire)
}

/// Called from the hook on `cpython._PySys_ClearAuditHooks`: the hook list is about to be
/// freed, at the end of this interpreter's life.
///
/// # Safety
/// The caller must hold the GIL, in the audit hook for that event.
pub unsafe fn hooks_cleared() {
    HOOK_LIVE.store(false, Ordering::Release);
    LATER_LIFETIME.store(true, Ordering::Release);
    // SAFETY: the runtime is finalising and this thread holds the GIL (caller's contract).
    if !unsafe { ffi::at_exit(reinstall) } {
        not_protected_later("CPython's Py_AtExit table is full");
    }
}

/// Runs at the end of `Py_FinalizeEx`, after the hook list was freed: puts the hook back for
/// the next `Py_Initialize` of this process.
extern "C" fn reinstall() {
    let outcome = catch_unwind(|| {
        if ffi::interpreter_initialized() {
            return Err("the interpreter was still initialised at exit");
        }
        // SAFETY: the runtime is finalised (checked above) and this is the thread that
        // finalised it: the pre-initialisation context PySys_AddAuditHook documents.
        if !unsafe { raw_allocator::add_audit_hook_recording_entry(hook::audit_hook) } {
            return Err("CPython refused the audit hook (PySys_AddAuditHook failed)");
        }
        hook_registered();
        // CPython 3.8-3.13 keep the extended table of built-in modules across lifetimes; one
        // that resets it gets `pickleguard` back here.
        // SAFETY: between lifetimes, on the finalising thread (as above).
        if !unsafe { ffi::inittab_has(c"pickleguard") }
            // SAFETY: as above; the name is static.
            && !unsafe { ffi::append_inittab(c"pickleguard", ffi::module_init()) }
        {
            ffi::stderr_line(&format!(
                "pickleguard: {}",
                crate::Error::ModuleNotRegistered
            ));
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(why)) => not_protected_later(why),
        Err(_) => not_protected_later("internal error while re-registering the audit hook"),
    }
}

/// The one line for a process whose later interpreters cannot be protected.
fn not_protected_later(why: &str) {
    ffi::stderr_line(&format!(
        "pickleguard: {why}; an interpreter initialised again in this process is NOT protected against unsafe pickles"
    ));
}
