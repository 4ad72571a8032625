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
    // Exported by every CPython >= 3.8; pyo3-ffi leaves it out of the stable ABI it declares.
    fn PySys_Audit(event: *const c_char, format: *const c_char, ...) -> c_int;
    fn Py_AtExit(func: extern "C" fn()) -> c_int;
    fn PyInterpreterState_GetDict(interp: *mut c_void) -> *mut PyObject;
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

/// Asks CPython to call `func` at the very end of `Py_FinalizeEx`, after the audit hooks are
/// cleared and the interpreter is gone. Registrations are consumed by that finalisation.
///
/// # Safety
/// The interpreter must be initialised (or finalising) and the caller must hold the GIL.
pub unsafe fn at_exit(func: extern "C" fn()) -> bool {
    // SAFETY: the caller guarantees a live runtime; `func` is a plain C function that lives as
    // long as the process (the core is never unloaded).
    unsafe { Py_AtExit(func) == 0 }
}

/// `PyInterpreterState *PyInterpreterState_Get(void)`: public from 3.9, `_`-prefixed in 3.8.
type InterpreterGet = unsafe extern "C" fn() -> *mut c_void;

/// The getter for the current interpreter, looked up once by name (3.8 exports it under its
/// private name only, so the core cannot link to either name directly).
fn interpreter_getter() -> Option<InterpreterGet> {
    use std::sync::atomic::{AtomicPtr, Ordering};
    static GETTER: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let mut address = GETTER.load(Ordering::Acquire);
    if address.is_null() {
        for name in [c"PyInterpreterState_Get", c"_PyInterpreterState_Get"] {
            // SAFETY: `name` is NUL-terminated and RTLD_DEFAULT is a valid pseudo-handle.
            address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            if !address.is_null() {
                break;
            }
        }
        if address.is_null() {
            return None;
        }
        GETTER.store(address, Ordering::Release);
    }
    // SAFETY: both names are CPython's `PyInterpreterState *(void)` getter.
    Some(unsafe { std::mem::transmute::<*mut c_void, InterpreterGet>(address) })
}

/// Whether CPython's table of built-in modules (`PyImport_Inittab`, which
/// `PyImport_AppendInittab` extends) has a module called `name`.
///
/// # Safety
/// No other thread may change the table meanwhile: call it between interpreter lifetimes, on
/// the thread that finalised the last one.
pub unsafe fn inittab_has(name: &CStr) -> bool {
    // SAFETY: the symbol name is NUL-terminated and RTLD_DEFAULT is a valid pseudo-handle.
    // The data symbol is looked up rather than linked so the core never fails to load over it.
    let table = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyImport_Inittab".as_ptr()) };
    if table.is_null() {
        return false;
    }
    // SAFETY: `PyImport_Inittab` is a `struct _inittab *` variable.
    let mut entry = unsafe { *table.cast::<*const Inittab>() };
    while !entry.is_null() {
        // SAFETY: the table is an array ended by an entry with a null name (caller guarantees
        // no concurrent change).
        let Some(current) = (unsafe { entry.as_ref() }) else {
            return false;
        };
        if current.name.is_null() {
            return false;
        }
        // SAFETY: every entry before the end has a NUL-terminated name.
        if unsafe { CStr::from_ptr(current.name) } == name {
            return true;
        }
        // SAFETY: not the last entry (its name is not null), so the next one exists.
        entry = unsafe { entry.add(1) };
    }
    false
}

