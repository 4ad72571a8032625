//! The policy options `run`, `scan` and `allowlist` share, and the settings they make: the same
//! sources as a preloaded process (config file, then `PICKLEGUARD_*`), with the command-line
//! options taking the place of the variables they name.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use pickleguard_policy::settings::vars;
use pickleguard_policy::Settings;

/// Policy options on the command line.
#[derive(Args, Debug, Default, Clone)]
pub struct PolicyOptions {
    /// Config file (sets PICKLEGUARD_CONFIG).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Extra global to allow, `module.name` or `module:qualname` (adds to PICKLEGUARD_ALLOW);
    /// repeatable.
    #[arg(long = "allow", value_name = "GLOBAL")]
    pub allow: Vec<String>,
    /// Extra policy pack (adds to PICKLEGUARD_PACKS); repeatable. `pickleguard packs` lists
    /// what each one allows.
    #[arg(long = "pack", value_name = "PACK", value_parser = pack_names())]
    pub packs: Vec<String>,
}

impl PolicyOptions {
    /// The variables these options set, given the mode too.
    pub fn env(&self, mode: Option<&str>) -> Vec<(&'static str, OsString)> {
        let mut env = Vec::new();
        if let Some(mode) = mode {
            env.push((vars::MODE, mode.into()));
        }
        if let Some(config) = &self.config {
            env.push((vars::CONFIG, config.into()));
        }
        if !self.allow.is_empty() {
            env.push((vars::ALLOW, joined(vars::ALLOW, &self.allow)));
        }
        if !self.packs.is_empty() {
            env.push((vars::PACKS, joined(vars::PACKS, &self.packs)));
        }
        env
    }

    /// The effective settings: these options over the process environment. A problem with
    /// a value the user gave as an option names that option, not the variable it stands for.
    pub fn settings(&self, mode: Option<&str>) -> Settings {
        let env = self.env(mode);
        let mut settings = Settings::load(
            |name| {
                env.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.clone())
                    .or_else(|| std::env::var_os(name))
            },
            pickleguard_policy::settings::read_config_file,
        );
        for problem in &mut settings.problems {
            for (var, _) in &env {
                let Some(value) = problem.origin.strip_prefix(&format!("{var}=")) else {
                    continue;
                };
                let flag = flag_for(var);
                let from_env = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
                problem.origin = match (*var, from_env) {
                    (vars::ALLOW | vars::PACKS, Some(own)) => {
                        format!("{var}={own} with {flag}")
                    }
                    _ => format!("{flag} {value}"),
                };
                problem.message = problem.message.replace("the variable is", "the option is");
                break;
            }
        }
        settings
    }
}

/// The option that sets `var`.
fn flag_for(var: &str) -> &'static str {
    match var {
        vars::MODE => "--mode",
        vars::CONFIG => "--config",
        vars::ALLOW => "--allow",
        vars::PACKS => "--pack",
        _ => "an option",
    }
}

/// The pack names `--pack` accepts, shown in `--help` and in a usage error.
fn pack_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        pickleguard_policy::packs::PACKS
            .iter()
            .map(|pack| clap::builder::PossibleValue::new(pack.name).help(pack.summary)),
    )
}

/// `values` joined with commas, after the variable's current value.
fn joined(var: &str, values: &[String]) -> OsString {
    let mut all: Vec<String> = std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .into_iter()
        .collect();
    all.extend(values.iter().cloned());
    all.join(",").into()
}
