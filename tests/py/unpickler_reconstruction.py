"""Validated reconstruction through pickleguard's unpickler, with the real ML stack.

Run under the preload with the ML venv's python. Prints one JSON line per case:
  {"case": id, "entry": ..., "refused": bool, "check": name or null, "control": ...}
and one line per genuine load: {"genuine": what, "entry": ..., "ok": bool}.

Attack cases (RV-n) go through every entry point of the Rust unpickler: `loads`, `load` on a
file, an `Unpickler` subclass overriding `find_class` (torch's pattern). The control runs the
same bytes through stock `_pickle` in a child without the preload, to show the payload works
there: a signal exit status (crash) or the object it hands out.
"""

import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pickleguard

MC = np.dtype("f8").__reduce__()[0].__module__  # numpy's multiarray module: numpy._core or numpy.core


class Reduce:
    def __init__(self, *reduce_value):
        self.value = reduce_value

    def __reduce__(self):
        return self.value


def scalar_function():
    return np.float64(1.0).__reduce__()[0]


class Wrapper(pickleguard.Unpickler):
    """torch's UnpicklerWrapper pattern: find_class overridden, super() does the work."""

    def find_class(self, module, name):
        return super().find_class(module, name)


ENTRIES = {
    "loads": lambda data: pickleguard.loads(data),
    "load": lambda data: pickleguard.load(io.BytesIO(data)),
    "subclass": lambda data: Wrapper(io.BytesIO(data)).load(),
}


def control(data, use):
    """Stock _pickle in a child without the preload: the exit status and what `use` printed."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("PICKLEGUARD_")}
    code = ("import _pickle, sys\nobj = _pickle.loads(bytes.fromhex(sys.argv[1]))\n" + use)
    child = subprocess.run([sys.executable, "-c", code, data.hex()], env=env,
                           capture_output=True, text=True, timeout=120)
    return {"status": child.returncode, "out": child.stdout.strip()[:200],
            "err": child.stderr.strip()[-200:]}


def attacks():
    cases = []
    # RV-1 uninitialised memory: numpy.ndarray applied directly hands out heap contents.
    cases.append(("RV-1", pickle.dumps(Reduce(np.ndarray, ((4096,), np.dtype("u1"))), 2),
                  "print(type(obj).__name__, len(obj))"))
    # RV-2 forged dtype flags: a V8 dtype claiming numpy's object flags (63).
    v8 = np.dtype("V8")
    red = v8.__reduce__()
    state = list(red[2])
    state[-1] = 63
    cases.append(("RV-2", pickle.dumps(Reduce(red[0], red[1], tuple(state)), 2),
                  "print(obj.flags)"))
    # RV-3 object pointers from bytes: scalar() over a V8 dtype forged to hold references reads
    # the 8 bytes 0x4141414141414141 as a PyObject pointer (stock: SIGSEGV).
    pointer_state = list(red[2])
    pointer_state[-1] = 61  # numpy's object flags without NPY_LIST_PICKLE
    forged = Reduce(red[0], red[1], tuple(pointer_state))
    cases.append(("RV-3", pickle.dumps(Reduce(scalar_function(), (forged, b"A" * 8)), 2),
                  "print(repr(obj))"))
    results = []
    for case, data, use in cases:
        ctl = control(data, use)
        for entry, load in ENTRIES.items():
            try:
                load(data)
                results.append({"case": case, "entry": entry, "refused": False, "check": None,
                                "control": ctl})
            except pickleguard.UnsafeFileError as err:
                results.append({"case": case, "entry": entry, "refused": True,
                                "check": getattr(err, "check", None), "control": ctl,
                                "message": str(err)[:300]})
    return results


def genuine():
    results = []
    arrays = {
        "float64": np.arange(12.0).reshape(3, 4),
        "int32": np.arange(5, dtype=np.int32),
        "struct": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "unicode": np.array(["ab", "c"]),
        "fortran": np.asfortranarray(np.ones((2, 3))),
        "scalar": np.float32(3.5),
        "bool": np.array([True, False]),
    }
    for what, value in arrays.items():
        for proto in (2, 4, 5):
            data = pickle.dumps(value, proto)
            for entry, load in ENTRIES.items():
                try:
                    got = load(data)
                    ok = (np.asarray(got) == np.asarray(value)).all() and got.dtype == value.dtype
                except Exception as err:  # noqa: BLE001 - reported
                    ok = False
                    what = "%s (%s: %s)" % (what, type(err).__name__, err)
                results.append({"genuine": "%s/%d" % (what, proto), "entry": entry, "ok": bool(ok)})
    try:
        import torch
        import types
        module = types.SimpleNamespace(Unpickler=pickleguard.Unpickler, load=pickleguard.load,
                                       Pickler=pickle.Pickler, dump=pickle.dump, __name__="pg")
        buf = io.BytesIO()
        sd = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.int64)}
        torch.save(sd, buf)
        buf.seek(0)
        got = torch.load(buf, pickle_module=module, weights_only=False)
        ok = all(torch.equal(got[k], sd[k]) for k in sd)
        results.append({"genuine": "torch.load(pickle_module=pickleguard)", "entry": "torch", "ok": ok})
    except ImportError:
        pass
    return results


def main():
    for line in attacks() + genuine():
        print(json.dumps(line))


if __name__ == "__main__":
    main()
