//! Integration tests for the scanner, as one binary.
//!
//! * `fixtures`: real files written by CPython (stdlib only) mimicking every supported format;
//!   the expected globals come from a recording unpickler, so they are what CPython's
//!   `pickle.find_class` audit event would report. Prints a SKIP line without Python.
//! * `files`: `scan_file` on the file system (mapped files, empty files, directories).
//! * `regressions`: replays every input under `tests/regressions/` (fuzzer finds).
//! * `perf`: ignored throughput checks, ~200 MB of bytes objects and 8M small opcodes.
//! * `smoke_fuzz`: an ignored, time-boxed stable-Rust fuzzer over the `fuzz/seeds` corpus.

mod files;
mod fixtures;
mod perf;
mod regressions;
mod smoke_fuzz;
mod support;
