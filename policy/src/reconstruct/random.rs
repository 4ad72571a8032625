//! numpy's random generators: which bit generators a pickle may make, and the one field of
//! MT19937's state that numpy does not range-check.

use super::rules::{Build, Call};
use super::value::{as_global, built_by, count, global_in, string, tuple};
use super::Value;

/// The bit generators the packs allow, by class and by the name numpy 1.x pickles.
const BIT_GENERATORS: &[(&str, &str)] = &[
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
];
const CTORS: &[(&str, &str)] = &[
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
];
/// MT19937's key length: `pos` indexes it.
const MT19937_N: u64 = 624;

fn generator_arg(value: &Value) -> Result<(), String> {
    match value {
        Value::Str(name) if BIT_GENERATORS.iter().any(|(_, n)| n == name) => Ok(()),
        Value::Str(name) => Err(format!("bit generator `{name}` is not in the pack")),
        Value::Global(global) if global_in(global, BIT_GENERATORS) => Ok(()),
        Value::Global(global) if global_in(global, CTORS) => Ok(()),
        Value::Global(global) => Err(format!("`{global}` is not a bit generator in the pack")),
        v if built_by(v, CTORS) => Ok(()),
        _ => Err("not a bit generator in the pack".into()),
    }
}

pub(crate) fn ctor(call: &Call<'_>) -> Result<(), String> {
    if call.args.len() > 2 {
        return Err("too many arguments".into());
    }
    call.args.iter().try_for_each(generator_arg)
}

fn field<'a>(dict: &'a Value, key: &str) -> Option<&'a Value> {
    match dict {
        Value::Dict(pairs) => pairs
            .iter()
            .find(|(k, _)| string(k) == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn state(build: &Build<'_>) -> Result<(), String> {
    // numpy 2 pickles `(state_dict, seed_sequence)`, numpy 1 the dict; RandomState's legacy
    // tuple is `("MT19937", key, pos, has_gauss, gauss)`.
    let state = build.state;
    let (name, pos) = match state {
        Value::Dict(_) => (
            field(state, "bit_generator"),
            field(state, "state").and_then(|s| field(s, "pos")),
        ),
        Value::Tuple(items) => match items.as_slice() {
            [dict @ Value::Dict(_), _] => (
                field(dict, "bit_generator"),
                field(dict, "state").and_then(|s| field(s, "pos")),
            ),
            [name @ Value::Str(_), _key, pos, ..] => (Some(name), Some(pos)),
            _ => return Err("not a bit generator state".into()),
        },
        _ => return Err("not a bit generator state".into()),
    };
    let name = name
        .and_then(string)
        .ok_or("the state names no bit generator")?;
    if !BIT_GENERATORS.iter().any(|(_, n)| *n == name) {
        return Err(format!("bit generator `{name}` is not in the pack"));
    }
    if name == "MT19937" {
        let pos = pos.ok_or("MT19937 state without `pos`")?;
        match count(pos) {
            Some(p) if p <= MT19937_N => {}
            _ => return Err(format!("MT19937 `pos` is outside its {MT19937_N}-word key")),
        }
    }
    let _ = (as_global, tuple);
    Ok(())
}
