//! Just enough of the zip format to reach each member's bytes: the end record (zip64 too), the
//! central directory, and each local header's name and extra lengths, as Python's `zipfile`
//! and torch's reader use them. Stored members are slices of the input, never copies, so a
//! mapped checkpoint is scanned in place.
//!
//! Written here rather than taken from the `zip` crate so that every offset and count read
//! from the file is bounds-checked against the mapped bytes and capped by the scan's limits,
//! and stored members need no reader or copy.

use crate::reader::Reader;
use crate::ScanError;

const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
const CENTRAL_HEADER: &[u8] = b"PK\x01\x02";
const END_RECORD: &[u8] = b"PK\x05\x06";
const END_RECORD_64: &[u8] = b"PK\x06\x06";
const END_LOCATOR_64: &[u8] = b"PK\x06\x07";
const END_RECORD_LEN: usize = 22;
const END_LOCATOR_64_LEN: usize = 20;
const END_RECORD_64_LEN: usize = 56;
const MAX_COMMENT: usize = 0xffff;

/// One member, as the central directory describes it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub method: u16,
    flags: u16,
    compressed_size: u64,
    /// Offset of the local header, already shifted by any bytes prepended to the archive.
    local_offset: u64,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// The central directory, and an error if it was cut short by a limit or damage.
pub(crate) struct Archive {
    pub entries: Vec<Entry>,
    pub error: Option<ScanError>,
    /// Bytes before the archive proper by the end record's count, which Python's `zipfile`
    /// adds to every offset and torch's reader (miniz) does not.
    pub shift: u64,
}

/// How the end record's offsets are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offsets {
    /// As Python's `zipfile` does (numpy, joblib, most tools): shifted by the bytes found
    /// between the central directory's recorded end and the end record.
    Shifted,
    /// As miniz, torch's `PyTorchStreamReader`, does: from the start of the file.
    Absolute,
}

fn bad(why: impl Into<String>) -> ScanError {
    ScanError::Zip { why: why.into() }
}

pub(crate) fn read(
    data: &[u8],
    max_members: usize,
    offsets: Offsets,
) -> Result<Archive, ScanError> {
    let end = find_end_record(data).ok_or_else(|| bad("no end of central directory record"))?;
    let mut r = Reader::new(data, end + 10);
    let short = |_| bad("the end of central directory record is cut short");
    r.u16().map_err(short)?; // entry count: the directory's size is what bounds the walk
    let mut cd_size: u64 = r.u32().map_err(short)?.into();
    let mut cd_offset: u64 = r.u32().map_err(short)?.into();
    // Where the central directory ends: the zip64 end record if there is one.
    let mut cd_end = end as u64;
    if let Some(record) = find_end_record_64(data, end) {
        let mut r = Reader::new(data, record + 32);
        let short = |_| bad("the zip64 end record is cut short");
        r.u64().map_err(short)?; // entry count
        cd_size = r.u64().map_err(short)?;
        cd_offset = r.u64().map_err(short)?;
        cd_end = record as u64;
    }
    // Bytes prepended to the archive (a self-extractor's stub) shift every offset, as Python's
    // zipfile allows.
    let found_shift = cd_end
        .checked_sub(cd_size)
        .and_then(|start| start.checked_sub(cd_offset));
    let shift = match offsets {
        Offsets::Shifted => found_shift
            .ok_or_else(|| bad("the central directory does not fit before its end record"))?,
        Offsets::Absolute => 0,
    };
    let cd_start = cd_offset.saturating_add(shift);
    let cd = usize::try_from(cd_start)
        .ok()
        .zip(usize::try_from(cd_start.saturating_add(cd_size)).ok())
        .and_then(|(start, end)| data.get(start..end))
        .ok_or_else(|| bad("the central directory lies outside the file"))?;

    let mut entries = Vec::new();
    let mut r = Reader::new(cd, 0);
    let mut error = None;
    // Python's zipfile reads each entry's name, extra field and comment from the directory's
    // bytes as far as they go, and walks entries while their declared lengths add up to less
    // than the directory's size: a comment length running past the directory ends the walk
    // after that entry (numpy.load still reads it). miniz takes only complete entries.
    let lenient = offsets == Offsets::Shifted;
    let mut declared: u64 = 0;
    while if lenient {
        declared < cd_size
    } else {
        !r.at_end()
    } {
        if entries.len() >= max_members {
            error = Some(ScanError::Limit {
                what: "the number of archive members",
                limit: max_members as u64,
                offset: cd_start + r.pos() as u64,
            });
            break;
        }
        match central_entry(&mut r, shift, lenient) {
            Ok((entry, len)) => {
                entries.push(entry);
                declared = declared.saturating_add(len);
            }
            Err(err) => {
                error = Some(err);
                break;
            }
        }
    }
    Ok(Archive {
        entries,
        error,
        shift: found_shift.unwrap_or(0),
    })
}

