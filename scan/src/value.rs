//! What the scanner knows about a value on the pickle machine's stack or in its memo.
//!
//! Values are small `Copy` summaries that borrow text from the input, so the memo and stack
//! cost a few words per entry whatever the pickle holds. Only what matters is tracked: the text
//! of strings (STACK_GLOBAL operands), and the ints, tuples and dicts that describe a joblib
//! array, so its raw bytes can be stepped over.

/// A global the scanner recognises, because it changes how the rest of the stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// `joblib.numpy_pickle.NumpyArrayWrapper`: its BUILD is followed by raw array bytes.
    ArrayWrapper,
    /// `numpy.dtype`: sizes the array.
    Dtype,
    /// `copyreg._reconstructor`: how protocols 0-1 build plain instances.
    Reconstructor,
}

impl Known {
    /// The names the rules know it by.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Known::ArrayWrapper => ("joblib.numpy_pickle", "NumpyArrayWrapper"),
            Known::Dtype => ("numpy", "dtype"),
            Known::Reconstructor => ("copyreg", "_reconstructor"),
        }
    }

    pub fn of(module: &str, name: &str) -> Option<Known> {
        match (module, name) {
            ("joblib.numpy_pickle", "NumpyArrayWrapper")
            | ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper") => {
                Some(Known::ArrayWrapper)
            }
            ("numpy", "dtype") => Some(Known::Dtype),
            ("copyreg" | "copy_reg", "_reconstructor") => Some(Known::Reconstructor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// A `str` whose text is known.
    Str(&'a str),
    /// A `str` from BINUNICODE's UTF-8 bytes, checked only when its text is needed (most
    /// strings never are): invalid bytes make it a `str` of unknown text.
    Utf8(&'a [u8]),
    /// A `str` (or `bytes`, depending on the unpickler's encoding) whose text is not known
    /// statically; says why.
    Text(&'static str),
    /// An `int` that fits in an i64.
    Int(i64),
    /// `None`.
    None,
    /// A value of a type that is never `str`: bytes, float, bool, list, set, a big int...
    Data,
    /// An object made at run time by the named opcode: could be anything, a `str` included.
    Built(&'static str),
    /// A global the scanner recognises.
    Class(Known),
    /// Any other global the stream named: the index of its finding in the stream.
    Global(u32),
    /// An object made by applying such a global (REDUCE, NEWOBJ, ...): what a BUILD on it is
    /// judged against.
    Made(u32),
    /// A tuple of non-negative ints (an array shape): the product, saturating at u64::MAX.
    Shape(u64),
    /// The empty tuple: the arguments of most applications (`OrderedDict()`), and the shape of
    /// a 0-d array (one item).
    EmptyTuple,
    /// A tuple whose first item is a known string (`numpy.dtype`'s arguments).
    Args(&'a str),
    /// A tuple whose first item is a recognised global (`_reconstructor`'s arguments).
    ArgsOf(Known),
    /// A tuple shaped like `numpy.dtype`'s BUILD state.
    DtypeState(DtypeState),
    /// Any other tuple; whether it holds an object dtype (`None`: cannot tell).
    Tuple { object: Option<bool> },
    /// A dict; its index among the tracked dicts, if tracked.
    Dict(Option<u32>),
    /// A `numpy.dtype`, by its index among the tracked dtypes.
    Dtype(u32),
    /// A joblib `NumpyArrayWrapper` instance.
    Wrapper,
}

/// `numpy.dtype`'s state tuple: `(version, endian, subarray, names, fields, elsize, alignment,
/// flags[, metadata])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DtypeState {
    /// The item size for flexible types (void, bytes, str); -1 for the others.
    pub elsize: i64,
    /// Whether the dtype will say `hasobject`: numpy's `__setstate__` takes the flags from the
    /// state as they are, and `hasobject` is their bit 0, whatever the fields say (`None`:
    /// the flags are not a literal int).
    pub object: Option<bool>,
}

/// A STACK_GLOBAL operand, as the unpickler would see it.
pub(crate) enum Operand<'a> {
    /// A `str` with this text.
    Known(&'a str),
    /// Possibly a `str`, with text the scanner cannot know: why.
    Unknown(String),
    /// Never a `str`: CPython raises "STACK_GLOBAL requires str". What it is.
    NotStr(&'static str),
}

impl<'a> Value<'a> {
    pub fn operand(self) -> Operand<'a> {
        match self {
            Value::Str(text) => Operand::Known(text),
            Value::Utf8(bytes) => match crate::text::checked_utf8(bytes) {
                Ok(text) => Operand::Known(text),
                Err(why) => Operand::Unknown(why.to_string()),
            },
            Value::Text(why) => Operand::Unknown(why.to_string()),
            Value::Built(opcode) => {
                Operand::Unknown(format!("is an object built at run time by `{opcode}`"))
            }
            Value::Made(_) => Operand::Unknown(
                "is an object built at run time by applying a global (`REDUCE`, `NEWOBJ`, ...)"
                    .into(),
            ),
            Value::Class(_) | Value::Global(_) | Value::Dtype(_) => {
                Operand::Unknown("is an object built at run time by a global lookup".into())
            }
            Value::Wrapper => Operand::Unknown("is an object built at run time by `NEWOBJ`".into()),
            Value::Int(_) => Operand::NotStr("an int"),
            Value::None => Operand::NotStr("None"),
            Value::Data => Operand::NotStr("a value that is not a str"),
            Value::Shape(_)
            | Value::EmptyTuple
            | Value::Args(_)
            | Value::ArgsOf(_)
            | Value::DtypeState(_)
            | Value::Tuple { .. } => Operand::NotStr("a tuple"),
            Value::Dict(_) => Operand::NotStr("a dict"),
        }
    }

    /// The text of a `str` whose text is known.
    pub fn text(self) -> Option<&'a str> {
        match self {
            Value::Str(text) => Some(text),
            Value::Utf8(bytes) => crate::text::checked_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// Whether the value is or holds an object dtype, as far as a tuple or dict summary needs.
    pub fn object(self, dtype_object: impl Fn(u32) -> Option<bool>) -> Option<bool> {
        match self {
            Value::Dtype(index) => dtype_object(index),
            Value::Tuple { object } => object,
            Value::DtypeState(state) => state.object,
            _ => Some(false),
        }
    }
}

/// Joins "holds objects" answers: yes wins, then "cannot tell", then no.
pub(crate) fn any_object(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (None, _) | (_, None) => None,
        _ => Some(false),
    }
}

/// Summarises a tuple from its items.
pub(crate) fn tuple<'a>(
    items: &[Value<'a>],
    dtype_object: impl Fn(u32) -> Option<bool>,
) -> Value<'a> {
    if items.is_empty() {
        return Value::EmptyTuple;
    }
    if items
        .iter()
        .all(|item| matches!(item, Value::Int(n) if *n >= 0))
    {
        let product = items.iter().fold(1u64, |acc, item| match item {
            Value::Int(n) => acc.saturating_mul(*n as u64),
            _ => acc,
        });
        return Value::Shape(product);
    }
    match items.first() {
        Some(Value::Class(known)) => return Value::ArgsOf(*known),
        Some(first) => {
            if let Some(text) = first.text() {
                return Value::Args(text);
            }
        }
        None => {}
    }
    if let (8 | 9, Some(Value::Int(_)), Some(Some(_)), Some(Value::Int(elsize))) = (
        items.len(),
        items.first(),
        items.get(1).map(|v| v.text()),
        items.get(5),
    ) {
        let object = match items.get(7) {
            Some(Value::Int(flags)) => Some(flags & 1 != 0),
            _ => None,
        };
        return Value::DtypeState(DtypeState {
            elsize: *elsize,
            object,
        });
    }
    let mut object = Some(false);
    for item in items {
        object = any_object(object, item.object(&dtype_object));
    }
    Value::Tuple { object }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dtypes(_: u32) -> Option<bool> {
        None
    }

    #[test]
    fn tuples_are_summarised() {
        assert!(matches!(tuple(&[], no_dtypes), Value::EmptyTuple));
        assert!(matches!(
            tuple(&[Value::Int(3), Value::Int(4)], no_dtypes),
            Value::Shape(12)
        ));
        assert!(matches!(
            tuple(&[Value::Int(-1)], no_dtypes),
            Value::Tuple {
                object: Some(false)
            }
        ));
        assert!(matches!(
            tuple(&[Value::Str("f8"), Value::Data, Value::Data], no_dtypes),
            Value::Args("f8")
        ));
        let state = [
            Value::Int(3),
            Value::Str("<"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(0),
        ];
        assert!(matches!(
            tuple(&state, no_dtypes),
            Value::DtypeState(DtypeState {
                elsize: -1,
                object: Some(false)
            })
        ));
        assert!(matches!(
            tuple(&[Value::Dtype(0), Value::Int(8)], no_dtypes),
            Value::Tuple { object: None }
        ));
        assert!(matches!(
            tuple(&[Value::Int(u32::MAX as i64); 4], no_dtypes),
            Value::Shape(u64::MAX)
        ));
    }
}
