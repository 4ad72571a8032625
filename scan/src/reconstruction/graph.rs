//! The objects a pickle builds, rebuilt from its literals as far as the reconstruction checks
//! read them, and their conversion into the checks' [`Value`].
//!
//! Objects live in an arena and refer to each other by [`Id`], so the memo, the stack and
//! containers share them the way the unpickler's objects are shared: a dict memoized and filled
//! by a later SETITEMS is one object, seen filled by whatever refers to it afterwards. Payloads
//! borrow the input (bytes by slice, strings by their encoded bytes).
//!
//! [`Graph::to_value`] follows the runtime's conversion exactly (`src/unpickler/value.rs`): the
//! same [`bounds`], the same visiting order, so a bound elides the same objects in a scan as in
//! a load and both hand the checks the same [`Value`].

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use std::rc::Rc;

use pickleguard_policy::reconstruct::bounds::{
    self, copy_within, ELIDED, MAX_DEPTH, MAX_KEPT, MAX_NODES, MAX_STR,
};
use pickleguard_policy::reconstruct::{self, Apply, Plan, Value};
use pickleguard_policy::Global;

use super::keys::Keys;

/// An object's place in the arena.
pub(crate) type Id = u32;

/// How a `str`'s characters are stored.
#[derive(Debug, Clone)]
pub(crate) enum Text<'a> {
    /// BINUNICODE's UTF-8 bytes (decoded as CPython does, invalid sequences replaced).
    Utf8(&'a [u8]),
    /// Protocol 0-2 byte strings, one character per byte: how the loaders of Python 2 era
    /// model pickles read them (`encoding="latin1"`); ASCII reads the same under any encoding.
    Latin1(&'a [u8]),
    /// Text decoded from escapes.
    Owned(Box<str>),
}

impl Text<'_> {
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Text::Utf8(bytes) => String::from_utf8_lossy(bytes),
            Text::Latin1(bytes) if bytes.is_ascii() => {
                Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default())
            }
            Text::Latin1(bytes) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            Text::Owned(text) => Cow::Borrowed(text),
        }
    }

    /// Its length in characters, as Python's `len`.
    pub fn chars(&self) -> usize {
        match self {
            Text::Latin1(bytes) => bytes.len(),
            _ => self.text().chars().count(),
        }
    }

    /// Its length once encoded as UTF-8 (what the runtime copies).
    fn utf8_len(&self) -> usize {
        match self {
            Text::Utf8(bytes) => bytes.len(),
            Text::Latin1(bytes) => bytes.iter().map(|&b| if b < 0x80 { 1 } else { 2 }).sum(),
            Text::Owned(text) => text.len(),
        }
    }
}

/// A global the pickle resolved, with what the rules say of it (decided once, when it is
/// resolved).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub global: Global,
    pub ruled: Ruled,
}

/// What the rules say of one global: whether it has any, and for each opcode (by position in
/// [`reconstruct::ALL_APPLIES`]) whether they refuse it outright or read the values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ruled {
    pub any: bool,
    refuse: [bool; reconstruct::ALL_APPLIES.len()],
    check_values: [bool; reconstruct::ALL_APPLIES.len()],
}

impl Ruled {
    pub fn of(global: &Global) -> Ruled {
        let plans = reconstruct::ALL_APPLIES.map(|apply| reconstruct::plan(global, apply));
        Ruled {
            any: reconstruct::has_rules(global),
            refuse: plans.clone().map(|plan| matches!(plan, Plan::Refuse(_))),
            check_values: plans.map(|plan| plan == Plan::CheckValues),
        }
    }

    fn at(apply: Apply) -> usize {
        reconstruct::ALL_APPLIES
            .iter()
            .position(|&a| a == apply)
            .unwrap_or_default()
    }

    pub fn checks_values(&self, apply: Apply) -> bool {
        self.check_values[Self::at(apply)]
    }

    pub fn refuses(&self, apply: Apply) -> bool {
        self.refuse[Self::at(apply)]
    }
}

