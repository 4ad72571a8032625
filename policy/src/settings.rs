//! The effective configuration: built-in defaults, then the config file, then `PICKLEGUARD_*`
//! variables (env > file > built-in).
//!
//! A problem never weakens protection. Each one is kept as a [`Problem`] naming where it is
//! (`file:line` or the variable) and the bad text; everything valid still applies, and the `ml`
//! pack and the hard-deny set always do.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{config_file, Error, Global, Policy, Problem, Source};

/// The names of the environment variables.
pub mod vars {
    /// Path of the TOML config file; `/etc/pickleguard/pickleguard.toml` is read if unset.
    pub const CONFIG: &str = "PICKLEGUARD_CONFIG";
    /// `enforce`, `warn` or `off`.
    pub const MODE: &str = "PICKLEGUARD_MODE";
    /// Extra globals, comma-separated `module.name` or `module:qualname`.
    pub const ALLOW: &str = "PICKLEGUARD_ALLOW";
    /// Extra policy packs, comma-separated.
    pub const PACKS: &str = "PICKLEGUARD_PACKS";
    /// `1` forbids Python code to weaken the policy.
    pub const LOCK: &str = "PICKLEGUARD_LOCK";
    /// `0` stops trusting multiprocessing's own pickles.
    pub const TRUST_IPC: &str = "PICKLEGUARD_TRUST_IPC";
    /// File to append one config-ready line per distinct global resolved.
    pub const RECORD: &str = "PICKLEGUARD_RECORD";
    /// `none`, `error`, `warn`, `info` or `debug`.
    pub const LOG: &str = "PICKLEGUARD_LOG";
    /// `text` or `json`.
    pub const LOG_FORMAT: &str = "PICKLEGUARD_LOG_FORMAT";
    /// File to append log lines to instead of stderr.
    pub const LOG_FILE: &str = "PICKLEGUARD_LOG_FILE";
    /// Code-bearing archive formats allowed to load, comma-separated (`torchscript`,
    /// `torch.package`).
    pub const ALLOW_CODE: &str = "PICKLEGUARD_ALLOW_CODE";
}

/// The config file read when `PICKLEGUARD_CONFIG` is unset, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pickleguard/pickleguard.toml";

/// What the guard does with a global that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse it (the default).
    #[default]
    Enforce,
    /// Report it and let it load; hard-denied globals are still refused.
    Warn,
    /// Check nothing.
    Off,
}

/// How much the guard logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Nothing at all.
    None,
    /// Configuration errors and unprotected processes.
    Error,
    /// Plus one line per blocked or warned global (the default).
    #[default]
    Warn,
    /// Plus recorded globals and mode changes.
    Info,
    /// Plus every allowed global and trusted IPC load.
    Debug,
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where and how the guard logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// The most detailed level written.
    pub level: LogLevel,
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Append here instead of stderr.
    pub file: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The mode in force.
    pub mode: Mode,
    /// The allowlist: the `ml` pack, enabled packs and extra entries.
    pub policy: Policy,
    /// Whether Python code is forbidden to weaken the policy.
    pub lock: bool,
    /// Whether multiprocessing's own pickles skip the allowlist.
    pub trust_ipc: bool,
    /// Where to record each distinct global resolved.
    pub record: Option<PathBuf>,
    /// Logging.
    pub log: LogSettings,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Code-bearing archive formats allowed to load (`allow_code`); none by default.
    pub allow_code: Vec<CodeFormat>,
    /// Everything that was wrong, in the order found.
    pub problems: Vec<Problem>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Enforce,
            policy: Policy::new(),
            lock: false,
            trust_ipc: true,
            record: None,
            log: LogSettings::default(),
            config_file: None,
            allow_code: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads the process environment and the config file it names.
    pub fn from_process() -> Self {
        Self::load(
            |name| std::env::var_os(name),
            |path| std::fs::read_to_string(path),
        )
    }

    /// Reads the settings through `env` and `read_file`, so tests can supply both.
    pub fn load(
        env: impl Fn(&str) -> Option<OsString>,
        read_file: impl Fn(&Path) -> io::Result<String>,
    ) -> Self {
        let mut settings = Settings::default();
        let mut env = EnvReader {
            lookup: &env,
            problems: Vec::new(),
        };
        let explicit = env.get(vars::CONFIG).filter(|path| !path.trim().is_empty());
        let path = PathBuf::from(explicit.as_deref().unwrap_or(DEFAULT_CONFIG_PATH));
        match read_file(&path) {
            Ok(text) => {
                config_file::apply(&path, &text, &mut settings);
                settings.config_file = Some(path);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound && explicit.is_none() => {}
            Err(err) => settings.problems.push(Problem::new(
                format!("{}={}", vars::CONFIG, path.display()),
                format!("cannot read the config file: {err}; built-in defaults and the environment apply"),
            )),
        }
        env.apply(&mut settings);
        let mut problems = env.problems;
        settings.problems.append(&mut problems);
        settings
    }
}

