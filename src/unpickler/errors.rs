//! The exceptions the unpickler raises, with the types and messages of CPython's `_pickle`.

use pyo3::exceptions::{PyEOFError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static UNPICKLING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pickle.UnpicklingError` (defined by `_pickle`, which `pickle` re-exports).
pub fn unpickling_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UNPICKLING_ERROR
        .get_or_try_init(py, || {
            let class = py.import("_pickle")?.getattr("UnpicklingError")?;
            Ok::<_, PyErr>(class.cast_into::<PyType>()?.unbind())
        })
        .map(|class| class.bind(py))
}

/// `UnpicklingError(message)`.
pub fn unpickling(py: Python<'_>, message: impl Into<String>) -> PyErr {
    match unpickling_error_type(py) {
        Ok(class) => PyErr::from_type(class.clone(), message.into()),
        Err(err) => err,
    }
}

/// The stream ended inside an opcode or its argument.
#[cold]
pub fn truncated(py: Python<'_>) -> PyErr {
    unpickling(py, "pickle data was truncated")
}

/// The stream ended where an opcode should start.
#[cold]
pub fn ran_out() -> PyErr {
    PyEOFError::new_err("Ran out of input")
}

/// An opcode needed more stack than there is above the last mark.
#[cold]
pub fn underflow(py: Python<'_>, mark_set: bool) -> PyErr {
    unpickling(
        py,
        if mark_set {
            "unexpected MARK found"
        } else {
            "unpickling stack underflow"
        },
    )
}

/// A byte that is no opcode.
#[cold]
pub fn bad_opcode(py: Python<'_>, byte: u8) -> PyErr {
    let shown = if (0x20..=0x7e).contains(&byte) && byte != b'\'' && byte != b'\\' {
        format!("'{}'", byte as char)
    } else {
        format!("'\\x{byte:02x}'")
    };
    unpickling(py, format!("invalid load key, {shown}."))
}

/// A `ValueError(message)`.
#[cold]
pub fn value(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
