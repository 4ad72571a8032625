//! pickleguard's `_pickle`: the stock module's contents with pickleguard's unpickler over them.
//!
//! [`register`] runs before `Py_Initialize`. Where `_pickle` is built into the interpreter
//! (Debian's static `python3.11`) it points the inittab entry at pickleguard's module and keeps
//! the stock init function; where `_pickle` is an extension in `lib-dynload` (pyenv) it appends
//! a built-in `_pickle`, which the import system finds before any path entry. Nothing else
//! happens at start-up: the module is built when the program first imports `pickle` or
//! `_pickle`.
//!
//! [`exec`] then builds the stock module (the saved init function, or the extension file through
//! importlib's `ExtensionFileLoader`), copies its contents (the C `Pickler`, `dump`, `dumps`,
//! the exception classes, `PickleBuffer`, ...) and lets [`unpickler::add_to`] put pickleguard's
//! `Unpickler`, `load` and `loads` over the stock ones.
//!
//! Those three names are held back until `pickle.py` asks for them with its closing
//! `from _pickle import (..., Unpickler, dump, dumps, load, loads)`, served by a module
//! `__getattr__`: at that moment `pickle._Unpickler` exists, and [`pure_python::guard`] wraps
//! it before the names land in the module. `_pickle` is first imported by `pickle.py`'s
//! `from _pickle import PickleBuffer`, before `_Unpickler` is defined, so there is no earlier
//! moment.
//!
//! If the stock module cannot be built, `import _pickle` raises `ImportError` after one stderr
//! line, so `pickle` falls back to its pure-Python classes, which the audit hook still guards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::{PyAttributeError, PyImportError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString};

use crate::{ffi, lifetime, pure_python, unpickler};

/// The names pickleguard's unpickler provides.
const UNPICKLER_NAMES: [&str; 3] = ["Unpickler", "load", "loads"];

/// Where the stock `_pickle` comes from in this interpreter.
#[derive(Clone, Copy)]
enum Stock {
    /// Built in: its original inittab init function.
    Builtin(ffi::ModuleInit),
    /// An extension file in `lib-dynload` (or elsewhere on `sys.path`).
    Extension,
}

static STOCK: OnceLock<Stock> = OnceLock::new();

/// Makes `import _pickle` build pickleguard's module. Returns whether it was registered.
///
/// # Safety
/// Must be called before `Py_Initialize`, on the initialising thread.
pub unsafe fn register() -> bool {
    if STOCK.get().is_some() {
        return true;
    }
    if at_least_3_12(&ffi::python_version()) {
        // SAFETY: the caller guarantees the pre-initialisation context.
        unsafe { ffi::declare_per_interpreter_gil() };
    }
    // SAFETY: the caller guarantees the pre-initialisation context.
    let replaced = unsafe { ffi::replace_builtin_init(c"_pickle", ffi::pickle_module_init) };
    if let Some(original) = replaced {
        let _ = STOCK.set(Stock::Builtin(original));
        return true;
    }
    // SAFETY: the caller guarantees the pre-initialisation context (the inittab is not read
    // before Py_Initialize).
    let appended = unsafe { ffi::append_inittab(c"_pickle", ffi::pickle_module_init) };
    if appended {
        let _ = STOCK.set(Stock::Extension);
    }
    appended
}

/// Whether a version such as `3.12.1` is 3.12 or later.
fn at_least_3_12(version: &str) -> bool {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (3, 12)
}

/// Fills in pickleguard's `_pickle` (the exec slot of its definition).
pub fn exec(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let stock = build_stock(module).map_err(|err| {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            ffi::stderr_line(&format!(
                "pickleguard: cannot build the stock `_pickle` ({err}); pickle falls back to \
                 its pure-Python unpickler, which the audit hook still checks"
            ));
        }
        PyImportError::new_err(format!("pickleguard could not build `_pickle`: {err}"))
    })?;
    copy_contents(&stock, module)?;
    if !ffi::in_main_interpreter(py) {
        // pyo3's classes are per process, not per interpreter: a subinterpreter keeps the stock
        // unpickler, which the audit hook (process-wide) still checks.
        return Ok(());
    }
    if lifetime::later_lifetime() {
        // The same holds for a main interpreter initialised again: pyo3's classes belong to
        // the first one. Said once; `pickleguard.is_active()` stays true (globals are checked).
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            ffi::stderr_line(
                "pickleguard: Python was initialised again in this process: pickle's globals \
                 are still checked, but pickleguard's unpickler (which also validates what a \
                 pickle does with allowed globals) is only installed in the first interpreter",
            );
        }
        return Ok(());
    }
    if let Err(err) = unpickler::add_to(module) {
        ffi::stderr_line(&format!(
            "pickleguard: cannot add its unpickler to `_pickle` ({err}); the stock unpickler \
             stays, checked by the audit hook"
        ));
        copy_contents(&stock, module)?;
    }
    hold_back_unpickler(module)
}

