//! End-to-end tests: real interpreters and real programs under the real preload.
//!
//! They need `target/release/libpickleguard.so` and `libpickleguard_core.so` (`make build`),
//! or `PICKLEGUARD_SHIM` pointing at a shim with its core beside it. Every CPython 3.8-3.13
//! that pyenv has installed is tested, plus Debian's `/usr/bin/python3.11` (static libpython) and
//! Debian sid's CPython 3.14 in a chroot (`make python314`); a missing one prints a SKIP line.
//!
//! Adversarial cases carry IDs (AT-nn in `tests/py/corpus.py`, HP-n here): each says why it
//! passes and what would make it fail. Issue 11's cases: MI-n (`minimal_image`), SX-n
//! (`secure_execution`), IN-n (`installs`), BC-n (`bounded_config`), DP-n (`deploying`), LT-n
//! (`lifetimes`).

mod api;
mod attacks;
mod benign;
mod bounded_config;
mod cli;
mod code_archives;
mod config;
mod deploying;
mod examples;
mod hard_deny;
mod host_processes;
mod install;
mod installs;
mod ipc;
mod ipc_identity;
mod learning;
mod lifetimes;
mod logging;
mod minimal_image;
mod ml_examples;
mod ml_stack;
mod reconstruction;
mod robustness;
mod scan;
mod secure_execution;
mod support;
mod unpickler;
mod wheel;
