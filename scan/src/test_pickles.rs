//! Pieces of hand-assembled pickles, for the unit tests.

/// SHORT_BINUNICODE of `text`.
pub(crate) fn su(text: &str) -> Vec<u8> {
    let mut out = vec![0x8c, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

/// The parts, one after another.
pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
