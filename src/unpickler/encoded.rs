//! Cost amplification through the memo.
//!
//! `_codecs.encode` with a cheap codec costs time linear in its input, but a pickle can apply it
//! to one memoized `str` again and again for six bytes each: a 1 MB file then costs minutes.
//! Genuine pickles encode a given `str` once (protocols 0-2 write `bytes` as
//! `_codecs.encode(text, "latin1")` and memoize the *result*), so a long `str` encoded a second
//! time in one load is refused. Short ones (up to [`LONG`] characters) are not tracked: repeating
//! them costs at most a few thousand times the six bytes of the repeat.

use pickleguard_policy::reconstruct::{self, Violation};
use pickleguard_policy::Global;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustc_hash::FxHashSet;

/// Characters above which a `str` may be encoded only once per load.
pub use pickleguard_policy::reconstruct::bounds::LONG_ENCODED as LONG;

/// The long `str`s one load has encoded, kept alive so their addresses are not reused.
#[derive(Default)]
pub struct Encoded {
    seen: FxHashSet<usize>,
    keep: Vec<Py<PyAny>>,
}

impl Encoded {
    /// Records that `global` is applied to `args`; refuses a second encoding of one long `str`.
    pub fn check(&mut self, global: &Global, args: &Bound<'_, PyAny>) -> Result<(), Violation> {
        if global.module != "_codecs" || global.name != "encode" {
            return Ok(());
        }
        let Ok(text) = args.get_item(0) else {
            return Ok(());
        };
        let Ok(string) = text.cast::<PyString>() else {
            return Ok(());
        };
        let chars = string.len().unwrap_or(0);
        if chars <= LONG {
            return Ok(());
        }
        if self.seen.insert(text.as_ptr() as usize) {
            self.keep.push(text.unbind());
            return Ok(());
        }
        Err(reconstruct::encoded_again(chars))
    }
}
