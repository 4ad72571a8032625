//! Hand-assembled pickles, one family of opcodes at a time.

use pickleguard_policy::Policy;

use crate::stream::{walk, Count, Walk};
use crate::test_pickles::{cat, su};
use crate::{Limits, ScanError, Verdict};

fn scan(data: &[u8]) -> Walk {
    scan_with(data, Limits::default())
}

fn scan_with(data: &[u8], limits: Limits) -> Walk {
    walk(data, 0, Count::All, true, &Policy::new(), limits)
}

/// `(module, name, opcode, verdict kind)` for each global.
fn globals(walk: &Walk) -> Vec<(String, String, &'static str, &'static str)> {
    walk.globals
        .iter()
        .map(|f| {
            let kind = match f.decision {
                Verdict::Allowed { .. } => "allowed",
                Verdict::NotAllowed => "not_allowed",
                Verdict::HardDenied { .. } => "hard_denied",
                Verdict::Unresolved { .. } => "unresolved",
            };
            (
                f.module.clone().unwrap_or_default(),
                f.name.clone().unwrap_or_default(),
                f.opcode,
                kind,
            )
        })
        .collect()
}

fn g(
    module: &str,
    name: &str,
    opcode: &'static str,
    kind: &'static str,
) -> (String, String, &'static str, &'static str) {
    (module.to_string(), name.to_string(), opcode, kind)
}

#[test]
fn global_and_inst_give_names_directly() {
    let w = scan(b"cos\nsystem\n(S'id'\ntR.");
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(
        globals(&w),
        vec![g("os", "system", "GLOBAL", "hard_denied")]
    );
    assert_eq!(w.globals[0].offset, 0);

    let w = scan(b"(S'id'\nios\nsystem\n.");
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(globals(&w), vec![g("os", "system", "INST", "hard_denied")]);
    assert_eq!(w.globals[0].offset, 7);
}

#[test]
fn python2_names_go_to_the_policy_raw() {
    let w = scan(b"c__builtin__\neval\n.");
    assert_eq!(
        globals(&w),
        vec![g("__builtin__", "eval", "GLOBAL", "hard_denied")]
    );
    let w = scan(b"\x80\x02c__builtin__\nset\n.");
    assert_eq!(
        globals(&w),
        vec![g("__builtin__", "set", "GLOBAL", "allowed")]
    );
}

#[test]
fn stack_global_resolves_through_every_memo_opcode() {
    // MEMOIZE (indices 0 and 1), then BINGET.
    let data = cat(&[
        b"\x80\x04",
        &su("posix"),
        b"\x94",
        &su("system"),
        b"\x94",
        b"00h\x00h\x01\x93.",
    ]);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(
        globals(&w),
        vec![g("posix", "system", "STACK_GLOBAL", "hard_denied")]
    );

    // BINPUT and LONG_BINPUT, read back with LONG_BINGET and BINGET.
    let data = cat(&[
        b"\x80\x04",
        &su("collections"),
        b"q\x07",
        &su("OrderedDict"),
        b"r\x00\x01\x00\x00",
        b"00",
        b"j\x07\x00\x00\x00h\x00\x93",
        b"h\x00",
        b"0.",
    ]);
    let w = scan(&data);
    assert!(w.error.is_some(), "BINGET 0 was never stored");
    let data = cat(&[
        b"\x80\x04",
        &su("collections"),
        b"q\x07",
        &su("OrderedDict"),
        b"r\x00\x01\x00\x00",
        b"00",
        b"j\x07\x00\x00\x00j\x00\x01\x00\x00\x93.",
    ]);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(
        globals(&w),
        vec![g("collections", "OrderedDict", "STACK_GLOBAL", "allowed")]
    );

    // Protocol-0 PUT and GET with decimal arguments, whitespace and underscores included.
    let w = scan(b"Vos\np1_0\n0Vsystem\np 11\n0g10\ng11 \n\x93.");
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(
        globals(&w),
        vec![g("os", "system", "STACK_GLOBAL", "hard_denied")]
    );

    // DUP and the protocol-1 string opcodes.
    let w = scan(b"U\x02os2T\x06\x00\x00\x00systemX\x00\x00\x00\x00010\x93.");
    assert!(w.error.is_some() || !w.globals.is_empty());
}

