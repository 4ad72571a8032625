//! Scans any bytes: sniffs the format and either walks the pickles or descends into the archive
//! or compressed data, with a depth limit and one byte budget for everything taken out.

use std::collections::HashSet;

use pickleguard_policy::Policy;

use crate::detect::{sniff, Kind};
use crate::report::{Concern, ConcernKind, Format, StreamReport};
use crate::stream::{walk, Count, Walk};
use crate::text::is_dotted_identifier;
use crate::zip::Offsets;
use crate::{code, decompress, npy, tar, zip, Limits, ScanError, Verdict};

pub(crate) struct Ctx<'p> {
    pub policy: &'p Policy,
    pub limits: Limits,
    /// Bytes that may still be taken out of containers.
    pub budget: u64,
    pub streams: Vec<StreamReport>,
    /// Concerns found anywhere in the file.
    pub concerns: Vec<Concern>,
}

/// How the bytes were reached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'m> {
    /// The member path, `None` for the file itself.
    pub member: Option<&'m str>,
    /// Containers entered to get here.
    pub depth: usize,
    /// The member's name says pickle (`*.pkl`): scan it as one even if it does not look it.
    pub named_pickle: bool,
    /// joblib may have written it: step over joblib's inline array data.
    pub joblib: bool,
    /// The loader reads one pickle and no more (torch's `data.pkl`, `pickle.load`).
    pub one: bool,
}

impl<'p> Ctx<'p> {
    pub fn new(policy: &'p Policy, limits: Limits) -> Self {
        Ctx {
            policy,
            limits,
            budget: limits.max_decompressed,
            streams: Vec::new(),
            concerns: Vec::new(),
        }
    }

    /// Scans `data`; returns its format and why part of it could not be read, if so.
    pub fn scan(&mut self, data: &[u8], place: Place<'_>) -> (Format, Option<ScanError>) {
        match sniff(data) {
            Kind::Zip => self.zip(data, place),
            Kind::Npy => self.npy(data, place),
            Kind::Compressed(codec) => {
                if let Err(error) = self.enter(place) {
                    let format = Format::Compressed {
                        codec,
                        inner: Box::new(Format::Unknown),
                    };
                    return (format, Some(error));
                }
                let output =
                    decompress::decompress(codec, data, self.budget, self.limits.max_decompressed);
                self.budget -= output.data.len() as u64;
                let inner = Place {
                    depth: place.depth + 1,
                    ..place
                };
                let (format, inner_error) = self.scan(&output.data, inner);
                let format = Format::Compressed {
                    codec,
                    inner: Box::new(format),
                };
                (format, output.error.or(inner_error))
            }
            Kind::TorchLegacy => {
                let walk = walk(data, 0, Count::Exactly(5), false, self.policy, self.limits);
                self.push(place.member, walk);
                (Format::TorchLegacy, None)
            }
            Kind::Pickle => {
                let walk = self.walk_all(data, place);
                self.plain_reading(data, place, &walk);
                self.push(place.member, walk);
                (Format::Pickle, None)
            }
            Kind::MaybePickle => {
                let walk = self.walk_all(data, place);
                if place.named_pickle || looks_like_a_pickle(&walk) {
                    self.plain_reading(data, place, &walk);
                    self.push(place.member, walk);
                    (Format::Pickle, None)
                } else {
                    (Format::Unknown, None)
                }
            }
            Kind::SevenZip => {
                self.concern(
                    place.member,
                    None,
                    ConcernKind::Unscannable,
                    "a 7z archive: the scanner cannot open it, so the pickles it may hold are \
                     unchecked"
                        .into(),
                );
                (Format::SevenZip, None)
            }
            Kind::Safe(kind) => {
                // Another reading: bytes that also run as a pickle (a safetensors length with
                // 0x80 for its low byte is PROTO) are listed if they name any global.
                let walk = self.walk_all(data, place);
                if !walk.globals.is_empty() {
                    self.push(place.member, walk);
                }
                (Format::Safe { kind }, None)
            }
            Kind::Tar => self.tar(data, place),
            Kind::Unsupported(what) => {
                let error = ScanError::Unsupported {
                    what: what.to_string(),
                };
                (Format::Unknown, Some(error))
            }
            Kind::Unknown if place.named_pickle => {
                let walk = self.walk_all(data, place);
                self.push(place.member, walk);
                (Format::Pickle, None)
            }
            Kind::Unknown => (Format::Unknown, None),
        }
    }

