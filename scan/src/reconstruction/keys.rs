//! Dict keys as Python compares them, so a key stored again replaces its value in place.
//!
//! Python finds a dict key by hash, then by identity or equality: numbers by value (`True == 1
//! == 1.0`), strings and bytes by content, tuples item by item. Here each key's hash is worked
//! out once per object (a `str` caches its hash in CPython too), every dict is indexed by hash,
//! and content is compared only when two hashes match: one SETITEM costs what it costs
//! CPython, whatever the dict's size (s2: a key stored twice past 64 entries hid a forged
//! value; s7: comparing every key in full made a scan take minutes). Strings are compared by
//! their encoded bytes where both sides have the same encoding, so two different invalid UTF-8
//! payloads (CPython reads them with `surrogatepass`) stay different keys (s4). Tuples nested
//! deeper than [`MAX_KEY_DEPTH`] are compared by identity, so no key recurses without bound
//! (s8).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use rustc_hash::FxHashMap;

use super::graph::{Graph, Id, Node, Text};

/// Tuple keys nested deeper than this are compared by identity.
pub(crate) const MAX_KEY_DEPTH: usize = 16;

/// Each dict's keys by hash (positions in its pair list), and each key object's hash. Key
/// contents are hashed with SipHash under a random key, as CPython hashes `str`, so no file can
/// choose colliding keys; the maps over those hashes and over object ids use FxHash.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    by_dict: FxHashMap<Id, FxHashMap<u64, Vec<u32>>>,
    hashes: FxHashMap<Id, u64>,
    random: RandomState,
}

impl Keys {
    /// Where `key` already sits in `dict`, whose pairs are `pairs`; records it at `at` when
    /// it does not.
    pub fn place(
        &mut self,
        graph: &Graph<'_>,
        dict: Id,
        pairs: &[(Id, Id)],
        key: Id,
    ) -> Option<usize> {
        let hash = self.hash(graph, key);
        let slots = self
            .by_dict
            .entry(dict)
            .or_default()
            .entry(hash)
            .or_default();
        for &at in slots.iter() {
            let existing = pairs[at as usize].0;
            if existing == key || same(graph, existing, key, 0) {
                return Some(at as usize);
            }
        }
        slots.push(pairs.len() as u32);
        None
    }

    fn hash(&mut self, graph: &Graph<'_>, key: Id) -> u64 {
        if let Some(&hash) = self.hashes.get(&key) {
            return hash;
        }
        let mut hasher = self.random.build_hasher();
        feed(graph, key, 0, &mut hasher);
        let hash = hasher.finish();
        self.hashes.insert(key, hash);
        hash
    }
}

/// A number as Python hashes it: an integral value as its integer, so `1`, `1.0` and `True`
/// hash alike.
fn number(node: &Node<'_>) -> Option<Result<i64, u64>> {
    match node {
        Node::Bool(b) => Some(Ok(i64::from(*b))),
        Node::Int(n) => Some(Ok(*n)),
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(Ok(*f as i64)),
        Node::Float(f) => Some(Err(f.to_bits())),
        _ => None,
    }
}

fn feed(graph: &Graph<'_>, key: Id, depth: usize, hasher: &mut impl Hasher) {
    let node = graph.get(key);
    if let Some(n) = number(node) {
        0u8.hash(hasher);
        n.hash(hasher);
        return;
    }
    match node {
        Node::None => 1u8.hash(hasher),
        Node::Str(text) => {
            2u8.hash(hasher);
            feed_text(text, hasher);
        }
        Node::Bytes(bytes) => {
            3u8.hash(hasher);
            bytes.hash(hasher);
        }
        Node::Tuple(items) if depth < MAX_KEY_DEPTH => {
            4u8.hash(hasher);
            items.len().hash(hasher);
            for &item in items.iter() {
                feed(graph, item, depth + 1, hasher);
            }
        }
        Node::Global(resolved) => {
            5u8.hash(hasher);
            resolved.global.module.hash(hasher);
            resolved.global.name.hash(hasher);
        }
        // Compared by identity.
        _ => {
            6u8.hash(hasher);
            key.hash(hasher);
        }
    }
}

/// A str's characters as UTF-8 bytes (invalid UTF-8 as it is), whatever its encoding.
fn feed_text(text: &Text<'_>, hasher: &mut impl Hasher) {
    match text {
        Text::Utf8(bytes) => hasher.write(bytes),
        Text::Latin1(bytes) => {
            let mut buf = [0u8; 4];
            for &byte in bytes.iter() {
                hasher.write(char::from(byte).encode_utf8(&mut buf).as_bytes());
            }
        }
        Text::Owned(text) => hasher.write(text.as_bytes()),
    }
    hasher.write_u8(0xff);
}

fn same(graph: &Graph<'_>, a: Id, b: Id, depth: usize) -> bool {
    if a == b {
        return true;
    }
    let (x, y) = (graph.get(a), graph.get(b));
    if let (Some(p), Some(q)) = (number(x), number(y)) {
        return p == q;
    }
    match (x, y) {
        (Node::None, Node::None) => true,
        (Node::Str(p), Node::Str(q)) => same_text(p, q),
        (Node::Bytes(p), Node::Bytes(q)) => p == q,
        (Node::Tuple(p), Node::Tuple(q)) if depth < MAX_KEY_DEPTH => {
            p.len() == q.len()
                && p.iter()
                    .zip(q.iter())
                    .all(|(&i, &j)| same(graph, i, j, depth + 1))
        }
        (Node::Global(p), Node::Global(q)) => p.global == q.global,
        _ => false,
    }
}

fn same_text(a: &Text<'_>, b: &Text<'_>) -> bool {
    match (a, b) {
        (Text::Utf8(p), Text::Utf8(q)) | (Text::Latin1(p), Text::Latin1(q)) => p == q,
        (Text::Utf8(p), _) | (_, Text::Utf8(p)) if std::str::from_utf8(p).is_err() => false,
        _ => a.text() == b.text(),
    }
}
