//! Python objects as the reconstruction checks see them: one conversion into
//! [`reconstruct::Value`](Value), shared by pickleguard's unpickler and the wrapped pure-Python
//! `pickle._Unpickler`, so both hand the rules the same picture of the same objects.
//!
//! The conversion is bounded: containers nest at most [`MAX_DEPTH`] deep and one conversion
//! visits at most [`MAX_NODES`] objects. What lies past a bound becomes
//! `Value::Opaque("...")`, which a check that expects data must treat as a violation. Payloads
//! are summarised, never copied: `bytes`, `bytearray`, `memoryview` and `PickleBuffer` by
//! length, and a `str` longer than [`MAX_STR`] bytes as `Value::LongStr` of its length in
//! characters (what numpy's Python 2 pickles decode their array data to with
//! `encoding="latin1"`).
//!
//! Objects of the exact built-in types are converted by value. Anything else asks the caller's
//! [`Origin`] lookup: a class or function the pickle resolved by name, or an object it built by
//! applying one; the arguments and state of a built object are converted here, under the same
//! bounds, so cycles made through the memo end at the depth bound.

use pickleguard_policy::reconstruct::bounds::{copy_within, ELIDED};
pub use pickleguard_policy::reconstruct::bounds::{MAX_DEPTH, MAX_NODES, MAX_STR};
use pickleguard_policy::reconstruct::{self, Apply, Value};
use pickleguard_policy::Global;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

/// Where an object that is not a plain value came from, as the caller recorded it.
pub enum Origin<'py> {
    /// Already known as a [`Value`] (typically `Value::Global` for a resolved class).
    Value(Value),
    /// Built by applying `by` with `apply`: its arguments (for NEWOBJ_EX, the tuple
    /// `(args, kwargs)`) as they were when it was applied, and the state a BUILD gave it,
    /// converted on demand.
    Built {
        /// The global that was applied.
        by: Global,
        /// How it was applied.
        apply: Apply,
        /// The arguments it was applied to, converted when it was applied: a callee may
        /// change them afterwards (pandas' `_new_DatetimeIndex` pops items from its dict).
        /// Shared with the record, and copied into a conversion only within its bounds.
        args: Arc<Value>,
        /// The state a BUILD gave it, if any yet.
        state: Option<Bound<'py, PyAny>>,
    },
}

/// Whether the conversion reads `object` by value, never asking where it came from: the exact
/// built-in types. A record of how such an object was built is never read, so none is kept
/// (s15: every `bytes(...)` result kept its arguments' 4,000 values).
pub fn read_by_value(object: &Bound<'_, PyAny>) -> bool {
    object.is_none()
        || object.is_exact_instance_of::<PyBool>()
        || object.is_exact_instance_of::<PyInt>()
        || object.is_exact_instance_of::<PyFloat>()
        || object.is_exact_instance_of::<PyString>()
        || object.is_exact_instance_of::<PyBytes>()
        || object.is_exact_instance_of::<PyByteArray>()
        || object.is_exact_instance_of::<PyTuple>()
        || object.is_exact_instance_of::<PyList>()
        || object.is_exact_instance_of::<PyDict>()
}

/// Converts `object` into a [`Value`], asking `origin` about objects that are not plain values.
pub fn to_value<'py>(
    object: &Bound<'py, PyAny>,
    origin: &dyn Fn(&Bound<'py, PyAny>) -> Option<Origin<'py>>,
) -> Value {
    Converter {
        origin,
        nodes: MAX_NODES,
    }
    .convert(object, MAX_DEPTH)
}

struct Converter<'a, 'py> {
    origin: &'a dyn Fn(&Bound<'py, PyAny>) -> Option<Origin<'py>>,
    /// Objects this conversion may still visit.
    nodes: usize,
}

impl<'py> Converter<'_, 'py> {
    fn convert(&mut self, object: &Bound<'py, PyAny>, depth: usize) -> Value {
        if self.nodes == 0 || depth == 0 {
            return Value::Opaque(ELIDED.into());
        }
        self.nodes -= 1;
        if object.is_none() {
            return Value::None;
        }
        if object.is_exact_instance_of::<PyBool>() {
            return Value::Bool(object.is_truthy().unwrap_or(false));
        }
        if object.is_exact_instance_of::<PyInt>() {
            return object.extract::<i64>().map_or(Value::BigInt, Value::Int);
        }
        if let Ok(float) = object.cast_exact::<PyFloat>() {
            return Value::Float(float.value());
        }
        if let Ok(text) = object.cast_exact::<PyString>() {
            return string(text);
        }
        if let Ok(bytes) = object.cast_exact::<PyBytes>() {
            return Value::Bytes(bytes.as_bytes().len());
        }
        if let Ok(bytes) = object.cast_exact::<PyByteArray>() {
            return Value::Bytes(bytes.len());
        }
        if let Ok(tuple) = object.cast_exact::<PyTuple>() {
            return Value::Tuple(self.items(tuple.iter(), depth));
        }
        if let Ok(list) = object.cast_exact::<PyList>() {
            return Value::List(self.items(list.iter(), depth));
        }
        if let Ok(dict) = object.cast_exact::<PyDict>() {
            return self.dict(dict, depth);
        }
        if let Some(origin) = (self.origin)(object) {
            if let Origin::Built { by, .. } = &origin {
                if reconstruct::read_as_items(by) {
                    if let Ok(dict) = object.cast::<PyDict>() {
                        return self.dict(dict, depth);
                    }
                }
            }
            return self.origin(origin, depth);
        }
        if object.is_exact_instance_of::<PyMemoryView>() || type_name(object) == "PickleBuffer" {
            return buffer_len(object)
                .map_or_else(|| Value::Opaque(type_name(object)), Value::Bytes);
        }
        Value::Opaque(type_name(object))
    }

    fn items(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        depth: usize,
    ) -> Vec<Value> {
        items.map(|item| self.convert(&item, depth - 1)).collect()
    }

    fn dict(&mut self, dict: &Bound<'py, PyDict>, depth: usize) -> Value {
        let mut pairs = Vec::with_capacity(dict.len().min(self.nodes));
        for (key, value) in dict.iter() {
            let key = self.convert(&key, depth - 1);
            let value = self.convert(&value, depth - 1);
            pairs.push((key, value));
        }
        Value::Dict(pairs)
    }

    fn origin(&mut self, origin: Origin<'py>, depth: usize) -> Value {
        match origin {
            Origin::Value(value) => value,
            Origin::Built {
                by,
                apply,
                args,
                state,
            } => Value::Built {
                by,
                apply,
                args: Box::new(copy_within(&args, depth - 1, &mut self.nodes)),
                state: state.map(|state| Box::new(self.convert(&state, depth - 1))),
            },
        }
    }
}

fn string(text: &Bound<'_, PyString>) -> Value {
    // The length in characters is O(1); only a short string is copied.
    let chars = text.len().unwrap_or(usize::MAX);
    if chars > MAX_STR {
        return Value::LongStr(chars);
    }
    let copy = text.to_string_lossy();
    if copy.len() > MAX_STR {
        return Value::LongStr(chars);
    }
    Value::Str(copy.into_owned())
}

/// The length in bytes of a buffer-protocol object (a `memoryview` or `PickleBuffer`).
fn buffer_len(object: &Bound<'_, PyAny>) -> Option<usize> {
    let view = PyMemoryView::from(object).ok()?;
    view.getattr("nbytes").ok()?.extract().ok()
}

fn type_name(object: &Bound<'_, PyAny>) -> String {
    object
        .get_type()
        .name()
        .map_or_else(|_| "object".into(), |name| name.to_string())
}
