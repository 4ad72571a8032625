//! The value checks in a scan, on hand-assembled streams. Each case (SV-n) says why it passes
//! and what would make it fail.

use pickleguard_policy::Policy;

use crate::report::ConcernKind;
use crate::stream::{walk, Count, Walk};
use crate::test_pickles::{cat, su as s};
use crate::Limits;

fn scan_with(data: &[u8], limits: Limits) -> Walk {
    walk(data, 0, Count::All, false, &Policy::new(), limits)
}

fn scan(data: &[u8]) -> Walk {
    scan_with(data, Limits::default())
}

/// The checks that refused something in `walk`, in stream order.
fn refused_checks(walk: &Walk) -> Vec<String> {
    walk.concerns
        .iter()
        .filter(|(_, kind, _)| *kind == ConcernKind::Rule)
        .map(|(_, _, detail)| {
            let start = detail.find("refused by `").expect("a check name") + 12;
            detail[start..start + detail[start..].find('`').unwrap()].to_string()
        })
        .collect()
}

/// `numpy.dtype("O8", False, True)` (memo 0 the class, memo 1 the dtype), without its BUILD.
fn object_dtype() -> Vec<u8> {
    cat(&[
        b"\x80\x02cnumpy\ndtype\nq\x00",
        &s("O8"),
        b"\x89\x88\x87Rq\x01",
    ])
}

/// A dtype BUILD state `(3, "|", None, None, None, -1, -1, flags)`.
fn dtype_state(flags: u8) -> Vec<u8> {
    cat(&[
        b"(K\x03",
        &s("|"),
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK",
        &[flags],
        b"t",
    ])
}

/// SV-1: numpy's own object dtype state (flags 63) scans clean; the same state with flags 0
/// (an object dtype that claims to hold no references, RC-1's forgery) is refused by the
/// `numpy-dtype-state` check, as its load is. Fails if the value pass is not run or its
/// integers are read wrong.
#[test]
fn sv1_forged_dtype_flags_are_refused() {
    let genuine = cat(&[&object_dtype(), &dtype_state(63), b"b."]);
    let w = scan(&genuine);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(refused_checks(&w), Vec::<String>::new(), "{:?}", w.concerns);

    let forged = cat(&[&object_dtype(), &dtype_state(0), b"b."]);
    assert_eq!(refused_checks(&scan(&forged)), ["numpy-dtype-state"]);
}

/// SV-2: a violation is a finding even when the stream breaks right after it: real loaders
/// run what comes before the break. Fails if the value pass drops what it found on an error.
#[test]
fn sv2_a_violation_before_a_break_stays() {
    let forged = cat(&[&object_dtype(), &dtype_state(0), b"b\xff"]);
    let w = scan(&forged);
    assert!(w.error.is_some());
    assert_eq!(refused_checks(&w), ["numpy-dtype-state"]);
}

/// SV-3: two pickles on one stream share the memo (one `Unpickler` loading both): the second
/// BUILDs a state onto the first one's dtype, which already has one. numpy takes a dtype's
/// state once; the runtime refuses the second (RC-27), and so does the scan. Fails if each
/// pickle gets a fresh memo (the GET is then an error, and nothing is checked).
#[test]
fn sv3_a_later_pickle_reaches_an_earlier_memo() {
    let first = cat(&[&object_dtype(), &dtype_state(63), b"b."]);
    let second = cat(&[b"\x80\x02h\x01", &dtype_state(63), b"b."]);
    let w = scan(&cat(&[&first, &second]));
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(refused_checks(&w), ["numpy-dtype-state"]);
}

/// A struct dtype `V8` with one field `a` (an `i8` at `offset`): memo 0 the class, memo 1 the
/// dtype; `fields` writes the fields dict (and may memoize it), then the BUILD.
fn struct_dtype(fields: &[u8]) -> Vec<u8> {
    cat(&[
        b"\x80\x02cnumpy\ndtype\nq\x00",
        &s("V8"),
        b"\x89\x88\x87Rq\x01(K\x03",
        &s("|"),
        b"N",
        &s("a"),
        b"\x85",
        fields,
        b"K\x08K\x01K\x10t",
    ])
}

/// `numpy.dtype("i8", False, True)` with its state, and an offset: a field's `(dtype, offset)`.
fn field(offset: &[u8]) -> Vec<u8> {
    cat(&[
        b"h\x00",
        &s("i8"),
        b"\x89\x88\x87R(K\x03",
        &s("<"),
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
        offset,
        b"\x86",
    ])
}

const GENUINE_OFFSET: &[u8] = b"K\x00";
/// 1 << 44 (LONG1), far past the item size (RC-4).
const FORGED_OFFSET: &[u8] = b"\x8a\x06\x00\x00\x00\x00\x00\x10";

