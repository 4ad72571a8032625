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

/// The result of applying `global` to `args`, if it is an exact built-in object; `None` when
/// the runtime sees it as a built object.
pub(super) fn exact_result<'a>(graph: &Graph<'a>, global: &Global, args: Id) -> Option<Node<'a>> {
    let Node::Tuple(items) = graph.get(args) else {
        return None;
    };
    match reconstruct::imported_name(global) {
        ("_codecs", "encode") => Some(encoded(graph, items)),
        ("builtins", "bytes" | "bytearray") => Some(match &items[..] {
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
    let (Some(text), Some(codec)) = (items.first(), items.get(1)) else {
        return unknown;
    };
    let (Node::Str(text), Node::Str(codec)) = (graph.get(*text), graph.get(*codec)) else {
        return unknown;
    };
    let text = text.text();
    let len = match reconstruct::codec_named(&codec.text()) {
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
