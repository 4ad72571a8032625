//! Curated allowlists. Every entry is an exact `(module, name)` pair with a one-line reason,
//! mirrored in ALLOWLIST.md (a test keeps the two in sync).
//!
//! An entry belongs here only if it rebuilds data: it must not run code, import modules by
//! name, open files or sockets, or hand out attribute-access or call-forwarding primitives.

use crate::Global;

/// One allowlisted global and why it is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Module the pickle imports.
    pub module: &'static str,
    /// Attribute (possibly a dotted qualname) looked up in it.
    pub name: &'static str,
    /// One line on what it rebuilds and why that is safe.
    pub reason: &'static str,
}

impl Entry {
    /// The entry as a [`Global`].
    pub fn global(&self) -> Global {
        Global::new(self.module, self.name)
    }
}

const fn e(module: &'static str, name: &'static str, reason: &'static str) -> Entry {
    Entry {
        module,
        name,
        reason,
    }
}

/// Finds an entry in a pack sorted by `(module, name)`.
pub fn find<'a>(pack: &'a [Entry], module: &str, name: &str) -> Option<&'a Entry> {
    pack.binary_search_by(|entry| (entry.module, entry.name).cmp(&(module, name)))
        .ok()
        .map(|index| &pack[index])
}

const TORCH_DTYPE: &str = "torch dtype singleton, pickled by name; a constant, nothing is called";
const TORCH_STORAGE: &str =
    "torch typed-storage class named in checkpoint storage records; the bytes come from the archive";

/// The default pack: numpy arrays, torch tensors and the containers around them.
/// Sorted by `(module, name)`.
pub const ML: &[Entry] = &[
    e("_codecs", "encode", "turns the latin-1 str that protocols 0-2 use for bytes back into bytes; codec lookup is limited to the encodings package"),
    e("builtins", "bytearray", "plain byte buffer"),
    e("builtins", "complex", "complex number"),
    e("builtins", "frozenset", "immutable set of already-unpickled items"),
    e("builtins", "object", "base class that copyreg._reconstructor passes at protocols 0-1; object() builds an empty object"),
    e("builtins", "set", "set of already-unpickled items"),
    e("builtins", "slice", "slice of already-unpickled bounds"),
    e("collections", "OrderedDict", "ordered mapping; every state_dict is one"),
    e("copyreg", "_reconstructor", "protocol 0-1 object rebuild; calls only allowlisted classes passed to it"),
    e("numpy", "dtype", "numpy dtype from a type string and flags"),
    e("numpy", "ndarray", "numpy array type, passed to _reconstruct"),
    e("numpy._core.multiarray", "_reconstruct", "numpy 2 empty-array constructor; the data comes from BUILD state"),
    e("numpy._core.multiarray", "scalar", "numpy 2 scalar from a dtype and raw bytes"),
    e("numpy._core.numeric", "_frombuffer", "numpy 2 array over a protocol-5 buffer"),
    e("numpy.core.multiarray", "_reconstruct", "numpy 1 empty-array constructor; the data comes from BUILD state"),
    e("numpy.core.multiarray", "scalar", "numpy 1 scalar from a dtype and raw bytes"),
    e("numpy.core.numeric", "_frombuffer", "numpy 1 array over a protocol-5 buffer"),
    e("torch", "BFloat16Storage", TORCH_STORAGE),
    e("torch", "BoolStorage", TORCH_STORAGE),
    e("torch", "ByteStorage", TORCH_STORAGE),
    e("torch", "CharStorage", TORCH_STORAGE),
    e("torch", "ComplexDoubleStorage", TORCH_STORAGE),
    e("torch", "ComplexFloatStorage", TORCH_STORAGE),
    e("torch", "DoubleStorage", TORCH_STORAGE),
    e("torch", "FloatStorage", TORCH_STORAGE),
    e("torch", "HalfStorage", TORCH_STORAGE),
    e("torch", "IntStorage", TORCH_STORAGE),
    e("torch", "LongStorage", TORCH_STORAGE),
    e("torch", "ShortStorage", TORCH_STORAGE),
    e("torch", "Size", "tensor shape, a tuple of ints"),
    e("torch", "UntypedStorage", TORCH_STORAGE),
    e("torch", "bfloat16", TORCH_DTYPE),
    e("torch", "bool", TORCH_DTYPE),
    e("torch", "complex128", TORCH_DTYPE),
    e("torch", "complex64", TORCH_DTYPE),
    e("torch", "device", "device descriptor such as `cpu`; a value, nothing is opened"),
    e("torch", "float16", TORCH_DTYPE),
    e("torch", "float32", TORCH_DTYPE),
    e("torch", "float64", TORCH_DTYPE),
    e("torch", "int16", TORCH_DTYPE),
    e("torch", "int32", TORCH_DTYPE),
    e("torch", "int64", TORCH_DTYPE),
    e("torch", "int8", TORCH_DTYPE),
    e("torch", "uint8", TORCH_DTYPE),
    e("torch._utils", "_rebuild_parameter", "wraps an already-rebuilt tensor as nn.Parameter"),
    e("torch._utils", "_rebuild_tensor_v2", "tensor view over an archive storage; torch's weights_only loader allows it"),
]
;