/// One central directory entry, and its length as its fields declare it. With `lenient`, the
/// name, extra field and comment are read as far as the directory goes (as `zipfile` does).
fn central_entry(r: &mut Reader<'_>, shift: u64, lenient: bool) -> Result<(Entry, u64), ScanError> {
    let short = |_| bad("a central directory entry is cut short");
    if r.take(4).map_err(short)? != CENTRAL_HEADER {
        return Err(bad("bad magic number for a central directory entry"));
    }
    r.take(4).map_err(short)?; // versions
    let flags = r.u16().map_err(short)?;
    let method = r.u16().map_err(short)?;
    r.take(8).map_err(short)?; // time, date, crc
    let mut compressed_size: u64 = r.u32().map_err(short)?.into();
    let mut size: u64 = r.u32().map_err(short)?.into();
    let name_len = r.u16().map_err(short)?;
    let extra_len = r.u16().map_err(short)?;
    let comment_len = r.u16().map_err(short)?;
    r.take(8).map_err(short)?; // disk, attributes
    let mut local_offset: u64 = r.u32().map_err(short)?.into();
    let mut field = |len: u16| {
        let len = u64::from(len);
        let len = if lenient { len.min(r.left()) } else { len };
        r.take(len).map_err(short)
    };
    let name = field(name_len)?;
    let extra = field(extra_len)?;
    field(comment_len)?;
    let declared = 46 + u64::from(name_len) + u64::from(extra_len) + u64::from(comment_len);

    // zip64 extra field: the 64-bit values, in this order, for each 32-bit field at its max.
    let mut fields = Reader::new(extra, 0);
    while let (Ok(id), Ok(len)) = (fields.u16(), fields.u16()) {
        let Ok(body) = fields.take(len.into()) else {
            break;
        };
        if id != 0x0001 {
            continue;
        }
        let mut body = Reader::new(body, 0);
        for field in [&mut size, &mut compressed_size, &mut local_offset] {
            if *field == u64::from(u32::MAX) {
                *field = body
                    .u64()
                    .map_err(|_| bad("a zip64 extra field is cut short"))?;
            }
        }
    }
    // The uncompressed size is read only because the zip64 fields after it depend on it.
    let _ = size;
    let entry = Entry {
        name: String::from_utf8_lossy(name).into_owned(),
        method,
        flags,
        compressed_size,
        local_offset: local_offset
            .checked_add(shift)
            .ok_or_else(|| bad("a member offset overflows"))?,
    };
    Ok((entry, declared))
}

/// The member's stored (possibly compressed) bytes, located through its local header.
pub(crate) fn raw_member<'a>(data: &'a [u8], entry: &Entry) -> Result<&'a [u8], ScanError> {
    if entry.flags & 1 != 0 {
        return Err(ScanError::Unsupported {
            what: format!("encrypted zip member `{}`", entry.name),
        });
    }
    let cut = |_| {
        bad(format!(
            "the local header of `{}` lies outside the file",
            entry.name
        ))
    };
    let start = usize::try_from(entry.local_offset).map_err(|_| cut(()))?;
    let mut r = Reader::new(data, start);
    if r.take(4).map_err(|_| cut(()))? != LOCAL_HEADER {
        return Err(bad(format!(
            "bad magic number for the local header of `{}`",
            entry.name
        )));
    }
    r.take(22).map_err(|_| cut(()))?;
    let name_len = r.u16().map_err(|_| cut(()))?;
    let extra_len = r.u16().map_err(|_| cut(()))?;
    r.take(u64::from(name_len) + u64::from(extra_len))
        .map_err(|_| cut(()))?;
    r.take(entry.compressed_size).map_err(|_| {
        bad(format!(
            "the data of `{}` runs past the end of the file",
            entry.name
        ))
    })
}

