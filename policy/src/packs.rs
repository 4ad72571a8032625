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

/// A named allowlist that operators enable as a whole.
#[derive(Debug)]
pub struct Pack {
    /// The name used in `packs = [...]` and `PICKLEGUARD_PACKS`.
    pub name: &'static str,
    /// One line on what it covers.
    pub summary: &'static str,
    /// Its entries, sorted by `(module, name)`.
    pub entries: &'static [Entry],
}

impl Pack {
    /// The entry for `(module, name)`, if the pack has it.
    pub fn find(&self, module: &str, name: &str) -> Option<&'static Entry> {
        let entries = self.entries;
        entries
            .binary_search_by(|entry| (entry.module, entry.name).cmp(&(module, name)))
            .ok()
            .map(|index| &entries[index])
    }
}

/// The default pack, always in force.
pub static ML_PACK: Pack = Pack {
    name: "ml",
    summary: "numpy arrays, torch tensors and the containers around them (always on)",
    entries: ML,
};

/// Every pack, `ml` first.
pub static PACKS: &[&Pack] = &[&ML_PACK, &STDLIB_DATA_PACK];

/// The pack called `name`.
pub fn by_name(name: &str) -> Option<&'static Pack> {
    PACKS.iter().copied().find(|pack| pack.name == name)
}

/// stdlib value types that checkpoints and data frames carry.
pub static STDLIB_DATA_PACK: Pack = Pack {
    name: "stdlib-data",
    summary: "datetime, decimal, uuid, fractions, collections and other stdlib value types",
    entries: STDLIB_DATA,
};

const STDLIB_DATA: &[Entry] = &[];

const TORCH_DTYPE: &str = "torch.dtype constant, pickled by name; inert, not callable";
const TORCH_QSCHEME: &str = "torch.qscheme constant of quantized tensors; inert, not callable";

