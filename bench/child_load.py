"""One load in a fresh process, timed inside the process around the load call only.

    python child_load.py VARIANT LOADER PATH
    python child_load.py VARIANT corpus CASE_ID MARKER_DIR CORPUS_PY

VARIANT: stock | pickleguard | fickling | weights_only | count_events (stock plus a Python audit
hook counting `pickle.find_class` events; never timed). The pickleguard variant differs from stock
only by the environment bench.py gives the process (LD_PRELOAD and PICKLEGUARD_*); this script
checks that the guard really is active in it and that it is absent in every other variant.
LOADER: pickle (pickle.load on an open file) | torch (torch.load) | joblib (joblib.load) |
corpus (pickle.loads of one hand-made attack from tests/py/corpus.py) | probe (pickle.loads of one
benign pickle from PROBES, built in the process: `child_load.py VARIANT probe NAME`).

Prints one JSON line: ok, seconds, error (type and message when the load raised), guard.
The modules a workload's pickle refers to, and fickling, are imported before the clock starts in
every variant, so each times the same work from the same heap: the unpickling, not first imports.
"""
import json
import os
import pickle
import sys
import time


PROBES = {
    # Benign pickles that stock pickle loads: which ones does each protection refuse?
    "numpy_array_protocol5": "numpy array, pickle.HIGHEST_PROTOCOL (5)",
    "numpy_float64_scalar": "numpy.float64 scalar",
    "complex": "complex number",
    "set": "set of ints",
    "datetime_date": "datetime.date (pickleguard: in the opt-in stdlib-data pack)",
    "torch_tensor_pickle_dumps": "torch tensor through pickle.dumps (not torch.save)",
}


def probe_pickle(name):
    import datetime

    if name == "numpy_array_protocol5":
        import numpy as np
        return pickle.dumps(np.arange(10.0), protocol=5)
    if name == "numpy_float64_scalar":
        import numpy as np
        return pickle.dumps(np.float64(1.5))
    if name == "complex":
        return pickle.dumps(complex(1, 2))
    if name == "set":
        return pickle.dumps({1, 2, 3})
    if name == "datetime_date":
        return pickle.dumps(datetime.date(2020, 1, 2))
    if name == "torch_tensor_pickle_dumps":
        import torch
        return pickle.dumps(torch.arange(4.0))
    raise SystemExit("unknown probe " + name)


def main():
    variant, loader = sys.argv[1], sys.argv[2]
    result = {"variant": variant, "loader": loader, "ok": False, "seconds": None, "error": None}

    if loader in ("pickle", "corpus", "probe"):
        import collections  # noqa: F401
        import numpy  # noqa: F401  (numpy workloads; cheap enough to import for every pickle)
    if loader == "torch":
        import torch
    if loader == "joblib":
        import joblib
        import sklearn.ensemble  # noqa: F401
        import sklearn.tree  # noqa: F401

    # Every variant imports fickling, and only the fickling variant activates it: the imports
    # change the heap and the garbage collector's thresholds (a process with more long-lived
    # objects runs fewer full collections while it unpickles 200k objects), so importing it in
    # one variant only would make that variant look faster than stock.
    import fickling.hook

    if variant == "fickling":
        fickling.hook.activate_safe_ml_environment()

    if loader == "pickle":
        path = sys.argv[3]
        f = open(path, "rb")
        call = lambda: pickle.load(f)  # noqa: E731  (looked up at call time: fickling patches it)
    elif loader == "torch":
        path = sys.argv[3]
        weights_only = variant == "weights_only"
        call = lambda: torch.load(path, weights_only=weights_only)  # noqa: E731
    elif loader == "joblib":
        path = sys.argv[3]
        call = lambda: joblib.load(path)  # noqa: E731
    elif loader == "probe":
        payload = probe_pickle(sys.argv[3])
        call = lambda: pickle.loads(payload)  # noqa: E731
    elif loader == "corpus":
        case_id, marker_dir, corpus_py = sys.argv[3], sys.argv[4], sys.argv[5]
        import copyreg
        import importlib.util

        spec = importlib.util.spec_from_file_location("pg_corpus", corpus_py)
        corpus = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(corpus)
        for code, module, name in corpus.EXTENSIONS:
            try:
                copyreg.add_extension(module, name, code)
            except ValueError:
                pass
        payload = [c for c in corpus.cases(marker_dir) if c[0] == case_id][0][2]
        call = lambda: pickle.loads(payload)  # noqa: E731
    else:
        raise SystemExit("unknown loader " + loader)

    events = []
    if variant == "count_events":
        # Not timed: how many pickle.find_class events the load raises (a Python hook would
        # distort the timing, so this runs in a process of its own).
        sys.addaudithook(lambda event, args: events.append(args) if event == "pickle.find_class" else None)

    start = time.perf_counter()
    try:
        obj = call()
        result["seconds"] = time.perf_counter() - start
        result["ok"] = True
        result["items"] = len(obj) if hasattr(obj, "__len__") else None
    except BaseException as err:  # noqa: BLE001  (a refusal is a result here, not a failure)
        result["seconds"] = time.perf_counter() - start
        result["error"] = "%s: %s" % (type(err).__name__, str(err)[:300])
        result["error_type"] = type(err).__name__

    if variant == "count_events":
        result["find_class_events"] = len(events)
        result["distinct_globals"] = len(set(map(tuple, events)))
    try:
        import pickleguard

        result["guard"] = "active" if pickleguard.is_active() else "inactive"
    except ImportError:
        result["guard"] = "absent"
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # skip tearing down a 500 MB state_dict: not part of the load


if __name__ == "__main__":
    main()
