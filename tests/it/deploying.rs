//! The README's "Deploying" claims, run: `/etc/ld.so.preload` protects children started with a
//! scrubbed environment, and `LD_PRELOAD` does not (issue 11: "children with a scrubbed
//! environment are unprotected, and the README does not say so").

use std::ffi::OsStr;

use crate::support::{self, interpreters, run_full, shim, PrivateEtc};

/// The parent starts a child Python with an empty environment; the child says whether it is
/// protected.
const PARENT: &str = r#"
import subprocess, sys
child = "try:\n import pickleguard; print(pickleguard.is_active())\nexcept ImportError:\n print(None)"
print(subprocess.run([sys.executable, "-c", child], env={}, capture_output=True, text=True).stdout.strip())
"#;

/// DP-1: with the shim in `/etc/ld.so.preload` (a private mount namespace's overlay `/etc`),
/// the scrubbed child is protected. DP-2 (the control): with `LD_PRELOAD` alone, the scrubbed
/// child is not, which is why the README tells platform teams to use `/etc/ld.so.preload`.
#[test]
fn ld_so_preload_covers_children_with_a_scrubbed_environment() {
    if !support::root_or_skip("DP-1 (mount namespaces)") {
        return;
    }
    let python = &interpreters()[0].path;
    let etc = PrivateEtc::new("deploying-etc");
    etc.write(
        "ld.so.preload",
        &format!("{}\n", shim().display()),
        0,
        0o644,
    );
    let argv = [python.as_os_str(), OsStr::new("-c"), OsStr::new(PARENT)];
    let (status, stdout, stderr) = run_full(&mut etc.command(&argv));
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "True\n"),
        "DP-1: {stderr}"
    );

    let mut command = support::preloaded(python);
    command.args(["-c", PARENT]);
    let (status, stdout, stderr) = run_full(&mut command);
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "None\n"),
        "DP-2: {stderr}"
    );
}