#[test]
fn every_string_opcode_feeds_stack_global() {
    for (module, name) in [
        (&b"S'os'\n"[..], &b"S'system'\n"[..]),
        (b"T\x02\x00\x00\x00os", b"U\x06system"),
        (
            b"X\x02\x00\x00\x00os",
            b"\x8d\x06\x00\x00\x00\x00\x00\x00\x00system",
        ),
        (b"Vos\n", b"\x8c\x06system"),
    ] {
        let w = scan(&cat(&[module, name, b"\x93."]));
        assert!(w.error.is_none(), "{:?}", w.error);
        assert_eq!(
            globals(&w),
            vec![g("os", "system", "STACK_GLOBAL", "hard_denied")],
            "{module:?}"
        );
    }
}

#[test]
fn operands_built_at_run_time_are_unresolved() {
    // builtins.str('os') is only known when it runs.
    let data = cat(&[
        b"cbuiltins\nstr\n",
        &su("os"),
        b"\x85R",
        &su("system"),
        b"\x93.",
    ]);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(
        globals(&w),
        vec![
            g("builtins", "str", "GLOBAL", "not_allowed"),
            g("", "", "STACK_GLOBAL", "unresolved")
        ]
    );
    let Verdict::Unresolved { why } = &w.globals[1].decision else {
        unreachable!()
    };
    assert!(
        why.contains("module operand") && why.contains("REDUCE"),
        "{why}"
    );
    assert_eq!(w.globals[1].module, None);

    // Escapes and non-ASCII byte strings have no static text either.
    for operand in [
        &b"S'o\\x73'\n"[..],
        b"U\x02\xff\xfe",
        b"Vp\\u006fsix\n",
        b"X\x03\x00\x00\x00\xed\xa0\x80",
    ] {
        let w = scan(&cat(&[operand, &su("system"), b"\x93."]));
        assert_eq!(
            globals(&w),
            vec![g("", "", "STACK_GLOBAL", "unresolved")],
            "{operand:?}"
        );
    }

    // Persistent ids, out-of-band buffers and extension codes too.
    for operand in [&b"P7\n"[..], b"K\x01Q", b"\x97", b"\x82\x05"] {
        let w = scan(&cat(&[operand, &su("system"), b"\x93."]));
        assert!(w.error.is_none(), "{operand:?}: {:?}", w.error);
        assert_eq!(w.globals.last().map(|f| f.opcode), Some("STACK_GLOBAL"));
        assert!(matches!(
            w.globals.last().unwrap().decision,
            Verdict::Unresolved { .. }
        ));
    }
}

#[test]
fn operands_that_are_never_str_stop_the_stream_like_cpython() {
    for operand in [
        &b"K\x01"[..],
        b"N",
        b"]",
        b"}",
        b")",
        b"C\x01x",
        b"G\0\0\0\0\0\0\0\0",
        b"\x88",
    ] {
        let data = cat(&[b"cos\nsystem\n", operand, &su("system"), b"\x93."]);
        let w = scan(&data);
        assert!(
            matches!(
                w.error,
                Some(ScanError::Malformed {
                    opcode: "STACK_GLOBAL",
                    ..
                })
            ),
            "{operand:?}: {:?}",
            w.error
        );
        assert_eq!(
            w.globals.len(),
            1,
            "the global before the damage stays listed"
        );
    }
}

#[test]
fn extension_codes_are_unresolved_findings() {
    for data in [
        &b"\x80\x02\x82\x01."[..],
        b"\x80\x02\x83\x01\x01.",
        b"\x80\x02\x84\xff\xff\xff\x7f.",
    ] {
        let w = scan(data);
        assert!(w.error.is_none(), "{:?}", w.error);
        let Verdict::Unresolved { why } = &w.globals[0].decision else {
            panic!("{data:?}")
        };
        assert!(why.contains("extension code"));
    }
    for zero in [&b"\x80\x02\x82\x00."[..], b"\x80\x02\x84\xff\xff\xff\xff."] {
        assert!(matches!(
            scan(zero).error,
            Some(ScanError::Malformed { .. })
        ));
    }
}

