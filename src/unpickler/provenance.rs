//! Provenance for validated reconstruction: which objects on the stack came from which global,
//! and what was applied to build them. Filled in by the reconstruction wiring.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::Apply;

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

/// What one load knows about where its objects came from.
pub struct Provenance<'py> {
    py: Python<'py>,
}

impl<'py> Provenance<'py> {
    /// Knows nothing yet.
    pub fn new(py: Python<'py>) -> Self {
        Provenance { py }
    }

    /// `object` is what `find_class(module, name)` returned.
    #[inline(always)]
    pub fn resolved(
        &mut self,
        module: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        object: &Bound<'py, PyAny>,
    ) {
        let _ = (self.py, module, name, object);
    }

    /// Checks `step` before any library code sees its values.
    #[inline(always)]
    pub fn before(&mut self, step: Step<'_, 'py>) -> PyResult<()> {
        match step {
            Step::Apply {
                target,
                args,
                kwargs,
                apply,
            } => {
                let _ = (target, args, kwargs, apply);
            }
            Step::Build { instance, state } => {
                let _ = (instance, state);
            }
        }
        Ok(())
    }

    /// The step checked last produced `object`.
    #[inline(always)]
    pub fn after(&mut self, object: &Bound<'py, PyAny>) {
        let _ = object;
    }

    /// BUILD gave `state` to `instance`.
    #[inline(always)]
    pub fn built(&mut self, instance: &Bound<'py, PyAny>, state: &Bound<'py, PyAny>) {
        let _ = (instance, state);
    }
}
