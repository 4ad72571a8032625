//! The few objects the scanner follows through REDUCE, NEWOBJ, SETITEMS and BUILD: numpy
//! dtypes and the dicts that describe a joblib array, so the raw array bytes that joblib writes
//! in the middle of its pickle stream can be stepped over.
//!
//! joblib's `NumpyUnpickler.load_build` reads `count * itemsize` bytes straight from the file
//! after the BUILD of a `NumpyArrayWrapper` (after a padding byte and padding, when the wrapper
//! has `numpy_array_alignment_bytes`), or, for object arrays, one nested pickle.

use crate::value::{any_object, tuple, Known, Value};

/// Tracked dtypes and dicts per pickle, each; past this they are no longer followed.
const MAX_TRACKED: usize = 1 << 16;

#[derive(Debug, Clone, Copy)]
struct DtypeInfo {
    itemsize: Option<u64>,
    object: Option<bool>,
    /// Void, bytes or str: the only kinds whose item size a BUILD state sets.
    flexible: bool,
}

#[derive(Debug, Clone, Copy)]
enum Slot<T> {
    Absent,
    Set(T),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct DictInfo {
    shape: Slot<u64>,
    dtype: Slot<u32>,
    aligned: Slot<bool>,
    object: Option<bool>,
}

/// What follows the BUILD of a joblib array wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrayData {
    /// Raw bytes, after a padding-length byte and that much padding when `padded`.
    Raw { len: u64, padded: bool },
    /// One nested pickle (an array of Python objects).
    Pickle,
}

#[derive(Debug, Default)]
pub(crate) struct Objects {
    dtypes: Vec<DtypeInfo>,
    dicts: Vec<DictInfo>,
    /// Dicts are followed only once an array wrapper has been named: most pickles have none.
    follow_dicts: bool,
}

impl Objects {
    pub fn saw_global(&mut self, known: Option<Known>) {
        if known == Some(Known::ArrayWrapper) {
            self.follow_dicts = true;
        }
    }

    pub fn dtype_object(&self, index: u32) -> Option<bool> {
        self.dtypes.get(index as usize).and_then(|info| info.object)
    }

    pub fn tuple<'a>(&self, items: &[Value<'a>]) -> Value<'a> {
        tuple(items, |index| self.dtype_object(index))
    }

    pub fn new_dict<'a>(&mut self) -> Value<'a> {
        if !self.follow_dicts || self.dicts.len() >= MAX_TRACKED {
            return Value::Dict(None);
        }
        self.dicts.push(DictInfo {
            shape: Slot::Absent,
            dtype: Slot::Absent,
            aligned: Slot::Absent,
            object: Some(false),
        });
        Value::Dict(Some((self.dicts.len() - 1) as u32))
    }

    pub fn set_item(&mut self, dict: Value<'_>, key: Value<'_>, value: Value<'_>) {
        let Value::Dict(Some(index)) = dict else {
            return;
        };
        let object = value.object(|index| self.dtype_object(index));
        let Some(info) = self.dicts.get_mut(index as usize) else {
            return;
        };
        info.object = any_object(info.object, object);
        match key.text() {
            Some("shape") => {
                info.shape = match value {
                    Value::Shape(count) => Slot::Set(count),
                    // A 0-d array holds one item.
                    Value::EmptyTuple => Slot::Set(1),
                    _ => Slot::Unknown,
                }
            }
            Some("dtype") => {
                info.dtype = match value {
                    Value::Dtype(index) => Slot::Set(index),
                    _ => Slot::Unknown,
                }
            }
            Some("numpy_array_alignment_bytes") => {
                info.aligned = match value {
                    Value::Int(_) => Slot::Set(true),
                    Value::None => Slot::Set(false),
                    _ => Slot::Unknown,
                }
            }
            _ => {}
        }
    }

    /// The result of REDUCE.
    pub fn reduce<'a>(&mut self, callable: Value<'a>, args: Value<'a>) -> Value<'a> {
        match (callable, args) {
            (Value::Class(Known::Dtype), Value::Args(typestr))
                if self.dtypes.len() < MAX_TRACKED =>
            {
                self.dtypes.push(dtype_from_typestr(typestr));
                Value::Dtype((self.dtypes.len() - 1) as u32)
            }
            (Value::Class(Known::Reconstructor), Value::ArgsOf(Known::ArrayWrapper))
            | (Value::Class(Known::ArrayWrapper), _) => Value::Wrapper,
            (Value::Global(index), _) => Value::Made(index),
            _ => Value::Built("REDUCE"),
        }
    }

    /// The result of NEWOBJ, NEWOBJ_EX, OBJ or INST building an instance of `class`.
    pub fn instance<'a>(&self, class: Value<'a>, opcode: &'static str) -> Value<'a> {
        match class {
            Value::Class(Known::ArrayWrapper) => Value::Wrapper,
            Value::Global(index) => Value::Made(index),
            _ => Value::Built(opcode),
        }
    }

    /// BUILD: a dtype takes its item size and fields from its state.
    pub fn build(&mut self, target: Value<'_>, state: Value<'_>) {
        let Value::Dtype(index) = target else {
            return;
        };
        let Some(info) = self.dtypes.get_mut(index as usize) else {
            return;
        };
        match state {
            Value::DtypeState(state) => {
                // numpy's `__setstate__` sets the item size of flexible types only, and the
                // flags (hence `hasobject`, which joblib asks) of every type.
                if info.flexible {
                    info.itemsize = u64::try_from(state.elsize).ok().or(info.itemsize);
                }
                info.object = state.object;
            }
            _ => {
                info.itemsize = None;
                info.object = None;
            }
        }
    }

    /// What joblib reads after a wrapper whose BUILD state was `state`.
    pub fn array_data(&self, state: Value<'_>) -> Result<ArrayData, &'static str> {
        let Value::Dict(Some(index)) = state else {
            return Err("the wrapper's state is not a dict the scanner followed");
        };
        let info = self.dicts[index as usize];
        let Slot::Set(count) = info.shape else {
            return Err("the wrapper's state has no shape of non-negative ints");
        };
        let Slot::Set(dtype) = info.dtype else {
            return Err("the wrapper's state has no numpy dtype");
        };
        let dtype = self.dtypes[dtype as usize];
        match dtype.object {
            Some(true) => return Ok(ArrayData::Pickle),
            None => return Err("the dtype's fields cannot be read statically"),
            Some(false) => {}
        }
        let itemsize = dtype.itemsize.ok_or("the dtype's item size is unknown")?;
        let len = count
            .checked_mul(itemsize)
            .ok_or("the array's byte size overflows")?;
        let padded = match info.aligned {
            Slot::Absent => false,
            Slot::Set(padded) => padded,
            Slot::Unknown => return Err("the wrapper's alignment is neither an int nor None"),
        };
        Ok(ArrayData::Raw { len, padded })
    }
}