    /// A joblib-style walk that broke may have broken on joblib's reading only: `pickle.load`
    /// reads the same file without stepping over array bytes and can reach globals joblib's
    /// reading never gets to. That reading is listed when it names globals the other does not
    /// (a file that reads cleanly as joblib is not read twice: its raw array bytes would only
    /// make noise as opcodes).
    fn plain_reading(&mut self, data: &[u8], place: Place<'_>, walk: &Walk) {
        if !place.joblib || walk.error.is_none() {
            return;
        }
        let count = if place.one { Count::One } else { Count::All };
        let plain = walk_plain(data, count, self.policy, self.limits);
        let new = plain.globals.iter().any(|g| {
            !walk
                .globals
                .iter()
                .any(|h| h.module == g.module && h.name == g.name)
        });
        if new {
            let label = format!(
                "{}[as pickle.load reads it]",
                place.member.map(|m| format!("{m} ")).unwrap_or_default()
            );
            self.streams.push(StreamReport {
                member: Some(label),
                globals: plain.globals,
                error: plain.error,
            });
        }
    }

    fn walk_all(&self, data: &[u8], place: Place<'_>) -> Walk {
        let count = if place.one { Count::One } else { Count::All };
        walk(data, 0, count, place.joblib, self.policy, self.limits)
    }

    fn push(&mut self, member: Option<&str>, mut walk: Walk) {
        for (offset, kind, detail) in walk.concerns {
            self.concern(member, Some(offset), kind, detail);
        }
        if let Some((offset, detail)) = walk.globals.iter().find_map(code::in_pickle) {
            self.concern(member, Some(offset), ConcernKind::Code, detail);
        }
        let file_reading = walk.file_reading.take();
        self.streams.push(StreamReport {
            member: member.map(str::to_string),
            globals: walk.globals,
            error: walk.error,
        });
        if let Some(file_reading) = file_reading {
            let label = format!(
                "{}[as CPython's file unpickler reads it]",
                member.map(|m| format!("{m} ")).unwrap_or_default()
            );
            self.streams.push(StreamReport {
                member: Some(label),
                globals: file_reading.globals,
                error: file_reading.error,
            });
        }
    }

    pub fn concern(
        &mut self,
        member: Option<&str>,
        offset: Option<u64>,
        kind: ConcernKind,
        detail: String,
    ) {
        self.concerns.push(Concern {
            member: member.map(str::to_string),
            offset,
            kind,
            detail,
        });
    }

    fn push_error(&mut self, member: &str, error: ScanError) {
        self.streams.push(StreamReport {
            member: Some(member.to_string()),
            globals: Vec::new(),
            error: Some(error),
        });
    }

