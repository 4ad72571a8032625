"""Renders bench/results.json as BENCHMARKS.md and bench/README_SECTION.md.

    python bench/report.py [bench/results.json]     # re-render without re-running

Everything in the generated files comes from the JSON, except the profiling notes, which are
bench/NOTES.md copied in verbatim.
"""
import json
import os
import sys

from bench import fmt_pct, fmt_ratio, fmt_spread, table, TARGET_SCAN_GBPS  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

VARIANT_LABEL = {
    "stock": "stock (no protection)",
    "pickleguard": "pickleguard preload",
    "fickling": "fickling hook (activate_safe_ml_environment)",
    "weights_only": "torch.load(weights_only=True)",
    "floor": "do-nothing C audit hook (floor)",
}

WORKLOAD_LABEL = {
    "object_heavy": "object-heavy pickle",
    "numpy_dict": "dict of numpy arrays",
    "torch_small": "torch state_dict, many small tensors",
    "torch_large": "torch state_dict, a few large tensors",
    "sklearn_joblib": "joblib-dumped scikit-learn model",
    "object_heavy_nomemo": "worst case: one find_class per object (memo off)",
    "tiny": "tiny pickle (fixed cost)",
    "huge": ">= 1 GiB pickle (one numpy array)",
}


def fmt_mbps(sp):
    if not sp:
        return "n/a"
    digits = 0 if sp["median"] >= 10 else 2
    return fmt_spread(sp, 1, digits)


def mb(n):
    return "%.1f MB" % (n / 1e6)


def status(s):
    return {"met": "met", "MISSED": "**MISSED**", "n/a": "not measured"}.get(s, s)


def summary_table(results):
    rows = []
    for t in results["targets"]:
        note = "; ".join(x for x in (t.get("cause"), t["note"]) if x)
        rows.append([t["target"], t["figure"], t["value"], status(t["status"]), note])
    return table(["target", "figure", "pickleguard, median (min-max)", "status", "why / note"], rows)


def machine_table(results):
    m = results["machine"]
    libs = ", ".join("%s %s" % (k, v) for k, v in m.get("libraries", {}).items() if v)
    rows = [
        ["CPU", "%s, %s cores" % (m.get("cpu_model"), m.get("cores"))],
        ["memory", "%s GiB" % m.get("memory_gib")],
        ["kernel, libc", "%s, %s" % (m.get("kernel"), m.get("libc"))],
        ["load average (1, 5, 15 min) at start / end", "%s / %s" % (
            ", ".join("%.2f" % x for x in m.get("loadavg_start", [])),
            ", ".join("%.2f" % x for x in m.get("loadavg_end", [])))],
        ["bench venv Python", m.get("python_bench_venv")],
        ["base Python (start-up, loops, callgrind)", m.get("python_base")],
        ["Debian Python", m.get("python_debian", "not installed")],
        ["libraries", libs],
        ["pickleguard", "%s, commit %s%s; shim %s, core %s" % (
            m.get("pickleguard"), m.get("git_commit"),
            " (uncommitted changes in: %s)" % ", ".join(sorted(set(l[3:].split("/")[0] for l in m["git_dirty_core"])))
            if m.get("git_dirty_core") else "",
            mb(m.get("shim_bytes") or 0), mb(m.get("core_bytes") or 0))],
        ["artifacts (copied at start; sha256, first 16 hex)", ", ".join(
            "%s %s (built %s)" % (k, v["sha256_16"], v["built"]) for k, v in m.get("artifacts", {}).items())],
        ["toolchain", "%s; %s; %s" % (m.get("rustc"), m.get("cc"), m.get("valgrind") or "no valgrind")],
        ["environment", ", ".join("%s=%s" % (k, v) for k, v in m.get("env", {}).items() if v is not None) or "-"],
    ]
    return table(["", ""], rows)


