"""Differential harness for the reconstruction rules (issue 10): a scan and a load must agree.

The rules (policy/src/reconstruct/) judge what a pickle does with an allowed global: the runtime
checks the real arguments before REDUCE/NEWOBJ/NEWOBJ_EX/INST/OBJ and BUILD, the scanner the
arguments it rebuilds from the stream. This harness makes genuine files with the real libraries
(numpy arrays, scalars, dtypes and bit generators, codecs, containers, copyreg objects, joblib
dumps of arrays and sklearn estimators, torch checkpoints, pandas frames), mutates the values in
their pickles while keeping the streams well formed, and compares the two verdicts:

- the runtime's: the file is loaded with its real loader in a forked child of a Python started
  under LD_PRELOAD=libpickleguard.so (with a time and memory limit): `loaded`, `refused` (an
  `UnsafeFileError`: the check that failed, or the global that is not allowed), `error`
  (another exception), `crashed` (a signal) or `hung`;
- the scanner's: `pickleguard scan --format json` with the same packs: the checks its `rule`
  concerns name, its other concerns, the globals it refuses, errors, and whether it is clean.

A divergence: the runtime refused by check C and the scan has no `rule` concern naming C; the
runtime loaded and the scan has a `rule` concern or is not clean; the runtime crashed under the
guard (always a guard bug). A load that errs or hangs stops early, so the scan may see more:
anything goes. Each divergence is saved under OUT (default `scan/tests/regressions/`) as
`rules-<kind>-<hash>` with a `.json` beside it holding both verdicts; `tests/it/regressions.rs`
replays them. Not part of CI: `make differential-rules`.

The workers map private copies of the binaries (a rebuild in place would crash them); a batch
during which the originals change is dropped and the workers restart on the new ones.

Usage: python rules_differential.py --cli target/release/pickleguard --preload libpickleguard.so
           [--seconds 600] [--out DIR] [--seed N] [--exclude REGEX] [--replay FILE_OR_DIR...]
"""
import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import pickletools
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile

LOAD_SECONDS = 10
# Opcodes that push one object and take nothing: any of them may stand for any other.
PUSH_ONE = {"NONE": b"N", "NEWTRUE": b"\x88", "NEWFALSE": b"\x89", "EMPTY_TUPLE": b")",
            "EMPTY_LIST": b"]", "EMPTY_DICT": b"}"}
# Opcodes that pop two objects and push one: REDUCE, NEWOBJ, and BUILD (which leaves its target).
APPLY = {"REDUCE": b"R", "NEWOBJ": b"\x81", "BUILD": b"b"}
INTS = [0, 1, -1, 2, 3, 4, 7, 8, 16, 63, 64, 127, 128, 255, 256, 4096, 65535, 65536, (1 << 31) - 1,
        -(1 << 31), 1 << 32, 1 << 44, (1 << 63) - 1, -(1 << 63), 1 << 64, 1 << 100]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, float("nan"), float("inf"), float("-inf"), 1e308, 5e-324]
STRINGS = ["", "<", ">", "|", "=", "!", "O", "V", "U", "S", "M", "m", "b", "?", "c", "f", "i", "u", "C",
           "F", "A", "K", "O8", "V8", "U1", "S0", "M8", "m8", "f8", "i8", "b1", "c8", "O4", "V0",
           "<f8", "|O8", ">f8", "|V8", "<U1", "|S8", "<M8", "<m8", "|b1", ">i4", "|u1", "<i8", "|O",
           "|V16", "<U100", "|S0", "M8[ns]", "<m8[D]", "object", "float64", "bool", "int64", "latin1",
           "latin-1", "utf-8", "ascii", "base64", "hex", "zlib", "bz2", "rot13", "uu", "idna",
           "punycode", "unicode_escape", "raw_unicode_escape", "utf_16", "quopri", "names", "fields",
           "offsets", "itemsize", "formats", "titles", "aligned", "state", "bit_generator", "MT19937",
           "PCG64", "key", "pos", "has_gauss", "gauss", "inc", "storage", "cpu", "cuda", "meta",
           "_metadata", "__dict__", "x" * 4096, "x" * 4097, "\x00" * 64]


# -- the runtime side: a worker under the preload ---------------------------------------------

def load_with(loader, path):
    if loader == "pickle.load":
        with open(path, "rb") as f:
            pickle.load(f)
    elif loader == "pickle._Unpickler":
        with open(path, "rb") as f:
            pickle._Unpickler(f).load()
    elif loader == "joblib.load":
        import joblib
        joblib.load(path)
    elif loader == "torch.load":
        import torch
        torch.load(path, weights_only=False)
    elif loader == "numpy.load":
        import numpy as np
        out = np.load(path, allow_pickle=True)
        if hasattr(out, "files"):
            for name in out.files:
                out[name]
    elif loader == "pandas.read_pickle":
        import pandas as pd
        pd.read_pickle(path)
    else:
        raise ValueError("unknown loader %r" % loader)