/// The per-interpreter dictionary of the interpreter running on this thread: each interpreter
/// (and each lifetime of the main one) has its own, cleared when it is finalised.
pub fn interpreter_dict(py: Python<'_>) -> Option<Bound<'_, pyo3::types::PyDict>> {
    let getter = interpreter_getter()?;
    // SAFETY:
    // - `py` proves this thread holds the GIL of a live interpreter, so the getter returns it.
    // - PyInterpreterState_GetDict returns a borrowed reference (or null), kept alive by the
    //   interpreter for at least as long as the GIL is held.
    let dict = unsafe { Bound::from_borrowed_ptr_or_opt(py, PyInterpreterState_GetDict(getter())) };
    dict?.cast_into::<pyo3::types::PyDict>().ok()
}

/// A `RuntimeError(message)` made by CPython itself and held as an already normalised `PyErr`.
///
/// A lazily built `PyErr` (`new_err`) drops `Py` references when it is raised; in the audit
/// hook, where pyo3 does not count the thread as attached, those would leak (see
/// `.cargo/config.toml`). A normalised one hands its references straight back to CPython.
pub fn raised_runtime_error(py: Python<'_>, message: &str) -> PyErr {
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `py` proves the GIL is held; the type is a static CPython exception and `text`
    // is NUL-terminated and outlives the call (CPython copies it).
    unsafe { pyo3::ffi::PyErr_SetString(pyo3::ffi::PyExc_RuntimeError, text.as_ptr()) };
    PyErr::fetch(py)
}

/// Whether the process runs in secure-execution mode (setuid, setgid, raised file
/// capabilities): the kernel's `AT_SECURE`, which the dynamic loader and glibc also follow.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave the process.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Raises the `pickle.find_class` audit event for `(module, name)`, as `_pickle`'s
/// `find_class` does before importing anything; the hook answers it with the policy.
pub fn audit_find_class(module: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY:
    // - `Bound` proves the GIL is held, which PySys_Audit needs.
    // - The format `OO` takes exactly the two object pointers passed, borrowed for the call.
    // - The event name and format are static NUL-terminated strings.
    let status = unsafe {
        PySys_Audit(
            c"pickle.find_class".as_ptr(),
            c"OO".as_ptr(),
            module.as_ptr(),
            name.as_ptr(),
        )
    };
    if status < 0 {
        Err(PyErr::fetch(module.py()))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// `_pickle` through the inittab: pickleguard's module takes the name, the stock one is built
// from inside it (see `pickle_module`).

/// `struct _inittab` from `cpython/import.h`; its layout is the same in CPython 3.8-3.13.
#[repr(C)]
struct Inittab {
    name: *const c_char,
    initfunc: Option<ModuleInit>,
}

extern "C" {
    /// The table of built-in modules, ending with an entry whose name is NULL.
    static mut PyImport_Inittab: *mut Inittab;
}

/// Points the built-in module `name` at `init` and returns the init function it had; `None`
/// (and nothing changed) when `name` is not built into this interpreter.
///
/// # Safety
/// Must be called before `Py_Initialize`, on the initialising thread: nothing else reads or
/// writes the table meanwhile.
pub unsafe fn replace_builtin_init(name: &CStr, init: ModuleInit) -> Option<ModuleInit> {
    // SAFETY: a plain read of the pointer static; before initialisation only this thread
    // touches it (the caller's precondition).
    let mut entry = unsafe { *std::ptr::addr_of!(PyImport_Inittab) };
    while !entry.is_null() {
        // SAFETY: `entry` points into the table (it starts at the table and only advances past
        // entries that were not the NULL-named terminator), and no one else uses the table now.
        let current = unsafe { &mut *entry };
        if current.name.is_null() {
            return None;
        }
        // SAFETY: a table entry's name is a NUL-terminated string that lives for the process.
        if unsafe { CStr::from_ptr(current.name) } == name {
            let original = current.initfunc?;
            current.initfunc = Some(init);
            return Some(original);
        }
        // SAFETY: `current` was not the terminator, so the table goes on after it.
        entry = unsafe { entry.add(1) };
    }
    None
}

/// A static that CPython writes to (a module definition) or reads through `*mut` pointers.
#[repr(transparent)]
struct CpythonStatic<T>(std::cell::UnsafeCell<T>);

// SAFETY: CPython only touches these statics with the GIL held (PyModuleDef_Init and the import
// machinery), which serialises every access.
unsafe impl<T> Sync for CpythonStatic<T> {}

/// `Py_mod_multiple_interpreters` (3.12+): a slot id older CPythons reject.
const PY_MOD_MULTIPLE_INTERPRETERS: c_int = 3;
/// `Py_MOD_PER_INTERPRETER_GIL_SUPPORTED`.
const PY_MOD_PER_INTERPRETER_GIL_SUPPORTED: usize = 2;

/// The slots of pickleguard's `_pickle`: one exec function (multi-phase initialisation, so the
/// import system creates the module from its spec and the exec function fills it in), then,
/// on CPython >= 3.12 only, the declaration that it loads in subinterpreters with their own
/// GIL (as the stock `_pickle` does), then the terminator.
static PICKLE_SLOTS: CpythonStatic<[pyo3::ffi::PyModuleDef_Slot; 3]> =
    CpythonStatic(std::cell::UnsafeCell::new([
        pyo3::ffi::PyModuleDef_Slot {
            slot: pyo3::ffi::Py_mod_exec,
            value: pickle_module_exec as *mut c_void,
        },
        pyo3::ffi::PyModuleDef_Slot {
            slot: 0,
            value: std::ptr::null_mut(),
        },
        pyo3::ffi::PyModuleDef_Slot {
            slot: 0,
            value: std::ptr::null_mut(),
        },
    ]));

/// Declares, in pickleguard's `_pickle` definition, that it supports subinterpreters with
/// their own GIL. Only for CPython >= 3.12, where the slot exists.
///
/// # Safety
/// Must be called before `Py_Initialize`, on the initialising thread: CPython has not read the
/// definition yet, and nothing else touches it.
pub unsafe fn declare_per_interpreter_gil() {
    // SAFETY: the caller guarantees no one else reads or writes the slots now; index 1 is in
    // bounds and index 2 stays the terminator.
    unsafe {
        (*PICKLE_SLOTS.0.get())[1] = pyo3::ffi::PyModuleDef_Slot {
            slot: PY_MOD_MULTIPLE_INTERPRETERS,
            value: PY_MOD_PER_INTERPRETER_GIL_SUPPORTED as *mut c_void,
        };
    }
}

/// The definition of pickleguard's `_pickle`.
static PICKLE_DEF: CpythonStatic<pyo3::ffi::PyModuleDef> =
    CpythonStatic(std::cell::UnsafeCell::new(pyo3::ffi::PyModuleDef {
        m_base: pyo3::ffi::PyModuleDef_HEAD_INIT,
        m_name: c"_pickle".as_ptr(),
        m_doc: c"Optimized C implementation for the Python pickle module, with pickleguard's unpickler."
            .as_ptr(),
        m_size: 0,
        m_methods: std::ptr::null_mut(),
        m_slots: PICKLE_SLOTS.0.get().cast(),
        m_traverse: None,
        m_clear: None,
        m_free: None,
    }));

/// The inittab init function of pickleguard's `_pickle`.
pub unsafe extern "C" fn pickle_module_init() -> *mut PyObject {
    // SAFETY: the import system calls this with the GIL held; the definition is static and
    // complete, which is all PyModuleDef_Init needs (it only sets the object header).
    unsafe { pyo3::ffi::PyModuleDef_Init(PICKLE_DEF.0.get()) }
}

/// The exec slot of pickleguard's `_pickle`: a panic boundary around [`crate::pickle_module::exec`].
unsafe extern "C" fn pickle_module_exec(module: *mut PyObject) -> c_int {
    let outcome = std::panic::catch_unwind(|| {
        // SAFETY: CPython runs exec slots with the GIL held.
        let py = unsafe { Python::assume_attached() };
        // SAFETY: `module` is the module being initialised, a live object borrowed for the call.
        let module = unsafe { Bound::from_borrowed_ptr(py, module) };
        match module.cast_into::<pyo3::types::PyModule>() {
            Ok(module) => crate::pickle_module::exec(&module).map_err(|err| err.restore(py)),
            Err(_) => {
                pyo3::exceptions::PyImportError::new_err("pickleguard: `_pickle` is not a module")
                    .restore(py);
                Err(())
            }
        }
    });
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(())) => -1,
        Err(_) => {
            // SAFETY: the GIL is held (CPython calls exec slots with it); the type and message
            // are static.
            unsafe {
                pyo3::ffi::PyErr_SetString(
                    pyo3::ffi::PyExc_ImportError,
                    c"pickleguard: internal error while building `_pickle`".as_ptr(),
                )
            };
            -1
        }
    }
}

/// Runs a built-in module's own init function as the import system would: a multi-phase
/// definition is created from `spec` and executed; a single-phase module is registered so
/// that `PyState_FindModule` finds it (its C functions look their state up that way).
pub fn run_builtin_init<'py>(
    py: Python<'py>,
    init: ModuleInit,
    spec: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `init` is the PyInit function the inittab held for this module; `py` proves the
    // GIL is held, which is all a module init function needs.
    let made = unsafe { init() };
    // SAFETY: an init function returns a new reference, or NULL with an exception set.
    let made = unsafe { Bound::from_owned_ptr_or_err(py, made) }?;
    // SAFETY: `made` is a live object; PyModuleDef_Type is CPython's static type object, only
    // read here.
    let is_def = unsafe {
        pyo3::ffi::PyObject_TypeCheck(
            made.as_ptr(),
            std::ptr::addr_of_mut!(pyo3::ffi::PyModuleDef_Type),
        )
    } != 0;
    if is_def {
        let def = made.as_ptr().cast::<pyo3::ffi::PyModuleDef>();
        // SAFETY: `made` is a PyModuleDef (checked above), kept alive by `made`; `spec` is a
        // live object with a `name`, all PyModule_FromDefAndSpec2 reads from it.
        let module = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                pyo3::ffi::PyModule_FromDefAndSpec2(
                    def,
                    spec.as_ptr(),
                    pyo3::ffi::PYTHON_API_VERSION,
                ),
            )
        }?;
        // SAFETY: `module` was just created from `def`, as PyModule_ExecDef requires.
        if unsafe { pyo3::ffi::PyModule_ExecDef(module.as_ptr(), def) } != 0 {
            return Err(PyErr::fetch(py));
        }
        return Ok(module);
    }
    if !made.is_instance_of::<pyo3::types::PyModule>() {
        return Err(pyo3::exceptions::PyImportError::new_err(
            "the stock `_pickle` init function returned neither a module nor a definition",
        ));
    }
    // SAFETY: `made` is a live module (checked above); the result is NULL or its definition,
    // static in the extension.
    let def = unsafe { pyo3::ffi::PyModule_GetDef(made.as_ptr()) };
    if def.is_null() {
        return Ok(made);
    }
    // SAFETY: `def` is the module's definition; PyState_FindModule returns a borrowed
    // reference or NULL and only reads the interpreter's module index.
    let registered = unsafe { pyo3::ffi::PyState_FindModule(def) };
    if registered != made.as_ptr() {
        // SAFETY: `made` was created from single-phase `def` and is not registered yet
        // (registering it twice is a fatal error, hence the check above).
        if unsafe { pyo3::ffi::PyState_AddModule(made.as_ptr(), def) } != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(made)
}

