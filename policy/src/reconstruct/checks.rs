//! The checks pack entries name, one static each. `policy/build.rs` turns a name in a pack file
//! (`numpy-dtype-state`) into a path to its static here (`NUMPY_DTYPE_STATE`), so a pack cannot
//! name a check that does not exist. Each check is a small function over [`super::Value`] in
//! the module of the library it knows about.

use super::rules::{Build, Call};
use super::{builtins, numpy, pandas, random, torch};

/// A named check and what it verifies (ALLOWLIST.md prints both).
#[derive(Debug)]
pub struct Check {
    /// The name pack files and refusals use.
    pub name: &'static str,
    /// One line on what it verifies.
    pub verifies: &'static str,
    /// The function, and whether it looks at arguments or at a BUILD state.
    pub run: Run,
}

/// A check's function: on the arguments of REDUCE/NEWOBJ/NEWOBJ_EX/INST/OBJ, or on a BUILD
/// state. `Err` carries what was wrong, without the global (the caller adds it).
#[derive(Debug, Clone, Copy)]
pub enum Run {
    /// Checks an application's arguments.
    Args(fn(&Call<'_>) -> Result<(), String>),
    /// Checks a BUILD's target and state.
    State(fn(&Build<'_>) -> Result<(), String>),
}

macro_rules! checks {
    ($($(#[$doc:meta])* $ident:ident = $name:literal, $kind:ident($fn:path), $verifies:literal;)*) => {
        $(
            $(#[$doc])*
            pub static $ident: Check = Check { name: $name, verifies: $verifies, run: Run::$kind($fn) };
        )*
        /// Every check, in the order ALLOWLIST.md lists them.
        pub static ALL: &[&Check] = &[$(&$ident),*];
    };
}

checks! {
    /// `numpy.dtype(typestr, align, copy)`.
    NUMPY_DTYPE_ARGS = "numpy-dtype-args", Args(numpy::dtype_args),
        "the arguments are what numpy pickles: a plain type string (`f8`, `V16`, `O8`, ...) or `numpy.record`, and copy=True (never the shared builtin descriptor)";
    /// A dtype's BUILD state.
    NUMPY_DTYPE_STATE = "numpy-dtype-state", State(numpy::dtype_state),
        "the state is what that dtype's own type produces: version, byte order, subarray, names and fields (offsets inside the itemsize, no field overlapping one that holds references, field dtypes valid), itemsize and alignment, and exactly numpy's flags for it; set once, before any use";
    /// `_reconstruct(subtype, shape, typecode)`.
    NUMPY_RECONSTRUCT_ARGS = "numpy-reconstruct-args", Args(numpy::reconstruct_args),
        "an ndarray class, an empty shape and a one-byte typecode: no uninitialised memory before the BUILD";
    /// An ndarray's BUILD state.
    NUMPY_ARRAY_STATE = "numpy-array-state", State(numpy::array_state),
        "(version, shape, dtype, fortran, data): the data is exactly shape x itemsize bytes, or a list of that many items when the dtype holds references (never pointers from bytes)";
    /// `scalar(dtype, data)`.
    NUMPY_SCALAR = "numpy-scalar", Args(numpy::scalar),
        "a valid dtype and exactly itemsize bytes; a dtype holding references never takes bytes";
    /// `_frombuffer(buffer, dtype, shape, order)`.
    NUMPY_FROMBUFFER = "numpy-frombuffer", Args(numpy::frombuffer),
        "a dtype without references and a buffer of exactly shape x itemsize bytes";
    /// `NumpyArrayWrapper`'s BUILD state.
    JOBLIB_ARRAY_WRAPPER = "joblib-array-wrapper", State(numpy::joblib_wrapper),
        "joblib's array header: an ndarray class, a shape, order C or F and a valid dtype (whose object-ness decides whether a nested pickle follows)";
    /// Arguments must be empty.
    NO_ARGS = "no-args", Args(builtins::no_args),
        "applied to no arguments";
    /// `_codecs.encode(text, encoding, errors)`.
    CHEAP_CODEC = "cheap-codec", Args(builtins::cheap_codec),
        "a str and a linear-time codec (latin-1, utf-8, ascii) with strict errors: no codec whose cost is far above its input";
    /// `bytes(...)` / `bytearray(...)`.
    BYTES_FROM_DATA = "bytes-from-data", Args(builtins::bytes_from_data),
        "from bytes, a str with a cheap codec, or a literal list: never from a size (a large allocation from a few bytes) or a lazy iterable";
    /// `complex(real, imag)`.
    COMPLEX_FROM_NUMBERS = "complex-from-numbers", Args(builtins::complex_from_numbers),
        "from at most two numbers or one short string";
    /// Containers from literal items.
    ITEMS_FROM_LITERALS = "items-from-literals", Args(builtins::items_from_literals),
        "every argument is a literal value or container the pickle wrote, never an object that yields items lazily (a range, an array, a tensor)";
    /// `defaultdict(factory)`.
    DEFAULTDICT_FACTORY = "defaultdict-factory", Args(builtins::defaultdict_factory),
        "the factory is None or a global whose own rules let it be called with no arguments";
    /// `copyreg._reconstructor(cls, object, None)`.
    COPYREG_RECONSTRUCTOR = "copyreg-reconstructor", Args(builtins::copyreg_reconstructor),
        "base `object` and no state: the same as NEWOBJ of `cls` with no arguments, which `cls`'s own rules must allow";
    /// BUILD onto what `copyreg._reconstructor` made.
    DELEGATED_STATE = "delegated-state", State(builtins::delegated_state),
        "the state must pass the BUILD rules of the class `_reconstructor` instantiated";
    /// `torch.Size(...)`.
    TORCH_SIZE_ARGS = "torch-size-args", Args(torch::size_args),
        "one tuple or list of non-negative ints";
    /// `torch.device(...)`.
    TORCH_DEVICE_ARGS = "torch-device-args", Args(torch::device_args),
        "a device string and an optional non-negative index";
    /// The tensor rebuilders.
    TORCH_REBUILD_TENSOR = "torch-rebuild-tensor", Args(torch::rebuild_tensor),
        "a storage, a non-negative offset, sizes and strides of equal length whose extent fits (and fits the storage when its size is known), a bool requires_grad, hook and metadata containers";
    /// `_rebuild_from_type_v2(func, new_type, args, state)`.
    TORCH_REBUILD_FROM_TYPE = "torch-rebuild-from-type", Args(torch::rebuild_from_type),
        "func is a tensor rebuilder whose own checks pass on args, new_type is `torch.Tensor`, and the state sets no dunder attribute";
    /// `_rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)`.
    TORCH_META_TENSOR = "torch-meta-tensor", Args(torch::meta_tensor),
        "a torch dtype, sizes and strides of equal length, non-negative";
    /// `_rebuild_parameter(data, requires_grad, hooks[, state])`.
    TORCH_PARAMETER = "torch-parameter", Args(torch::parameter),
        "data is a tensor a rebuilder made, and the state sets no dunder attribute";
    /// numpy's bit-generator constructors.
    BIT_GENERATOR_CTOR = "bit-generator-ctor", Args(random::ctor),
        "names only the bit generators in the pack (MT19937, PCG64), by name or class, or a bit generator the pickle built";
    /// A bit generator's or RandomState's BUILD state.
    BIT_GENERATOR_STATE = "bit-generator-state", State(random::state),
        "MT19937's `pos` is within its 624-word key (numpy does not range-check it)";
    /// `_unpickle_block(values, placement, ndim)`.
    PANDAS_BLOCK_PLACEMENT = "pandas-block-placement", Args(pandas::block_placement),
        "the placement is a slice of non-negative ints (an integer-array placement is raw bytes to the rules, and pandas writes through it unchecked)";
    /// `BlockManager(blocks, axes)`.
    PANDAS_BLOCK_MANAGER = "pandas-block-manager", Args(pandas::block_manager),
        "blocks `_unpickle_block` made whose placements tile 0..T exactly, with pandas' integrity check on (it checks T against the items)";
    /// A manager's BUILD state.
    PANDAS_MANAGER_STATE = "pandas-manager-state", State(pandas::manager_state),
        "pandas' 0.14.1 state whose slice placements tile 0..T exactly, T being the item count its index shows";
    /// `dill._dill._create_array(f, args, state, npdict)`.
    DILL_CREATE_ARRAY = "dill-create-array", Args(builtins::dill_create_array),
        "f is a global with rules, and they pass on args (as a REDUCE) and on state (as a BUILD); npdict sets no dunder attribute";
    /// `sklearn.metrics._dist_metrics.newObj(cls)`.
    DIST_METRIC_CLASS = "dist-metric-class", Args(builtins::dist_metric_class),
        "cls is one of scikit-learn's distance-metric classes";
}