/// Reads `PICKLEGUARD_*` variables, noting each bad value.
struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<OsString>,
    problems: Vec<Problem>,
}

impl EnvReader<'_> {
    fn get(&mut self, var: &str) -> Option<String> {
        match (self.lookup)(var)?.into_string() {
            Ok(text) => Some(text),
            Err(raw) => {
                self.problems.push(Problem::new(
                    format!("{var}={raw:?}"),
                    "the value is not valid UTF-8; it is ignored".into(),
                ));
                None
            }
        }
    }

    /// A non-empty variable, parsed; a bad value is noted and ignored.
    fn parsed<T: FromStr<Err = Error>>(&mut self, var: &str) -> Option<T> {
        let value = self.get(var).filter(|v| !v.trim().is_empty())?;
        match value.parse() {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.problems.push(Problem::new(
                    format!("{var}={value}"),
                    format!("{err}; the variable is ignored"),
                ));
                None
            }
        }
    }

    fn apply(&mut self, settings: &mut Settings) {
        if let Some(mode) = self.parsed::<Mode>(vars::MODE) {
            settings.mode = mode;
        }
        if let Some(Flag(lock)) = self.parsed(vars::LOCK) {
            settings.lock = lock;
        }
        if let Some(Flag(trust)) = self.parsed(vars::TRUST_IPC) {
            settings.trust_ipc = trust;
        }
        if let Some(level) = self.parsed(vars::LOG) {
            settings.log.level = level;
        }
        if let Some(format) = self.parsed(vars::LOG_FORMAT) {
            settings.log.format = format;
        }
        if let Some(file) = self.get(vars::LOG_FILE).filter(|v| !v.trim().is_empty()) {
            settings.log.file = Some(PathBuf::from(file));
        }
        if let Some(file) = self.get(vars::RECORD).filter(|v| !v.trim().is_empty()) {
            settings.record = Some(PathBuf::from(file));
        }
        if let Some(value) = self.get(vars::PACKS) {
            for pack in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Err(err) = settings.policy.enable_pack(pack) {
                    self.problems.push(Problem::new(
                        format!("{}={value}", vars::PACKS),
                        format!("{err}; the other packs apply"),
                    ));
                }
            }
        }
        if let Some(value) = self.get(vars::ALLOW_CODE) {
            for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match item.parse() {
                    Ok(format) => settings.allow_code_format(format),
                    Err(err) => self.problems.push(Problem::new(
                        format!("{}={value}", vars::ALLOW_CODE),
                        format!("{err}; that entry is ignored and the rest apply"),
                    )),
                }
            }
        }
        if let Some(value) = self.get(vars::ALLOW) {
            for entry in value.split(',').filter(|e| !e.trim().is_empty()) {
                let added = Global::parse(entry)
                    .and_then(|global| settings.policy.allow(&global, Source::Env, None));
                if let Err(err) = added {
                    self.problems.push(Problem::new(
                        format!("{}={value}", vars::ALLOW),
                        format!("{err}; that entry is ignored and the rest apply"),
                    ));
                }
            }
        }
    }
}

/// An archive format that carries code which runs when it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFormat {
    /// TorchScript archives: `torch.jit.load`, and `torch.load` of one.
    TorchScript,
    /// torch.package archives: `torch.package.PackageImporter`.
    TorchPackage,
}

