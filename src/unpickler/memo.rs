//! The memo: objects a pickle stored by index (PUT, BINPUT, LONG_BINPUT, MEMOIZE) to fetch
//! again (GET, BINGET, LONG_BINGET). Indices are dense in every pickle CPython writes, so they
//! index a vector; a hostile far-away index goes to a small map instead of growing the vector.

use pyo3::prelude::*;
use rustc_hash::FxHashMap;

/// Indices below this (or below twice the vector) are stored densely.
const DENSE_LIMIT: usize = 1 << 20;

/// One unpickler's memo.
#[derive(Default)]
pub struct Memo {
    dense: Vec<Option<Py<PyAny>>>,
    sparse: FxHashMap<usize, Py<PyAny>>,
    len: usize,
}

impl Memo {
    /// How many indices hold an object (MEMOIZE stores at this index).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The object at `index`.
    #[inline(always)]
    pub fn get<'py>(&self, py: Python<'py>, index: usize) -> Option<Bound<'py, PyAny>> {
        match self.dense.get(index) {
            Some(slot) => slot.as_ref().map(|object| object.bind(py).clone()),
            None if self.sparse.is_empty() => None,
            None => self
                .sparse
                .get(&index)
                .map(|object| object.bind(py).clone()),
        }
    }

    /// Stores `object` at `index`.
    #[inline(always)]
    pub fn put(&mut self, index: usize, object: Py<PyAny>) {
        if index < self.dense.len() {
            if self.dense[index].replace(object).is_none() {
                self.len += 1;
            }
            return;
        }
        self.put_slow(index, object);
    }

    #[inline(never)]
    fn put_slow(&mut self, index: usize, object: Py<PyAny>) {
        if index < DENSE_LIMIT.max(self.dense.len() * 2) {
            let new_len = (index + 1).max(self.dense.len() * 2).max(32);
            self.dense.resize_with(new_len, || None);
            self.dense[index] = Some(object);
            self.len += 1;
        } else if self.sparse.insert(index, object).is_none() {
            self.len += 1;
        }
    }

    /// Forgets every object.
    pub fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.len = 0;
    }

    /// Every `(index, object)`, dense indices in order.
    pub fn entries(&self) -> impl Iterator<Item = (usize, &Py<PyAny>)> {
        self.dense
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|object| (index, object)))
            .chain(self.sparse.iter().map(|(&index, object)| (index, object)))
    }
}