def safety_section(sec):
    out = ["## 1. First: does each protection block a payload?", "",
           "Each loader gets a malicious twin of its workload (`os.system(\"touch MARKER\")` in the "
           "pickle). *blocked* means the load raised and MARKER does not exist; *PAYLOAD RAN* means "
           "it exists. Stock must run it (that proves the payload works).", ""]
    evil = sec.get("evil_files", {})
    variants = ["stock", "pickleguard", "fickling", "weights_only"]
    rows = []
    for loader, res in evil.items():
        row = ["`%s`" % {"pickle": "pickle.load", "torch": "torch.load", "joblib": "joblib.load"}[loader]]
        for v in variants:
            r = res.get(v)
            row.append("-" if not r else ("**%s**" % r["verdict"] if r["verdict"] == "PAYLOAD RAN" and v != "stock" else r["verdict"]))
        rows.append(row)
    out.append(table(["loader"] + [VARIANT_LABEL[v] for v in variants], rows))
    corpus = sec.get("corpus", {})
    if corpus:
        misses = [(k, v) for k, v in corpus.items() if v["fickling"]["verdict"] != "refused"]
        pg_misses = [(k, v) for k, v in corpus.items() if v["pickleguard"]["verdict"] != "refused"]
        out += ["", "The project's attack corpus (`tests/py/corpus.py`, %d hand-made pickles, each through "
                "`pickle.loads` in a fresh process): fickling's hook did not refuse %d, pickleguard did not "
                "refuse %d." % (len(corpus), len(misses), len(pg_misses)), ""]
        rows = []
        for k, v in corpus.items():
            if v["fickling"]["verdict"] == "refused" and v["pickleguard"]["verdict"] == "refused":
                continue
            rows.append([k, v["description"], v["fickling"]["verdict"], v["pickleguard"]["verdict"],
                         (v["fickling"].get("error") or "")[:120]])
        if rows:
            out += [table(["case", "attack", "fickling hook", "pickleguard", "fickling's error, if any"], rows), ""]
    probes = sec.get("probes", {})
    if probes:
        out += ["Benign pickles that stock `pickle.loads` accepts (false refusals cost users too; "
                "pickleguard's default is its `ml` pack only):", ""]
        rows = []
        for k, v in probes.items():
            rows.append([v["description"], v["stock"]["verdict"], v["fickling"]["verdict"], v["pickleguard"]["verdict"]])
        out.append(table(["benign pickle", "stock", "fickling hook", "pickleguard (default packs)"], rows))
    return "\n".join(out)


def loads_section(sec):
    out = ["## 2. Load workloads", "",
           "Time of the load call alone, inside a fresh process, %d rounds (modules the pickle needs, and "
           "fickling, are imported before the clock starts in every variant; the file is in the page "
           "cache). Ratio = median of the per-round ratios to stock in the same round." % sec["runs"], ""]
    for name, e in sec["workloads"].items():
        title = WORKLOAD_LABEL.get(name, name)
        out += ["### %s (`%s`, %s%s)" % (title, e["loader"], mb(e["bytes"]),
                                         ", pickleguard with PICKLEGUARD_PACKS=" + e["pickleguard_packs"] if e["pickleguard_packs"] else ""), ""]
        if e.get("find_class_events") is not None:
            out += ["The load raises %d `pickle.find_class` event(s) (%d distinct global(s)): the only events "
                    "pickleguard's hook does real work on." % (e["find_class_events"], e.get("distinct_globals") or 0), ""]
        if not e["listed_in_issue"]:
            out += ["Not in the issue's list: the same kind of objects pickled with the memo off, so each "
                    "object carries its own global and every one raises a `pickle.find_class` event. It "
                    "measures the per-event cost of the check itself.", ""]
        rows = []
        for v, r in e["variants"].items():
            if "seconds" not in r:
                rows.append([VARIANT_LABEL[v], "not timed: " + r["preflight"], "", ""])
                continue
            ratio = r.get("ratio_to_stock")
            label = VARIANT_LABEL[v] + (" **(%s)**" % r["note"] if r.get("note") else "")
            rows.append([label, fmt_spread(r["seconds"], 1e3, 1), fmt_ratio(ratio) if ratio else "1 (baseline)",
                         fmt_pct(ratio) if ratio else ""])
        out += [table(["variant", "load ms, median (min-max)", "ratio to stock (min-max)", "overhead"], rows), ""]
    return "\n".join(out)


