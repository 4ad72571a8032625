//! Decompression with a hard cap on the output. Declared sizes are never trusted: decoders run
//! as streams and stop once the cap is passed, so a bomb costs at most the cap.

use std::io::{self, Read, Write};

use crate::report::Codec;
use crate::ScanError;

/// Decompressed bytes, and why they stop short if they do. The bytes before a failure are
/// kept: loaders unpickle them before they hit the failure too.
pub(crate) struct Output {
    pub data: Vec<u8>,
    pub error: Option<ScanError>,
}

/// joblib < 0.10's zfile header: `ZF`, the length in hex padded to 19 bytes, an optional space.
const ZFILE_HEADER: usize = 2 + 19;

/// Decompresses at most `cap` bytes; `limit` is the configured limit, for the message.
pub(crate) fn decompress(codec: Codec, data: &[u8], cap: u64, limit: u64) -> Output {
    let mut out = Vec::new();
    let result = match codec {
        Codec::Zlib => read_capped(flate2::read::ZlibDecoder::new(data), cap, &mut out),
        Codec::Gzip => read_capped(flate2::read::MultiGzDecoder::new(data), cap, &mut out),
        Codec::Bzip2 => read_capped(bzip2::read::MultiBzDecoder::new(data), cap, &mut out),
        Codec::JoblibZfile => {
            let body = data.get(ZFILE_HEADER..).unwrap_or_default();
            let body = body.strip_prefix(b" ").unwrap_or(body);
            read_capped(flate2::read::ZlibDecoder::new(body), cap, &mut out)
        }
        Codec::Xz | Codec::Lzma => {
            let mut writer = CappedWriter {
                out: &mut out,
                cap,
                over: false,
            };
            let mut input = data;
            let result = if codec == Codec::Xz {
                lzma_rs::xz_decompress(&mut input, &mut writer)
            } else {
                let options = lzma_rs::decompress::Options {
                    // The dictionary never needs to outgrow the output we accept.
                    memlimit: Some(usize::try_from(cap).unwrap_or(usize::MAX)),
                    ..Default::default()
                };
                lzma_rs::lzma_decompress_with_options(&mut input, &mut writer, &options)
            };
            let over = writer.over;
            match result {
                Ok(()) => Ok(()),
                Err(_) if over => Err(Stop::Cap),
                Err(lzma_rs::error::Error::IoError(err)) => Err(Stop::Decode(err)),
                Err(err) => Err(Stop::Decode(io::Error::new(
                    io::ErrorKind::InvalidData,
                    err.to_string(),
                ))),
            }
        }
    };
    let error = match result {
        Ok(()) => None,
        Err(Stop::Cap) => Some(ScanError::Limit {
            what: "the bytes taken out of containers",
            limit,
            offset: out.len() as u64,
        }),
        Err(Stop::Decode(source)) => Some(ScanError::Decompress {
            codec: codec.name(),
            source,
        }),
    };
    Output { data: out, error }
}

/// Decompresses one zip member with `method` (8: deflate, 12: bzip2).
pub(crate) fn zip_member(method: u16, data: &[u8], cap: u64, limit: u64) -> Output {
    let mut out = Vec::new();
    let result = match method {
        8 => read_capped(flate2::read::DeflateDecoder::new(data), cap, &mut out),
        _ => read_capped(bzip2::read::BzDecoder::new(data), cap, &mut out),
    };
    let error = match result {
        Ok(()) => None,
        Err(Stop::Cap) => Some(ScanError::Limit {
            what: "the bytes taken out of containers",
            limit,
            offset: out.len() as u64,
        }),
        Err(Stop::Decode(source)) => Some(ScanError::Decompress {
            codec: if method == 8 { "deflate" } else { "bzip2" },
            source,
        }),
    };
    Output { data: out, error }
}

enum Stop {
    Cap,
    Decode(io::Error),
}

fn read_capped(reader: impl Read, cap: u64, out: &mut Vec<u8>) -> Result<(), Stop> {
    // One byte past the cap tells "exactly the cap" from "more than the cap".
    reader
        .take(cap.saturating_add(1))
        .read_to_end(out)
        .map_err(Stop::Decode)?;
    if out.len() as u64 > cap {
        out.truncate(cap as usize);
        return Err(Stop::Cap);
    }
    Ok(())
}

struct CappedWriter<'a> {
    out: &'a mut Vec<u8>,
    cap: u64,
    over: bool,
}

impl Write for CappedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.out.len() as u64);
        if buf.len() as u64 > room {
            self.out.extend_from_slice(&buf[..room as usize]);
            self.over = true;
            return Err(io::Error::other("output cap reached"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn decompresses_within_the_cap() {
        let packed = zlib(b"hello world");
        let out = decompress(Codec::Zlib, &packed, 100, 100);
        assert_eq!(out.data, b"hello world");
        assert!(out.error.is_none());
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let packed = zlib(&vec![0u8; 10 << 20]);
        assert!(packed.len() < 64 << 10);
        let out = decompress(Codec::Zlib, &packed, 1 << 20, 1 << 20);
        assert_eq!(out.data.len(), 1 << 20);
        assert!(matches!(out.error, Some(ScanError::Limit { .. })));
    }

    #[test]
    fn truncated_input_keeps_what_came_before() {
        let packed = zlib(&[7u8; 100_000]);
        let out = decompress(Codec::Zlib, &packed[..packed.len() / 2], 1 << 20, 1 << 20);
        assert!(matches!(out.error, Some(ScanError::Decompress { .. })));
    }

    #[test]
    fn zfile_skips_its_header() {
        let mut file = b"ZF0xb                ".to_vec();
        assert_eq!(file.len(), ZFILE_HEADER);
        file.extend(zlib(b"hello world"));
        let out = decompress(Codec::JoblibZfile, &file, 100, 100);
        assert_eq!(out.data, b"hello world");
    }
}
