//! End-to-end tests: real interpreters and real programs under the real preload.
//!
//! They need `target/release/libpickleguard.so` and `libpickleguard_core.so` (`make build`),
//! or `PICKLEGUARD_SHIM` pointing at a shim with its core beside it. Every CPython 3.8-3.13
//! that pyenv has installed is tested, plus Debian's `/usr/bin/python3.11` (static libpython) and
//! Debian sid's CPython 3.14 in a chroot (`make python314`); a missing one prints a SKIP line.
//!
//! Adversarial cases carry IDs (AT-nn in `tests/py/corpus.py`, HP-n here): each says why it
//! passes and what would make it fail.

mod api;
mod attacks;
mod benign;
mod cli;
mod config;
mod examples;
mod host_processes;
mod ipc;
mod learning;
mod logging;
mod minimal_image;
mod ml_examples;
mod ml_stack;
mod reconstruction;
mod robustness;
mod scan;
mod support;
mod wheel;