/// One object.
#[derive(Debug, Clone)]
pub(crate) enum Node<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// An int outside the i64 range.
    BigInt,
    Float(f64),
    Str(Text<'a>),
    Bytes(&'a [u8]),
    /// A `bytes` or `bytearray` a global made, by length.
    BytesOf(usize),
    Tuple(Box<[Id]>),
    List(Vec<Id>),
    /// Key-value pairs in insertion order.
    Dict(Vec<(Id, Id)>),
    /// What a global opcode resolved.
    Global(Rc<Resolved>),
    /// An object made by applying a global that has rules: as the runtime remembers it.
    Built {
        by: Rc<Resolved>,
        apply: Apply,
        /// The arguments converted when it was applied.
        args: Rc<Value>,
        /// The state a BUILD gave it.
        state: Option<Id>,
    },
    /// Anything else, by the type name the runtime would report where the scanner knows it.
    Opaque(&'static str),
}

impl Node<'_> {
    /// A resolved global.
    pub fn global(global: Global) -> Self {
        let ruled = Ruled::of(&global);
        Node::Global(Rc::new(Resolved { global, ruled }))
    }
}

/// The arena.
#[derive(Debug)]
pub(crate) struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    limit: usize,
    /// Bumped by every change to an object (APPEND, SETITEM, a BUILD's state).
    epoch: u64,
    /// Arguments converted since the last change, by object: applying a global to the same
    /// memoized arguments again shares one value (s3: 3,000 applications to one 4,095-item
    /// tuple kept 12 M values).
    snapshots: FxHashMap<Id, Rc<Value>>,
    snapshots_epoch: u64,
    /// Values the built objects' remembered arguments hold, at most `MAX_KEPT`.
    kept: usize,
    /// The dicts' keys, indexed as Python finds them.
    keys: Keys,
}

/// Remembering one more object's arguments would pass `MAX_KEPT`.
#[derive(Debug)]
pub(crate) struct KeptTooMany;

/// The arena is full: the stream holds more objects than the scan rebuilds.
#[derive(Debug)]
pub(crate) struct Full;

impl<'a> Graph<'a> {
    pub fn new(limit: usize) -> Self {
        Graph {
            nodes: Vec::new(),
            limit,
            epoch: 0,
            snapshots: FxHashMap::default(),
            snapshots_epoch: 0,
            kept: 0,
            keys: Keys::default(),
        }
    }

    pub fn add(&mut self, node: Node<'a>) -> Result<Id, Full> {
        if self.nodes.len() >= self.limit {
            return Err(Full);
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as Id)
    }

