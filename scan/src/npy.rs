//! numpy's `.npy` format: magic, version, a Python-literal header, then the array. An array of
//! Python objects is stored as one pickle, which `np.load(allow_pickle=True)` unpickles.

use crate::literal::{self, Lit};
use crate::reader::Reader;
use crate::ScanError;

/// Where the array data starts, and whether `np.load(allow_pickle=True)` unpickles it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Npy {
    pub data_start: usize,
    /// `Some(true)`: the dtype holds objects, the data is a pickle. `None`: the scanner cannot
    /// tell what the dtype is, so the data may be one.
    pub pickled: Option<bool>,
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
    // Versions 1 and 2 are latin-1, version 3 is utf-8.
    let text: String = if major == 3 {
        String::from_utf8(header.to_vec()).map_err(|_| ScanError::Npy {
            why: "a version 3 header is not utf-8",
        })?
    } else {
        header.iter().map(|&b| char::from(b)).collect()
    };
    // numpy retries a header written by Python 2 without its `L` suffixes.
    let lit = literal::parse(&text, false)
        .or_else(|| (major < 3).then(|| literal::parse(&text, true)).flatten())
        .ok_or(ScanError::Npy {
            why: "the header is not a Python literal",
        })?;
    let Lit::Dict(pairs) = lit else {
        return Err(ScanError::Npy {
            why: "the header is not a dict",
        });
    };
    let mut keys: Vec<&str> = Vec::new();
    let mut descr = None;
    for (key, value) in &pairs {
        match key {
            Lit::Str(key) => keys.push(key),
            _ => {
                return Err(ScanError::Npy {
                    why: "the header has a key that is not a str",
                })
            }
        }
        if matches!(key, Lit::Str(k) if k == "descr") {
            descr = Some(value);
        }
    }
    keys.sort_unstable();
    if keys != ["descr", "fortran_order", "shape"] {
        return Err(ScanError::Npy {
            why: "the header's keys are not `descr`, `fortran_order` and `shape`",
        });
    }
    Ok(Npy {
        data_start: r.pos(),
        pickled: descr.map_or(Some(false), |descr| holds_objects(descr, 0)),
    })
}

/// Whether numpy's `descr_to_dtype` makes a dtype with `hasobject` from `descr`. `None` when
/// the scanner cannot tell.
fn holds_objects(descr: &Lit, depth: usize) -> Option<bool> {
    if depth > 32 {
        return None;
    }
    match descr {
        Lit::Str(typestr) => typestr_objects(typestr),
        // numpy.dtype accepts bytes too; descr_to_dtype would fail on them, but a guess that
        // errs towards "objects" costs only a scan.
        Lit::Bytes(bytes) => std::str::from_utf8(bytes).ok().and_then(typestr_objects),
        // `(base, shape)`: a subarray of `base`.
        Lit::Tuple(items) => items
            .first()
            .map_or(Some(false), |base| holds_objects(base, depth + 1)),
        // Structured: `(name, descr)` or `(name, descr, shape)` per field.
        Lit::List(fields) => {
            let mut answer = Some(false);
            for field in fields {
                let part = match field {
                    Lit::Tuple(items) | Lit::List(items) if (2..=3).contains(&items.len()) => {
                        holds_objects(&items[1], depth + 1)
                    }
                    _ => None,
                };
                answer = crate::value::any_object(answer, part);
            }
            answer
        }
        _ => None,
    }
}

/// Whether `numpy.dtype(typestr)` holds objects: any `O` (`|O`, `O8`, `i4,O`, `(2,)O`) or the
/// name `object`. Names made of other letters (`float64`, `<i4`, `M8[ns]`, `bool`) do not.
fn typestr_objects(typestr: &str) -> Option<bool> {
    let plain = typestr.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'<' | b'>' | b'|' | b'=' | b'[' | b']' | b',' | b'(' | b')' | b' ' | b'_'
            )
    });
    if !plain {
        return None;
    }
    Some(typestr.contains('O') || typestr.to_ascii_lowercase().contains("object"))
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
                pickled: Some(true)
            }
        );
        let floats = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n");
        assert_eq!(parse(&floats).unwrap().pickled, Some(false));
        let fields =
            npy("{'descr': [('a', '<i8'), ('b', '|O')], 'fortran_order': False, 'shape': (), }\n");
        assert_eq!(parse(&fields).unwrap().pickled, Some(true));
    }

    /// SP-1: numpy reads the header with `ast.literal_eval`, so an escaped `O` is an object
    /// dtype. Fails if the scanner matches quoted bytes instead of decoding the literal.
    #[test]
    fn escaped_type_strings_are_decoded() {
        for header in [
            "{'descr': '\\x4f', 'fortran_order': False, 'shape': (1,), }\n",
            "{'descr': u'|\\u004f', 'fortran_order': False, 'shape': (1,), }\n",
            "{'descr': '|' 'O', 'fortran_order': False, 'shape': (1,), }\n",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': 'O'}\n",
            "{'descr': [('a', 'i4'), ('b', '\\117', (2,))], 'fortran_order': False, 'shape': (1,)}",
            "{'descr': 'i4,O', 'fortran_order': False, 'shape': (1,)}",
            "{'descr': 'object', 'fortran_order': False, 'shape': (1,)}",
        ] {
            assert_eq!(parse(&npy(header)).unwrap().pickled, Some(true), "{header}");
        }
        let unknown =
            npy("{'descr': '\\N{LATIN CAPITAL LETTER O}', 'fortran_order': False, 'shape': (1,)}");
        assert_eq!(parse(&unknown).unwrap().pickled, None);
        let plain = npy("{'descr': [('O', '<f4')], 'fortran_order': False, 'shape': (1,)}");
        assert_eq!(parse(&plain).unwrap().pickled, Some(false));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(parse(b"\x93NUMPY\x01").is_err());
        assert!(parse(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        assert!(parse(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{").is_err());
        assert!(parse(&npy("{'descr': 'O'}")).is_err());
        assert!(parse(&npy("['descr', 'fortran_order', 'shape']")).is_err());
    }
}
