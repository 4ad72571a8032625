//! Tells formats apart by their first bytes, as the loaders do: `torch.load` and `np.load` look
//! for a zip's local-header magic, joblib for its compressors' magic numbers.

use crate::opcodes;
use crate::report::Codec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Zip,
    Npy,
    Compressed(Codec),
    /// A container the scanner knows but cannot read: its contents stay unchecked.
    Unsupported(&'static str),
    /// A 7z archive: the scanner cannot open it (picklescan reads them).
    SevenZip,
    /// A tar archive `tarfile` accepts (by its header checksum); its first bytes may also read
    /// as a protocol-0 pickle, and both readings are scanned.
    Tar,
    /// A format with neither code nor pickles: `safetensors`, `gguf`, `onnx`.
    Safe(&'static str),
    /// A pickle whose first pickle is torch's magic number.
    TorchLegacy,
    /// Starts with PROTO: certainly meant as a pickle.
    Pickle,
    /// Starts with a protocol 0-1 opcode: a pickle, or text that happens to.
    MaybePickle,
    Unknown,
}

/// torch's `MAGIC_NUMBER`, 0x1950a86a20f9469cfc6c, as LONG1 writes it (little-endian).
const TORCH_MAGIC_LE: &[u8] = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19";
/// ... and as protocols 0-1 write it.
const TORCH_MAGIC_TEXT: &[u8] = b"L119547037146038801333356L\n";

pub(crate) fn sniff(data: &[u8]) -> Kind {
    match data {
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Kind::Zip,
        [0x93, b'N', b'U', b'M', b'P', b'Y', ..] => Kind::Npy,
        [0x1f, 0x8b, ..] => Kind::Compressed(Codec::Gzip),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Kind::Compressed(Codec::Xz),
        // joblib's lzma prefix; `]` then 0x00 is never a pickle (0x00 is no opcode).
        [b']', 0, ..] => Kind::Compressed(Codec::Lzma),
        [b'Z', b'F', b'0', b'x', ..] => Kind::Compressed(Codec::JoblibZfile),
        // joblib tries zlib on any leading `x` (no opcode); a valid zlib header keeps text out.
        [b'x', flags, ..] if (0x7800 + u16::from(*flags)) % 31 == 0 => {
            Kind::Compressed(Codec::Zlib)
        }
        // joblib's lz4 compressor, and zstd.
        [0x04, 0x22, 0x4d, 0x18, ..] => Kind::Unsupported("lz4-compressed data"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Kind::Unsupported("zstd-compressed data"),
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => Kind::SevenZip,
        [b'G', b'G', b'U', b'F', ..] => Kind::Safe("gguf"),
        // Before PROTO: a header length whose low byte is 0x80 looks like one.
        _ if is_safetensors(data) => Kind::Safe("safetensors"),
        [b'B', b'Z', b'h', b'1'..=b'9', rest @ ..]
            if rest.starts_with(b"1AY&SY") || rest.starts_with(b"\x17rE8P\x90") =>
        {
            Kind::Compressed(Codec::Bzip2)
        }
        _ if is_torch_legacy(data) => Kind::TorchLegacy,
        // torch < 0.4 saved tar archives, and torch.load still tries tarfile first; a tar
        // header starts with a file name, which can also read as a protocol-0 pickle.
        _ if crate::tar::is_header(data) => Kind::Tar,
        [opcodes::PROTO, protocol, ..] if *protocol <= opcodes::HIGHEST_PROTOCOL => Kind::Pickle,
        [first, ..] if opcodes::name(*first).is_some() => Kind::MaybePickle,
        _ if is_onnx(data) => Kind::Safe("onnx"),
        _ => Kind::Unknown,
    }
}

/// A safetensors file: an 8-byte little-endian header length, then that many bytes of JSON
/// object (the library caps headers at 100 MB).
fn is_safetensors(data: &[u8]) -> bool {
    let Some(len) = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    else {
        return false;
    };
    if !(2..=100_000_000).contains(&len) || data.get(8) != Some(&b'{') {
        return false;
    }
    let Some(header) = usize::try_from(len)
        .ok()
        .and_then(|len| data.get(8..8 + len))
    else {
        return false;
    };
    matches!(
        serde_json::from_slice::<serde_json::Value>(header),
        Ok(serde_json::Value::Object(_))
    )
}

/// An ONNX `ModelProto`: protobuf field 1 (`ir_version`, a small varint), then one of the
/// model's other fields. ONNX has no magic number; this reads the way every exporter starts.
fn is_onnx(data: &[u8]) -> bool {
    matches!(
        data,
        [
            0x08,
            1..=15,
            0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42,
            ..
        ]
    )
}

/// Whether the first pickle is exactly torch's magic number, as `_legacy_save` writes it.
fn is_torch_legacy(data: &[u8]) -> bool {
    let mut rest = data;
    if let [opcodes::PROTO, _, tail @ ..] = rest {
        rest = tail;
    }
    if let [opcodes::FRAME, tail @ ..] = rest {
        rest = tail.get(8..).unwrap_or(&[]);
    }
    [TORCH_MAGIC_LE, TORCH_MAGIC_TEXT].iter().any(|magic| {
        rest.strip_prefix(*magic)
            .is_some_and(|tail| tail.first() == Some(&opcodes::STOP))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(sniff(b"\x93NUMPY\x01\x00"), Kind::Npy);
        assert_eq!(sniff(b"\x1f\x8b\x08"), Kind::Compressed(Codec::Gzip));
        assert_eq!(sniff(b"BZh91AY&SYxx"), Kind::Compressed(Codec::Bzip2));
        assert_eq!(sniff(b"BZh9\x17rE8P\x90"), Kind::Compressed(Codec::Bzip2));
        assert_eq!(
            sniff(b"BZ\x00\x00"),
            Kind::MaybePickle,
            "BINBYTES, not bzip2"
        );
        assert_eq!(sniff(b"]\x00\x00\x80\x00"), Kind::Compressed(Codec::Lzma));
        assert_eq!(sniff(b"]q\x00"), Kind::MaybePickle);
        assert_eq!(sniff(b"x\x9c"), Kind::Compressed(Codec::Zlib));
        assert_eq!(sniff(b"x\x01"), Kind::Compressed(Codec::Zlib));
        assert_eq!(sniff(b"xyz"), Kind::Unknown);
        assert_eq!(sniff(b"ZF0x10"), Kind::Compressed(Codec::JoblibZfile));
        assert_eq!(
            sniff(b"\x04\x22\x4d\x18"),
            Kind::Unsupported("lz4-compressed data")
        );
        // A tar is known by its header checksum, not by `ustar`.
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Kind::Unknown);
        tar[..2].copy_from_slice(b"\x80\x04");
        assert_eq!(sniff(&tar), Kind::Pickle);
        assert_eq!(
            sniff(&crate::tar::tests::tar(&[("cos\nsystem\n.", b"")])),
            Kind::Tar
        );
        assert_eq!(sniff(b"7z\xbc\xaf\x27\x1c\x00\x04"), Kind::SevenZip);
        assert_eq!(sniff(b"GGUF\x03\x00\x00\x00"), Kind::Safe("gguf"));
        assert_eq!(sniff(b"\x08\x07\x12\x07pytorch"), Kind::Safe("onnx"));
        // SP-3: a safetensors header of 0x180 bytes starts with 0x80 0x01, like PROTO 1.
        let mut st = 0x180u64.to_le_bytes().to_vec();
        let mut header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.to_vec();
        header.resize(0x180, b' ');
        st.extend_from_slice(&header);
        st.extend_from_slice(&[0; 4]);
        assert_eq!(sniff(&st), Kind::Safe("safetensors"));
        assert_eq!(sniff(b"\x80\x05\x95"), Kind::Pickle);
        assert_eq!(sniff(b"\x80\x06"), Kind::MaybePickle);
        assert_eq!(sniff(b"(dp0\n"), Kind::MaybePickle);
        assert_eq!(sniff(b"hello"), Kind::MaybePickle);
        assert_eq!(sniff(b"\x00\x01"), Kind::Unknown);
        assert_eq!(sniff(b""), Kind::Unknown);
    }

    #[test]
    fn recognises_torch_legacy_magic_at_every_protocol() {
        assert_eq!(
            sniff(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03."),
            Kind::TorchLegacy
        );
        assert_eq!(
            sniff(b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."),
            Kind::TorchLegacy
        );
        assert_eq!(sniff(b"L119547037146038801333356L\n."), Kind::TorchLegacy);
        assert_eq!(
            sniff(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x18."),
            Kind::Pickle
        );
    }
}
