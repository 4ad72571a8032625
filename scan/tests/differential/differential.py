"""Differential harness for `pickleguard scan` (issue 10): generates model files with the real
libraries, mutates them, and compares what the scanner lists with what the real loaders resolve.

Each file is loaded, in a forked child with a time and memory limit, by every loader that could
be handed it: pickle.load (the C unpickler on a real file), pickle._Unpickler (pure Python, as
joblib uses), pickle.loads (bytes), torch.load, numpy.load(allow_pickle=True), joblib.load. A
recording find_class (or the `pickle.find_class` audit event, for loaders whose unpickler is
not reachable) lists every global a loader resolves; any global outside a small set of benign
ones is refused there, so no payload ever runs.

A divergence is a global some loader resolved that the scanner did not list. It is saved under
OUT (default `scan/tests/regressions/`) as `diff-<kind>-<hash>` with a `.json` beside it naming
the globals; `tests/it/regressions.rs` replays them. Not part of CI: `make differential`.

Usage: python differential.py --cli target/release/pickleguard [--seconds 300] [--out DIR]
"""
import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import joblib
import torch

# Globals the benign seeds need; anything else is recorded and refused, so nothing else runs.
BENIGN = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "LongStorage"),
    ("torch", "Size"),
    ("torch", "float32"),
    ("torch.storage", "UntypedStorage"),
}


def importable(module):
    """Whether a module name could import (see the comment where it is used)."""
    return bool(module) and not any(c.isspace() or ord(c) < 32 for c in module)


class Refused(Exception):
    pass


SEEN = []


def audit(event, args):
    if event == "pickle.find_class":
        pair = (str(args[0]), str(args[1]))
        SEEN.append(pair)
        if pair not in BENIGN:
            raise Refused("%s.%s" % pair)


def recording(base):
    class Recording(base):
        def find_class(self, module, name):
            # The audit hook records and refuses; this keeps the C and Python classes alike.
            return super().find_class(module, name)

    return Recording


class PickleModule:
    """What torch.load takes as `pickle_module`."""

    Unpickler = recording(pickle.Unpickler)
    load = staticmethod(pickle.load)
    loads = staticmethod(pickle.loads)
    __name__ = "pickle"


def loaders(path, data):
    def c_file():
        with open(path, "rb") as f:
            pickle.load(f)

    def py_file():
        with open(path, "rb") as f:
            pickle._Unpickler(f).load()

    def c_bytes():
        pickle.loads(data)

    def torch_load():
        torch.load(path, weights_only=False, pickle_module=PickleModule)

    def numpy_load():
        out = np.load(path, allow_pickle=True)
        if hasattr(out, "files"):
            for name in out.files:
                out[name]

    def joblib_load():
        joblib.load(path)

    return [c_file, py_file, c_bytes, torch_load, numpy_load, joblib_load]


def load_all(path):
    """In a child: every loader on the file; the globals each resolved."""
    with open(path, "rb") as f:
        data = f.read()
    result = {}
    for loader in loaders(path, data):
        del SEEN[:]
        try:
            loader()
            outcome = "ok"
        except Refused:
            outcome = "refused"
        except BaseException as e:  # noqa: BLE001 - any failure is an outcome
            outcome = type(e).__name__
        result[loader.__name__] = {"globals": sorted(set(SEEN)), "outcome": outcome}
    return result


def in_child(path, seconds=10):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
            signal.alarm(seconds)
            out = json.dumps(load_all(path)).encode()
        except BaseException as e:  # noqa: BLE001
            out = json.dumps({"child": type(e).__name__}).encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {}


# -- seeds ------------------------------------------------------------------------------------

class Payload:
    def __reduce__(self):
        return (os.system, ("echo differential-payload",))


