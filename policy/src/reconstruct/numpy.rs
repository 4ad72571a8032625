//! numpy: dtypes, arrays, scalars, and joblib's array header.
//!
//! A dtype's pickle is `numpy.dtype(typestr, align, copy)` then a BUILD whose state numpy
//! trusts: its flags decide whether items are object pointers, its fields' offsets where they
//! are. So the state must be exactly what the type itself would produce (numpy 1.x and 2.x
//! write the same states; numpy 1.x stores the flags as a signed char). Arrays, scalars and
//! buffers are then checked against the dtype: a dtype that holds references never takes raw
//! bytes, and raw bytes are exactly `shape x itemsize`.

use super::rules::{Build, Call, MAX_DEPTH};
use super::value::{
    as_built, as_global, built_by, byte_len, count, global_in, int, sequence, shape, string, tuple,
};
use super::{Value, Violation};

/// `NPY_ITEM_REFCOUNT`: items are references (also `NPY_ITEM_HASOBJECT`).
const ITEM_REFCOUNT: u8 = 0x01;
/// `NPY_NEEDS_INIT`.
const NEEDS_INIT: u8 = 0x08;
/// `NPY_NEEDS_PYAPI`.
const NEEDS_PYAPI: u8 = 0x10;
/// `NPY_ALIGNED_STRUCT`.
const ALIGNED_STRUCT: u8 = 0x80;
/// `NPY_FROM_FIELDS`: the flags a struct inherits from its fields.
const FROM_FIELDS: u8 = 0x1b;
/// `NPY_OBJECT_DTYPE_FLAGS`.
const OBJECT_FLAGS: u8 = 0x3f;

const DTYPE: &[(&str, &str)] = &[("numpy", "dtype")];
const RECORD: &[(&str, &str)] = &[("numpy", "record")];
const STRING_DTYPE: &[(&str, &str)] =
    &[("numpy._core._internal", "_convert_to_stringdtype_kwargs")];
/// The ndarray classes `_reconstruct` and joblib may instantiate.
const ARRAY_CLASSES: &[(&str, &str)] = &[
    ("numpy", "ndarray"),
    ("numpy", "matrix"),
    ("numpy", "recarray"),
    ("numpy.rec", "recarray"),
    ("numpy", "memmap"),
];

/// What the array checks need to know about a validated dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtypeInfo {
    /// Bytes per item.
    pub itemsize: u64,
    /// Its alignment.
    pub alignment: u64,
    /// numpy's flags for it (as an unsigned byte).
    pub flags: u8,
    /// Whether its items hold object references (an `O` anywhere in it).
    pub holds_refs: bool,
}

/// The base type a dtype's type string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A fixed-size number, bool or datetime: `(code, itemsize, alignment)`.
    Fixed(char, u64, u64),
    /// `O8`.
    Object,
    /// `S<n>`, `U<n>`, `V<n>`: the code and the itemsize the string names.
    Flexible(char, u64),
    /// `numpy.record` (a structured void whose size comes from the state).
    Record,
}

