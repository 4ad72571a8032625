//! The one place the core sets up logging: a tracing subscriber with a small layer that writes
//! each event as one text or JSON line, to stderr or an append-only file.
//!
//! Each line goes out in a single `write(2)` with no user-space lock, so a child forked while
//! another thread was logging can log too. Only `PICKLEGUARD_LOG*` settings are read, never
//! the host's `RUST_LOG`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;
use std::time::SystemTime;

use pickleguard_policy::{LogFormat, LogLevel, LogSettings};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::ffi;

/// Fields every pickleguard event may carry, in the order JSON lines list them.
const FIELDS: [&str; 7] = [
    "event",
    "module",
    "name",
    "decision",
    "mode",
    "policy_source",
    "caller",
];

/// Process facts that do not change after start-up (pid and ppid are read per line: fork).
struct ProcessFacts {
    exe: String,
    python_version: String,
}

static FACTS: OnceLock<ProcessFacts> = OnceLock::new();

/// Installs the subscriber. Returns why not, if the log file cannot be opened (then stderr is
/// used). Never panics, and a second call changes nothing.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    FACTS.get_or_init(|| ProcessFacts {
        exe: std::env::current_exe()
            .map(|path| path.display().to_string())
            .unwrap_or_default(),
        python_version: ffi::python_version(),
    });
    let Some(max_level) = max_level(settings.level) else {
        return Ok(());
    };
    let (sink, problem) = match &settings.file {
        None => (Sink::Stderr, None),
        Some(path) => match OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        {
            Ok(file) => (Sink::File(file), None),
            Err(err) => (
                Sink::Stderr,
                Some(format!(
                    "cannot open log file `{}`: {err}; logging to stderr",
                    path.display()
                )),
            ),
        },
    };
    let layer = LineLayer {
        format: settings.format,
        max_level,
        sink,
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    // Another copy of pickleguard in the process may have set one already; that is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
    problem.map_or(Ok(()), Err)
}

fn max_level(level: LogLevel) -> Option<Level> {
    match level {
        LogLevel::None => None,
        LogLevel::Error => Some(Level::ERROR),
        LogLevel::Warn => Some(Level::WARN),
        LogLevel::Info => Some(Level::INFO),
        LogLevel::Debug => Some(Level::DEBUG),
    }
}

enum Sink {
    Stderr,
    File(File),
}

impl Sink {
    fn write_line(&self, line: &str) {
        match self {
            Sink::Stderr => ffi::stderr_line(line),
            Sink::File(file) => {
                let mut bytes = String::with_capacity(line.len() + 1);
                bytes.push_str(line);
                bytes.push('\n');
                // `&File` writes straight to the descriptor (O_APPEND): no lock to inherit.
                let _ = (&*file).write_all(bytes.as_bytes());
            }
        }
    }
}

struct LineLayer {
    format: LogFormat,
    max_level: Level,
    sink: Sink,
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        *metadata.level() <= self.max_level
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = match self.format {
            LogFormat::Text => format!("pickleguard: {}", fields.message),
            LogFormat::Json => json_line(*event.metadata().level(), &fields),
        };
        self.sink.write_line(&line);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    values: [Option<String>; FIELDS.len()],
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.store(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.store(field.name(), text);
    }
}

impl Fields {
    fn store(&mut self, name: &str, value: String) {
        if name == "message" {
            self.message = value;
        } else if let Some(index) = FIELDS.iter().position(|f| *f == name) {
            self.values[index] = Some(value);
        }
    }
}

fn json_line(level: Level, fields: &Fields) -> String {
    let facts = FACTS.get();
    let mut object = serde_json::Map::new();
    object.insert(
        "ts".into(),
        humantime::format_rfc3339_millis(SystemTime::now())
            .to_string()
            .into(),
    );
    object.insert("level".into(), level.as_str().to_ascii_lowercase().into());
    for (name, value) in FIELDS.iter().zip(&fields.values) {
        let value = value.clone().map_or(serde_json::Value::Null, Into::into);
        object.insert((*name).into(), value);
    }
    object.insert("message".into(), fields.message.clone().into());
    object.insert("pid".into(), std::process::id().into());
    object.insert("ppid".into(), std::os::unix::process::parent_id().into());
    object.insert(
        "exe".into(),
        facts.map(|f| f.exe.clone()).unwrap_or_default().into(),
    );
    object.insert(
        "python_version".into(),
        facts
            .map(|f| f.python_version.clone())
            .unwrap_or_default()
            .into(),
    );
    object.insert(
        "pickleguard_version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    serde_json::Value::Object(object).to_string()
}