def startup_section(sec):
    out = ["### `python -c pass`", "",
           "%d rounds of %d launches per variant, interleaved launch by launch; each round's figure is "
           "the median launch; wall time of the whole process, fork to exit, taken by `bench/measure.c`." % (
               sec["rounds"], sec["launches_per_round"]), ""]
    rows = []
    for label, e in sec["interpreters"].items():
        v = e["variants"]
        d = e["pickleguard_minus_stock_s"]
        f = e["pickleguard_minus_floor_s"]
        fl = e["floor_minus_stock_s"]
        rows.append([label, fmt_spread(v["stock"]["seconds"], 1e3, 2), fmt_spread(v["floor"]["seconds"], 1e3, 2),
                     fmt_spread(v["pickleguard"]["seconds"], 1e3, 2),
                     "%+.2f (%+.2f..%+.2f)" % (d["median"] * 1e3, d["min"] * 1e3, d["max"] * 1e3),
                     "%+.2f (%+.2f..%+.2f)" % (f["median"] * 1e3, f["min"] * 1e3, f["max"] * 1e3),
                     "%+.2f" % (fl["median"] * 1e3)])
    out.append(table(["interpreter", "stock ms", "floor ms", "pickleguard ms", "pickleguard - stock, ms",
                      "pickleguard - floor, ms", "floor - stock, ms"], rows))
    rows = []
    for label, e in sec["interpreters"].items():
        v = e["variants"]
        d = e["cpu_pickleguard_minus_stock_s"]
        rows.append([label, fmt_spread(v["stock"]["cpu_seconds"], 1e3, 2), fmt_spread(v["floor"]["cpu_seconds"], 1e3, 2),
                     fmt_spread(v["pickleguard"]["cpu_seconds"], 1e3, 2),
                     "%+.2f (%+.2f..%+.2f)" % (d["median"] * 1e3, d["min"] * 1e3, d["max"] * 1e3)])
    out += ["", "The same launches in CPU time (user + system, from `wait4`), which time spent waiting for "
            "a core on this shared machine does not inflate:", "",
            table(["interpreter", "stock CPU ms", "floor CPU ms", "pickleguard CPU ms", "pickleguard - stock, CPU ms"], rows)]
    return "\n".join(out)


def loops_section(sec):
    out = ["### Audit-event-heavy loops", "",
           "`bench/child_audit.py` on %s, %d rounds, each loop timed inside one fresh process per "
           "variant; per-iteration times. The floor is a preloaded C audit hook that returns 0: what "
           "any audit-hook-based protection pays before doing anything." % (sec["python"], sec["rounds"]), ""]
    rows = []
    for name, e in sec["loops"].items():
        v = e["variants"]
        rows.append(["`%s`" % name, fmt_spread(v["stock"]["seconds_per_iteration"], 1e9, 0),
                     fmt_spread(v["floor"]["seconds_per_iteration"], 1e9, 0),
                     fmt_spread(v["pickleguard"]["seconds_per_iteration"], 1e9, 0),
                     fmt_pct(e["floor_vs_stock"]), fmt_pct(e["pickleguard_vs_stock"]), fmt_pct(e["pickleguard_vs_floor"]),
                     "%+.0f" % (e["pickleguard_minus_floor_s"]["median"] * 1e9),
                     ", ".join("%s x%g" % kv for kv in e.get("events_per_iteration", {}).items()) or "none"])
    out.append(table(["loop", "stock ns/iter", "floor ns/iter", "pickleguard ns/iter", "floor vs stock",
                      "pickleguard vs stock", "pickleguard vs floor", "pickleguard - floor, ns/iter",
                      "audit events per iteration"], rows))
    return "\n".join(out)


def pyperf_section(sec):
    if "skipped" in sec:
        return "### pyperformance\n\nSkipped: " + sec["skipped"]
    out = ["### pyperformance", "",
           "pyperformance's own benchmark scripts, run with pyperf in worker mode: one fresh process per "
           "round and variant, %d rounds, %d warm-up and %d values each at a fixed loop count; the figure "
           "is the mean value per loop (pyperf divides by loops and inner loops). Audit events per loop "
           "are counted in separate, untimed runs. `unpickle*` load datetime objects, so pickleguard runs them with "
           "PICKLEGUARD_PACKS=stdlib-data." % (sec["rounds"], sec["warmups"], sec["values_per_process"]), ""]
    rows = []
    for name, e in sec["benchmarks"].items():
        if "skipped" in e:
            rows.append([name, "skipped: " + e["skipped"], "", "", "", "", ""])
            continue
        v = e["variants"]
        unit = 1e6
        m = v["stock"]["seconds"]["median"] * unit
        d = 3 if m < 1 else (2 if m < 10 else 1)
        rows.append([name, fmt_spread(v["stock"]["seconds"], unit, d), fmt_spread(v["floor"]["seconds"], unit, d),
                     fmt_spread(v["pickleguard"]["seconds"], unit, d), fmt_pct(e["floor_vs_stock"]),
                     fmt_pct(e["pickleguard_vs_stock"]), fmt_pct(e["pickleguard_vs_floor"]),
                     ", ".join("%s x%g" % kv for kv in e.get("events_per_loop", {}).items()) or "none"])
    out.append(table(["benchmark", "stock µs/loop", "floor µs/loop", "pickleguard µs/loop", "floor vs stock",
                      "pickleguard vs stock", "pickleguard vs floor", "audit events per loop"], rows))
    return "\n".join(out)


