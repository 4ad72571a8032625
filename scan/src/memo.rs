//! The pickle memo. Picklers number memo entries densely (MEMOIZE uses the entry count, and
//! BINPUT/LONG_BINPUT count up from 0), so keys live in a vector; a key far past the end goes to
//! a map, so a single huge LONG_BINPUT index cannot make the vector huge.

use std::collections::HashMap;

#[cfg(test)]
use crate::value::Value;

/// How far past the vector's end a key may land and still grow it.
const SLACK: u64 = 1024;

/// A memo of `V`s: the scanner's summaries, or its rebuilt values' ids when it checks
/// reconstruction rules.
#[derive(Debug)]
pub(crate) struct Memo<V> {
    dense: Vec<Option<V>>,
    sparse: HashMap<u64, V>,
    len: usize,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            dense: Vec::new(),
            sparse: HashMap::new(),
            len: 0,
        }
    }
}

impl<V: Copy> Memo<V> {
    /// Distinct keys stored: the index MEMOIZE writes next.
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn get(&self, key: u64) -> Option<V> {
        if let Some(Some(value)) = usize::try_from(key).ok().and_then(|i| self.dense.get(i)) {
            return Some(*value);
        }
        self.sparse_get(key)
    }

    #[cold]
    fn sparse_get(&self, key: u64) -> Option<V> {
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(&key).copied()
    }

    /// Stores `value` at `key`. Fails, storing nothing, when a new key would pass `limit`.
    #[inline(always)]
    pub fn insert(&mut self, key: u64, value: V, limit: usize) -> Result<(), ()> {
        // What picklers write: the next key, one past the vector's end.
        if key == self.dense.len() as u64 && self.sparse.is_empty() && self.len < limit {
            self.dense.push(Some(value));
            self.len += 1;
            return Ok(());
        }
        self.insert_any(key, value, limit)
    }

    fn insert_any(&mut self, key: u64, value: V, limit: usize) -> Result<(), ()> {
        let present = self.get(key).is_some();
        if !present && self.len >= limit {
            return Err(());
        }
        // The vector may grow to twice the entries plus the slack, never further.
        let dense_reach = (self.dense.len() as u64)
            .max(self.len as u64 * 2)
            .saturating_add(SLACK);
        match usize::try_from(key) {
            Ok(index) if (key as u128) < dense_reach as u128 => {
                if index >= self.dense.len() {
                    self.dense.resize(index + 1, None);
                }
                if present && self.dense[index].is_none() {
                    // It was stored in the map before the vector reached it.
                    self.sparse.remove(&key);
                }
                self.dense[index] = Some(value);
            }
            _ => {
                self.sparse.insert(key, value);
            }
        }
        if !present {
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_sparse_and_overwrites() {
        let mut memo = Memo::default();
        memo.insert(0, Value::Int(0), 10).unwrap();
        memo.insert(1, Value::Int(1), 10).unwrap();
        memo.insert(1, Value::Int(11), 10).unwrap();
        assert_eq!(memo.len(), 2);
        memo.insert(u64::MAX, Value::Int(9), 10).unwrap();
        memo.insert(5000, Value::Int(5), 10).unwrap();
        assert_eq!(memo.len(), 4);
        assert!(matches!(memo.get(1), Some(Value::Int(11))));
        assert!(matches!(memo.get(u64::MAX), Some(Value::Int(9))));
        assert!(matches!(memo.get(5000), Some(Value::Int(5))));
        assert!(memo.get(2).is_none());
        assert!(
            memo.dense.len() < 2000,
            "a far key must not grow the vector"
        );
    }

    #[test]
    fn a_sparse_key_moves_when_the_vector_reaches_it() {
        let mut memo = Memo::default();
        memo.insert(3000, Value::Int(1), 10_000).unwrap();
        for key in 0..3001 {
            memo.insert(key, Value::Int(2), 10_000).unwrap();
        }
        assert_eq!(memo.len(), 3001);
        assert!(matches!(memo.get(3000), Some(Value::Int(2))));
        assert!(memo.sparse.is_empty());
    }

    #[test]
    fn the_limit_counts_distinct_keys() {
        let mut memo = Memo::default();
        memo.insert(0, Value::None, 1).unwrap();
        memo.insert(0, Value::None, 1).unwrap();
        assert!(memo.insert(1, Value::None, 1).is_err());
        assert!(memo.insert(1 << 40, Value::None, 1).is_err());
    }
}