impl CodeFormat {
    /// The name used in `allow_code` and `PICKLEGUARD_ALLOW_CODE`.
    pub fn name(self) -> &'static str {
        match self {
            CodeFormat::TorchScript => "torchscript",
            CodeFormat::TorchPackage => "torch.package",
        }
    }
}

impl FromStr for CodeFormat {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "torchscript" => Ok(CodeFormat::TorchScript),
            "torch.package" => Ok(CodeFormat::TorchPackage),
            _ => Err(Error::BadValue {
                value: value.to_string(),
                expected: "a code archive format: `torchscript` or `torch.package`",
            }),
        }
    }
}

impl Settings {
    /// Allows one code-bearing archive format; allowing it twice is harmless.
    pub fn allow_code_format(&mut self, format: CodeFormat) {
        if !self.allow_code.contains(&format) {
            self.allow_code.push(format);
        }
    }
}

/// A yes/no value: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl FromStr for Flag {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Flag(true)),
            "0" | "false" | "no" | "off" => Ok(Flag(false)),
            _ => Err(Error::BadValue {
                value: value.to_string(),
                expected: "`1` or `0` (or true/false, yes/no, on/off)",
            }),
        }
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            "off" => Ok(Mode::Off),
            _ => Err(Error::BadValue {
                value: value.to_string(),
                expected: "a mode: `enforce`, `warn` or `off`",
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Off => "off",
        })
    }
}