def scanner_section(sec):
    out = ["## 4. Static scanners", ""]
    if sec.get("pickleguard_scan_missing"):
        out += ["**pickleguard scan: not measured.** " + sec["pickleguard_scan_missing"], ""]
    out += ["Each tool scans the same files as a user runs it: the whole process (start-up included) "
            "is timed, and its peak RSS taken, by `bench/measure.c` (fork, exec, `wait4` in a small C "
            "parent, so neither the driver's fork nor its memory is counted). MB/s = file size / wall time. "
            "Speed-up = picklescan's time / the tool's time in the same round. The verdict column "
            "reads each tool's exit code (and notes a Python traceback), because the tools disagree on "
            "what is safe. A run is given up after %s s (the tool is then not run on that file again) "
            "and each process may use at most %.0f GiB of address space." % (
                int(sec.get("timeout_s", 0)), sec.get("memory_limit_bytes", 0) / 2**30), ""]
    tools = sec.get("tools", [])
    for fname, e in sec.get("files", {}).items():
        out += ["### %s (%s%s)" % (WORKLOAD_LABEL.get(fname, fname), mb(e["bytes"]),
                                   ", pickleguard scan --pack " + e["pickleguard_packs"] if e.get("pickleguard_packs") else ""), ""]
        rows = []
        for tool in tools:
            t = e["tools"].get(tool, {})
            if t.get("timed_out_after_s") and not t.get("seconds"):
                rows.append([tool, "timed out (> %d s)" % t["timed_out_after_s"], "", "", "", ""])
                continue
            sp = t.get("speedup_vs_picklescan")
            verdict = ", ".join(t.get("verdicts", []))
            if t.get("crashed"):
                verdict += ": `%s`" % t["crashed"][:100]
            rows.append([tool, fmt_spread(t.get("seconds"), 1e3, 1), fmt_mbps(t.get("mb_per_s")),
                         fmt_ratio(sp, 1) if sp else ("1 (baseline)" if tool == "picklescan" else "-"),
                         fmt_spread(t.get("peak_rss_bytes"), 1e-6, 0), verdict])
        out += [table(["tool", "ms, median (min-max)", "MB/s", "speed-up vs picklescan", "peak RSS MB", "verdict"], rows), ""]
        vs = e["tools"].get("pickleguard scan", {}).get("time_vs_baseline")
        if vs:
            out += ["pickleguard scan's time / the baseline build's, same rounds: %s" % fmt_ratio(vs, 3), ""]
    if sec.get("evil"):
        rows = []
        for loader, res in sec["evil"].items():
            rows.append(["evil_%s (%s)" % (loader, {"pickle": "raw pickle", "torch": "torch.save zip", "joblib": "joblib.dump"}[loader])]
                        + [res[t].get("verdict", "exit %s" % res[t]["rc"]) for t in tools])
        out += ["### Malicious twins (`os.system` in the pickle): what each tool says", "", table(["file"] + tools, rows), "",
                "Exit codes: " + "; ".join("%s: %s" % (k, v) for k, v in sec.get("exit_codes", {}).items() if k in tools), ""]
    bw = sec.get("bandwidth")
    if bw:
        rows = [["numpy copy of %s (memcpy; GB copied per s)" % mb(bw["memcpy_bytes"]), fmt_spread(bw["memcpy_numpy_gb_per_s"], 1, 2)],
                ["`dd if=/dev/zero of=/dev/null bs=1M`", fmt_spread(bw["dd_zero_to_null_gb_per_s"], 1, 2)]]
        if bw.get("page_cache_read_gb_per_s"):
            rows.append(["`dd` of the >= 1 GiB pickle from the page cache (what any scanner must read)",
                         fmt_spread(bw["page_cache_read_gb_per_s"], 1, 2)])
        out += ["### Memory bandwidth on the same machine", "", table(["measure", "GB/s, median (min-max)"], rows), ""]
    return "\n".join(out)