#[test]
fn truncated_streams_keep_the_globals_before_the_damage() {
    let w = scan(b"cos\nsystem\nX\xff\xff\x00\x00ab");
    assert_eq!(
        globals(&w),
        vec![g("os", "system", "GLOBAL", "hard_denied")]
    );
    assert!(matches!(
        w.error,
        Some(ScanError::Truncated {
            offset: 11,
            opcode: "BINUNICODE",
            ..
        })
    ));

    let w = scan(b"cos\nsystem\n");
    assert_eq!(w.globals.len(), 1);
    assert!(matches!(
        w.error,
        Some(ScanError::Malformed { opcode: "STOP", .. })
    ));

    // pickle._Unpickler reads a last line without its newline, dropping its last byte, and
    // still imports the module: `os` here, and `posix` with an empty name below.
    let w = scan(b"cos\nsys");
    assert_eq!(globals(&w), vec![g("os", "sy", "GLOBAL", "hard_denied")]);
    assert!(matches!(
        w.error,
        Some(ScanError::Malformed { opcode: "STOP", .. })
    ));
    let w = scan(b"(cposixX");
    assert_eq!(globals(&w), vec![g("posix", "", "GLOBAL", "hard_denied")]);
    let w = scan(b"(iposix\nsystem");
    assert_eq!(
        globals(&w),
        vec![g("posix", "syste", "INST", "hard_denied")]
    );

    // Lengths far beyond the data, at every width.
    for data in [
        &b"B\xff\xff\xff\xff"[..],
        b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x96\0\0\0\0\0\0\0\x80",
        b"\x8b\xff\xff\xff\x7f",
    ] {
        assert!(
            matches!(scan(data).error, Some(ScanError::Truncated { .. })),
            "{data:?}"
        );
    }
}

#[test]
fn containers_and_marks_follow_pickle_c() {
    // Lists, dicts, sets, frozensets and tuples of every size around globals.
    let data = b"\x80\x04](K\x01K\x02e}(K\x01K\x02u\x8f(K\x01\x90(K\x01\x91)K\x01\x85K\x01K\x02\x86K\x01K\x02K\x03\x87(K\x01t(l(dK\x01K\x02s0000000000cos\nsystem\n.";
    let w = scan(data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 1);

    // No opcode reaches below the last mark, in _pickle or pickle._Unpickler (3.8-3.13).
    for crossing in [
        &b"}K\x00(K\x01s"[..],
        b"](K\x01a",
        b"]((K\x01e",
        b"}((K\x01K\x02u",
        b"\x8f((K\x01\x90",
        b"K\x01(2",
        b"}(}b",
    ] {
        let data = cat(&[crossing, b"cos\nsystem\n."]);
        let w = scan(&data);
        assert!(
            matches!(w.error, Some(ScanError::Malformed { .. })),
            "{crossing:?}: {:?}",
            w.error
        );
    }

    // POP takes a mark off the top; POP_MARK drops everything above one.
    let w = scan(b"(0(K\x01K\x021cos\nsystem\n.");
    assert!(w.error.is_none(), "{:?}", w.error);

    // Underflows and odd item counts stop the stream, as they stop CPython.
    for bad in [
        &b"0"[..],
        b"2",
        b"t",
        b"R",
        b"K\x01(R",
        b"(K\x01d",
        b"}(K\x01u",
        b"K\x01a",
        b"\x85",
        b"o",
        b"(o",
        b".",
    ] {
        assert!(scan(bad).error.is_some(), "{bad:?}");
    }
}

#[test]
fn object_building_opcodes() {
    // OBJ, NEWOBJ, NEWOBJ_EX and BUILD over an allowed class.
    let data = b"\x80\x04ccollections\nOrderedDict\n)\x81}bccollections\nOrderedDict\n)}\x92(ccollections\nOrderedDict\noN.";
    let w = scan(data);
    assert!(w.error.is_none(), "{:?}", w.error);
    // The same global three times is listed once, at its first offset.
    assert_eq!(w.globals.len(), 1);
    assert!(w
        .globals
        .iter()
        .all(|f| matches!(f.decision, Verdict::Allowed { .. })));
}