impl Kind {
    fn parse(typestr: &Value) -> Result<Kind, String> {
        if let Some(global) = as_global(typestr) {
            if global_in(global, RECORD) {
                return Ok(Kind::Record);
            }
            return Err(format!(
                "the type is `{global}`, not a type string or numpy.record"
            ));
        }
        let Some(text) = string(typestr) else {
            return Err("the type is not a type string".into());
        };
        let bad = || format!("`{text}` is not a type string numpy pickles");
        let mut chars = text.chars();
        let code = chars.next().ok_or_else(bad)?;
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let fixed = |size: u64, align: u64| Ok(Kind::Fixed(code, size, align));
        match (code, n) {
            ('b', 1) => fixed(1, 1),
            ('i' | 'u', 1 | 2 | 4 | 8) => fixed(n, n),
            ('f', 2 | 4 | 8) => fixed(n, n),
            ('f', 16) => fixed(16, 16),
            ('f', 12) => fixed(12, 4),
            ('c', 8 | 16) => fixed(n, n / 2),
            ('c', 32) => fixed(32, 16),
            ('c', 24) => fixed(24, 4),
            ('M' | 'm', 8) => fixed(8, 8),
            ('O', 8) => Ok(Kind::Object),
            ('S' | 'V', _) if !digits.starts_with('0') || n == 0 => Ok(Kind::Flexible(code, n)),
            ('U', _) if !digits.starts_with('0') || n == 0 => n
                .checked_mul(4)
                .map(|size| Kind::Flexible('U', size))
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    /// The dtype this kind is before any BUILD.
    fn default_info(self) -> DtypeInfo {
        let (itemsize, alignment, flags, holds_refs) = match self {
            Kind::Fixed(_, size, align) => (size, align, 0, false),
            Kind::Object => (8, 8, OBJECT_FLAGS, true),
            Kind::Flexible('U', size) => (size, 4, NEEDS_INIT, false),
            Kind::Flexible(_, size) => (size, 1, 0, false),
            Kind::Record => (0, 1, 0, false),
        };
        DtypeInfo {
            itemsize,
            alignment,
            flags,
            holds_refs,
        }
    }

    /// Whether numpy gives this kind no byte order (`|`).
    fn byte_order_free(self) -> bool {
        match self {
            Kind::Fixed(_, size, _) => size == 1,
            Kind::Object | Kind::Record => true,
            Kind::Flexible(code, _) => code != 'U',
        }
    }
}

/// Checks a `numpy.dtype` the pickle built and what it is. Anything else (a dtype that came
/// from elsewhere, a dtype whose state was never set) is refused: its flags are unknown.
pub fn numpy_dtype(value: &Value) -> Result<DtypeInfo, Violation> {
    describe(value, 0).map_err(|detail| Violation {
        check: super::checks::NUMPY_DTYPE_STATE.name,
        detail,
    })
}

fn describe(value: &Value, depth: u32) -> Result<DtypeInfo, String> {
    if depth > MAX_DEPTH {
        return Err(format!("dtypes nested more than {MAX_DEPTH} deep"));
    }
    if built_by(value, STRING_DTYPE) {
        // numpy 2's StringDType: items point into an arena, so it holds references (its
        // arrays pickle as lists).
        return Ok(DtypeInfo {
            itemsize: 16,
            alignment: 8,
            flags: 0x6b,
            holds_refs: true,
        });
    }
    let Some((by, args, state)) = as_built(value).filter(|_| built_by(value, DTYPE)) else {
        return Err("the dtype is not a numpy.dtype this pickle built".into());
    };
    let _ = by;
    let args = tuple(args).ok_or("the dtype's arguments are not a tuple")?;
    let kind = dtype_kind(args)?;
    match state {
        Some(state) => state_info(kind, state, depth),
        None => Err("the dtype is used before its state was set".into()),
    }
}

fn dtype_kind(args: &[Value]) -> Result<Kind, String> {
    let [typestr, align, copy] = args else {
        return Err(format!("{} arguments, numpy pickles 3", args.len()));
    };
    let kind = Kind::parse(typestr)?;
    if !matches!(int(align), Some(0 | 1)) {
        return Err("align is not a bool".into());
    }
    if int(copy) != Some(1) {
        return Err("copy is not True: BUILD would change numpy's shared builtin dtype".into());
    }
    Ok(kind)
}

pub(crate) fn dtype_args(call: &Call<'_>) -> Result<(), String> {
    dtype_kind(call.args).map(|_| ())
}

pub(crate) fn dtype_state(build: &Build<'_>) -> Result<(), String> {
    let (_, args, previous) = as_built(build.target).ok_or("not a dtype")?;
    if previous.is_some() {
        return Err("the dtype's state is already set (a dtype's state is set once)".into());
    }
    let kind = dtype_kind(tuple(args).ok_or("the dtype's arguments are not a tuple")?)?;
    state_info(kind, build.state, build.depth).map(|_| ())
}

/// Validates `state` for a dtype of `kind` and returns the dtype it makes.
fn state_info(kind: Kind, state: &Value, depth: u32) -> Result<DtypeInfo, String> {
    let items = tuple(state).ok_or("the state is not a tuple")?;
    let version = items.first().and_then(int);
    let expected_len = match version {
        Some(3) => 8,
        Some(4) => 9,
        _ => return Err("the state's version is not 3 or 4".into()),
    };
    if items.len() != expected_len {
        return Err(format!(
            "a version {} state has {expected_len} items, not {}",
            version.unwrap_or(0),
            items.len()
        ));
    }
    let endian = string(&items[1]).ok_or("the byte order is not a str")?;
    let (subarray, names, fields) = (&items[2], &items[3], &items[4]);
    let (elsize, alignment) = (
        int(&items[5]).ok_or("the itemsize is not an int")?,
        int(&items[6]).ok_or("the alignment is not an int")?,
    );
    let raw_flags = int(&items[7]).ok_or("the flags are not an int")?;
    let flags = u8::try_from(raw_flags)
        .or_else(|_| i8::try_from(raw_flags).map(|f| f as u8))
        .map_err(|_| format!("flags `{raw_flags}` are not a byte"))?;
    let metadata = items.get(8);

    let order_ok = if kind.byte_order_free() {
        endian == "|"
    } else {
        matches!(endian, "<" | ">" | "=")
    };
    if !order_ok {
        return Err(format!("byte order `{endian}` is not this type's"));
    }
    if let Kind::Fixed('M' | 'm', _, _) = kind {
        // numpy writes a datetime dtype's unit as its state's metadata (version 4) and reads
        // it back as the dtype's C metadata: a version 3 state leaves that NULL, and the first
        // use of the dtype dereferences it (found by `make differential-rules`).
        let meta = metadata.ok_or("a datetime dtype's state has no datetime metadata")?;
        datetime_metadata(meta)?;
    }

    let info = match (subarray, names, fields) {
        // NEEDS_INIT only asks for zeroed memory: unicode has it in numpy 1.26 and 2.x; older
        // numpy may write 0, which is as safe.
        (Value::None, Value::None, Value::None) if matches!(kind, Kind::Flexible('U', _)) => {
            let info = plain(kind, elsize, alignment)?;
            DtypeInfo {
                flags: if flags == 0 { 0 } else { info.flags },
                ..info
            }
        }
        (Value::None, Value::None, Value::None) => plain(kind, elsize, alignment)?,
        (sub, Value::None, Value::None) => subarray_info(kind, sub, elsize, alignment, depth)?,
        (Value::None, names, fields) => {
            struct_info(kind, names, fields, elsize, alignment, flags, depth)?
        }
        _ => return Err("the state has both a subarray and fields".into()),
    };
    if flags != info.flags {
        return Err(format!(
            "flags `{raw_flags}` are not numpy's `{}` for this dtype",
            info.flags
        ));
    }
    Ok(info)
}

fn datetime_metadata(meta: &Value) -> Result<(), String> {
    let bad = || "the datetime metadata is not (dict, (unit, num, den, events))".to_string();
    let parts = tuple(meta).ok_or_else(bad)?;
    let [extra, unit] = parts else {
        return Err(bad());
    };
    if !matches!(extra, Value::None | Value::Dict(_)) {
        return Err(bad());
    }
    let unit = tuple(unit).ok_or_else(bad)?;
    if unit.len() != 4
        || byte_len(&unit[0]).is_none()
        || !unit[1..].iter().all(|v| int(v).is_some())
    {
        return Err(bad());
    }
    // What numpy writes: a unit multiple of at least 1, denominator and events 1.
    let (num, den, events) = (int(&unit[1]), int(&unit[2]), int(&unit[3]));
    if !matches!(num, Some(n) if n >= 1) || den != Some(1) || events != Some(1) {
        return Err("the datetime unit's multiple, denominator or events are not numpy's".into());
    }
    Ok(())
}

/// A dtype without subarray or fields.
fn plain(kind: Kind, elsize: i64, alignment: i64) -> Result<DtypeInfo, String> {
    let info = kind.default_info();
    let fixed = matches!(kind, Kind::Fixed(..) | Kind::Object);
    let same = |given: i64, own: u64| {
        u64::try_from(given).is_ok_and(|g| g == own) || (fixed && given == -1)
    };
    if !same(elsize, info.itemsize) && kind != Kind::Record {
        return Err(format!(
            "itemsize `{elsize}` is not this type's `{}`",
            info.itemsize
        ));
    }
    if !same(alignment, info.alignment) {
        return Err(format!(
            "alignment `{alignment}` is not this type's `{}`",
            info.alignment
        ));
    }
    if kind == Kind::Record {
        let itemsize = u64::try_from(elsize).map_err(|_| "a negative itemsize".to_string())?;
        return Ok(DtypeInfo { itemsize, ..info });
    }
    Ok(info)
}

fn void_size(kind: Kind, elsize: i64) -> Result<u64, String> {
    let size = u64::try_from(elsize).map_err(|_| format!("itemsize `{elsize}` is negative"))?;
    match kind {
        Kind::Flexible('V', n) if n == size => Ok(size),
        Kind::Record => Ok(size),
        Kind::Flexible('V', n) => Err(format!("itemsize `{elsize}` is not the type's `{n}`")),
        _ => Err("only a void type has a subarray or fields".into()),
    }
}

fn subarray_info(
    kind: Kind,
    sub: &Value,
    elsize: i64,
    alignment: i64,
    depth: u32,
) -> Result<DtypeInfo, String> {
    let size = void_size(kind, elsize)?;
    let parts = tuple(sub).ok_or("the subarray is not (dtype, shape)")?;
    let [base, dims] = parts else {
        return Err("the subarray is not (dtype, shape)".into());
    };
    let base = describe(base, depth + 1)?;
    let (_, total) = shape(dims).ok_or("the subarray shape is not a shape")?;
    if base.itemsize.checked_mul(total) != Some(size) {
        return Err(format!(
            "itemsize `{elsize}` is not the subarray's {total} x {}",
            base.itemsize
        ));
    }
    if u64::try_from(alignment).ok() != Some(base.alignment) {
        return Err(format!(
            "alignment `{alignment}` is not the subarray base's `{}`",
            base.alignment
        ));
    }
    Ok(DtypeInfo {
        itemsize: size,
        ..base
    })
}

fn struct_info(
    kind: Kind,
    names: &Value,
    fields: &Value,
    elsize: i64,
    alignment: i64,
    flags: u8,
    depth: u32,
) -> Result<DtypeInfo, String> {
    let size = void_size(kind, elsize)?;
    let names = tuple(names).ok_or("the names are not a tuple")?;
    let Value::Dict(fields) = fields else {
        return Err("the fields are not a dict".into());
    };
    let lookup = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| string(k) == Some(key))
            .map(|(_, v)| v)
    };
    let aligned = flags & ALIGNED_STRUCT != 0;
    let mut spans: Vec<(u64, u64, bool)> = Vec::with_capacity(names.len());
    let mut own_flags = NEEDS_PYAPI;
    let mut holds_refs = false;
    let mut max_align = 1;
    let mut titles = 0usize;
    for (i, name) in names.iter().enumerate() {
        let name = string(name).ok_or("a field name is not a str")?;
        if names[..i].iter().any(|n| string(n) == Some(name)) {
            return Err(format!("field `{name}` is named twice"));
        }
        let field = lookup(name).ok_or_else(|| format!("field `{name}` is not in the fields"))?;
        let parts = tuple(field).ok_or_else(|| format!("field `{name}` is not (dtype, offset)"))?;
        let (dtype, offset, title) = match parts {
            [dtype, offset] => (dtype, offset, None),
            [dtype, offset, title] => (dtype, offset, Some(title)),
            _ => return Err(format!("field `{name}` is not (dtype, offset[, title])")),
        };
        let info = describe(dtype, depth + 1).map_err(|e| format!("field `{name}`: {e}"))?;
        let offset = count(offset).ok_or_else(|| format!("field `{name}` has a bad offset"))?;
        let end = offset
            .checked_add(info.itemsize)
            .filter(|&end| end <= size)
            .ok_or_else(|| {
                format!("field `{name}` at offset {offset} runs past itemsize {size}")
            })?;
        if let Some(title) = title.filter(|t| !matches!(t, Value::None)) {
            let key = string(title).ok_or_else(|| format!("field `{name}` has a bad title"))?;
            if lookup(key) != Some(field) {
                return Err(format!(
                    "title `{key}` of field `{name}` is not the same field"
                ));
            }
            titles += 1;
        }
        if aligned && offset % info.alignment.max(1) != 0 {
            return Err(format!(
                "field `{name}` is not aligned in an aligned struct"
            ));
        }
        spans.push((offset, end, info.holds_refs));
        own_flags |= info.flags & FROM_FIELDS;
        holds_refs |= info.holds_refs;
        max_align = max_align.max(info.alignment);
    }
    if fields.len() != names.len() + titles {
        return Err("the fields hold entries the names do not list".into());
    }
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            let overlap = a.0 < b.1 && b.0 < a.1;
            if overlap && (a.2 || b.2) {
                return Err("a field holding references overlaps another field".into());
            }
        }
    }
    let expected_align = if aligned { max_align } else { 1 };
    if u64::try_from(alignment).ok() != Some(expected_align) {
        return Err(format!(
            "alignment `{alignment}` is not the struct's `{expected_align}`"
        ));
    }
    if aligned {
        if size % expected_align != 0 {
            return Err("an aligned struct's itemsize is not a multiple of its alignment".into());
        }
        own_flags |= ALIGNED_STRUCT;
    }
    if holds_refs {
        own_flags |= ITEM_REFCOUNT;
    }
    Ok(DtypeInfo {
        itemsize: size,
        alignment: expected_align,
        flags: own_flags,
        holds_refs,
    })
}