def callgrind_section(sec):
    if "skipped" in sec:
        return "## 5. Instruction counts\n\nSkipped: " + sec["skipped"]
    out = ["## 5. Instruction counts (callgrind)", "",
           "Wall time on a shared 2-core machine moves by a few percent from run to run; instruction "
           "counts do not. Per-event figures are (Ir of N2 iterations - Ir of N1) / (N2 - N1), so "
           "start-up cancels; PYTHONHASHSEED=0. Python: %s; the `pickle.load` rows run in the bench venv and "
           "count only inside `_pickle_load` (`--toggle-collect`), the hook calls it makes included." % sec["python"], ""]
    s = sec["startup"]
    rows = [["`python -c pass`, whole process", "{:,}".format(s["stock"]), "{:,}".format(s["floor"]),
             "{:,}".format(s["pickleguard"]), "{:+,}".format(s["pickleguard"] - s["stock"]),
             "{:+,}".format(s["pickleguard"] - s["floor"])]]
    for label, r in sec["per_event"].items():
        rows.append([label + ", per event", "%.0f" % r["stock"], "%.0f" % r["floor"], "%.0f" % r["pickleguard"],
                     "%+.0f" % (r["pickleguard"] - r["stock"]), "%+.0f" % (r["pickleguard"] - r["floor"])])
    for name, r in sec.get("loads", {}).items():
        rows.append(["inside `pickle.load` of the %s" % WORKLOAD_LABEL.get(name, name), "{:,}".format(r["stock"]),
                     "{:,}".format(r["floor"]), "{:,}".format(r["pickleguard"]),
                     "{:+,} ({:+.3f}%)".format(r["pickleguard"] - r["stock"], (r["pickleguard"] / r["stock"] - 1) * 100),
                     "{:+,} ({:+.3f}%)".format(r["pickleguard"] - r["floor"], (r["pickleguard"] / r["floor"] - 1) * 100)])
    out.append(table(["instructions (Ir)", "stock", "floor", "pickleguard", "pickleguard - stock", "pickleguard - floor"], rows))
    if sec.get("find_class_profile_top"):
        out += ["", "Where pickleguard's instructions go on the find_class loop (`callgrind_annotate --inclusive=yes`, "
                "lines naming pickleguard, pyo3 or the policy):", "", "```"] + sec["find_class_profile_top"] + ["```"]
    return "\n".join(out)


