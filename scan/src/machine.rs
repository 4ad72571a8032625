//! The pickle machine: runs one pickle's opcodes over summaries of its values, without building
//! any object, and records every global it would resolve.
//!
//! The stack is flat, with marks kept as indices into it, like `_pickle.c`; no opcode reaches
//! below the last mark, as in every CPython from 3.8 on (C and pure-Python unpicklers alike), so
//! the scanner's idea of each STACK_GLOBAL operand matches the unpickler's. The scanner stops
//! only where both CPython unpicklers stop (`pickle._Unpickler` is what joblib uses): stopping
//! earlier would hide the globals after that point.
//!
//! Where the two differ, the scanner follows the one that goes on: `pickle._Unpickler` reads a
//! FRAME longer than the data, and a last GLOBAL or INST line without its newline; `_pickle`
//! reads memo indices up to a NUL byte.
//!
//! Nothing here recurses on the input: nesting lives in the `stack` and `marks` vectors, whose
//! combined length is capped by [`Limits::max_stack`](crate::Limits). The one nested call, for a
//! joblib object array's inline pickle, runs without joblib reading, so it never nests again.

use pickleguard_policy::reconstruct::{self, Apply, Plan, Value as Checked, Violation};
use pickleguard_policy::{Global, Policy};

use crate::memo::Memo;
use crate::objects::{ArrayData, Objects};
use crate::opcodes::*;
use crate::reader::{Reader, Short};
use crate::reconstruction::Jump;
use crate::report::{ConcernKind, Finding};
use crate::text;
use crate::value::{Known, Operand, Value};
use crate::{Limits, ScanError};

/// Where a stream's findings go, with the opcode budget its pickles share.
pub(crate) struct Sink<'p> {
    pub policy: &'p Policy,
    pub limits: Limits,
    pub globals: Vec<Finding>,
    /// Concerns found in the stream: offset, kind and detail.
    pub concerns: Vec<(u64, ConcernKind, String)>,
    /// Hash of (module, name, opcode) to the index of its finding.
    seen: std::collections::HashMap<u64, usize>,
    /// Globals (by finding index, or past the end for the known ones) and the ways they were
    /// applied, each judged once by name.
    planned: std::collections::HashMap<(usize, Apply), Planned>,
    /// Whether the stream applies a global whose rules read argument values or a state, so
    /// [`crate::reconstruction`] must check it with the values rebuilt.
    pub needs_values: bool,
    /// What was stepped over after each joblib array wrapper's BUILD, by the BUILD's offset.
    pub jumps: std::collections::HashMap<usize, Jump>,
    /// The first read that ran past the end of its FRAME: where it started and where the
    /// frame ends. `_pickle` reading a file drops the bytes in between (see `straddle`).
    pub dropped: Option<(usize, usize)>,
    pub ops: u64,
}

impl<'p> Sink<'p> {
    pub fn new(policy: &'p Policy, limits: Limits) -> Self {
        Sink {
            policy,
            limits,
            globals: Vec::new(),
            concerns: Vec::new(),
            seen: std::collections::HashMap::new(),
            planned: std::collections::HashMap::new(),
            needs_values: false,
            jumps: std::collections::HashMap::new(),
            dropped: None,
            ops: 0,
        }
    }

    /// Whether the stream named this global with this opcode before: each distinct global is
    /// listed (and judged) once per stream, at its first offset, so a pickle written without a
    /// memo (one STACK_GLOBAL per object) costs one lookup per repeat, not one finding.
    fn seen_before(&mut self, module: &str, name: &str, opcode: &'static str) -> Option<usize> {
        use std::hash::BuildHasher;
        let key = self.seen.hasher().hash_one((module, name, opcode));
        if let Some(&index) = self.seen.get(&key) {
            let earlier = &self.globals[index];
            if earlier.opcode == opcode
                && earlier.module.as_deref() == Some(module)
                && earlier.name.as_deref() == Some(name)
            {
                return Some(index);
            }
        }
        self.seen.insert(key, self.globals.len());
        None
    }

