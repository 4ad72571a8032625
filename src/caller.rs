//! Who started a load: the first Python frame outside the pickle machinery, named in
//! messages. Whether a load is multiprocessing's own IPC is decided by identity, in
//! [`crate::trust`], never by the file names listed here.

use pyo3::prelude::*;

use crate::{ffi, trust};

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
    "/torch/jit/_serialization.py",
    "/torch/package/package_importer.py",
    "<pickleguard>",
];

/// The frame that started a load.
pub struct Caller {
    /// `file:line`.
    pub location: String,
    /// Whether the load was called by one of multiprocessing's receiving ends (by identity).
    pub is_ipc: bool,
}

/// The caller of the running load, or `None` if no Python code is running.
pub fn find(py: Python<'_>) -> Option<Caller> {
    let is_ipc = trust::load_is_ipc(py);
    let mut frame = ffi::current_frame(py)?;
    let mut first = None;
    loop {
        let code = frame.getattr("f_code").ok()?;
        let file: String = code.getattr("co_filename").ok()?.extract().ok()?;
        let function: String = code.getattr("co_name").ok()?.extract().ok()?;
        let line: i64 = frame.getattr("f_lineno").ok()?.extract().unwrap_or(0);
        let caller = Caller {
            is_ipc,
            location: format!("{file}:{line}"),
        };
        let in_loader = function == "find_class" || LOADER_FILES.iter().any(|f| file.ends_with(f));
        if !in_loader {
            return Some(caller);
        }
        first.get_or_insert(caller);
        match frame.getattr("f_back") {
            Ok(back) if !back.is_none() => frame = back,
            _ => return first,
        }
    }
}
