//! Reconstruction rules: what a pickle may *do* with an allowed global.
//!
//! A name on the allowlist is not enough: `numpy.dtype` with a forged state, or
//! `numpy.ndarray` applied directly, hurts the process without naming anything else. Every pack
//! entry therefore says which opcodes may apply it ([`Apply`]) and which checks its arguments
//! and state must pass. The runtime unpickler converts the Python objects it is about to hand
//! to library code into a [`Value`]; the scanner builds the same [`Value`] from literals in the
//! stream. Both ask [`check_apply`] and [`check_build`], so a scan and a load agree.
//!
//! INTERFACE CONTRACT (shared by the runtime unpickler in `src/` and the scanner in `scan/`):
//! the names and signatures of [`Apply`], [`Value`], [`Violation`], [`check_apply`] and
//! [`check_build`] are fixed; the bodies and the rules behind them are this module's business.

mod builtins;
pub mod checks;
mod numpy;
mod pandas;
mod random;
mod rules;
mod torch;
mod value;

pub use builtins::{codec_named, CheapCodec};
pub use numpy::{numpy_dtype, DtypeInfo};

/// How much of an object the checks see. The runtime (converting Python objects) and the scanner
/// (converting what it rebuilt from the stream) stop at the same bounds, so both hand the checks
/// the same [`Value`]: containers nest at most [`MAX_DEPTH`] deep, one conversion visits at most
/// [`MAX_NODES`] objects, and a `str` longer than [`MAX_STR`] (in characters, or in UTF-8 bytes)
/// becomes [`Value::LongStr`]. What lies past a bound is `Value::Opaque(ELIDED)`.
pub mod bounds {
    /// How deep containers (and built objects' states) are followed.
    pub const MAX_DEPTH: usize = 24;
    /// How many objects one conversion visits.
    pub const MAX_NODES: usize = 4096;
    /// The longest `str` kept as text.
    pub const MAX_STR: usize = 4096;
    /// The placeholder for whatever lies past a bound.
    pub const ELIDED: &str = "...";
    /// Characters above which one `str` may be encoded only once per load (`_codecs.encode`
    /// applied to it again through the memo is cost amplification, RC-33).
    pub const LONG_ENCODED: usize = 4096;
    /// Values one load may keep as the remembered arguments of built objects that are still
    /// alive (each object's at most [`MAX_NODES`]; results read by value keep none). Genuine
    /// checkpoints keep a few per tensor and a numpy scalar about 17 (its dtype's arguments and
    /// state included), so about 250,000 live numpy scalars in one pickle is the most that
    /// loads; a pickle that applies globals to large memoized arguments again and again would
    /// otherwise make the guard keep far more than the pickle's own objects (s3, s9, s18: 30 KB
    /// of file, about 300 MB before the refusal).
    pub const MAX_KEPT: usize = 1 << 22;

    use super::Value;

    /// A copy of `value` (the remembered arguments of a built object met inside a conversion)
    /// that stays within the conversion's bounds: `depth` levels and `nodes` values, shared
    /// with the rest of the conversion, past which it holds `Value::Opaque(ELIDED)`. Without
    /// it, objects built from objects built from ... nest their remembered arguments without
    /// bound (s10: a chain of 3,000 links was 1.3 GB and a stack overflow in a 1 MiB thread).
    pub fn copy_within(value: &Value, depth: usize, nodes: &mut usize) -> Value {
        if *nodes == 0 || depth == 0 {
            return Value::Opaque(ELIDED.into());
        }
        *nodes -= 1;
        let items = |items: &[Value], nodes: &mut usize| -> Vec<Value> {
            items
                .iter()
                .map(|item| copy_within(item, depth - 1, nodes))
                .collect()
        };
        match value {
            Value::Tuple(values) => Value::Tuple(items(values, nodes)),
            Value::List(values) => Value::List(items(values, nodes)),
            Value::Dict(pairs) => Value::Dict(
                pairs
                    .iter()
                    .map(|(key, value)| {
                        let key = copy_within(key, depth - 1, nodes);
                        (key, copy_within(value, depth - 1, nodes))
                    })
                    .collect(),
            ),
            Value::Built {
                by,
                apply,
                args,
                state,
            } => Value::Built {
                by: by.clone(),
                apply: *apply,
                args: Box::new(copy_within(args, depth - 1, nodes)),
                state: state
                    .as_ref()
                    .map(|state| Box::new(copy_within(state, depth - 1, nodes))),
            },
            other => other.clone(),
        }
    }

