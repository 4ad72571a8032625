//! torch: tensor rebuilders, `torch.Size`, `torch.device`.
//!
//! What is checkable is checked: sizes, strides and offsets are non-negative, of equal length,
//! and their extent fits in an `i64`. A storage's size is only known when the pickle built the
//! storage itself; storages from a checkpoint's persistent ids are opaque here, and torch's
//! `set_` checks (or grows) them against the extent.

use super::rules::{self, Call};
use super::value::{
    as_global, built_by, count, global_in, plain_attributes, sequence, string, tuple,
};
use super::{Apply, Value};

/// The rebuilders that make a tensor from a storage or nothing.
const REBUILDERS: &[(&str, &str)] = &[
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
];

fn dims(value: &Value, what: &str) -> Result<Vec<u64>, String> {
    sequence(value)
        .ok_or_else(|| format!("the {what} is not a tuple"))?
        .iter()
        .map(|d| count(d).filter(|&d| d <= i64::MAX as u64))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| format!("the {what} holds something other than non-negative ints"))
}

/// The highest element index a view reaches (0 for an empty view), if it fits.
fn extent(offset: u64, size: &[u64], stride: &[u64]) -> Result<u64, String> {
    if size.len() != stride.len() {
        return Err(format!("{} sizes but {} strides", size.len(), stride.len()));
    }
    if size.contains(&0) {
        return Ok(offset);
    }
    size.iter()
        .zip(stride)
        .try_fold(offset, |acc, (&n, &s)| {
            (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
        })
        .filter(|&e| e <= i64::MAX as u64)
        .ok_or_else(|| "the view's extent overflows".to_string())
}

fn hooks(value: &Value) -> Result<(), String> {
    match value {
        Value::Dict(pairs) if pairs.is_empty() => Ok(()),
        v if built_by(v, &[("collections", "OrderedDict")]) => Ok(()),
        _ => Err("backward_hooks is not an empty OrderedDict".into()),
    }
}

fn metadata(value: Option<&Value>) -> Result<(), String> {
    match value {
        None | Some(Value::None | Value::Dict(_)) => Ok(()),
        Some(_) => Err("metadata is not a dict".into()),
    }
}

fn storage(value: &Value) -> Result<(), String> {
    match value {
        Value::Opaque(_) | Value::Built { .. } => Ok(()),
        _ => Err("the storage is not a storage".into()),
    }
}

fn torch_constant(value: &Value, what: &str) -> Result<(), String> {
    match as_global(value) {
        Some(global) if global.module == "torch" => Ok(()),
        _ => Err(format!("the {what} is not a torch constant")),
    }
}

fn bool_arg(value: &Value, what: &str) -> Result<(), String> {
    match value {
        Value::Bool(_) => Ok(()),
        _ => Err(format!("{what} is not a bool")),
    }
}

pub(crate) fn rebuild_tensor(call: &Call<'_>) -> Result<(), String> {
    let name = call.global.name.as_str();
    let args = call.args;
    if args.len() < 4 {
        return Err("fewer than (storage, offset, size, stride)".into());
    }
    storage(&args[0])?;
    let offset = count(&args[1]).ok_or("the storage offset is not a non-negative int")?;
    let size = dims(&args[2], "size")?;
    let stride = dims(&args[3], "stride")?;
    extent(offset, &size, &stride)?;
    let rest = &args[4..];
    match (name, rest) {
        ("_rebuild_tensor", []) => Ok(()),
        ("_rebuild_tensor_v2", [grad, hook, meta @ ..]) if meta.len() <= 1 => {
            bool_arg(grad, "requires_grad")?;
            hooks(hook)?;
            metadata(meta.first())
        }
        ("_rebuild_tensor_v3", [grad, hook, dtype, meta @ ..]) if meta.len() <= 1 => {
            bool_arg(grad, "requires_grad")?;
            hooks(hook)?;
            torch_constant(dtype, "dtype")?;
            metadata(meta.first())
        }
        ("_rebuild_qtensor", [params, grad, hook]) => {
            let params = tuple(params).ok_or("the quantizer parameters are not a tuple")?;
            torch_constant(params.first().ok_or("no qscheme")?, "qscheme")?;
            bool_arg(grad, "requires_grad")?;
            hooks(hook)
        }
        _ => Err(format!("{} arguments do not fit `{name}`", args.len())),
    }
}

pub(crate) fn meta_tensor(call: &Call<'_>) -> Result<(), String> {
    let [dtype, size, stride, rest @ ..] = call.args else {
        return Err("not (dtype, size, stride, requires_grad)".into());
    };
    torch_constant(dtype, "dtype")?;
    let size = dims(size, "size")?;
    let stride = dims(stride, "stride")?;
    extent(0, &size, &stride)?;
    match rest {
        [] => Ok(()),
        [grad] => bool_arg(grad, "requires_grad"),
        _ => Err("too many arguments".into()),
    }
}

pub(crate) fn size_args(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [] => Ok(()),
        [dims_value] => dims(dims_value, "size").map(|_| ()),
        _ => Err("not one tuple of sizes".into()),
    }
}