def refusal(exc):
    """The pickleguard refusal in an exception's chain, as a verdict; None if there is none."""
    unsafe = None
    try:
        import pickleguard
        unsafe = pickleguard.UnsafeFileError
    except ImportError:
        pass
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # Without the caller's path, which names this machine's checkout.
        text = re.sub(r" The load was called from \S+?:\d+\.", "", str(exc))
        if (unsafe is not None and isinstance(exc, unsafe)) or "pickleguard refused" in text:
            check = getattr(exc, "check", None)
            if not check:
                m = re.search(r"fails the `([^`]+)` check", text)
                check = m.group(1) if m else None
            glob = "%s.%s" % (getattr(exc, "module", None), getattr(exc, "name", None))
            reason = getattr(exc, "reason", None)
            if not check:
                check = "not in the allowlist" if "not in the allowlist" in text else (reason or "global")
                return {"verdict": "refused", "by": "global", "check": check, "global": glob,
                        "message": text[:400]}
            return {"verdict": "refused", "by": "rule", "check": check, "global": glob, "message": text[:400]}
        exc = exc.__cause__ or exc.__context__
    return None


def child_verdict(loader, path):
    try:
        load_with(loader, path)
        return {"verdict": "loaded"}
    except BaseException as e:  # noqa: BLE001 - every failure is a verdict
        found = refusal(e)
        if found:
            return found
        return {"verdict": "error", "error": ("%s: %s" % (type(e).__name__, e))[:300]}


