//! Attacks that name only allowlisted globals (issue 9, `tests/py/reconstruction_attacks.py`,
//! cases RC-1..RC-9 and RC-33): forged numpy dtype states, pointer-making and uninitialised-memory
//! constructors, torch's integer-pointer constructor, expensive codecs, and out-of-range
//! scikit-learn/numpy RNG state. Each case runs in its own child process, so a crash shows up
//! as a signal in the report instead of killing the test.

use std::collections::BTreeMap;

use crate::ml_stack::ml_python;
use crate::support::{self, json_lines, run_ok, script};

/// What each payload does to a process that loads it without validated reconstruction.
const HARM: &[(&str, &str)] = &[
    ("RC-1", "crashed"),
    ("RC-2", "crashed"),
    ("RC-3", "crashed"),
    ("RC-4", "crashed"),
    ("RC-5", "leaked"),
    ("RC-6", "crashed"),
    ("RC-7", "hung"),
    ("RC-8", "crashed"),
    ("RC-9", "crashed"),
    ("RC-33", "hung"),
];

/// Runs every case of the attack script `attacks` through `entry` with `command`'s
/// environment; outcome by case ID.
fn script_outcomes(
    attacks: &str,
    mut command: std::process::Command,
    entry: &str,
) -> BTreeMap<String, serde_json::Value> {
    let output = run_ok(command.arg(script(attacks)).arg("run").arg(entry));
    json_lines(&output.stdout)
        .into_iter()
        .map(|report| (report["case"].as_str().unwrap().to_string(), report))
        .collect()
}

/// `reconstruction_attacks.py` (RC-1..RC-9, RC-33) through `entry`.
fn outcomes(command: std::process::Command, entry: &str) -> BTreeMap<String, serde_json::Value> {
    script_outcomes("reconstruction_attacks.py", command, entry)
}

/// Control: without the guard every payload does its harm. If this fails the corpus is
/// broken, and a test showing the guard refuses it would prove nothing.
#[test]
fn rc_payloads_harm_an_unguarded_process() {
    let Some(python) = ml_python("rc_payloads_harm_an_unguarded_process") else {
        return;
    };
    let reports = outcomes(support::command(&python), "pickle.loads");
    for (case, harm) in HARM {
        assert_eq!(
            reports[*case]["outcome"], *harm,
            "{case} without the guard: {}",
            reports[*case]
        );
    }
}

/// The entry points of `reconstruction_attacks.py`: pickleguard's unpickler through `pickle`
/// and `_pickle`, a `find_class` subclass, and the guarded pure-Python `pickle._loads`.
const ENTRIES: &[&str] = &[
    "pickle.loads",
    "pickle.load",
    "pickle.Unpickler",
    "_pickle.loads",
    "pickle._loads",
    "subclass",
];

/// Under the preload every payload is refused with `UnsafeFileError` before library code sees
/// it, through every entry point, and names the check that caught it: no crash, no leak, no
/// hang. RC-8's `Tree` is refused by name: its node arrays cannot be validated, so it left the
/// `sklearn` pack (ALLOWLIST.md). The `sklearn` pack is on so that RC-8 proves exactly that.
#[test]
fn rc_payloads_are_refused_through_every_entry_point() {
    let Some(python) = ml_python("rc_payloads_are_refused_through_every_entry_point") else {
        return;
    };
    for entry in ENTRIES {
        let mut command = support::preloaded(&python);
        command.env("PICKLEGUARD_PACKS", "sklearn");
        let reports = outcomes(command, entry);
        for (case, _) in HARM {
            let report = &reports[*case];
            assert_eq!(report["outcome"], "refused", "{case} via {entry}: {report}");
            let message = report["message"].as_str().unwrap_or_default();
            let named = if *case == "RC-8" {
                message.contains("`sklearn.tree._tree.Tree`")
            } else {
                message.contains(" check (")
            };
            assert!(
                named,
                "{case} via {entry}: the refusal names no check: {message}"
            );
        }
    }
}

/// `reconstruction_memo_attacks.py` (RC-26..RC-32) through `entry`.
fn memo_outcomes(
    command: std::process::Command,
    entry: &str,
) -> BTreeMap<String, serde_json::Value> {
    script_outcomes("reconstruction_memo_attacks.py", command, entry)
}

