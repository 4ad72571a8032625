//! The pure-Python unpickler, `pickle._Unpickler` (which joblib's `NumpyUnpickler` and others
//! subclass), under the same reconstruction rules as pickleguard's own unpickler.
//!
//! [`guard`] replaces, on the class, the methods that apply a resolved global (`load_reduce`,
//! `load_newobj`, `load_newobj_ex`, `load_build`, and `_instantiate`, which INST and OBJ
//! share) and their `dispatch` entries, with [`Step`]s that ask
//! [`reconstruct::plan`] and, when it says so, [`reconstruct::check_apply`] or
//! [`reconstruct::check_build`] before calling the original. Both the method and the entry are
//! replaced because subclasses reach them either way: joblib copies `dispatch` and calls
//! `Unpickler.load_build(self)` directly. `find_class` is wrapped to remember which
//! `(module, name)` each resolved object came from (the name check itself stays in the audit
//! hook, which `find_class` raises); a subclass that calls `super().find_class` is covered too.
//!
//! What `find_class` resolved is kept for the process (a nested unpickler, such as joblib's
//! for object arrays, applies what its parent resolved); what an unpickler built with a global
//! whose rules need it later is kept per unpickler, in its `__dict__`. Both keep the objects
//! themselves, so their ids stay unique. A step whose callable was not resolved by name, and
//! every step while no global has rules, costs a lookup and the original call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pickleguard_policy::reconstruct::{self, bounds, Apply, Plan, Value, Violation};
use pickleguard_policy::{Global, Mode};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rustc_hash::FxHashMap;

use crate::unpickler::encoded::Encoded;
use crate::unpickler::freeze::freeze;
use crate::unpickler::provenance::ruled_definition;
use crate::unpickler::value::{read_by_value, to_value, Origin};
use crate::{ffi, guard, refusal};

/// Marks a guarded `_Unpickler` class.
const GUARDED_MARK: &str = "__pickleguard_guarded__";
/// Where an unpickler keeps what it resolved and built.
const ORIGINS_KEY: &str = "__pickleguard_origins__";

/// One step of the pure-Python unpickler that pickleguard wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `find_class(module, name)`: remembers the result's name.
    FindClass,
    /// A `load_*` method (or `_instantiate`) that applies a global.
    Apply(Apply),
}

/// The wrapped methods: the class attribute, the opcode of its `dispatch` entry (`None` for
/// `_instantiate` and `find_class`, which are methods only), and the step.
const WRAPPED: [(&str, Option<u8>, Step); 6] = [
    ("find_class", None, Step::FindClass),
    ("load_reduce", Some(b'R'), Step::Apply(Apply::Reduce)),
    ("load_newobj", Some(0x81), Step::Apply(Apply::NewObj)),
    ("load_newobj_ex", Some(0x92), Step::Apply(Apply::NewObjEx)),
    ("load_build", Some(b'b'), Step::Apply(Apply::Build)),
    ("_instantiate", None, Step::Apply(Apply::Instantiate)),
];

/// Wraps `pickle._Unpickler` if `pickle` has defined it. Returns `true` once it is guarded (or
/// cannot be, after one stderr line saying so), `false` while there is nothing to guard yet.
pub fn guard(py: Python<'_>) -> PyResult<bool> {
    let Ok(pickle) = py.import("sys")?.getattr("modules")?.get_item("pickle") else {
        return Ok(false);
    };
    let Ok(class) = pickle.getattr("_Unpickler") else {
        return Ok(false);
    };
    if class.hasattr(GUARDED_MARK)? {
        return Ok(true);
    }
    if let Err(err) = wrap(&class) {
        ffi::stderr_line(&format!(
            "pickleguard: cannot guard pickle._Unpickler's reconstruction ({err}); the audit \
             hook still checks the globals it resolves"
        ));
    }
    Ok(true)
}