#[test]
fn numbers_and_constants() {
    let data = b"I1\nI01\nL12L\nF1.5\nJ\x01\x00\x00\x00K\x01M\x01\x00\x8a\x02\x01\x00\x8b\x01\x00\x00\x00\x01NG\0\0\0\0\0\0\0\0\x88\x89\x96\x01\0\0\0\0\0\0\0x\x97\x98(lcos\nsystem\n.";
    let w = scan(data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 1);
    assert!(matches!(
        scan(b"\x8b\xff\xff\xff\xff").error,
        Some(ScanError::Malformed { .. })
    ));
}

#[test]
fn framing_and_protocols() {
    // A FRAME longer than the data is read as far as it goes, like pickle._Unpickler does.
    let w = scan(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n.");
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 1);
    assert!(matches!(
        scan(b"\x80\x06N.").error,
        Some(ScanError::Malformed {
            opcode: "PROTO",
            ..
        })
    ));
    assert!(matches!(
        scan(b"\x95\0\0\0\0\0\0\0\x80N.").error,
        Some(ScanError::Malformed {
            opcode: "FRAME",
            ..
        })
    ));
    assert!(matches!(
        scan(b"\x00").error,
        Some(ScanError::UnknownOpcode { byte: 0, .. })
    ));
}

#[test]
fn memo_errors_match_cpython() {
    assert!(matches!(
        scan(b"h\x05.").error,
        Some(ScanError::Malformed {
            opcode: "BINGET",
            ..
        })
    ));
    assert!(matches!(
        scan(b"Np-1\n.").error,
        Some(ScanError::Malformed { opcode: "PUT", .. })
    ));
    assert!(matches!(
        scan(b"Npx\n.").error,
        Some(ScanError::Malformed { opcode: "PUT", .. })
    ));
    assert!(matches!(
        scan(b"q\x00.").error,
        Some(ScanError::Malformed {
            opcode: "BINPUT",
            ..
        })
    ));
}

#[test]
fn limits_are_errors_not_crashes() {
    // A global repeated without a memo is listed once: no limit is reached.
    let repeated = b"cos\nsystem\n0".repeat(10);
    let w = scan_with(
        &repeated,
        Limits {
            max_globals: 3,
            ..Limits::default()
        },
    );
    assert_eq!(w.globals.len(), 1);

    let limits = Limits {
        max_memo: 4,
        ..Limits::default()
    };
    let bomb = cat(&[b"N", &b"\x94".repeat(100), b"."]);
    assert!(matches!(
        scan_with(&bomb, limits).error,
        Some(ScanError::Limit {
            what: "the memo",
            ..
        })
    ));
    // Rewriting an existing key is no growth.
    let rewrite = cat(&[b"N", &b"q\x00".repeat(100), b"."]);
    assert!(scan_with(&rewrite, limits).error.is_none());

    let deep = vec![b'('; 1 << 20];
    let w = scan_with(
        &deep,
        Limits {
            max_stack: 1000,
            ..Limits::default()
        },
    );
    assert!(matches!(
        w.error,
        Some(ScanError::Limit {
            what: "the pickle stack",
            ..
        })
    ));

    let w = scan_with(
        b"NNNNNNNN.",
        Limits {
            max_ops: 4,
            ..Limits::default()
        },
    );
    assert!(matches!(
        w.error,
        Some(ScanError::Limit {
            what: "the number of opcodes",
            ..
        })
    ));

    let many: Vec<u8> = (0..10)
        .flat_map(|i| format!("cos\nsystem{i}\n0").into_bytes())
        .collect();
    let w = scan_with(
        &many,
        Limits {
            max_globals: 3,
            ..Limits::default()
        },
    );
    assert_eq!(w.globals.len(), 3);
    assert!(matches!(
        w.error,
        Some(ScanError::Limit {
            what: "the number of globals",
            ..
        })
    ));
}

#[test]
fn deep_nesting_needs_no_recursion() {
    let depth = 200_000;
    let mut data = Vec::new();
    data.extend(std::iter::repeat_n(b"](", depth).flatten());
    data.extend(std::iter::repeat_n(b'e', depth));
    data.extend_from_slice(b"cos\nsystem\n.");
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 1);
}

