//! What a scan found, per file, per pickle stream and per global. Everything serializes to JSON.

use std::fmt;

use pickleguard_policy::{Decision, Outcome, Policy};
use serde::Serialize;

use crate::ScanError;

/// The scan of one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The path, or the name given to [`crate::Scanner::scan_bytes`].
    pub path: String,
    /// What the file is, judged by its content.
    pub format: Format,
    /// Every pickle stream found, in file order. A stream with no pickle in it is not listed.
    pub streams: Vec<StreamReport>,
    /// Why the file or its outer container could not be read to the end.
    pub error: Option<ScanError>,
    /// What makes the file unsafe besides its globals: code it carries, readers that would
    /// disagree about it, contents the scanner cannot open. Each one is a finding.
    pub concerns: Vec<Concern>,
}

impl FileReport {
    /// Whether any global is not allowed: refused, hard-denied or not resolvable statically.
    pub fn has_findings(&self) -> bool {
        !self.concerns.is_empty()
            || self
                .streams
                .iter()
                .flat_map(|stream| &stream.globals)
                .any(Finding::is_finding)
    }

    /// Whether part of the file could not be scanned, so its verdict is incomplete.
    pub fn is_error(&self) -> bool {
        self.error.is_some() || self.streams.iter().any(|stream| stream.error.is_some())
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data to a String cannot fail: no map has non-string keys.
        serde_json::to_string(self).unwrap_or_else(|err| {
            format!(
                "{{\"path\":{:?},\"error\":\"cannot serialize: {err}\"}}",
                self.path
            )
        })
    }
}

/// One pickle stream: a whole file, a member of an archive, or the payload of an `.npy`.
///
/// A stream may hold several pickles one after the other (torch's legacy format has five); all
/// of them are scanned and their globals listed together.
#[derive(Debug, Serialize)]
pub struct StreamReport {
    /// Where the stream is inside its file: `archive/data.pkl`, or `outer.zip!/inner.npy` for
    /// nested archives. `None` for the file itself.
    pub member: Option<String>,
    /// Every global the stream resolves, in stream order.
    pub globals: Vec<Finding>,
    /// Why the stream could not be read to its end. Globals before the damage stay listed.
    pub error: Option<ScanError>,
}

/// Something that makes a file unsafe to load besides the globals its pickles name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concern {
    /// The member it concerns (`archive/code/`), `None` for the file itself.
    pub member: Option<String>,
    /// Offset in that member or file, where there is one.
    pub offset: Option<u64>,
    /// What kind of problem it is.
    pub kind: ConcernKind,
    /// What the scanner saw, for people.
    pub detail: String,
}

/// The kinds of [`Concern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcernKind {
    /// The file carries code that its loader runs (TorchScript, torch.package, dill's
    /// `__main__`), whatever globals it names.
    Code,
    /// Two real readers of the file would read different contents: what one loads is not what
    /// the other (or the scanner) sees.
    ReadersDisagree,
    /// A container or encoding the scanner cannot open, so its contents stay unchecked.
    Unscannable,
    /// An allowed global applied in a way its reconstruction rules refuse.
    Rule,
}

impl fmt::Display for ConcernKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConcernKind::Code => "code",
            ConcernKind::ReadersDisagree => "readers disagree",
            ConcernKind::Unscannable => "unscannable",
            ConcernKind::Rule => "rule",
        })
    }
}

/// One global a pickle would resolve.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The module, if it is known statically. Names longer than 1 KiB are shortened for the
    /// report (the decision is always made on the full name).
    pub module: Option<String>,
    /// The attribute looked up in it, if known statically.
    pub name: Option<String>,
    /// The opcode that resolves it: `GLOBAL`, `STACK_GLOBAL`, `INST` or `EXT1`/`EXT2`/`EXT4`.
    pub opcode: &'static str,
    /// Offset of the opcode in the stream.
    pub offset: u64,
    /// The policy's verdict.
    pub decision: Verdict,
    /// What an operator would have to allow for the global to load, spelled as the allowlist
    /// reads it ([`Policy::missing`]). Empty unless the verdict is [`Verdict::NotAllowed`].
    pub missing: Vec<String>,
}