/// The stock `_pickle` module.
fn build_stock<'py>(module: &Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> {
    let py = module.py();
    match STOCK.get() {
        Some(Stock::Builtin(init)) => {
            let spec = match module.getattr("__spec__") {
                Ok(spec) if !spec.is_none() => spec,
                _ => py
                    .import("_frozen_importlib")?
                    .getattr("ModuleSpec")?
                    .call1(("_pickle", py.None()))?,
            };
            ffi::run_builtin_init(py, *init, &spec)
        }
        Some(Stock::Extension) | None => load_extension(py),
    }
}

/// Loads the `_pickle` extension file as importlib would, without leaving it in `sys.modules`.
fn load_extension(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let sys = py.import("sys")?;
    let suffixes: Vec<String> = py
        .import("_imp")?
        .call_method0("extension_suffixes")?
        .extract()?;
    let file = extension_file(&sys.getattr("path")?, &suffixes).ok_or_else(|| {
        PyImportError::new_err("no `_pickle` extension file in lib-dynload or on sys.path")
    })?;
    let bootstrap = py.import("_frozen_importlib")?;
    let external = py.import("_frozen_importlib_external")?;
    let loader = external
        .getattr("ExtensionFileLoader")?
        .call1(("_pickle", &file))?;
    let options = PyDict::new(py);
    options.set_item("loader", &loader)?;
    let spec = external
        .getattr("spec_from_file_location")?
        .call(("_pickle", &file), Some(&options))?;
    // A single-phase extension (3.8-3.11) puts itself in sys.modules while it loads; the
    // import in progress must find pickleguard's module there afterwards.
    let modules = sys.getattr("modules")?;
    let before = modules.get_item("_pickle").ok();
    let loaded = bootstrap
        .call_method1("module_from_spec", (&spec,))
        .and_then(|stock| {
            loader.call_method1("exec_module", (&stock,))?;
            Ok(stock)
        });
    match before {
        Some(before) => modules.set_item("_pickle", before)?,
        None => {
            let _ = modules.del_item("_pickle");
        }
    }
    loaded
}

/// The `_pickle` extension file: `lib-dynload` directories first, then the rest of `path`.
fn extension_file(path: &Bound<'_, PyAny>, suffixes: &[String]) -> Option<String> {
    let entries: Vec<String> = path
        .try_iter()
        .ok()?
        .filter_map(|entry| entry.ok()?.extract::<String>().ok())
        .collect();
    let (dynload, rest): (Vec<&String>, Vec<&String>) = entries
        .iter()
        .partition(|dir| dir.trim_end_matches('/').ends_with("/lib-dynload"));
    dynload.into_iter().chain(rest).find_map(|dir| {
        suffixes.iter().find_map(|suffix| {
            let candidate = std::path::Path::new(if dir.is_empty() { "." } else { dir })
                .join(format!("_pickle{suffix}"));
            candidate
                .is_file()
                .then(|| candidate.to_string_lossy().into_owned())
        })
    })
}

/// Copies the stock module's names, leaving out the import system's own attributes.
fn copy_contents(stock: &Bound<'_, PyAny>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    let target = module.dict();
    for (name, value) in stock.getattr("__dict__")?.cast_into::<PyDict>()?.iter() {
        let skip = ffi::str_view(&name)
            .is_none_or(|name| name.starts_with("__") && name.ends_with("__") && name != "__doc__");
        if !skip {
            target.set_item(name, value)?;
        }
    }
    Ok(())
}

/// Moves `Unpickler`, `load` and `loads` out of the module, behind its `__getattr__`.
fn hold_back_unpickler(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let dict = module.dict();
    let held = PyDict::new(py);
    for name in UNPICKLER_NAMES {
        if let Some(value) = dict.get_item(name)? {
            held.set_item(name, value)?;
            dict.del_item(name)?;
        }
    }
    let serve = HeldNames {
        module: module.clone().unbind(),
        held: held.unbind(),
    };
    module.setattr("__getattr__", Bound::new(py, serve)?)
}

/// The module `__getattr__` of pickleguard's `_pickle` while the unpickler names are held
/// back: once `pickle._Unpickler` is guarded, the names move into the module and it goes away.
#[pyclass(frozen, module = "pickleguard", name = "_held_names")]
struct HeldNames {
    module: Py<PyModule>,
    held: Py<PyDict>,
}

#[pymethods]
impl HeldNames {
    fn __call__(&self, py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let held = self.held.bind(py);
        let Some(value) = held.get_item(name)? else {
            return Err(PyAttributeError::new_err(format!(
                "module '_pickle' has no attribute '{name}'"
            )));
        };
        // `import pickle` must never break: a failure to guard is said once, and the names
        // are handed out anyway (the audit hook still checks every global).
        let guarded = pure_python::guard(py).unwrap_or_else(|err| {
            ffi::stderr_line(&format!(
                "pickleguard: cannot guard pickle._Unpickler's reconstruction ({err}); the \
                 audit hook still checks the globals it resolves"
            ));
            true
        });
        if guarded {
            let module = self.module.bind(py);
            for (key, item) in held.iter() {
                module.setattr(key.cast_into::<PyString>()?, item)?;
            }
            held.clear();
            if module.dict().contains("__getattr__")? {
                module.dict().del_item("__getattr__")?;
            }
        }
        Ok(value.unbind())
    }
}
