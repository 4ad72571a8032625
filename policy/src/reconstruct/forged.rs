//! Forged reconstructions the rules must refuse, each next to the genuine value it was forged
//! from (which must pass, so that each test can fail). IDs are `RC-n`; each says why it is
//! refused and what would make the test fail.

use super::{check_apply, check_build, plan, Apply, Plan, Value};
use crate::Global;

fn g(module: &str, name: &str) -> Global {
    Global::new(module, name)
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

fn t(items: Vec<Value>) -> Value {
    Value::Tuple(items)
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn built(module: &str, name: &str, apply: Apply, args: Value, state: Option<Value>) -> Value {
    Value::Built {
        by: g(module, name),
        apply,
        args: Box::new(args),
        state: state.map(Box::new),
    }
}

/// `(3, endian, subarray, names, fields, elsize, alignment, flags)`.
#[allow(clippy::too_many_arguments)]
fn state(
    endian: &str,
    sub: Value,
    names: Value,
    fields: Value,
    elsize: i64,
    align: i64,
    flags: i64,
) -> Value {
    t(vec![
        i(3),
        s(endian),
        sub,
        names,
        fields,
        i(elsize),
        i(align),
        i(flags),
    ])
}

fn dtype_args(typestr: &str) -> Value {
    t(vec![s(typestr), Value::Bool(false), Value::Bool(true)])
}

fn dtype(typestr: &str, state: Value) -> Value {
    built(
        "numpy",
        "dtype",
        Apply::Reduce,
        dtype_args(typestr),
        Some(state),
    )
}

fn f8() -> Value {
    dtype(
        "f8",
        state("<", Value::None, Value::None, Value::None, -1, -1, 0),
    )
}

fn object() -> Value {
    dtype(
        "O8",
        state("|", Value::None, Value::None, Value::None, -1, -1, 63),
    )
}

fn fresh(typestr: &str) -> Value {
    built("numpy", "dtype", Apply::Reduce, dtype_args(typestr), None)
}

fn struct_state(fields: Vec<(&str, Value, i64)>, elsize: i64, flags: i64) -> Value {
    let names = t(fields.iter().map(|(n, _, _)| s(n)).collect());
    let dict = Value::Dict(
        fields
            .into_iter()
            .map(|(n, d, off)| (s(n), t(vec![d, i(off)])))
            .collect(),
    );
    state("|", Value::None, names, dict, elsize, 1, flags)
}

fn build_ok(target: &Value, st: &Value) {
    if let Err(v) = check_build(target, st) {
        panic!("genuine BUILD refused: {v:?}");
    }
}

fn build_refused(target: &Value, st: &Value, check: &str) {
    match check_build(target, st) {
        Err(v) => assert_eq!(v.check, check, "{v:?}"),
        Ok(()) => panic!("forged BUILD passed: {st:?}"),
    }
}

fn apply_ok(global: &Global, apply: Apply, args: Value) {
    if let Err(v) = check_apply(global, apply, &args, None) {
        panic!("genuine {apply:?} of {global} refused: {v:?}");
    }
}

fn apply_refused(global: &Global, apply: Apply, args: Value, check: &str) {
    match check_apply(global, apply, &args, None) {
        Err(v) => assert_eq!(v.check, check, "{v:?}"),
        Ok(()) => panic!("forged {apply:?} of {global} passed: {args:?}"),
    }
}

const DTYPE_STATE: &str = "numpy-dtype-state";

/// RC-1 forged dtype flags: a `V8` (raw bytes) dtype claiming numpy's object flags would make
/// numpy read its bytes as object pointers. Refused because the flags must be numpy's own for
/// the type (0 for `V8`, `f8`); it would pass if flags were not compared.
#[test]
fn rc1_forged_dtype_flags() {
    let v8 = fresh("V8");
    build_ok(
        &v8,
        &state("|", Value::None, Value::None, Value::None, 8, 1, 0),
    );
    build_refused(
        &v8,
        &state("|", Value::None, Value::None, Value::None, 8, 1, 63),
        DTYPE_STATE,
    );
    build_refused(
        &v8,
        &state("|", Value::None, Value::None, Value::None, 8, 1, 1),
        DTYPE_STATE,
    );
    let f = fresh("f8");
    build_refused(
        &f,
        &state("<", Value::None, Value::None, Value::None, -1, -1, 4),
        DTYPE_STATE,
    );
    // numpy 1.x writes flags as a signed char: an aligned struct's 0x90 is -112.
    let aligned = struct_state(
        vec![
            (
                "a",
                dtype(
                    "u1",
                    state("|", Value::None, Value::None, Value::None, -1, -1, 0),
                ),
                0,
            ),
            ("b", f8(), 8),
        ],
        16,
        -112,
    );
    let Value::Tuple(mut items) = aligned else {
        unreachable!()
    };
    items[6] = i(8);
    build_ok(&fresh("V16"), &Value::Tuple(items));
}

/// RC-2 object pointers from a scalar's bytes: `scalar(dtype('O'), bytes)`. Refused because a
/// dtype holding references never takes bytes; the genuine `f8` scalar of 8 bytes passes.
#[test]
fn rc2_scalar_pointer_from_bytes() {
    let scalar = g("numpy._core.multiarray", "scalar");
    apply_ok(&scalar, Apply::Reduce, t(vec![f8(), Value::Bytes(8)]));
    apply_refused(
        &scalar,
        Apply::Reduce,
        t(vec![object(), Value::Bytes(8)]),
        "numpy-scalar",
    );
    let old = g("numpy.core.multiarray", "scalar");
    apply_refused(
        &old,
        Apply::Reduce,
        t(vec![f8(), Value::Bytes(7)]),
        "numpy-scalar",
    );
    // numpy 1 / Python 2 era: the bytes as a latin-1 str.
    apply_ok(
        &old,
        Apply::Reduce,
        t(vec![f8(), s("\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{f0}?")]),
    );
}

/// RC-3 struct field past the itemsize (heap write out of bounds). Refused: offset + itemsize
/// must stay within the struct; the same field at offset 0 passes.
#[test]
fn rc3_field_offset_outside_itemsize() {
    let v8 = fresh("V8");
    build_ok(&v8, &struct_state(vec![("a", f8(), 0)], 8, 16));
    build_refused(
        &v8,
        &struct_state(vec![("a", f8(), 4096)], 8, 16),
        DTYPE_STATE,
    );
    build_refused(&v8, &struct_state(vec![("a", f8(), 1)], 8, 16), DTYPE_STATE);
}

/// RC-4 an object field overlapping a number field: writing the number forges the pointer.
/// Refused because reference-holding fields may not overlap; numbers may (numpy unions).
#[test]
fn rc4_object_field_overlap() {
    let v16 = fresh("V16");
    build_ok(
        &v16,
        &struct_state(vec![("a", f8(), 0), ("b", object(), 8)], 16, 27),
    );
    build_refused(
        &v16,
        &struct_state(vec![("a", f8(), 0), ("b", object(), 4)], 16, 27),
        DTYPE_STATE,
    );
    build_ok(
        &v16,
        &struct_state(vec![("a", f8(), 0), ("b", f8(), 4)], 16, 16),
    );
    // and a struct holding an object must carry the derived flags
    build_refused(
        &v16,
        &struct_state(vec![("a", f8(), 0), ("b", object(), 8)], 16, 16),
        DTYPE_STATE,
    );
}

/// RC-5 `_frombuffer` with a reference-holding dtype or a short buffer. Refused: pointers
/// from bytes, and a buffer that is not shape x itemsize.
#[test]
fn rc5_frombuffer() {
    let fb = g("numpy._core.numeric", "_frombuffer");
    let args = |dt: Value, n: usize| t(vec![Value::Bytes(n), dt, t(vec![i(2), i(3)]), s("C")]);
    apply_ok(&fb, Apply::Reduce, args(f8(), 48));
    apply_refused(&fb, Apply::Reduce, args(object(), 48), "numpy-frombuffer");
    apply_refused(&fb, Apply::Reduce, args(f8(), 40), "numpy-frombuffer");
}

fn reconstructed() -> Value {
    built(
        "numpy._core.multiarray",
        "_reconstruct",
        Apply::Reduce,
        t(vec![
            Value::Global(g("numpy", "ndarray")),
            t(vec![i(0)]),
            Value::Bytes(1),
        ]),
        None,
    )
}

fn array_state(dt: Value, dims: Vec<i64>, data: Value) -> Value {
    t(vec![
        i(1),
        t(dims.into_iter().map(i).collect()),
        dt,
        Value::Bool(false),
        data,
    ])
}

/// RC-6 `_reconstruct` + BUILD of an object array from bytes. Refused: an object array's data
/// must be a list; the genuine list form passes.
#[test]
fn rc6_object_array_from_bytes() {
    let arr = reconstructed();
    build_ok(
        &arr,
        &array_state(object(), vec![2], Value::List(vec![i(1), Value::None])),
    );
    build_refused(
        &arr,
        &array_state(object(), vec![2], Value::Bytes(16)),
        "numpy-array-state",
    );
}

/// RC-7 array bytes that disagree with shape x itemsize.
#[test]
fn rc7_array_length_mismatch() {
    let arr = reconstructed();
    build_ok(&arr, &array_state(f8(), vec![2, 3], Value::Bytes(48)));
    build_refused(
        &arr,
        &array_state(f8(), vec![2, 3], Value::Bytes(47)),
        "numpy-array-state",
    );
    build_refused(
        &arr,
        &array_state(f8(), vec![i64::MAX, 3], Value::Bytes(48)),
        "numpy-array-state",
    );
}

/// RC-8 uninitialised memory: `numpy.ndarray((1000,))` applied directly, or `_reconstruct`
/// with a non-empty shape and no BUILD. Refused by the opcode table and the empty-shape rule.
#[test]
fn rc8_uninitialised_arrays() {
    let ndarray = g("numpy", "ndarray");
    for apply in [
        Apply::Reduce,
        Apply::NewObj,
        Apply::NewObjEx,
        Apply::Instantiate,
    ] {
        assert!(
            matches!(plan(&ndarray, apply), Plan::Refuse(_)),
            "{apply:?}"
        );
    }
    let rc = g("numpy.core.multiarray", "_reconstruct");
    let args = |n: i64| {
        t(vec![
            Value::Global(g("numpy", "ndarray")),
            t(vec![i(n)]),
            Value::Bytes(1),
        ])
    };
    apply_ok(&rc, Apply::Reduce, args(0));
    apply_refused(&rc, Apply::Reduce, args(1000), "numpy-reconstruct-args");
}

/// RC-9 `numpy.dtype('f8', False, False)` returns numpy's shared builtin descriptor: a BUILD
/// would rewrite float64 for the whole process. Refused: copy must be True.
#[test]
fn rc9_dtype_without_copy() {
    let dt = g("numpy", "dtype");
    apply_ok(&dt, Apply::Reduce, dtype_args("f8"));
    apply_refused(
        &dt,
        Apply::Reduce,
        t(vec![s("f8"), Value::Bool(false), Value::Bool(false)]),
        "numpy-dtype-args",
    );
    apply_refused(
        &dt,
        Apply::Reduce,
        t(vec![s("i4,f8"), Value::Bool(false), Value::Bool(true)]),
        "numpy-dtype-args",
    );
    apply_refused(
        &dt,
        Apply::Reduce,
        t(vec![s("O4"), Value::Bool(false), Value::Bool(true)]),
        "numpy-dtype-args",
    );
}

/// RC-10 a dtype's state changed after use: a second BUILD, or an array built on a dtype whose
/// state is not set yet (a later BUILD could add object fields under the array's bytes).
#[test]
fn rc10_dtype_state_set_once_before_use() {
    let done = f8();
    build_refused(
        &done,
        &state("<", Value::None, Value::None, Value::None, -1, -1, 0),
        DTYPE_STATE,
    );
    let arr = reconstructed();
    build_refused(
        &arr,
        &array_state(fresh("V8"), vec![1], Value::Bytes(8)),
        "numpy-array-state",
    );
}

/// RC-11 byte order and subarray forgeries: an object dtype with a swapped byte order (numpy
/// would byte-swap pointers), a subarray whose itemsize disagrees with base x shape.
#[test]
fn rc11_byte_order_and_subarray() {
    build_refused(
        &fresh("O8"),
        &state(">", Value::None, Value::None, Value::None, -1, -1, 63),
        DTYPE_STATE,
    );
    let sub = |elsize| {
        state(
            "|",
            t(vec![f8(), t(vec![i(2), i(3)])]),
            Value::None,
            Value::None,
            elsize,
            8,
            0,
        )
    };
    build_ok(&fresh("V48"), &sub(48));
    build_refused(&fresh("V8"), &sub(8), DTYPE_STATE);
}

/// RC-12 torch types applied directly: `torch.Tensor` through NEWOBJ_EX with keyword arguments
/// (its integer-pointer constructor) and a storage from a bare size (uninitialised memory).
/// Refused by the opcode table: both may only be referenced.
#[test]
fn rc12_torch_types_not_applied() {
    for global in [
        g("torch", "Tensor"),
        g("torch", "FloatStorage"),
        g("torch", "ByteStorage"),
    ] {
        for apply in [Apply::Reduce, Apply::NewObj, Apply::NewObjEx, Apply::Build] {
            assert!(
                matches!(plan(&global, apply), Plan::Refuse(_)),
                "{global} {apply:?}"
            );
        }
    }
    let kwargs = Value::Dict(vec![(s("cdata"), i(0x4141_4141))]);
    let err = check_apply(
        &g("torch", "Tensor"),
        Apply::NewObjEx,
        &t(vec![]),
        Some(&kwargs),
    )
    .unwrap_err();
    assert_eq!(err.check, super::RULE_CHECK);
}

fn hooks() -> Value {
    built("collections", "OrderedDict", Apply::Reduce, t(vec![]), None)
}

fn v2(offset: i64, size: Vec<i64>, stride: Vec<i64>) -> Value {
    t(vec![
        Value::Opaque("TypedStorage".into()),
        i(offset),
        t(size.into_iter().map(i).collect()),
        t(stride.into_iter().map(i).collect()),
        Value::Bool(false),
        hooks(),
    ])
}

/// RC-13 tensor rebuilds with a negative offset, sizes and strides of different lengths, or an
/// extent that overflows. The genuine view passes.
#[test]
fn rc13_torch_rebuild_extent() {
    let rebuild = g("torch._utils", "_rebuild_tensor_v2");
    apply_ok(&rebuild, Apply::Reduce, v2(4, vec![2, 2], vec![4, 2]));
    apply_refused(
        &rebuild,
        Apply::Reduce,
        v2(-8, vec![2], vec![1]),
        "torch-rebuild-tensor",
    );
    apply_refused(
        &rebuild,
        Apply::Reduce,
        v2(0, vec![2, 2], vec![1]),
        "torch-rebuild-tensor",
    );
    apply_refused(
        &rebuild,
        Apply::Reduce,
        v2(0, vec![2, 3], vec![i64::MAX, 1]),
        "torch-rebuild-tensor",
    );
}

/// RC-14 `_rebuild_from_type_v2` calling something other than a tensor rebuilder (it calls
/// `func(*args)`, bypassing the opcode table), or a rebuilder whose own checks fail, or a
/// state setting a dunder attribute.
#[test]
fn rc14_rebuild_from_type() {
    let from_type = g("torch._tensor", "_rebuild_from_type_v2");
    let call = |func: (&str, &str), args: Value, st: Value| {
        t(vec![
            Value::Global(g(func.0, func.1)),
            Value::Global(g("torch", "Tensor")),
            args,
            st,
        ])
    };
    let good = ("torch._utils", "_rebuild_tensor_v2");
    apply_ok(
        &from_type,
        Apply::Reduce,
        call(good, v2(0, vec![2], vec![1]), Value::Dict(vec![])),
    );
    apply_refused(
        &from_type,
        Apply::Reduce,
        call(("torch", "FloatStorage"), t(vec![i(1 << 40)]), Value::None),
        "torch-rebuild-from-type",
    );
    apply_refused(
        &from_type,
        Apply::Reduce,
        call(good, v2(-1, vec![2], vec![1]), Value::None),
        "torch-rebuild-from-type",
    );
    apply_refused(
        &from_type,
        Apply::Reduce,
        call(
            good,
            v2(0, vec![2], vec![1]),
            Value::Dict(vec![(s("__class__"), i(0))]),
        ),
        "torch-rebuild-from-type",
    );
}

/// RC-15 `_codecs.encode` with an expensive codec (punycode is quadratic: an 80 KB file ran for
/// hours through the memo). Refused; the latin-1 form protocols 0-2 write passes.
#[test]
fn rc15_expensive_codec() {
    let encode = g("_codecs", "encode");
    apply_ok(&encode, Apply::Reduce, t(vec![s("abc"), s("latin1")]));
    apply_ok(&encode, Apply::Reduce, t(vec![s("abc"), s("ISO-8859-1")]));
    for codec in [
        "punycode",
        "idna",
        "unicode_escape",
        "zlib_codec",
        "rot13",
        "uu",
    ] {
        apply_refused(
            &encode,
            Apply::Reduce,
            t(vec![s("abc"), s(codec)]),
            "cheap-codec",
        );
    }
    apply_refused(
        &encode,
        Apply::Reduce,
        t(vec![s("abc"), s("latin1"), s("xmlcharrefreplace")]),
        "cheap-codec",
    );
}

/// RC-16 cost far above the input: `bytearray(10**12)` from a few bytes, `set(range(10**12))`.
#[test]
fn rc16_amplification() {
    let bytearray = g("builtins", "bytearray");
    apply_ok(&bytearray, Apply::Reduce, t(vec![s("ab"), s("latin-1")]));
    apply_refused(
        &bytearray,
        Apply::Reduce,
        t(vec![i(1 << 40)]),
        "bytes-from-data",
    );
    apply_refused(
        &g("__builtin__", "bytes"),
        Apply::Reduce,
        t(vec![i(1 << 40)]),
        "bytes-from-data",
    );
    let range = built(
        "builtins",
        "range",
        Apply::Reduce,
        t(vec![i(0), i(1 << 40)]),
        None,
    );
    apply_ok(
        &g("builtins", "set"),
        Apply::Reduce,
        t(vec![Value::List(vec![i(1)])]),
    );
    apply_refused(
        &g("builtins", "set"),
        Apply::Reduce,
        t(vec![range.clone()]),
        "items-from-literals",
    );
    apply_refused(
        &g("__builtin__", "frozenset"),
        Apply::Reduce,
        t(vec![range]),
        "items-from-literals",
    );
}

/// RC-17 numpy's MT19937 with `pos` outside its key (numpy indexes the key with it unchecked),
/// and a bit generator outside the pack (Philox's `buffer_pos` is unchecked too).
#[test]
fn rc17_bit_generators() {
    let ctor = g("numpy.random._pickle", "__bit_generator_ctor");
    let mt = Value::Global(g("numpy.random._mt19937", "MT19937"));
    apply_ok(&ctor, Apply::Reduce, t(vec![mt.clone()]));
    apply_ok(&ctor, Apply::Reduce, t(vec![s("MT19937")]));
    apply_refused(
        &ctor,
        Apply::Reduce,
        t(vec![s("Philox")]),
        "bit-generator-ctor",
    );
    let gen = built(
        "numpy.random._pickle",
        "__bit_generator_ctor",
        Apply::Reduce,
        t(vec![mt]),
        None,
    );
    let st = |pos: i64| {
        Value::Dict(vec![
            (s("bit_generator"), s("MT19937")),
            (
                s("state"),
                Value::Dict(vec![
                    (s("key"), Value::Opaque("ndarray".into())),
                    (s("pos"), i(pos)),
                ]),
            ),
        ])
    };
    build_ok(&gen, &t(vec![st(624), Value::None]));
    build_refused(
        &gen,
        &t(vec![st(1 << 30), Value::None]),
        "bit-generator-state",
    );
    build_refused(&gen, &st(-1), "bit-generator-state");
}

fn slice(start: i64, stop: i64, step: i64) -> Value {
    built(
        "builtins",
        "slice",
        Apply::Reduce,
        t(vec![i(start), i(stop), i(step)]),
        None,
    )
}

fn block(placement: Value) -> Value {
    built(
        "pandas._libs.internals",
        "_unpickle_block",
        Apply::Reduce,
        t(vec![Value::Opaque("ndarray".into()), placement, i(2)]),
        None,
    )
}

/// RC-18 pandas block placements: an integer-array placement (whose indices pandas writes
/// through without bounds checks: a crafted one crashed on first use), and slices that overlap
/// or leave a gap. Refused; slices tiling the items pass.
#[test]
fn rc18_pandas_placements() {
    let unpickle = g("pandas._libs.internals", "_unpickle_block");
    apply_ok(
        &unpickle,
        Apply::Reduce,
        t(vec![Value::Opaque("ndarray".into()), slice(0, 4, 2), i(2)]),
    );
    apply_refused(
        &unpickle,
        Apply::Reduce,
        t(vec![Value::Opaque("ndarray".into()), reconstructed(), i(2)]),
        "pandas-block-placement",
    );
    let manager = g("pandas.core.internals.managers", "BlockManager");
    let axes = Value::List(vec![]);
    apply_ok(
        &manager,
        Apply::Reduce,
        t(vec![
            t(vec![block(slice(0, 4, 2)), block(slice(1, 4, 2))]),
            axes.clone(),
        ]),
    );
    apply_refused(
        &manager,
        Apply::Reduce,
        t(vec![
            t(vec![block(slice(0, 4, 2)), block(slice(0, 2, 1))]),
            axes.clone(),
        ]),
        "pandas-block-manager",
    );
    apply_refused(
        &manager,
        Apply::Reduce,
        t(vec![
            t(vec![block(slice(0, 1, 1)), block(slice(5, 6, 1))]),
            axes.clone(),
        ]),
        "pandas-block-manager",
    );
    apply_refused(
        &manager,
        Apply::Reduce,
        t(vec![
            t(vec![block(slice(0, 1, 1))]),
            axes,
            Value::Bool(false),
        ]),
        "pandas-block-manager",
    );
}

/// RC-19 `copyreg._reconstructor` as a way around the opcode table: base `torch.Tensor` calls
/// `Tensor.__new__(cls, state)` with the pickle's integers; a class that may only be referenced
/// (`numpy.ndarray`) must not be instantiated this way either.
#[test]
fn rc19_copyreg_reconstructor() {
    let rec = g("copy_reg", "_reconstructor");
    let object = Value::Global(g("__builtin__", "object"));
    let estimator = Value::Global(g("sklearn.linear_model._logistic", "LogisticRegression"));
    apply_ok(
        &rec,
        Apply::Reduce,
        t(vec![estimator.clone(), object.clone(), Value::None]),
    );
    apply_refused(
        &rec,
        Apply::Reduce,
        t(vec![
            estimator,
            Value::Global(g("torch", "Tensor")),
            t(vec![i(1)]),
        ]),
        "copyreg-reconstructor",
    );
    apply_refused(
        &rec,
        Apply::Reduce,
        t(vec![
            Value::Global(g("numpy", "ndarray")),
            object.clone(),
            Value::None,
        ]),
        "copyreg-reconstructor",
    );
    // Protocols 0-1 pickle a subclass of a built-in container with that container as the
    // base and its items as the state (CPython's own pickletester does): data, allowed. A base
    // outside the data types, or a state that is not data the pickle wrote, is refused.
    let user_dict = Value::Global(g("__main__", "MyDict"));
    apply_ok(
        &rec,
        Apply::Reduce,
        t(vec![
            user_dict.clone(),
            Value::Global(g("__builtin__", "dict")),
            Value::Dict(vec![(s("a"), i(1))]),
        ]),
    );
    apply_refused(
        &rec,
        Apply::Reduce,
        t(vec![
            user_dict.clone(),
            Value::Global(g("builtins", "dict")),
            Value::Global(g("builtins", "set")),
        ]),
        "copyreg-reconstructor",
    );
    apply_refused(
        &rec,
        Apply::Reduce,
        t(vec![
            user_dict,
            Value::Global(g("collections", "OrderedDict")),
            Value::Dict(Vec::new()),
        ]),
        "copyreg-reconstructor",
    );
    // BUILD onto what it made follows the class's rules: a joblib wrapper's state is checked.
    let wrapper = built(
        "copyreg",
        "_reconstructor",
        Apply::Reduce,
        t(vec![
            Value::Global(g("joblib.numpy_pickle", "NumpyArrayWrapper")),
            object,
            Value::None,
        ]),
        None,
    );
    build_refused(
        &wrapper,
        &Value::Dict(vec![(s("subclass"), Value::Global(g("builtins", "set")))]),
        "delegated-state",
    );
}

/// RC-20 joblib's array header with a subclass that is not an array class or a forged dtype:
/// joblib decides from the dtype whether a nested pickle follows. Refused; the genuine header
/// passes.
#[test]
fn rc20_joblib_wrapper() {
    let wrapper = built(
        "joblib.numpy_pickle",
        "NumpyArrayWrapper",
        Apply::NewObj,
        t(vec![]),
        None,
    );
    let header = |subclass: (&str, &str), dt: Value| {
        Value::Dict(vec![
            (s("subclass"), Value::Global(g(subclass.0, subclass.1))),
            (s("shape"), t(vec![i(5)])),
            (s("order"), s("C")),
            (s("dtype"), dt),
            (s("allow_mmap"), Value::Bool(false)),
            (s("numpy_array_alignment_bytes"), i(16)),
        ])
    };
    build_ok(&wrapper, &header(("numpy", "ndarray"), f8()));
    build_refused(
        &wrapper,
        &header(("builtins", "set"), f8()),
        "joblib-array-wrapper",
    );
    build_refused(
        &wrapper,
        &header(
            ("numpy", "ndarray"),
            dtype(
                "V8",
                state("|", Value::None, Value::None, Value::None, 8, 1, 63),
            ),
        ),
        "joblib-array-wrapper",
    );
    apply_refused(
        &g("joblib.numpy_pickle", "NumpyArrayWrapper"),
        Apply::NewObj,
        t(vec![i(1)]),
        "no-args",
    );
}

/// RC-21 a defaultdict whose factory may not be called (a storage from no arguments is fine,
/// but one that may only be referenced must not be called at all).
#[test]
fn rc21_defaultdict_factory() {
    let dd = g("collections", "defaultdict");
    apply_ok(
        &dd,
        Apply::Reduce,
        t(vec![Value::Global(g("builtins", "list"))]),
    );
    apply_refused(
        &dd,
        Apply::Reduce,
        t(vec![Value::Global(g("torch", "FloatStorage"))]),
        "defaultdict-factory",
    );
}

/// Globals no pack lists (allowed by an operator) have no rules; Python 2 spellings get the
/// rules of what they map to.
#[test]
fn plans() {
    assert_eq!(plan(&g("mymodels", "Net"), Apply::NewObjEx), Plan::Allow);
    assert_eq!(plan(&g("builtins", "slice"), Apply::Reduce), Plan::Allow);
    assert_eq!(
        plan(&g("__builtin__", "set"), Apply::Reduce),
        Plan::CheckValues
    );
    assert_eq!(plan(&g("numpy", "dtype"), Apply::Build), Plan::CheckValues);
    assert!(matches!(
        plan(&g("__builtin__", "set"), Apply::Build),
        Plan::Refuse(_)
    ));
}

/// RC-22 dill's `_create_array(f, args, state)` calls `f(*args)` and `__setstate__(state)`
/// itself, out of the opcodes' sight: `f` = `numpy.ndarray` with a shape is uninitialised
/// memory, and `_reconstruct`'s state must pass the array checks. Refused; dill's genuine call
/// passes.
#[test]
fn rc22_dill_create_array() {
    let create = g("dill._dill", "_create_array");
    let rc = Value::Global(g("numpy._core.multiarray", "_reconstruct"));
    let rc_args = t(vec![
        Value::Global(g("numpy", "ndarray")),
        t(vec![i(0)]),
        Value::Bytes(1),
    ]);
    let good = array_state(f8(), vec![2], Value::Bytes(16));
    apply_ok(
        &create,
        Apply::Reduce,
        t(vec![rc.clone(), rc_args.clone(), good, Value::None]),
    );
    let bad = array_state(object(), vec![2], Value::Bytes(16));
    apply_refused(
        &create,
        Apply::Reduce,
        t(vec![rc, rc_args, bad, Value::None]),
        "dill-create-array",
    );
    let shape = t(vec![t(vec![i(1000)])]);
    apply_refused(
        &create,
        Apply::Reduce,
        t(vec![
            Value::Global(g("numpy", "ndarray")),
            shape,
            Value::None,
            Value::None,
        ]),
        "dill-create-array",
    );
}

/// RC-23 Python 2 spellings get the rules of the global CPython imports: `__builtin__.xrange`
/// is `builtins.range`, a lazy iterable `set()` may not expand; `__builtin__.long` is `int`, a
/// factory that may be called with no arguments.
#[test]
fn rc23_python2_spellings() {
    let xrange = built(
        "__builtin__",
        "xrange",
        Apply::Reduce,
        t(vec![i(0), i(1 << 40)]),
        None,
    );
    apply_refused(
        &g("__builtin__", "set"),
        Apply::Reduce,
        t(vec![xrange]),
        "items-from-literals",
    );
    apply_ok(
        &g("collections", "defaultdict"),
        Apply::Reduce,
        t(vec![Value::Global(g("__builtin__", "long"))]),
    );
    let slice = built(
        "__builtin__",
        "slice",
        Apply::Reduce,
        t(vec![i(0), i(3), i(1)]),
        None,
    );
    let unpickle = g("pandas._libs.internals", "_unpickle_block");
    apply_ok(
        &unpickle,
        Apply::Reduce,
        t(vec![Value::Opaque("ndarray".into()), slice, i(2)]),
    );
}

/// The scanner's view-size helper: a view of 2x2 with strides (4, 2) from offset 4 needs 11
/// elements; an empty view none.
#[test]
fn tensor_view_elements_for_the_scanner() {
    let args = match v2(4, vec![2, 2], vec![4, 2]) {
        Value::Tuple(items) => items,
        _ => unreachable!(),
    };
    assert_eq!(super::tensor_view_elements(&args), Ok(11));
    let empty = match v2(9, vec![0, 2], vec![4, 2]) {
        Value::Tuple(items) => items,
        _ => unreachable!(),
    };
    assert_eq!(super::tensor_view_elements(&empty), Ok(0));
}

/// RC-24 numpy 1's `Generator` takes its bit generator's state by BUILD
/// (`Generator.__setstate__` sets `bit_generator.state`): MT19937's `pos` is checked there too.
#[test]
fn rc24_numpy1_generator_state() {
    let ctor = g("numpy.random._pickle", "__generator_ctor");
    let args = t(vec![
        s("MT19937"),
        Value::Global(g("numpy.random._pickle", "__bit_generator_ctor")),
    ]);
    apply_ok(&ctor, Apply::Reduce, args.clone());
    let gen = built(
        "numpy.random._pickle",
        "__generator_ctor",
        Apply::Reduce,
        args,
        None,
    );
    let st = |pos: i64| {
        Value::Dict(vec![
            (s("bit_generator"), s("MT19937")),
            (
                s("state"),
                Value::Dict(vec![
                    (s("key"), Value::Opaque("ndarray".into())),
                    (s("pos"), i(pos)),
                ]),
            ),
        ])
    };
    build_ok(&gen, &st(3));
    build_refused(&gen, &st(100_000), "bit-generator-state");
}

/// `plan()` is called for every REDUCE/NEWOBJ/BUILD at run time: a table lookup. Run with
/// `cargo test --release -p pickleguard-policy plan_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn plan_cost() {
    let globals = [
        g("torch._utils", "_rebuild_tensor_v2"),
        g("collections", "OrderedDict"),
        g("numpy", "dtype"),
        g("mymodels", "Net"),
        g("torch.nn.modules.linear", "Linear"),
    ];
    let rounds = 2_000_000;
    let start = std::time::Instant::now();
    let mut allowed = 0usize;
    for k in 0..rounds {
        let global = &globals[k % globals.len()];
        if matches!(
            std::hint::black_box(plan(global, Apply::Reduce)),
            Plan::Allow
        ) {
            allowed += 1;
        }
    }
    let per = start.elapsed().as_nanos() as f64 / rounds as f64;
    println!("plan(): {per:.1} ns per call ({allowed} allowed)");
}

/// RC-25 BUILD onto an allowed class itself (`setattr(LogisticRegression, "predict", ...)`
/// through a slot state) would rewrite it for the whole process. Refused for pack globals;
/// BUILD onto an instance passes.
#[test]
fn rc25_build_onto_a_class() {
    let class = Value::Global(g("sklearn.linear_model._logistic", "LogisticRegression"));
    let slots = t(vec![
        Value::None,
        Value::Dict(vec![(s("predict"), Value::Global(g("builtins", "set")))]),
    ]);
    build_refused(&class, &slots, super::RULE_CHECK);
    let instance = built(
        "sklearn.linear_model._logistic",
        "LogisticRegression",
        Apply::NewObj,
        t(vec![]),
        None,
    );
    build_ok(&instance, &Value::Dict(vec![(s("C"), Value::Float(1.0))]));
}

/// RC-31 backward_hooks that are not empty: torch installs each value as a hook that autograd
/// calls with the gradient, so a pickle would choose a callable that runs at `backward()`,
/// outside every check. An OrderedDict built with items is refused; the empty one passes.
#[test]
fn rc31_backward_hooks_hold_no_callable() {
    let rebuild = g("torch._utils", "_rebuild_parameter");
    let data = built(
        "torch._utils",
        "_rebuild_meta_tensor_no_storage",
        Apply::Reduce,
        t(vec![
            Value::Global(g("torch", "float32")),
            t(vec![i(2)]),
            t(vec![i(1)]),
        ]),
        None,
    );
    let with_hook = built(
        "collections",
        "OrderedDict",
        Apply::Reduce,
        t(vec![Value::List(vec![t(vec![
            i(0),
            Value::Global(g("builtins", "slice")),
        ])])]),
        None,
    );
    apply_refused(
        &rebuild,
        Apply::Reduce,
        t(vec![data.clone(), Value::Bool(true), with_hook]),
        "torch-parameter",
    );
    let empty_list = built(
        "collections",
        "OrderedDict",
        Apply::Reduce,
        t(vec![Value::List(vec![])]),
        None,
    );
    apply_ok(
        &rebuild,
        Apply::Reduce,
        t(vec![data.clone(), Value::Bool(true), hooks()]),
    );
    apply_ok(
        &rebuild,
        Apply::Reduce,
        t(vec![data, Value::Bool(true), empty_list]),
    );
}

/// RC-34 a datetime dtype given a version 3 state (no datetime metadata): numpy leaves the
/// dtype's unit metadata NULL and crashes on first use (SIGSEGV in `pickle.loads` itself, found
/// by the rules differential harness). numpy writes version 4 with `(None, (unit, n, 1, 1))`.
#[test]
fn rc34_datetime_dtypes_need_their_metadata() {
    let fresh = |typestr: &str| built("numpy", "dtype", Apply::Reduce, dtype_args(typestr), None);
    let v3 = state("<", Value::None, Value::None, Value::None, -1, -1, 0);
    build_refused(&fresh("M8"), &v3, "numpy-dtype-state");
    let with_unit = |num: i64, den: i64| {
        let Value::Tuple(mut items) = v3.clone() else {
            unreachable!()
        };
        items[0] = i(4);
        items.push(t(vec![
            Value::None,
            t(vec![Value::Bytes(2), i(num), i(den), i(1)]),
        ]));
        t(items)
    };
    build_ok(&fresh("M8"), &with_unit(1, 1));
    build_ok(&fresh("m8"), &with_unit(5, 1));
    build_refused(&fresh("m8"), &with_unit(1, 0), "numpy-dtype-state");
}