    /// Applies the reconstruction rules' plan to `global` applied by `apply` to `args`: a global
    /// that this opcode may never apply is a concern, decided from the names once per global
    /// and opcode. Checks that read the arguments are run here when the arguments are an empty
    /// tuple (`OrderedDict()` in every state_dict: the common case costs one lookup), and are
    /// otherwise left to [`crate::reconstruction`], which rebuilds the values.
    fn plan(
        &mut self,
        key: usize,
        global: impl FnOnce(&Self) -> Option<Global>,
        apply: Apply,
        args: Args,
        at: usize,
    ) {
        let planned = match self.planned.get(&(key, apply)) {
            Some(planned) => *planned,
            None => {
                let planned = match global(self) {
                    None => Planned::Done,
                    Some(global) => match reconstruct::plan(&global, apply) {
                        Plan::Allow => Planned::Done,
                        Plan::Refuse(violation) => {
                            self.concern(
                                at,
                                ConcernKind::Rule,
                                rule_concern(&global, apply, &violation),
                            );
                            Planned::Done
                        }
                        Plan::CheckValues if apply == Apply::Build => Planned::Values,
                        Plan::CheckValues => {
                            let empty = Checked::Tuple(Vec::new());
                            match reconstruct::check_apply(&global, apply, &empty, None) {
                                Ok(()) => Planned::EmptyArgsPass,
                                Err(_) => Planned::Values,
                            }
                        }
                    },
                };
                self.planned.insert((key, apply), planned);
                planned
            }
        };
        match (planned, args) {
            (Planned::Done, _) | (Planned::EmptyArgsPass, Args::Empty) => {}
            _ => self.needs_values = true,
        }
    }

    fn record(&mut self, finding: Finding) -> Result<(), ScanError> {
        if self.globals.len() >= self.limits.max_globals {
            return Err(ScanError::Limit {
                what: "the number of globals",
                limit: self.limits.max_globals as u64,
                offset: finding.offset,
            });
        }
        self.globals.push(finding);
        Ok(())
    }

    /// Records a concern, once per kind and detail (at its first offset: a refusal repeated
    /// through the memo is one finding, and the main pass and the value checks may both see a
    /// refusal from the names); a few per stream are enough to judge it.
    pub(crate) fn concern(&mut self, offset: usize, kind: ConcernKind, detail: String) {
        if self.concerns.len() < MAX_CONCERNS
            && !self
                .concerns
                .iter()
                .any(|(_, k, d)| *k == kind && *d == detail)
        {
            self.concerns.push((offset as u64, kind, detail));
        }
    }
}

/// Concerns kept per stream.
const MAX_CONCERNS: usize = 16;

/// What the name-level plan left to do for one global and opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    /// Nothing: the rules allow it, or refused it from the names (reported once).
    Done,
    /// Its checks pass for an empty argument tuple; other arguments need the values.
    EmptyArgsPass,
    /// Its checks need the values.
    Values,
}

/// What the main pass knows of the arguments of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Args {
    /// An empty tuple.
    Empty,
    /// Anything else (or a BUILD state).
    Other,
}

impl Args {
    fn of(args: Value<'_>) -> Args {
        match args {
            Value::EmptyTuple => Args::Empty,
            _ => Args::Other,
        }
    }

    /// INST's and OBJ's arguments, by how many values sat above the mark.
    fn of_count(count: usize) -> Args {
        if count == 0 {
            Args::Empty
        } else {
            Args::Other
        }
    }
}

/// One spelling of a reconstruction refusal, for the main pass and the value checks alike.
pub(crate) fn rule_concern(global: &Global, apply: Apply, violation: &Violation) -> String {
    format!(
        "`{global}` applied by `{apply:?}`: refused by `{}`: {}",
        violation.check, violation.detail
    )
}

/// What one pickle leaves to the next in its stream: one `Unpickler` loading the stream's
/// pickles in turn keeps its memo (and the objects it refers to).
#[derive(Default)]
pub(crate) struct Carry<'a> {
    memo: Memo<Value<'a>>,
    objects: Objects,
}

/// How one pickle ended: the offset after its STOP (or where it broke), and the error if any.
pub(crate) struct Ended {
    pub end: usize,
    pub error: Option<ScanError>,
}

/// Runs the pickle that starts at `start`. With `joblib`, the raw array data that joblib writes
/// after each `NumpyArrayWrapper` is stepped over the way `joblib.load` reads it.
pub(crate) fn run_pickle<'a>(
    data: &'a [u8],
    start: usize,
    joblib: bool,
    carry: &mut Carry<'a>,
    sink: &mut Sink<'_>,
) -> Ended {
    let mut machine = Machine {
        data,
        r: Reader::new(data, start),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::mem::take(&mut carry.memo),
        objects: std::mem::take(&mut carry.objects),
        sink,
        joblib,
        frame_end: NO_FRAME,
    };
    let error = machine.run().err();
    carry.memo = machine.memo;
    carry.objects = machine.objects;
    Ended {
        end: machine.r.pos(),
        error,
    }
}