impl Finding {
    /// Whether this global stops the file from loading under the policy.
    pub fn is_finding(&self) -> bool {
        !matches!(self.decision, Verdict::Allowed { .. })
    }

    /// Judges a statically known pair with the runtime's policy.
    pub(crate) fn judged(
        policy: &Policy,
        module: &str,
        name: &str,
        opcode: &'static str,
        offset: u64,
    ) -> Self {
        let decision = Verdict::from(policy.decide(module, name));
        let missing = match decision {
            Verdict::NotAllowed => policy
                .missing(module, name)
                .iter()
                .map(ToString::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Finding {
            module: Some(shorten(module)),
            name: Some(shorten(name)),
            opcode,
            offset,
            decision,
            missing,
        }
    }

    /// A global whose names the scanner cannot know.
    pub(crate) fn unresolved(opcode: &'static str, offset: u64, why: String) -> Self {
        Finding {
            module: None,
            name: None,
            opcode,
            offset,
            decision: Verdict::Unresolved { why },
            missing: Vec::new(),
        }
    }
}

/// The policy's verdict on one global. The `verdict` field is spelled by the shared
/// vocabulary ([`pickleguard_policy::Outcome`]), as the hook's events and the record file are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict")]
pub enum Verdict {
    /// Allowed; `source` says by what (`pack `ml``, `PICKLEGUARD_ALLOW`, ...).
    #[serde(rename = "allowed")]
    Allowed {
        /// What allowed it.
        source: String,
    },
    /// Not on the allowlist.
    #[serde(rename = "not-allowlisted")]
    NotAllowed,
    /// Refused whatever the configuration says.
    #[serde(rename = "hard-denied")]
    HardDenied {
        /// Why it can never be allowed.
        reason: &'static str,
    },
    /// The names are not known statically, so the global cannot be judged: counts as a finding.
    #[serde(rename = "unresolved")]
    Unresolved {
        /// Why the names are unknown.
        why: String,
    },
}

impl Verdict {
    /// The verdict's word in the shared vocabulary.
    pub fn outcome(&self) -> Outcome {
        match self {
            Verdict::Allowed { .. } => Outcome::Allowed,
            Verdict::NotAllowed => Outcome::NotAllowlisted,
            Verdict::HardDenied { .. } => Outcome::HardDenied,
            Verdict::Unresolved { .. } => Outcome::Unresolved,
        }
    }
}

impl From<Decision> for Verdict {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Allowed(source) => Verdict::Allowed {
                source: source.to_string(),
            },
            Decision::NotAllowed => Verdict::NotAllowed,
            Decision::HardDenied(reason) => Verdict::HardDenied { reason },
        }
    }
}

/// What a file is, judged by its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One or more pickles (also joblib's uncompressed files).
    Pickle,
    /// torch's legacy format: five pickles, then raw storage bytes.
    TorchLegacy,
    /// A zip archive with a `data.pkl`: `torch.save`'s format.
    TorchZip,
    /// A numpy `.npy` array.
    Npy,
    /// A zip of `.npy` arrays.
    Npz,
    /// Any other zip archive.
    Zip,
    /// A TorchScript archive (`torch.jit.save`): carries code that `torch.jit.load` runs.
    TorchScript,
    /// A `torch.package` archive: carries Python modules that `PackageImporter` runs.
    TorchPackage,
    /// A tar archive (torch < 0.4's format among others); its members are scanned.
    Tar,
    /// A 7z archive, which the scanner cannot open.
    SevenZip,
    /// A format that holds no code and no pickle: tensors or a graph only.
    Safe {
        /// Which one: `safetensors`, `gguf`, `onnx`, `npy`.
        kind: &'static str,
    },
    /// A compressed file, such as a compressed joblib dump.
    Compressed {
        /// The compression.
        codec: Codec,
        /// What the decompressed bytes are.
        inner: Box<Format>,
    },
    /// Nothing the scanner reads; no pickle was found in it.
    Unknown,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pickle => f.write_str("pickle"),
            Format::TorchLegacy => f.write_str("torch legacy"),
            Format::TorchZip => f.write_str("torch zip"),
            Format::Npy => f.write_str("npy"),
            Format::Npz => f.write_str("npz"),
            Format::Zip => f.write_str("zip"),
            Format::TorchScript => f.write_str("torchscript"),
            Format::TorchPackage => f.write_str("torch.package"),
            Format::Tar => f.write_str("tar"),
            Format::SevenZip => f.write_str("7z"),
            Format::Safe { kind } => write!(f, "safe format ({kind})"),
            Format::Compressed { codec, inner } => write!(f, "{codec}-compressed {inner}"),
            Format::Unknown => f.write_str("unknown"),
        }
    }
}

