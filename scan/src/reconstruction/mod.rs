//! The reconstruction rules applied in a scan: the same [`check_apply`] and [`check_build`] the
//! runtime asks, given the same [`Value`]s, rebuilt from the literals in the stream.
//!
//! The scanner's main pass ([`crate::machine`]) runs over small summaries and only decides from
//! names ([`reconstruct::plan`]). Where a stream applies a global whose rules read its arguments
//! or state (`Plan::CheckValues`), or gives a resolved class a state, this pass runs the stream
//! again and rebuilds its objects ([`graph`]): literals by value, containers shared through the
//! memo and filled by APPEND/SETITEM as the unpickler fills them, and every object made by a
//! global with rules remembered with its arguments (converted when it was applied) and its
//! state, as the runtime remembers it. Before each application and BUILD it asks the checks the
//! runtime asks, at the same moment, and each refusal is a [`ConcernKind::Rule`] concern.
//!
//! It reads the stream as `pickle.loads` does, and follows the main pass's view of what is not
//! pickle (joblib's raw array data, nested object-array pickles: [`Jump`]s). Where it cannot go
//! on (a malformed opcode) it stops: the main pass reports the damage, and every refusal found
//! before it stays in the report. One memo serves the stream's pickles in turn, as one
//! `Unpickler` loading them in a loop keeps it (what a later pickle fetches from an earlier
//! one's memo meets the same rules).

mod graph;
mod keys;
mod results;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use pickleguard_policy::reconstruct::bounds::LONG_ENCODED;
use pickleguard_policy::reconstruct::{self, Apply, Plan, Value, Violation};
use pickleguard_policy::Global;

use crate::machine::{rule_concern, Sink};
use crate::memo::Memo;
use crate::opcodes::*;
use crate::reader::Reader;
use crate::report::ConcernKind;
use crate::text;
use graph::{Graph, Id, Node, Text};

/// What the main pass stepped over after a joblib array wrapper's BUILD, by the BUILD's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jump {
    /// The bytes are one nested pickle (an object array), which joblib loads with a fresh
    /// unpickler.
    pub nested: bool,
    /// Where the stream goes on.
    pub resume: usize,
}

/// Checks the reconstruction rules over `pickles` pickles from `start` (the last may break
/// where the main pass saw it break), adding refusals to `sink`.
pub(crate) fn check_stream(
    data: &[u8],
    start: usize,
    pickles: u32,
    jumps: &HashMap<usize, Jump>,
    sink: &mut Sink<'_>,
) {
    let mut graph = Graph::new(sink.limits.max_values);
    let mut memo = Memo::default();
    let mut encoded = HashSet::new();
    let mut pos = start;
    for _ in 0..pickles {
        let mut pass = Pass {
            data,
            r: Reader::new(data, pos),
            graph: &mut graph,
            memo: &mut memo,
            encoded: &mut encoded,
            jumps,
            sink,
            stack: Vec::new(),
            marks: Vec::new(),
        };
        match pass.run() {
            Ok(()) => pos = pass.r.pos(),
            Err(Stop::Broken | Stop::Refused) => return,
            Err(Stop::Full) => {
                let limit = sink.limits.max_values;
                sink.concern(
                    pos,
                    ConcernKind::Unscannable,
                    format!(
                        "the reconstruction rules could not be checked past this pickle: it \
                         builds more than {limit} objects"
                    ),
                );
                return;
            }
        }
    }
}

/// Why the pass stopped early.
enum Stop {
    /// The stream is malformed here (the main pass reports it).
    Broken,
    /// The load would be refused here, and the refusal is reported.
    Refused,
    /// The arena is full.
    Full,
}

impl From<graph::Full> for Stop {
    fn from(_: graph::Full) -> Self {
        Stop::Full
    }
}

impl From<crate::reader::Short> for Stop {
    fn from(_: crate::reader::Short) -> Self {
        Stop::Broken
    }
}

struct Pass<'a, 'g, 's, 'p> {
    data: &'a [u8],
    r: Reader<'a>,
    graph: &'g mut Graph<'a>,
    memo: &'g mut Memo<Id>,
    /// The long strs `_codecs.encode` was applied to, by object.
    encoded: &'g mut HashSet<Id>,
    jumps: &'g HashMap<usize, Jump>,
    sink: &'s mut Sink<'p>,
    stack: Vec<Id>,
    marks: Vec<usize>,
}

