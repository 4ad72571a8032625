//! Decompression with a hard cap on the output. Declared sizes are never trusted: decoders run
//! as streams and stop once the cap is passed, so a bomb costs at most the cap.

use std::io::{self, Read};

use crate::report::Codec;
use crate::ScanError;

/// Decompressed bytes, and why they stop short if they do. The bytes before a failure are
/// kept: loaders unpickle them before they hit the failure too.
pub(crate) struct Output {
    pub data: Vec<u8>,
    pub error: Option<ScanError>,
}

/// The most memory liblzma may use for its dictionary and state (xz -9 needs 65 MiB); a file
/// asking for more is reported, not decoded.
const LZMA_MEMLIMIT: u64 = 512 << 20;

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
        Codec::Xz => {
            match xz2::stream::Stream::new_stream_decoder(LZMA_MEMLIMIT, xz2::stream::CONCATENATED)
            {
                Ok(stream) => read_capped(
                    xz2::read::XzDecoder::new_stream(data, stream),
                    cap,
                    &mut out,
                ),
                Err(err) => Err(Stop::Decode(err.into())),
            }
        }
        Codec::Lzma => match xz2::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT) {
            Ok(stream) => read_capped(
                xz2::read::XzDecoder::new_stream(data, stream),
                cap,
                &mut out,
            ),
            Err(err) => Err(Stop::Decode(err.into())),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

    fn packed(codec: Codec, data: &[u8]) -> Vec<u8> {
        match codec {
            Codec::Zlib => zlib(data),
            Codec::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            }
            Codec::Bzip2 => {
                let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            }
            Codec::Xz | Codec::Lzma => {
                let options = xz2::stream::LzmaOptions::new_preset(1).unwrap();
                let stream = if codec == Codec::Xz {
                    xz2::stream::Stream::new_easy_encoder(1, xz2::stream::Check::None).unwrap()
                } else {
                    xz2::stream::Stream::new_lzma_encoder(&options).unwrap()
                };
                let mut enc = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            }
            Codec::JoblibZfile => [b"ZF0x0                ".as_slice(), &zlib(data)].concat(),
        }
    }

    const ALL: [Codec; 6] = [
        Codec::Zlib,
        Codec::Gzip,
        Codec::Bzip2,
        Codec::Xz,
        Codec::Lzma,
        Codec::JoblibZfile,
    ];

    #[test]
    fn every_codec_round_trips_and_stops_at_the_cap() {
        for codec in ALL {
            let out = decompress(codec, &packed(codec, b"\x80\x04N."), 100, 100);
            assert_eq!(out.data, b"\x80\x04N.", "{codec}");
            assert!(out.error.is_none(), "{codec}: {:?}", out.error);

            let bomb = packed(codec, &vec![0u8; 32 << 20]);
            let out = decompress(codec, &bomb, 1 << 20, 1 << 20);
            assert_eq!(out.data.len(), 1 << 20, "{codec}");
            assert!(
                matches!(out.error, Some(ScanError::Limit { .. })),
                "{codec}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in ALL {
            let out = decompress(codec, b"\x00\x01\x02 not compressed at all", 100, 100);
            assert!(out.error.is_some(), "{codec}");
        }
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
