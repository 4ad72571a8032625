//! Validated reconstruction: where the objects of one load came from, and the rules asked
//! before a pickle applies a global or gives an object a state.
//!
//! Every object `find_class` returned is remembered with its `(module, name)`, and every object
//! built by applying a global that has rules is remembered with that global, how it was
//! applied, its arguments and (after BUILD) its state. Before REDUCE, NEWOBJ, NEWOBJ_EX, INST,
//! OBJ or BUILD, [`pickleguard_policy::reconstruct::plan`] decides from the names alone; only
//! a `CheckValues` plan converts the arguments (bytes by length, never copied) and calls the
//! check, before any library code sees them. Objects are keyed by address and kept alive here,
//! so an address is never reused while it is a key; a built object that only its record still
//! holds is forgotten (the pickle can no longer reach it), so memory stays what the pickle's own
//! objects need.

use std::rc::Rc;
use std::sync::Arc;

use pickleguard_policy::reconstruct::{self, bounds, Apply, Plan, Value, Violation, ALL_APPLIES};
use pickleguard_policy::{Global, Mode};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyTuple, PyType};
use rustc_hash::FxHashMap;

use super::memo::Memo;
use super::value::{self, Origin};
use crate::{ffi, guard, refusal};

/// How many built objects are recorded before the first look for ones the pickle dropped.
const PRUNE_FIRST: usize = 64;

/// A reconstruction step the machine is about to take.
pub enum Step<'a, 'py> {
    /// REDUCE, NEWOBJ, NEWOBJ_EX or INST/OBJ applying `target` to `args`.
    Apply {
        target: &'a Bound<'py, PyAny>,
        args: &'a Bound<'py, PyTuple>,
        kwargs: Option<&'a Bound<'py, PyDict>>,
        apply: Apply,
    },
    /// BUILD giving `state` to `instance`.
    Build {
        instance: &'a Bound<'py, PyAny>,
        state: &'a Bound<'py, PyAny>,
    },
}

impl<'a, 'py> Step<'a, 'py> {
    /// An application of `target`.
    pub fn apply(
        target: &'a Bound<'py, PyAny>,
        args: &'a Bound<'py, PyTuple>,
        kwargs: Option<&'a Bound<'py, PyDict>>,
        apply: Apply,
    ) -> Self {
        Step::Apply {
            target,
            args,
            kwargs,
            apply,
        }
    }

    /// A BUILD.
    pub fn build(instance: &'a Bound<'py, PyAny>, state: &'a Bound<'py, PyAny>) -> Self {
        Step::Build { instance, state }
    }
}

/// An object `find_class` returned.
struct Resolved<'py> {
    global: Rc<Global>,
    /// Keeps the address valid as a key.
    _object: Bound<'py, PyAny>,
    /// Whether any opcode has rules for it (computed on first use).
    has_rules: Option<bool>,
    /// The plan for each opcode (index: position in [`ALL_APPLIES`]) and whether the checked
    /// arguments must be private, computed on first use: the rules are fixed for the process.
    plans: [Option<(Plan, bool)>; ALL_APPLIES.len()],
}

/// An object built by applying a global that has rules.
struct Built<'py> {
    by: Rc<Global>,
    apply: Apply,
    /// The arguments as they were when it was applied; for NEWOBJ_EX the tuple
    /// `(args, kwargs)`.
    args: Arc<Value>,
    /// How many values `args` holds (counted against `bounds::MAX_KEPT`).
    size: usize,
    state: Option<Bound<'py, PyAny>>,
    /// Keeps the address valid as a key.
    _object: Bound<'py, PyAny>,
}

/// What one load knew about the objects it left in the memo, for the next `load()` of the same
/// `Unpickler`: the memo outlives a load (as in CPython), so a later pickle can fetch a class an
/// earlier one resolved, or an object it built, and must meet the same rules.
#[derive(Default)]
pub struct Carried {
    resolved: Vec<(Py<PyAny>, Global)>,
    built: Vec<CarriedBuilt>,
}

struct CarriedBuilt {
    object: Py<PyAny>,
    by: Global,
    apply: Apply,
    args: Arc<Value>,
    state: Option<Py<PyAny>>,
}

