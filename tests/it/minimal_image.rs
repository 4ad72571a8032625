//! Issue 11, item 1: the shim needs libc alone, so a minimal image without `libgcc_s` (a
//! distroless or scratch-based one) keeps working with the preload set for every process.
//!
//! The image is a chroot the test builds: the dynamic loader, libc, `sh`, a few coreutils and
//! Debian's `/usr/bin/python3.11` with its standard library, each with only the libraries `ldd`
//! lists. None of them needs `libgcc_s`, so there is none. The core does need it, so Python
//! there can not be protected: it must say so in one line and otherwise run unchanged.

use std::path::Path;

use crate::support::{self, needed_libraries, run_full, shim, Chroot};

/// Where the image holds the two libraries, as `make install` lays them out.
const SHIM_INSIDE: &str = "/usr/lib/pickleguard/libpickleguard.so";
const CORE_INSIDE: &str = "/usr/lib/pickleguard/libpickleguard_core.so";
const PYTHON: &str = "/usr/bin/python3.11";

/// MI-1: `readelf -d` of the shim lists libc and nothing else. Fails if the shim links std's
/// unwinder again (`libgcc_s.so.1`) or any other library.
#[test]
fn shim_needs_only_libc() {
    let needed = needed_libraries(&shim());
    let unexpected: Vec<&String> = needed
        .iter()
        .filter(|lib| !lib.starts_with("libc.so") && !lib.starts_with("ld-linux"))
        .collect();
    assert!(
        unexpected.is_empty() && needed.iter().any(|lib| lib.starts_with("libc.so")),
        "the shim must need libc alone, it needs {needed:?}"
    );
}

/// Builds the image, or `None` (with a SKIP line) where it cannot be built.
fn image() -> Option<Chroot> {
    if !support::root_or_skip("the minimal-image tests (chroot)") {
        return None;
    }
    if !Path::new(PYTHON).is_file() {
        support::skip(&format!(
            "the minimal-image tests: Debian's {PYTHON} is not installed"
        ));
        return None;
    }
    let image = Chroot::new("minimal-image");
    let programs = [
        "/usr/bin/env",
        "/bin/sh",
        "/bin/true",
        "/bin/ls",
        "/bin/cat",
        PYTHON,
    ];
    for program in programs {
        image.add_program(Path::new(program));
    }
    image.copy_tree(
        Path::new("/usr/lib/python3.11"),
        &[
            "test",
            "idlelib",
            "tkinter",
            "turtledemo",
            "lib2to3",
            "ensurepip",
            "pydoc_data",
            "site-packages",
            "dist-packages",
            "__pycache__",
        ],
    );
    let shim = shim();
    image.copy_file(&shim, Path::new(SHIM_INSIDE));
    image.copy_file(
        &shim.with_file_name("libpickleguard_core.so"),
        Path::new(CORE_INSIDE),
    );
    let gcc_s = image.find("libgcc_s");
    assert!(
        gcc_s.is_empty(),
        "the image must not contain libgcc_s: {gcc_s:?}"
    );
    Some(image)
}

/// MI-2: in an image without `libgcc_s`, `sh`, coreutils and a non-Python pipeline run under
/// the preload exactly as without it: same output, same status, nothing on stderr. Fails with
/// status 127 ("libgcc_s.so.1: cannot open shared object file") if the shim needs it again.
/// MI-3: the control: a preloaded library that needs `libgcc_s` (the core) makes the same
/// commands fail with 127 in this image, which is what the old shim did.
/// MI-4: Python runs its program unchanged and prints exactly one line, saying it is not
/// protected because the core cannot be loaded. Fails if Python dies, prints nothing (a silent
/// lapse) or prints more.
#[test]
fn a_minimal_image_without_libgcc_s_runs_unchanged() {
    let Some(image) = image() else {
        return;
    };
    let preload = [("LD_PRELOAD", SHIM_INSIDE)];
    let programs: &[&[&str]] = &[
        &["/bin/true"],
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
        &["/bin/sh", "-c", "ls / | cat; echo done"],
        &["/bin/ls", "/usr/lib/pickleguard"],
        &["/bin/cat", "/usr/lib/python3.11/LICENSE.txt"],
    ];
    for argv in programs {
        let plain = run_full(&mut image.command(argv, &[]));
        let guarded = run_full(&mut image.command(argv, &preload));
        assert_eq!(guarded, plain, "MI-2 {argv:?} differs under the preload");
        assert_ne!(plain.0, Some(127), "MI-2 {argv:?} cannot run in the image");

        // MI-3: the control.
        let (status, _, stderr) =
            run_full(&mut image.command(argv, &[("LD_PRELOAD", CORE_INSIDE)]));
        assert_eq!(status, Some(127), "MI-3 control {argv:?}: {stderr}");
        assert!(stderr.contains("libgcc_s.so.1"), "MI-3 control: {stderr}");
    }
    assert!(
        needed_libraries(&image.host_path(Path::new(CORE_INSIDE)))
            .iter()
            .any(|lib| lib.starts_with("libgcc_s")),
        "MI-3 control: the core was expected to need libgcc_s"
    );

    let script = "import pickle; print(pickle.loads(pickle.dumps([1, 'two'])))";
    let plain = run_full(&mut image.command(&[PYTHON, "-c", script], &[]));
    assert_eq!(plain, (Some(0), "[1, 'two']\n".into(), String::new()));
    let (status, stdout, stderr) = run_full(&mut image.command(&[PYTHON, "-c", script], &preload));
    assert_eq!(
        (status, stdout.as_str()),
        (Some(0), "[1, 'two']\n"),
        "MI-4: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "MI-4: exactly one line expected: {stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "pickleguard: cannot load the core library `{CORE_INSIDE}`: libgcc_s.so.1"
        )) && lines[0].ends_with("this process is NOT protected against unsafe pickles"),
        "MI-4: {stderr}"
    );
}
