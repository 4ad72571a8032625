"""Behaviour checks of pickleguard's unpickler beside CPython's `_pickle`, under the preload.

Each check prints one JSON line {"check": name, "ok": bool, "detail": ...}. Run with
PICKLEGUARD_MODE=enforce and the default packs.

The reference results of stock `_pickle` (file positions, outcomes on a corpus) come from a
child interpreter started without the preload, so the comparison stays meaningful in a process
where `_pickle.Unpickler` itself is pickleguard's.
"""

import io
import json
import pickle
import random
import sys
import traceback

import _pickle
import os
import subprocess

try:
    import pickleguard
except ImportError:  # the stock child (see stock())
    pickleguard = None

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


class NoPeek:
    """read/readline/readinto, no peek."""

    def __init__(self, data):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(n)

    def readline(self, limit=-1):
        return self._f.readline(limit)

    def readinto(self, buffer):
        return self._f.readinto(buffer)

    def tell(self):
        return self._f.tell()


class Minimal:
    def __init__(self, data):
        self._f = io.BytesIO(data)
        self.read = self._f.read
        self.readline = self._f.readline

    def tell(self):
        return self._f.tell()


def files(data):
    """The same data behind several kinds of file objects."""
    return {
        "BytesIO": io.BytesIO(data),
        "BufferedReader(peek)": io.BufferedReader(io.BytesIO(data), buffer_size=64),
        "no-peek": NoPeek(data),
        "minimal": Minimal(data),
    }


SAMPLES = [
    {"weights": [0.5, 1.5, -2.0] * 50, "name": "layer", "shape": (3, 50), "blob": b"\x00" * 300},
    list(range(1000)),
    ("x" * 70000, b"y" * 70000),
    {"nested": [[[[{"k": (1, 2, 3)}]]]], "set": {1, 2, 3}, "fs": frozenset("ab")},
]