pub(crate) fn reconstruct_args(call: &Call<'_>) -> Result<(), String> {
    let [subtype, dims, typecode] = call.args else {
        return Err("not (subtype, shape, typecode)".into());
    };
    let class = as_global(subtype).ok_or("the subtype is not an ndarray class")?;
    if !global_in(class, ARRAY_CLASSES) {
        return Err(format!("`{class}` is not an ndarray class"));
    }
    match shape(dims) {
        Some((_, 0)) => {}
        _ => {
            return Err("the shape is not empty: the array's memory would be uninitialised".into())
        }
    }
    if byte_len(typecode) != Some(1) {
        return Err("the typecode is not one byte".into());
    }
    Ok(())
}

/// Checks array data against a dtype and shape: bytes of exactly `total x itemsize`, or, for
/// a dtype that holds references, a list of `total` items.
fn data_fits(data: &Value, dtype: &DtypeInfo, total: u64, list_ok: bool) -> Result<(), String> {
    let want = total
        .checked_mul(dtype.itemsize)
        .ok_or("shape x itemsize overflows")?;
    if dtype.holds_refs {
        return match data {
            Value::List(items) if list_ok && items.len() as u64 == total => Ok(()),
            Value::List(items) if list_ok => {
                Err(format!("{} items for {total} elements", items.len()))
            }
            _ => Err("a dtype holding references would read object pointers from bytes".into()),
        };
    }
    match byte_len(data) {
        Some(have) if have == want => Ok(()),
        Some(have) => Err(format!(
            "{have} bytes of data for shape x itemsize = {want}"
        )),
        None => Err("the data is not bytes".into()),
    }
}