fn wrap(class: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = class.py();
    let dispatch = class.getattr("dispatch")?.cast_into::<PyDict>()?;
    // Every original is looked up before anything is replaced: all or nothing.
    let originals = WRAPPED
        .iter()
        .map(|&(name, _, _)| class.getattr(name))
        .collect::<PyResult<Vec<_>>>()?;
    for ((name, opcode, step), original) in WRAPPED.into_iter().zip(originals) {
        let wrapped = Bound::new(
            py,
            Wrapped {
                original: original.unbind(),
                step,
            },
        )?;
        class.setattr(name, &wrapped)?;
        if let Some(opcode) = opcode {
            dispatch.set_item(opcode, &wrapped)?;
        }
    }
    class.setattr(GUARDED_MARK, true)
}

/// A wrapped method of `pickle._Unpickler`. A descriptor, so it binds like the function it
/// replaces whether it is reached through an instance or through the class.
#[pyclass(frozen, module = "pickleguard", name = "_guarded_step")]
struct Wrapped {
    original: Py<PyAny>,
    step: Step,
}

#[pymethods]
impl Wrapped {
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let original = self.original.bind(py);
        let (Ok(unpickler), Ok(mode)) = (args.get_item(0), guard::get().map(|g| g.mode())) else {
            return Ok(original.call1(args)?.unbind());
        };
        if mode == Mode::Off {
            return Ok(original.call1(args)?.unbind());
        }
        match self.step {
            Step::FindClass => find_class(original, args),
            Step::Apply(Apply::Build) => build(original, &unpickler),
            Step::Apply(Apply::Instantiate) => instantiate(original, &unpickler, args),
            Step::Apply(apply) => apply_from_stack(original, &unpickler, apply),
        }
    }

    fn __get__(
        slf: Bound<'_, Self>,
        instance: Option<Bound<'_, PyAny>>,
        _owner: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match instance.filter(|instance| !instance.is_none()) {
            None => Ok(slf.into_any().unbind()),
            Some(instance) => {
                // Looked up each time: a Python object must not outlive its interpreter in a
                // static (re-initialised hosts, subinterpreters).
                let method_type = slf.py().import("types")?.getattr("MethodType")?;
                Ok(method_type.call1((slf, instance))?.unbind())
            }
        }
    }
}

/// `find_class`: the original (which raises the audit event), then remember the name.
fn find_class(original: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let resolved = original.call1(args)?;
    if let (Ok(module), Ok(name)) = (args.get_item(1), args.get_item(2)) {
        if let (Ok(module), Ok(name)) = (module.cast::<PyString>(), name.cast::<PyString>()) {
            let global = Global::new(module.to_cow()?, name.to_cow()?);
            // The rules follow the object: a class or function named by a spelling without
            // rules takes the rules of the global it is defined as (s14).
            let ruled = (!reconstruct::has_rules(&global))
                .then(|| ruled_definition(&resolved))
                .flatten();
            remember_resolved(&resolved, global);
            if let Some(ruled) = ruled {
                remember_resolved(&resolved, ruled);
            }
        }
    }
    Ok(resolved.unbind())
}

