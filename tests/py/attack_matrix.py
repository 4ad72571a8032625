"""Loads every corpus payload through every unpickling entry point and prints one JSON line
per attempt. Run under the preload by the Rust integration tests:

    python attack_matrix.py MARKER_DIR

Each line: {"case", "entry", "outcome": "blocked"|"loaded"|"error", "type", "module",
"name", "reason", "message"}. The test then checks every marker file is absent.
"""
import builtins
import copyreg
import io
import json
import pickle
import sys

import _pickle

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import corpus  # noqa: E402


class SuperUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)


class SuperPyUnpickler(pickle._Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)


class SuperCUnpickler(_pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)


ENTRIES = {
    "pickle.loads": lambda b: pickle.loads(b),
    "pickle.load": lambda b: pickle.load(io.BytesIO(b)),
    "pickle.Unpickler": lambda b: pickle.Unpickler(io.BytesIO(b)).load(),
    "pickle._loads": lambda b: pickle._loads(b),
    "pickle._load": lambda b: pickle._load(io.BytesIO(b)),
    "pickle._Unpickler": lambda b: pickle._Unpickler(io.BytesIO(b)).load(),
    "_pickle.loads": lambda b: _pickle.loads(b),
    "_pickle.load": lambda b: _pickle.load(io.BytesIO(b)),
    "_pickle.Unpickler": lambda b: _pickle.Unpickler(io.BytesIO(b)).load(),
    "subclass(pickle.Unpickler)": lambda b: SuperUnpickler(io.BytesIO(b)).load(),
    "subclass(pickle._Unpickler)": lambda b: SuperPyUnpickler(io.BytesIO(b)).load(),
    "subclass(_pickle.Unpickler)": lambda b: SuperCUnpickler(io.BytesIO(b)).load(),
}

early_loads = getattr(builtins, "PICKLEGUARD_TEST_EARLY_LOADS", None)
early_unpickler = getattr(builtins, "PICKLEGUARD_TEST_EARLY_UNPICKLER", None)
if early_loads is not None:
    ENTRIES["captured-at-startup loads"] = lambda b: early_loads(b)
    ENTRIES["captured-at-startup Unpickler"] = lambda b: early_unpickler(io.BytesIO(b)).load()


def attempt(load, data):
    try:
        load(data)
    except pickle.UnpicklingError as exc:
        if type(exc).__name__ == "UnsafeFileError":
            return {"outcome": "blocked", "type": type(exc).__module__ + "." + type(exc).__name__,
                    "module": exc.module, "name": exc.name, "reason": exc.reason,
                    "message": str(exc)}
        return {"outcome": "error", "type": type(exc).__name__, "message": str(exc)}
    except BaseException as exc:  # noqa: B902 - a payload may raise anything
        return {"outcome": "error", "type": type(exc).__name__, "message": str(exc)}
    return {"outcome": "loaded"}


def main():
    marker_dir = sys.argv[1]
    for code, module, name in corpus.EXTENSIONS:
        copyreg.add_extension(module, name, code)
    for case_id, _description, payload, _marker in corpus.cases(marker_dir):
        for entry, load in ENTRIES.items():
            result = {"case": case_id, "entry": entry,
                      "has_marker": case_id not in corpus.NO_SIDE_EFFECT, "marker": _marker}
            result.update(attempt(load, payload))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
