//! Turns opcode arguments into values the way CPython's unpicklers read them. Where `_pickle`
//! and `pickle._Unpickler` differ, the more permissive reading wins: the scanner must never give
//! up on bytes that one of them would go on loading.

use crate::value::Value;

const NON_ASCII_BYTES: &str =
    "is a non-ascii protocol 0-2 byte string: its text depends on the unpickler's encoding";
const ESCAPED: &str = "is a protocol-0 string with escape sequences";
const BAD_UTF8: &str = "is not valid utf-8 (the unpickler may still read it with surrogatepass)";

/// The payload of BINSTRING or SHORT_BINSTRING: `str` under the default `ASCII` encoding.
pub(crate) fn ascii_text(bytes: &[u8]) -> Value<'_> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8.
        std::str::from_utf8(bytes).map_or(Value::Text(NON_ASCII_BYTES), Value::Str)
    } else {
        Value::Text(NON_ASCII_BYTES)
    }
}

/// The argument of STRING: a quoted Python literal with escapes. Errs like CPython when the
/// quotes are missing.
pub(crate) fn quoted(line: &[u8]) -> Result<Value<'_>, &'static str> {
    match line {
        [first, inner @ .., last] if first == last && (*first == b'\'' || *first == b'"') => {
            Ok(if inner.contains(&b'\\') {
                Value::Text(ESCAPED)
            } else {
                ascii_text(inner)
            })
        }
        _ => Err("needs a quoted argument"),
    }
}

/// The argument of UNICODE: raw-unicode-escape, that is latin-1 with `\uXXXX` escapes.
pub(crate) fn raw_unicode(line: &[u8]) -> Value<'_> {
    if line.contains(&b'\\') {
        Value::Text(ESCAPED)
    } else if line.is_ascii() {
        ascii_text(line)
    } else {
        Value::Text("is a non-ascii protocol-0 unicode string (read as latin-1)")
    }
}

/// The payload of BINUNICODE and friends: checked as UTF-8 only when its text is needed.
#[inline(always)]
pub(crate) fn utf8(bytes: &[u8]) -> Value<'_> {
    Value::Utf8(bytes)
}

/// The text of a BINUNICODE payload, or why there is none.
pub(crate) fn checked_utf8(bytes: &[u8]) -> Result<&str, &'static str> {
    std::str::from_utf8(bytes).map_err(|_| BAD_UTF8)
}