/// What one load knows about where its objects came from.
pub struct Provenance<'py> {
    py: Python<'py>,
    resolved: FxHashMap<usize, Resolved<'py>>,
    built: FxHashMap<usize, Built<'py>>,
    /// The step just checked whose result must be remembered: (global, apply, args).
    pending: Option<(Rc<Global>, Apply, Value)>,
    /// Values the records' arguments hold, at most `bounds::MAX_KEPT`.
    kept: usize,
    /// The guard's mode, read at the start of the load.
    mode: Mode,
    /// The record count at which [`Provenance::prune`] runs next.
    prune_at: usize,
    /// The BUILD just checked goes onto an object whose library keeps its state's containers
    /// ([`reconstruct::keeps_state`]): hand over a private copy.
    checked_state: bool,
    /// Whether the application just checked must go to a private copy of its arguments
    /// (`reconstruct::keeps_args`).
    checked_args: bool,
    /// The long strs this load encoded (cost amplification through the memo).
    encoded: super::encoded::Encoded,
}

/// The ruled global a class or function is defined as (`__module__`, `__qualname__`), when
/// the name the pickle used has no rules: the rules follow the object, so an operator's allow
/// entry for another spelling of a ruled global (`numpy._core.multiarray.ndarray` is
/// `numpy.ndarray`) does not switch its rules off (s14). Classes and functions only: reading
/// their two attributes runs no code of the pickle's choosing.
pub(crate) fn ruled_definition(object: &Bound<'_, PyAny>) -> Option<Global> {
    let kind: String = object.get_type().name().ok()?.extract().ok()?;
    let plain = object.is_instance_of::<PyType>()
        || matches!(kind.as_str(), "function" | "builtin_function_or_method");
    if !plain {
        return None;
    }
    let module: String = object.getattr("__module__").ok()?.extract().ok()?;
    let qualname: String = object.getattr("__qualname__").ok()?.extract().ok()?;
    let global = Global::new(module, qualname);
    if !reconstruct::has_rules(&global) {
        return None;
    }
    // A class may claim any `__module__` and `__qualname__`: the ruled global must resolve to
    // this very object, in a module already imported (nothing is imported here).
    let modules = PyModule::import(object.py(), "sys")
        .ok()?
        .getattr("modules")
        .ok()?;
    let mut found = modules.get_item(&global.module).ok()?;
    for part in global.name.split('.') {
        found = found.getattr(part).ok()?;
    }
    found.is(object).then_some(global)
}

fn key(object: &Bound<'_, PyAny>) -> usize {
    object.as_ptr() as usize
}

impl<'py> Provenance<'py> {
    /// Knows nothing yet.
    pub fn new(py: Python<'py>) -> Self {
        let mode = guard::get().map_or(Mode::Enforce, |guard| guard.mode());
        Provenance {
            py,
            resolved: FxHashMap::default(),
            built: FxHashMap::default(),
            pending: None,
            mode,
            checked_state: false,
            checked_args: false,
            encoded: Default::default(),
            prune_at: PRUNE_FIRST,
            kept: 0,
        }
    }

    /// Takes over what an earlier load of the same unpickler knew about its memo.
    pub fn carry_in(&mut self, carried: &Carried) {
        let py = self.py;
        for (object, global) in &carried.resolved {
            let object = object.bind(py).clone();
            self.resolved.insert(
                key(&object),
                Resolved {
                    global: Rc::new(global.clone()),
                    _object: object,
                    has_rules: None,
                    plans: Default::default(),
                },
            );
        }
        for record in &carried.built {
            let object = record.object.bind(py).clone();
            let size = bounds::size(&record.args);
            self.kept += size;
            self.built.insert(
                key(&object),
                Built {
                    by: Rc::new(record.by.clone()),
                    apply: record.apply,
                    args: record.args.clone(),
                    size,
                    state: record.state.as_ref().map(|state| state.bind(py).clone()),
                    _object: object,
                },
            );
        }
    }

    /// What the next load of the same unpickler must know: the records of the objects in the
    /// memo (a pickle reaches an earlier pickle's objects only through the memo).
    pub fn carry_out(&self, memo: &Memo) -> Carried {
        let mut carried = Carried::default();
        for (_, object) in memo.entries() {
            let address = object.as_ptr() as usize;
            if let Some(resolved) = self.resolved.get(&address) {
                carried
                    .resolved
                    .push((object.clone_ref(self.py), (*resolved.global).clone()));
            }
            if let Some(built) = self.built.get(&address) {
                carried.built.push(CarriedBuilt {
                    object: object.clone_ref(self.py),
                    by: (*built.by).clone(),
                    apply: built.apply,
                    args: built.args.clone(),
                    state: built.state.as_ref().map(|state| state.clone().unbind()),
                });
            }
        }
        carried
    }

