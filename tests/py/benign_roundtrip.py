"""Round-trips benign data through every entry point at every protocol and prints one JSON
line per attempt: {"protocol", "entry", "ok", "error"}. Only globals in the default `ml`
pack are involved, so under the preload every attempt must load and compare equal."""
import collections
import io
import json
import pickle
import sys

import _pickle

ENTRIES = {
    "pickle.loads": lambda b: pickle.loads(b),
    "pickle.Unpickler": lambda b: pickle.Unpickler(io.BytesIO(b)).load(),
    "pickle._loads": lambda b: pickle._loads(b),
    "pickle._Unpickler": lambda b: pickle._Unpickler(io.BytesIO(b)).load(),
    "_pickle.loads": lambda b: _pickle.loads(b),
    "_pickle.Unpickler": lambda b: _pickle.Unpickler(io.BytesIO(b)).load(),
}


def sample():
    return {
        "ints": [0, 1, -1, 2**70, -(2**70)],
        "floats": [0.0, -1.5, 1e300],
        "text": ["", "ascii", "ünïcödé \u2603", "x" * 300],
        "bytes": [b"", b"\x00\xff" * 10, bytes(range(256))],
        "bytearray": bytearray(b"abc\x00"),
        "complex": [complex(1, -2), 3j],
        "set": {1, 2, "three"},
        "frozenset": frozenset({(1, 2), "x"}),
        "slice": slice(1, 10, 2),
        "tuple": (1, (2, (3,)), None, True, False),
        "ordered": collections.OrderedDict([("weight", [1.0, 2.0]), ("bias", b"\x01")]),
        "nested": {"a": [{"b": {"c": [1, 2, 3]}}]},
    }


def main():
    original = sample()
    shared = [1, 2]
    original["shared"] = (shared, shared)  # memo references
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(original, protocol=protocol)
        for entry, load in ENTRIES.items():
            result = {"protocol": protocol, "entry": entry}
            try:
                loaded = load(data)
                result["ok"] = loaded == original and loaded["shared"][0] is loaded["shared"][1]
                if not result["ok"]:
                    result["error"] = "loaded data differs: %r" % (loaded,)
            except Exception as exc:  # noqa: BLE001 - report whatever went wrong
                result.update(ok=False, error="%s: %s" % (type(exc).__name__, exc))
            print(json.dumps(result), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