/// A joblib dump of `[array, global]`: the array's raw bytes sit in the middle of the pickle.
fn joblib_pickle(typestr: &str, shape: &[u8], aligned: bool, array: &[u8]) -> Vec<u8> {
    let mut out = cat(&[
        b"\x80\x04",
        &su("joblib.numpy_pickle"),
        &su("NumpyArrayWrapper"),
        b"\x93)\x81}(",
        &su("subclass"),
        &su("numpy"),
        &su("ndarray"),
        b"\x93",
        &su("shape"),
        shape,
        &su("dtype"),
        &su("numpy"),
        &su("dtype"),
        b"\x93",
        &su(typestr),
        b"\x89\x88\x87R(K\x03",
        &su("<"),
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK",
        // numpy's flags: 63 for an object dtype, 0 for plain numbers.
        if typestr.starts_with('O') {
            b"\x3f"
        } else {
            b"\x00"
        },
        b"tb",
    ]);
    if aligned {
        out.extend(su("numpy_array_alignment_bytes"));
        out.extend_from_slice(b"K\x10");
    }
    out.extend_from_slice(b"ub");
    if aligned {
        out.extend_from_slice(b"\x03\xff\xff\xff");
    }
    out.extend_from_slice(array);
    out.extend_from_slice(b"cos\nsystem\n\x86.");
    out
}

#[test]
fn joblib_array_bytes_are_stepped_over() {
    // 2x3 float64 = 48 bytes of data full of opcode-like bytes.
    let array = [b'c'; 48];
    let data = joblib_pickle("f8", b"K\x02K\x03\x86", true, &array);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    let names: Vec<_> = globals(&w)
        .into_iter()
        .map(|(m, n, _, _)| format!("{m}.{n}"))
        .collect();
    assert_eq!(
        names,
        [
            "joblib.numpy_pickle.NumpyArrayWrapper",
            "numpy.ndarray",
            "numpy.dtype",
            "os.system"
        ]
    );

    // Without alignment (joblib <= 1.1), no padding byte.
    let data = joblib_pickle("i4", b"K\x05\x85", false, &[b'c'; 20]);
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 4);

    // One byte too few: the array runs into the global, which the scanner must not read as code.
    let data = joblib_pickle("i4", b"K\x05\x85", false, &[b'c'; 19]);
    assert!(scan(&data).error.is_some());

    // An object array is one nested pickle, read with plain pickle.load.
    let nested = b"\x80\x02cposix\nsystem\n.";
    let data = joblib_pickle("O8", b"K\x01\x85", true, nested);
    // Object arrays have no padding: drop the padding bytes the helper added.
    let data: Vec<u8> = {
        let at = data
            .windows(4)
            .position(|w| w == b"\x03\xff\xff\xff")
            .unwrap();
        cat(&[&data[..at], &data[at + 4..]])
    };
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    let names: Vec<_> = globals(&w)
        .into_iter()
        .map(|(m, n, _, _)| format!("{m}.{n}"))
        .collect();
    assert_eq!(
        names,
        [
            "joblib.numpy_pickle.NumpyArrayWrapper",
            "numpy.ndarray",
            "numpy.dtype",
            "posix.system",
            "os.system"
        ]
    );
}

/// SP-2: joblib asks `dtype.hasobject`, which is bit 0 of the flags in the dtype's BUILD state
/// (numpy's `__setstate__` takes them as given). A float dtype whose state claims objects makes
/// joblib unpickle a nested stream where the array bytes would be. Fails if the scanner decides
/// from the type string and skips those bytes as raw data.
#[test]
fn forged_dtype_flags_make_joblib_unpickle() {
    let nested = b"\x80\x02cposix\nsystem\n.";
    let mut data = joblib_pickle("f8", b"K\x01\x85", false, nested);
    let flags = data.windows(3).position(|w| w == b"K\x00t").unwrap();
    data[flags + 1] = 1;
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    let names: Vec<_> = globals(&w)
        .into_iter()
        .map(|(m, n, _, _)| format!("{m}.{n}"))
        .collect();
    assert!(names.contains(&"posix.system".to_string()), "{names:?}");

    // And the other way: an object dtype whose flags deny objects is read as 8 raw bytes
    // (which the reconstruction rules refuse: they would be taken for pointers).
    let data = joblib_pickle("O8", b"K\x01\x85", false, b"cposix\ns");
    let mut data = data;
    let flags = data.windows(3).position(|w| w == b"K\x3ft").unwrap();
    data[flags + 1] = 0;
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.globals.len(), 4);
}

