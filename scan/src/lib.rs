//! Static scanner (work in progress).