impl FromStr for LogLevel {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(LogLevel::None),
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(Error::BadValue {
                value: value.to_string(),
                expected: "a log level: `none`, `error`, `warn`, `info` or `debug`",
            }),
        }
    }
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(Error::BadValue {
                value: value.to_string(),
                expected: "a log format: `text` or `json`",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision;

    const CONFIG: &str = "/etc/pg.toml";

    /// Settings from `vars` and, when given, a config file at `CONFIG` with `file` as its text.
    fn load(vars: &[(&str, &str)], file: Option<&str>) -> Settings {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let file = file.map(str::to_string);
        Settings::load(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            |path| match (&file, path == Path::new(CONFIG)) {
                (Some(text), true) => Ok(text.clone()),
                _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
            },
        )
    }

    fn with_file(vars: &[(&str, &str)], file: &str) -> Settings {
        let mut all = vec![(vars::CONFIG, CONFIG)];
        all.extend_from_slice(vars);
        load(&all, Some(file))
    }

    fn problems(settings: &Settings) -> Vec<String> {
        settings.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_enforce_ml_and_warn_logging() {
        let s = load(&[], None);
        assert_eq!(s.mode, Mode::Enforce);
        assert!(s.trust_ipc && !s.lock && s.record.is_none());
        assert_eq!(s.log, LogSettings::default());
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(
            s.config_file, None,
            "a missing default file is not an error"
        );
        assert_eq!(s.policy.allowed(), Policy::new().allowed());
    }

    #[test]
    fn reads_every_variable() {
        let s = load(
            &[
                (vars::MODE, " Warn "),
                (vars::ALLOW, "a.B, pkg.mod:Outer.Inner,"),
                (vars::PACKS, "stdlib-data"),
                (vars::LOCK, "1"),
                (vars::TRUST_IPC, "no"),
                (vars::RECORD, "/tmp/rec.toml"),
                (vars::LOG, "debug"),
                (vars::LOG_FORMAT, "json"),
                (vars::LOG_FILE, "/tmp/pg.log"),
            ],
            None,
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.mode, Mode::Warn);
        assert!(s.lock && !s.trust_ipc);
        assert_eq!(s.record, Some(PathBuf::from("/tmp/rec.toml")));
        assert_eq!(s.log.level, LogLevel::Debug);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.log.file, Some(PathBuf::from("/tmp/pg.log")));
        assert_eq!(s.policy.decide("a", "B"), Decision::Allowed(Source::Env));
        assert_eq!(
            s.policy.decide("pkg.mod", "Outer.Inner"),
            Decision::Allowed(Source::Env)
        );
        assert_eq!(
            s.policy.packs().map(|p| p.name).collect::<Vec<_>>(),
            ["ml", "stdlib-data"]
        );
    }

    #[test]
    fn bad_variables_are_reported_and_never_weaken() {
        let s = load(
            &[
                (vars::MODE, "disabled"),
                (vars::ALLOW, "os.system,good.One,torch.*"),
                (vars::PACKS, "everything"),
                (vars::LOCK, "maybe"),
            ],
            None,
        );
        assert_eq!(s.mode, Mode::Enforce);
        assert!(!s.lock);
        let p = problems(&s);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("PICKLEGUARD_MODE=disabled: `disabled` is not a mode"),
            "{}",
            p[0]
        );
        assert!(p[1].starts_with("PICKLEGUARD_LOCK=maybe: "), "{}", p[1]);
        assert!(
            p[2].contains("`everything` is not a policy pack"),
            "{}",
            p[2]
        );
        assert!(p[3].contains("`os.system` is hard-denied"), "{}", p[3]);
        assert!(p[4].contains("`torch.*`"), "{}", p[4]);
        assert_eq!(
            s.policy.decide("good", "One"),
            Decision::Allowed(Source::Env)
        );
        assert!(matches!(
            s.policy.decide("os", "system"),
            Decision::HardDenied(_)
        ));
    }

    const GOOD_FILE: &str = r#"
mode = "warn"
packs = ["stdlib-data"]
lock = true
trust_ipc = false
record = "/var/lib/pg/records.toml"
allow = [
  { global = "mymodel.Net", reason = "our model" },
  "mymodel:Outer.Inner",
]

[log]
level = "info"
format = "json"
file = "/var/log/pg.jsonl"
"#;

    #[test]
    fn reads_a_config_file() {
        let s = with_file(&[], GOOD_FILE);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.config_file, Some(PathBuf::from(CONFIG)));
        assert_eq!(s.mode, Mode::Warn);
        assert!(s.lock && !s.trust_ipc);
        assert_eq!(s.record, Some(PathBuf::from("/var/lib/pg/records.toml")));
        assert_eq!(
            s.log,
            LogSettings {
                level: LogLevel::Info,
                format: LogFormat::Json,
                file: Some(PathBuf::from("/var/log/pg.jsonl"))
            }
        );
        assert_eq!(
            s.policy.decide("mymodel", "Net"),
            Decision::Allowed(Source::Config(8))
        );
        assert_eq!(
            s.policy.decide("mymodel", "Outer.Inner"),
            Decision::Allowed(Source::Config(9))
        );
        let reasons: Vec<_> = s
            .policy
            .extra()
            .map(|(g, a)| (g.to_string(), a.reason.clone()))
            .collect();
        assert!(
            reasons.contains(&("mymodel.Net".into(), Some("our model".into()))),
            "{reasons:?}"
        );
    }

    #[test]
    fn env_overrides_file_overrides_built_in() {
        let s = with_file(
            &[
                (vars::MODE, "enforce"),
                (vars::LOG_FORMAT, "text"),
                (vars::LOCK, "0"),
                (vars::ALLOW, "extra.One"),
            ],
            GOOD_FILE,
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.mode, Mode::Enforce, "env beats file");
        assert_eq!(s.log.format, LogFormat::Text, "env beats file");
        assert!(!s.lock, "env beats file");
        assert_eq!(s.log.level, LogLevel::Info, "file beats built-in");
        assert_eq!(
            s.policy.decide("mymodel", "Net"),
            Decision::Allowed(Source::Config(8)),
            "allow entries add up"
        );
        assert_eq!(
            s.policy.decide("extra", "One"),
            Decision::Allowed(Source::Env)
        );
    }

    #[test]
    fn every_bad_file_entry_names_its_line_and_the_rest_applies() {
        let file = r#"mode = "sometimes"
packs = ["stdlib-data", "nope"]
lock = "perhaps"
allow = [
  "os.system",
  "good.One",
  { global = "torch.*" },
  { reason = "no global" },
  { global = "good.Two", colour = "blue" },
  42,
]
mdoe = "off"
[log]
level = "loud"
format = "xml"
"#;
        let s = with_file(&[], file);
        let p = problems(&s);
        let expect = [
            ("/etc/pg.toml:1:", "`sometimes` is not a mode"),
            ("/etc/pg.toml:2:", "`nope` is not a policy pack"),
            ("/etc/pg.toml:3:", "`perhaps` is not `1` or `0`"),
            ("/etc/pg.toml:5:", "`os.system` is hard-denied"),
            ("/etc/pg.toml:7:", "`torch.*` is not a global"),
            ("/etc/pg.toml:8:", "needs `global"),
            ("/etc/pg.toml:9:", "unknown key `colour`"),
            ("/etc/pg.toml:10:", "expected a global"),
            ("/etc/pg.toml:12:", "unknown setting `mdoe`"),
            ("/etc/pg.toml:14:", "`loud` is not a log level"),
            ("/etc/pg.toml:15:", "`xml` is not a log format"),
        ];
        assert_eq!(p.len(), expect.len(), "{p:#?}");
        for (problem, (origin, text)) in p.iter().zip(expect) {
            assert!(
                problem.starts_with(origin) && problem.contains(text),
                "{problem} !~ {origin} {text}"
            );
        }
        assert_eq!(s.mode, Mode::Enforce);
        assert!(!s.lock);
        assert_eq!(
            s.policy.decide("good", "One"),
            Decision::Allowed(Source::Config(6))
        );
        assert_eq!(
            s.policy.decide("good", "Two"),
            Decision::Allowed(Source::Config(9))
        );
        assert!(matches!(
            s.policy.decide("os", "system"),
            Decision::HardDenied(_)
        ));
        assert_eq!(s.policy.packs().count(), 2, "the valid pack still applies");
    }

    #[test]
    fn a_broken_file_is_ignored_as_a_whole() {
        let s = with_file(&[], "mode = \"off\"\nallow = [\"good.One\",\nlock = \n");
        let p = problems(&s);
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| p.starts_with("/etc/pg.toml:")), "{p:?}");
        assert!(
            p[0].contains("invalid TOML") && p[0].contains("the whole file is ignored"),
            "{p:?}"
        );
        assert_eq!(
            s.mode,
            Mode::Enforce,
            "a broken file's `mode = off` must not apply"
        );
        assert_eq!(s.policy.decide("good", "One"), Decision::NotAllowed);
        assert!(matches!(
            s.policy.decide("os", "system"),
            Decision::HardDenied(_)
        ));
        assert_eq!(
            s.policy.decide("collections", "OrderedDict"),
            Decision::Allowed(Source::Pack("ml"))
        );
    }

    #[test]
    fn an_explicit_missing_file_is_a_problem() {
        let s = load(&[(vars::CONFIG, "/nowhere/pg.toml")], None);
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("PICKLEGUARD_CONFIG=/nowhere/pg.toml: cannot read the config file"),
            "{}",
            p[0]
        );
        assert_eq!(s.mode, Mode::Enforce);
    }
}

