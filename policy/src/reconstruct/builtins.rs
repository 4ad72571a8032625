//! Python's own types and stdlib helpers: codecs, bytes, containers, `copyreg`.

use super::rules::{self, Build, Call};
use super::value::{as_built, as_global, global_in, is_str, normalise_codec, string, tuple};
use super::{Apply, Value};

/// A codec whose cost is linear in its input (what numpy's and Python 2 era pickles use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheapCodec {
    /// `latin-1` and its aliases: one byte per character, characters up to U+00FF.
    Latin1,
    /// `utf-8` and its aliases.
    Utf8,
    /// `ascii`: one byte per character, characters up to U+007F.
    Ascii,
}

/// The cheap codec `name` is, as Python's `encodings` normalises names; `None` for any other.
pub fn codec_named(name: &str) -> Option<CheapCodec> {
    match normalise_codec(name).as_str() {
        "latin1" | "latin_1" | "iso8859_1" | "iso_8859_1" | "l1" => Some(CheapCodec::Latin1),
        "utf8" | "utf_8" | "u8" => Some(CheapCodec::Utf8),
        "ascii" | "us_ascii" => Some(CheapCodec::Ascii),
        _ => None,
    }
}

fn cheap(codec: &Value) -> Result<(), String> {
    let name = string(codec).ok_or("the encoding is not a str")?;
    if codec_named(name).is_some() {
        Ok(())
    } else {
        Err(format!(
            "codec `{name}` is not one of latin-1, utf-8, ascii (others can cost far more than their input)"
        ))
    }
}

fn strict(errors: Option<&Value>) -> Result<(), String> {
    match errors {
        None => Ok(()),
        Some(value) if string(value) == Some("strict") => Ok(()),
        Some(_) => Err("errors is not `strict`".into()),
    }
}

pub(crate) fn no_args(call: &Call<'_>) -> Result<(), String> {
    let no_kwargs = match call.kwargs {
        None => true,
        Some(Value::Dict(pairs)) => pairs.is_empty(),
        Some(_) => false,
    };
    if call.args.is_empty() && no_kwargs {
        Ok(())
    } else {
        Err("applied to arguments; it takes none".into())
    }
}

pub(crate) fn cheap_codec(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [text, rest @ ..] if rest.len() <= 2 => {
            if !is_str(text) {
                return Err("encodes something that is not a str".into());
            }
            match rest {
                [] => Ok(()),
                [codec, errors @ ..] => {
                    cheap(codec)?;
                    strict(errors.first())
                }
            }
        }
        _ => Err("not (text, encoding[, errors])".into()),
    }
}

/// A value that is data the pickle wrote, not an object that yields items lazily.
fn literal(value: &Value) -> bool {
    matches!(
        value,
        Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::BigInt
            | Value::Float(_)
            | Value::Str(_)
            | Value::LongStr(_)
            | Value::Bytes(_)
            | Value::Tuple(_)
            | Value::List(_)
            | Value::Dict(_)
    )
}

pub(crate) fn bytes_from_data(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [] => Ok(()),
        [Value::Bytes(_)] => Ok(()),
        [Value::List(items) | Value::Tuple(items)]
            if items.iter().all(|v| matches!(v, Value::Int(0..=255))) =>
        {
            Ok(())
        }
        [Value::Str(_) | Value::LongStr(_), codec, errors @ ..] if errors.len() <= 1 => {
            cheap(codec)?;
            strict(errors.first())
        }
        [Value::Int(_) | Value::Bool(_) | Value::BigInt] => {
            Err("made from a size: a large allocation from a few bytes of pickle".into())
        }
        _ => Err("not made from bytes, a str and a cheap codec, or a list of byte values".into()),
    }
}

pub(crate) fn complex_from_numbers(call: &Call<'_>) -> Result<(), String> {
    let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_) | Value::Bool(_));
    match call.args {
        [] => Ok(()),
        [Value::Str(text)] if text.len() <= 100 => Ok(()),
        [re] if number(re) => Ok(()),
        [re, im] if number(re) && number(im) => Ok(()),
        _ => Err("not made from two numbers or a short string".into()),
    }
}

pub(crate) fn items_from_literals(call: &Call<'_>) -> Result<(), String> {
    if call.args.iter().all(literal) {
        Ok(())
    } else {
        Err("an argument is an object, not items the pickle wrote: it could yield far more than the pickle holds".into())
    }
}

