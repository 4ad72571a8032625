//! The CPython entry points the core needs that pyo3-ffi does not declare for the stable ABI,
//! and the thin unsafe wrappers around them. Everything here is callable before
//! `Py_Initialize`, except where a wrapper says otherwise.

use std::ffi::{c_char, c_int, c_void, CStr};

use pyo3::ffi::PyObject;
use pyo3::prelude::*;

/// `Py_AuditHookFunction`.
pub type AuditHook = unsafe extern "C" fn(
    event: *const c_char,
    args: *mut PyObject,
    user_data: *mut c_void,
) -> c_int;

/// `PyObject *(*)(void)`, a module's `PyInit_*` function.
pub type ModuleInit = unsafe extern "C" fn() -> *mut PyObject;

/// `PyMemAllocatorEx` from `cpython/pymem.h`; its layout is the same in CPython 3.8-3.13.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemAllocator {
    pub ctx: *mut c_void,
    pub malloc: Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>,
    pub calloc:
        Option<unsafe extern "C" fn(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void>,
    pub realloc: Option<
        unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, new_size: usize) -> *mut c_void,
    >,
    pub free: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void)>,
}

/// `PYMEM_DOMAIN_RAW`: the domain `PySys_AddAuditHook` allocates its hook entries from.
const PYMEM_DOMAIN_RAW: c_int = 0;

extern "C" {
    fn PySys_AddAuditHook(hook: AuditHook, user_data: *mut c_void) -> c_int;
    fn PyImport_AppendInittab(name: *const c_char, init: Option<ModuleInit>) -> c_int;
    fn Py_IsInitialized() -> c_int;
    fn PyMem_GetAllocator(domain: c_int, allocator: *mut MemAllocator);
    fn PyMem_SetAllocator(domain: c_int, allocator: *mut MemAllocator);
    fn PyEval_GetFrame() -> *mut PyObject;
    // Exported by every CPython >= 3.3 with this signature; in the limited API only from 3.10.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut PyObject,
        size: *mut pyo3::ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// Whether the interpreter has been initialised. Safe at any time.
pub fn interpreter_initialized() -> bool {
    // SAFETY: Py_IsInitialized only reads a runtime flag and may be called at any time.
    unsafe { Py_IsInitialized() != 0 }
}

/// Registers a C audit hook.
///
/// # Safety
/// Must be called before `Py_Initialize`, from the thread that will initialise Python.
pub unsafe fn add_audit_hook(hook: AuditHook) -> bool {
    // SAFETY: the caller guarantees the pre-initialisation context, where CPython documents
    // PySys_AddAuditHook as callable; `hook` lives as long as the process.
    unsafe { PySys_AddAuditHook(hook, std::ptr::null_mut()) == 0 }
}

/// Registers a built-in module so `import name` finds it without touching `sys.path`.
///
/// # Safety
/// Must be called before `Py_Initialize`.
pub unsafe fn append_inittab(name: &'static CStr, init: ModuleInit) -> bool {
    // SAFETY: the caller guarantees the pre-initialisation context; `name` is static, as
    // CPython requires (it keeps the pointer).
    unsafe { PyImport_AppendInittab(name.as_ptr(), Some(init)) == 0 }
}

/// The raw-domain allocator in force now.
pub fn raw_allocator() -> MemAllocator {
    let mut allocator = std::mem::MaybeUninit::<MemAllocator>::uninit();
    // SAFETY: PyMem_GetAllocator fills the struct in completely; CPython documents it as
    // callable before and after initialisation.
    unsafe {
        PyMem_GetAllocator(PYMEM_DOMAIN_RAW, allocator.as_mut_ptr());
        allocator.assume_init()
    }
}

/// Installs `allocator` for the raw domain.
///
/// # Safety
/// Before initialisation, any complete allocator may be installed. After it, `allocator` must
/// wrap the one in force, so blocks allocated earlier are still freed by their own allocator.
pub unsafe fn set_raw_allocator(mut allocator: MemAllocator) {
    // SAFETY: CPython copies the struct; the caller upholds the wrapping contract.
    unsafe { PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &mut allocator) }
}