def render_markdown(results, notes_path):
    sec = results["sections"]
    m = results["method"]
    parts = ["# Benchmarks", "",
             "Generated by `make bench` (`bench/bench.py`) on %s; raw figures in `bench/results.json`. "
             "Do not edit by hand: the closing notes come from `bench/NOTES.md`." % results["finished"], ""]
    if results.get("quick"):
        parts += ["> **QUICK MODE**: small files and fewer runs than the method requires. These figures "
                  "only show that the bench works; do not quote them.", ""]
    if results.get("errors"):
        parts += ["> **Sections that failed in this run** (their figures are missing): " + "; ".join(
            "%s: `%s`" % kv for kv in results["errors"].items()), ""]
    parts += ["## Summary against the targets", "", summary_table(results), "",
              "## Machine", "", machine_table(results), "",
              "## Method", "",
              "- Every figure is the median over at least 5 runs, each in a fresh process, with the min-max of "
              "those runs: %s." % ", ".join(x for x in (
                  "loads %s runs" % sec["loads"]["runs"] if "loads" in sec else "",
                  "start-up %s rounds of %s launches" % (sec["startup"]["rounds"], sec["startup"]["launches_per_round"]) if "startup" in sec else "",
                  "audit-heavy loops %s runs" % sec["loops"]["rounds"] if "loops" in sec else "",
                  "pyperformance %s runs" % sec["pyperformance"].get("rounds") if "pyperformance" in sec and "rounds" in sec["pyperformance"] else "",
                  "scanners %s runs" % m.get("runs", 0) if "scanner" in sec else "") if x),
              "- The variants of a comparison are interleaved run by run (A B C, then C B A, ...) so that drift "
              "on this shared, noisy machine hits them alike. A ratio is the median of the per-round ratios "
              "to the baseline measured in the same round, with their min-max.",
              "- Variants: *stock* (no preload); *pickleguard* (`LD_PRELOAD=%s`, copied with its core and "
              "the CLI into a private directory at the start, so a rebuild during the run cannot mix two "
              "builds); *floor*: a preloaded C "
              "audit hook that does nothing (`bench/noop_hook.c`, built with `%s`); *fickling*: "
              "`fickling.hook.activate_safe_ml_environment()` called in the process before the load; "
              "*weights_only*: `torch.load(weights_only=True)`. Stock torch loads pass `weights_only=False` "
              "(torch >= 2.6 defaults to True)." % ("target/release/libpickleguard.so", m.get("floor", "cc")),
              "- Workload scale %s; the large scanner pickle is %d MiB. Files are written under /tmp with "
              "fixed seeds and deleted afterwards." % (m.get("scale"), m.get("huge_mib", 0)),
              "- Durations of this run (s): %s." % ", ".join("%s %s" % kv for kv in results.get("durations_s", {}).items()),
              ""]
    if "safety" in sec:
        parts += [safety_section(sec["safety"]), ""]
    if "loads" in sec:
        parts += [loads_section(sec["loads"]), ""]
    if any(k in sec for k in ("startup", "loops", "pyperformance")):
        parts += ["## 3. Process overhead", ""]
        if "startup" in sec:
            parts += [startup_section(sec["startup"]), ""]
        if "loops" in sec:
            parts += [loops_section(sec["loops"]), ""]
        if "pyperformance" in sec:
            parts += [pyperf_section(sec["pyperformance"]), ""]
    if "scanner" in sec:
        parts += [scanner_section(sec["scanner"]), ""]
    if "callgrind" in sec:
        parts += [callgrind_section(sec["callgrind"]), ""]
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            parts += [f.read().strip(), ""]
    parts += ["## Reproduce", "", "    make bench                     # ~20 min on 2 cores; needs network to PyPI once for .venv-bench",
              "    .venv-bench/bin/python bench/bench.py --quick --only loads   # a section, small files (figures not valid)",
              "    .venv-bench/bin/python bench/report.py                      # re-render from bench/results.json", ""]
    return "\n".join(parts)


def render_readme_section(results):
    rows = []
    for t in results["targets"]:
        rows.append([t["target"], t["figure"], t["value"], status(t["status"]), t.get("cause", "")])
    missed = [t for t in results["targets"] if t["status"] == "MISSED"]
    unmeasured = [t for t in results["targets"] if t["status"] == "n/a"]
    lines = ["## Performance", "",
             "Measured by `make bench` on a 2-core machine (%s): medians of >= 5 fresh-process runs, "
             "variants interleaved, ratios taken against the baseline of the same round. Method, every "
             "figure with its min-max, fickling, `torch.load(weights_only=True)`, picklescan and modelscan "
             "side by side: [BENCHMARKS.md](BENCHMARKS.md)." % results["machine"].get("cpu_model", ""), "",
             table(["target", "measured on", "pickleguard, median (min-max)", "status", "why it missed"], rows), ""]
    if results.get("quick"):
        lines += ["**These figures come from a QUICK development run and are not valid.**", ""]
    if missed:
        lines += ["%d figure(s) miss their target. *noise* means the instruction counts (callgrind), which do "
                  "not move between runs, show no cost that could explain the wall-time figure; *real* means "
                  "they do. BENCHMARKS.md has every figure, the profiles and the causes." % len(missed), ""]
    if unmeasured:
        lines += ["Not measured yet: " + "; ".join(sorted(set(t["note"] or t["figure"] for t in unmeasured))), ""]
    return "\n".join(lines)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.json")
    with open(path) as f:
        results = json.load(f)
    with open(os.path.join(REPO, "BENCHMARKS.md"), "w") as f:
        f.write(render_markdown(results, os.path.join(HERE, "NOTES.md")))
    with open(os.path.join(HERE, "README_SECTION.md"), "w") as f:
        f.write(render_readme_section(results))


if __name__ == "__main__":
    main()
