//! `libpickleguard.so`, the library users put in `LD_PRELOAD`.
//!
//! It references no Python symbol, so it loads into every process (bash, coreutils, compilers)
//! unchanged. Its constructor asks the dynamic loader whether the process has a CPython
//! runtime with audit hooks (`PySys_AddAuditHook`). Only then does it `dlopen` the pyo3 core
//! that lies next to it (or at `PICKLEGUARD_CORE`) and call the core's install function, still
//! before `Py_Initialize`. Anywhere else it returns at once and prints nothing.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sys;

use core::ffi::{c_void, CStr};

/// File name of the core, looked for in the shim's own directory.
const CORE_FILE: &[u8] = b"libpickleguard_core.so";
/// The shim's version, kept in the file so `pickleguard doctor` can read which shim an
/// `LD_PRELOAD` entry is without loading it.
#[used]
static VERSION_MARK: &str = concat!("pickleguard-shim-version=", env!("CARGO_PKG_VERSION"), ";");
/// Longest core path the shim builds (PATH_MAX).
const PATH_CAPACITY: usize = 4096;

#[ctor::ctor(unsafe)]
fn protect_python_process() {
    // A panic must never escape into the host's start-up code; there is nothing to do with it.
    let _ = std::panic::catch_unwind(load_core_if_python);
}

fn load_core_if_python() {
    if sys::global_symbol(c"PySys_AddAuditHook").is_null() {
        if !sys::global_symbol(c"Py_GetVersion").is_null() {
            not_protected(&[b"this Python has no audit hooks (CPython < 3.8)"]);
        }
        return;
    }
    let mut buffer = [0u8; PATH_CAPACITY];
    let Some(path) = core_path(&mut buffer) else {
        not_protected(&[b"the path of the core library is too long"]);
        return;
    };
    let path_bytes = path.to_bytes();
    let library = match sys::Library::open(path) {
        Ok(library) => library,
        Err(why) => {
            not_protected(&[b"cannot load ", path_bytes, b": ", why.to_bytes()]);
            return;
        }
    };
    let install = match library.symbol(c"pickleguard_install") {
        Ok(address) => address,
        Err(why) => {
            not_protected(&[path_bytes, b" is not a pickleguard core: ", why.to_bytes()]);
            return;
        }
    };
    // SAFETY: `pickleguard_install` is defined by the core as `extern "C" fn() -> c_int`.
    // The core reports its own failures, so the status is not needed here.
    let _status = unsafe { sys::call_install(install) };
}

/// `PICKLEGUARD_CORE`, or `libpickleguard_core.so` in the directory the shim was loaded from.
fn core_path(buffer: &mut [u8; PATH_CAPACITY]) -> Option<&CStr> {
    let mut len = 0;
    let mut push = |bytes: &[u8], buffer: &mut [u8; PATH_CAPACITY]| -> Option<()> {
        let end = len + bytes.len();
        // Leave room for the NUL terminator.
        buffer.get_mut(len..end)?.copy_from_slice(bytes);
        (end < PATH_CAPACITY).then_some(())?;
        len = end;
        Some(())
    };
    if let Some(explicit) = sys::env(c"PICKLEGUARD_CORE") {
        push(explicit.to_bytes(), buffer)?;
    } else {
        let own = sys::object_path_of(protect_python_process as *const c_void)
            .map(CStr::to_bytes)
            .unwrap_or_default();
        if let Some(slash) = own.iter().rposition(|&b| b == b'/') {
            push(&own[..=slash], buffer)?;
        }
        push(CORE_FILE, buffer)?;
    }
    let end = len;
    buffer[end] = 0;
    CStr::from_bytes_with_nul(&buffer[..=end]).ok()
}

fn not_protected(why: &[&[u8]]) {
    let mut parts: [&[u8]; 8] = [b""; 8];
    parts[0] = b"pickleguard: ";
    let count = why.len().min(parts.len() - 2);
    parts[1..=count].copy_from_slice(&why[..count]);
    parts[count + 1] = b"; this process is NOT protected against unsafe pickles";
    sys::stderr_line(&parts[..count + 2]);
}
