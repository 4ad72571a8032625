//! A checked BUILD state, made private to the object it goes onto.
//!
//! The checks judge a state when BUILD applies it, but a library may keep the containers it
//! was given: numpy keeps a structured dtype's `fields` dict (and its metadata dict) by
//! reference. If the pickle still holds that dict in its memo, it can change it afterwards
//! (SETITEM works on any memoized dict or list) and turn a checked field into an object field
//! over raw bytes. So a checked state that its library keeps
//! (`pickleguard_policy::reconstruct::keeps_state`) is handed over as a copy: every exact
//! `dict`, `list` and `collections.OrderedDict` in it is new, and an exact `tuple` is rebuilt
//! when an item in it was copied. The arguments of a global whose library keeps them
//! (`keeps_args`: torch's `backward_hooks`, which the checks require to be empty) are copied the
//! same way. The copy is what the checks saw (same items, same order); only the pickle can no
//! longer reach it. Items of other types (dtypes, arrays, strings) are passed as they are: the
//! objects the rules know are immutable once checked, or checked again when used.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::value::MAX_DEPTH;

/// `state` with every `dict` and `list` in it (down to the conversion's depth bound) copied.
/// Past the bound the conversion saw `...`, which the checks that read data refuse.
pub fn freeze<'py>(state: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    copy(state, MAX_DEPTH)
}

fn copy<'py>(object: &Bound<'py, PyAny>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    if depth == 0 {
        return Ok(object.clone());
    }
    let py = object.py();
    if let Ok(dict) = object.cast_exact::<PyDict>() {
        let fresh = PyDict::new(py);
        for (key, value) in dict.iter() {
            fresh.set_item(key, copy(&value, depth - 1)?)?;
        }
        return Ok(fresh.into_any());
    }
    if let Ok(list) = object.cast_exact::<PyList>() {
        let items = list
            .iter()
            .map(|item| copy(&item, depth - 1))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(py, items)?.into_any());
    }
    if is_ordered_dict(object) {
        let fresh = object.get_type().call0()?;
        for pair in object.call_method0("items")?.try_iter()? {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair?.extract()?;
            fresh.set_item(key, copy(&value, depth - 1)?)?;
        }
        return Ok(fresh);
    }
    if let Ok(tuple) = object.cast_exact::<PyTuple>() {
        let items = tuple
            .iter()
            .map(|item| copy(&item, depth - 1))
            .collect::<PyResult<Vec<_>>>()?;
        let changed = items
            .iter()
            .zip(tuple.iter())
            .any(|(new, old)| !new.is(&old));
        if !changed {
            return Ok(object.clone());
        }
        return Ok(PyTuple::new(py, items)?.into_any());
    }
    Ok(object.clone())
}

/// Whether `object` is exactly a `collections.OrderedDict` (not a subclass, whose constructor
/// could be anything).
fn is_ordered_dict(object: &Bound<'_, PyAny>) -> bool {
    let kind = object.get_type();
    let named = |attribute: &str, expected: &str| {
        kind.getattr(attribute)
            .ok()
            .and_then(|value| value.extract::<String>().ok())
            .is_some_and(|value| value == expected)
    };
    named("__qualname__", "OrderedDict") && named("__module__", "collections")
}
