//! Where the preload shim is: next to this binary (a build tree), in the installed layout
//! (`PREFIX/bin/pickleguard` and `PREFIX/lib/pickleguard/`), or at a system location.

use std::path::{Path, PathBuf};

use crate::Error;

/// The shim's file name.
pub const SHIM_FILE: &str = "libpickleguard.so";
/// The core's file name; it must lie next to the shim.
pub const CORE_FILE: &str = "libpickleguard_core.so";

/// `PICKLEGUARD_SHIM`, else the first candidate that exists with its core beside it.
pub fn shim() -> Result<PathBuf, Error> {
    if let Some(explicit) = std::env::var_os("PICKLEGUARD_SHIM") {
        return Ok(PathBuf::from(explicit));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let mut candidates = Vec::new();
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(SHIM_FILE));
        candidates.push(dir.join("../lib/pickleguard").join(SHIM_FILE));
    }
    for prefix in ["/usr/lib/pickleguard", "/usr/local/lib/pickleguard"] {
        candidates.push(Path::new(prefix).join(SHIM_FILE));
    }
    let found = candidates
        .iter()
        .find(|path| path.is_file() && path.with_file_name(CORE_FILE).is_file())
        .map(|path| path.canonicalize().unwrap_or_else(|_| path.clone()));
    found.ok_or(Error::ShimNotFound(candidates))
}
