//! The value pass over hand-assembled pickles.

use pickleguard_policy::Policy;

use crate::report::ConcernKind;
use crate::stream::{walk, Count, Walk};
use crate::Limits;

fn scan(data: &[u8]) -> Walk {
    walk(data, 0, Count::All, true, &Policy::new(), Limits::default())
}

fn rule_concerns(walk: &Walk) -> Vec<&str> {
    walk.concerns
        .iter()
        .filter(|(_, kind, _)| *kind == ConcernKind::Rule)
        .map(|(_, _, detail)| detail.as_str())
        .collect()
}

/// `numpy.dtype('O8', False, True)` given the state of a dtype without references (flags 0):
/// numpy would then read raw bytes as the object pointers of arrays of it (RC-1's dtype).
const FORGED_OBJECT_DTYPE: &[u8] = b"cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R\
(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.";

/// tests/findings/scan s1, s6, s11, s12: a number line the value pass could not read stopped
/// it (`Stop::Broken`) while the main pass and CPython went on, so every value check after it
/// was skipped and the scan was clean. CPython reads each of these lines (`_pickle` as a C
/// string, ending at a NUL; both unpicklers with base 0). Fails if any of them hides the
/// forged dtype's BUILD again.
#[test]
fn number_lines_cpython_reads_never_stop_the_value_pass() {
    let plain = [b"\x80\x02".as_slice(), FORGED_OBJECT_DTYPE].concat();
    assert_eq!(
        rule_concerns(&scan(&plain)).len(),
        1,
        "the control is refused"
    );
    for prefix in [
        &b"I1\x00\n0"[..],
        b"I\x00\n0",
        b"I01\x00x\n0",
        b"F1.5\x00\n0",
        b"L5\x00L\n0",
        b"L 5 L\n0",
        b"I0x10\n0",
        b"I0b1\n0",
        b"L0x10L\n0",
        b"L0o10L\n0",
        // Not numbers CPython reads (it raises): the pass still goes on, so a scan never
        // depends on which reader stops first.
        b"I\xd9\xa3\n0",
        b"F1_0.5\n0",
    ] {
        let data = [b"\x80\x02".as_slice(), prefix, FORGED_OBJECT_DTYPE].concat();
        let walk = scan(&data);
        let rules = rule_concerns(&walk);
        assert_eq!(rules.len(), 1, "{prefix:?}: {:?}", walk.concerns);
        assert!(
            rules[0].contains("numpy-dtype-state"),
            "{prefix:?}: {rules:?}"
        );
    }
}

#[test]
fn int_lines_read_as_cpython_reads_them() {
    use crate::text::int_literal;
    assert_eq!(int_literal(b"1\x00junk"), Some(Ok(1)));
    assert_eq!(int_literal(b"5\x00L"), Some(Ok(5)));
    assert_eq!(int_literal(b" 5 L"), Some(Ok(5)));
    assert_eq!(int_literal(b"0x10"), Some(Ok(16)));
    assert_eq!(int_literal(b"-0x_1_0"), Some(Ok(-16)));
    assert_eq!(int_literal(b"0o17"), Some(Ok(15)));
    assert_eq!(int_literal(b"0B11L"), Some(Ok(3)));
    assert_eq!(int_literal(b"0x1_0000_0000_0000_0000"), Some(Err(())));
    assert_eq!(int_literal(b"1_000"), Some(Ok(1000)));
    for bad in [
        &b"0x"[..],
        b"0x_",
        b"0b2",
        b"0o8",
        b"1__0",
        b"x10",
        b"0x10x",
    ] {
        assert_eq!(int_literal(bad), None, "{bad:?}");
    }
}

/// tests/findings/scan s16: `_pickle` reads INT with strtol(s, 0), so `I063` is 51, an
/// object dtype's flags without NEEDS_INIT (its array is filled over uninitialised pointers).
/// pickleguard's unpickler reads 63 and `pickle._Unpickler` raises: the scan follows
/// `_pickle`, what runs without the preload. Fails if the scan reads the flags as 63 again.
#[test]
fn an_int_with_a_leading_zero_is_octal_as_pickle_c_reads_it() {
    let dtype = |flags: &[u8]| {
        [
            &b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R"[..],
            b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff",
            flags,
            b"tb.",
        ]
        .concat()
    };
    assert!(
        rule_concerns(&scan(&dtype(b"K?"))).is_empty(),
        "genuine flags 63"
    );
    assert!(
        rule_concerns(&scan(&dtype(b"I63\n"))).is_empty(),
        "63 in text"
    );
    let octal = rule_concerns(&scan(&dtype(b"I063\n"))).join("; ");
    assert!(octal.contains("flags `51`"), "{octal}");
}

#[test]
fn int_lines_follow_strtol_then_pylong() {
    use crate::text::{int_line, IntLine};
    let int = |n| Some(IntLine::Int(Ok(n)));
    assert_eq!(int_line(b"063"), int(51));
    assert_eq!(int_line(b"-010"), int(-8));
    assert_eq!(int_line(b"0x1f"), int(31));
    assert_eq!(int_line(b"0b11"), int(3));
    assert_eq!(int_line(b"0o17"), int(15));
    assert_eq!(int_line(b"1_000"), int(1000));
    assert_eq!(int_line(b" 5"), int(5));
    assert_eq!(int_line(b"12\x00junk"), int(12));
    assert_eq!(int_line(b""), int(0));
    assert_eq!(int_line(b"\x00abc"), int(0));
    assert_eq!(int_line(b"01"), Some(IntLine::Bool(true)));
    assert_eq!(int_line(b"00"), Some(IntLine::Bool(false)));
    assert_eq!(int_line(b"+1"), Some(IntLine::Bool(true)));
    assert_eq!(int_line(b"1\x00"), Some(IntLine::Bool(true)));
    assert_eq!(int_line(b"001"), int(1));
    assert_eq!(
        int_line(b"99999999999999999999"),
        Some(IntLine::Int(Err(())))
    );
    for bad in [&b"08"[..], b"0x", b"0xg", b"010_1", b"-", b"  ", b"1 2"] {
        assert_eq!(int_line(bad), None, "{bad:?}");
    }
}
