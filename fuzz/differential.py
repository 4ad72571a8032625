"""Checks the scanner against CPython on a corpus: every global that CPython's unpicklers resolve
while loading an input must be in the scanner's report, or covered by an Unresolved finding.

For each input, both `pickle.Unpickler` and `pickle._Unpickler` load it with a `find_class` that
records the names (what the `pickle.find_class` audit event reports) and returns an inert
stand-in, so nothing runs. Only raw pickle streams are compared; joblib inputs are skipped,
because joblib reads array bytes that plain unpicklers read as opcodes.

Usage (standard library only):
    cargo build --release -p pickleguard-scan --example scan_files
    python3 fuzz/differential.py fuzz/corpus/scan_bytes [target/release/examples/scan_files]
"""
import io
import json
import os
import pickle
import re
import resource
import subprocess
import sys

IDENT = re.compile(r"^[^\W\d]\w*(\.[^\W\d]\w*)*$")


class Stand:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Stand()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def add(self, item):
        pass


def recorder(base):
    class Recorder(base):
        def __init__(self, file, seen):
            super().__init__(file, buffers=iter([b"x"] * 1000))
            self.seen = seen

        def find_class(self, module, name):
            self.seen.append((module, name))
            return Stand

        def persistent_load(self, pid):
            return Stand()

    return Recorder


RECORDERS = [recorder(pickle.Unpickler), recorder(pickle._Unpickler)]


def resolved_by_cpython(data):
    seen = set()
    for Recorder in RECORDERS:
        names = []
        f = io.BytesIO(data)
        try:
            while f.tell() < len(data):
                Recorder(f, names).load()
        except BaseException:
            pass
        seen |= set(names)
    return seen


def main():
    corpus = sys.argv[1]
    scanner = sys.argv[2] if len(sys.argv) > 2 else "target/release/examples/scan_files"
    files = sorted(os.path.join(corpus, name) for name in os.listdir(corpus))
    reports = subprocess.run([scanner, *files], capture_output=True, text=True, check=True)
    # CPython's own memo can ask for gigabytes on hostile input: make that a MemoryError.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    sys.setrecursionlimit(10000)
    checked = missed_files = total = 0
    for path, line in zip(files, reports.stdout.splitlines()):
        report = json.loads(line)
        if report["format"] not in ("pickle", "torch_legacy", "unknown"):
            continue
        with open(path, "rb") as f:
            data = f.read()
        runtime = resolved_by_cpython(data)
        if any(module.endswith("numpy_pickle") for module, _ in runtime):
            continue
        checked += 1
        total += len(runtime)
        findings = [g for s in report["streams"] for g in s["globals"]]
        if any(g["decision"]["verdict"] == "unresolved" for g in findings):
            continue
        static = {(g["module"], g["name"]) for g in findings}
        # Names over 1 KiB are shortened in reports: match them by prefix.
        shortened = [(m, n.rsplit("... (", 1)[0]) for m, n in static if n.endswith(" bytes)")]
        missed = {
            (module, name)
            for module, name in runtime - static
            if not any(module == m and name.startswith(p) for m, p in shortened)
            # Text taken for "not a pickle" can only name globals that cannot import.
            and not (report["format"] == "unknown" and not (IDENT.match(module) and IDENT.match(name)))
            # torch's legacy loader reads exactly five pickles; what follows is storage data.
            and report["format"] != "torch_legacy"
        }
        if missed:
            missed_files += 1
            print("MISSED", path, sorted(missed)[:3])
    print(f"checked {checked} inputs, {total} globals CPython resolved, {missed_files} with a miss")
    sys.exit(1 if missed_files else 0)


main()