pub(crate) fn defaultdict_factory(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [] | [Value::None] => Ok(()),
        [Value::Global(factory)] => rules::check_apply(
            factory,
            Apply::Reduce,
            &Value::Tuple(Vec::new()),
            None,
            call.depth + 1,
        )
        .map_err(|v| {
            format!(
                "factory `{factory}` may not be called with no arguments ({})",
                v.detail
            )
        }),
        _ => Err("the factory is not a global".into()),
    }
}

const OBJECT: &[(&str, &str)] = &[("builtins", "object")];

/// Built-in types whose `__new__`/`__init__` only copy the data they are given: the bases
/// `copyreg._reduce_ex` names for subclasses of containers and numbers at protocols 0-1.
const DATA_BASES: &[(&str, &str)] = &[
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "complex"),
    ("builtins", "str"),
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
];

pub(crate) fn copyreg_reconstructor(call: &Call<'_>) -> Result<(), String> {
    let [cls, base, state] = call.args else {
        return Err("not (cls, base, state)".into());
    };
    let cls = as_global(cls).ok_or("cls is not a global")?;
    let base = as_global(base).ok_or("base is not a global")?;
    if global_in(base, OBJECT) {
        if !matches!(state, Value::None) {
            return Err("state is not None".into());
        }
    } else if global_in(base, DATA_BASES) {
        // A subclass of a built-in container or number at protocols 0-1: `base.__new__(cls,
        // state)` and `base.__init__(obj, state)` copy the data the pickle wrote.
        // `complex` values have no literal form in the model: the conversion names their type.
        let complex = matches!(state, Value::Opaque(kind) if kind == "complex");
        if !literal(state) && !complex {
            return Err(format!(
                "the state given to `{base}` is not data the pickle wrote"
            ));
        }
    } else {
        return Err(format!("base `{base}` is neither `object` nor a built-in data type: it would call `{base}.__new__` and `__init__` with the state"));
    }
    rules::check_apply(
        cls,
        Apply::NewObj,
        &Value::Tuple(Vec::new()),
        None,
        call.depth + 1,
    )
    .map_err(|v| format!("`{cls}` may not be made without arguments ({})", v.detail))
}

pub(crate) fn delegated_state(build: &Build<'_>) -> Result<(), String> {
    let (_, args, state) = as_built(build.target).ok_or("not a reconstructed object")?;
    let cls = tuple(args)
        .and_then(|a| a.first())
        .and_then(as_global)
        .ok_or("the reconstructed class is unknown")?;
    let target = Value::Built {
        by: cls.clone(),
        apply: Apply::NewObj,
        args: Box::new(Value::Tuple(Vec::new())),
        state: state.map(|s| Box::new(s.clone())),
    };
    rules::check_build(&target, build.state, build.depth + 1).map_err(|v| v.detail)
}

/// `dill._dill._create_array(f, args, state, npdict)`: `f(*args)`, then
/// `__setstate__(state)` and `__dict__.update(npdict)` — a REDUCE and a BUILD the opcodes never
/// show, so `f`'s own rules run on both.
pub(crate) fn dill_create_array(call: &Call<'_>) -> Result<(), String> {
    let (f, args, state, npdict) = match call.args {
        [f, args, state] => (f, args, state, None),
        [f, args, state, npdict] => (f, args, state, Some(npdict)),
        _ => return Err("not (f, args, state[, npdict])".into()),
    };
    let f = as_global(f).ok_or("f is not a global")?;
    if rules::lookup(&f.module, &f.name).is_none() {
        return Err(format!("`{f}` has no rules to apply"));
    }
    rules::check_apply(f, Apply::Reduce, args, None, call.depth + 1)
        .map_err(|v| format!("f `{f}` on args: {}", v.detail))?;
    let made = Value::Built {
        by: f.clone(),
        apply: Apply::Reduce,
        args: Box::new(args.clone()),
        state: None,
    };
    rules::check_build(&made, state, call.depth + 1)
        .map_err(|v| format!("the state: {}", v.detail))?;
    match npdict {
        None => Ok(()),
        Some(attributes) => super::value::plain_attributes(attributes),
    }
}

/// `sklearn.metrics._dist_metrics.newObj(cls)`: `cls.__new__(cls)` for a distance metric only.
pub(crate) fn dist_metric_class(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [Value::Global(cls)] if cls.module == "sklearn.metrics._dist_metrics" => Ok(()),
        [Value::Global(cls)] => Err(format!("`{cls}` is not a distance metric")),
        _ => Err("not one distance-metric class".into()),
    }
}
