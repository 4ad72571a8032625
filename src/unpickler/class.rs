//! The Python-facing API: the `Unpickler` class (subclassable, as torch, pandas, dill and
//! joblib subclass it), its `memo` proxy, and the `load` and `loads` functions, with the
//! signatures of CPython's `_pickle`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::errors::unpickling;
use super::globals;
use super::input::{FileMethods, Input};
use super::machine::{Machine, Options, Owner};
use super::memo::Memo;

const NO_PERSISTENT_LOAD: &str =
    "A load persistent id instruction was encountered, but no persistent_load function was specified.";

/// What `__init__` sets up.
struct Source {
    input: Input,
    options: Options,
}

/// Unpickler(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())
/// --
///
/// pickleguard's unpickler: reads a pickle from `file` (an object with `read` and `readline`,
/// and optionally `readinto` and `peek`), checking every global against the policy and every
/// reconstruction against its rules.
#[pyclass(subclass, module = "pickleguard", name = "Unpickler")]
pub struct Unpickler {
    source: Option<Source>,
    memo: Memo,
    proto: u8,
    fix_imports: bool,
    persistent_load: Option<Py<PyAny>>,
}

impl Unpickler {
    /// Records the protocol of the pickle being loaded (for `find_class`'s name mapping).
    pub fn set_proto(&mut self, proto: u8) {
        self.proto = proto;
    }
}

#[pymethods]
impl Unpickler {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Unpickler {
            source: None,
            memo: Memo::default(),
            proto: 0,
            fix_imports: true,
            persistent_load: None,
        }
    }

    #[pyo3(signature = (file, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None))]
    fn __init__(
        &mut self,
        file: &Bound<'_, PyAny>,
        fix_imports: bool,
        encoding: &str,
        errors: &str,
        buffers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let input = Input::from_file(FileMethods::of(file)?);
        let options = Options::new(fix_imports, encoding, errors, buffers)?;
        self.source = Some(Source { input, options });
        self.memo.clear();
        self.proto = 0;
        self.fix_imports = fix_imports;
        Ok(())
    }

    /// load()
    /// --
    ///
    /// Reads one pickle from the file and returns the object it describes.
    fn load<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (mut source, mut memo) = {
            let mut this = slf.try_borrow_mut()?;
            let Some(source) = this.source.take() else {
                return Err(unpickling(
                    py,
                    format!(
                        "Unpickler.__init__() was not called by {}.__init__()",
                        slf.get_type().name()?
                    ),
                ));
            };
            this.proto = 0;
            (source, std::mem::take(&mut this.memo))
        };
        let owner = Owner {
            object: slf,
            custom_find_class: !slf.get_type().is(py.get_type::<Unpickler>()),
        };
        let result = Machine::new(
            py,
            &mut source.input,
            &mut memo,
            &source.options,
            Some(owner),
        )
        .run();
        if let Ok(mut this) = slf.try_borrow_mut() {
            if this.source.is_none() {
                this.source = Some(source);
                this.memo = memo;
            }
        }
        result
    }

    /// find_class(module_name, global_name, /)
    /// --
    ///
    /// Returns the object `module_name.global_name` names, after pickleguard's policy allowed
    /// it. Subclasses that override it and call `super().find_class` get the same check.
    fn find_class<'py>(
        &self,
        module_name: &Bound<'py, PyAny>,
        global_name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        globals::find_class(module_name, global_name, self.proto, self.fix_imports)
    }

    /// The function called with each persistent id; a subclass may define it as a method.
    #[getter(persistent_load)]
    fn get_persistent_load<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match &slf.try_borrow()?.persistent_load {
            Some(function) => Ok(function.bind(slf.py()).clone()),
            None => slf.getattr("_no_persistent_load"),
        }
    }

    #[setter(persistent_load)]
    fn set_persistent_load(&mut self, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(value) = value else {
            return Err(PyTypeError::new_err("attribute deletion is not supported"));
        };
        self.persistent_load = Some(value.clone().unbind());
        Ok(())
    }

    /// What `persistent_load` is when none was given: refuses every persistent id.
    fn _no_persistent_load(&self, py: Python<'_>, pid: &Bound<'_, PyAny>) -> PyResult<()> {
        let _ = pid;
        Err(unpickling(py, NO_PERSISTENT_LOAD))
    }

    /// The memo, as a proxy with `copy()` and `clear()`.
    #[getter(memo)]
    fn get_memo(slf: &Bound<'_, Self>) -> MemoProxy {
        MemoProxy {
            owner: slf.clone().unbind(),
        }
    }

    #[setter(memo)]
    fn set_memo(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(value) = value else {
            return Err(PyTypeError::new_err("attribute deletion is not supported"));
        };
        let py = value.py();
        let mut memo = Memo::default();
        if let Ok(proxy) = value.cast::<MemoProxy>() {
            let owner = proxy.get().owner.clone_ref(py);
            let source = owner.bind(py);
            if source.is(slf) {
                return Ok(());
            }
            for (index, object) in source.try_borrow()?.memo.entries() {
                memo.put(index, object.clone_ref(py));
            }
        } else if let Ok(dict) = value.cast::<PyDict>() {
            for (key, object) in dict.iter() {
                if !key.is_instance_of::<pyo3::types::PyInt>() {
                    return Err(PyTypeError::new_err("memo key must be integers"));
                }
                let index: i64 = key.extract()?;
                let Ok(index) = usize::try_from(index) else {
                    return Err(PyValueError::new_err("memo key must be positive integers."));
                };
                memo.put(index, object.unbind());
            }
        } else {
            return Err(PyTypeError::new_err(format!(
                "'memo' attribute must be an UnpicklerMemoProxy object or dict, not {}",
                value.get_type().name()?
            )));
        }
        slf.try_borrow_mut()?.memo = memo;
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(function) = &self.persistent_load {
            visit.call(function)?;
        }
        for (_, object) in self.memo.entries() {
            visit.call(object)?;
        }
        if let Some(source) = &self.source {
            if let Some(file) = source.input.file() {
                for object in file.objects() {
                    visit.call(object)?;
                }
            }
            if let Some(buffers) = &source.options.buffers {
                visit.call(buffers)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.persistent_load = None;
        self.memo.clear();
        self.source = None;
    }
}

/// An `Unpickler`'s memo, as `_pickle.UnpicklerMemoProxy` shows it.
#[pyclass(frozen, module = "pickleguard", name = "UnpicklerMemoProxy")]
pub struct MemoProxy {
    owner: Py<Unpickler>,
}

#[pymethods]
impl MemoProxy {
    /// copy()
    /// --
    ///
    /// The memo as a new dict of index to object.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let owner = self.owner.bind(py).try_borrow()?;
        for (index, object) in owner.memo.entries() {
            dict.set_item(index, object.bind(py))?;
        }
        Ok(dict)
    }

    /// clear()
    /// --
    ///
    /// Empties the memo.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.owner.bind(py).try_borrow_mut()?.memo.clear();
        Ok(())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.owner.bind(py).try_borrow()?.memo.len())
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let dict_type = py.get_type::<PyDict>();
        let copy = self.copy(py)?;
        PyTuple::new(
            py,
            [dict_type.into_any(), PyTuple::new(py, [copy])?.into_any()],
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.owner)
    }
}