/// Whether the running interpreter is the main one (not a subinterpreter). `false` when the
/// running CPython cannot say, so that callers keep to what is safe in any interpreter.
pub fn in_main_interpreter(_py: Python<'_>) -> bool {
    type GetInterpreter = unsafe extern "C" fn() -> *mut c_void;
    static LOOKUP: std::sync::OnceLock<Option<(GetInterpreter, GetInterpreter)>> =
        std::sync::OnceLock::new();
    let found = LOOKUP.get_or_init(|| {
        let symbol = |name: &CStr| {
            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only searches the
            // loaded objects; it returns NULL when the symbol is missing.
            let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            (!address.is_null()).then(|| {
                // SAFETY: these CPython symbols are functions taking nothing and returning a
                // `PyInterpreterState *` (3.9+ `PyInterpreterState_Get`, 3.8
                // `_PyInterpreterState_Get`, 3.7+ `PyInterpreterState_Main`).
                unsafe { std::mem::transmute::<*mut c_void, GetInterpreter>(address) }
            })
        };
        let current =
            symbol(c"PyInterpreterState_Get").or_else(|| symbol(c"_PyInterpreterState_Get"))?;
        Some((current, symbol(c"PyInterpreterState_Main")?))
    });
    match found {
        // SAFETY: `_py` proves the GIL is held, so the current thread has an interpreter;
        // neither function takes arguments or fails.
        Some((current, main)) => unsafe { current() == main() },
        None => false,
    }
}
