//! Runs pickleguard's code right after chosen modules are imported, so a process pays only for
//! the modules it really imports: nothing happens until one of [`WATCHED`] is imported.
//!
//! CPython raises the `import` audit event for a module that is not imported yet, before it
//! looks for its spec. When that module is watched (in the main interpreter), a finder is put
//! first on `sys.meta_path`; it asks the other finders for the spec, wraps the loader, and takes
//! itself off again, so other imports never call it (it stays while a module that runpy may run
//! is pending, see [`TRIGGERS`]). The wrapper puts the real loader back,
//! runs the module, then the watch's action, before the importer gets the module back:
//!
//! * multiprocessing's and loky's receiving ends are captured for [`crate::trust`];
//! * torch's TorchScript and torch.package loaders are gated by [`crate::torch_guard`].
//!
//! For a module that `python -m` runs as `__main__` (loky's worker bootstrap), runpy asks the
//! loader for the code object it will run, and the wrapper captures that.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyModule, PyTuple};

use crate::trust::{self, Role};
use crate::{events, ffi, torch_guard};

/// What happens once a watched module has run.
type AfterExec = fn(&Bound<'_, PyModule>) -> PyResult<()>;
/// What happens to the code object that runpy runs as `__main__`.
type OnCode = fn(&Bound<'_, PyAny>) -> PyResult<()>;

/// A module to act on when it is imported.
struct Watch {
    name: &'static str,
    after_exec: Option<AfterExec>,
    on_code: Option<OnCode>,
}

const fn after(name: &'static str, action: AfterExec) -> Watch {
    Watch {
        name,
        after_exec: Some(action),
        on_code: None,
    }
}

const fn as_main(name: &'static str, action: OnCode) -> Watch {
    Watch {
        name,
        after_exec: None,
        on_code: Some(action),
    }
}

/// The watched modules. loky ships both inside joblib and on its own.
const WATCHED: &[Watch] = &[
    after("multiprocessing.connection", mp_connection),
    after("multiprocessing.queues", mp_queues),
    after("multiprocessing.spawn", mp_spawn),
    as_main(
        "joblib.externals.loky.backend.popen_loky_posix",
        loky_bootstrap,
    ),
    as_main("loky.backend.popen_loky_posix", loky_bootstrap),
    after("joblib.externals.loky.cloudpickle_wrapper", loky_relay),
    after("loky.cloudpickle_wrapper", loky_relay),
    after(
        "torch.jit._serialization",
        torch_guard::after_jit_serialization,
    ),
    after(
        "torch.package.package_importer",
        torch_guard::after_package_importer,
    ),
];

/// `Connection.recv`: Pipe, Manager and Pool results, `concurrent.futures` results.
fn mp_connection(module: &Bound<'_, PyModule>) -> PyResult<()> {
    capture(module, &["_ConnectionBase.recv"], Role::Receiver)
}

/// `Queue.get` and `SimpleQueue.get`: Pool and executor tasks, DataLoader batches.
fn mp_queues(module: &Bound<'_, PyModule>) -> PyResult<()> {
    capture(module, &["Queue.get", "SimpleQueue.get"], Role::Receiver)
}

/// The spawn and forkserver bootstrap, which loads the preparation data and the process.
fn mp_spawn(module: &Bound<'_, PyModule>) -> PyResult<()> {
    capture(module, &["_main"], Role::Receiver)
}

/// loky's worker bootstrap, run as `python -m ...popen_loky_posix`: its module code loads the
/// preparation data and the process object from the parent's pipe.
fn loky_bootstrap(code: &Bound<'_, PyAny>) -> PyResult<()> {
    trust::add(code.clone(), Role::Receiver);
    Ok(())
}

/// loky's `_reconstruct_wrapper`, which unpickles a cloudpickled task inside a task's load.
fn loky_relay(module: &Bound<'_, PyModule>) -> PyResult<()> {
    capture(module, &["_reconstruct_wrapper"], Role::Relay)
}

/// Records the code objects of the functions at `paths` (dotted, from the module).
fn capture(module: &Bound<'_, PyModule>, paths: &[&str], role: Role) -> PyResult<()> {
    for path in paths {
        let mut object = module.clone().into_any();
        for part in path.split('.') {
            object = object.getattr(part)?;
        }
        trust::add(object.getattr("__code__")?, role);
    }
    Ok(())
}

/// Modules whose import puts the finder in place before the import looks for them: every
/// watched module, and the packages of those that `python -m` runs (runpy finds those with
/// `importlib.util.find_spec`, which raises no `import` event).
const TRIGGERS: &[&str] = &["joblib.externals.loky.backend", "loky.backend"];

/// A package in [`TRIGGERS`] was imported and the module runpy may run from it has not been
/// looked for yet: the finder stays on `sys.meta_path` until it is.
static MAIN_PENDING: AtomicBool = AtomicBool::new(false);

fn triggers(name: &str) -> bool {
    if TRIGGERS.contains(&name) {
        MAIN_PENDING.store(true, Ordering::Relaxed);
        return true;
    }
    WATCHED.iter().any(|watch| watch.name == name)
}

/// On an `import` event (raised only for a module that is not imported yet, before its spec
/// is looked for): if the module is watched, puts the finder first on `sys.meta_path`. Every
/// other import costs a few string comparisons. Never fails the import.
pub fn on_import(py: Python<'_>, args: Option<Bound<'_, PyAny>>) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Some(args) = args else {
            return Ok(());
        };
        let Ok(args) = args.cast_into::<PyTuple>() else {
            return Ok(());
        };
        // (module, filename, sys.path, sys.meta_path, sys.path_hooks)
        let Ok(module) = args.get_borrowed_item(0) else {
            return Ok(());
        };
        if !ffi::str_view(&module).is_some_and(triggers) || !ffi::in_main_interpreter(py) {
            return Ok(());
        }
        let Ok(meta_path) = args.get_borrowed_item(3) else {
            return Ok(());
        };
        match meta_path.cast::<PyList>() {
            Ok(meta_path) => install(py, &meta_path),
            Err(_) => Ok(()),
        }
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(err)) => events::watch_failed(&err.to_string()),
        Err(_) => events::watch_failed("internal error"),
    }
}

