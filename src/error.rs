use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;
use thiserror::Error;

/// Everything that can go wrong in the core.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The core was loaded into an interpreter that was already running.
    #[error("the interpreter was already running when pickleguard loaded; start Python with LD_PRELOAD=libpickleguard.so instead")]
    AlreadyInitialized,
    /// CPython refused to register the audit hook.
    #[error("CPython refused the audit hook (PySys_AddAuditHook failed)")]
    HookRefused,
    /// The `pickleguard` module could not be registered.
    #[error("`import pickleguard` will not work in this process: PyImport_AppendInittab failed")]
    ModuleNotRegistered,
    /// pickleguard's `_pickle` could not be registered in the inittab.
    #[error("`pickle` keeps the stock unpickler, checked by the audit hook only: registering pickleguard's `_pickle` failed")]
    PickleNotRegistered,
    /// The guard was asked for before the install function ran.
    #[error("pickleguard is not installed in this process")]
    NotInstalled,
    /// An allow entry is malformed or hard-denied.
    #[error(transparent)]
    Policy(#[from] pickleguard_policy::Error),
    /// An argument from Python has the wrong type.
    #[error("expected a str such as `module.name`, got `{0}`")]
    NotAString(String),
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Policy(_) | Error::NotAString(_) => PyValueError::new_err(err.to_string()),
            _ => PyRuntimeError::new_err(err.to_string()),
        }
    }
}