/// A compression wrapper around a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// A zlib stream (joblib's default compressor).
    Zlib,
    /// gzip, one or more members.
    Gzip,
    /// bzip2, one or more streams.
    Bzip2,
    /// xz.
    Xz,
    /// The legacy `.lzma` ("alone") format joblib writes for `lzma`.
    Lzma,
    /// joblib < 0.10's `ZF` header followed by a zlib stream.
    JoblibZfile,
}

impl Codec {
    /// The codec's short name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Zlib => "zlib",
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::JoblibZfile => "joblib-zfile",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const SHOWN_NAME_BYTES: usize = 1024;

/// Caps a name for the report, so a pickle cannot make every finding carry megabytes.
fn shorten(text: &str) -> String {
    if text.len() <= SHOWN_NAME_BYTES {
        return text.to_string();
    }
    let mut end = SHOWN_NAME_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let short = shorten(&long);
        assert!(short.len() < 1100);
        assert!(short.ends_with("(2000 bytes)"));
        assert_eq!(shorten("os"), "os");
    }

    #[test]
    fn verdicts_follow_the_policy() {
        let policy = Policy::new();
        let ok = Finding::judged(&policy, "collections", "OrderedDict", "GLOBAL", 0);
        assert!(matches!(ok.decision, Verdict::Allowed { .. }));
        assert!(!ok.is_finding());
        let refused = Finding::judged(&policy, "mymodel", "Net", "GLOBAL", 0);
        assert_eq!(refused.decision, Verdict::NotAllowed);
        assert_eq!(refused.missing, vec!["mymodel.Net".to_string()]);
        let denied = Finding::judged(&policy, "os", "system", "GLOBAL", 0);
        assert!(matches!(denied.decision, Verdict::HardDenied { .. }));
        assert!(denied.missing.is_empty());
    }

    #[test]
    fn reports_serialize_to_json() {
        let report = FileReport {
            path: "x.pkl".into(),
            format: Format::Compressed {
                codec: Codec::Gzip,
                inner: Box::new(Format::Pickle),
            },
            streams: vec![StreamReport {
                member: None,
                globals: vec![Finding::unresolved("EXT1", 3, "unknown code".into())],
                error: Some(ScanError::TrailingData { offset: 9 }),
            }],
            error: None,
            concerns: Vec::new(),
        };
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["format"]["compressed"]["codec"], "gzip");
        assert_eq!(
            json["streams"][0]["globals"][0]["decision"]["verdict"],
            "unresolved"
        );
        assert_eq!(json["streams"][0]["error"]["kind"], "trailing_data");
        for verdict in [
            Verdict::Allowed { source: "x".into() },
            Verdict::NotAllowed,
            Verdict::HardDenied { reason: "x" },
            Verdict::Unresolved { why: "x".into() },
        ] {
            let json = serde_json::to_value(&verdict).unwrap();
            let word: Outcome = json["verdict"].as_str().unwrap().parse().unwrap();
            assert_eq!(word, verdict.outcome(), "one vocabulary");
        }
        assert!(report.has_findings());
        assert!(report.is_error());
    }
}