/// Applies `global`'s rules to one application, records the result if the rules need it later,
/// and runs `original` in between. `args` is what the rules see as the arguments.
fn apply_checked<'py>(
    unpickler: &Bound<'py, PyAny>,
    applied: &Bound<'py, PyAny>,
    apply: Apply,
    args: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyAny>>,
    run: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let globals = resolved_names(applied);
    if globals.is_empty() {
        // Not a global the pickle resolved by name: no rules to apply (the common case for
        // objects the pickle built, and all of it while no global has rules).
        return Ok(run()?.unbind());
    }
    let mut origins = None;
    for global in &globals {
        check_apply(unpickler, &mut origins, global, apply, args, kwargs)?;
    }
    if globals
        .iter()
        .any(|g| g.module == "_codecs" && g.name == "encode")
    {
        let record = Origins::of(unpickler)?;
        let mut encoded = record
            .get()
            .encoded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for global in &globals {
            encoded
                .check(global, args)
                .map_err(|violation| refuse(unpickler.py(), global, apply, &violation))?;
        }
    }
    // The arguments are converted before the call: a callee may change them (pandas'
    // `_new_DatetimeIndex` pops items from its dict).
    let record = match globals.into_iter().find(|g| worth_recording(g, apply)) {
        Some(by) => {
            let args = match kwargs {
                Some(kwargs) => PyTuple::new(unpickler.py(), [args, kwargs])?.into_any(),
                None => args.clone(),
            };
            let origins = Origins::of(unpickler)?;
            let value = origins.get().snapshot(&args);
            let kept = origins.get().kept.load(Ordering::Relaxed);
            if kept + bounds::size(&value) > bounds::MAX_KEPT {
                return Err(refuse(
                    unpickler.py(),
                    &by,
                    apply,
                    &reconstruct::kept_too_many(),
                ));
            }
            Some((by, origins, value))
        }
        None => None,
    };
    let result = run()?;
    if let Some((by, origins, value)) = record {
        if let Some(built) = stack_top(unpickler, 1)? {
            if !read_by_value(&built[0]) {
                origins.get().built(&built[0], by, apply, value);
            }
        }
    }
    Ok(result.unbind())
}

/// REDUCE, NEWOBJ and NEWOBJ_EX: the callable and its arguments are on top of the stack.
fn apply_from_stack(
    original: &Bound<'_, PyAny>,
    unpickler: &Bound<'_, PyAny>,
    apply: Apply,
) -> PyResult<Py<PyAny>> {
    let depth = if apply == Apply::NewObjEx { 3 } else { 2 };
    let Some(top) = stack_top(unpickler, depth)? else {
        return Ok(original.call1((unpickler,))?.unbind());
    };
    apply_checked(unpickler, &top[0], apply, &top[1], top.get(2), || {
        // Checked arguments a library keeps go over as a copy the pickle cannot reach through
        // its memo (torch's `backward_hooks`), as in pickleguard's own unpickler.
        if apply == Apply::Reduce && resolved_names(&top[0]).iter().any(reconstruct::keeps_args) {
            if let Ok(stack) = unpickler.getattr("stack")?.cast_into::<PyList>() {
                if let Some(last) = stack.len().checked_sub(1) {
                    stack.set_item(last, freeze(&top[1])?)?;
                }
            }
        }
        original.call1((unpickler,))
    })
}

/// INST and OBJ: `_instantiate(klass, args)` with `args` a list.
fn instantiate(
    original: &Bound<'_, PyAny>,
    unpickler: &Bound<'_, PyAny>,
    call_args: &Bound<'_, PyTuple>,
) -> PyResult<Py<PyAny>> {
    let (Ok(klass), Ok(args)) = (call_args.get_item(1), call_args.get_item(2)) else {
        return Ok(original.call1(call_args)?.unbind());
    };
    apply_checked(unpickler, &klass, Apply::Instantiate, &args, None, || {
        original.call1(call_args)
    })
}

