//! Tar archives as Python's `tarfile` reads them (torch < 0.4 saved its checkpoints as tar, and
//! `torch.load` still opens any file that `tarfile` accepts): a 512-byte header per member,
//! recognised by its checksum rather than by a magic string, then the data padded to 512.
//! GNU long names (`L`) and pax headers (`x`, `g`) are followed for names only.

use crate::ScanError;

const BLOCK: usize = 512;

/// One member's name and bytes (a slice of the input).
pub(crate) struct Member<'a> {
    pub name: String,
    pub data: &'a [u8],
}

/// Whether `header` is a tar header `tarfile` accepts: its checksum field matches the sum of
/// its bytes (with the field itself as spaces), unsigned or signed.
pub(crate) fn is_header(header: &[u8]) -> bool {
    let Some(header) = header.get(..BLOCK) else {
        return false;
    };
    if header.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = octal(&header[148..156]) else {
        return false;
    };
    let spaces = 8 * u64::from(b' ');
    let unsigned: u64 = header[..148]
        .iter()
        .chain(&header[156..])
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + spaces;
    let signed: i64 = header[..148]
        .iter()
        .chain(&header[156..])
        .map(|&b| i64::from(b as i8))
        .sum::<i64>()
        + spaces as i64;
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// `tarfile.nti`: an octal number, NUL or space terminated, or base-256 with a leading 0x80.
fn octal(field: &[u8]) -> Option<u64> {
    if field.first() == Some(&0x80) {
        return field[1..]
            .iter()
            .try_fold(0u64, |acc, &b| acc.checked_mul(256)?.checked_add(b.into()));
    }
    let text = field.split(|&b| b == 0).next().unwrap_or(field);
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The regular members, in order, and the error that stopped the walk, if any.
pub(crate) fn read(data: &[u8], max_members: usize) -> (Vec<Member<'_>>, Option<ScanError>) {
    let bad = |why: String| Some(ScanError::Unsupported { what: why });
    let mut members = Vec::new();
    let mut pos = 0usize;
    let mut long_name: Option<String> = None;
    while let Some(header) = data.get(pos..pos + BLOCK) {
        if header.iter().all(|&b| b == 0) {
            // End of archive.
            return (members, None);
        }
        if !is_header(header) {
            return (
                members,
                bad(format!("tar header at offset `{pos}` (bad checksum)")),
            );
        }
        if members.len() >= max_members {
            return (
                members,
                Some(ScanError::Limit {
                    what: "the number of archive members",
                    limit: max_members as u64,
                    offset: pos as u64,
                }),
            );
        }
        let Some(size) = octal(&header[124..136]) else {
            return (members, bad(format!("tar member size at offset `{pos}`")));
        };
        let start = pos + BLOCK;
        let Some(body) = usize::try_from(size)
            .ok()
            .and_then(|size| data.get(start..start.checked_add(size)?))
        else {
            return (
                members,
                Some(ScanError::Zip {
                    why: format!("the tar member at offset `{pos}` runs past the end of the file"),
                }),
            );
        };
        let mut name = cstr(&header[..100]);
        if &header[257..262] == b"ustar" {
            let prefix = cstr(&header[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        match header[156] {
            b'L' => long_name = Some(cstr(body)),
            b'0' | 0 | b'7' => members.push(Member {
                name: long_name.take().unwrap_or(name),
                data: body,
            }),
            _ => long_name = None,
        }
        pos = start + body.len().div_ceil(BLOCK) * BLOCK;
    }
    (members, None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar archive of regular files, for tests.
    pub(crate) fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, body) in members {
            let mut header = [0u8; BLOCK];
            header[..name.len()].copy_from_slice(name.as_bytes());
            header[100..107].copy_from_slice(b"0000644");
            header[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
            header[156] = b'0';
            header[257..263].copy_from_slice(b"ustar\0");
            header[263..265].copy_from_slice(b"00");
            header[148..156].copy_from_slice(b"        ");
            let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
            header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(body);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    #[test]
    fn reads_members() {
        let data = tar(&[("pickle", b"cos\nsystem\n."), ("tensors", &[1; 700])]);
        assert!(is_header(&data));
        let (members, error) = read(&data, 10);
        assert!(error.is_none());
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].name, "pickle");
        assert_eq!(members[0].data, b"cos\nsystem\n.");
        assert_eq!(members[1].data.len(), 700);
        let (members, error) = read(&data[..1600], 10);
        assert!(members.len() == 1 && error.is_some());
        assert!(!is_header(&[0; 512]));
    }
}