def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def in_child(loader, path, seconds=LOAD_SECONDS):
    """Loads `path` with `loader` in a forked child: its verdict, or how the child died."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            limit = vm_size() + (3 << 30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.alarm(seconds)
            out = json.dumps(child_verdict(loader, path)).encode()
            signal.alarm(0)
            os.write(w, out)
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    deadline = time.time() + seconds + 10
    killed = False
    while True:
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if chunks:
        try:
            return json.loads(b"".join(chunks))
        except ValueError:
            pass
    if killed or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM):
        return {"verdict": "hung"}
    if os.WIFSIGNALED(status):
        return {"verdict": "crashed", "signal": signal.Signals(os.WTERMSIG(status)).name}
    return {"verdict": "crashed", "exit": os.WEXITSTATUS(status)}


def worker():
    """Serves `{"loader", "path"}` lines with verdict lines, one forked child per file."""
    guarded = os.environ.get("RULES_DIFF_GUARDED") == "1"
    if guarded:
        try:
            import pickleguard
            assert pickleguard.is_active(), "pickleguard is not active"
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"fatal": "not protected: %s" % e}), flush=True)
            return
    # The libraries the loaders need, imported once (a child only forks).
    import numpy  # noqa: F401
    import joblib  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.base  # noqa: F401
    import torch  # noqa: F401
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(in_child(request["loader"], request["path"])), flush=True)


class Worker:
    def __init__(self, python, preload, packs, log):
        self.args = (python, preload, packs, log)
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env["PICKLEGUARD_PACKS"] = ",".join(packs)
        env["RULES_DIFF_GUARDED"] = "1" if preload else "0"
        if preload:
            env["LD_PRELOAD"] = preload
        env["OMP_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     text=True, bufsize=1)
        hello = json.loads(self.proc.stdout.readline() or '{"fatal": "worker died"}')
        if "fatal" in hello:
            sys.exit("the %s worker failed: %s" % ("guarded" if preload else "unguarded", hello["fatal"]))

    def load(self, loader, path):
        """The verdict, or None if the worker itself died (the caller starts another)."""
        try:
            self.proc.stdin.write(json.dumps({"loader": loader, "path": path}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.proc.wait(timeout=30)
            return None
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# -- seeds ------------------------------------------------------------------------------------

class Seed:
    def __init__(self, kind, fmt, data, loaders, packs=(), what=""):
        self.kind = kind          # e.g. "numpy-array"
        self.fmt = fmt            # pickle | npy | joblib | torch-zip | torch-legacy
        self.data = data
        self.loaders = loaders
        self.packs = tuple(packs)
        self.what = what


def numpy_values(rng):
    import numpy as np
    dtypes = ["f8", "f4", "f2", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?", "c8", "c16",
              "U5", "S3", "V4", ">f8", ">i4", ">U2", "M8[ns]", "M8[D]", "m8[s]", "O"]
    structured = [
        np.dtype([("a", "<i4"), ("b", "<f8")]),
        np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 8], "itemsize": 24}),
        np.dtype([(("title A", "a"), "<i4"), ("b", "f4")]),
        np.dtype([("x", [("y", "i2"), ("z", ">f4")]), ("w", "u1")]),
        np.dtype([("m", "<f8", (2, 3)), ("n", "S2")]),
        np.dtype([("a", "u1"), ("b", "<i8")], align=True),
        np.dtype(("<i4", (2,))),
        np.dtype([("o", "O"), ("f", "f8")]),
    ]
    kind = rng.choice(["array", "array", "array", "structured", "object", "0d", "fortran", "empty",
                       "scalar", "dtype", "matrix", "recarray", "view"])
    n = rng.randint(1, 12)
    if kind == "array":
        dt = np.dtype(rng.choice(dtypes))
        if dt.kind == "O":
            return np.array([1, "a", None, 2.5][:n], dtype=object)
        if dt.kind in "US":
            return np.array(["ab", "c", ""] * n, dtype=dt)
        if dt.kind in "Mm":
            return np.arange(n).astype(dt)
        if dt.kind == "V":
            return np.zeros(n, dtype=dt)
        return np.arange(n).astype(dt).reshape(rng.choice([(n,), (1, n), (n, 1)]))
    if kind == "structured":
        return np.zeros(n, dtype=rng.choice(structured))
    if kind == "object":
        return np.array([collections.OrderedDict(a=1), {1, 2}, 1 + 2j, np.float32(3)], dtype=object)
    if kind == "0d":
        return np.array(rng.choice([3.5, 7, True, "x"]))
    if kind == "fortran":
        return np.asfortranarray(np.arange(6.0 * n).reshape(2, 3 * n).astype(rng.choice(["f8", "i2", ">f4"])))
    if kind == "empty":
        return np.zeros((0, n), dtype=rng.choice(["f8", "O", "U3"]))
    if kind == "scalar":
        return rng.choice([np.float64(1.5), np.int32(7), np.bool_(True), np.str_("ab"), np.bytes_(b"x"),
                           np.datetime64("2020-01-01"), np.timedelta64(5, "s"), np.complex128(1 + 2j),
                           np.zeros(1, dtype=structured[0])[0], np.float16(2), np.uint64(1 << 63)])
    if kind == "dtype":
        return rng.choice([np.dtype("f8"), np.dtype(">i2"), np.dtype("U7"), np.dtype("O"),
                           np.dtype("M8[us]")] + structured)
    if kind == "matrix":
        return np.matrix([[1, 2], [3, 4]])
    if kind == "recarray":
        return np.rec.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")])
    base = np.arange(24.0).reshape(4, 6)
    return base[1:, ::2].copy() if rng.random() < 0.5 else base.T


def plain_values(rng):
    kind = rng.choice(["codecs", "bytearray", "ordered", "set", "complex", "mixed", "slice"])
    if kind == "codecs":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    if kind == "bytearray":
        return bytearray(b"\x00\xff" * rng.randint(0, 10))
    if kind == "ordered":
        return collections.OrderedDict((("k%d" % i, i) for i in range(rng.randint(0, 5))))
    if kind == "set":
        return rng.choice([{1, 2, "a"}, frozenset({(1, 2), 3.5}), set()])
    if kind == "complex":
        return [1 + 2j, complex(0, -1.5)]
    if kind == "slice":
        return slice(1, 10, 2)
    return [collections.OrderedDict(a=b"\x01\x02"), {3, 4}, 2j, b"xyz" * 3]


def make_seed(rng, tmp):
    import numpy as np
    family = rng.choice(["numpy", "numpy", "numpy", "plain", "random", "copyreg", "npy", "joblib",
                         "joblib", "sklearn", "sklearn", "torch", "torch", "torch-legacy", "pandas"])
    path = os.path.join(tmp, "seed")
    proto = rng.randint(0, 5)
    if family in ("numpy", "plain"):
        obj = numpy_values(rng) if family == "numpy" else plain_values(rng)
        if rng.random() < 0.3:
            obj = {"a": obj, "b": [obj, numpy_values(rng)]}
        data = pickle.dumps(obj, protocol=proto)
        return Seed("%s-p%d" % (family, proto), "pickle", data, ["pickle.load", "pickle._Unpickler"],
                    what=type(obj).__name__)
    if family == "random":
        obj = rng.choice([np.random.MT19937(rng.randrange(1 << 30)), np.random.PCG64(rng.randrange(1 << 30)),
                          np.random.default_rng(rng.randrange(1 << 30)),
                          np.random.RandomState(rng.randrange(1 << 30)),
                          np.random.Generator(np.random.MT19937(3))])
        data = pickle.dumps(obj, protocol=proto)
        return Seed("random-p%d" % proto, "pickle", data, ["pickle.load", "pickle._Unpickler"], ["sklearn"],
                    what=type(obj).__name__)
    if family == "copyreg":
        # Protocols 0 and 1 rebuild plain classes through `copyreg._reconstructor`; 2+ with NEWOBJ.
        import argparse
        import datetime
        obj = rng.choice([argparse.Namespace(a=1, b=[1, 2], c="x"), collections.ChainMap({"a": 1}, {"b": 2}),
                          [datetime.date(2020, 1, 2), datetime.timezone.utc, argparse.Namespace()],
                          collections.Counter("abca"), collections.deque([1, 2], maxlen=4)])
        proto = rng.choice([0, 1, 1, proto])
        data = pickle.dumps(obj, protocol=proto)
        return Seed("copyreg-p%d" % proto, "pickle", data, ["pickle.load", "pickle._Unpickler"],
                    ["stdlib-data"], what=type(obj).__name__)
    if family == "npy":
        arr = np.array([numpy_values(rng), 1], dtype=object)
        np.save(path, arr, allow_pickle=True)
        with open(path + ".npy", "rb") as f:
            return Seed("npy-object", "npy", f.read(), ["numpy.load"])
    if family == "joblib":
        import joblib
        obj = [numpy_values(rng) for _ in range(rng.randint(1, 3))]
        joblib.dump(obj, path, compress=0)
        with open(path, "rb") as f:
            return Seed("joblib-arrays", "joblib", f.read(), ["joblib.load"])
    if family == "sklearn":
        import joblib
        est = sklearn_estimator(rng)
        joblib.dump(est, path, compress=0)
        with open(path, "rb") as f:
            return Seed("sklearn", "joblib", f.read(), ["joblib.load"], ["sklearn"], what=type(est).__name__)
    if family.startswith("torch"):
        import torch
        obj = torch_value(rng)
        torch.save(obj, path, _use_new_zipfile_serialization=(family == "torch"))
        with open(path, "rb") as f:
            return Seed(family, "torch-zip" if family == "torch" else "torch-legacy", f.read(), ["torch.load"],
                        what=type(obj).__name__)
    import pandas as pd
    frame = rng.choice([
        pd.DataFrame({"a": [1, 2, 3], "b": [1.5, 2.5, None], "c": ["x", "y", "z"]}),
        pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2021-02-03"]), "k": pd.Categorical(["u", "v"])}),
        pd.Series([1, 2, 3], name="s", dtype="int32"),
        pd.Index([1.0, 2.0]),
        pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=list("abcd")),
    ])
    data = pickle.dumps(frame, protocol=rng.randint(2, 5))
    return Seed("pandas", "pickle", data, ["pandas.read_pickle"], ["pandas"], what=type(frame).__name__)


def sklearn_estimator(rng):
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    x = np.arange(40.0).reshape(20, 2) % 7
    y = (np.arange(20) % 2)
    choice = rng.choice(["linreg", "logreg", "scaler", "tree", "pipe", "pca", "kmeans"])
    if choice == "linreg":
        return LinearRegression().fit(x, y)
    if choice == "logreg":
        return LogisticRegression().fit(x, y)
    if choice == "scaler":
        return StandardScaler().fit(x)
    if choice == "tree":
        return DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
    if choice == "pipe":
        return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    if choice == "pca":
        return PCA(n_components=1).fit(x)
    return KMeans(n_clusters=2, n_init=1, random_state=0).fit(x)


def torch_value(rng):
    import torch
    kind = rng.choice(["tensor", "param", "state", "views", "dtypes", "scalar"])
    if kind == "tensor":
        return torch.arange(rng.randint(0, 10), dtype=torch.float32)
    if kind == "param":
        return torch.nn.Parameter(torch.ones(2, 3))
    if kind == "state":
        module = rng.choice([torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(3), torch.nn.Conv1d(1, 2, 3)])
        return module.state_dict()
    if kind == "views":
        base = torch.arange(24.0).reshape(4, 6)
        return {"t": base.t(), "s": base[1:, 2:], "same": base, "flat": base.view(-1)[5:9]}
    if kind == "scalar":
        return torch.tensor(3.5)
    return [torch.zeros(2, dtype=d) for d in (torch.float16, torch.bfloat16, torch.int64, torch.bool,
                                                torch.uint8, torch.complex64)]


# -- mutations --------------------------------------------------------------------------------

def streams(data, start):
    """The ops of consecutive pickles from `start` (torch's legacy layout has several), as
    (opcode, arg, pos, end) tuples; parsing stops quietly where raw data begins."""
    ops = []
    pos = start
    while pos < len(data):
        found = []
        try:
            for op, arg, at in pickletools.genops(io.BytesIO(data[pos:])):
                found.append((op, arg, pos + at))
        except Exception:  # noqa: BLE001 - raw data (joblib arrays, torch storages) or the end
            pass
        if not found:
            break
        # Each op's end is the next op's start.
        for i, (op, arg, at) in enumerate(found):
            end = found[i + 1][2] if i + 1 < len(found) else at + 1
            ops.append((op, arg, at, end))
        if found[-1][0].name != "STOP":
            break
        pos = found[-1][2] + 1
    return ops


def encode_int(value, proto):
    if proto < 1:
        return b"I%d\n" % value if -(1 << 31) <= value < (1 << 31) else b"L%dL\n" % value
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -(1 << 31) <= value < (1 << 31):
        return b"J" + struct.pack("<i", value)
    n = (value.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + value.to_bytes(n, "little", signed=True)


def encode_float(value, proto):
    if proto < 1:
        return b"F" + repr(value).encode() + b"\n"
    return b"G" + struct.pack(">d", value)


def encode_str(text, proto):
    raw = text.encode("utf-8", "surrogatepass")
    if proto < 1:
        return b"V" + text.encode("raw-unicode-escape") + b"\n"
    if proto >= 4 and len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def stack_global_names(ops):
    """Indices of the string ops that STACK_GLOBAL consumes (mutating those is another harness's)."""
    skip = set()
    for i, (op, _, _, _) in enumerate(ops):
        if op.name == "STACK_GLOBAL":
            j, taken = i - 1, 0
            while j >= 0 and taken < 2:
                if ops[j][0].name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                    j -= 1
                    continue
                skip.add(j)
                taken += 1
                j -= 1
    return skip


def one_mutation(ops, proto, rng, skip):
    """One (pos, end, new bytes, description) replacing an op, or None."""
    ints = [i for i, o in enumerate(ops) if o[0].name in ("BININT1", "BININT2", "BININT", "LONG1", "INT", "LONG")]
    floats = [i for i, o in enumerate(ops) if o[0].name in ("BINFLOAT", "FLOAT")]
    strs = [i for i, o in enumerate(ops) if i not in skip and o[0].name in (
        "SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING", "SHORT_BINSTRING", "BINSTRING")]
    byts = [i for i, o in enumerate(ops) if o[0].name in ("SHORT_BINBYTES", "BINBYTES", "BINBYTES8")]
    pushes = [i for i, o in enumerate(ops) if o[0].name in PUSH_ONE]
    applies = [i for i, o in enumerate(ops) if o[0].name in APPLY]
    gets = [i for i, o in enumerate(ops) if o[0].name in ("BINGET", "LONG_BINGET", "GET")]
    builds = [i for i, o in enumerate(ops) if o[0].name == "BUILD"]
    scalars = ints + floats + strs + pushes
    menu = [(ints, 5), (floats, 1), (strs, 4), (byts, 1), (pushes, 2), (applies, 1), (gets, 1),
            (builds, 1), (scalars, 1), (scalars, 1)]
    choices = [(i, k) for k, (group, weight) in enumerate(menu) if group for i in range(weight)]
    if not choices:
        return None
    _, which = rng.choice(choices)
    group = menu[which][0]
    i = rng.choice(group)
    op, arg, pos, end = ops[i]
    name = op.name
    if which == 0:
        value = rng.choice(INTS + [arg + 1 if isinstance(arg, int) else 1, -arg if isinstance(arg, int) else 0])
        if name == "BININT1" and rng.random() < 0.5 and 0 <= value < 256:
            new = b"K" + bytes([value])  # the same size: flags bits and small counts
        else:
            new = encode_int(value, proto)
        return pos, end, new, "int@%d %s %r->%r" % (pos, name, arg, value)
    if which == 1:
        value = rng.choice(FLOATS)
        return pos, end, encode_float(value, proto), "float@%d %r->%r" % (pos, arg, value)
    if which == 2:
        old = arg if isinstance(arg, str) else (arg.decode("latin1") if isinstance(arg, bytes) else str(arg))
        r = rng.random()
        if r < 0.4:
            same = [s for s in STRINGS if len(s) == len(old) and s != old]
            text = rng.choice(same) if same else rng.choice(STRINGS)
        elif r < 0.7 and old:
            k = rng.randrange(len(old))
            text = old[:k] + rng.choice("<>|=OVUSMmb?cfiu0123456789[]") + old[k + 1:]
        else:
            text = rng.choice(STRINGS)
        if name in ("STRING", "SHORT_BINSTRING", "BINSTRING") and proto < 1:
            new = b"S" + repr(text.encode("latin1", "replace")).encode()[1:] + b"\n"
        elif name in ("SHORT_BINSTRING", "BINSTRING"):
            raw = text.encode("latin1", "replace")
            new = (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<I", len(raw))) + raw
        else:
            new = encode_str(text, proto)
        return pos, end, new, "str@%d %r->%r" % (pos, old[:40], text[:40])
    if which == 3:
        n = len(arg)
        size = rng.choice([0, 1, max(n - 1, 0), n + 1, n + 8, 2 * n, 4097])
        raw = bytes(rng.randrange(256) for _ in range(min(size, 64))) + b"\x00" * max(size - 64, 0)
        new = (b"C" + bytes([size]) if size < 256 else b"B" + struct.pack("<I", size)) + raw
        return pos, end, new, "bytes@%d len %d->%d" % (pos, n, size)
    if which == 4:
        other = rng.choice([k for k in PUSH_ONE if k != name])
        return pos, end, PUSH_ONE[other], "push@%d %s->%s" % (pos, name, other)
    if which == 5:
        other = rng.choice([k for k in APPLY if k != name])
        return pos, end, APPLY[other], "apply@%d %s->%s" % (pos, name, other)
    if which == 6:
        puts = sorted({o[1] for o in ops if o[0].name in ("BINPUT", "LONG_BINPUT", "PUT") and o[2] < pos})
        if not puts:
            return None
        k = rng.choice(puts)
        new = b"h" + bytes([k]) if k < 256 else b"j" + struct.pack("<I", k)
        if name == "GET":
            new = b"g%d\n" % k
        return pos, end, new, "memo@%d %r->%r" % (pos, arg, k)
    if which == 7:
        # BUILD the same state again: `BINGET k BUILD` after a BUILD whose state was memoized.
        prev = ops[i - 1] if i else None
        if prev is None or prev[0].name not in ("BINPUT", "LONG_BINPUT", "PUT"):
            return None
        k = prev[1]
        get = (b"g%d\n" % k) if prev[0].name == "PUT" else (b"h" + bytes([k]) if k < 256 else b"j" + struct.pack("<I", k))
        return end, end, get + b"b", "rebuild@%d memo %d" % (pos, k)
    # Type swap: a scalar replaced by another kind, or dropped, or doubled.
    r = rng.random()
    if r < 0.25:
        return pos, end, b"", "drop@%d %s" % (pos, name)
    if r < 0.5:
        return pos, end, bytes_of(ops, i) * 2, "dup@%d %s" % (pos, name)
    kind = rng.choice(["none", "int", "str", "float", "tuple", "list", "dict", "true"])
    new = {"none": b"N", "int": encode_int(rng.choice(INTS), proto), "str": encode_str(rng.choice(STRINGS), proto),
           "float": encode_float(rng.choice(FLOATS), proto), "tuple": b")", "list": b"]", "dict": b"}",
           "true": b"\x88" if proto >= 2 else b"I01\n"}[kind]
    return pos, end, new, "swap@%d %s->%s" % (pos, name, kind)


DATA = {}


def bytes_of(ops, i):
    return DATA["stream"][ops[i][2]:ops[i][3]]


def mutate_stream(data, start, rng):
    """Mutates the pickle(s) from `start` in `data`: 1-3 op replacements, FRAME lengths fixed."""
    ops = streams(data, start)
    if not ops:
        return None, []
    DATA["stream"] = data
    proto = next((o[1] for o in ops if o[0].name == "PROTO"), 0)
    skip = stack_global_names(ops)
    # Never touch the GLOBAL/PROTO/FRAME/STOP ops themselves.
    edits = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        m = one_mutation(ops, proto, rng, skip)
        if m and all(m[1] <= e[0] or m[0] >= e[1] for e in edits) and m not in edits:
            edits.append(m)
    if not edits:
        return None, []
    frames = [(o[2], o[3]) for o in ops if o[0].name == "FRAME"]
    out = bytearray(data)
    for pos, end, new, _ in sorted(edits, key=lambda e: -e[0]):
        delta = len(new) - (end - pos)
        out[pos:end] = new
        for fpos, fend in frames:
            length = struct.unpack("<Q", bytes(out[fpos + 1:fpos + 9]))[0]
            if fend <= pos < fend + length or (fend <= pos == fend + length and end > pos):
                out[fpos + 1:fpos + 9] = struct.pack("<Q", max(length + delta, 0))
    return bytes(out), [e[3] for e in edits]


def mutate(seed, rng):
    """A mutated copy of the seed's bytes and what was changed, or (None, [])."""
    if seed.fmt in ("pickle", "joblib", "torch-legacy"):
        return mutate_stream(seed.data, 0, rng)
    if seed.fmt == "npy":
        header = struct.unpack("<H", seed.data[8:10])[0] + 10 if seed.data[6] == 1 else \
            struct.unpack("<I", seed.data[8:12])[0] + 12
        return mutate_stream(seed.data, header, rng)
    # torch zip: the data.pkl member, in an archive rewritten with the same names in order.
    src = zipfile.ZipFile(io.BytesIO(seed.data))
    names = [i.filename for i in src.infolist()]
    pkl = next((n for n in names if n.endswith("/data.pkl")), None)
    if pkl is None:
        return None, []
    new, how = mutate_stream(src.read(pkl), 0, rng)
    if new is None:
        return None, []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name in names:
            z.writestr(name, new if name == pkl else src.read(name))
    return out.getvalue(), how


# -- the scanner ------------------------------------------------------------------------------

RULE = re.compile(r"refused by `([^`]+)`")


def summarise(report):
    rules, concerns, refused = [], [], []
    for c in report.get("concerns", []):
        if c.get("kind") == "rule":
            m = RULE.search(c.get("detail", ""))
            rules.append(m.group(1) if m else "?")
        else:
            concerns.append(c.get("kind"))
    error = report.get("error") is not None
    for stream in report.get("streams", []):
        error = error or stream.get("error") is not None
        for g in stream.get("globals", []):
            if g["decision"]["verdict"] != "allowed":
                refused.append("%s.%s" % (g.get("module"), g.get("name")))
    return {"status": report.get("status"), "rules": sorted(set(rules)), "concerns": sorted(set(concerns)),
            "refused_globals": sorted(set(refused)), "error": error,
            "rule_details": [c["detail"][:300] for c in report.get("concerns", []) if c.get("kind") == "rule"][:4]}


def scan(cli, directory, packs):
    cmd = [cli, "scan", "--format", "json"]
    for p in packs:
        cmd += ["--pack", p]
    try:
        out = subprocess.run(cmd + [directory], capture_output=True, timeout=900)
        document = json.loads(out.stdout)
    except (ValueError, subprocess.TimeoutExpired):
        return None
    return {os.path.basename(r["path"]): summarise(r) for r in document.get("files", [])}


def scan_one(cli, path, packs):
    """One file alone, when a batch scan failed: its summary, or how the scanner failed."""
    cmd = [cli, "scan", "--format", "json"]
    for p in packs:
        cmd += ["--pack", p]
    try:
        out = subprocess.run(cmd + [path], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"status": "scanner-hung"}
    try:
        files = json.loads(out.stdout).get("files", [])
        return summarise(files[0]) if files else {"status": "skipped"}
    except ValueError:
        return {"status": "scanner-crashed", "exit": out.returncode, "stderr": out.stderr[-300:].decode("latin1")}


# -- the comparison ---------------------------------------------------------------------------

def judge(runtime, scanned):
    """The divergence kind for one loader's verdict against the scan, or None."""
    if scanned.get("status") in ("scanner-crashed", "scanner-hung"):
        return scanned["status"]
    v = runtime["verdict"]
    findings = bool(scanned["rules"] or scanned["concerns"] or scanned["refused_globals"])
    if v == "crashed":
        return "guard-crash"
    if v == "refused" and runtime["by"] == "rule":
        if runtime["check"] in scanned["rules"]:
            return None
        if scanned["rules"]:
            return "other-check"
        if findings:
            return "finding-not-rule"
        return "scan-error-load-refused" if scanned["error"] else "scan-clean-load-refused"
    if v == "refused":
        if findings:
            return None
        return "scan-error-global-refused" if scanned["error"] else "scan-clean-global-refused"
    if v == "loaded":
        if scanned["rules"]:
            return "scan-rule-load-loaded"
        if scanned["status"] != "clean":
            return "scan-unclean-load-loaded"
    return None


SEVERITY = ["scanner-crashed", "scanner-hung", "guard-crash", "guard-crash-flaky", "scan-clean-load-refused",
            "scan-clean-global-refused", "scan-error-load-refused", "scan-error-global-refused",
            "scan-rule-load-loaded", "other-check", "finding-not-rule", "scan-unclean-load-loaded",
            "loaders-disagree"]


class Binaries:
    """Private copies of the command, the shim and the core beside it. Overwriting a shared
    library in place crashes every process that maps it, so the workers map these copies; when
    the originals change (a rebuild), the copies are taken again once the originals are stable."""

    def __init__(self, cli, preload, work):
        self.sources = [os.path.abspath(cli), os.path.abspath(preload),
                        os.path.join(os.path.dirname(os.path.abspath(preload)), "libpickleguard_core.so")]
        self.work = work
        self.generation = 0
        self.take()

    def fingerprint(self):
        out = []
        for path in self.sources:
            try:
                st = os.stat(path)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return out

    def take(self):
        while True:
            before = self.fingerprint()
            time.sleep(2)
            if self.fingerprint() == before and None not in before:
                break
        self.generation += 1
        directory = os.path.join(self.work, "bin-%d" % self.generation)
        os.makedirs(directory)
        for path in self.sources:
            shutil.copy2(path, directory)
        self.taken = before
        self.cli = os.path.join(directory, os.path.basename(self.sources[0]))
        self.preload = os.path.join(directory, os.path.basename(self.sources[1]))

    def changed(self):
        return self.fingerprint() != self.taken


def replay(args, preload):
    """Each saved find loaded and scanned again: does it still diverge, and how."""
    paths = []
    for given in args.replay:
        if os.path.isdir(given):
            paths += sorted(os.path.join(given, n) for n in os.listdir(given)
                            if n.startswith("rules-") and not n.endswith(".json"))
        else:
            paths.append(given)
    workers = {}
    log = open(os.devnull, "w")
    still = collections.Counter()
    try:
        for path in paths:
            with open(path + ".json") as f:
                record = json.load(f)
            packs = tuple(record.get("packs", []))
            if packs not in workers:
                workers[packs] = Worker(sys.executable, preload, packs, log)
            runtime = {}
            for loader in record["runtime"]:
                runtime[loader] = workers[packs].load(loader, path) or {"verdict": "crashed", "worker": "died"}
                if runtime[loader].get("worker"):
                    workers.pop(packs)
                    workers[packs] = Worker(sys.executable, preload, packs, log)
            scanned = scan_one(args.cli, path, packs)
            kinds = {k for k in (judge(v, scanned) for v in runtime.values()) if k}
            kind = min(kinds, key=SEVERITY.index) if kinds else "agrees"
            still[kind] += 1
            print("%s: %s (was %s); runtime %s; scan rules %s status %s" % (
                os.path.basename(path), kind, record["kind"],
                {k: (v["verdict"], v.get("check") or v.get("signal") or v.get("error", "")[:60])
                 for k, v in runtime.items()}, scanned.get("rules"), scanned.get("status")), flush=True)
    finally:
        for w in workers.values():
            w.close()
    print(json.dumps({"replayed": len(paths), **still}, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cli")
    ap.add_argument("--preload")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--mutated", type=float, default=0.85, help="share of files that are mutated")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--replay", nargs="+", metavar="FILE_OR_DIR",
                    help="load and scan saved `rules-*` finds again (with the binaries given now) "
                         "and say which still diverge, instead of generating files")
    ap.add_argument("--exclude", metavar="REGEX",
                    help="skip mutations whose description matches (one that reaches a known bug "
                         "over and over, e.g. \"->'[<>|=]?[Mm]8\"), so that others show")
    ap.add_argument("--max-saved", type=int, default=3,
                    help="files saved per divergence kind and seed kind (all are counted)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "regressions"))
    args = ap.parse_args()
    if args.worker:
        return worker()
    if not (args.cli and args.preload):
        ap.error("--cli and --preload are required")
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="pg-rules-differential-")
    binaries = Binaries(args.cli, args.preload, work)
    args.cli = binaries.cli
    if args.replay:
        try:
            return replay(args, binaries.preload)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log_path = os.path.join(tempfile.gettempdir(), "pg-rules-differential-%d.log" % args.seed)
    log = open(log_path, "w")
    print("workers' stderr: %s" % log_path, flush=True)
    workers = {}
    unguarded = {}

    def load(packs, loader, path, guard=True):
        """A guarded (or unguarded) worker's verdict; a worker that dies is a verdict too, and
        is replaced."""
        pool = workers if guard else unguarded
        if packs not in pool:
            pool[packs] = Worker(sys.executable, binaries.preload if guard else None, packs, log)
        verdict = pool[packs].load(loader, path)
        if verdict is None:
            status = pool.pop(packs).proc.returncode
            verdict = {"verdict": "crashed", "worker": "the worker itself died (status %s)" % status}
        return verdict

    stats = collections.Counter()
    verdicts = collections.Counter()
    by_kind = collections.Counter()
    checks_seen = collections.Counter()
    genuine_refused = collections.Counter()
    saved_of = collections.Counter()
    saved = []
    started = time.time()

    def stop(signum, frame):
        raise KeyboardInterrupt

    # `kill PID` ends the run early with its summary (a background job ignores SIGINT).
    signal.signal(signal.SIGTERM, stop)
    try:
        while time.time() - started < args.seconds:
            batch = os.path.join(work, "batch")
            shutil.rmtree(batch, ignore_errors=True)
            meta = {}
            for i in range(args.batch):
                try:
                    seed = make_seed(rng, work)
                except Exception:  # noqa: BLE001 - a library that refuses a seed is not news
                    stats["seed_failures"] += 1
                    continue
                stats["seeds"] += 1
                data, how = (None, [])
                if rng.random() < args.mutated:
                    try:
                        data, how = mutate(seed, rng)
                    except Exception:  # noqa: BLE001
                        traceback.print_exc()
                        data = None
                if data is None:
                    data, how = seed.data, []
                if args.exclude and any(re.search(args.exclude, h) for h in how):
                    stats["excluded"] += 1
                    continue
                group = os.path.join(batch, ",".join(seed.packs) or "ml")
                os.makedirs(group, exist_ok=True)
                name = "f%04d" % i
                path = os.path.join(group, name)
                with open(path, "wb") as f:
                    f.write(data)
                meta[path] = (seed, how, data)
            reports = {}
            for group in sorted(os.listdir(batch)):
                packs = tuple(p for p in group.split(",") if p != "ml")
                got = scan(args.cli, os.path.join(batch, group), packs)
                for path in meta:
                    if os.path.dirname(path) == os.path.join(batch, group):
                        name = os.path.basename(path)
                        if got is None:
                            reports[path] = scan_one(args.cli, path, packs)
                        else:
                            reports[path] = got.get(name, {"status": "skipped", "rules": [], "concerns": [],
                                                           "refused_globals": [], "error": False})
            verdicts_of = {}
            for path, (seed, how, data) in meta.items():
                verdicts_of[path] = {loader: load(seed.packs, loader, path) for loader in seed.loaders}
            if binaries.changed():
                # Rebuilt while the batch ran: its verdicts may come from a half-written library.
                print("the binaries changed: this batch is dropped, the workers restart on the new ones",
                      flush=True)
                stats["batches_dropped"] += 1
                for w in list(workers.values()) + list(unguarded.values()):
                    w.close()
                workers.clear()
                unguarded.clear()
                binaries.take()
                args.cli = binaries.cli
                continue
            for path, (seed, how, data) in meta.items():
                stats["files"] += 1
                stats["mutated" if how else "genuine"] += 1
                scanned = reports[path]
                runtime = {}
                for loader in seed.loaders:
                    runtime[loader] = verdicts_of[path][loader]
                    stats["loads"] += 1
                    v = runtime[loader]
                    verdicts[v["verdict"]] += 1
                    if v["verdict"] == "refused":
                        checks_seen[v["check"]] += 1
                        if not how:
                            genuine_refused["%s %s: %s" % (seed.kind, seed.what, v.get("global"))] += 1
                kinds = set()
                for loader, v in runtime.items():
                    kind = judge(v, scanned)
                    if kind:
                        kinds.add(kind)
                outcomes = {(v["verdict"], v.get("check")) for v in runtime.values()
                            if v["verdict"] in ("loaded", "refused")}
                if len(outcomes) > 1:
                    kinds.add("loaders-disagree")
                if not how and kinds:
                    stats["genuine_divergent"] += 1
                if not kinds:
                    continue
                kind = min(kinds, key=SEVERITY.index)
                extra = {}
                if kind == "guard-crash":
                    # Again under the guard (is it repeatable?) and without it (is it the library's?).
                    extra["again"] = {ld: load(seed.packs, ld, path) for ld in seed.loaders}
                    extra["unguarded"] = {ld: load(seed.packs, ld, path, guard=False) for ld in seed.loaders}
                    if not any(v["verdict"] == "crashed" for v in extra["again"].values()):
                        kind = "guard-crash-flaky"
                stats["divergent_files"] += 1
                by_kind[kind] += 1
                same = (kind, seed.kind)
                saved_of[same] += 1
                if saved_of[same] > args.max_saved:
                    continue
                digest = hashlib.sha256(data).hexdigest()[:10]
                base = os.path.join(args.out, "rules-%s-%s-%s" % (kind, seed.kind, digest))
                with open(base, "wb") as f:
                    f.write(data)
                refused_by = next((v["check"] for v in runtime.values()
                                   if v["verdict"] == "refused" and v["by"] == "rule"), None)
                loaded = any(v["verdict"] == "loaded" for v in runtime.values())
                record = {"harness": "rules", "kind": kind, "kinds": sorted(kinds), "seed": seed.kind,
                          "what": seed.what, "packs": list(seed.packs), "mutations": how,
                          "runtime": runtime, "scan": scanned, **extra}
                if refused_by and not loaded:
                    record["expect"] = {"rule": refused_by}
                elif loaded and not refused_by and not any(v["verdict"] == "refused" for v in runtime.values()):
                    record["expect"] = {"loaded": True}
                with open(base + ".json", "w") as f:
                    json.dump(record, f, indent=1)
                saved.append(os.path.basename(base))
                print("  %s: %s; runtime %s; scan rules %s concerns %s refused %s status %s" % (
                    os.path.basename(base), "; ".join(how) or "genuine",
                    {k: (v["verdict"], v.get("check") or v.get("signal") or v.get("error", "")[:60])
                     for k, v in runtime.items()},
                    scanned.get("rules"), scanned.get("concerns"), scanned.get("refused_globals"),
                    scanned.get("status")), flush=True)
            print("%6.0fs seeds %d files %d (mutated %d) loads %d: %s; divergent files %d %s" % (
                time.time() - started, stats["seeds"], stats["files"], stats["mutated"], stats["loads"],
                dict(verdicts), stats["divergent_files"], dict(by_kind)), flush=True)
    except KeyboardInterrupt:
        print("stopped early", flush=True)
    finally:
        for w in list(workers.values()) + list(unguarded.values()):
            w.close()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    summary = {"seed": args.seed, "seconds": round(time.time() - started), **stats, "verdicts": verdicts,
               "refusals_by_check": checks_seen,
               "genuine_refused": genuine_refused, "divergences_by_kind": by_kind, "saved": saved}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