def objects(rng):
    base = [
        collections.OrderedDict(a=1, b=[1.5, "x"]),
        {"k": (1, 2, 3), "s": {1, 2}, "b": b"\x00\x01" * rng.randint(0, 40)},
        list(range(rng.randint(0, 300))),
        "text" * rng.randint(0, 50),
        np.arange(rng.randint(1, 20), dtype=rng.choice(["f8", "i4", "u1"])),
        np.array([1, "a", None], dtype=object),
    ]
    obj = rng.choice(base)
    if rng.random() < 0.3:
        obj = [obj, Payload()]
    return obj


def seed(rng, tmp):
    kind = rng.choice(["pickle", "pickle", "torch", "torch-legacy", "npy", "npz", "joblib", "joblib-z"])
    path = os.path.join(tmp, "seed")
    obj = objects(rng)
    if kind == "pickle":
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=rng.randint(0, 5))
    elif kind.startswith("torch"):
        state = collections.OrderedDict(w=torch.arange(rng.randint(1, 8), dtype=torch.float32), extra=obj)
        torch.save(state, path, _use_new_zipfile_serialization=(kind == "torch"))
    elif kind == "npy":
        arr = np.array([obj, 1], dtype=object) if rng.random() < 0.7 else np.arange(5.0)
        np.save(path, arr, allow_pickle=True)
        path += ".npy"
    elif kind == "npz":
        np.savez(path, a=np.array([obj], dtype=object), b=np.arange(3))
        path += ".npz"
    else:
        joblib.dump([np.arange(rng.randint(1, 64), dtype="f8"), np.array([obj], dtype=object), obj], path,
                    compress=3 if kind == "joblib-z" else 0)
    with open(path, "rb") as f:
        return kind, f.read()


# -- mutations --------------------------------------------------------------------------------

def mutate(data, rng):
    data = bytearray(data)
    how = rng.choice(["flip", "insert", "delete", "truncate", "frame", "splice-global", "prepend",
                      "escape-descr", "dtype-flags", "zip-append", "none"])
    if not data:
        return how, bytes(data)
    at = rng.randrange(len(data))
    if how == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == "insert":
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif how == "delete":
        del data[at:at + rng.randint(1, 8)]
    elif how == "truncate":
        del data[at:]
    elif how == "frame":
        # A FRAME opcode with a length that ends anywhere.
        data[at:at] = b"\x95" + struct.pack("<Q", rng.randint(0, len(data) - at + 16))
    elif how == "splice-global":
        data[at:at] = rng.choice([b"cposix\nsystem\n", b"\x8c\x05posix\x8c\x06system\x93", b"c__main__\nx\n"])
    elif how == "prepend":
        data[0:0] = os.urandom(rng.randint(1, 300))
    elif how == "escape-descr":
        i = data.find(b"'descr': '")
        if i >= 0:
            j = data.find(b"'", i + 10)
            descr = bytes(data[i + 10:j])
            escaped = "".join("\\x%02x" % c for c in descr).encode()
            data[i + 10:j] = escaped
    elif how == "zip-append" and data[:4] == b"PK\x03\x04":
        # Another archive after this one: zipfile reads the last end record (shifted), miniz
        # its offsets from the start of the file.
        evil = io.BytesIO()
        with zipfile.ZipFile(evil, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(Payload(), protocol=2))
        data = data[:-22] + evil.getvalue() if rng.random() < 0.5 else data + evil.getvalue()
    elif how == "dtype-flags":
        # numpy's dtype state ends with the flags int: `K\x00t` / `K?t`.
        for old, new in ((b"K\x00t", b"K\x01t"), (b"K?t", b"K\x00t")):
            i = data.find(old)
            if i >= 0:
                data[i:i + 3] = new
                break
    return how, bytes(data)


# -- the scanner ------------------------------------------------------------------------------