/// load(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())
/// --
///
/// Reads one pickle from `file` and returns the object it describes.
#[pyfunction]
#[pyo3(signature = (file, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None))]
fn load<'py>(
    py: Python<'py>,
    file: &Bound<'py, PyAny>,
    fix_imports: bool,
    encoding: &str,
    errors: &str,
    buffers: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut input = Input::from_file(FileMethods::of(file)?);
    let options = Options::new(fix_imports, encoding, errors, buffers)?;
    let mut memo = Memo::default();
    Machine::new(py, &mut input, &mut memo, &options, None).run()
}

/// loads(data, /, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())
/// --
///
/// Returns the object the pickle in `data` (a bytes-like object) describes.
#[pyfunction]
#[pyo3(signature = (data, /, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None))]
fn loads<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    fix_imports: bool,
    encoding: &str,
    errors: &str,
    buffers: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut input = Input::from_data(data)?;
    let options = Options::new(fix_imports, encoding, errors, buffers)?;
    let mut memo = Memo::default();
    Machine::new(py, &mut input, &mut memo, &options, None).run()
}

/// Adds the class and the functions to `module`.
pub fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Unpickler>()?;
    module.add_class::<MemoProxy>()?;
    module.add_function(wrap_pyfunction!(load, module)?)?;
    module.add_function(wrap_pyfunction!(loads, module)?)?;
    Ok(())
}