/// Like [`raw_member`], but a member whose data runs past the end of the file gives what is
/// there, with the error: Python's zipfile reads a member as a stream and its reader (numpy's
/// `pickle.load`) stops at the pickle's STOP, long before the missing bytes are missed.
pub(crate) fn raw_member_lenient<'a>(
    data: &'a [u8],
    entry: &Entry,
) -> Result<(&'a [u8], Option<ScanError>), ScanError> {
    match raw_member(data, entry) {
        Ok(raw) => Ok((raw, None)),
        Err(error) => {
            let full = Entry {
                compressed_size: 0,
                ..entry.clone()
            };
            // The header itself is sound when a zero-length body fits: keep what follows it.
            let start = raw_member(data, &full).map_err(|_| clone(&error))?;
            let offset = start.as_ptr() as usize - data.as_ptr() as usize;
            Ok((&data[offset..], Some(error)))
        }
    }
}

fn clone(error: &ScanError) -> ScanError {
    bad(error.to_string())
}

/// The last end record, searched backwards through the longest possible comment.
fn find_end_record(data: &[u8]) -> Option<usize> {
    let lowest = data.len().saturating_sub(END_RECORD_LEN + MAX_COMMENT);
    let top = data.len().checked_sub(END_RECORD_LEN)?;
    (lowest..=top)
        .rev()
        .find(|&at| data[at..].starts_with(END_RECORD))
}