struct Machine<'a, 's, 'p> {
    data: &'a [u8],
    r: Reader<'a>,
    stack: Vec<Value<'a>>,
    marks: Vec<usize>,
    memo: Memo<Value<'a>>,
    objects: Objects,
    sink: &'s mut Sink<'p>,
    joblib: bool,
    /// Where the last FRAME's bytes end, [`NO_FRAME`] before any.
    frame_end: usize,
}

const NO_FRAME: usize = usize::MAX;

#[derive(PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
}

fn malformed(opcode: &'static str, at: usize, why: impl Into<String>) -> ScanError {
    ScanError::Malformed {
        offset: at as u64,
        opcode,
        why: why.into(),
    }
}

#[cold]
fn memo_miss(index: i64, opcode: &'static str, at: usize) -> ScanError {
    malformed(
        opcode,
        at,
        format!("reads memo key `{index}`, which was never stored"),
    )
}

fn underflow(opcode: &'static str, at: usize) -> ScanError {
    malformed(
        opcode,
        at,
        "needs more values than the stack holds above its last mark",
    )
}

impl<'a> Machine<'a, '_, '_> {
    fn run(&mut self) -> Result<(), ScanError> {
        loop {
            let at = self.r.pos();
            let Ok(byte) = self.r.u8() else {
                return Err(malformed(
                    "STOP",
                    at,
                    "is missing: the data ends before the pickle does",
                ));
            };
            self.sink.ops += 1;
            if self.sink.ops > self.sink.limits.max_ops {
                return Err(ScanError::Limit {
                    what: "the number of opcodes",
                    limit: self.sink.limits.max_ops,
                    offset: at as u64,
                });
            }
            let Some(name) = crate::opcodes::name(byte) else {
                return Err(ScanError::UnknownOpcode {
                    offset: at as u64,
                    byte,
                });
            };
            let flow = self.step(byte, name, at)?;
            if self.r.pos() > self.frame_end && at < self.frame_end {
                self.straddle(name, at);
            }
            if flow == Flow::Stop {
                return Ok(());
            }
        }
    }