    fn enter(&self, place: Place<'_>) -> Result<(), ScanError> {
        if place.depth >= self.limits.max_depth {
            return Err(ScanError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn take_budget(&mut self, len: u64) -> Result<(), ScanError> {
        if len > self.budget {
            return Err(ScanError::Limit {
                what: "the bytes taken out of containers",
                limit: self.limits.max_decompressed,
                offset: 0,
            });
        }
        self.budget -= len;
        Ok(())
    }

    /// A tar archive, and the same bytes as a pickle: `torch.load` reads a file as tar when
    /// `tarfile` accepts it and as a pickle when it does not, and the header's first bytes
    /// (a file name) can be a protocol-0 pickle, so both readings are scanned.
    fn tar(&mut self, data: &[u8], place: Place<'_>) -> (Format, Option<ScanError>) {
        // pickle.load reads one pickle; the rest of the header is not read.
        let walk = self.walk_all(data, Place { one: true, ..place });
        if looks_like_a_pickle(&walk) {
            self.push(place.member, walk);
        }
        if let Err(error) = self.enter(place) {
            return (Format::Tar, Some(error));
        }
        let (members, error) = tar::read(data, self.limits.max_members);
        for member in members {
            let path = match place.member {
                Some(outer) => format!("{outer}!/{}", member.name),
                None => member.name.clone(),
            };
            if let Err(error) = self.take_budget(member.data.len() as u64) {
                self.push_error(&path, error);
                break;
            }
            // torch's legacy tar members: `pickle` (the object), `storages` and `tensors`
            // (pickles between raw data), `sys_info`.
            let base = member.name.rsplit('/').next().unwrap_or_default();
            let inner = Place {
                member: Some(&path),
                depth: place.depth + 1,
                named_pickle: matches!(base, "pickle" | "sys_info" | "storages" | "tensors")
                    || base.ends_with(".pkl")
                    || base.ends_with(".pickle"),
                joblib: false,
                one: false,
            };
            let streams_before = self.streams.len();
            let (_format, error) = self.scan(member.data, inner);
            if let Some(error) = error {
                match self.streams[streams_before..]
                    .iter_mut()
                    .find(|s| s.member.as_deref() == Some(path.as_str()))
                {
                    Some(stream) => stream.error = Some(error),
                    None => self.push_error(&path, error),
                }
            }
        }
        (Format::Tar, error)
    }

    fn npy(&mut self, data: &[u8], place: Place<'_>) -> (Format, Option<ScanError>) {
        match npy::parse(data) {
            Ok(header) if header.pickled != Some(false) => {
                // np.load unpickles one object, with a plain unpickler.
                let mut walk = walk(
                    data,
                    header.data_start,
                    Count::One,
                    false,
                    self.policy,
                    self.limits,
                );
                if header.pickled.is_none() {
                    // The dtype may or may not hold objects: the data must read as a pickle
                    // (and is judged as one) or the file stays unresolved.
                    if walk.error.is_some() {
                        walk.error = Some(ScanError::Npy {
                            why: "the header's dtype cannot be read statically and the data \
                                  is not a pickle",
                        });
                    }
                }
                self.push(place.member, walk);
                (Format::Npy, None)
            }
            Ok(_) if place.member.is_none() => (Format::Safe { kind: "npy" }, None),
            Ok(_) => (Format::Npy, None),
            Err(error) => (Format::Npy, Some(error)),
        }
    }

    fn zip(&mut self, data: &[u8], place: Place<'_>) -> (Format, Option<ScanError>) {
        if let Err(error) = self.enter(place) {
            return (Format::Zip, Some(error));
        }
        let max = self.limits.max_members;
        let (archive, shifted_error) = match zip::read(data, max, Offsets::Shifted) {
            Ok(archive) => (Some(archive), None),
            Err(error) => (None, Some(error)),
        };
        let shift = archive.as_ref().map_or(0, |a| a.shift);
        if archive.is_some() && shift == 0 {
            // Both readers agree on every offset.
            let archive = archive.unwrap_or_else(|| unreachable!());
            let format = self.archive(data, &archive, place, "");
            return (format, archive.error);
        }
        // torch's reader (miniz) takes the end record's offsets from the start of the file,
        // Python's zipfile shifts them by the bytes it finds prepended: two readings, both
        // scanned, and the disagreement is itself a finding.
        let absolute = zip::read(data, max, Offsets::Absolute);
        match (&archive, &absolute) {
            (None, Err(_)) => return (Format::Zip, shifted_error),
            _ => self.concern(
                place.member,
                None,
                ConcernKind::ReadersDisagree,
                format!(
                    "the central directory is `{shift}` bytes away from where the end record \
                     puts it: Python's zipfile shifts every offset by that much, torch's reader \
                     (miniz) does not, so they read different members"
                ),
            ),
        }
        let mut format = Format::Zip;
        let mut error = shifted_error;
        if let Some(archive) = &archive {
            format = self.archive(data, archive, place, "");
            error = error.or(archive.error.as_ref().map(clone_error));
        }
        if let Ok(absolute) = &absolute {
            let torch_format = self.archive(data, absolute, place, "[as torch reads it] ");
            if archive.is_none() {
                format = torch_format;
            }
        }
        (format, error)
    }

    /// Scans the members of one reading of an archive; `label` prefixes their names.
    fn archive(
        &mut self,
        data: &[u8],
        archive: &zip::Archive,
        place: Place<'_>,
        label: &str,
    ) -> Format {
        let files: Vec<&zip::Entry> = archive.entries.iter().filter(|e| !e.is_dir()).collect();
        // Python's zipfile keeps the last entry of a name, miniz finds one by binary search:
        // an archive with a name twice is read differently by each.
        let mut names = HashSet::new();
        if let Some(twice) = files.iter().find(|e| !names.insert(e.name.as_str())) {
            self.concern(
                place.member,
                None,
                ConcernKind::ReadersDisagree,
                format!(
                    "the archive holds `{}` more than once: zip readers pick different copies",
                    twice.name
                ),
            );
        }
        let kind = code::classify(files.iter().map(|e| e.name.as_str()));
        // torch.save's archives: `<root>/data.pkl`, with raw tensor bytes under `<root>/data/`.
        let torch_roots: HashSet<&str> = files
            .iter()
            .filter_map(|e| e.name.strip_suffix("data.pkl"))
            .filter(|root| root.is_empty() || root.ends_with('/'))
            .collect();
        let format = if let Some(code) = &kind {
            self.concern(place.member, None, ConcernKind::Code, code.detail.clone());
            code.format.clone()
        } else if !torch_roots.is_empty() {
            Format::TorchZip
        } else if !files.is_empty() && files.iter().all(|e| e.name.ends_with(".npy")) {
            Format::Npz
        } else {
            Format::Zip
        };
        let torch = format != Format::Npz && format != Format::Zip;
        let streams_before = self.streams.len();
        for entry in files {
            if is_tensor_data(&entry.name, &torch_roots) {
                continue;
            }
            let path = match place.member {
                Some(outer) => format!("{outer}!/{label}{}", entry.name),
                None => format!("{label}{}", entry.name),
            };
            let inner = Place {
                member: Some(&path),
                depth: place.depth + 1,
                named_pickle: entry.name.ends_with(".pkl") || entry.name.ends_with(".pickle"),
                joblib: !torch,
                one: torch && entry.name.ends_with("data.pkl"),
            };
            self.member(data, entry, inner);
        }
        if let Some(code) = kind {
            // A packaged module that a pickle in the archive names is imported from the archive,
            // allowlisted or not.
            let shadowed = code::shadowed(
                &code.modules,
                self.streams[streams_before..]
                    .iter()
                    .flat_map(|s| &s.globals)
                    .filter_map(|g| g.module.as_deref()),
                self.policy,
            );
            for module in shadowed {
                self.concern(
                    place.member,
                    None,
                    ConcernKind::Code,
                    format!(
                        "the archive packages a module `{module}` that shadows the real one: \
                         torch.package imports it from the archive and runs its code"
                    ),
                );
            }
        }
        format
    }

    fn member(&mut self, archive: &[u8], entry: &zip::Entry, place: Place<'_>) {
        let path = place.member.unwrap_or_default();
        let (raw, cut) = match zip::raw_member_lenient(archive, entry) {
            Ok(found) => found,
            Err(error) => return self.push_error(path, error),
        };
        let streams_before = self.streams.len();
        let (_format, error) = match entry.method {
            0 => {
                // Only the members worth reading are charged: a sniff costs a few bytes.
                if sniff(raw) == Kind::Unknown && !place.named_pickle {
                    return;
                }
                if let Err(error) = self.take_budget(raw.len() as u64) {
                    return self.push_error(path, error);
                }
                self.scan(raw, place)
            }
            8 | 12 => {
                // A few bytes tell whether the member is worth inflating whole.
                let head = decompress::zip_member(entry.method, raw, SNIFF_BYTES, 0);
                if sniff(&head.data) == Kind::Unknown && !place.named_pickle {
                    return;
                }
                let output = decompress::zip_member(
                    entry.method,
                    raw,
                    self.budget,
                    self.limits.max_decompressed,
                );
                self.budget -= output.data.len() as u64;
                let (format, error) = self.scan(&output.data, place);
                (format, output.error.or(error))
            }
            method => {
                let error = ScanError::Unsupported {
                    what: format!(
                        "compression method `{method}` of zip member `{}`",
                        entry.name
                    ),
                };
                return self.push_error(path, error);
            }
        };
        if let Some(error) = cut.or(error) {
            // The member's own stream, if it has one, takes the container's error: a cap or a
            // broken compressed stream is the root cause of whatever the walker then hit.
            match self.streams[streams_before..]
                .iter_mut()
                .find(|s| s.member.as_deref() == Some(path))
            {
                Some(stream) => stream.error = Some(error),
                None => self.push_error(path, error),
            }
        }
    }
}

fn walk_plain(data: &[u8], count: Count, policy: &Policy, limits: Limits) -> Walk {
    walk(data, 0, count, false, policy, limits)
}

/// A copy of an archive-level error for a second reading (errors hold no `Clone` sources here).
fn clone_error(error: &ScanError) -> ScanError {
    ScanError::Zip {
        why: error.to_string(),
    }
}

/// Enough decompressed bytes to sniff any format, torch's legacy magic included.
const SNIFF_BYTES: u64 = 64;

/// Whether `name` lies under `<root>/data/` for a root holding a `data.pkl`: tensor storage,
/// which torch reads as raw bytes and never unpickles.
fn is_tensor_data(name: &str, roots: &HashSet<&str>) -> bool {
    name.match_indices("data/")
        .any(|(at, _)| (at == 0 || name.as_bytes()[at - 1] == b'/') && roots.contains(&name[..at]))
}

/// Text that starts with a protocol-0 opcode parses as a pickle for a few bytes at most. It is
/// taken for one if its first pickle ends properly, or if it names a global whose module could
/// import: the import alone runs the module's code, whatever the name (the pure-Python
/// unpickler resolves `module` with an empty name at the end of the data).
/// A module spelled with a stray control byte still reaches `find_class` (and the import
/// system), so any name without spaces or commas counts, not only identifiers: prose does not
/// pass, a damaged pickle does.
fn looks_like_a_pickle(walk: &Walk) -> bool {
    let plausible = |text: &str| !text.bytes().any(|b| b.is_ascii_whitespace() || b == b',');
    walk.first_complete
        || walk.globals.iter().any(|finding| {
            matches!(finding.decision, Verdict::Unresolved { .. })
                || finding.module.as_deref().is_some_and(is_dotted_identifier)
                || (finding
                    .module
                    .as_deref()
                    .is_some_and(|m| !m.is_empty() && plausible(m))
                    && finding.name.as_deref().is_some_and(plausible))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zip::tests::stored_zip;

    #[test]
    fn tensor_data_is_found_by_root() {
        let roots: HashSet<&str> = ["archive/", ""].into_iter().collect();
        assert!(is_tensor_data("archive/data/0", &roots));
        assert!(is_tensor_data("data/7", &roots));
        assert!(!is_tensor_data("archive/data.pkl", &roots));
        assert!(!is_tensor_data("other/data/0", &roots));
        assert!(!is_tensor_data("archive/mydata/0", &roots));
    }

    /// SP-13: `numpy.ndarray` is allowed as a reference only; REDUCE on it is refused by its
    /// rule, so the scan names it although the global itself is allowed. Fails if the scanner
    /// stops at the allowlist.
    #[test]
    fn rules_refuse_an_allowed_global_applied_directly() {
        let policy = Policy::new();
        let mut ctx = Ctx::new(&policy, Limits::default());
        let place = Place {
            member: None,
            depth: 0,
            named_pickle: false,
            joblib: true,
            one: false,
        };
        ctx.scan(b"\x80\x02cnumpy\nndarray\nK\x10\x85R.", place);
        assert_eq!(ctx.concerns.len(), 1, "{:?}", ctx.concerns);
        assert_eq!(ctx.concerns[0].kind, ConcernKind::Rule);
        // Referenced only (as `_reconstruct`'s argument), it is fine.
        let mut ctx = Ctx::new(&policy, Limits::default());
        ctx.scan(
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R.",
            place,
        );
        assert!(ctx.concerns.is_empty(), "{:?}", ctx.concerns);

        // A BUILD is judged against the global that made its target: `bytearray` may be called,
        // not given a state.
        let mut ctx = Ctx::new(&policy, Limits::default());
        ctx.scan(b"\x80\x02cbuiltins\nbytearray\n)R}b.", place);
        assert_eq!(ctx.concerns.len(), 1, "{:?}", ctx.concerns);
        assert!(
            ctx.concerns[0].detail.contains("Build"),
            "{:?}",
            ctx.concerns
        );
    }

    #[test]
    fn many_torch_roots_cost_linear_time() {
        let names: Vec<String> = (0..20_000).map(|i| format!("r{i}/data.pkl")).collect();
        let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"N."[..])).collect();
        let zip = stored_zip(&members);
        let policy = Policy::new();
        let mut ctx = Ctx::new(&policy, Limits::default());
        let started = std::time::Instant::now();
        let place = Place {
            member: None,
            depth: 0,
            named_pickle: false,
            joblib: true,
            one: false,
        };
        let (format, error) = ctx.scan(&zip, place);
        assert_eq!(format, Format::TorchZip);
        assert!(error.is_none());
        assert_eq!(ctx.streams.len(), 20_000);
        assert!(started.elapsed().as_secs() < 10);
    }
}
