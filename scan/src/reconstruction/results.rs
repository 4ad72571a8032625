//! What applying a ruled global returns, where that is an object of an exact built-in type.
//!
//! The runtime's conversion reads objects of the exact built-in types by value, before it asks
//! where an object came from: the `bytes` that `_codecs.encode` returns is `Value::Bytes`, not a
//! built object. So the scanner gives such results the value they have (a byte count, an empty
//! list that later APPENDs fill), and keeps `Node::Built` for the rest (sets, OrderedDicts,
//! numpy objects, ...), as the runtime does.

use pickleguard_policy::reconstruct::{self, CheapCodec};
use pickleguard_policy::Global;

use super::graph::{Graph, Id, Node};

/// What applying a global makes, where the runtime reads it by value.
pub(super) enum Exact<'a> {
    /// This object.
    Node(Node<'a>),
    /// A mapping read as its items (`reconstruct::read_as_items`): these keys and values, in
    /// order.
    Items(Vec<Id>),
}

/// The result of applying `global` to `args`, if the runtime reads it by value; `None` when
/// it sees a built object.
pub(super) fn exact_result<'a>(graph: &Graph<'a>, global: &Global, args: Id) -> Option<Exact<'a>> {
    let Node::Tuple(items) = graph.get(args) else {
        return None;
    };
    if reconstruct::read_as_items(global) {
        return items_of(graph, items).map(Exact::Items);
    }
    exact_node(graph, global, items).map(Exact::Node)
}

/// `OrderedDict()`, `OrderedDict([(key, value), ...])` or `OrderedDict({...})`: the keys and
/// values it starts with.
fn items_of(graph: &Graph<'_>, args: &[Id]) -> Option<Vec<Id>> {
    match args {
        [] => Some(Vec::new()),
        [items] => match graph.get(*items) {
            Node::Dict(pairs) => Some(pairs.iter().flat_map(|&(k, v)| [k, v]).collect()),
            Node::List(pairs) => pairs_of(graph, pairs),
            Node::Tuple(pairs) => pairs_of(graph, pairs),
            _ => None,
        },
        _ => None,
    }
}

/// A sequence of 2-tuples (or 2-lists) as keys and values.
fn pairs_of(graph: &Graph<'_>, pairs: &[Id]) -> Option<Vec<Id>> {
    let pair = |id: Id| -> Option<[Id; 2]> {
        let kv: &[Id] = match graph.get(id) {
            Node::Tuple(kv) => kv,
            Node::List(kv) => kv,
            _ => return None,
        };
        match kv {
            [k, v] => Some([*k, *v]),
            _ => None,
        }
    };
    let pairs = pairs
        .iter()
        .map(|&id| pair(id))
        .collect::<Option<Vec<_>>>()?;
    Some(pairs.concat())
}

fn exact_node<'a>(graph: &Graph<'a>, global: &Global, items: &[Id]) -> Option<Node<'a>> {
    match reconstruct::imported_name(global) {
        ("_codecs", "encode") => Some(encoded(graph, items)),
        ("builtins", "bytes" | "bytearray") => Some(match items {
            [] => Node::BytesOf(0),
            [data] => match graph.get(*data) {
                Node::Bytes(bytes) => Node::BytesOf(bytes.len()),
                Node::BytesOf(len) => Node::BytesOf(*len),
                Node::List(values) => Node::BytesOf(values.len()),
                Node::Tuple(values) => Node::BytesOf(values.len()),
                _ => Node::Opaque("bytes"),
            },
            _ => encoded(graph, items),
        }),
        ("builtins", "int") if items.is_empty() => Some(Node::Int(0)),
        ("builtins", "list") if items.is_empty() => Some(Node::List(Vec::new())),
        _ => None,
    }
}

/// `str.encode(codec)` of `(text, codec[, errors])`, by length; an object of unknown length
/// where the codec is not one of the cheap ones (which the checks refuse) or the text does not
/// fit it (the load raises).
fn encoded<'a>(graph: &Graph<'a>, items: &[Id]) -> Node<'a> {
    let unknown = Node::Opaque("bytes");
    let Some(Node::Str(text)) = items.first().map(|&text| graph.get(text)) else {
        return unknown;
    };
    // The encoding defaults to utf-8.
    let codec = match items.get(1).map(|&codec| graph.get(codec)) {
        None => "utf-8".into(),
        Some(Node::Str(codec)) => codec.text(),
        Some(_) => return unknown,
    };
    let text = text.text();
    let len = match reconstruct::codec_named(&codec) {
        Some(CheapCodec::Utf8) => Some(text.len()),
        Some(CheapCodec::Latin1) => text
            .chars()
            .all(|c| u32::from(c) <= 0xff)
            .then(|| text.chars().count()),
        Some(CheapCodec::Ascii) => text.is_ascii().then_some(text.len()),
        None => None,
    };
    len.map_or(unknown, Node::BytesOf)
}
