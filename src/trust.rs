//! Trusted IPC by identity: the code objects of multiprocessing's receiving ends, captured
//! when their modules are imported (see [`crate::import_watch`]), and the test of a load's
//! caller against them.
//!
//! A load is multiprocessing's own IPC only when the Python frame that called the unpickler
//! *is* one of those code objects: `Connection.recv`, `Queue.get`, `SimpleQueue.get`, the spawn
//! bootstrap, loky's process bootstrap. File names play no part, so program code cannot obtain
//! trust by living in a file called `multiprocessing/connection.py`, and a receiving end that
//! program code patches in later is not the captured one. A relay (loky's
//! `_reconstruct_wrapper`, which unpickles a cloudpickled task while its own channel's load is
//! running) passes trust on only when a receiving end called it.

use std::sync::Mutex;

use pyo3::prelude::*;

use crate::ffi;

/// Code objects captured at import, kept alive for the life of the process so a pointer
/// compared here always names the object captured.
struct Codes {
    receivers: Vec<Py<PyAny>>,
    relays: Vec<Py<PyAny>>,
}

/// Taken only with the GIL held, and never across a call into Python.
static CODES: Mutex<Codes> = Mutex::new(Codes {
    receivers: Vec::new(),
    relays: Vec::new(),
});

/// What a code object may do for trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A channel's receiving end: loads called from it are IPC.
    Receiver,
    /// Unpickles on behalf of the load that called it.
    Relay,
}

/// Records `code` (a code object) in `role`.
pub fn add(code: Bound<'_, PyAny>, role: Role) {
    let mut codes = CODES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let list = match role {
        Role::Receiver => &mut codes.receivers,
        Role::Relay => &mut codes.relays,
    };
    if !list.iter().any(|known| known.as_ptr() == code.as_ptr()) {
        list.push(code.unbind());
    }
}

/// Whether the running load was called by a receiving end: the innermost Python frame is one,
/// or is a relay whose callers up to a receiving end are all relays.
pub fn load_is_ipc(py: Python<'_>) -> bool {
    let mut frame = match ffi::current_frame(py) {
        Some(frame) => frame,
        None => return false,
    };
    loop {
        let Ok(code) = frame.getattr("f_code") else {
            return false;
        };
        match role_of(code.as_ptr()) {
            Some(Role::Receiver) => return true,
            Some(Role::Relay) => match frame.getattr("f_back") {
                Ok(back) if !back.is_none() => frame = back,
                _ => return false,
            },
            None => return false,
        }
    }
}

fn role_of(code: *mut pyo3::ffi::PyObject) -> Option<Role> {
    let codes = CODES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if codes.receivers.iter().any(|known| known.as_ptr() == code) {
        Some(Role::Receiver)
    } else if codes.relays.iter().any(|known| known.as_ptr() == code) {
        Some(Role::Relay)
    } else {
        None
    }
}
