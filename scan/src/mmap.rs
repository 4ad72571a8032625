//! The crate's one unsafe call: mapping a file read-only.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only for the length it has now.
pub(crate) fn map(file: &File) -> io::Result<Mmap> {
    // SAFETY:
    // - The map is read-only and private to this process; the scanner never writes through it.
    // - memmap2 cannot rule out another process truncating or rewriting the file while it is
    //   mapped, which would change bytes under a `&[u8]` (or raise SIGBUS on truncation). The
    //   scanner reads files an operator points it at and takes that standard risk of mapping,
    //   as ripgrep does; callers that cannot should use `Scanner::scan_bytes`.
    unsafe { Mmap::map(file) }
}