/// The default pack: numpy arrays, torch tensors and the containers around them, drawn from
/// what real numpy 1/2 and torch pickles ask for. Sorted by `(module, name)`.
pub const ML: &[Entry] = &[
    e("_codecs", "encode", "turns the latin-1 str that protocols 0-2 use for bytes back into bytes; codecs resolve only within the encodings package"),
    e("builtins", "bytearray", "byte buffer from bytes, or a str and an encoding"),
    e("builtins", "bytes", "how protocols 0-2 write an empty bytes object"),
    e("builtins", "complex", "complex number from two numbers"),
    e("builtins", "frozenset", "immutable set of already-unpickled items"),
    e("builtins", "set", "set of already-unpickled items"),
    e("builtins", "slice", "slice of already-unpickled bounds"),
    e("collections", "OrderedDict", "ordered mapping; every state_dict is one"),
    e("numpy", "dtype", "dtype descriptor, state validated in C"),
    e("numpy", "matrix", "ndarray subclass rebuilt like any array"),
    e("numpy", "ndarray", "the array type passed to _reconstruct; construction validates shape, strides and buffer"),
    e("numpy", "recarray", "numpy 1 name of the record-array ndarray subclass"),
    e("numpy", "record", "structured scalar type used in record-array dtypes"),
    e("numpy._core._internal", "_convert_to_stringdtype_kwargs", "numpy 2 StringDType from its coerce and na_object settings"),
    e("numpy._core.multiarray", "_reconstruct", "numpy 2 empty-array constructor; the data comes from a length-checked BUILD state"),
    e("numpy._core.multiarray", "scalar", "numpy 2 scalar from a dtype and size-checked raw bytes"),
    e("numpy._core.numeric", "_frombuffer", "numpy 2 array over a protocol-5 buffer (frombuffer + reshape)"),
    e("numpy.core.multiarray", "_reconstruct", "numpy 1 empty-array constructor; the data comes from a length-checked BUILD state"),
    e("numpy.core.multiarray", "scalar", "numpy 1 scalar from a dtype and size-checked raw bytes"),
    e("numpy.core.numeric", "_frombuffer", "numpy 1 array over a protocol-5 buffer (frombuffer + reshape)"),
    e("numpy.rec", "recarray", "numpy 2 name of the record-array ndarray subclass"),
    e("torch", "Size", "tensor shape, a tuple of ints"),
    e("torch", "Tensor", "tensor type that _rebuild_from_type_v2 casts to"),
    e("torch", "bcomplex32", TORCH_DTYPE),
    e("torch", "bfloat16", TORCH_DTYPE),
    e("torch", "bits16", TORCH_DTYPE),
    e("torch", "bits1x8", TORCH_DTYPE),
    e("torch", "bits2x4", TORCH_DTYPE),
    e("torch", "bits4x2", TORCH_DTYPE),
    e("torch", "bits8", TORCH_DTYPE),
    e("torch", "bool", TORCH_DTYPE),
    e("torch", "complex128", TORCH_DTYPE),
    e("torch", "complex32", TORCH_DTYPE),
    e("torch", "complex64", TORCH_DTYPE),
    e("torch", "device", "device descriptor such as `cpu`; initialises nothing"),
    e("torch", "float16", TORCH_DTYPE),
    e("torch", "float32", TORCH_DTYPE),
    e("torch", "float4_e2m1fn_x2", TORCH_DTYPE),
    e("torch", "float64", TORCH_DTYPE),
    e("torch", "float8_e4m3fn", TORCH_DTYPE),
    e("torch", "float8_e4m3fnuz", TORCH_DTYPE),
    e("torch", "float8_e5m2", TORCH_DTYPE),
    e("torch", "float8_e5m2fnuz", TORCH_DTYPE),
    e("torch", "float8_e8m0fnu", TORCH_DTYPE),
    e("torch", "int1", TORCH_DTYPE),
    e("torch", "int16", TORCH_DTYPE),
    e("torch", "int2", TORCH_DTYPE),
    e("torch", "int3", TORCH_DTYPE),
    e("torch", "int32", TORCH_DTYPE),
    e("torch", "int4", TORCH_DTYPE),
    e("torch", "int5", TORCH_DTYPE),
    e("torch", "int6", TORCH_DTYPE),
    e("torch", "int64", TORCH_DTYPE),
    e("torch", "int7", TORCH_DTYPE),
    e("torch", "int8", TORCH_DTYPE),
    e("torch", "per_channel_affine", TORCH_QSCHEME),
    e("torch", "per_channel_affine_float_qparams", TORCH_QSCHEME),
    e("torch", "per_channel_symmetric", TORCH_QSCHEME),
    e("torch", "per_tensor_affine", TORCH_QSCHEME),
    e("torch", "per_tensor_symmetric", TORCH_QSCHEME),
    e("torch", "qint32", TORCH_DTYPE),
    e("torch", "qint8", TORCH_DTYPE),
    e("torch", "quint2x4", TORCH_DTYPE),
    e("torch", "quint4x2", TORCH_DTYPE),
    e("torch", "quint8", TORCH_DTYPE),
    e("torch", "uint1", TORCH_DTYPE),
    e("torch", "uint16", TORCH_DTYPE),
    e("torch", "uint2", TORCH_DTYPE),
    e("torch", "uint3", TORCH_DTYPE),
    e("torch", "uint32", TORCH_DTYPE),
    e("torch", "uint4", TORCH_DTYPE),
    e("torch", "uint5", TORCH_DTYPE),
    e("torch", "uint6", TORCH_DTYPE),
    e("torch", "uint64", TORCH_DTYPE),
    e("torch", "uint7", TORCH_DTYPE),
    e("torch", "uint8", TORCH_DTYPE),
    e("torch._tensor", "_rebuild_from_type_v2", "calls an already-allowlisted rebuilder and casts to an allowlisted tensor type"),
    e("torch._utils", "_rebuild_meta_tensor_no_storage", "meta-device tensor: a shape with no data"),
    e("torch._utils", "_rebuild_parameter", "wraps an already-rebuilt tensor as nn.Parameter"),
    e("torch._utils", "_rebuild_parameter_with_state", "as _rebuild_parameter, then sets already-unpickled attributes on it"),
    e("torch._utils", "_rebuild_qtensor", "quantized tensor over a storage; scales and bounds are checked"),
    e("torch._utils", "_rebuild_tensor", "legacy tensor view over a storage, used by the v2 and v3 rebuilders"),
    e("torch._utils", "_rebuild_tensor_v2", "tensor view over an archive storage (set_ grows, never reads past, the storage)"),
    e("torch._utils", "_rebuild_tensor_v3", "as _rebuild_tensor_v2 with an explicit dtype"),
    e("torch.serialization", "_get_layout", "looks a layout name up among torch.layout constants"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hard_deny;

    #[test]
    fn packs_are_sorted_unique_and_findable() {
        for pack in PACKS {
            for pair in pack.entries.windows(2) {
                assert!(
                    (pair[0].module, pair[0].name) < (pair[1].module, pair[1].name),
                    "pack {} must be sorted and unique: {:?} then {:?}",
                    pack.name,
                    pair[0],
                    pair[1]
                );
            }
            for entry in pack.entries {
                assert_eq!(pack.find(entry.module, entry.name), Some(entry));
            }
            assert_eq!(by_name(pack.name).map(|p| p.name), Some(pack.name));
        }
        assert_eq!(ML_PACK.find("collections", "Counter"), None);
    }

    #[test]
    fn no_entry_is_hard_denied_or_unexplained() {
        for entry in PACKS.iter().flat_map(|pack| pack.entries) {
            assert_eq!(
                hard_deny::check(entry.module, entry.name),
                None,
                "{entry:?}"
            );
            assert!(!entry.reason.trim().is_empty(), "{entry:?}");
            assert!(
                !entry.reason.contains('\n'),
                "reasons are one line: {entry:?}"
            );
        }
    }
}

/// Keeps ALLOWLIST.md's tables equal to the code. `make allowlist` rewrites them.
#[cfg(test)]
mod allowlist_md {
    use crate::hard_deny;

    const BEGIN: &str = "<!-- generated by `make allowlist`: begin -->";
    const END: &str = "<!-- generated by `make allowlist`: end -->";

    fn tables() -> String {
        let mut out = String::from(
            "\n### Pack `ml` (the default)\n\n| module | name | why it is safe |\n|---|---|---|\n",
        );
        for entry in super::ML {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                entry.module, entry.name, entry.reason
            ));
        }
        out.push_str(
            "\n### Hard-denied modules (with every submodule)\n\n| module | why |\n|---|---|\n",
        );
        let mut modules = hard_deny::MODULES.to_vec();
        modules.sort();
        for (module, why) in modules {
            out.push_str(&format!("| `{module}` | {why} |\n"));
        }
        out.push_str("\n### Hard-denied names\n\n| module | name | why |\n|---|---|---|\n");
        let mut names = hard_deny::NAMES.to_vec();
        names.sort();
        for (module, name, why) in names {
            out.push_str(&format!("| `{module}` | `{name}` | {why} |\n"));
        }
        out.push('\n');
        out
    }

    #[test]
    fn allowlist_md_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ALLOWLIST.md");
        let text = std::fs::read_to_string(path).expect("ALLOWLIST.md");
        let (head, rest) = text
            .split_once(BEGIN)
            .expect("begin marker in ALLOWLIST.md");
        let (current, tail) = rest.split_once(END).expect("end marker in ALLOWLIST.md");
        let expected = tables();
        if std::env::var_os("PICKLEGUARD_BLESS").is_some() {
            std::fs::write(path, format!("{head}{BEGIN}{expected}{END}{tail}")).expect("write");
            return;
        }
        assert!(
            current == expected,
            "ALLOWLIST.md is out of date with the policy code: run `make allowlist`"
        );
    }
}
