//! The effective configuration: built-in defaults, then the config file, then `PICKLEGUARD_*`
//! variables (env > file > built-in).
//!
//! A problem never weakens protection. Each one is kept as a [`Problem`] naming where it is
//! (`file:line` or the variable) and the bad text; everything valid still applies, and the `ml`
//! pack and the hard-deny set always do.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
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
    /// `1`: a Python process that cannot be protected exits before running any Python code.
    pub const REQUIRE: &str = "PICKLEGUARD_REQUIRE";
    /// Code-bearing archive formats allowed to load, comma-separated (`torchscript`,
    /// `torch.package`).
    pub const ALLOW_CODE: &str = "PICKLEGUARD_ALLOW_CODE";
}

/// The config file read when `PICKLEGUARD_CONFIG` is unset, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pickleguard/pickleguard.toml";

/// The largest config file read: 1 MiB, far more than any real allowlist needs.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The most problems kept (and so printed); one more line counts the rest.
pub const MAX_PROBLEMS: usize = 20;

/// The longest user-supplied text quoted in a problem (a value, an entry), in bytes.
pub const MAX_QUOTED: usize = 120;

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
    /// A Python process that cannot be protected must exit before running any Python code.
    pub require: bool,
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
            require: false,
            config_file: None,
            allow_code: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads the process environment and the config file it names.
    pub fn from_process() -> Self {
        Self::load(|name| std::env::var_os(name), read_config_file)
    }

    /// The settings of a process in secure-execution mode (setuid, setgid or raised file
    /// capabilities), whose environment belongs to a less privileged caller: no variable is
    /// read, only [`DEFAULT_CONFIG_PATH`] counts, and only if root owns it and its directory
    /// and no one else may write them. Nothing is written to a file named by configuration
    /// either: logs go to stderr and nothing is recorded.
    pub fn for_secure_execution() -> Self {
        let mut settings = Self::load(|_| None, read_trusted_config_file);
        let origin = DEFAULT_CONFIG_PATH;
        if let Some(file) = settings.log.file.take() {
            settings.problems.push(Problem::new(
                format!("{origin}: log.file = {}", file.display()),
                "a setuid, setgid or capability process writes no log file; logging to stderr"
                    .into(),
            ));
        }
        if let Some(file) = settings.record.take() {
            settings.problems.push(Problem::new(
                format!("{origin}: record = {}", file.display()),
                "a setuid, setgid or capability process records nothing".into(),
            ));
        }
        settings
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
        cap_problems(&mut settings.problems);
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
                    format!("{var}={}", clip(&format!("{raw:?}"))),
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
                    format!("{var}={}", clip(&value)),
                    clip_message(format!("{err}; the variable is ignored")),
                ));
                None
            }
        }
    }

    fn apply(&mut self, settings: &mut Settings) {
        if let Some(mode) = self.parsed::<Mode>(vars::MODE) {
            settings.mode = mode;
        }
        if let Some(Flag(require)) = self.parsed(vars::REQUIRE) {
            settings.require = require;
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
                        format!("{}={}", vars::PACKS, clip(pack)),
                        clip_message(format!("{err}; the other packs apply")),
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
                    // The entry alone, never the whole value: 10,000 bad entries must not
                    // print the value 10,000 times.
                    self.problems.push(Problem::new(
                        format!("{}={}", vars::ALLOW, clip(entry.trim())),
                        clip_message(format!("{err}; that entry is ignored and the rest apply")),
                    ));
                }
            }
        }
    }
}

/// `text`, cut to [`MAX_QUOTED`] bytes (at a character boundary) with a note of its full size.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_QUOTED {
        return text.to_string();
    }
    let mut end = MAX_QUOTED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// A problem message, which may quote user text, cut to a few times [`MAX_QUOTED`].
pub(crate) fn clip_message(message: String) -> String {
    let limit = 4 * MAX_QUOTED;
    if message.len() <= limit {
        return message;
    }
    let mut end = limit;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &message[..end], message.len())
}

/// Keeps the first [`MAX_PROBLEMS`] problems and replaces the rest with one line counting them.
fn cap_problems(problems: &mut Vec<Problem>) {
    if problems.len() <= MAX_PROBLEMS {
        return;
    }
    let rest = problems.len() - MAX_PROBLEMS;
    problems.truncate(MAX_PROBLEMS);
    problems.push(Problem::new(
        "more problems".into(),
        format!("{rest} more not shown; fix the ones above first"),
    ));
}

/// Reads a config file: a regular file (never a FIFO, device or directory, which could block
/// or never end) of at most [`MAX_CONFIG_BYTES`].
pub fn read_config_file(path: &Path) -> io::Result<String> {
    read_bounded(path, |_| Ok(()))
}

/// [`read_config_file`] for secure-execution mode: the file and its directory must also be
/// owned by root and writable by no one else.
pub fn read_trusted_config_file(path: &Path) -> io::Result<String> {
    let directory = path.parent().unwrap_or(Path::new("/"));
    trusted(&std::fs::metadata(directory)?, "its directory")?;
    read_bounded(path, |opened| trusted(opened, "it"))
}