/// `allow_code`: code-bearing archive formats are refused unless named, in the file or the env.
#[cfg(test)]
mod allow_code_tests {
    use super::*;

    fn load(env: &[(&str, &str)], file: &str) -> Settings {
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .chain([(vars::CONFIG.to_string(), OsString::from("/etc/pg.toml"))])
            .collect();
        let file = file.to_string();
        Settings::load(
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            |_| Ok(file.clone()),
        )
    }

    #[test]
    fn code_archives_are_refused_unless_allowed() {
        assert!(load(&[], "").allow_code.is_empty());
        let from_file = load(&[], "allow_code = [\"torchscript\"]\n");
        assert_eq!(from_file.allow_code, vec![CodeFormat::TorchScript]);
        assert!(from_file.problems.is_empty(), "{:?}", from_file.problems);
        let both = load(
            &[(vars::ALLOW_CODE, "torch.package, torchscript")],
            "allow_code = [\"torchscript\"]\n",
        );
        assert_eq!(
            both.allow_code,
            vec![CodeFormat::TorchScript, CodeFormat::TorchPackage]
        );
    }

    #[test]
    fn an_unknown_code_format_is_a_problem_and_allows_nothing() {
        let settings = load(&[(vars::ALLOW_CODE, "pickle")], "allow_code = [\"exe\"]\n");
        assert!(settings.allow_code.is_empty());
        assert_eq!(settings.problems.len(), 2, "{:?}", settings.problems);
    }
}