pub(crate) fn array_state(build: &Build<'_>) -> Result<(), String> {
    let items = tuple(build.state).ok_or("the state is not a tuple")?;
    let (dims, dtype, fortran, data) = match items {
        [version, dims, dtype, fortran, data] if int(version) == Some(1) => {
            (dims, dtype, fortran, data)
        }
        [dims, dtype, fortran, data] => (dims, dtype, fortran, data),
        _ => return Err("the state is not (1, shape, dtype, is_fortran, data)".into()),
    };
    let (_, total) = shape(dims).ok_or("the shape is not a shape")?;
    if !matches!(fortran, Value::Bool(_)) && int(fortran).is_none() {
        return Err("is_fortran is not a bool".into());
    }
    let dtype = describe(dtype, build.depth + 1)?;
    data_fits(data, &dtype, total, true)
}

pub(crate) fn scalar(call: &Call<'_>) -> Result<(), String> {
    let [dtype, data] = call.args else {
        return Err("not (dtype, data)".into());
    };
    let dtype = describe(dtype, call.depth + 1)?;
    if dtype.holds_refs {
        if byte_len(data).is_some() {
            return Err("a dtype holding references would read object pointers from bytes".into());
        }
        return Ok(());
    }
    data_fits(data, &dtype, 1, false)
}