/// The Python frame executing now, if Python code is running.
pub fn current_frame(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    // SAFETY:
    // - `py` proves the GIL is held, which is all PyEval_GetFrame needs.
    // - It returns a borrowed reference or null, which `from_borrowed_ptr_or_opt` expects.
    unsafe { Bound::from_borrowed_ptr_or_opt(py, PyEval_GetFrame()) }
}

/// The UTF-8 text of a `str` without copying it (CPython caches it in the object, and for ASCII
/// strings it is the object's own data). `None` for anything else, or a `str` that cannot be
/// encoded (lone surrogates).
pub fn str_view<'a>(object: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    if !object.is_instance_of::<pyo3::types::PyString>() {
        return None;
    }
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY:
    // - `object` is a live `str` (checked above), and `Bound` proves the GIL is held.
    // - The returned buffer belongs to the object and lives as long as it does, which the
    //   `'a` borrow of `object` guarantees.
    let data = unsafe { PyUnicode_AsUTF8AndSize(object.as_ptr(), &mut size) };
    if data.is_null() {
        // A failed encoding left an exception set; the caller refuses the global instead.
        // SAFETY: the GIL is held.
        unsafe { pyo3::ffi::PyErr_Clear() };
        return None;
    }
    let len = usize::try_from(size).ok()?;
    // SAFETY: CPython returned `len` initialised bytes at `data`, owned by `object`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    // SAFETY: PyUnicode_AsUTF8AndSize returns valid UTF-8 or fails (handled above).
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Writes one line to standard error with a single `write(2)`: no locks, so it is safe in a
/// child forked while another thread was logging.
pub fn stderr_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // SAFETY: `bytes` is initialised memory of the given length; a closed fd 2 only makes
    // write fail, which is ignored on purpose.
    let _ = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" {
    /// Defined by `#[pymodule] fn pickleguard` in this library.
    fn PyInit_pickleguard() -> *mut PyObject;
}

/// The `pickleguard` module's init function, for the inittab.
pub fn module_init() -> ModuleInit {
    PyInit_pickleguard
}

/// The running CPython's version, such as `3.11.7`. Safe before initialisation.
pub fn python_version() -> String {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string and may be called before
    // Py_Initialize.
    let full = unsafe { CStr::from_ptr(pyo3::ffi::Py_GetVersion()) };
    let full = full.to_string_lossy();
    full.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `PyInterpreterState *(*)(void)`: `PyInterpreterState_Get` (3.9+, `_PyInterpreterState_Get`
/// in 3.8) and `PyInterpreterState_Main`.
type InterpreterFn = unsafe extern "C" fn() -> *mut c_void;

/// Looks a CPython function up among the symbols the process has loaded.
fn interpreter_fn(name: &CStr) -> Option<InterpreterFn> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the global symbol scope, where
    // the running CPython's exported functions are (a shared libpython, or an executable
    // linked with its symbols exported).
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if address.is_null() {
        return None;
    }
    // SAFETY: the symbols looked up here are CPython functions taking no argument and
    // returning a `PyInterpreterState *` in every version 3.8-3.13.
    Some(unsafe { std::mem::transmute::<*mut c_void, InterpreterFn>(address) })
}

/// Whether the calling thread runs in the main interpreter, not a subinterpreter. `false` if
/// the interpreter cannot tell.
pub fn in_main_interpreter(_py: Python<'_>) -> bool {
    static FUNCTIONS: std::sync::OnceLock<Option<(InterpreterFn, InterpreterFn)>> =
        std::sync::OnceLock::new();
    let functions = FUNCTIONS.get_or_init(|| {
        let current = interpreter_fn(c"PyInterpreterState_Get")
            .or_else(|| interpreter_fn(c"_PyInterpreterState_Get"))?;
        Some((current, interpreter_fn(c"PyInterpreterState_Main")?))
    });
    let Some((current, main)) = functions else {
        return false;
    };
    // SAFETY: `_py` proves the GIL is held, so this thread has a current interpreter, which
    // is all both functions need; they only read runtime state.
    unsafe { current() == main() }
}