/// A dtype from the type string numpy pickles it with: `f8`, `<i4`, `U5` (5 UCS-4 chars), `O8`.
fn dtype_from_typestr(typestr: &str) -> DtypeInfo {
    let text = typestr.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = text.chars();
    let kind = chars.next();
    let digits: Option<u64> = chars.as_str().parse().ok();
    let (itemsize, object) = match kind {
        Some('O') => (Some(8), Some(true)),
        Some('?') => (Some(1), Some(false)),
        Some('U') => (digits.and_then(|n| n.checked_mul(4)), Some(false)),
        Some('b' | 'i' | 'u' | 'f' | 'c' | 'V' | 'S' | 'a' | 'M' | 'm') => (digits, Some(false)),
        _ => (None, Some(false)),
    };
    DtypeInfo {
        itemsize,
        object,
        flexible: matches!(kind, Some('V' | 'S' | 'a' | 'U')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DtypeState;

    fn wrapper_state(
        objects: &mut Objects,
        dtype: Value<'static>,
        aligned: Value<'static>,
    ) -> Value<'static> {
        let dict = objects.new_dict();
        objects.set_item(dict, Value::Str("shape"), Value::Shape(6));
        objects.set_item(dict, Value::Str("dtype"), dtype);
        objects.set_item(dict, Value::Str("numpy_array_alignment_bytes"), aligned);
        dict
    }

    #[test]
    fn sizes_a_joblib_array() {
        let mut objects = Objects::default();
        objects.saw_global(Some(Known::ArrayWrapper));
        let f8 = objects.reduce(Value::Class(Known::Dtype), Value::Args("f8"));
        let state = wrapper_state(&mut objects, f8, Value::Int(16));
        assert_eq!(
            objects.array_data(state),
            Ok(ArrayData::Raw {
                len: 48,
                padded: true
            })
        );

        let unicode = objects.reduce(Value::Class(Known::Dtype), Value::Args("U3"));
        objects.build(
            unicode,
            Value::DtypeState(DtypeState {
                elsize: 12,
                object: Some(false),
            }),
        );
        let state = wrapper_state(&mut objects, unicode, Value::None);
        assert_eq!(
            objects.array_data(state),
            Ok(ArrayData::Raw {
                len: 72,
                padded: false
            })
        );

        let object = objects.reduce(Value::Class(Known::Dtype), Value::Args("O8"));
        let state = wrapper_state(&mut objects, object, Value::Int(16));
        assert_eq!(objects.array_data(state), Ok(ArrayData::Pickle));

        let structured = objects.reduce(Value::Class(Known::Dtype), Value::Args("V16"));
        objects.build(
            structured,
            Value::DtypeState(DtypeState {
                elsize: 16,
                object: None,
            }),
        );
        let state = wrapper_state(&mut objects, structured, Value::Int(16));
        assert!(objects.array_data(state).is_err());
    }

    #[test]
    fn dicts_are_not_followed_without_a_wrapper() {
        let mut objects = Objects::default();
        assert!(matches!(objects.new_dict(), Value::Dict(None)));
        assert!(objects.array_data(Value::Dict(None)).is_err());
    }
}