/// The zip64 end record, found through the locator right before the end record.
fn find_end_record_64(data: &[u8], end: usize) -> Option<usize> {
    let locator = end.checked_sub(END_LOCATOR_64_LEN)?;
    if !data[locator..].starts_with(END_LOCATOR_64) {
        return None;
    }
    // Python's zipfile expects the record right before the locator; the locator's own offset
    // is the fallback.
    let before = locator.checked_sub(END_RECORD_64_LEN);
    if let Some(at) = before.filter(|&at| data[at..].starts_with(END_RECORD_64)) {
        return Some(at);
    }
    let mut r = Reader::new(data, locator + 8);
    let at = usize::try_from(r.u64().ok()?).ok()?;
    (at < locator && data[at..].starts_with(END_RECORD_64)).then_some(at)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored-only zip, for tests across the crate.
    pub(crate) fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body) in members {
            let offset = out.len() as u32;
            out.extend_from_slice(LOCAL_HEADER);
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(body);
            central.extend_from_slice(CENTRAL_HEADER);
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(END_RECORD);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_members_in_place() {
        let zip = stored_zip(&[("a/data.pkl", b"N."), ("a/data/0", b"\x00\x01")]);
        let archive = read(&zip, 10, Offsets::Shifted).unwrap();
        assert!(archive.error.is_none());
        assert_eq!(archive.entries.len(), 2);
        assert_eq!(archive.entries[0].name, "a/data.pkl");
        assert_eq!(raw_member(&zip, &archive.entries[0]).unwrap(), b"N.");
        assert_eq!(raw_member(&zip, &archive.entries[1]).unwrap(), b"\x00\x01");
    }

    /// One stored member, with every size, offset and count in zip64 fields.
    fn zip64(name: &str, body: &[u8]) -> Vec<u8> {
        let u16le = |v: u16| v.to_le_bytes();
        let u32le = |v: u32| v.to_le_bytes();
        let u64le = |v: u64| v.to_le_bytes();
        let mut out = b"PK\x03\x04".to_vec();
        out.extend_from_slice(&[45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&u32le(u32::MAX));
        out.extend_from_slice(&u32le(u32::MAX));
        out.extend_from_slice(&u16le(name.len() as u16));
        out.extend_from_slice(&u16le(20));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&u16le(1));
        out.extend_from_slice(&u16le(16));
        out.extend_from_slice(&u64le(body.len() as u64));
        out.extend_from_slice(&u64le(body.len() as u64));
        out.extend_from_slice(body);
        let cd_offset = out.len() as u64;
        let mut cd = CENTRAL_HEADER.to_vec();
        cd.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        cd.extend_from_slice(&u32le(u32::MAX));
        cd.extend_from_slice(&u32le(u32::MAX));
        cd.extend_from_slice(&u16le(name.len() as u16));
        cd.extend_from_slice(&u16le(28));
        cd.extend_from_slice(&[0; 10]); // comment length, disk, attributes
        cd.extend_from_slice(&u32le(u32::MAX));
        cd.extend_from_slice(name.as_bytes());
        cd.extend_from_slice(&u16le(1));
        cd.extend_from_slice(&u16le(24));
        cd.extend_from_slice(&u64le(body.len() as u64));
        cd.extend_from_slice(&u64le(body.len() as u64));
        cd.extend_from_slice(&u64le(0));
        out.extend_from_slice(&cd);
        let record_at = out.len() as u64;
        out.extend_from_slice(END_RECORD_64);
        out.extend_from_slice(&u64le(44));
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&u64le(1));
        out.extend_from_slice(&u64le(1));
        out.extend_from_slice(&u64le(cd.len() as u64));
        out.extend_from_slice(&u64le(cd_offset));
        out.extend_from_slice(END_LOCATOR_64);
        out.extend_from_slice(&u32le(0));
        out.extend_from_slice(&u64le(record_at));
        out.extend_from_slice(&u32le(1));
        out.extend_from_slice(END_RECORD);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&u16le(u16::MAX));
        out.extend_from_slice(&u16le(u16::MAX));
        out.extend_from_slice(&u32le(u32::MAX));
        out.extend_from_slice(&u32le(u32::MAX));
        out.extend_from_slice(&u16le(0));
        out
    }

    #[test]
    fn reads_zip64_records_and_extra_fields() {
        let zip = zip64("archive/data.pkl", b"\x80\x02N.");
        let archive = read(&zip, 10, Offsets::Shifted).unwrap();
        assert!(archive.error.is_none(), "{:?}", archive.error);
        assert_eq!(archive.entries.len(), 1);
        assert_eq!(
            raw_member(&zip, &archive.entries[0]).unwrap(),
            b"\x80\x02N."
        );
    }

    #[test]
    fn caps_the_member_count() {
        let zip = stored_zip(&[("a", b""), ("b", b""), ("c", b"")]);
        let archive = read(&zip, 2, Offsets::Shifted).unwrap();
        assert_eq!(archive.entries.len(), 2);
        assert!(matches!(archive.error, Some(ScanError::Limit { .. })));
    }

    #[test]
    fn prepended_bytes_shift_offsets() {
        let mut zip = b"#!stub\n".to_vec();
        zip.extend(stored_zip(&[("x.pkl", b"N.")]));
        let archive = read(&zip, 10, Offsets::Shifted).unwrap();
        assert_eq!(archive.shift, 7);
        assert_eq!(raw_member(&zip, &archive.entries[0]).unwrap(), b"N.");
        // miniz reads the same offsets from the start of the file, and misses.
        let absolute = read(&zip, 10, Offsets::Absolute);
        let misses = absolute.map_or(true, |archive| {
            archive
                .entries
                .first()
                .is_none_or(|entry| raw_member(&zip, entry).is_err())
        });
        assert!(misses);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let zip = stored_zip(&[("x.pkl", b"N.")]);
        for cut in 0..zip.len() {
            let _ = read(&zip[..cut], 10, Offsets::Shifted).map(|archive| {
                for entry in &archive.entries {
                    let _ = raw_member(&zip[..cut], entry);
                }
            });
        }
        let mut lying = zip.clone();
        let at = lying.len() - 6;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&lying, 10, Offsets::Shifted).is_err());
    }
}