def stock(task):
    """Runs `task` (a function name of this module) in a child without the preload."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("PICKLEGUARD_")}
    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import sys, json; sys.path.insert(0, %r); import unpickler_checks as c; "
            "print(json.dumps(c.%s()))" % (here, task))
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=600)
    if child.returncode != 0:
        raise RuntimeError("stock child failed: " + child.stderr[-2000:])
    return json.loads(child.stdout.strip().splitlines()[-1])


def positions(unpickler_class, load_function):
    """(kind, proto) -> the file position after each load, and what followed the last one."""
    table = {}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        data = b"".join(pickle.dumps(s, proto) for s in SAMPLES) + b"TRAILER"
        for kind in files(data):
            f = files(data)[kind]
            u = unpickler_class(f)
            seen = []
            for sample in SAMPLES:
                seen.append([u.load() == sample, f.tell()])
            seen.append(f.read().decode("latin1"))
            g = files(data)[kind]
            for sample in SAMPLES:
                seen.append([load_function(g) == sample, g.tell()])
            seen.append(g.read().decode("latin1"))
            table["%s/%d" % (kind, proto)] = seen
    return table


def stock_positions():
    return positions(_pickle.Unpickler, _pickle.load)


@check
def position_after_each_load():
    """Several pickles in a row, then trailing bytes: after every load, every kind of file is
    where stock _pickle leaves it (torch's legacy format reads several pickles in a row)."""
    ours = positions(pickleguard.Unpickler, pickleguard.load)
    theirs = stock("stock_positions")
    problems = [(key, ours[key], theirs.get(key)) for key in ours if ours[key] != theirs.get(key)]
    every = all(row[0] for seen in ours.values() for row in seen if isinstance(row, list))
    return not problems and every and len(ours) == len(theirs), problems[:3]


@check
def subclass_find_class_and_super():
    """A subclass overriding find_class (torch's UnpicklerWrapper pattern) still gets the policy
    through super().find_class, and may redirect names."""
    seen = []

    class Wrapper(pickleguard.Unpickler):
        def find_class(self, module, name):
            seen.append((module, name))
            if (module, name) == ("my.renamed", "Thing"):
                module, name = "collections", "OrderedDict"
            return super().find_class(module, name)

    import collections
    data = pickle.dumps(collections.OrderedDict(a=1), 2).replace(
        b"ccollections\nOrderedDict", b"cmy.renamed\nThing")
    ok = Wrapper(io.BytesIO(data)).load() == collections.OrderedDict(a=1)
    try:
        Wrapper(io.BytesIO(pickle.dumps(print))).load()
        refused = False
    except pickleguard.UnsafeFileError:
        refused = True
    return ok and refused and ("builtins", "print") in seen, {"seen": seen, "refused": refused}


@check
def persistent_load_attribute_and_method():
    class P:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "pid-%d" % obj.n if isinstance(obj, P) else None

    p = P()
    p.n = 7
    results = []
    for proto in (0, 2, 5):
        buf = io.BytesIO()
        Pickler(buf, proto).dump([p, 1])
        data = buf.getvalue()

        class Sub(pickleguard.Unpickler):
            def persistent_load(self, pid):
                return ("method", pid)

        results.append(Sub(io.BytesIO(data)).load() == [("method", "pid-7"), 1])
        u = pickleguard.Unpickler(io.BytesIO(data))
        u.persistent_load = lambda pid: ("attr", pid)
        results.append(u.load() == [("attr", "pid-7"), 1])
        try:
            pickleguard.loads(data)
            results.append(False)
        except pickle.UnpicklingError:
            results.append(True)
    return all(results), results


@check
def memo_get_set():
    data = pickle.dumps(["abc", "abc"], 2)
    u = pickleguard.Unpickler(io.BytesIO(data))
    first = u.load()
    memo = u.memo.copy()
    u2 = pickleguard.Unpickler(io.BytesIO(data))
    u2.memo = u.memo
    ok = isinstance(memo, dict) and len(memo) >= 1 and u2.memo.copy().keys() == memo.keys()
    u.memo.clear()
    return ok and u.memo.copy() == {} and first == ["abc", "abc"], memo


@check
def python2_strings():
    """Python 2 str pickles: ASCII by default, latin1 and bytes on request (old numpy files)."""
    data = b"\x80\x02U\x03\xe9\xe8\xe0q\x00."
    results = {}
    for encoding in ("latin1", "bytes"):
        results[encoding] = (pickleguard.loads(data, encoding=encoding)
                             == _pickle.loads(data, encoding=encoding))
    for fn in (pickleguard.loads, _pickle.loads):
        try:
            fn(data)
            results[fn.__module__ + " ascii"] = "no error"
        except UnicodeDecodeError:
            results[fn.__module__ + " ascii"] = "UnicodeDecodeError"
    ok = all(v is True for k, v in results.items() if k in ("latin1", "bytes"))
    ok = ok and results.get("pickleguard ascii") == results.get("_pickle ascii")
    return ok, results


@check
def out_of_band_buffers():
    buffers = []
    obj = [pickle.PickleBuffer(b"abc"), pickle.PickleBuffer(bytearray(b"def"))]
    data = pickle.dumps(obj, 5, buffer_callback=buffers.append)
    ours = pickleguard.loads(data, buffers=buffers)
    theirs = _pickle.loads(data, buffers=buffers)
    same = [bytes(a) for a in ours] == [bytes(b) for b in theirs]
    readonly = [memoryview(a).readonly for a in ours] == [memoryview(b).readonly for b in theirs]
    return same and readonly, {"ours": [type(a).__name__ for a in ours]}


@check
def deep_nesting():
    """A million nested lists load without recursion (CPython's _pickle also loads it)."""
    depth = 100000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    obj = pickleguard.loads(data)
    n = 0
    while obj:
        obj = obj[0]
        n += 1
    return n == depth - 1, n


@check
def extension_codes():
    import copyreg
    import collections
    copyreg.add_extension("collections", "OrderedDict", 0xF00D)
    try:
        data = pickle.dumps(collections.OrderedDict(a=1), 2)
        ok = b"\x83" in data and pickleguard.loads(data) == collections.OrderedDict(a=1)
        ok = ok and pickleguard.loads(data) == collections.OrderedDict(a=1)  # the cached path
    finally:
        copyreg.remove_extension("collections", "OrderedDict", 0xF00D)
    return ok, None


def corpus():
    """Random benign objects pickled at random protocols, every other one mutated."""
    rng = random.Random(1234)

    def rand_obj(depth=0):
        kind = rng.randrange(12 if depth < 4 else 7)
        if kind == 0:
            return rng.randrange(-2**70, 2**70)
        if kind == 1:
            return rng.random()
        if kind == 2:
            return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(10)))
        if kind == 3:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        if kind == 4:
            return rng.choice([None, True, False, 0, -1, 255, 65535, 2**31])
        if kind == 5:
            return bytearray(b"ba")
        if kind == 6:
            return rng.randrange(-300, 300)
        if kind == 7:
            return [rand_obj(depth + 1) for _ in range(rng.randrange(5))]
        if kind == 8:
            return tuple(rand_obj(depth + 1) for _ in range(rng.randrange(5)))
        if kind == 9:
            return {rng.randrange(100): rand_obj(depth + 1) for _ in range(rng.randrange(5))}
        if kind == 10:
            return {rng.randrange(100) for _ in range(rng.randrange(5))}
        shared = rand_obj(depth + 1)
        return [shared, shared]

    streams = []
    for i in range(3000):
        data = pickle.dumps(rand_obj(), rng.randrange(6))
        if i % 2:
            data = bytearray(data)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        streams.append(data)
    return streams


def outcomes(loads):
    results = []
    for data in corpus():
        try:
            results.append(["ok", repr(loads(data))])
        except Exception as err:  # noqa: BLE001 - the class is what is compared
            results.append([type(err).__name__, None])
    return results


def stock_outcomes():
    return outcomes(_pickle.loads)


@check
def differential_corpus():
    """Random benign objects and mutated streams: the same objects (by repr) or the same error
    class as stock _pickle (in the unguarded child). A stream naming a global the guard refuses
    (a mutated name) is the guard's business, not the machine's, and is not compared."""
    ours, theirs = outcomes(pickleguard.loads), stock("stock_outcomes")
    mismatches = []
    for data, a, b in zip(corpus(), ours, theirs):
        if a == b or a[0] == "UnsafeFileError":
            continue
        # A length far beyond the data: _pickle allocates it first (MemoryError), pickleguard
        # sees that the data is too short without allocating.
        if b[0] == "MemoryError":  # or a memo index in the billions (see README)
            continue
        mismatches.append((data.hex(), a, b))
    return not mismatches and len(ours) == len(theirs), mismatches[:5]


def main():
    failed = 0
    for function in CHECKS:
        try:
            ok, detail = function()
        except Exception:  # noqa: BLE001 - reported, not hidden
            ok, detail = False, traceback.format_exc()
        failed += not ok
        print(json.dumps({"check": function.__name__, "ok": bool(ok), "detail": repr(detail)[:2000]}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
