//! numpy's `.npy` format: magic, version, a Python-literal header, then the array. An array of
//! Python objects is stored as one pickle, which `np.load(allow_pickle=True)` unpickles.

use crate::reader::Reader;
use crate::ScanError;

/// Where the array data starts, and whether it is a pickle.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Npy {
    pub data_start: usize,
    pub pickled: bool,
}

pub(crate) fn parse(data: &[u8]) -> Result<Npy, ScanError> {
    let short = |_| ScanError::Npy {
        why: "the file ends inside the header",
    };
    let mut r = Reader::new(data, 6);
    let major = r.u8().map_err(short)?;
    r.u8().map_err(short)?;
    let header_len: u64 = match major {
        1 => r.u16().map_err(short)?.into(),
        2 | 3 => r.u32().map_err(short)?.into(),
        _ => {
            return Err(ScanError::Npy {
                why: "its version is not 1, 2 or 3",
            })
        }
    };
    let header = r.take(header_len).map_err(short)?;
    Ok(Npy {
        data_start: r.pos(),
        pickled: has_object_dtype(header),
    })
}

/// Whether the header's `descr` holds an object type string (`|O`, `O`, `<O8`, ...), alone or
/// as a field of a structured dtype: numpy then writes the array as a pickle.
fn has_object_dtype(header: &[u8]) -> bool {
    let mut rest = header;
    while let Some(open) = rest.iter().position(|&b| b == b'\'' || b == b'"') {
        let quote = rest[open];
        let after = &rest[open + 1..];
        let Some(close) = after.iter().position(|&b| b == quote) else {
            break;
        };
        if is_object_typestr(&after[..close]) {
            return true;
        }
        rest = &after[close + 1..];
    }
    false
}

fn is_object_typestr(text: &[u8]) -> bool {
    let text = match text {
        [b'<' | b'>' | b'|' | b'=', tail @ ..] => tail,
        _ => text,
    };
    matches!(text, [b'O', digits @ ..] if digits.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out
    }

    #[test]
    fn finds_object_arrays() {
        let object = npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n");
        assert_eq!(
            parse(&object).unwrap(),
            Npy {
                data_start: object.len(),
                pickled: true
            }
        );
        let floats = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n");
        assert!(!parse(&floats).unwrap().pickled);
        let fields =
            npy("{'descr': [('a', '<i8'), ('b', '|O')], 'fortran_order': False, 'shape': (), }\n");
        assert!(parse(&fields).unwrap().pickled);
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(parse(b"\x93NUMPY\x01").is_err());
        assert!(parse(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        assert!(parse(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{").is_err());
    }
}
