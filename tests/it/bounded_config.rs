//! Issue 11, item 6: configuration input is bounded. Only regular files are read, up to 1 MiB;
//! problems are found in linear time, each line is short, and after 20 one line counts the
//! rest; every Python 2 spelling of a hard-denied global is refused at configuration time.

use std::time::{Duration, Instant};

use crate::support::{self, cli, interpreters, run, text, TempDir};

/// Runs a preloaded Python with `env`, failing if it takes longer than `limit`.
fn python_with(env: &[(&str, &str)], limit: Duration) -> (Option<i32>, String, String) {
    let mut command = support::preloaded(&interpreters()[0].path);
    command
        .envs(env.iter().copied())
        .args(["-c", "print('ran')"]);
    let started = Instant::now();
    let output = run(&mut command, limit + Duration::from_secs(30));
    let elapsed = started.elapsed();
    assert!(elapsed < limit, "took {elapsed:?} with {env:?}");
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// BC-1: `/dev/zero` (endless) and a FIFO (blocks on open) as the config file give one
/// problem line at once. Fails by running out of memory or hanging (the runner's timeout).
#[test]
fn endless_and_blocking_config_files_are_refused_at_once() {
    let dir = TempDir::new("bounded-fifo");
    let fifo = dir.path().join("config.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|status| status.success()), "mkfifo");
    for path in ["/dev/zero", fifo.to_str().unwrap()] {
        let (status, stdout, stderr) =
            python_with(&[("PICKLEGUARD_CONFIG", path)], Duration::from_secs(20));
        assert_eq!(
            (status, stdout.as_str()),
            (Some(0), "ran\n"),
            "BC-1 {path}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "BC-1 {path}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "pickleguard: PICKLEGUARD_CONFIG={path}: cannot read the config file: it is not a regular file"
            )),
            "BC-1 {path}: {stderr}"
        );
    }
}

/// BC-2: 10,000 bad `PICKLEGUARD_ALLOW` entries print 21 short lines, not the value 10,000
/// times (691 MB before). BC-3: a 1 MiB file with an error on every line is reported in
/// well under a second of work, in 21 lines (13 s and 43,702 lines before).
#[test]
fn problems_are_few_short_lines() {
    // Short entries: one environment string may not exceed 128 KiB.
    let value: Vec<String> = (0..10_000).map(|i| format!("b{i}")).collect();
    let (status, stdout, stderr) = python_with(
        &[("PICKLEGUARD_ALLOW", &value.join(","))],
        Duration::from_secs(20),
    );
    assert_eq!((status, stdout.as_str()), (Some(0), "ran\n"), "BC-2");
    assert_eq!(
        stderr.lines().count(),
        21,
        "BC-2: {}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.len() < 21 * 400, "BC-2: {} bytes", stderr.len());
    assert!(
        stderr.ends_with(
            "pickleguard: more problems: 9980 more not shown; fix the ones above first\n"
        ),
        "BC-2: {stderr}"
    );

    let dir = TempDir::new("bounded-large");
    let config = dir.path().join("broken.toml");
    let line = "key = \"unterminated\n";
    std::fs::write(&config, line.repeat((1 << 20) / line.len())).expect("write config");
    let (status, stdout, stderr) = python_with(
        &[("PICKLEGUARD_CONFIG", config.to_str().unwrap())],
        Duration::from_secs(5),
    );
    assert_eq!((status, stdout.as_str()), (Some(0), "ran\n"), "BC-3");
    assert_eq!(
        stderr.lines().count(),
        21,
        "BC-3: {}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.contains("broken.toml:1: "), "BC-3: {stderr}");

    // Bigger than the cap: refused as a whole, with one line.
    std::fs::write(&config, "#".repeat((1 << 20) + 1)).expect("write config");
    let (_, _, stderr) = python_with(
        &[("PICKLEGUARD_CONFIG", config.to_str().unwrap())],
        Duration::from_secs(5),
    );
    assert!(
        stderr.contains("it is larger than the 1048576-byte limit") && stderr.lines().count() == 1,
        "BC-3 cap: {stderr}"
    );
}

/// BC-4: `check-config` refuses every Python 2 spelling of a hard-denied global (it accepted
/// `__builtin__.eval`, which the hook refuses at load time anyway), and exits 78.
#[test]
fn check_config_refuses_python2_spellings_of_hard_denied_globals() {
    let dir = TempDir::new("bounded-py2");
    let config = dir.path().join("pickleguard.toml");
    std::fs::write(
        &config,
        "allow = [\"__builtin__.eval\", \"__builtin__.getattr\", \"commands.getoutput\"]\n",
    )
    .expect("write config");
    let output = run(
        support::command(cli())
            .args(["check-config", "--config"])
            .arg(&config),
        Duration::from_secs(60),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "BC-4: {stderr}");
    for (line, global) in [
        (1, "__builtin__.eval"),
        (1, "__builtin__.getattr"),
        (1, "commands.getoutput"),
    ] {
        assert!(
            stderr.contains(&format!(
                "pickleguard.toml:{line}: `{global}` is hard-denied"
            )),
            "BC-4 {global}: {stderr}"
        );
    }
}
