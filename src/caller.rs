//! Where a load was called from: the first Python frame outside the pickle machinery.

use pyo3::prelude::*;

use crate::ffi;

/// Frames from these files belong to pickle or to a framework's loader, not to the program.
const LOADER_FILES: &[&str] = &[
    "/pickle.py",
    "/_compat_pickle.py",
    "/copyreg.py",
    "/shelve.py",
    "/torch/serialization.py",
    "/torch/_weights_only_unpickler.py",
    "/torch/storage.py",
    "/joblib/numpy_pickle.py",
    "/joblib/numpy_pickle_compat.py",
    "/pandas/io/pickle.py",
    "/pandas/compat/pickle_compat.py",
    "/numpy/lib/format.py",
    "/numpy/lib/_format_impl.py",
    "/numpy/lib/npyio.py",
    "/numpy/lib/_npyio_impl.py",
    "/dill/_dill.py",
];

/// `file:line` of the frame that started the load, or `None` if Python code is not running.
pub fn describe(py: Python<'_>) -> Option<String> {
    let mut frame = ffi::current_frame(py)?;
    let mut first = None;
    loop {
        let code = frame.getattr("f_code").ok()?;
        let file: String = code.getattr("co_filename").ok()?.extract().ok()?;
        let function: String = code.getattr("co_name").ok()?.extract().ok()?;
        let line: i64 = frame.getattr("f_lineno").ok()?.extract().unwrap_or(0);
        let here = format!("{file}:{line}");
        let in_loader = function == "find_class" || LOADER_FILES.iter().any(|f| file.ends_with(f));
        if !in_loader {
            return Some(here);
        }
        first.get_or_insert(here);
        match frame.getattr("f_back") {
            Ok(back) if !back.is_none() => frame = back,
            _ => return first,
        }
    }
}
