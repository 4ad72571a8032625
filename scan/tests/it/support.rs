//! Shared fixtures: a temporary directory that removes itself, and the Python to use.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "pickleguard-scan-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pyenv CPython 3.11 the project tests with, else `python3` on PATH, else `None` after a
/// visible SKIP line.
pub fn python(test: &str) -> Option<PathBuf> {
    let pinned = PathBuf::from("/root/.pyenv/versions/3.11.7/bin/python");
    if pinned.exists() {
        return Some(pinned);
    }
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Some(PathBuf::from("python3"));
    }
    println!("SKIP: {test}: no python3 found");
    None
}