    pub fn get(&self, id: Id) -> &Node<'a> {
        &self.nodes[id as usize]
    }

    /// A BUILD gives `target` its `state`.
    pub fn set_state(&mut self, target: Id, state: Id) {
        if let Node::Built { state: slot, .. } = &mut self.nodes[target as usize] {
            *slot = Some(state);
            self.epoch += 1;
        }
    }

    /// `args` converted for an application that a built object will remember: shared with
    /// the last conversion of the same object if nothing changed since, and counted against
    /// `MAX_KEPT` otherwise (as the runtime counts what its records keep).
    pub fn snapshot(&mut self, args: Id) -> Result<Rc<Value>, KeptTooMany> {
        if self.snapshots_epoch != self.epoch {
            self.snapshots.clear();
            self.snapshots_epoch = self.epoch;
        }
        if let Some(value) = self.snapshots.get(&args) {
            return Ok(value.clone());
        }
        let value = Rc::new(self.to_value(args));
        self.keep(&value)?;
        self.snapshots.insert(args, value.clone());
        Ok(value)
    }

    /// Counts `value` as remembered.
    pub fn keep(&mut self, value: &Value) -> Result<(), KeptTooMany> {
        self.kept += bounds::size(value);
        if self.kept > MAX_KEPT {
            return Err(KeptTooMany);
        }
        Ok(())
    }

    /// APPEND/APPENDS onto `list`; items given to anything else (an object's `append` or
    /// `extend`) are not part of what the checks read.
    pub fn append(&mut self, list: Id, items: &[Id]) {
        if let Node::List(existing) = &mut self.nodes[list as usize] {
            existing.extend_from_slice(items);
            self.epoch += 1;
        }
    }

    /// SETITEM/SETITEMS onto `dict`: a key stored again keeps its place and takes the new
    /// value, found as Python finds it ([`Keys`]). Pairs given to anything else (an object's
    /// `__setitem__`) are not read by checks.
    pub fn set_items(&mut self, dict: Id, pairs: &[Id]) {
        if pairs.is_empty() {
            return;
        }
        if matches!(self.get(dict), Node::List(_)) {
            self.set_list_items(dict, pairs);
            return;
        }
        if !matches!(self.get(dict), Node::Dict(_)) {
            return;
        }
        self.epoch += 1;
        let mut keys = std::mem::take(&mut self.keys);
        for pair in pairs.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            let Node::Dict(existing) = &self.nodes[dict as usize] else {
                break;
            };
            let position = keys.place(self, dict, existing, key);
            let Node::Dict(existing) = &mut self.nodes[dict as usize] else {
                break;
            };
            match position {
                Some(at) => existing[at].1 = value,
                None => existing.push((key, value)),
            }
        }
        self.keys = keys;
    }

    /// SETITEM/SETITEMS onto a list: `list[i] = value` with an int index replaces an item, as
    /// Python does (an index out of range raises there, and changes nothing here); any other key
    /// (a `slice` from `builtins.slice` resizes the list) leaves contents the scanner does not
    /// work out, so the list becomes an object no check accepts as data (s17: an object array's
    /// item list emptied by `L[0:1000] = []` scanned clean).
    fn set_list_items(&mut self, list: Id, pairs: &[Id]) {
        self.epoch += 1;
        for pair in pairs.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            let index = match self.get(key) {
                Node::Int(i) => Some(*i),
                Node::Bool(b) => Some(i64::from(*b)),
                _ => None,
            };
            let Node::List(items) = &mut self.nodes[list as usize] else {
                return;
            };
            match index {
                Some(i) => {
                    let len = items.len() as i64;
                    let at = if i < 0 { i + len } else { i };
                    if (0..len).contains(&at) {
                        items[at as usize] = value;
                    }
                }
                None => {
                    self.nodes[list as usize] = Node::Opaque("list");
                    return;
                }
            }
        }
    }

    /// `id` as the checks see it, with the runtime's bounds.
    pub fn to_value(&self, id: Id) -> Value {
        let mut nodes = MAX_NODES;
        self.convert(id, MAX_DEPTH, &mut nodes)
    }

    fn convert(&self, id: Id, depth: usize, nodes: &mut usize) -> Value {
        if *nodes == 0 || depth == 0 {
            return Value::Opaque(ELIDED.into());
        }
        *nodes -= 1;
        match self.get(id) {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(n) => Value::Int(*n),
            Node::BigInt => Value::BigInt,
            Node::Float(f) => Value::Float(*f),
            Node::Str(text) => string(text),
            Node::Bytes(bytes) => Value::Bytes(bytes.len()),
            Node::BytesOf(len) => Value::Bytes(*len),
            Node::Tuple(items) => Value::Tuple(self.items(items, depth, nodes)),
            Node::List(items) => Value::List(self.items(items, depth, nodes)),
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len().min(*nodes));
                for &(key, value) in pairs {
                    let key = self.convert(key, depth - 1, nodes);
                    let value = self.convert(value, depth - 1, nodes);
                    out.push((key, value));
                }
                Value::Dict(out)
            }
            Node::Global(resolved) => Value::Global(resolved.global.clone()),
            Node::Built {
                by,
                apply,
                args,
                state,
            } => Value::Built {
                by: by.global.clone(),
                apply: *apply,
                args: Box::new(copy_within(args, depth - 1, nodes)),
                state: state.map(|state| Box::new(self.convert(state, depth - 1, nodes))),
            },
            Node::Opaque(kind) => Value::Opaque((*kind).into()),
        }
    }

    fn items(&self, items: &[Id], depth: usize, nodes: &mut usize) -> Vec<Value> {
        items
            .iter()
            .map(|&item| self.convert(item, depth - 1, nodes))
            .collect()
    }
}