/// A GET or PUT index, as `PyLong_FromString(line, NULL, 10)` reads the C string `_pickle`
/// copies the line into: it ends at the first NUL, may have surrounding whitespace, a sign, and
/// underscores between digits. `None` where CPython raises.
pub(crate) fn memo_index(line: &[u8]) -> Option<i64> {
    let line = line.split(|&b| b == 0).next().unwrap_or(line);
    let text = trim_ascii_space(line);
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.first().is_none_or(|b| !b.is_ascii_digit())
        || digits.last().is_none_or(|b| !b.is_ascii_digit())
    {
        return None;
    }
    let mut value: i64 = 0;
    let mut previous_underscore = false;
    for &byte in digits {
        if byte == b'_' {
            if previous_underscore {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        previous_underscore = false;
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(byte - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// The argument of INT or LONG, only as far as array shapes need: plain decimals. Anything else
/// is an int the scanner does not track.
pub(crate) fn decimal(line: &[u8]) -> Value<'_> {
    let text = trim_ascii_space(line);
    let text = text.strip_suffix(b"L").unwrap_or(text);
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .map_or(Value::Data, Value::Int)
}

/// The payload of LONG1 or LONG4: little-endian two's complement.
pub(crate) fn long_le(bytes: &[u8]) -> Value<'static> {
    if bytes.len() > 8 {
        return Value::Data;
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(buf))
}

/// STRING's quoted argument decoded as `codecs.escape_decode` does (`\\n`, `\\xhh`, octal,
/// a backslash before anything else kept), or `None` where CPython raises.
pub(crate) fn escape_decode(inner: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = bytes.next()?;
        match escaped {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(escaped),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' => {
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                out.push(high << 4 | low);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// UNICODE's argument decoded as `raw-unicode-escape`: latin-1, with `\\uXXXX` and
/// `\\UXXXXXXXX` escapes after an odd run of backslashes. `None` where CPython raises.
pub(crate) fn raw_unicode_decode(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' {
            out.push(char::from(line[i]));
            i += 1;
            continue;
        }
        let run = line[i..].iter().take_while(|&&b| b == b'\\').count();
        let digits = match line.get(i + run) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => {
                out.extend(std::iter::repeat_n('\\', run));
                i += run;
                continue;
            }
        };
        out.extend(std::iter::repeat_n('\\', run - 1));
        let start = i + run + 1;
        let code = line.get(start..start + digits)?;
        let code = u32::from_str_radix(std::str::from_utf8(code).ok()?, 16).ok()?;
        // A lone surrogate has no Rust `char`; the runtime's lossy copy shows it as U+FFFD.
        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        i = start + digits;
    }
    Some(out)
}

/// INT's or LONG's argument as the CPython unpicklers read it: `Some(Ok(n))` within the i64
/// range, `Some(Err(()))` for a larger int, `None` where CPython raises. Like `_pickle`, the
/// text ends at a NUL (a C string) after LONG's `L` is dropped; like `int(text, 0)` (both
/// unpicklers read INT and LONG with base 0), `0x`, `0o` and `0b` prefixes are read, with
/// underscores between digits.
pub(crate) fn int_literal(line: &[u8]) -> Option<Result<i64, ()>> {
    let line = line.strip_suffix(b"L").unwrap_or(line);
    let line = line.split(|&b| b == 0).next().unwrap_or(line);
    let text = trim_ascii_space(line);
    let text = text.strip_suffix(b"L").unwrap_or(text);
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let (radix, digits) = match digits {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest.strip_prefix(b"_").unwrap_or(rest)),
        [b'0', b'o' | b'O', rest @ ..] => (8, rest.strip_prefix(b"_").unwrap_or(rest)),
        [b'0', b'b' | b'B', rest @ ..] => (2, rest.strip_prefix(b"_").unwrap_or(rest)),
        _ => (10, digits),
    };
    let digit = |b: &u8| char::from(*b).to_digit(radix);
    if digits.is_empty()
        || digits.first() == Some(&b'_')
        || digits.last() == Some(&b'_')
        || digits.windows(2).any(|w| w == b"__")
        || !digits.iter().all(|b| digit(b).is_some() || *b == b'_')
    {
        return None;
    }
    let mut value: i128 = 0;
    for d in digits.iter().filter_map(digit) {
        value = value * i128::from(radix) + i128::from(d);
        if value > i128::from(u64::MAX) {
            return Some(Err(()));
        }
    }
    let value = if negative { -value } else { value };
    Some(i64::try_from(value).map_err(|_| ()))
}

/// INT's argument as `_pickle` reads it, which is what `pickle.loads` and `torch.load` run
/// when the preload is absent: `strtol(line, 0)` on the line as a C string (up to a NUL), so
/// a leading `0` is octal (`063` is 51) and `0x` hex; accepted when it stops at the end;
/// otherwise `int(line, 0)` ([`int_literal`]'s reading, without leading zeros). A line of
/// two characters that reads 0 or 1 is a bool. `None` where `_pickle` raises.
/// (`pickle._Unpickler` reads `int(line, 0)` and raises on `063`; pickleguard's unpickler
/// reads it as decimal: where they disagree, the scan follows `_pickle`.)
pub(crate) fn int_line(line: &[u8]) -> Option<IntLine> {
    let two_chars = line.len() == 2;
    let c = line.split(|&b| b == 0).next().unwrap_or(line);
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = c.iter().position(|b| !is_space(b)).unwrap_or(c.len());
    let body = &c[start..];
    let (negative, digits) = match body {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, body),
    };
    let (radix, digits) = match digits {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &digits[2..]),
        [b'0', ..] => (8, digits),
        _ => (10, digits),
    };
    let run = digits
        .iter()
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    let strtol = if run == 0 {
        // No digits: strtol reads 0 and stops at the start, which is the end only for an
        // empty string.
        c.is_empty().then_some(0i128)
    } else if run == digits.len() {
        let mut value: i128 = 0;
        for &b in digits {
            value = value * i128::from(radix) + i128::from(char::from(b).to_digit(radix)?);
            if value > i128::from(i64::MAX) + 1 {
                break;
            }
        }
        let value = if negative { -value } else { value };
        // Past the C long's range strtol sets ERANGE: `_pickle` reads it with PyLong.
        i64::try_from(value).ok().map(i128::from)
    } else {
        None
    };
    if let Some(value) = strtol {
        let value = value as i64;
        return Some(if two_chars && (value == 0 || value == 1) {
            IntLine::Bool(value == 1)
        } else {
            IntLine::Int(Ok(value))
        });
    }
    // PyLong_FromString(line, NULL, 0): like `int(text, 0)`, a decimal may not start with 0.
    let text = trim_ascii_space(c);
    let unsigned = text
        .strip_prefix(b"-")
        .or_else(|| text.strip_prefix(b"+"))
        .unwrap_or(text);
    if unsigned.len() > 1
        && unsigned[0] == b'0'
        && unsigned[1].is_ascii_digit()
        && !unsigned.iter().all(|&b| b == b'0' || b == b'_')
    {
        return None;
    }
    int_literal(text).map(IntLine::Int)
}