    /// How many values `value` holds (what keeping it costs against [`MAX_KEPT`]).
    pub fn size(value: &Value) -> usize {
        1 + match value {
            Value::Tuple(values) | Value::List(values) => values.iter().map(size).sum(),
            Value::Dict(pairs) => pairs.iter().map(|(k, v)| size(k) + size(v)).sum(),
            Value::Built { args, state, .. } => size(args) + state.as_deref().map_or(0, size),
            _ => 0,
        }
    }
}

/// The refusal for a load whose built objects' remembered arguments pass
/// [`bounds::MAX_KEPT`] values.
pub fn kept_too_many() -> Violation {
    Violation {
        check: rules::KEPT_CHECK,
        detail: format!(
            "the pickle builds objects from more than {} values that the checks must remember \
             (far more than any model's own objects: an amplification through the memo)",
            bounds::MAX_KEPT
        ),
    }
}
pub use rules::{Rule, KEPT_CHECK, RULE_CHECK};
pub use torch::tensor_view_elements;

use crate::Global;

/// How a pickle applies a global it resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Apply {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// `BUILD`: `obj.__setstate__(state)` or the `__dict__`/slots update.
    Build,
    /// `INST`/`OBJ`: protocol 0/1 class instantiation, `cls(*args)`.
    Instantiate,
}

/// A value as the checks see it: the runtime converts Python objects into this, the scanner
/// builds it from literals. Large payloads are summarised (bytes by length) so that checking
/// never copies model weights.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits in an i64.
    Int(i64),
    /// An `int` outside the i64 range.
    BigInt,
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `str` too long to copy, by its length in characters. Python 2 era pickles carry raw
    /// array data as such strings (decoded with `latin1`, one character per byte).
    LongStr(usize),
    /// A `bytes`, `bytearray` or buffer, by length only.
    Bytes(usize),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `list`.
    List(Vec<Value>),
    /// A `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A class or function that the pickle resolved with a global opcode.
    Global(Global),
    /// An object the pickle built by applying an allowed global: the global, the arguments it
    /// was applied to, and the state a BUILD gave it (if any yet).
    Built {
        /// The global that was applied.
        by: Global,
        /// How it was applied.
        apply: Apply,
        /// The arguments (a `Tuple`; for NEWOBJ_EX a `Tuple` of `(args, kwargs)`).
        args: Box<Value>,
        /// The BUILD state, once one was applied.
        state: Option<Box<Value>>,
    },
    /// Anything else (a persistent id's object, a PickleBuffer, ...): its Python type name.
    Opaque(String),
}

impl Apply {
    /// The opcode's name as pack files and messages spell it (`reduce`, `newobj`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Apply::Reduce => "reduce",
            Apply::NewObj => "newobj",
            Apply::NewObjEx => "newobj_ex",
            Apply::Build => "build",
            Apply::Instantiate => "instantiate",
        }
    }
}

/// Why a reconstruction step was refused: the check that failed, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check's name, as the rules and ALLOWLIST.md spell it (e.g. `numpy-dtype-state`).
    pub check: &'static str,
    /// What was wrong, for the refusal message.
    pub detail: String,
}

/// Checks applying `global` with `apply` to `args` (a [`Value::Tuple`]) and, for NEWOBJ_EX,
/// `kwargs` (a [`Value::Dict`]). `Ok` when the rules for `global` allow it.
///
/// Globals without rules (those an operator allowed by hand) may be applied in any way.
pub fn check_apply(
    global: &Global,
    apply: Apply,
    args: &Value,
    kwargs: Option<&Value>,
) -> Result<(), Violation> {
    rules::check_apply(global, apply, args, kwargs, 0)
}

/// Checks a BUILD of `state` onto `target`, an object the pickle built ([`Value::Built`]).
///
/// A [`Value::Global`] target (BUILD onto a class or function itself, which sets attributes on
/// it for the whole process) is refused for every global a pack lists. Any other target that
/// no global made has no rules.
pub fn check_build(target: &Value, state: &Value) -> Result<(), Violation> {
    rules::check_build(target, state, 0)
}

/// What the runtime must do before applying `global` with `apply`, decided from the names
/// alone so that the common case converts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No check needs the arguments: apply it.
    Allow,
    /// Convert the arguments (or state) to [`Value`]s and call [`check_apply`] /
    /// [`check_build`].
    CheckValues,
    /// This opcode may never apply this global.
    Refuse(Violation),
}

/// The [`Plan`] for applying `global` with `apply` (for [`Apply::Build`], `global` is the one
/// that made the BUILD target). A lookup in a static table; it allocates only to refuse.
pub fn plan(global: &Global, apply: Apply) -> Plan {
    match rules::lookup(&global.module, &global.name) {
        None => Plan::Allow,
        Some(rule) => rule.plan(apply),
    }
}

