//! `pickleguard check-config`: the effective configuration, exactly as a preloaded process
//! would read it, and exit 78 (EX_CONFIG) if anything in it is wrong.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use pickleguard_policy::settings::{vars, DEFAULT_CONFIG_PATH};
use pickleguard_policy::{Settings, Source};

use crate::config_writer::REVIEW_MARKER;
use crate::Error;

/// `EX_CONFIG` from sysexits.h.
const EX_CONFIG: u8 = 78;

pub fn run(config: Option<PathBuf>, quiet: bool) -> Result<ExitCode, Error> {
    let mut settings = Settings::load(
        |name| match (&config, name == vars::CONFIG) {
            (Some(path), true) => Some(OsString::from(path)),
            _ => std::env::var_os(name),
        },
        pickleguard_policy::settings::read_config_file,
    );
    // A problem with the file the user named names the option, not the variable.
    if config.is_some() {
        let prefix = format!("{}=", vars::CONFIG);
        for problem in &mut settings.problems {
            if let Some(path) = problem.origin.strip_prefix(&prefix) {
                problem.origin = format!("--config {path}");
            }
        }
    }
    if !quiet {
        print_summary(&settings, config.as_deref());
    }
    for problem in &settings.problems {
        eprintln!("error: {problem}");
    }
    let unreviewed = unreviewed(&settings);
    for warning in &unreviewed {
        eprintln!("warning: {warning}");
    }
    if settings.problems.is_empty() {
        if !quiet {
            match unreviewed.len() {
                0 => println!("ok: no problems"),
                n => println!("ok: no problems, but {n} entr(ies) still marked `{REVIEW_MARKER}` (see the warnings)"),
            }
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "pickleguard: {} problem(s); the guard would still run with everything valid above",
            settings.problems.len()
        );
        Ok(ExitCode::from(EX_CONFIG))
    }
}

/// A warning for every allow entry whose reason still carries the mark `learn` and
/// `allowlist` write: nobody has reviewed it yet.
fn unreviewed(settings: &Settings) -> Vec<String> {
    let file = settings
        .config_file
        .as_ref()
        .map_or(String::new(), |f| f.display().to_string());
    settings
        .policy
        .extra()
        .filter(|(_, allowance)| {
            allowance
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(REVIEW_MARKER))
        })
        .map(|(global, allowance)| {
            let at = match allowance.source {
                Source::Config(line) => format!("{file}:{line}"),
                other => other.to_string(),
            };
            format!("{at}: `{global}` is still marked `{REVIEW_MARKER}`: check that you trust it, then write your own reason")
        })
        .collect()
}

fn print_summary(settings: &Settings, given: Option<&std::path::Path>) {
    match (&settings.config_file, given) {
        (Some(path), _) => println!("config file: {}", path.display()),
        (None, Some(path)) => println!(
            "config file: {} could not be read (see the error below)",
            path.display()
        ),
        (None, None) => println!("config file: none ({DEFAULT_CONFIG_PATH} does not exist)"),
    }
    let on_off = |flag: bool| if flag { "on" } else { "off" };
    println!(
        "mode: {} (lock: {}, trust multiprocessing IPC: {})",
        settings.mode,
        on_off(settings.lock),
        on_off(settings.trust_ipc)
    );
    let packs: Vec<&str> = settings.policy.packs().map(|pack| pack.name).collect();
    println!("packs: {}", packs.join(", "));
    let extra: Vec<_> = settings.policy.extra().collect();
    println!("extra allowed globals: {}", extra.len());
    for (global, allowance) in extra {
        let reason = allowance
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!("  {global}  from {}{reason}", allowance.source);
    }
    let log = &settings.log;
    let target = log
        .file
        .as_ref()
        .map_or("stderr".to_string(), |f| f.display().to_string());
    println!(
        "log: level {:?}, format {:?}, to {target}",
        log.level, log.format
    );
    match &settings.record {
        Some(path) => println!("record: {}", path.display()),
        None => println!("record: off"),
    }
}