/// The memo attacks (RC-26..RC-30) by entry: what each does to an unguarded process, and
/// what the guard makes of it. RC-26's harm happens after the load, so the guard's success is
/// a harmless load (the field reads back as the integer it was), not a refusal. RC-30's harm
/// was the guard's own (it kept every built object): its control RC-30c shows the measurement
/// sees 300 MiB of results that a pickle really keeps.
const MEMO_CASES: &[(&str, &[&str], &str, &str)] = &[
    (
        "RC-26",
        &[
            "pickle.loads",
            "pickle.Unpickler",
            "_pickle.loads",
            "pickle._loads",
            "subclass",
        ],
        "crashed",
        "loaded",
    ),
    (
        "RC-27",
        &[
            "pickle.Unpickler",
            "_pickle.Unpickler",
            "pickle._Unpickler",
            "subclass",
        ],
        "crashed",
        "refused",
    ),
    (
        "RC-28",
        &[
            "pickle.Unpickler",
            "_pickle.Unpickler",
            "pickle._Unpickler",
            "subclass",
        ],
        "leaked",
        "refused",
    ),
    (
        "RC-29",
        &["pickle.loads", "pickle._loads", "subclass"],
        "harmed",
        "refused",
    ),
    (
        "RC-30",
        &["pickle.loads", "pickle._loads"],
        "loaded",
        "loaded",
    ),
    (
        "RC-30c",
        &["pickle.loads", "pickle._loads"],
        "bloated",
        "bloated",
    ),
    (
        "RC-32",
        &["pickle.loads", "pickle._loads", "subclass"],
        "harmed",
        "loaded",
    ),
];

fn memo_entries() -> Vec<&'static str> {
    let mut entries: Vec<&str> = MEMO_CASES
        .iter()
        .flat_map(|(_, entries, _, _)| entries.iter().copied())
        .collect();
    entries.sort_unstable();
    entries.dedup();
    entries
}

/// Control for RC-26..RC-30c: without the guard each one does its harm through each entry
/// (RC-30 has none there; RC-30c shows the memory measure works).
#[test]
fn rc_memo_payloads_harm_an_unguarded_process() {
    let Some(python) = ml_python("rc_memo_payloads_harm_an_unguarded_process") else {
        return;
    };
    for entry in memo_entries() {
        let reports = memo_outcomes(support::command(&python), entry);
        for (case, entries, harm, _) in MEMO_CASES {
            if entries.contains(&entry) {
                assert_eq!(
                    reports[*case]["outcome"], *harm,
                    "{case} via {entry} without the guard: {}",
                    reports[*case]
                );
            }
        }
    }
}

/// Under the preload: a checked dtype state reaches numpy as a private copy (RC-26), a
/// second load on one unpickler knows its memo's objects (RC-27, RC-28), and a BUILD onto a
/// resolved class is refused by the pure-Python unpickler too (RC-29), and objects the pickle
/// built and dropped are not kept for the rest of the load (RC-30).
#[test]
fn rc_memo_payloads_are_harmless_under_the_guard() {
    let Some(python) = ml_python("rc_memo_payloads_are_harmless_under_the_guard") else {
        return;
    };
    for entry in memo_entries() {
        let reports = memo_outcomes(support::preloaded(&python), entry);
        for (case, entries, _, guarded) in MEMO_CASES {
            if entries.contains(&entry) {
                assert_eq!(
                    reports[*case]["outcome"], *guarded,
                    "{case} via {entry}: {}",
                    reports[*case]
                );
            }
        }
    }
}

/// What `pickleguard scan` must say of each attack file, and why (issue 10, item 2): the check
/// that refuses it in a scan, the same one that refuses its load; `None` for the files whose
/// loads are harmless under the guard (RC-26, RC-30, RC-30c, RC-32: a private copy or no harm
/// at all), which scan clean as they load.
const SCAN_VERDICTS: &[(&str, Option<&str>)] = &[
    ("RC-1", Some("numpy-dtype-state")),
    ("RC-2", Some("numpy-dtype-state")),
    ("RC-3", Some("numpy-dtype-state")),
    ("RC-4", Some("numpy-dtype-state")),
    ("RC-5", Some("allowed-opcodes")),
    ("RC-6", Some("allowed-opcodes")),
    ("RC-7", Some("cheap-codec")),
    // The set-once rule, across two pickles sharing one memo.
    ("RC-27", Some("numpy-dtype-state")),
    // `numpy.ndarray` applied from the first pickle's memo.
    ("RC-28", Some("allowed-opcodes")),
    // BUILD onto the class `NumpyArrayWrapper` itself.
    ("RC-29", Some("allowed-opcodes")),
    ("RC-9", Some("bit-generator-state")),
    ("RC-33", Some("cheap-codec")),
    ("RC-26", None),
    ("RC-30", None),
    ("RC-30c", None),
    ("RC-32", None),
];

