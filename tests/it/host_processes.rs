//! Non-Python processes under the preload behave exactly as without it.

use std::path::Path;
use std::process::Command;

use crate::support::{self, run, shim, text};

/// HP-7: the shim must not reference a Python symbol, or every non-Python process that
/// inherits the preload fails to start.
#[test]
fn shim_references_no_python_symbol() {
    let output = Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(shim())
        .output()
        .expect("nm (binutils) is needed");
    assert!(output.status.success());
    let symbols = text(&output.stdout);
    assert!(
        symbols.contains("dlsym"),
        "nm output looks wrong: {symbols}"
    );
    let python: Vec<&str> = symbols
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .last()
                .is_some_and(|s| s.starts_with("Py") || s.starts_with("_Py"))
        })
        .collect();
    assert!(
        python.is_empty(),
        "the shim references Python symbols: {python:?}"
    );
}

/// HP-8: byte-identical stdout, stderr and exit status for shells, coreutils and toolchains.
#[test]
fn non_python_programs_are_byte_identical() {
    let programs: &[&[&str]] = &[
        &["/bin/true"],
        &["/bin/false"],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        &["bash", "-c", "echo ok"],
        &[
            "bash",
            "-c",
            "for i in 1 2 3; do echo $i; done; ls /definitely-missing; exit 7",
        ],
        &["ls", "-la", "/usr/bin"],
        &["cat", "/etc/os-release"],
        &["sort", "/etc/os-release"],
        &["git", "--version"],
        &["cc", "--version"],
        &[
            "node",
            "-e",
            "console.log(process.argv.length); console.error('e')",
        ],
        &["java", "-version"],
    ];
    for argv in programs {
        let program = argv[0];
        if !program.starts_with('/') && !on_path(program) {
            eprintln!("SKIP: {program} is not installed");
            continue;
        }
        let timeout = std::time::Duration::from_secs(60);
        let plain = run(support::command(program).args(&argv[1..]), timeout);
        let guarded = run(support::preloaded(program).args(&argv[1..]), timeout);
        assert_eq!(guarded.status.code(), plain.status.code(), "{argv:?}");
        assert_eq!(text(&guarded.stdout), text(&plain.stdout), "{argv:?}");
        assert_eq!(text(&guarded.stderr), text(&plain.stderr), "{argv:?}");
    }
}

/// HP-9: the promise from the README, verbatim.
#[test]
fn bash_echo_prints_exactly_ok() {
    let output = run(
        support::preloaded("bash").args(["-c", "echo ok"]),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(output.stdout, b"ok\n");
    assert_eq!(output.stderr, b"");
    assert!(output.status.success());
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file())
    })
}