    /// `object` is what `find_class(module, name)` returned.
    #[inline]
    pub fn resolved(
        &mut self,
        module: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        object: &Bound<'py, PyAny>,
    ) {
        if self.mode == Mode::Off {
            return;
        }
        let existing = self.resolved.get_mut(&key(object));
        if let Some(existing) = &existing {
            if existing.has_rules == Some(true) {
                return;
            }
        }
        let (Some(module), Some(name)) = (ffi::str_view(module), ffi::str_view(name)) else {
            return;
        };
        if let Some(existing) = existing {
            // One object, another name (an operator's allow entry can name an alias of a
            // ruled global): the rules follow the object, so a name that has rules replaces
            // one that has none (s14: the alias resolved first let `numpy.ndarray`, named
            // next, be applied).
            let same = existing.global.module == module && existing.global.name == name;
            let existing_rules = *existing
                .has_rules
                .get_or_insert_with(|| reconstruct::has_rules(&existing.global));
            if same || existing_rules || !reconstruct::has_rules(&Global::new(module, name)) {
                return;
            }
        }
        let mut global = Global::new(module, name);
        if !reconstruct::has_rules(&global) {
            if let Some(ruled) = ruled_definition(object) {
                global = ruled;
            }
        }
        self.resolved.insert(
            key(object),
            Resolved {
                global: Rc::new(global),
                _object: object.clone(),
                has_rules: None,
                plans: Default::default(),
            },
        );
    }

    /// Checks `step` before any library code sees its values.
    #[inline]
    pub fn before(&mut self, step: Step<'_, 'py>) -> PyResult<()> {
        self.pending = None;
        self.checked_state = false;
        self.checked_args = false;
        if self.mode == Mode::Off {
            return Ok(());
        }
        match step {
            Step::Apply {
                target,
                args,
                kwargs,
                apply,
            } => self.before_apply(target, args, kwargs, apply),
            Step::Build { instance, state } => self.before_build(instance, state),
        }
    }

    fn before_apply(
        &mut self,
        target: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
        apply: Apply,
    ) -> PyResult<()> {
        let Some(resolved) = self.resolved.get_mut(&key(target)) else {
            return Ok(());
        };
        let has_rules = *resolved
            .has_rules
            .get_or_insert_with(|| reconstruct::has_rules(&resolved.global));
        if !has_rules {
            return Ok(());
        }
        let slot = ALL_APPLIES
            .iter()
            .position(|&a| a == apply)
            .unwrap_or_default();
        let (plan, keeps_args) = resolved.plans[slot]
            .get_or_insert_with(|| {
                (
                    reconstruct::plan(&resolved.global, apply),
                    reconstruct::keeps_args(&resolved.global),
                )
            })
            .clone();
        let global = resolved.global.clone();
        if let Err(violation) = self.encoded.check(&global, args.as_any()) {
            self.violation(&global, apply, violation)?;
        }
        // The arguments are converted before the call, for the checks and for what is
        // remembered of the result: a callee may change them afterwards (pandas'
        // `_new_DatetimeIndex` pops items from its dict).
        let args_value = self.to_value(args.as_any());
        let kwargs_value = kwargs.map(|kwargs| self.to_value(kwargs.as_any()));
        match plan {
            Plan::Allow => {}
            Plan::Refuse(violation) => self.violation(&global, apply, violation)?,
            Plan::CheckValues => {
                if let Err(violation) =
                    reconstruct::check_apply(&global, apply, &args_value, kwargs_value.as_ref())
                {
                    self.violation(&global, apply, violation)?;
                }
                self.checked_args = keeps_args;
            }
        }
        let args = match kwargs_value {
            Some(kwargs_value) => Value::Tuple(vec![args_value, kwargs_value]),
            None => args_value,
        };
        if self.kept + bounds::size(&args) > bounds::MAX_KEPT {
            self.prune();
            if self.kept + bounds::size(&args) > bounds::MAX_KEPT {
                self.violation(&global, apply, reconstruct::kept_too_many())?;
            }
        }
        self.pending = Some((global, apply, args));
        Ok(())
    }