pub(crate) fn frombuffer(call: &Call<'_>) -> Result<(), String> {
    let [buffer, dtype, dims, order] = call.args else {
        return Err("not (buffer, dtype, shape, order)".into());
    };
    let dtype = describe(dtype, call.depth + 1)?;
    let (_, total) = shape(dims).ok_or("the shape is not a shape")?;
    if !matches!(string(order), Some("C" | "F" | "A")) {
        return Err("the order is not C or F".into());
    }
    data_fits(buffer, &dtype, total, false)
}

pub(crate) fn joblib_wrapper(build: &Build<'_>) -> Result<(), String> {
    let Value::Dict(pairs) = build.state else {
        return Err("the state is not a dict".into());
    };
    let mut seen = [false; 3];
    for (key, value) in pairs {
        match string(key) {
            Some("subclass") => {
                let class = as_global(value).ok_or("subclass is not an ndarray class")?;
                if !global_in(class, ARRAY_CLASSES) {
                    return Err(format!("`{class}` is not an ndarray class"));
                }
                seen[0] = true;
            }
            Some("shape") => {
                shape(value).ok_or("the shape is not a shape")?;
                seen[1] = true;
            }
            Some("order") => {
                if !matches!(string(value), Some("C" | "F")) {
                    return Err("the order is not C or F".into());
                }
            }
            Some("dtype") => {
                describe(value, build.depth + 1)?;
                seen[2] = true;
            }
            Some("allow_mmap") => {
                if !matches!(value, Value::Bool(_)) {
                    return Err("allow_mmap is not a bool".into());
                }
            }
            Some("numpy_array_alignment_bytes") => {
                if !matches!(value, Value::None) && count(value).is_none() {
                    return Err("numpy_array_alignment_bytes is not an int".into());
                }
            }
            Some(other) => return Err(format!("unknown key `{other}`")),
            None => return Err("a key is not a str".into()),
        }
    }
    if seen != [true; 3] {
        return Err("subclass, shape or dtype is missing".into());
    }
    Ok(())
}

/// Whether `value` is an array made by `_reconstruct` + BUILD or `_frombuffer` (for the rules
/// of other libraries that hold arrays): its shape and dtype, when visible.
#[allow(dead_code)]
pub(crate) fn array_shape(value: &Value) -> Option<Vec<u64>> {
    let (by, args, state) = as_built(value)?;
    match by.name.as_str() {
        "_reconstruct" => {
            let items = tuple(state?)?;
            let dims = if items.len() == 5 {
                &items[1]
            } else {
                items.first()?
            };
            shape(dims).map(|(d, _)| d)
        }
        "_frombuffer" => shape(sequence(args)?.get(2)?).map(|(d, _)| d),
        _ => None,
    }
}