/// SC-1: every attack file above is a finding in a scan (exit 1) naming the check that refuses
/// its load, and the files that load harmlessly scan clean: a scan and a load agree. RC-8
/// names `sklearn.tree._tree.Tree`, which no pack allows (exit 5). Fails if the scanner
/// applies only the rules' opcode table again (`main` before this change called RC-1..RC-4,
/// RC-7, RC-9, RC-29 and RC-33 clean and could not read RC-27/RC-28 at all).
#[test]
fn rc_files_are_findings_in_a_scan() {
    let Some(python) = ml_python("rc_files_are_findings_in_a_scan") else {
        return;
    };
    let dir = support::TempDir::new("rc-scan");
    for attacks in [
        "reconstruction_attacks.py",
        "reconstruction_memo_attacks.py",
    ] {
        run_ok(
            support::command(&python)
                .arg(script(attacks))
                .arg("write")
                .arg(dir.path()),
        );
    }
    let scan = |file: &str| {
        let output = support::run(
            support::command(support::cli())
                .args(["scan", "--format", "json"])
                .arg(dir.path().join(format!("{file}.pkl"))),
            std::time::Duration::from_secs(60),
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("scan JSON");
        (output.status.code(), report)
    };
    for (case, check) in SCAN_VERDICTS {
        let (code, report) = scan(case);
        let concerns = report["files"][0]["concerns"].as_array().cloned();
        let concerns = concerns.unwrap_or_default();
        match check {
            Some(check) => {
                assert_eq!(code, Some(1), "{case}: {report}");
                let named = concerns.iter().any(|concern| {
                    concern["kind"] == "rule"
                        && concern["detail"]
                            .as_str()
                            .is_some_and(|detail| detail.contains(&format!("`{check}`")))
                });
                assert!(named, "{case}: no `{check}` rule concern: {report}");
            }
            None => assert_eq!(code, Some(0), "{case}: {report}"),
        }
    }
    let (code, report) = scan("RC-8");
    assert_eq!(code, Some(5), "RC-8: {report}");
    assert!(report.to_string().contains("\"Tree\""), "RC-8: {report}");
}

/// The attacker's review of the scanner's value checks (`tests/findings/scan`, s1-s17): what
/// the scan and the guarded load must do with each file, and why. `"crashed"`/`"harmed"` in the
/// control column is what the file does without the guard (the harm the test would miss).
/// Files of s3 and s7-s10 harmed no load: their harm was the scanner's or the guard's own cost
/// (gigabytes, minutes, a stack overflow), bounded now: the scan stays under `SCAN_MB`.
const SCAN_FINDINGS: &[(&str, i32, &str, &str)] = &[
    // (case, scan exit, guarded load, unguarded load)
    ("s1_int_nul", 1, "refused", "crashed"),
    ("s2_dict_dup_over_64", 1, "refused", "crashed"),
    ("s3_arena_keeps_args", 0, "loaded", "loaded"),
    ("s4_surrogate_keys_merge", 1, "refused", "crashed"),
    ("s5_hooks_filled_before", 1, "refused", "harmed"),
    // The guard's unpickler reads INT as a decimal and raises on `0x10`; CPython reads it.
    ("s6_int_base0", 1, "error", "crashed"),
    ("s7_dict_key_compare_cost", 0, "loaded", "loaded"),
    ("s8_deep_tuple_key", 0, "loaded", "loaded"),
    ("s9_built_args_cloned_unbounded", 0, "loaded", "loaded"),
    ("s10_built_args_chain", 0, "loaded", "loaded"),
    ("s11_joblib_int_base0", 1, "refused", "crashed"),
    ("s12_torch_zip_int_nul", 1, "refused", "crashed"),
    ("s13_codec_result_is_bytes", 1, "refused", "error"),
    // With an operator's allow entry for `numpy._core.multiarray.ndarray`: the guard follows
    // the object to its ruled name and refuses; the scan cannot resolve spellings (it says
    // clean, the safe direction: the load refuses).
    ("s14_alias_of_a_ruled_global", 0, "refused", "loaded"),
    // Results of an exact built-in type (here `bytes`) are read by value, so no record of their
    // arguments is kept: the guarded load stays at the unguarded one's size.
    ("s15_alive_records_keep_args", 0, "loaded", "loaded"),
    // `_pickle` reads `I063` as 51 (octal), the guard as 63: the scan reports the readers'
    // disagreement; the guarded load builds the genuine array.
    ("s16_int_leading_zero_octal", 1, "loaded", "crashed"),
    ("s17_setitem_onto_a_list", 1, "refused", "crashed"),
    // Live objects whose records keep 4,001 values each: refused as `kept-values` at about
    // 300 MB, by the scan and the guard alike, where they grew without bound.
    ("s18_alive_frozensets", 1, "refused", "loaded"),
];

/// Peak memory any guarded load of those files may use (a torch import is about 650 MB).
const GUARDED_MB: u64 = 1_000;

/// Peak memory any of those scans may use (s18's refusal comes at about 300 MB).
const SCAN_MB: u64 = 400;

/// SC-2: each reproducer of the attacker's review, built anew, scanned and loaded with and
/// without the guard (`tests/findings/scan/harness.py --json`), ends as `SCAN_FINDINGS` says:
/// no scan calls a file clean whose guarded load refuses it by a check the scan could see, the
/// guarded process never crashes, and every scan stays small. Fails if any fix of s1-s17 is
/// undone (each was a clean scan of a crashing file, a guard crash, or gigabytes).
#[test]
fn scan_findings_of_the_attackers_review() {
    let Some(python) = ml_python("scan_findings_of_the_attackers_review") else {
        return;
    };
    let output = run_ok(
        support::command(&python)
            .arg(support::repo().join("tests/findings/scan/harness.py"))
            .arg("--json")
            .env("PICKLEGUARD_ROOT", support::repo())
            .env("PY", &python),
    );
    let reports: BTreeMap<String, serde_json::Value> = json_lines(&output.stdout)
        .into_iter()
        .map(|report| (report["case"].as_str().unwrap().to_string(), report))
        .collect();
    for (case, scan_exit, guarded, unguarded) in SCAN_FINDINGS {
        let report = &reports[*case];
        assert_eq!(report["scan_exit"], *scan_exit, "{case}: {report}");
        assert_eq!(report["guarded"], *guarded, "{case}: {report}");
        assert_eq!(
            report["unguarded"], *unguarded,
            "{case} (control): {report}"
        );
        let mb = report["scan_mb"].as_u64().unwrap_or(u64::MAX);
        assert!(mb < SCAN_MB, "{case}: the scan used {mb} MB: {report}");
        let mb = report["guarded_mb"].as_u64().unwrap_or(u64::MAX);
        assert!(
            mb < GUARDED_MB,
            "{case}: the guarded load used {mb} MB: {report}"
        );
    }
    // s14's other layouts: the alias named first, then `numpy.ndarray` by its ruled name (the
    // scan names it too); and the alias alone, which only the runtime can follow to the ruled
    // global it is (by `__module__`/`__qualname__`, checked to resolve to the same object).
    for (variant, scan_exit) in [("alias_first", 1), ("alias", 0)] {
        let output = run_ok(
            support::command(&python)
                .arg(support::repo().join("tests/findings/scan/harness.py"))
                .arg("--json")
                .arg(support::repo().join("tests/findings/scan/s14_alias_of_a_ruled_global.py"))
                .env("PICKLEGUARD_ROOT", support::repo())
                .env("PY", &python)
                .env("VARIANT", variant),
        );
        let report = &json_lines(&output.stdout)[0];
        assert_eq!(report["scan_exit"], scan_exit, "s14 {variant}: {report}");
        assert_eq!(report["guarded"], "refused", "s14 {variant}: {report}");
        assert_eq!(
            report["unguarded"], "loaded",
            "s14 {variant} (control): {report}"
        );
    }
}