/// BUILD: the state on top of the stack, the object under it.
fn build<'py>(original: &Bound<'py, PyAny>, unpickler: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
    let Some(top) = stack_top(unpickler, 2)? else {
        return Ok(original.call1((unpickler,))?.unbind());
    };
    let (target, state) = (&top[0], &top[1]);
    // BUILD onto a class or function the pickle resolved sets attributes on it for the whole
    // process; the rules refuse that for every pack global, as pickleguard's unpickler does.
    if let Some(global) = resolved_names(target).into_iter().next() {
        let state_value = to_value(state, &resolved_origin);
        reconstruct::check_build(&Value::Global(global.clone()), &state_value)
            .map_err(|violation| refuse(unpickler.py(), &global, Apply::Build, &violation))?;
    }
    // Only an unpickler that recorded an object built by a global with rules has anything more
    // to check here.
    let Some(origins) = Origins::existing(unpickler)? else {
        return Ok(original.call1((unpickler,))?.unbind());
    };
    let origins = origins.get();
    let by = origins.built_by(target);
    let mut state = state.clone();
    if let Some(by) = &by {
        match reconstruct::plan(by, Apply::Build) {
            Plan::Allow => {}
            Plan::Refuse(violation) => {
                return Err(refuse(unpickler.py(), by, Apply::Build, &violation))
            }
            Plan::CheckValues => {
                let lookup = |object: &Bound<'py, PyAny>| origins.origin(object);
                let target_value = to_value(target, &lookup);
                let state_value = to_value(&state, &lookup);
                reconstruct::check_build(&target_value, &state_value)
                    .map_err(|violation| refuse(unpickler.py(), by, Apply::Build, &violation))?;
                // A state the library keeps goes over as a copy the pickle cannot reach
                // through its memo (numpy keeps a dtype's fields dict).
                if reconstruct::keeps_state(by) {
                    state = freeze(&state)?;
                    if let Ok(stack) = unpickler.getattr("stack")?.cast_into::<PyList>() {
                        let last = stack.len() - 1;
                        stack.set_item(last, &state)?;
                    }
                }
            }
        }
    }
    let result = original.call1((unpickler,))?;
    if by.is_some() {
        origins.set_state(target, &state);
    }
    Ok(result.unbind())
}

/// Asks the rules about applying `global`; converts the arguments only when they say so (then
/// with the unpickler's record of what it built, fetched into `origins` once).
fn check_apply<'py>(
    unpickler: &Bound<'py, PyAny>,
    origins: &mut Option<Bound<'py, Origins>>,
    global: &Global,
    apply: Apply,
    args: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let py = args.py();
    match reconstruct::plan(global, apply) {
        Plan::Allow => Ok(()),
        Plan::Refuse(violation) => Err(refuse(py, global, apply, &violation)),
        Plan::CheckValues => {
            if origins.is_none() {
                *origins = Some(Origins::of(unpickler)?);
            }
            let record = origins.as_ref().map(|origins| origins.get());
            let lookup = |object: &Bound<'py, PyAny>| match record {
                Some(record) => record.origin(object),
                None => resolved_origin(object),
            };
            // The pure-Python unpickler applies any iterable (`func(*args)`); the rules see
            // a list of arguments (INST, OBJ) as the tuple it is called with.
            let args = match to_value(args, &lookup) {
                Value::List(items) => Value::Tuple(items),
                other => other,
            };
            let kwargs = kwargs.map(|kwargs| to_value(kwargs, &lookup));
            reconstruct::check_apply(global, apply, &args, kwargs.as_ref())
                .map_err(|violation| refuse(py, global, apply, &violation))
        }
    }
}

/// Whether an object built by `global` needs remembering: its rules check it later (as a BUILD
/// target) or as it is applied (so its arguments may be checked as a nested value).
/// Whether what `global` builds is remembered: whenever the packs give it rules, as
/// pickleguard's own unpickler does, so a later check sees it as `Value::Built` (a pandas
/// manager's check reads the index it was given).
fn worth_recording(global: &Global, _apply: Apply) -> bool {
    reconstruct::has_rules(global)
}

/// The top `depth` items of the unpickler's stack, bottom first; `None` when the stack is not a
/// list or is shorter (the original method then raises CPython's own error).
fn stack_top<'py>(
    unpickler: &Bound<'py, PyAny>,
    depth: usize,
) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    let Ok(stack) = unpickler.getattr("stack")?.cast_into::<PyList>() else {
        return Ok(None);
    };
    let len = stack.len();
    if len < depth {
        return Ok(None);
    }
    (len - depth..len)
        .map(|index| stack.get_item(index))
        .collect::<PyResult<Vec<_>>>()
        .map(Some)
}

/// An `UnsafeFileError` naming the check that failed and the global.
fn refuse(py: Python<'_>, global: &Global, apply: Apply, violation: &Violation) -> PyErr {
    refusal::refuse_reconstruction(py, global, apply, violation)
}

