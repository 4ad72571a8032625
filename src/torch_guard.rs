//! Code-bearing torch formats. A TorchScript archive holds a compiled program and a
//! torch.package archive holds Python modules; both run that code as they load, in C++ or
//! through the archive's own importer, where no `pickle.find_class` event is raised. So the
//! loaders themselves are gated when torch imports them ([`crate::import_watch`]):
//! `torch.jit.load` (which `torch.load` hands TorchScript archives to) and
//! `torch.package.PackageImporter`.
//!
//! `enforce` mode refuses them with an `UnsafeFileError` that says how to allow the format on
//! purpose (`allow_code`); `warn` mode logs the load and lets it run; `off` checks nothing.

use pickleguard_policy::settings::{vars, CodeFormat};
use pickleguard_policy::{Global, Mode};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::{caller, events, guard, refusal};

/// Wraps a loader in a Python function that calls the gate first. A real function, so it binds
/// as a method (`PackageImporter.__init__`) and `functools.wraps` keeps its name, docs and
/// signature (`__wrapped__`).
const WRAPPER: &str = "
import functools

def wrap(original, gate, fmt):
    @functools.wraps(original)
    def guarded(*args, **kwargs):
        gate(fmt)
        return original(*args, **kwargs)
    return guarded
";

static WRAP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// After `torch.jit._serialization` ran: gate its `load`, before `torch.jit` re-exports it.
pub fn after_jit_serialization(module: &Bound<'_, PyModule>) -> PyResult<()> {
    gate_attribute(module.as_any(), "load", CodeFormat::TorchScript)
}

/// After `torch.package.package_importer` ran: gate `PackageImporter.__init__`.
pub fn after_package_importer(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let class = module.getattr("PackageImporter")?;
    gate_attribute(&class, "__init__", CodeFormat::TorchPackage)
}

fn gate_attribute(owner: &Bound<'_, PyAny>, attribute: &str, format: CodeFormat) -> PyResult<()> {
    let py = owner.py();
    let wrap = WRAP.get_or_try_init(py, || {
        let globals = PyDict::new(py);
        let builtins = py.import("builtins")?;
        let code = builtins.call_method1("compile", (WRAPPER, "<pickleguard>", "exec"))?;
        builtins.call_method1("exec", (code, &globals))?;
        let wrap = globals
            .get_item("wrap")?
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("no `wrap` in the wrapper"))?;
        Ok::<_, PyErr>(wrap.unbind())
    })?;
    let gate = wrap_pyfunction!(code_archive_gate, py)?;
    let original = owner.getattr(attribute)?;
    let guarded = wrap.bind(py).call1((original, gate, format.name()))?;
    owner.setattr(attribute, guarded)
}

/// The global an `UnsafeFileError` for a code archive names.
fn loader_global(format: CodeFormat) -> Global {
    match format {
        CodeFormat::TorchScript => Global::new("torch.jit", "load"),
        CodeFormat::TorchPackage => Global::new("torch.package", "PackageImporter"),
    }
}

/// Called before a gated loader runs: lets it run, logs it (`warn`), or refuses it.
#[pyfunction]
fn code_archive_gate(py: Python<'_>, format: &str) -> PyResult<()> {
    let guard = guard::get()?;
    let format: CodeFormat = format
        .parse()
        .map_err(|err| pyo3::exceptions::PyRuntimeError::new_err(format!("{err}")))?;
    let mode = guard.mode();
    if mode == Mode::Off || guard.allow_code.contains(&format) {
        return Ok(());
    }
    let location = caller::find(py).map(|c| c.location);
    let global = loader_global(format);
    let refused = mode != Mode::Warn;
    events::code_archive(format.name(), &global, refused, mode, location.as_deref());
    if !refused {
        return Ok(());
    }
    let what = match format {
        CodeFormat::TorchScript => "a TorchScript archive: the file contains code (a compiled TorchScript program, which runs as it loads)",
        CodeFormat::TorchPackage => "a torch.package archive: the file contains code (Python modules, which run as they are imported)",
    };
    let mut message = format!("pickleguard refused to load {what}.");
    if let Some(location) = &location {
        message.push_str(&format!(" The load was called from {location}."));
    }
    message.push_str(&format!(
        " If you trust this file and mean to run its code, allow {} archives with {}={} in the environment, or `allow_code = [\"{}\"]` in the config file.",
        format.name(),
        vars::ALLOW_CODE,
        format.name(),
        format.name()
    ));
    Err(refusal::raise_code_archive(py, &global, message))
}
