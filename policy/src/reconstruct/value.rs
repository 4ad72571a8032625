//! Small readers over [`Value`] that the checks share.

use super::{rules, Value};
use crate::{py2, Global};

/// The `(module, name)` a global is imported as: the Python 2 spelling's mapping where one
/// applies to a ruled global (`__builtin__.xrange` is `builtins.range`), else as written.
pub(crate) fn names(global: &Global) -> (&str, &str) {
    let (module, name) = (global.module.as_str(), global.name.as_str());
    if rules::PY2_MODULES_WITH_RULES.contains(&module) {
        if let Some(mapped) = py2::map(module, name) {
            return mapped;
        }
    }
    (module, name)
}

/// Whether `global` is one of `pairs`.
pub(crate) fn global_in(global: &Global, pairs: &[(&str, &str)]) -> bool {
    let pair = names(global);
    pairs.contains(&pair)
}

/// The global `value` is, if it is one.
pub(crate) fn as_global(value: &Value) -> Option<&Global> {
    match value {
        Value::Global(global) => Some(global),
        _ => None,
    }
}

/// The global that built `value`, with its arguments and state, if a global built it.
pub(crate) fn as_built(value: &Value) -> Option<(&Global, &Value, Option<&Value>)> {
    match value {
        Value::Built {
            by, args, state, ..
        } => Some((by, args, state.as_deref())),
        _ => None,
    }
}

/// Whether one of `pairs` built `value`.
pub(crate) fn built_by(value: &Value, pairs: &[(&str, &str)]) -> bool {
    as_built(value).is_some_and(|(by, _, _)| global_in(by, pairs))
}

/// An `int` (a `bool` is one too, as in Python).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A non-negative `int` that fits in a `u64`.
pub(crate) fn count(value: &Value) -> Option<u64> {
    int(value).and_then(|n| u64::try_from(n).ok())
}

/// The items of a tuple.
pub(crate) fn tuple(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Tuple(items) => Some(items),
        _ => None,
    }
}

/// The items of a tuple or a list.
pub(crate) fn sequence(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Tuple(items) | Value::List(items) => Some(items),
        _ => None,
    }
}

/// A `str`.
/// Whether `value` is a `str`, short (text known) or long (length known).
pub(crate) fn is_str(value: &Value) -> bool {
    matches!(value, Value::Str(_) | Value::LongStr(_))
}

pub(crate) fn string(value: &Value) -> Option<&str> {
    match value {
        Value::Str(text) => Some(text),
        _ => None,
    }
}

/// A shape: a tuple (or list) of non-negative ints, and the product of its dimensions, `None`
/// when it is not one or the product overflows.
pub(crate) fn shape(value: &Value) -> Option<(Vec<u64>, u64)> {
    let dims = sequence(value)?
        .iter()
        .map(count)
        .collect::<Option<Vec<u64>>>()?;
    let total = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    Some((dims, total))
}

/// How many bytes a bytes-like value holds: `bytes`/`bytearray`/buffers by length; a `str` as
/// Python 2 era pickles carry raw data (read with `encoding="latin1"`, one byte per character);
/// and `_codecs.encode(text, "latin1")`, how protocols 0-2 write bytes.
pub(crate) fn byte_len(value: &Value) -> Option<u64> {
    match value {
        Value::Bytes(n) => u64::try_from(*n).ok(),
        Value::Str(text) => latin1_len(text),
        // Its characters are not known; if one is not latin-1, the encoding raises instead.
        Value::LongStr(chars) => u64::try_from(*chars).ok(),
        Value::Built { by, args, .. } if global_in(by, &[("_codecs", "encode")]) => {
            let args = tuple(args)?;
            let text = args.first()?;
            let codec = args.get(1).and_then(string).unwrap_or("utf-8");
            match normalise_codec(codec).as_str() {
                "latin1" | "latin_1" | "iso8859_1" | "iso_8859_1" | "l1" => match text {
                    Value::LongStr(chars) => u64::try_from(*chars).ok(),
                    text => latin1_len(string(text)?),
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn latin1_len(text: &str) -> Option<u64> {
    let mut n = 0u64;
    for c in text.chars() {
        if u32::from(c) > 0xff {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// A codec name as Python's `encodings` normalises it: lower case, runs of punctuation and
/// spaces as one `_`.
pub(crate) fn normalise_codec(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// Whether a BUILD state sets only plain attributes: a dict (or `(dict, slots)`) whose keys
/// are strings and none a dunder name.
pub(crate) fn plain_attributes(state: &Value) -> Result<(), String> {
    let dicts: Vec<&Value> = match state {
        Value::None => return Ok(()),
        Value::Dict(_) => vec![state],
        Value::Tuple(items) if items.len() == 2 => items.iter().collect(),
        _ => return Err("the state is not a dict of attributes".into()),
    };
    for dict in dicts {
        match dict {
            Value::None => {}
            Value::Dict(pairs) => {
                for (key, _) in pairs {
                    match key {
                        Value::Str(k) if !(k.starts_with("__") && k.ends_with("__")) => {}
                        Value::Str(k) => return Err(format!("the state sets `{k}`")),
                        _ => return Err("the state has a key that is not a str".into()),
                    }
                }
            }
            _ => return Err("the state is not a dict of attributes".into()),
        }
    }
    Ok(())
}