/// Whether an INT (or, with `long`, LONG) line is what picklers write, which every reader
/// reads alike: an optional `-`, then decimal digits without a leading zero (`0` itself, and
/// INT's `00`/`01` for False/True, are fine), LONG's `L` at the end.
pub(crate) fn canonical_int(line: &[u8], long: bool) -> bool {
    let line = if long {
        line.strip_suffix(b"L").unwrap_or(line)
    } else {
        line
    };
    if !long && (line == b"00" || line == b"01") {
        return true;
    }
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0')
}

/// What [`int_line`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntLine {
    Bool(bool),
    /// As [`int_literal`]: `Err` past the i64 range.
    Int(Result<i64, ()>),
}

/// LONG1's or LONG4's little-endian two's complement payload: `Err` outside the i64 range.
pub(crate) fn long_le_exact(bytes: &[u8]) -> Result<i64, ()> {
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    if bytes.len() > 8 {
        let (low, high) = bytes.split_at(8);
        if high.iter().any(|&b| b != fill) || (low[7] & 0x80 != 0) != negative {
            return Err(());
        }
        return Ok(i64::from_le_bytes(low.try_into().map_err(|_| ())?));
    }
    let mut buf = [fill; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

/// Whether `text` could name an importable module: dotted Python identifiers.
pub(crate) fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

fn trim_ascii_space(mut bytes: &[u8]) -> &[u8] {
    // Py_ISSPACE: space, \t, \n, \v, \f, \r.
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    while let [first, rest @ ..] = bytes {
        if !space(first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !space(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// s16: INT/LONG lines that CPython's readers and pickleguard's read differently are not
    /// canonical (a `readers disagree` concern); what picklers write is.
    #[test]
    fn canonical_int_lines() {
        for line in [
            &b"0"[..],
            b"7",
            b"-12",
            b"00",
            b"01",
            b"123456789012345678901234",
        ] {
            assert!(canonical_int(line, false), "{line:?}");
        }
        assert!(canonical_int(b"-5L", true));
        for line in [
            &b"063"[..],
            b"0x10",
            b"1_0",
            b"1\x00",
            b" 5",
            b"",
            b"-",
            b"+5",
            b"5L",
        ] {
            assert!(!canonical_int(line, false), "{line:?}");
        }
        assert!(!canonical_int(b"07L", true));
    }

    #[test]
    fn memo_indices_parse_like_pylong_from_string() {
        assert_eq!(memo_index(b"12"), Some(12));
        assert_eq!(memo_index(b" 1_2\t"), Some(12));
        assert_eq!(memo_index(b"007"), Some(7));
        assert_eq!(memo_index(b"-3"), Some(-3));
        assert_eq!(memo_index(b"12\x00junk"), Some(12), "_pickle stops at NUL");
        for bad in [
            &b""[..],
            b"_1",
            b"1_",
            b"1__2",
            b"0x10",
            b"1 2",
            b"99999999999999999999",
        ] {
            assert_eq!(memo_index(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strings_decode_only_when_certain() {
        assert!(matches!(quoted(b"'os'"), Ok(Value::Str("os"))));
        assert!(matches!(quoted(b"\"os\""), Ok(Value::Str("os"))));
        assert!(matches!(quoted(b"'o\\x73'"), Ok(Value::Text(_))));
        assert!(quoted(b"os").is_err());
        assert!(quoted(b"'os\"").is_err());
        assert!(quoted(b"'").is_err());
        assert!(matches!(raw_unicode(b"posix"), Value::Str("posix")));
        assert!(matches!(raw_unicode(b"p\\u006fsix"), Value::Text(_)));
        assert!(matches!(raw_unicode(b"\xe9"), Value::Text(_)));
        assert!(matches!(ascii_text(b"\xff"), Value::Text(_)));
        assert!(matches!(utf8("é".as_bytes()).text(), Some("é")));
        assert!(utf8(b"\xff").text().is_none());
        assert!(matches!(
            utf8(b"\xed\xa0\x80").operand(),
            crate::value::Operand::Unknown(_)
        ));
    }

    #[test]
    fn ints_and_longs() {
        assert!(matches!(decimal(b"42"), Value::Int(42)));
        assert!(matches!(decimal(b"42L"), Value::Int(42)));
        assert!(matches!(decimal(b"4x"), Value::Data));
        assert!(matches!(long_le(b"\xff"), Value::Int(-1)));
        assert!(matches!(long_le(b"\x00\x01"), Value::Int(256)));
        assert!(matches!(long_le(b""), Value::Int(0)));
        assert!(matches!(long_le(&[1; 9]), Value::Data));
    }

    #[test]
    fn identifiers() {
        assert!(is_dotted_identifier("os.path"));
        assert!(is_dotted_identifier("_pickle"));
        assert!(!is_dotted_identifier("col1,col2"));
        assert!(!is_dotted_identifier("a..b"));
        assert!(!is_dotted_identifier(""));
    }
}
