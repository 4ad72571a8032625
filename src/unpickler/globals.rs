//! `find_class`: how a pickle's `(module, name)` becomes an object, as `_pickle` does it.
//!
//! It first raises the `pickle.find_class` audit event, which is where pickleguard's hook
//! applies the policy: the one decision per global, taken before anything is imported. Then it
//! maps Python 2 names (protocols 0-2, `fix_imports`), imports the module and looks the name
//! up, attribute by attribute for a dotted name from protocol 4 on.

use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::ffi;

/// `_compat_pickle.NAME_MAPPING` and `IMPORT_MAPPING`, read once, when a protocol 0-2 pickle
/// first needs them.
static COMPAT: PyOnceLock<(Py<PyDict>, Py<PyDict>)> = PyOnceLock::new();

fn compat(py: Python<'_>) -> PyResult<&(Py<PyDict>, Py<PyDict>)> {
    COMPAT.get_or_try_init(py, || {
        let module = py.import("_compat_pickle")?;
        let names = module.getattr("NAME_MAPPING")?.cast_into::<PyDict>()?;
        let imports = module.getattr("IMPORT_MAPPING")?.cast_into::<PyDict>()?;
        Ok::<_, PyErr>((names.unbind(), imports.unbind()))
    })
}

/// The object `module.name` names, for a pickle of protocol `proto`.
pub fn find_class<'py>(
    module: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    proto: u8,
    fix_imports: bool,
) -> PyResult<Bound<'py, PyAny>> {
    ffi::audit_find_class(module, name)?;
    let py = module.py();
    let (module, name) = if proto < 3 && fix_imports {
        python2_names(py, module, name)?
    } else {
        (module.clone(), name.clone())
    };
    // PyImport_Import, not a sys.modules lookup: a module another thread is still importing
    // must be waited for (bpo-34572), as `_pickle` does.
    let imported = py.import(module.cast::<PyString>()?)?.into_any();
    if proto >= 4 {
        if let Some(text) = ffi::str_view(&name) {
            if text.contains('.') {
                return dotted(&imported, text);
            }
        }
    }
    imported.getattr(name.cast::<PyString>()?)
}

/// The Python 3 names of a Python 2 global.
fn python2_names<'py>(
    py: Python<'py>,
    module: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (names, imports) = compat(py)?;
    let key = PyTuple::new(py, [module, name])?;
    if let Some(item) = names.bind(py).get_item(key)? {
        let pair = item.cast::<PyTuple>().ok().filter(|pair| pair.len() == 2);
        let Some(pair) = pair else {
            return Err(PyRuntimeError::new_err(format!(
                "_compat_pickle.NAME_MAPPING values should be 2-tuples, not {}",
                item.get_type().name()?
            )));
        };
        let (module, name) = (pair.get_item(0)?, pair.get_item(1)?);
        if !module.is_instance_of::<PyString>() || !name.is_instance_of::<PyString>() {
            return Err(PyRuntimeError::new_err(
                "_compat_pickle.NAME_MAPPING values should be pairs of str",
            ));
        }
        return Ok((module, name));
    }
    if let Some(item) = imports.bind(py).get_item(module)? {
        if !item.is_instance_of::<PyString>() {
            return Err(PyRuntimeError::new_err(format!(
                "_compat_pickle.IMPORT_MAPPING values should be strings, not {}",
                item.get_type().name()?
            )));
        }
        return Ok((item, name.clone()));
    }
    Ok((module.clone(), name.clone()))
}

/// `Outer.Inner` looked up attribute by attribute; `<locals>` is never followed.
fn dotted<'py>(module: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    if name.split('.').any(|part| part == "<locals>") {
        return Err(PyAttributeError::new_err(format!(
            "Can't get local attribute {name:?} on {}",
            module.repr()?
        )));
    }
    let mut object = module.clone();
    for part in name.split('.') {
        object = object.getattr(part)?;
    }
    Ok(object)
}
