//! Every libc call the shim makes. Nothing here allocates: the constructor runs in every process
//! the preload reaches, before `main`.

use core::ffi::{c_int, c_void, CStr};

/// Looks `symbol` up in the process's global scope (the executable and what it linked).
pub fn global_symbol(symbol: &CStr) -> *mut c_void {
    // SAFETY:
    // - `symbol` is NUL-terminated by construction of `CStr`.
    // - RTLD_DEFAULT is a valid pseudo-handle for dlsym.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, symbol.as_ptr()) }
}

/// The path of the object file that contains `address`, as the dynamic loader knows it.
pub fn object_path_of(address: *const c_void) -> Option<&'static CStr> {
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY:
    // - `info` is valid, writable memory of the right type.
    // - dladdr only reads `address`; any value is accepted.
    let found = unsafe { libc::dladdr(address, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr returned non-zero, so it filled `info` in.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is a NUL-terminated string owned by the loader for as long as the
    // object stays loaded; the shim is never unloaded.
    Some(unsafe { CStr::from_ptr(info.dli_fname) })
}

/// The value of an environment variable, if set and non-empty.
pub fn env(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; constructors run before other threads exist, so no
    // one changes the environment concurrently.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string from the process environment.
    let value = unsafe { CStr::from_ptr(value) };
    (!value.is_empty()).then_some(value)
}

/// A loaded shared library.
pub struct Library(*mut c_void);

impl Library {
    /// `dlopen`s `path` with every symbol bound now, so a missing one fails here, not later.
    pub fn open(path: &CStr) -> Result<Library, &'static CStr> {
        // SAFETY: `path` is NUL-terminated. The core's own constructors are Rust runtime set-up
        // only.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            Err(last_dl_error())
        } else {
            Ok(Library(handle))
        }
    }

    /// The address of `symbol` in this library.
    pub fn symbol(&self, symbol: &CStr) -> Result<*mut c_void, &'static CStr> {
        // SAFETY: the handle came from a successful dlopen and is never closed.
        let address = unsafe { libc::dlsym(self.0, symbol.as_ptr()) };
        if address.is_null() {
            Err(last_dl_error())
        } else {
            Ok(address)
        }
    }
}

fn last_dl_error() -> &'static CStr {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call;
    // the shim uses it at once, before calling dl* again.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        c"unknown dynamic loader error"
    } else {
        // SAFETY: see above.
        unsafe { CStr::from_ptr(message) }
    }
}

/// Calls the core's `pickleguard_install`.
///
/// # Safety
/// `address` must be the address of a function with the signature `extern "C" fn() -> c_int`.
pub unsafe fn call_install(address: *mut c_void) -> c_int {
    // SAFETY: the caller guarantees the signature.
    let install: extern "C" fn() -> c_int = unsafe { core::mem::transmute(address) };
    install()
}

/// Writes `parts` to standard error as one line, with a single `write(2)` where it fits.
pub fn stderr_line(parts: &[&[u8]]) {
    let mut line = [0u8; 1024];
    let mut len = 0;
    for part in parts.iter().chain([&b"\n"[..]].iter()) {
        let take = part.len().min(line.len() - len);
        line[len..len + take].copy_from_slice(&part[..take]);
        len += take;
    }
    // SAFETY: `line[..len]` is initialised memory; fd 2 may be closed, and then write fails
    // harmlessly.
    let _ = unsafe { libc::write(2, line.as_ptr().cast::<c_void>(), len) };
}