/// Every object a `find_class` returned, with the names it was resolved under (usually one),
/// for the whole interpreter: a nested unpickler (joblib's object arrays) applies what its
/// parent resolved. Only globals the policy let through are ever recorded, so the map is
/// bounded by the allowlist; the objects are kept alive so their ids are never reused.
///
/// Each interpreter (and each lifetime of the main one) keeps its own registry in its
/// per-interpreter dictionary: the objects belong to that interpreter, and no other may touch
/// them.
#[pyclass(frozen, module = "pickleguard", name = "_resolved")]
struct Registry {
    map: Mutex<ResolvedMap>,
}

/// Object id -> the object and the names it was resolved under.
type ResolvedMap = FxHashMap<usize, (Py<PyAny>, Vec<Global>)>;

/// The key of the registry in the interpreter's dictionary.
const REGISTRY_KEY: &str = "pickleguard.resolved";

fn registry(py: Python<'_>) -> Option<Bound<'_, Registry>> {
    let store = ffi::interpreter_dict(py)?;
    if let Ok(Some(found)) = store.get_item(REGISTRY_KEY) {
        return found.cast_into::<Registry>().ok();
    }
    let made = Bound::new(
        py,
        Registry {
            map: Mutex::new(FxHashMap::default()),
        },
    )
    .ok()?;
    store.set_item(REGISTRY_KEY, &made).ok()?;
    Some(made)
}

fn with_map<T>(py: Python<'_>, use_map: impl FnOnce(&mut ResolvedMap) -> T) -> Option<T> {
    let registry = registry(py)?;
    // Entries are only ever inserted or extended whole, so a poisoned map is consistent.
    let mut map = registry
        .get()
        .map
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(use_map(&mut map))
}

fn remember_resolved(object: &Bound<'_, PyAny>, global: Global) {
    with_map(object.py(), |map| {
        let (_, globals) = map
            .entry(id(object))
            .or_insert_with(|| (object.clone().unbind(), Vec::new()));
        if !globals.contains(&global) {
            globals.push(global);
        }
    });
}

/// The names `object` was resolved under; empty for anything else.
fn resolved_names(object: &Bound<'_, PyAny>) -> Vec<Global> {
    with_map(object.py(), |map| {
        map.get(&id(object))
            .map(|(_, globals)| globals.clone())
            .unwrap_or_default()
    })
    .unwrap_or_default()
}

fn resolved_origin<'py>(object: &Bound<'py, PyAny>) -> Option<Origin<'py>> {
    let first = with_map(object.py(), |map| {
        map.get(&id(object))
            .and_then(|(_, globals)| globals.first().cloned())
    })??;
    Some(Origin::Value(Value::Global(first)))
}

/// What one unpickler built by applying a global whose rules need it later, by object id.
#[pyclass(frozen, module = "pickleguard", name = "_origins")]
struct Origins {
    records: Mutex<FxHashMap<usize, Built>>,
    /// The long strs this unpickler encoded (cost amplification through the memo).
    encoded: Mutex<Encoded>,
    /// The record count at which records nothing else holds are forgotten next.
    prune_at: AtomicUsize,
    /// Values the records' arguments hold, at most `bounds::MAX_KEPT`.
    kept: AtomicUsize,
}

/// How many built objects an unpickler records before the first look for dropped ones.
const PRUNE_FIRST: usize = 64;

/// One object built by applying a global, kept alive so its id is not reused.
struct Built {
    _object: Py<PyAny>,
    by: Global,
    apply: Apply,
    args: Arc<Value>,
    /// How many values `args` holds.
    size: usize,
    state: Option<Py<PyAny>>,
}

