//! libpython loaded after `main` starts (PyInstaller-style hosts): the `dlopen` interposer.
//!
//! A host that is not linked to libpython has no CPython when the shim's constructor runs; it
//! `dlopen`s libpython later, looks `Py_Initialize` up in that handle, and calls it. So the
//! shim defines `dlopen`. After a successful `dlopen` of an object that exports
//! `PySys_AddAuditHook` (or pulls in one that does), and before the host can call anything in
//! it, the shim loads the core exactly as its constructor would have.
//!
//! The interposer must not change what `dlopen` does. glibc resolves a bare library name
//! through the RPATH/RUNPATH of the object that called `dlopen`, and expands `$ORIGIN` to that
//! object's directory, and it finds the caller by the return address. So the entry point is a
//! naked function that asks [`route`] where to go and then *jumps* there with the caller's
//! registers and return address intact: straight to libc's `dlopen` (the caller stays the
//! caller), or to [`dlopen_then_check`] only for what cannot depend on the caller: an explicit
//! path (with a `/` and no `$`) while no CPython has been seen. A libpython opened by bare name
//! is noticed at the next `dlopen` instead (before `Py_Initialize` if the host loads anything
//! else first, otherwise with one line saying the process is not protected). Once the process
//! is protected, or known not to be protectable, every call goes straight to libc.
//!
//! Naked functions need Rust 1.88 and an assembly body per architecture; `build.rs` enables
//! this module (`pickleguard_shim_late_dlopen`) on x86_64 and aarch64 with such a compiler.
//! Without it, a libpython loaded late is not protected (the README says so).

use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::sys;

/// No CPython seen yet: explicit-path `dlopen`s are checked.
const WATCHING: u8 = 0;
/// A thread is loading the core for a libpython it just opened.
const LOADING: u8 = 1;
/// Protected, or reported as not protectable: `dlopen` is libc's alone.
const SETTLED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(WATCHING);

/// Called by the constructor's path: a CPython was found (protected or reported), so there is
/// nothing left to watch for.
pub fn settled() {
    STATE.store(SETTLED, Ordering::Release);
}

/// The interposed `dlopen`: computes the target with [`route`], then tail-jumps to it with the
/// original arguments and return address.
///
/// # Safety
/// Called by the host as `dlopen(path, flags)`, with the C calling convention.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(pickleguard_shim_cdylib, unsafe(export_name = "dlopen"))]
#[unsafe(naked)]
pub unsafe extern "C" fn interposed_dlopen(path: *const c_char, flags: c_int) -> *mut c_void {
    // On entry rsp is 8 modulo 16; two pushes and 8 bytes keep the call to `route` aligned.
    core::arch::naked_asm!(
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {route}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "jmp rax",
        route = sym route,
    )
}

/// See the x86_64 version.
///
/// # Safety
/// Called by the host as `dlopen(path, flags)`, with the C calling convention.
#[cfg(target_arch = "aarch64")]
#[cfg_attr(pickleguard_shim_cdylib, unsafe(export_name = "dlopen"))]
#[unsafe(naked)]
pub unsafe extern "C" fn interposed_dlopen(path: *const c_char, flags: c_int) -> *mut c_void {
    // Saves the frame pointer, the link register and both arguments, restores all four, and
    // branches (not calls), so the target returns to the host's own call site.
    core::arch::naked_asm!(
        "stp x29, x30, [sp, #-32]!",
        "mov x29, sp",
        "stp x0, x1, [sp, #16]",
        "bl {route}",
        "mov x16, x0",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "br x16",
        route = sym route,
    )
}

/// Where a `dlopen(path, flags)` call goes: libc's `dlopen`, or [`dlopen_then_check`].
extern "C" fn route(path: *const c_char, _flags: c_int) -> *const c_void {
    let real = sys::real_dlopen();
    if STATE.load(Ordering::Acquire) == SETTLED {
        return real;
    }
    arrived_unseen();
    if path.is_null() {
        return real;
    }
    // SAFETY: a non-null `dlopen` path is a NUL-terminated string (the host's contract).
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if !bytes.contains(&b'/') || bytes.contains(&b'$') {
        // Resolved relative to the caller: only libc may see this call.
        return real;
    }
    dlopen_then_check as *const c_void
}

/// A CPython that came in through a call the shim passed on unseen (a bare name, `$ORIGIN`):
/// the next `dlopen` is the first chance to notice it. If the host has not started it yet, it
/// is protected now; if it has, the core says in one line that this process is not protected.
fn arrived_unseen() {
    let errno = sys::errno();
    if sys::global_symbol(c"PySys_AddAuditHook").is_null() {
        sys::clear_dl_error();
    } else {
        protect_once();
    }
    sys::set_errno(errno);
}

/// `dlopen` of an explicit path, then: if it brought a CPython with audit hooks, protect it.
extern "C" fn dlopen_then_check(path: *const c_char, flags: c_int) -> *mut c_void {
    // SAFETY: forwarding the host's own arguments to libc's dlopen; for an explicit path
    // without `$`, which object calls it makes no difference.
    let handle = unsafe { sys::dlopen_real(path, flags) };
    if !handle.is_null() {
        let errno = sys::errno();
        if sys::symbol_in(handle, c"PySys_AddAuditHook").is_null() {
            // dlsym failing left an error for dlerror(); the host's dlopen succeeded.
            sys::clear_dl_error();
        } else {
            protect_once();
        }
        sys::set_errno(errno);
    }
    handle
}

/// Protects the late CPython on the first thread that gets here; any other waits until that
/// is done, so no host thread can start Python before the hook is in place.
fn protect_once() {
    match STATE.compare_exchange(WATCHING, LOADING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            crate::protect_late_python();
            STATE.store(SETTLED, Ordering::Release);
        }
        Err(_) => {
            while STATE.load(Ordering::Acquire) == LOADING {
                sys::yield_now();
            }
        }
    }
}