    #[inline(always)]
    fn step(&mut self, byte: u8, name: &'static str, at: usize) -> Result<Flow, ScanError> {
        let trunc = |short: Short| ScanError::Truncated {
            offset: at as u64,
            opcode: name,
            needed: short.needed,
            left: short.left,
        };
        match byte {
            // Stack and marks.
            MARK => {
                self.room(at)?;
                self.marks.push(self.stack.len());
            }
            STOP => {
                self.pop(name, at)?;
                return Ok(Flow::Stop);
            }
            POP => {
                // `_pickle` pops a mark sitting on top of the stack instead of a value.
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop(name, at)?;
                }
            }
            POP_MARK => {
                let mark = self.pop_mark(name, at)?;
                self.stack.truncate(mark);
            }
            DUP => {
                let top = self.top(name, at)?;
                self.push(top, at)?;
            }

            // Numbers, strings, bytes and constants.
            INT | LONG => {
                let line = self.r.line().map_err(trunc)?;
                if !text::canonical_int(line, byte == LONG) {
                    self.sink.concern(
                        at,
                        ConcernKind::ReadersDisagree,
                        format!(
                            "`{name}` line `{}` is not a plain decimal: `_pickle` reads it with \
                             strtol in base 0 (a leading 0 is octal, a NUL ends it), \
                             `pickle._Unpickler` with int(text, 0), pickleguard's unpickler as \
                             a decimal; no pickler writes it",
                            line.escape_ascii()
                        ),
                    );
                }
                self.push(text::decimal(line), at)?;
            }
            BININT => {
                let n = self.r.i32().map_err(trunc)?;
                self.push(Value::Int(n.into()), at)?;
            }
            BININT1 => {
                let n = self.r.u8().map_err(trunc)?;
                self.push(Value::Int(n.into()), at)?;
            }
            BININT2 => {
                let n = self.r.u16().map_err(trunc)?;
                self.push(Value::Int(n.into()), at)?;
            }
            LONG1 => {
                let len = self.r.u8().map_err(trunc)?;
                let bytes = self.r.take(len.into()).map_err(trunc)?;
                self.push(text::long_le(bytes), at)?;
            }
            LONG4 => {
                let len = self.r.i32().map_err(trunc)?;
                let len = u64::try_from(len)
                    .map_err(|_| malformed(name, at, "has a negative byte count"))?;
                let bytes = self.r.take(len).map_err(trunc)?;
                self.push(text::long_le(bytes), at)?;
            }
            FLOAT => {
                self.r.line().map_err(trunc)?;
                self.push(Value::Data, at)?;
            }
            BINFLOAT => {
                self.r.take(8).map_err(trunc)?;
                self.push(Value::Data, at)?;
            }
            STRING => {
                let line = self.r.line().map_err(trunc)?;
                let value = text::quoted(line).map_err(|why| malformed(name, at, why))?;
                self.push(value, at)?;
            }
            BINSTRING => {
                // `_pickle` reads this length unsigned.
                let len = self.r.u32().map_err(trunc)?;
                let bytes = self.r.take(len.into()).map_err(trunc)?;
                self.push(text::ascii_text(bytes), at)?;
            }
            SHORT_BINSTRING => {
                let len = self.r.u8().map_err(trunc)?;
                let bytes = self.r.take(len.into()).map_err(trunc)?;
                self.push(text::ascii_text(bytes), at)?;
            }
            BINBYTES => {
                let len = self.r.u32().map_err(trunc)?;
                self.r.take(len.into()).map_err(trunc)?;
                self.push(Value::Data, at)?;
            }
            SHORT_BINBYTES => {
                let len = self.r.u8().map_err(trunc)?;
                self.r.take(len.into()).map_err(trunc)?;
                self.push(Value::Data, at)?;
            }
            BINBYTES8 | BYTEARRAY8 => {
                let len = self.r.u64().map_err(trunc)?;
                self.r.take(len).map_err(trunc)?;
                self.push(Value::Data, at)?;
            }
            UNICODE => {
                let line = self.r.line().map_err(trunc)?;
                self.push(text::raw_unicode(line), at)?;
            }
            SHORT_BINUNICODE => {
                let len = self.r.u8().map_err(trunc)?;
                let bytes = self.r.take(len.into()).map_err(trunc)?;
                self.push(text::utf8(bytes), at)?;
            }
            BINUNICODE => {
                let len = self.r.u32().map_err(trunc)?;
                let bytes = self.r.take(len.into()).map_err(trunc)?;
                self.push(text::utf8(bytes), at)?;
            }
            BINUNICODE8 => {
                let len = self.r.u64().map_err(trunc)?;
                let bytes = self.r.take(len).map_err(trunc)?;
                self.push(text::utf8(bytes), at)?;
            }
            NONE => self.push(Value::None, at)?,
            // A bool is an int (joblib reads a shape of `(True,)` as one item).
            NEWTRUE => self.push(Value::Int(1), at)?,
            NEWFALSE => self.push(Value::Int(0), at)?,
            EMPTY_LIST | EMPTY_SET => self.push(Value::Data, at)?,
            EMPTY_TUPLE => {
                let empty = self.objects.tuple(&[]);
                self.push(empty, at)?;
            }
            EMPTY_DICT => {
                let dict = self.objects.new_dict();
                self.push(dict, at)?;
            }
            NEXT_BUFFER => self.push(Value::Built(name), at)?,
            READONLY_BUFFER => {
                self.top(name, at)?;
            }

            // Containers.
            APPEND => {
                // The list sits below the value, above the last mark.
                let items = self.items_from(self.stack.len().saturating_sub(1), name, at)?;
                self.stack.truncate(items);
            }
            APPENDS | ADDITEMS => {
                let mark = self.pop_mark(name, at)?;
                let items = self.items_from(mark, name, at)?;
                self.stack.truncate(items);
            }
            SETITEM => {
                let items = self.items_from(self.stack.len().saturating_sub(2), name, at)?;
                self.set_items(items);
            }
            SETITEMS => {
                let mark = self.pop_mark(name, at)?;
                let items = self.items_from(mark, name, at)?;
                if (self.stack.len() - items) % 2 != 0 {
                    return Err(malformed(name, at, "has an odd number of items"));
                }
                self.set_items(items);
            }
            LIST | FROZENSET => {
                let mark = self.pop_mark(name, at)?;
                self.slice_from(mark, name, at)?;
                self.stack.truncate(mark);
                self.push(Value::Data, at)?;
            }
            TUPLE => {
                let mark = self.pop_mark(name, at)?;
                let tuple = self.objects.tuple(self.slice_from(mark, name, at)?);
                self.stack.truncate(mark);
                self.push(tuple, at)?;
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let count = usize::from(byte - TUPLE1 + 1);
                let len = self.stack.len();
                if len < count || len - count < self.fence() {
                    return Err(underflow(name, at));
                }
                let tuple = self.objects.tuple(&self.stack[len - count..]);
                self.stack.truncate(len - count);
                self.push(tuple, at)?;
            }
            DICT => {
                let mark = self.pop_mark(name, at)?;
                if self.slice_from(mark, name, at)?.len() % 2 != 0 {
                    return Err(malformed(name, at, "has an odd number of items"));
                }
                let dict = self.objects.new_dict();
                for pair in self.stack[mark..].chunks_exact(2) {
                    self.objects.set_item(dict, pair[0], pair[1]);
                }
                self.stack.truncate(mark);
                self.push(dict, at)?;
            }

            // Memo.
            GET => {
                let line = self.r.line().map_err(trunc)?;
                let index = text::memo_index(line)
                    .ok_or_else(|| malformed(name, at, "has an argument that is not an int"))?;
                self.get(index, name, at)?;
            }
            BINGET => {
                let index = self.r.u8().map_err(trunc)?;
                self.get(index.into(), name, at)?;
            }
            LONG_BINGET => {
                let index = self.r.u32().map_err(trunc)?;
                self.get(index.into(), name, at)?;
            }
            PUT => {
                let line = self.r.line().map_err(trunc)?;
                let index = text::memo_index(line)
                    .ok_or_else(|| malformed(name, at, "has an argument that is not an int"))?;
                let index = u64::try_from(index)
                    .map_err(|_| malformed(name, at, "has a negative argument"))?;
                self.put(index, name, at)?;
            }
            BINPUT => {
                let index = self.r.u8().map_err(trunc)?;
                self.put(index.into(), name, at)?;
            }
            LONG_BINPUT => {
                let index = self.r.u32().map_err(trunc)?;
                self.put(index.into(), name, at)?;
            }
            MEMOIZE => {
                // The next index is the number of entries, as in both unpicklers.
                self.put(self.memo.len() as u64, name, at)?;
            }

            // Globals.
            GLOBAL => {
                let module = self.name_line();
                let attr = self.name_line();
                let (module, attr) = match (std::str::from_utf8(module), std::str::from_utf8(attr))
                {
                    (Ok(module), Ok(attr)) => (module, attr),
                    _ => {
                        return Err(malformed(
                            name,
                            at,
                            "names a global that is not valid utf-8",
                        ))
                    }
                };
                let global = self.global(module, attr, name, at)?;
                self.push(global, at)?;
            }
            INST => {
                let module = self.name_line();
                let attr = self.name_line();
                if !module.is_ascii() || !attr.is_ascii() {
                    return Err(malformed(name, at, "names a global that is not ascii"));
                }
                let (module, attr) = match (std::str::from_utf8(module), std::str::from_utf8(attr))
                {
                    (Ok(module), Ok(attr)) => (module, attr),
                    _ => return Err(malformed(name, at, "names a global that is not ascii")),
                };
                // `pickle._Unpickler` resolves the class before it looks for the mark.
                let class = self.global(module, attr, name, at)?;
                let mark = self.pop_mark(name, at)?;
                self.slice_from(mark, name, at)?;
                let args = Args::of_count(self.stack.len() - mark);
                self.stack.truncate(mark);
                self.apply(class, Apply::Instantiate, args, at);
                let instance = self.objects.instance(class, name);
                self.push(instance, at)?;
            }
            STACK_GLOBAL => {
                let attr = self.pop(name, at)?;
                let module = self.pop(name, at)?;
                let global = match (module.operand(), attr.operand()) {
                    (Operand::NotStr(what), _) => {
                        return Err(malformed(
                            name,
                            at,
                            format!("needs a str module, not {what}"),
                        ))
                    }
                    (_, Operand::NotStr(what)) => {
                        return Err(malformed(name, at, format!("needs a str name, not {what}")))
                    }
                    (Operand::Known(module), Operand::Known(attr)) => {
                        self.global(module, attr, name, at)?
                    }
                    (module, attr) => {
                        let mut why = Vec::new();
                        if let Operand::Unknown(module) = module {
                            why.push(format!("the module operand {module}"));
                        }
                        if let Operand::Unknown(attr) = attr {
                            why.push(format!("the name operand {attr}"));
                        }
                        self.sink
                            .record(Finding::unresolved(name, at as u64, why.join("; ")))?;
                        Value::Built(name)
                    }
                };
                self.push(global, at)?;
            }
            EXT1 | EXT2 | EXT4 => {
                let code: i64 = match byte {
                    EXT1 => self.r.u8().map_err(trunc)?.into(),
                    EXT2 => self.r.u16().map_err(trunc)?.into(),
                    _ => self.r.i32().map_err(trunc)?.into(),
                };
                if code <= 0 {
                    return Err(malformed(name, at, "specifies an extension code <= 0"));
                }
                let why = format!(
                    "extension code `{code}` names a global through copyreg's extension registry, \
                     which is empty unless the loading program fills it"
                );
                self.sink
                    .record(Finding::unresolved(name, at as u64, why))?;
                self.push(Value::Built(name), at)?;
            }

            // Calls and object building.
            REDUCE => {
                let args = self.pop(name, at)?;
                let callable = self.pop(name, at)?;
                self.apply(callable, Apply::Reduce, Args::of(args), at);
                let result = self.objects.reduce(callable, args);
                self.push(result, at)?;
            }
            NEWOBJ => {
                let args = self.pop(name, at)?;
                let class = self.pop(name, at)?;
                self.apply(class, Apply::NewObj, Args::of(args), at);
                let instance = self.objects.instance(class, name);
                self.push(instance, at)?;
            }
            NEWOBJ_EX => {
                self.pop(name, at)?;
                self.pop(name, at)?;
                let class = self.pop(name, at)?;
                self.apply(class, Apply::NewObjEx, Args::Other, at);
                let instance = self.objects.instance(class, name);
                self.push(instance, at)?;
            }
            OBJ => {
                let mark = self.pop_mark(name, at)?;
                if self.stack.len() <= mark {
                    return Err(underflow(name, at));
                }
                let class = self.stack[mark];
                let args = Args::of_count(self.stack.len() - mark - 1);
                self.stack.truncate(mark);
                self.apply(class, Apply::Instantiate, args, at);
                let instance = self.objects.instance(class, name);
                self.push(instance, at)?;
            }
            BUILD => {
                let state = self.pop(name, at)?;
                let target = self.top(name, at)?;
                match target {
                    Value::Made(index) => {
                        self.apply(Value::Global(index), Apply::Build, Args::Other, at)
                    }
                    Value::Dtype(_) => {
                        self.apply(Value::Class(Known::Dtype), Apply::Build, Args::Other, at)
                    }
                    Value::Wrapper => self.apply(
                        Value::Class(Known::ArrayWrapper),
                        Apply::Build,
                        Args::Other,
                        at,
                    ),
                    // BUILD onto a resolved class or function: the rules refuse it for every
                    // global they list, which needs the name checked with the state.
                    Value::Global(_) | Value::Class(_) => self.sink.needs_values = true,
                    _ => {}
                }
                self.objects.build(target, state);
                if self.joblib && matches!(target, Value::Wrapper) {
                    // joblib's load_build swaps the wrapper for the array it reads next.
                    self.stack.pop();
                    if self.frame_end != NO_FRAME && self.r.pos() < self.frame_end {
                        // joblib reads the array from the file, past the frame its unpickler
                        // buffered: not the bytes that follow BUILD in the stream.
                        self.sink.concern(
                            at,
                            ConcernKind::ReadersDisagree,
                            "a joblib array's data starts inside a FRAME: joblib reads it from \
                             after the frame, not from the bytes that follow"
                                .into(),
                        );
                    } else {
                        // joblib committed the frame before the array: its data follows the
                        // frame, where every reader reads it.
                        self.frame_end = NO_FRAME;
                    }
                    let nested = self.read_array(state)?;
                    let jump = Jump {
                        nested,
                        resume: self.r.pos(),
                    };
                    self.sink.jumps.insert(at, jump);
                    self.push(Value::Data, at)?;
                }
            }
            PERSID => {
                self.r.line().map_err(trunc)?;
                self.push(Value::Built(name), at)?;
            }
            BINPERSID => {
                self.pop(name, at)?;
                self.push(Value::Built(name), at)?;
            }

            // Framing.
            PROTO => {
                let protocol = self.r.u8().map_err(trunc)?;
                if protocol > HIGHEST_PROTOCOL {
                    return Err(malformed(
                        name,
                        at,
                        format!("names protocol `{protocol}`, above 5"),
                    ));
                }
            }
            FRAME => {
                // `pickle._Unpickler` reads a frame longer than the data as far as it goes, so
                // only a length no unpickler accepts is an error.
                let len = self.r.u64().map_err(trunc)?;
                if len > i64::MAX as u64 {
                    return Err(malformed(name, at, "is longer than any unpickler accepts"));
                }
                let reach = self.r.pos().saturating_add(len as usize);
                if at < self.frame_end && reach > self.frame_end {
                    self.straddle(name, at);
                }
                self.frame_end = reach;
            }
            _ => {
                // `name()` knows every byte matched above and no other.
                return Err(ScanError::UnknownOpcode {
                    offset: at as u64,
                    byte,
                });
            }
        }
        Ok(Flow::Next)
    }

    /// An opcode read past the end of the FRAME it started in. `pickle.loads` reads on, the
    /// pure-Python unpickler raises, and `_pickle` reading a file drops the rest of the frame
    /// it buffered and reads the argument from after the frame (`_Unpickler_ReadFromFile`
    /// after `load_frame` rewound into bytes read with `read()`, not `peek()`): the three read
    /// different opcodes from here on. No pickler writes this.
    #[cold]
    fn straddle(&mut self, opcode: &'static str, at: usize) {
        let Some(start) = self.read_past(at) else {
            // A bytes payload: `_pickle` takes the buffered part and reads the rest from the
            // file, as pickle.loads does; the pure-Python unpickler stops. No reader runs
            // anything the others do not.
            self.frame_end = NO_FRAME;
            return;
        };
        if self.sink.dropped.is_none() {
            self.sink.dropped = Some((start, self.frame_end));
        }
        self.sink.concern(
            at,
            ConcernKind::ReadersDisagree,
            format!(
                "`{opcode}` reads past the end of its FRAME (at offset `{}`): CPython's file \
                 unpickler, pickle.loads and the pure-Python unpickler read different opcodes \
                 from here",
                self.frame_end
            ),
        );
        // Reported once per frame.
        self.frame_end = NO_FRAME;
    }

    /// Where the read that ran past the frame's end started, if `_pickle` drops the frame's
    /// rest for it: the opcode at `at` is decoded again over the bytes up to the frame's end,
    /// and the read that comes up short says where it began. `None` for a bytes payload, which
    /// `_pickle` reads with `_Unpickler_ReadInto`: buffered bytes first, then the file.
    fn read_past(&self, at: usize) -> Option<usize> {
        let end = self.frame_end.min(self.data.len());
        let head = &self.data[..end];
        let byte = head.get(at).copied().unwrap_or(STOP);
        let length_field = match byte {
            SHORT_BINBYTES => Some(1),
            BINBYTES => Some(4),
            BINBYTES8 | BYTEARRAY8 => Some(8),
            _ => None,
        };
        if let Some(len) = length_field {
            return (at + 1 + len > end).then_some(at + 1);
        }
        if byte == FRAME {
            // `load_frame` reads the length, then buffers the new frame with one read: that
            // read drops the rest of the outer frame.
            return Some(if at + 9 <= end { at + 9 } else { at + 1 });
        }
        if matches!(byte, GLOBAL | INST) {
            // The name lines take what is left at the end: the short line starts after the
            // last newline.
            return Some(
                head[at + 1..]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(at + 1, |nl| at + 2 + nl),
            );
        }
        let mut sink = Sink::new(self.sink.policy, self.sink.limits);
        let mut probe = Machine {
            data: head,
            r: Reader::new(head, at + 1),
            stack: vec![Value::None; 4],
            marks: Vec::new(),
            memo: Memo::default(),
            objects: Objects::default(),
            sink: &mut sink,
            joblib: false,
            frame_end: NO_FRAME,
        };
        match probe.step(byte, crate::opcodes::name(byte).unwrap_or("STOP"), at) {
            Err(ScanError::Truncated { left, .. }) => Some(end - left as usize),
            _ => Some(at + 1),
        }
    }

    /// A module or class name line. At the end of the data `pickle._Unpickler` (unlike
    /// `_pickle`) takes what is left as the line and drops its last byte as if it were the
    /// newline, then still resolves the global, importing the module: so does the scanner.
    fn name_line(&mut self) -> &'a [u8] {
        if let Ok(line) = self.r.line() {
            return line;
        }
        let rest = self.r.rest();
        // Taking exactly what is left cannot fail.
        let _ = self.r.take(rest.len() as u64);
        &rest[..rest.len().saturating_sub(1)]
    }

    /// Judges and records a global; says whether it is one the scanner follows.
    fn global(
        &mut self,
        module: &str,
        attr: &str,
        opcode: &'static str,
        at: usize,
    ) -> Result<Value<'a>, ScanError> {
        let index = match self.sink.seen_before(module, attr, opcode) {
            Some(index) => index,
            None => {
                let finding = Finding::judged(self.sink.policy, module, attr, opcode, at as u64);
                self.sink.record(finding)?;
                self.sink.globals.len() - 1
            }
        };
        let known = Known::of(module, attr);
        self.objects.saw_global(known);
        Ok(match known {
            Some(known) => Value::Class(known),
            None => u32::try_from(index).map_or(Value::Built(opcode), Value::Global),
        })
    }

    /// The rules' plan for applying `callee` with `apply`, if it is a global the stream named.
    #[inline(always)]
    fn apply(&mut self, callee: Value<'a>, apply: Apply, args: Args, at: usize) {
        match callee {
            Value::Global(index) => {
                let index = index as usize;
                self.sink.plan(
                    index,
                    |sink| {
                        let finding = sink.globals.get(index)?;
                        Some(Global::new(
                            finding.module.as_deref()?,
                            finding.name.as_deref()?,
                        ))
                    },
                    apply,
                    args,
                    at,
                );
            }
            Value::Class(known) => {
                let (module, name) = known.names();
                self.sink.plan(
                    usize::MAX - known as usize,
                    |_| Some(Global::new(module, name)),
                    apply,
                    args,
                    at,
                );
            }
            _ => {}
        }
    }

    /// Steps over a joblib array's data; says whether it was a nested pickle.
    fn read_array(&mut self, state: Value<'a>) -> Result<bool, ScanError> {
        let data_at = self.r.pos();
        let trunc = |short: Short| ScanError::Truncated {
            offset: data_at as u64,
            opcode: "BUILD",
            needed: short.needed,
            left: short.left,
        };
        let layout = self
            .objects
            .array_data(state)
            .map_err(|why| ScanError::Joblib {
                offset: data_at as u64,
                why,
            })?;
        match layout {
            ArrayData::Raw { len, padded } => {
                if padded {
                    // joblib reads the padding length byte; at the end of the data it reads
                    // none and pads nothing.
                    let pad = self.r.u8().unwrap_or(0);
                    self.r.take(pad.into()).map_err(trunc)?;
                }
                self.r.take(len).map_err(trunc)?;
                Ok(false)
            }
            ArrayData::Pickle => {
                // An object array: joblib calls plain pickle.load, which knows no wrappers,
                // with a fresh memo.
                let mut fresh = Carry::default();
                let ended = run_pickle(self.data, data_at, false, &mut fresh, self.sink);
                if let Some(error) = ended.error {
                    return Err(error);
                }
                self.r = Reader::new(self.data, ended.end);
                Ok(true)
            }
        }
    }

    #[inline(always)]
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    #[inline(always)]
    fn room(&self, at: usize) -> Result<(), ScanError> {
        let limit = self.sink.limits.max_stack;
        if self.stack.len() + self.marks.len() >= limit {
            return Err(ScanError::Limit {
                what: "the pickle stack",
                limit: limit as u64,
                offset: at as u64,
            });
        }
        Ok(())
    }

    #[inline(always)]
    fn push(&mut self, value: Value<'a>, at: usize) -> Result<(), ScanError> {
        self.room(at)?;
        self.stack.push(value);
        Ok(())
    }

    #[inline(always)]
    fn pop(&mut self, opcode: &'static str, at: usize) -> Result<Value<'a>, ScanError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(opcode, at));
        }
        self.stack.pop().ok_or_else(|| underflow(opcode, at))
    }

    #[inline(always)]
    fn top(&self, opcode: &'static str, at: usize) -> Result<Value<'a>, ScanError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(opcode, at));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| underflow(opcode, at))
    }

    fn pop_mark(&mut self, opcode: &'static str, at: usize) -> Result<usize, ScanError> {
        self.marks
            .pop()
            .ok_or_else(|| malformed(opcode, at, "needs a MARK but none is set"))
    }

    /// The values above a mark.
    fn slice_from(
        &self,
        mark: usize,
        opcode: &'static str,
        at: usize,
    ) -> Result<&[Value<'a>], ScanError> {
        self.stack.get(mark..).ok_or_else(|| underflow(opcode, at))
    }

    /// Checks that the container for items starting at `items` sits just below them and above
    /// the last mark, as `_pickle`'s do_append and do_setitems require.
    fn items_from(
        &self,
        items: usize,
        opcode: &'static str,
        at: usize,
    ) -> Result<usize, ScanError> {
        if items > self.stack.len() || items <= self.fence() {
            return Err(underflow(opcode, at));
        }
        Ok(items)
    }

    /// The dict sits just below `mark`, key-value pairs above it.
    fn set_items(&mut self, mark: usize) {
        let dict = self.stack[mark - 1];
        for pair in self.stack[mark..].chunks_exact(2) {
            self.objects.set_item(dict, pair[0], pair[1]);
        }
        self.stack.truncate(mark);
    }

    #[inline(always)]
    fn get(&mut self, index: i64, opcode: &'static str, at: usize) -> Result<(), ScanError> {
        match u64::try_from(index).ok().and_then(|key| self.memo.get(key)) {
            Some(value) => self.push(value, at),
            None => Err(memo_miss(index, opcode, at)),
        }
    }

    fn put(&mut self, index: u64, opcode: &'static str, at: usize) -> Result<(), ScanError> {
        let top = self.top(opcode, at)?;
        let limit = self.sink.limits.max_memo;
        self.memo
            .insert(index, top, limit)
            .map_err(|()| ScanError::Limit {
                what: "the memo",
                limit: limit as u64,
                offset: at as u64,
            })
    }
}

#[cfg(test)]
mod tests;