/// The refusal for `_codecs.encode` applied again, in one load, to the same `str` of `chars`
/// characters (more than [`bounds::LONG_ENCODED`]): cost amplification through the memo
/// (RC-33). The runtime tracks the `str` by identity, the scanner by the object it rebuilt.
pub fn encoded_again(chars: usize) -> Violation {
    Violation {
        check: checks::CHEAP_CODEC.name,
        detail: format!(
            "`_codecs.encode`: the same {chars}-character str is encoded again in one load \
             (through the memo, its cost grows with every reference, not with the file)"
        ),
    }
}

/// The `(module, name)` `global` is imported as: the Python 3 name of a Python 2 spelling of a
/// global that has rules (`__builtin__.bytearray` is `builtins.bytearray`), else as written.
pub fn imported_name(global: &Global) -> (&str, &str) {
    value::names(global)
}

/// Globals whose objects the checks read as their items (a `Value::Dict`), not as the global
/// and the arguments that built them: a mapping filled by SETITEMS after it was built is still
/// its items when a check reads it (s5: an `OrderedDict()` filled before it became a tensor's
/// `backward_hooks` passed as "an empty OrderedDict").
const READ_AS_ITEMS: &[(&str, &str)] = &[("collections", "OrderedDict")];

/// Whether the objects `global` builds are read as their items ([`READ_AS_ITEMS`]).
pub fn read_as_items(global: &Global) -> bool {
    READ_AS_ITEMS.contains(&imported_name(global))
}

/// Every way a pickle can apply a global.
pub const ALL_APPLIES: [Apply; 5] = [
    Apply::Reduce,
    Apply::NewObj,
    Apply::NewObjEx,
    Apply::Build,
    Apply::Instantiate,
];

/// Whether any opcode's plan for `global` is other than [`Plan::Allow`]: the objects such a
/// global makes are remembered (by the runtime and the scanner alike) with their arguments and
/// state, because a later check may read them.
pub fn has_rules(global: &Global) -> bool {
    ALL_APPLIES
        .iter()
        .any(|&apply| plan(global, apply) != Plan::Allow)
}

/// Whether the library keeps the containers of a BUILD state it was given for an object
/// `global` made: numpy keeps a dtype's `fields` (and metadata) dict by reference, so the runtime
/// hands it a private copy of the checked state, one the pickle cannot change through its memo
/// after the checks. Other states are passed as they are (their containers' identity is the
/// pickle's data, shared references included).
pub fn keeps_state(global: &Global) -> bool {
    rules::lookup(&global.module, &global.name).is_some_and(|rule| {
        rule.checks
            .iter()
            .any(|check| std::ptr::eq(*check, &checks::NUMPY_DTYPE_STATE))
    })
}

/// Whether the library keeps containers of the arguments `global` was applied to: torch
/// keeps a tensor's `backward_hooks` mapping, which the checks require to be empty, and a
/// pickle that still holds it in its memo could fill it afterwards (SETITEMS) with callables
/// autograd later calls. So the runtime applies such a global to a private copy of its checked
/// arguments, which the pickle cannot reach.
pub fn keeps_args(global: &Global) -> bool {
    rules::lookup(&global.module, &global.name).is_some_and(|rule| {
        rule.checks.iter().any(|check| {
            [
                &checks::TORCH_REBUILD_TENSOR,
                &checks::TORCH_REBUILD_FROM_TYPE,
                &checks::TORCH_PARAMETER,
            ]
            .iter()
            .any(|kept| std::ptr::eq(*check, *kept))
        })
    })
}

#[cfg(test)]
mod forged;
#[cfg(test)]
mod genuine;

#[cfg(test)]
mod keeps_state_tests {
    use super::keeps_state;
    use crate::Global;

    /// RC-26: numpy keeps a dtype's fields dict, so its checked state must reach numpy as a
    /// private copy; arrays copy their state, and a `copyreg` object's state is the pickle's
    /// data (shared references included), so those are passed as they are.
    #[test]
    fn only_states_a_library_keeps_are_copied() {
        assert!(keeps_state(&Global::new("numpy", "dtype")));
        assert!(!keeps_state(&Global::new(
            "numpy._core.multiarray",
            "_reconstruct"
        )));
        assert!(!keeps_state(&Global::new("copyreg", "_reconstructor")));
        assert!(!keeps_state(&Global::new("builtins", "object")));
    }
}