impl Origins {
    /// The unpickler's record, created on first use. An unpickler without a `__dict__` gets a
    /// fresh one each time (nothing is remembered, so built objects stay opaque).
    fn of<'py>(unpickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Origins>> {
        if let Some(found) = Origins::existing(unpickler)? {
            return Ok(found);
        }
        let fresh = Bound::new(
            unpickler.py(),
            Origins {
                records: Mutex::new(FxHashMap::default()),
                encoded: Mutex::new(Encoded::default()),
                prune_at: AtomicUsize::new(PRUNE_FIRST),
                kept: AtomicUsize::new(0),
            },
        )?;
        if let Some(dict) = instance_dict(unpickler) {
            dict.set_item(ORIGINS_KEY, &fresh)?;
        }
        Ok(fresh)
    }

    /// The unpickler's record, if it made one.
    fn existing<'py>(unpickler: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, Origins>>> {
        let Some(dict) = instance_dict(unpickler) else {
            return Ok(None);
        };
        Ok(dict
            .get_item(ORIGINS_KEY)?
            .and_then(|found| found.cast_into::<Origins>().ok()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<usize, Built>> {
        // Records are only ever inserted or replaced whole, so a poisoned map is consistent.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `args` as the checks see them now.
    fn snapshot(&self, args: &Bound<'_, PyAny>) -> Value {
        to_value(args, &|object| self.origin(object))
    }

    fn built(&self, object: &Bound<'_, PyAny>, by: Global, apply: Apply, args: Value) {
        let py = object.py();
        let mut dropped = Vec::new();
        {
            let mut records = self.lock();
            if records.len() >= self.prune_at.load(Ordering::Relaxed) {
                // Forget what only its record still holds: the pickle dropped it and cannot
                // name it again; keeping it would hold every large object a loop builds and
                // drops.
                let gone: Vec<usize> = records
                    .iter()
                    .filter(|(_, built)| ffi::reference_count(built._object.bind(py)) <= 1)
                    .map(|(&key, _)| key)
                    .collect();
                dropped.extend(gone.iter().filter_map(|key| records.remove(key)));
                self.prune_at
                    .store((records.len() * 2).max(PRUNE_FIRST), Ordering::Relaxed);
            }
            let size = bounds::size(&args);
            let replaced = records.insert(
                id(object),
                Built {
                    _object: object.clone().unbind(),
                    by,
                    apply,
                    args: Arc::new(args),
                    size,
                    state: None,
                },
            );
            let freed: usize = dropped
                .iter()
                .chain(&replaced)
                .map(|built| built.size)
                .sum();
            self.kept.fetch_add(size, Ordering::Relaxed);
            self.kept.fetch_sub(freed, Ordering::Relaxed);
            dropped.extend(replaced);
        }
        // Freed after the lock is released: a destructor may run Python code.
        drop(dropped);
    }

    fn set_state(&self, object: &Bound<'_, PyAny>, new_state: &Bound<'_, PyAny>) {
        if let Some(built) = self.lock().get_mut(&id(object)) {
            built.state = Some(new_state.clone().unbind());
        }
    }

    /// The global that built `object`, if a remembered one did.
    fn built_by(&self, object: &Bound<'_, PyAny>) -> Option<Global> {
        self.lock().get(&id(object)).map(|built| built.by.clone())
    }

    /// `object`'s origin for the value conversion (no lock is held while it converts).
    fn origin<'py>(&self, object: &Bound<'py, PyAny>) -> Option<Origin<'py>> {
        let py = object.py();
        let built = {
            let records = self.lock();
            records.get(&id(object)).map(|built| {
                (
                    built.by.clone(),
                    built.apply,
                    built.args.clone(),
                    built.state.as_ref().map(|state| state.clone_ref(py)),
                )
            })
        };
        match built {
            Some((by, apply, args, state)) => Some(Origin::Built {
                by,
                apply,
                args,
                state: state.map(|state| state.into_bound(py)),
            }),
            None => resolved_origin(object),
        }
    }
}

/// The instance `__dict__` of an unpickler, if it has one.
fn instance_dict<'py>(unpickler: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    unpickler
        .getattr("__dict__")
        .ok()
        .and_then(|dict| dict.cast_into::<PyDict>().ok())
}

fn id(object: &Bound<'_, PyAny>) -> usize {
    object.as_ptr() as usize
}