def scan(cli, directory):
    out = subprocess.run([cli, "scan", "--format", "json", directory], capture_output=True, timeout=600)
    try:
        document = json.loads(out.stdout)
    except ValueError:
        sys.exit("the scanner printed no JSON: %r" % out.stderr[-500:])
    reports = {}
    for report in document.get("files", []):
        globals_ = set()
        findings = bool(report.get("concerns"))
        error = report.get("error") is not None
        for stream in report.get("streams", []):
            error = error or stream.get("error") is not None
            for g in stream.get("globals", []):
                if g.get("module") is not None and g.get("name") is not None:
                    globals_.add((g["module"], g["name"]))
                if g["decision"]["verdict"] != "allowed":
                    findings = True
        reports[os.path.basename(report["path"])] = {"globals": globals_, "findings": findings, "error": error}
    return reports


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "regressions"))
    args = ap.parse_args()
    sys.addaudithook(audit)
    rng = random.Random(args.seed)
    stats = collections.Counter()
    by_kind = collections.Counter()
    saved = []
    started = time.time()
    work = tempfile.mkdtemp(prefix="pg-differential-")
    try:
        while time.time() - started < args.seconds:
            batch = os.path.join(work, "batch")
            shutil.rmtree(batch, ignore_errors=True)
            os.makedirs(batch)
            meta = {}
            for i in range(args.batch):
                kind, data = seed(rng, work)
                how, data = mutate(data, rng) if rng.random() < 0.8 else ("none", data)
                name = "f%04d" % i
                with open(os.path.join(batch, name), "wb") as f:
                    f.write(data)
                meta[name] = (kind, how, data)
            reports = scan(args.cli, batch)
            for name, (kind, how, data) in meta.items():
                loaded = in_child(os.path.join(batch, name))
                resolved = set()
                for result in loaded.values():
                    if isinstance(result, dict):
                        # An empty module name never imports: `__import__('')` raises before
                        # the import system runs (the pure-Python unpickler asks for it on a
                        # lone `c` at the end of the data). Nor does one with whitespace or a
                        # control character, unless the program itself put such a key in
                        # sys.modules: the scanner takes a file without a pickle extension
                        # whose only global is spelled so for text, not a pickle (seed 21).
                        resolved.update(tuple(g) for g in result["globals"] if importable(g[0]))
                report = reports.get(name, {"globals": set(), "findings": False, "error": False})
                stats["files"] += 1
                stats["loader_runs"] += sum(1 for r in loaded.values() if isinstance(r, dict))
                missed = resolved - report["globals"]
                outcomes = [r["outcome"] for r in loaded.values() if isinstance(r, dict)]
                if "ok" in outcomes and "refused" not in outcomes and not missed and report["findings"]:
                    # A loader loaded it and none refused a global; the scanner still objects
                    # (a concern such as readers disagreeing, or a rule). Counted, not saved.
                    stats["scanner_stricter"] += 1
                if not missed:
                    continue
                severity = "clean" if not (report["findings"] or report["error"]) else (
                    "flagged" if report["findings"] else "error")
                stats["divergences"] += 1
                stats["divergences_" + severity] += 1
                by_kind["%s/%s/%s" % (kind, how, severity)] += 1
                digest = hashlib.sha256(data).hexdigest()[:10]
                base = os.path.join(args.out, "diff-%s-%s-%s" % (kind, how, digest))
                with open(base, "wb") as f:
                    f.write(data)
                with open(base + ".json", "w") as f:
                    json.dump({"loaders": loaded, "missed": sorted(missed), "scanner": severity,
                               "scanner_globals": sorted(report["globals"])}, f, indent=1)
                saved.append(base)
            print("%6.0fs files %d, divergences %d (scanner clean %d, flagged %d, error %d), "
                  "scanner stricter than a loader %d" % (
                      time.time() - started, stats["files"], stats["divergences"], stats["divergences_clean"],
                      stats["divergences_flagged"], stats["divergences_error"], stats["scanner_stricter"]),
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"seed": args.seed, "seconds": round(time.time() - started), **stats, "by_kind": by_kind,
               "saved": [os.path.basename(s) for s in saved]}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