fn install(py: Python<'_>, meta_path: &Bound<'_, PyList>) -> PyResult<()> {
    if meta_path
        .iter()
        .any(|finder| finder.is_instance_of::<Finder>())
    {
        return Ok(());
    }
    meta_path.insert(0, Bound::new(py, Finder)?)
}

/// The `sys.meta_path` finder.
#[pyclass(module = "pickleguard", name = "_ImportWatch", frozen)]
pub struct Finder;

#[pymethods]
impl Finder {
    /// The spec the other finders give for a watched module, with its loader wrapped; `None`
    /// for every other module, or if anything goes wrong here (the import then goes on
    /// without the watch, and the failure is logged).
    #[pyo3(signature = (fullname, path=None, target=None))]
    fn find_spec<'py>(
        slf: &Bound<'py, Self>,
        fullname: &str,
        path: Option<Bound<'py, PyAny>>,
        target: Option<Bound<'py, PyAny>>,
    ) -> Option<Bound<'py, PyAny>> {
        let index = WATCHED.iter().position(|watch| watch.name == fullname)?;
        if WATCHED[index].on_code.is_some() {
            MAIN_PENDING.store(false, Ordering::Relaxed);
        }
        // Its work for this import is done: the next watched import puts it back.
        if !MAIN_PENDING.load(Ordering::Relaxed) {
            if let Ok(meta_path) = slf
                .py()
                .import("sys")
                .and_then(|sys| sys.getattr("meta_path"))
            {
                let _ = meta_path.call_method1("remove", (slf,));
            }
        }
        match spec_with_watch(slf, index, fullname, path, target) {
            Ok(spec) => spec,
            Err(err) => {
                events::watch_failed(&format!("`{fullname}`: {err}"));
                None
            }
        }
    }
}

fn spec_with_watch<'py>(
    finder: &Bound<'py, Finder>,
    index: usize,
    fullname: &str,
    path: Option<Bound<'py, PyAny>>,
    target: Option<Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = finder.py();
    let meta_path = py.import("sys")?.getattr("meta_path")?;
    for other in meta_path.try_iter()? {
        let other = other?;
        if other.is(finder) || other.is_instance_of::<Finder>() {
            continue;
        }
        let Ok(find_spec) = other.getattr("find_spec") else {
            continue;
        };
        let spec = find_spec.call1((fullname, path.clone(), target.clone()))?;
        if spec.is_none() {
            continue;
        }
        let loader = spec.getattr("loader")?;
        if !loader.is_none() && loader.hasattr("exec_module")? {
            let wrapped = Bound::new(
                py,
                Loader {
                    inner: loader.unbind(),
                    index,
                },
            )?;
            spec.setattr("loader", wrapped)?;
        }
        return Ok(Some(spec));
    }
    Ok(None)
}

/// A watched module's loader, wrapping the real one.
#[pyclass(module = "pickleguard", name = "_WatchedLoader", frozen)]
pub struct Loader {
    inner: Py<PyAny>,
    index: usize,
}

#[pymethods]
impl Loader {
    fn create_module<'py>(
        &self,
        py: Python<'py>,
        spec: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.bind(py);
        if inner.hasattr("create_module")? {
            inner.call_method1("create_module", (spec,))
        } else {
            Ok(py.None().into_bound(py))
        }
    }

    /// Runs the module with its real loader in place, then the watch's action.
    fn exec_module(&self, py: Python<'_>, module: Bound<'_, PyAny>) -> PyResult<()> {
        let inner = self.inner.bind(py);
        module.setattr("__loader__", inner)?;
        if let Ok(spec) = module.getattr("__spec__") {
            if !spec.is_none() {
                spec.setattr("loader", inner)?;
            }
        }
        inner.call_method1("exec_module", (&module,))?;
        let watch = &WATCHED[self.index];
        if let (Some(action), Ok(module)) = (watch.after_exec, module.cast::<PyModule>()) {
            if let Err(err) = action(module) {
                events::watch_failed(&format!("`{}`: {err}", watch.name));
            }
        }
        Ok(())
    }

    /// The code runpy is about to run as `__main__`.
    fn get_code<'py>(
        &self,
        py: Python<'py>,
        fullname: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let code = self.inner.bind(py).call_method1("get_code", (fullname,))?;
        let watch = &WATCHED[self.index];
        if let (Some(action), false) = (watch.on_code, code.is_none()) {
            if let Err(err) = action(&code) {
                events::watch_failed(&format!("`{}`: {err}", watch.name));
            }
        }
        Ok(code)
    }

    /// Everything else is the real loader's.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.inner.bind(py).getattr(name)
    }
}