/// A `str` as the runtime converts one: by length when it is long.
fn string(text: &Text<'_>) -> Value {
    let chars = text.chars();
    if chars > MAX_STR || text.utf8_len() > MAX_STR {
        return Value::LongStr(chars);
    }
    Value::Str(text.text().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_stored_again_keeps_its_place() {
        let mut graph = Graph::new(100);
        let dict = graph.add(Node::Dict(Vec::new())).unwrap();
        let a = graph.add(Node::Str(Text::Utf8(b"a"))).unwrap();
        let one = graph.add(Node::Int(1)).unwrap();
        let b = graph.add(Node::Str(Text::Latin1(b"b"))).unwrap();
        let two = graph.add(Node::Int(2)).unwrap();
        let a_again = graph.add(Node::Str(Text::Owned("a".into()))).unwrap();
        let three = graph.add(Node::Float(3.0)).unwrap();
        graph.set_items(dict, &[a, one, b, two, a_again, three]);
        assert_eq!(
            graph.to_value(dict),
            Value::Dict(vec![
                (Value::Str("a".into()), Value::Float(3.0)),
                (Value::Str("b".into()), Value::Int(2)),
            ])
        );
        let true_key = graph.add(Node::Bool(true)).unwrap();
        let numbers = graph.add(Node::Dict(Vec::new())).unwrap();
        graph.set_items(numbers, &[one, a, true_key, b]);
        assert_eq!(
            graph.to_value(numbers),
            Value::Dict(vec![(Value::Int(1), Value::Str("b".into()))])
        );
    }

    #[test]
    fn conversion_stops_at_the_runtime_bounds() {
        let mut graph = Graph::new(10_000);
        let mut inner = graph.add(Node::None).unwrap();
        for _ in 0..MAX_DEPTH + 5 {
            inner = graph.add(Node::Tuple(vec![inner].into())).unwrap();
        }
        let mut value = graph.to_value(inner);
        let mut depth = 0;
        while let Value::Tuple(items) = value {
            value = items.into_iter().next().unwrap();
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(value, Value::Opaque(ELIDED.into()));

        let long = vec![b'x'; MAX_STR + 1];
        let long: &'static [u8] = Box::leak(long.into_boxed_slice());
        let id = graph.add(Node::Str(Text::Latin1(long))).unwrap();
        assert_eq!(graph.to_value(id), Value::LongStr(MAX_STR + 1));
        let wide: &'static [u8] = Box::leak(vec![0xe9u8; MAX_STR / 2 + 1].into_boxed_slice());
        let id = graph.add(Node::Str(Text::Latin1(wide))).unwrap();
        assert_eq!(graph.to_value(id), Value::LongStr(MAX_STR / 2 + 1));
    }

    /// s17: SETITEM onto a list replaces an item by index; any other key makes the list
    /// unknown (an object, not data). Fails if SETITEM onto a list is ignored again.
    #[test]
    fn setitem_onto_a_list() {
        let mut graph = Graph::new(100);
        let zero = graph.add(Node::Int(0)).unwrap();
        let minus_one = graph.add(Node::Int(-1)).unwrap();
        let nine = graph.add(Node::Int(9)).unwrap();
        let list = graph.add(Node::List(vec![zero, zero])).unwrap();
        graph.set_items(list, &[minus_one, nine, nine, nine]);
        assert_eq!(
            graph.to_value(list),
            Value::List(vec![Value::Int(0), Value::Int(9)])
        );
        let slice = graph.add(Node::Opaque("object")).unwrap();
        graph.set_items(list, &[slice, list]);
        assert_eq!(graph.to_value(list), Value::Opaque("list".into()));
    }

    #[test]
    fn a_full_arena_says_so() {
        let mut graph = Graph::new(1);
        graph.add(Node::None).unwrap();
        assert!(graph.add(Node::None).is_err());
    }
}