fn trusted(metadata: &Metadata, what: &str) -> io::Result<()> {
    if metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what} must be owned by root and writable by no one else in a setuid, setgid or capability process"),
        ));
    }
    Ok(())
}

fn read_bounded(path: &Path, check: impl Fn(&Metadata) -> io::Result<()>) -> io::Result<String> {
    let regular = |metadata: &Metadata| {
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is not a regular file",
            ));
        }
        if metadata.len() > MAX_CONFIG_BYTES {
            return Err(too_large());
        }
        Ok(())
    };
    // `stat` first: opening a FIFO would block until a writer comes.
    regular(&std::fs::metadata(path)?)?;
    let file = File::open(path)?;
    let opened = file.metadata()?;
    regular(&opened)?;
    check(&opened)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is larger than the {MAX_CONFIG_BYTES}-byte limit"),
    )
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

    #[test]
    fn require_comes_from_the_environment_or_the_file() {
        assert!(!load(&[], None).require);
        assert!(load(&[(vars::REQUIRE, "1")], None).require);
        assert!(with_file(&[], "require = true\n").require);
        let s = with_file(&[(vars::REQUIRE, "0")], "require = true\n");
        assert!(!s.require, "env beats file");
    }

    /// A scratch directory for file-reading tests.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pickleguard-policy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = scratch("bounded");
        let small = dir.join("small.toml");
        std::fs::write(&small, "mode = \"warn\"\n").unwrap();
        assert_eq!(read_config_file(&small).unwrap(), "mode = \"warn\"\n");

        let limit = usize::try_from(MAX_CONFIG_BYTES).unwrap();
        let exact = dir.join("exact.toml");
        std::fs::write(&exact, "#".repeat(limit)).unwrap();
        assert_eq!(read_config_file(&exact).unwrap().len(), limit);
        let large = dir.join("large.toml");
        std::fs::write(&large, "#".repeat(limit + 1)).unwrap();
        let err = read_config_file(&large).unwrap_err().to_string();
        assert!(err.contains("larger than the 1048576-byte limit"), "{err}");

        // Never ends, and would exhaust memory.
        let err = read_config_file(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = read_config_file(&dir).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");

        // Opening a FIFO would wait for a writer forever.
        let fifo = dir.join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            let err = read_config_file(&fifo).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_config_file_is_never_read_past_the_cap_through_settings() {
        let s = Settings::load(
            |name| (name == vars::CONFIG).then(|| OsString::from("/dev/zero")),
            read_config_file,
        );
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("PICKLEGUARD_CONFIG=/dev/zero: cannot read the config file: it is not a regular file"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn python2_spellings_of_hard_denied_globals_are_refused() {
        let s = with_file(
            &[(vars::ALLOW, "__builtin__.eval,copy_reg._reconstructor")],
            "allow = [\"__builtin__.exec\", \"commands.getoutput\"]\n",
        );
        let p = problems(&s);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].contains("`__builtin__.exec` is hard-denied"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("`commands.getoutput` is hard-denied"),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with(
                "PICKLEGUARD_ALLOW=__builtin__.eval: `__builtin__.eval` is hard-denied"
            ),
            "{}",
            p[2]
        );
        assert!(matches!(
            s.policy.decide("__builtin__", "eval"),
            Decision::HardDenied(_)
        ));
    }

    #[test]
    fn problems_are_bounded_in_size_and_number() {
        let entries: Vec<String> = (0..10_000).map(|i| format!("bad{i}")).collect();
        let value = entries.join(",");
        let long_mode = "x".repeat(100_000);
        let s = load(&[(vars::ALLOW, &value), (vars::MODE, &long_mode)], None);
        let p = problems(&s);
        assert_eq!(p.len(), MAX_PROBLEMS + 1, "{p:#?}");
        assert!(p.iter().all(|line| line.len() < 1200), "{p:#?}");
        assert!(
            p[0].starts_with("PICKLEGUARD_MODE=xxx") && p[0].contains("(100000 bytes)"),
            "{}",
            p[0]
        );
        assert!(p[1].starts_with("PICKLEGUARD_ALLOW=bad0: "), "{}", p[1]);
        assert_eq!(
            p[MAX_PROBLEMS],
            format!(
                "more problems: {} more not shown; fix the ones above first",
                10_001 - MAX_PROBLEMS
            )
        );
    }

    #[test]
    fn a_large_broken_file_is_reported_in_linear_time() {
        // One unclosed string per line: every line is an error.
        let line = "key = \"unterminated\n";
        let text = line.repeat((MAX_CONFIG_BYTES as usize) / line.len());
        let started = std::time::Instant::now();
        let s = with_file(&[], &text);
        let elapsed = started.elapsed();
        let p = problems(&s);
        assert_eq!(p.len(), MAX_PROBLEMS + 1);
        assert!(p[0].starts_with("/etc/pg.toml:1:"), "{}", p[0]);
        let rest: usize = p[MAX_PROBLEMS]
            .strip_prefix("more problems: ")
            .and_then(|tail| tail.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{}", p[MAX_PROBLEMS]));
        assert!(rest > 10_000, "every line is an error: {rest}");
        assert!(
            elapsed < std::time::Duration::from_secs(10),
            "{elapsed:?} for a 1 MiB file"
        );
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
