//! `pickleguard run -- CMD...`: validate the configuration, put the shim first in
//! `LD_PRELOAD`, and exec the command, like `ddtrace-run`.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use crate::options::PolicyOptions;
use crate::{locate, Error};

/// `EX_CONFIG` from sysexits.h.
const EX_CONFIG: u8 = 78;

/// What `run` sets for the command.
pub struct RunOptions {
    pub mode: Option<String>,
    pub policy: PolicyOptions,
    pub command: Vec<OsString>,
}

pub fn run(options: RunOptions) -> Result<ExitCode, Error> {
    let env = options.policy.env(options.mode.as_deref());
    let settings = options.policy.settings(options.mode.as_deref());
    if !settings.problems.is_empty() {
        for problem in &settings.problems {
            eprintln!("error: {problem}");
        }
        eprintln!("pickleguard: not starting the command: fix the configuration first");
        return Ok(ExitCode::from(EX_CONFIG));
    }
    let shim = locate::shim()?;
    let shim_text = shim
        .to_str()
        .ok_or_else(|| Error::UnusableShimPath(shim.clone()))?;
    if shim_text.chars().any(char::is_whitespace) {
        return Err(Error::UnusableShimPath(shim.clone()));
    }
    let preload = prepend_preload(shim_text, std::env::var_os("LD_PRELOAD").as_deref());
    let (program, args) = options.command.split_first().ok_or(Error::NoCommand)?;
    let err = Command::new(program)
        .args(args)
        .envs(env)
        .env("LD_PRELOAD", preload)
        .exec();
    Err(Error::Exec {
        command: program.to_string_lossy().into_owned(),
        source: err,
    })
}

/// `shim` first, then the other entries of `current` (split on spaces and colons, as ld.so
/// does), without duplicating the shim.
pub fn prepend_preload(shim: &str, current: Option<&OsStr>) -> OsString {
    let current = current
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut entries = vec![shim.to_string()];
    entries.extend(
        current
            .split([' ', ':'])
            .filter(|entry| !entry.is_empty() && *entry != shim)
            .map(str::to_string),
    );
    entries.join(":").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_goes_first_once() {
        let shim = "/usr/lib/pickleguard/libpickleguard.so";
        assert_eq!(prepend_preload(shim, None), OsString::from(shim));
        assert_eq!(
            prepend_preload(
                shim,
                Some(OsStr::new(
                    "/a.so /usr/lib/pickleguard/libpickleguard.so:/b.so"
                ))
            ),
            OsString::from(format!("{shim}:/a.so:/b.so"))
        );
    }
}