    fn before_build(
        &mut self,
        instance: &Bound<'py, PyAny>,
        state: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let Some(built) = self.built.get(&key(instance)) else {
            // BUILD onto a class or function the pickle resolved would set attributes on it
            // for the whole process; the rules refuse that for every pack global.
            if let Some(resolved) = self.resolved.get(&key(instance)) {
                let target = Value::Global((*resolved.global).clone());
                let global = resolved.global.clone();
                let state = self.to_value(state);
                if let Err(violation) = reconstruct::check_build(&target, &state) {
                    return self.violation(&global, Apply::Build, violation);
                }
            }
            return Ok(());
        };
        let global = built.by.clone();
        match reconstruct::plan(&global, Apply::Build) {
            Plan::Allow => Ok(()),
            Plan::Refuse(violation) => self.violation(&global, Apply::Build, violation),
            Plan::CheckValues => {
                let target = self.to_value(instance);
                let state = self.to_value(state);
                match reconstruct::check_build(&target, &state) {
                    Ok(()) => {
                        self.checked_state = reconstruct::keeps_state(&global);
                        Ok(())
                    }
                    Err(violation) => self.violation(&global, Apply::Build, violation),
                }
            }
        }
    }

    /// Whether the application just checked must be given a private copy of its arguments
    /// ([`super::freeze`]): a check judged them, and the library keeps what it is given.
    #[inline]
    pub fn args_must_be_private(&mut self) -> bool {
        std::mem::take(&mut self.checked_args)
    }

    /// Whether the BUILD just checked must hand over a private copy of its state
    /// ([`super::freeze`]): a check judged it, and the library keeps what it is given.
    #[inline]
    pub fn state_must_be_private(&mut self) -> bool {
        std::mem::take(&mut self.checked_state)
    }

    /// The step checked last produced `object`.
    #[inline]
    pub fn after(&mut self, object: &Bound<'py, PyAny>) {
        if let Some((by, apply, args)) = self.pending.take() {
            if value::read_by_value(object) {
                return;
            }
            if self.built.len() >= self.prune_at {
                self.prune();
            }
            let size = bounds::size(&args);
            self.kept += size;
            let replaced = self.built.insert(
                key(object),
                Built {
                    by,
                    apply,
                    args: Arc::new(args),
                    size,
                    state: None,
                    _object: object.clone(),
                },
            );
            if let Some(replaced) = replaced {
                self.kept -= replaced.size;
            }
        }
    }

    /// Forgets the built objects nothing but this record holds any more: the pickle dropped
    /// them (off the stack, in no memo entry or container), so it can never name them again,
    /// and keeping them would make a pickle that builds and drops large objects in a loop
    /// hold them all at once. Run when the records double, so its cost stays linear.
    #[cold]
    fn prune(&mut self) {
        let mut freed = 0;
        self.built.retain(|_, built| {
            let held = ffi::reference_count(&built._object) > 1;
            if !held {
                freed += built.size;
            }
            held
        });
        self.kept -= freed;
        self.prune_at = (self.built.len() * 2).max(PRUNE_FIRST);
    }

    /// BUILD gave `state` to `instance`.
    #[inline]
    pub fn built(&mut self, instance: &Bound<'py, PyAny>, state: &Bound<'py, PyAny>) {
        if let Some(built) = self.built.get_mut(&key(instance)) {
            built.state = Some(state.clone());
        }
    }

    /// `object` as the checks see it.
    fn to_value(&self, object: &Bound<'py, PyAny>) -> Value {
        let origin = |object: &Bound<'py, PyAny>| -> Option<Origin<'py>> {
            if let Some(built) = self.built.get(&key(object)) {
                return Some(Origin::Built {
                    by: (*built.by).clone(),
                    apply: built.apply,
                    args: built.args.clone(),
                    state: built.state.clone(),
                });
            }
            self.resolved
                .get(&key(object))
                .map(|resolved| Origin::Value(Value::Global((*resolved.global).clone())))
        };
        value::to_value(object, &origin)
    }

    /// Refuses a failed check, in every mode.
    #[cold]
    fn violation(&self, global: &Global, apply: Apply, violation: Violation) -> PyResult<()> {
        Err(refusal::refuse_reconstruction(
            self.py, global, apply, &violation,
        ))
    }
}