pub(crate) fn device_args(call: &Call<'_>) -> Result<(), String> {
    match call.args {
        [name] if string(name).is_some() => Ok(()),
        [name, index] if string(name).is_some() && count(index).is_some() => Ok(()),
        _ => Err("not (device string[, index])".into()),
    }
}

/// `data` is a tensor one of the rebuilders made.
fn rebuilt_tensor(data: &Value) -> Result<(), String> {
    if built_by(data, REBUILDERS) {
        Ok(())
    } else {
        Err("the data is not a tensor a rebuilder made".into())
    }
}

pub(crate) fn parameter(call: &Call<'_>) -> Result<(), String> {
    let [data, grad, hook, state @ ..] = call.args else {
        return Err("not (data, requires_grad, backward_hooks[, state])".into());
    };
    rebuilt_tensor(data)?;
    bool_arg(grad, "requires_grad")?;
    hooks(hook)?;
    match state {
        [] => Ok(()),
        [state] => plain_attributes(state),
        _ => Err("too many arguments".into()),
    }
}

pub(crate) fn rebuild_from_type(call: &Call<'_>) -> Result<(), String> {
    let [func, new_type, args, state] = call.args else {
        return Err("not (func, new_type, args, state)".into());
    };
    let func = as_global(func).ok_or("func is not a global")?;
    if !global_in(func, REBUILDERS) {
        return Err(format!("func `{func}` is not a tensor rebuilder"));
    }
    let new_type = as_global(new_type).ok_or("new_type is not a global")?;
    if !global_in(
        new_type,
        &[("torch", "Tensor"), ("torch.nn.parameter", "Parameter")],
    ) {
        return Err(format!("new_type `{new_type}` is not a tensor type"));
    }
    if tuple(args).is_none() {
        return Err("args is not a tuple".into());
    }
    rules::check_apply(func, Apply::Reduce, args, None, call.depth + 1)
        .map_err(|v| format!("func `{func}` on args: {}", v.detail))?;
    plain_attributes(state)
}

/// For the scanner, which sees a storage's element count in its persistent id: the number of
/// elements a tensor rebuild's view needs (`offset + max index + 1`, 0 for an empty view), from
/// the rebuild's arguments `(storage, offset, size, stride, ...)`. Compare it with the storage's
/// element count: torch refuses a view past a checkpoint's storage at load, but a scan should
/// say so first.
pub fn tensor_view_elements(args: &[Value]) -> Result<u64, super::Violation> {
    let violation = |detail: String| super::Violation {
        check: super::checks::TORCH_REBUILD_TENSOR.name,
        detail,
    };
    let [_, offset, size, stride, ..] = args else {
        return Err(violation(
            "fewer than (storage, offset, size, stride)".into(),
        ));
    };
    let offset = count(offset)
        .ok_or_else(|| violation("the storage offset is not a non-negative int".into()))?;
    let size = dims(size, "size").map_err(violation)?;
    let stride = dims(stride, "stride").map_err(violation)?;
    if size.contains(&0) {
        return Ok(0);
    }
    extent(offset, &size, &stride)
        .map_err(violation)?
        .checked_add(1)
        .ok_or_else(|| violation("the view's extent overflows".into()))
}