/// SV-4: containers are checked as they are when they are used. A fields dict memoized empty
/// and filled through the memo after the state tuple holds it, but before the BUILD, reaches
/// numpy filled: the forged offset is refused. The same offset stored only after the BUILD
/// never reaches numpy (the runtime hands numpy a private copy, RC-26), so that stream is
/// clean. Fails if the scanner copies containers into tuples, or checks later mutations.
#[test]
fn sv4_containers_are_read_when_they_are_used() {
    let genuine = cat(&[
        &struct_dtype(&cat(&[b"}q\x05", &s("a"), &field(GENUINE_OFFSET), b"s"])),
        b"b.",
    ]);
    let w = scan(&genuine);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(refused_checks(&w), Vec::<String>::new(), "{:?}", w.concerns);

    let before = cat(&[
        &struct_dtype(b"}q\x05"),
        b"h\x05",
        &s("a"),
        &field(FORGED_OFFSET),
        b"s0b.",
    ]);
    let w = scan(&before);
    assert_eq!(
        refused_checks(&w),
        ["numpy-dtype-state"],
        "{:?}",
        w.concerns
    );

    let after = cat(&[
        &struct_dtype(&cat(&[b"}q\x05", &s("a"), &field(GENUINE_OFFSET), b"s"])),
        b"bh\x05",
        &s("a"),
        &field(FORGED_OFFSET),
        b"s0.",
    ]);
    let w = scan(&after);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(refused_checks(&w), Vec::<String>::new(), "{:?}", w.concerns);
}

/// SV-5: a dict key stored twice keeps its first place and takes its last value, as Python's
/// dict does: the forged offset given second replaces the genuine one and is refused; given
/// first, it is replaced by the genuine one and the stream is clean. Fails if the scanner
/// keeps the first value, or both.
#[test]
fn sv5_a_key_stored_again_takes_the_last_value() {
    let twice = |first: &[u8], second: &[u8]| {
        let fields = cat(&[b"}(", &s("a"), &field(first), &s("a"), &field(second), b"u"]);
        cat(&[&struct_dtype(&fields), b"b."])
    };
    let w = scan(&twice(GENUINE_OFFSET, FORGED_OFFSET));
    assert_eq!(
        refused_checks(&w),
        ["numpy-dtype-state"],
        "{:?}",
        w.concerns
    );
    let w = scan(&twice(FORGED_OFFSET, GENUINE_OFFSET));
    assert_eq!(refused_checks(&w), Vec::<String>::new(), "{:?}", w.concerns);
}

/// SV-6: a stream with more objects than the value pass may rebuild is reported unscannable,
/// never clean. Fails if the limit passes silently.
#[test]
fn sv6_too_many_objects_is_unscannable() {
    let mut data = object_dtype();
    data.extend_from_slice(b"(");
    data.extend(std::iter::repeat_n(b'N', 64));
    data.extend_from_slice(b"1");
    data.extend(dtype_state(63));
    data.extend_from_slice(b"b.");
    let limits = Limits {
        max_values: 32,
        ..Limits::default()
    };
    let w = scan_with(&data, limits);
    assert!(
        w.concerns
            .iter()
            .any(|(_, kind, _)| *kind == ConcernKind::Unscannable),
        "{:?}",
        w.concerns
    );
}

/// SV-7: BUILD onto a class the pickle resolved (RC-29: joblib's `NumpyArrayWrapper` given
/// a slot state) is refused, with or without other values to check. Fails if the main pass
/// does not ask for the value pass on a BUILD onto a global.
#[test]
fn sv7_build_onto_a_class_is_refused() {
    let data = cat(&[
        b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\nN}",
        &s("read_array"),
        b"cbuiltins\nslice\ns\x86b.",
    ]);
    assert_eq!(refused_checks(&scan(&data)), ["allowed-opcodes"]);
}

/// SV-8: what a ruled global returns is seen as the runtime's conversion sees it: the `bytes`
/// from `_codecs.encode` is a byte count (an exact built-in object, read by value), so
/// `bytearray(_codecs.encode(text, "latin1"))`, how protocols 0-2 write a bytearray, passes the
/// `bytes-from-data` check. Fails if the scanner hands the check a built `_codecs.encode`
/// object instead (found by the benign samples: every protocol 0-2 bytearray was a finding).
#[test]
fn sv8_exact_builtin_results_are_values() {
    let data = cat(&[
        b"\x80\x02c__builtin__\nbytearray\nc_codecs\nencode\n",
        &s("\u{0}\u{1}ab\u{ff}"),
        &s("latin1"),
        b"\x86R\x85R.",
    ]);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(refused_checks(&w), Vec::<String>::new(), "{:?}", w.concerns);
}

/// Number lines as CPython reads them (attacker's review s1, s6, s11, s12, s16).
mod number_lines {
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
}