impl<'a> Pass<'a, '_, '_, '_> {
    fn run(&mut self) -> Result<(), Stop> {
        let mut ops = 0u64;
        loop {
            let at = self.r.pos();
            let byte = self.r.u8()?;
            ops += 1;
            if ops > self.sink.limits.max_ops {
                return Err(Stop::Broken);
            }
            if byte == STOP {
                self.pop()?;
                return Ok(());
            }
            self.step(byte, at)?;
        }
    }

    fn step(&mut self, byte: u8, at: usize) -> Result<(), Stop> {
        match byte {
            MARK => {
                self.room()?;
                self.marks.push(self.stack.len());
            }
            POP => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            POP_MARK => {
                let mark = self.pop_mark()?;
                self.stack.truncate(mark);
            }
            DUP => {
                let top = self.top()?;
                self.push(top)?;
            }

            INT => {
                let line = self.r.line()?;
                let node = match text::int_line(line) {
                    Some(text::IntLine::Bool(b)) => Node::Bool(b),
                    Some(text::IntLine::Int(n)) => int_node(Some(n)),
                    None => int_node(None),
                };
                self.add(node)?;
            }
            LONG => {
                let line = self.r.line()?;
                self.add(int_node(text::int_literal(line)))?;
            }
            BININT => {
                let n = self.r.i32()?;
                self.add(Node::Int(n.into()))?;
            }
            BININT1 => {
                let n = self.r.u8()?;
                self.add(Node::Int(n.into()))?;
            }
            BININT2 => {
                let n = self.r.u16()?;
                self.add(Node::Int(n.into()))?;
            }
            LONG1 => {
                let len = self.r.u8()?;
                let bytes = self.r.take(len.into())?;
                self.add(long_node(bytes))?;
            }
            LONG4 => {
                let len = u64::try_from(self.r.i32()?).map_err(|_| Stop::Broken)?;
                let bytes = self.r.take(len)?;
                self.add(long_node(bytes))?;
            }
            FLOAT => {
                let line = self.r.line()?;
                // `_pickle` reads the line as a C string. A number this pass cannot read is an
                // object no check accepts, never the end of the pass: the main pass decides
                // where the stream breaks.
                let line = line.split(|&b| b == 0).next().unwrap_or(line);
                let node = std::str::from_utf8(line)
                    .ok()
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .map_or(Node::Opaque("float"), Node::Float);
                self.add(node)?;
            }
            BINFLOAT => {
                let bytes = self.r.array::<8>()?;
                self.add(Node::Float(f64::from_be_bytes(bytes)))?;
            }
            STRING => {
                let line = self.r.line()?;
                let inner = match line {
                    [first, inner @ .., last]
                        if first == last && (*first == b'\'' || *first == b'"') =>
                    {
                        inner
                    }
                    _ => return Err(Stop::Broken),
                };
                let bytes = text::escape_decode(inner).ok_or(Stop::Broken)?;
                let decoded: String = bytes.iter().map(|&b| char::from(b)).collect();
                self.add(Node::Str(Text::Owned(decoded.into())))?;
            }
            BINSTRING => {
                let len = self.r.u32()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Str(Text::Latin1(bytes)))?;
            }
            SHORT_BINSTRING => {
                let len = self.r.u8()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Str(Text::Latin1(bytes)))?;
            }
            BINBYTES => {
                let len = self.r.u32()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Bytes(bytes))?;
            }
            SHORT_BINBYTES => {
                let len = self.r.u8()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Bytes(bytes))?;
            }
            BINBYTES8 | BYTEARRAY8 => {
                let len = self.r.u64()?;
                let bytes = self.r.take(len)?;
                self.add(Node::Bytes(bytes))?;
            }
            UNICODE => {
                let line = self.r.line()?;
                let decoded = text::raw_unicode_decode(line).ok_or(Stop::Broken)?;
                self.add(Node::Str(Text::Owned(decoded.into())))?;
            }
            SHORT_BINUNICODE => {
                let len = self.r.u8()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Str(Text::Utf8(bytes)))?;
            }
            BINUNICODE => {
                let len = self.r.u32()?;
                let bytes = self.r.take(len.into())?;
                self.add(Node::Str(Text::Utf8(bytes)))?;
            }
            BINUNICODE8 => {
                let len = self.r.u64()?;
                let bytes = self.r.take(len)?;
                self.add(Node::Str(Text::Utf8(bytes)))?;
            }
            NONE => self.add(Node::None)?,
            NEWTRUE => self.add(Node::Bool(true))?,
            NEWFALSE => self.add(Node::Bool(false))?,
            EMPTY_LIST => self.add(Node::List(Vec::new()))?,
            EMPTY_SET => self.add(Node::Opaque("set"))?,
            EMPTY_TUPLE => self.add(Node::Tuple(Box::new([])))?,
            EMPTY_DICT => self.add(Node::Dict(Vec::new()))?,
            NEXT_BUFFER => self.add(Node::Opaque("PickleBuffer"))?,
            READONLY_BUFFER => {
                self.top()?;
            }

            APPEND => {
                let value = self.pop()?;
                let list = self.top()?;
                self.graph.append(list, &[value]);
            }
            APPENDS => {
                let mark = self.pop_mark()?;
                let list = self.below(mark)?;
                self.graph.append(list, &self.stack[mark..]);
                self.stack.truncate(mark);
            }
            ADDITEMS => {
                let mark = self.pop_mark()?;
                self.below(mark)?;
                self.stack.truncate(mark);
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.graph.set_items(dict, &[key, value]);
            }
            SETITEMS => {
                let mark = self.pop_mark()?;
                let dict = self.below(mark)?;
                if (self.stack.len() - mark) % 2 != 0 {
                    return Err(Stop::Broken);
                }
                self.graph.set_items(dict, &self.stack[mark..]);
                self.stack.truncate(mark);
            }
            LIST => {
                let items = self.take_mark()?;
                self.add(Node::List(items))?;
            }
            FROZENSET => {
                self.take_mark()?;
                self.add(Node::Opaque("frozenset"))?;
            }
            TUPLE => {
                let items = self.take_mark()?;
                self.add(Node::Tuple(items.into()))?;
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let count = usize::from(byte - TUPLE1 + 1);
                let len = self.stack.len();
                if len < count + self.fence() {
                    return Err(Stop::Broken);
                }
                let items: Box<[Id]> = self.stack[len - count..].into();
                self.stack.truncate(len - count);
                self.add(Node::Tuple(items))?;
            }
            DICT => {
                let items = self.take_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Stop::Broken);
                }
                let dict = self.graph.add(Node::Dict(Vec::new()))?;
                self.graph.set_items(dict, &items);
                self.push(dict)?;
            }

            GET => {
                let line = self.r.line()?;
                let index = text::memo_index(line).ok_or(Stop::Broken)?;
                self.get(u64::try_from(index).map_err(|_| Stop::Broken)?)?;
            }
            BINGET => {
                let index = self.r.u8()?;
                self.get(index.into())?;
            }
            LONG_BINGET => {
                let index = self.r.u32()?;
                self.get(index.into())?;
            }
            PUT => {
                let line = self.r.line()?;
                let index = text::memo_index(line).ok_or(Stop::Broken)?;
                self.put(u64::try_from(index).map_err(|_| Stop::Broken)?)?;
            }
            BINPUT => {
                let index = self.r.u8()?;
                self.put(index.into())?;
            }
            LONG_BINPUT => {
                let index = self.r.u32()?;
                self.put(index.into())?;
            }
            MEMOIZE => self.put(self.memo.len() as u64)?,

            GLOBAL => {
                let global = self.name_lines()?;
                self.add(global)?;
            }
            INST => {
                let class = self.name_lines()?;
                let class = self.graph.add(class)?;
                let items = self.take_mark()?;
                let args = self.graph.add(Node::Tuple(items.into()))?;
                let instance = self.apply(class, args, None, Apply::Instantiate, at)?;
                self.push(instance)?;
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let node = match (self.graph.get(module), self.graph.get(name)) {
                    (Node::Str(module), Node::Str(name)) => {
                        Node::global(Global::new(module.text().as_ref(), name.text().as_ref()))
                    }
                    _ => Node::Opaque("object"),
                };
                self.add(node)?;
            }
            EXT1 | EXT2 | EXT4 => {
                match byte {
                    EXT1 => self.r.take(1)?,
                    EXT2 => self.r.take(2)?,
                    _ => self.r.take(4)?,
                };
                self.add(Node::Opaque("object"))?;
            }
            PERSID => {
                self.r.line()?;
                self.add(Node::Opaque("persistent"))?;
            }
            BINPERSID => {
                self.pop()?;
                self.add(Node::Opaque("persistent"))?;
            }

            REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = self.apply(callable, args, None, Apply::Reduce, at)?;
                self.push(result)?;
            }
            NEWOBJ => {
                let args = self.pop()?;
                let class = self.pop()?;
                let instance = self.apply(class, args, None, Apply::NewObj, at)?;
                self.push(instance)?;
            }
            NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                let instance = self.apply(class, args, Some(kwargs), Apply::NewObjEx, at)?;
                self.push(instance)?;
            }
            OBJ => {
                let mark = self.pop_mark()?;
                if self.stack.len() <= mark {
                    return Err(Stop::Broken);
                }
                let class = self.stack[mark];
                let args = self.graph.add(Node::Tuple(self.stack[mark + 1..].into()))?;
                self.stack.truncate(mark);
                let instance = self.apply(class, args, None, Apply::Instantiate, at)?;
                self.push(instance)?;
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state, at);
                let jump = if self.jumps.is_empty() {
                    None
                } else {
                    self.jumps.get(&at)
                };
                if let Some(jump) = jump {
                    // joblib swaps the wrapper for the array it reads next.
                    self.stack.pop();
                    if jump.nested {
                        // joblib loads an object array with a fresh unpickler.
                        check_stream(self.data, self.r.pos(), 1, self.jumps, self.sink);
                    }
                    self.r = Reader::new(self.data, jump.resume);
                    self.add(Node::Opaque("ndarray"))?;
                }
            }

            PROTO => {
                self.r.u8()?;
            }
            FRAME => {
                self.r.u64()?;
            }
            _ => return Err(Stop::Broken),
        }
        Ok(())
    }

    /// Applies `callee` to `args` (and `kwargs`) with `apply`, asking the rules first as the
    /// runtime does; returns the object it makes.
    fn apply(
        &mut self,
        callee: Id,
        args: Id,
        kwargs: Option<Id>,
        apply: Apply,
        at: usize,
    ) -> Result<Id, Stop> {
        let Node::Global(resolved) = self.graph.get(callee) else {
            return Ok(self.graph.add(Node::Opaque("object"))?);
        };
        if !resolved.ruled.any {
            return Ok(self.graph.add(Node::Opaque("object"))?);
        }
        let resolved = resolved.clone();
        let global = &resolved.global;
        self.encoded_again(global, args, apply, at);
        // A result read by value keeps no record of its arguments, in the runtime too.
        let exact = results::exact_result(self.graph, global, args);
        let kept = match (kwargs, &exact) {
            (None, None) => self.graph.snapshot(args),
            _ => Ok(Rc::new(self.graph.to_value(args))),
        };
        let Ok(args_value) = kept else {
            // The load stops here too.
            self.refused(global, apply, &reconstruct::kept_too_many(), at);
            return Err(Stop::Refused);
        };
        let kwargs_value = kwargs.map(|kwargs| self.graph.to_value(kwargs));
        if resolved.ruled.refuses(apply) {
            self.refused_by_names(global, apply, at);
        } else if resolved.ruled.checks_values(apply) {
            // `pickle._Unpickler` (joblib's) applies any iterable, `func(*args)`: the rules
            // see a list of arguments as the tuple it is called with, as the runtime's wrapped
            // pure-Python unpickler shows them (`_pickle` raises on a list).
            let listed;
            let checked = match &*args_value {
                Value::List(items) => {
                    listed = Value::Tuple(items.clone());
                    &listed
                }
                other => other,
            };
            if let Err(violation) =
                reconstruct::check_apply(global, apply, checked, kwargs_value.as_ref())
            {
                self.refused(global, apply, &violation, at);
            }
        }
        match exact {
            Some(results::Exact::Node(node)) => return Ok(self.graph.add(node)?),
            Some(results::Exact::Items(items)) => {
                let dict = self.graph.add(Node::Dict(Vec::new()))?;
                self.graph.set_items(dict, &items);
                return Ok(dict);
            }
            None => {}
        }
        let args = match kwargs_value {
            Some(kwargs) => {
                let both = Value::Tuple(vec![(*args_value).clone(), kwargs]);
                if self.graph.keep(&both).is_err() {
                    self.refused(global, apply, &reconstruct::kept_too_many(), at);
                    return Err(Stop::Refused);
                }
                Rc::new(both)
            }
            None => args_value,
        };
        Ok(self.graph.add(Node::Built {
            by: resolved.clone(),
            apply,
            args,
            state: None,
        })?)
    }

    /// RC-33: `_codecs.encode` applied a second time to one long `str`.
    fn encoded_again(&mut self, global: &Global, args: Id, apply: Apply, at: usize) {
        if global.module != "_codecs" || global.name != "encode" {
            return;
        }
        let Node::Tuple(items) = self.graph.get(args) else {
            return;
        };
        let Some(&text) = items.first() else {
            return;
        };
        let Node::Str(chars) = self.graph.get(text) else {
            return;
        };
        let chars = chars.chars();
        if chars > LONG_ENCODED && !self.encoded.insert(text) {
            self.refused(global, apply, &reconstruct::encoded_again(chars), at);
        }
    }

    /// BUILD of `state` onto `target`, checked as the runtime checks it.
    fn build(&mut self, target: Id, state: Id, at: usize) {
        match self.graph.get(target) {
            Node::Built { by, .. } => {
                let by = by.clone();
                if by.ruled.refuses(Apply::Build) {
                    self.refused_by_names(&by.global, Apply::Build, at);
                } else if by.ruled.checks_values(Apply::Build) {
                    let target_value = self.graph.to_value(target);
                    let state_value = self.graph.to_value(state);
                    if let Err(violation) = reconstruct::check_build(&target_value, &state_value) {
                        self.refused(&by.global, Apply::Build, &violation, at);
                    }
                }
                self.graph.set_state(target, state);
            }
            Node::Global(resolved) => {
                let global = resolved.global.clone();
                let state_value = self.graph.to_value(state);
                if let Err(violation) =
                    reconstruct::check_build(&Value::Global(global.clone()), &state_value)
                {
                    self.refused(&global, Apply::Build, &violation, at);
                }
            }
            _ => {}
        }
    }

    /// A refusal from the names alone (the main pass reports it too where it follows the
    /// object; the sink keeps one).
    fn refused_by_names(&mut self, global: &Global, apply: Apply, at: usize) {
        if let Plan::Refuse(violation) = reconstruct::plan(global, apply) {
            self.refused(global, apply, &violation, at);
        }
    }

    fn refused(&mut self, global: &Global, apply: Apply, violation: &Violation, at: usize) {
        self.sink.concern(
            at,
            ConcernKind::Rule,
            rule_concern(global, apply, violation),
        );
    }

    /// GLOBAL's or INST's two name lines, as a resolved global (text that is not UTF-8 is
    /// the main pass's error).
    fn name_lines(&mut self) -> Result<Node<'a>, Stop> {
        let module = self.r.line()?;
        let name = self.r.line()?;
        match (std::str::from_utf8(module), std::str::from_utf8(name)) {
            (Ok(module), Ok(name)) => Ok(Node::global(Global::new(module, name))),
            _ => Err(Stop::Broken),
        }
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn room(&self) -> Result<(), Stop> {
        if self.stack.len() + self.marks.len() >= self.sink.limits.max_stack {
            return Err(Stop::Broken);
        }
        Ok(())
    }

    fn add(&mut self, node: Node<'a>) -> Result<(), Stop> {
        let id = self.graph.add(node)?;
        self.push(id)
    }

    fn push(&mut self, id: Id) -> Result<(), Stop> {
        self.room()?;
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<Id, Stop> {
        if self.stack.len() <= self.fence() {
            return Err(Stop::Broken);
        }
        self.stack.pop().ok_or(Stop::Broken)
    }

    fn top(&self) -> Result<Id, Stop> {
        if self.stack.len() <= self.fence() {
            return Err(Stop::Broken);
        }
        self.stack.last().copied().ok_or(Stop::Broken)
    }

    fn pop_mark(&mut self) -> Result<usize, Stop> {
        let mark = self.marks.pop().ok_or(Stop::Broken)?;
        if mark > self.stack.len() {
            return Err(Stop::Broken);
        }
        Ok(mark)
    }

    /// The container just below `mark`, above the mark before it.
    fn below(&self, mark: usize) -> Result<Id, Stop> {
        if mark == 0 || mark <= self.fence() {
            return Err(Stop::Broken);
        }
        Ok(self.stack[mark - 1])
    }

    /// Pops a mark and the values above it.
    fn take_mark(&mut self) -> Result<Vec<Id>, Stop> {
        let mark = self.pop_mark()?;
        Ok(self.stack.split_off(mark))
    }

    fn get(&mut self, key: u64) -> Result<(), Stop> {
        let id = self.memo.get(key).ok_or(Stop::Broken)?;
        self.push(id)
    }

    fn put(&mut self, key: u64) -> Result<(), Stop> {
        let top = self.top()?;
        self.memo
            .insert(key, top, self.sink.limits.max_memo)
            .map_err(|()| Stop::Broken)
    }
}

/// An INT or LONG line's value; one this pass cannot read is an object no check accepts,
/// never the end of the pass (the main pass decides where the stream breaks, and a CPython
/// unpickler may read what this pass does not).
fn int_node(parsed: Option<Result<i64, ()>>) -> Node<'static> {
    match parsed {
        Some(Ok(n)) => Node::Int(n),
        Some(Err(())) => Node::BigInt,
        None => Node::Opaque("int"),
    }
}

fn long_node(bytes: &[u8]) -> Node<'static> {
    text::long_le_exact(bytes).map_or(Node::BigInt, Node::Int)
}

#[cfg(test)]
mod tests;
