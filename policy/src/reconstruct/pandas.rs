//! pandas block managers: where each block's columns sit.
//!
//! pandas rebuilds a manager's column-to-block map in Cython without bounds checks, so a block
//! placement outside the manager's items writes outside the map (a crash on first use; see
//! ALLOWLIST.md). A placement pickled as a `slice` is visible and checked: the blocks'
//! placements must tile `0..T` exactly, and T must be the manager's item count (pandas'
//! constructor verifies that for REDUCE; for a BUILD state it is read from the index). A
//! placement pickled as an integer array (consolidated frames with interleaved dtypes) is raw
//! bytes to the rules, so it is refused.

use super::rules::{Build, Call};
use super::value::{as_built, built_by, count, int, sequence, shape, string, tuple};
use super::Value;

const SLICE: &[(&str, &str)] = &[("builtins", "slice")];
const UNPICKLE_BLOCK: &[(&str, &str)] = &[("pandas._libs.internals", "_unpickle_block")];
/// Beyond this many columns the tiling check refuses rather than allocate.
const MAX_ITEMS: u64 = 1 << 24;

/// A placement as `(start, step, len)`.
fn placement(value: &Value) -> Result<(u64, u64, u64), String> {
    if !built_by(value, SLICE) {
        return Err(
            "a block placement is not a slice: an integer-array placement is raw bytes to the rules and pandas does not range-check it".into(),
        );
    }
    let (_, args, _) = as_built(value).ok_or("not a slice")?;
    let args = tuple(args).ok_or("the slice's arguments are not a tuple")?;
    let or = |v: Option<&Value>, default: u64| match v {
        None | Some(Value::None) => Some(default),
        Some(v) => count(v),
    };
    let (start, stop, step) = match args {
        [stop] => (Some(0), count(stop), Some(1)),
        [start, stop] => (or(Some(start), 0), count(stop), Some(1)),
        [start, stop, step] => (or(Some(start), 0), count(stop), or(Some(step), 1)),
        _ => (None, None, None),
    };
    match (start, stop, step) {
        (Some(start), Some(stop), Some(step)) if step >= 1 => {
            let len = if stop > start {
                (stop - start).div_ceil(step)
            } else {
                0
            };
            Ok((start, step, len))
        }
        _ => {
            Err("a block placement is not a slice of non-negative ints with a positive step".into())
        }
    }
}

/// Checks that the placements tile `0..T` exactly and returns T.
fn tiling(placements: &[(u64, u64, u64)]) -> Result<u64, String> {
    let total = placements
        .iter()
        .try_fold(0u64, |acc, p| acc.checked_add(p.2))
        .filter(|&t| t <= MAX_ITEMS)
        .ok_or("too many block items")?;
    let mut seen = vec![false; total as usize];
    for &(start, step, len) in placements {
        for k in 0..len {
            let i = start + k * step;
            match seen.get_mut(i as usize) {
                Some(slot) if !*slot => *slot = true,
                Some(_) => return Err(format!("two blocks are placed at item {i}")),
                None => {
                    return Err(format!(
                        "a block is placed at item {i}, past the {total} items"
                    ))
                }
            }
        }
    }
    Ok(total)
}

pub(crate) fn block_placement(call: &Call<'_>) -> Result<(), String> {
    let [_values, locs, ndim] = call.args else {
        return Err("not (values, placement, ndim)".into());
    };
    placement(locs)?;
    match int(ndim) {
        Some(1 | 2) => Ok(()),
        _ => Err("ndim is not 1 or 2".into()),
    }
}

pub(crate) fn block_manager(call: &Call<'_>) -> Result<(), String> {
    let (blocks, rest) = match call.args {
        [blocks, _axes, rest @ ..] => (blocks, rest),
        _ => return Err("not (blocks, axes)".into()),
    };
    if let Some(verify) = rest.first() {
        if int(verify) != Some(1) || rest.len() > 1 {
            return Err("the manager would skip pandas' integrity check".into());
        }
    }
    let blocks = sequence(blocks).ok_or("the blocks are not a tuple")?;
    let placements = blocks
        .iter()
        .map(|block| {
            let (_, args, _) = as_built(block)
                .filter(|_| built_by(block, UNPICKLE_BLOCK))
                .ok_or("a block is not one `_unpickle_block` made")?;
            placement(
                tuple(args)
                    .and_then(|a| a.get(1))
                    .ok_or("a block has no placement")?,
            )
        })
        .collect::<Result<Vec<_>, String>>()?;
    // pandas' constructor then checks that T is the number of items.
    tiling(&placements).map(|_| ())
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

/// The length of an array-like value, when the pickle shows it.
fn array_len(value: &Value) -> Option<u64> {
    match value {
        Value::List(items) | Value::Tuple(items) => Some(items.len() as u64),
        _ => {
            let (by, args, state) = as_built(value)?;
            match by.name.as_str() {
                "_reconstruct" => {
                    let items = tuple(state?)?;
                    let dims = if items.len() == 5 {
                        &items[1]
                    } else {
                        items.first()?
                    };
                    shape(dims)?.0.first().copied()
                }
                "_frombuffer" => shape(tuple(args)?.get(2)?)?.0.first().copied(),
                "__pyx_unpickle_NDArrayBacked" => array_len(tuple(state?)?.get(1)?),
                _ => None,
            }
        }
    }
}

/// The number of items of a pandas index, when the pickle shows it.
fn index_len(value: &Value) -> Option<u64> {
    let (_, args, _) = as_built(value)?;
    let dict = tuple(args)?.get(1)?;
    if let (Some(start), Some(stop)) = (field(dict, "start"), field(dict, "stop")) {
        let (start, stop) = (int(start)?, int(stop)?);
        let step = field(dict, "step").map_or(Some(1), int)?;
        if step == 0 {
            return None;
        }
        let span = if step > 0 { stop - start } else { start - stop };
        return Some(if span > 0 {
            (span as u64).div_ceil(step.unsigned_abs())
        } else {
            0
        });
    }
    if let Some(codes) = field(dict, "codes") {
        return array_len(sequence(codes)?.first()?);
    }
    array_len(field(dict, "data")?)
}

pub(crate) fn manager_state(build: &Build<'_>) -> Result<(), String> {
    let bad = || "the state is not pandas' (axes, blocks, ..., {\"0.14.1\": ...})".to_string();
    let items = tuple(build.state).ok_or_else(bad)?;
    let current = field(items.get(3).ok_or_else(bad)?, "0.14.1").ok_or_else(bad)?;
    let axes = sequence(field(current, "axes").ok_or_else(bad)?).ok_or_else(bad)?;
    let blocks = sequence(field(current, "blocks").ok_or_else(bad)?).ok_or_else(bad)?;
    let placements = blocks
        .iter()
        .map(|block| placement(field(block, "mgr_locs").ok_or("a block has no mgr_locs")?))
        .collect::<Result<Vec<_>, String>>()?;
    let total = tiling(&placements)?;
    let items = axes
        .first()
        .and_then(index_len)
        .ok_or("the manager's item count is not visible in its index")?;
    if items != total {
        return Err(format!("the blocks hold {total} items, the index {items}"));
    }
    Ok(())
}