/// joblib commits its frame before writing an array's bytes, so BUILD ends the frame and the
/// data follows it: every reader agrees, nothing to report. Fails if the scanner takes joblib's
/// array read for an opcode reading past its frame.
#[test]
fn joblib_arrays_after_a_frame_are_not_straddles() {
    let tail = b"cos\nsystem\n\x86.";
    let data = joblib_pickle("i4", b"K\x05\x85", false, &[b'c'; 20]);
    let build_end = data.len() - 20 - tail.len();
    let mut framed = data[..2].to_vec();
    framed.push(0x95);
    framed.extend_from_slice(&((build_end - 2) as u64).to_le_bytes());
    framed.extend_from_slice(&data[2..]);
    let w = scan(&framed);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert!(w.concerns.is_empty(), "{:?}", w.concerns);
    assert!(w.file_reading.is_none());
    assert_eq!(w.globals.len(), 4);

    // The same array starting inside the frame: joblib would read it from after the frame.
    let mut inside = data[..2].to_vec();
    inside.push(0x95);
    inside.extend_from_slice(&((build_end - 2 + 4) as u64).to_le_bytes());
    inside.extend_from_slice(&data[2..]);
    let w = scan(&inside);
    assert!(!w.concerns.is_empty());
}

/// SP-5 in miniature: a SHORT_BINUNICODE whose payload runs past its FRAME. pickle.loads reads
/// it whole; `_pickle` on a file drops the frame's rest and reads 12 bytes from after the frame,
/// then runs what follows them. Both readings are walked. Fails if the straddle goes unseen or
/// the file reading is not scanned.
#[test]
fn frame_straddles_are_read_both_ways() {
    let mut frame = b"N0".repeat(4);
    frame.extend_from_slice(b"\x8c\x0cAAAAAAAAAAA");
    let mut data = b"\x80\x04\x95".to_vec();
    data.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    data.extend_from_slice(&frame);
    // After the frame: one byte finishes the bytes reading's string, then a UNICODE line hides
    // a STACK_GLOBAL from it; the file reading takes 12 bytes here and runs the rest.
    let call = b"\x8c\x05posix\x8c\x06system\x93N\x85R0V";
    data.extend_from_slice(b"AVyyyyyyyyyy");
    data.extend_from_slice(call);
    data.extend_from_slice(b"\nN.");
    let w = scan(&data);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert!(w.globals.is_empty());
    assert_eq!(w.concerns.len(), 1);
    let file = w.file_reading.expect("the file reading is walked");
    assert_eq!(file.globals.len(), 1);
    assert_eq!(file.globals[0].name.as_deref(), Some("system"));
}

/// A FRAME inside a frame, longer than what is left of the outer one: `load_frame` reads the
/// new frame with one read, which drops the rest of the outer frame (CPython 3.11 on a file
/// resolves the STACK_GLOBAL after the outer frame; pickle.loads stops before it). Fails if the
/// file reading starts the drop anywhere but after the inner FRAME's length.
#[test]
fn a_frame_inside_a_frame_drops_the_outer_rest() {
    let mut outer = b"N0".repeat(8);
    outer.push(0x95);
    outer.extend_from_slice(&40u64.to_le_bytes());
    outer.extend_from_slice(b"\x8c\x02hiN.");
    let mut data = b"\x80\x04\x95".to_vec();
    data.extend_from_slice(&(outer.len() as u64).to_le_bytes());
    data.extend_from_slice(&outer);
    data.extend_from_slice(b"\x8c\x05posix\x8c\x06system\x93N.");
    data.extend_from_slice(&[b'x'; 40]);
    let w = walk(
        &data,
        0,
        Count::One,
        false,
        &Policy::new(),
        Limits::default(),
    );
    assert!(w.globals.is_empty(), "pickle.loads stops at the inner STOP");
    let file = w.file_reading.expect("the file reading is walked");
    assert_eq!(file.globals.len(), 1);
    assert_eq!(file.globals[0].name.as_deref(), Some("system"));
}
