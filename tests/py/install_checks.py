"""What the preload does to `pickle` and `_pickle`, one scenario per run (tests/it/install.rs).

    python install_checks.py SCENARIO WORKDIR

Prints one JSON line of facts per scenario; the Rust test asserts on them, so a failure shows
every fact at once. Scenarios:

  names        pickle/_pickle names, captured references, the stock C Pickler, a refused load
  pure         pickle._Unpickler and a subclass under the guard
  fallback     the stock _pickle cannot be found: pickle falls back to pure Python, still guarded
  subinterp    pickle in a subinterpreter (CPython >= 3.12)
  joblib       joblib's NumpyUnpickler (a pickle._Unpickler subclass), ML venv only
  plain        no preload assumptions: whether the pickle machinery is pickleguard's
  reinit       the payload through each entry point (an embedded host runs it in every round;
               no keyword arguments to C functions: CPython 3.12.1 itself crashes on those
               after a re-initialisation)
"""

import json
import os
import sys

SCENARIO, WORK = sys.argv[1], sys.argv[2]
MARKER = os.path.join(WORK, "PWNED")


def evil():
    """A pickle that creates MARKER through os.system if it is loaded unguarded."""
    command = "touch " + MARKER
    return ("cos\nsystem\n(S'%s'\ntR." % command).encode()


def outcome(load, data):
    try:
        load(data)
        return "loaded"
    except Exception as err:  # noqa: BLE001 - the class name is the fact
        return type(err).__name__


def guarded(function):
    return type(function).__name__ == "_guarded_step"


def emit(facts):
    facts["marker_exists"] = os.path.exists(MARKER)
    print(json.dumps(facts, sort_keys=True))


def names():
    before = {name for name in ("pickle", "_pickle", "pickleguard") if name in sys.modules}
    import _pickle
    import pickle
    import pickleguard

    import copyreg  # noqa: F401 - imported before multiprocessing captures its references
    import multiprocessing.reduction as reduction
    import shelve

    facts = {
        "imported_before": sorted(before),
        "unpickler_is_type": type(pickle.Unpickler) is type,
        "same_as_pickle_module": all(
            getattr(pickle, name) is getattr(_pickle, name)
            for name in ("Unpickler", "load", "loads", "Pickler", "dump", "dumps")
        ),
        "not_pure_python": pickle.Unpickler is not pickle._Unpickler
        and pickle.loads is not pickle._loads,
        "captured_forking_pickler": reduction.ForkingPickler.loads is pickle.loads,
        "captured_shelve": shelve.Unpickler is pickle.Unpickler,
        # The C Pickler, dump and dumps belong to the stock module, not to pickleguard's.
        "pickler_module": pickle.Pickler.__module__,
        "pickler_is_c": pickle.Pickler is not pickle._Pickler
        and pickle.dump is not pickle._dump,
        "dumps_from_stock": getattr(pickle.dumps, "__self__", None) is not None
        and pickle.dumps.__self__ is not sys.modules["_pickle"]
        and pickle.dumps.__self__.__name__ == "_pickle",
        "has_pickle_buffer": hasattr(pickle, "PickleBuffer"),
        "exceptions": [
            issubclass(pickleguard.UnsafeFileError, pickle.UnpicklingError),
            pickle.UnpicklingError is _pickle.UnpicklingError,
        ],
        "roundtrip": pickle.loads(pickle.dumps({"a": [1, 2.5, b"x", ("t",)]}, protocol=5))
        == {"a": [1, 2.5, b"x", ("t",)]},
        "evil_loads": outcome(pickle.loads, evil()),
        "evil_forking_pickler": outcome(reduction.ForkingPickler.loads, evil()),
        "held_back_gone": "__getattr__" not in vars(_pickle),
        "vm_landed": hasattr(pickleguard, "loads"),
    }
    if facts["vm_landed"]:
        # pickleguard's unpickler is the one installed (same class, by name, as the module's).
        facts["unpickler_is_pickleguards"] = (
            pickle.Unpickler.__qualname__ == pickleguard.Unpickler.__qualname__
            and pickle.Unpickler.__module__ == pickleguard.Unpickler.__module__
        )
    emit(facts)


def pure():
    import collections
    import io
    import pickle

    class Sub(pickle._Unpickler):
        def find_class(self, module, name):
            return super().find_class(module, name)

    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    facts = {
        "steps_guarded": [
            guarded(getattr(pickle._Unpickler, name))
            for name in ("find_class", "load_reduce", "load_newobj", "load_newobj_ex",
                         "load_build", "_instantiate")
        ],
        "dispatch_guarded": [
            guarded(pickle._Unpickler.dispatch[opcode]) for opcode in (b"R"[0], 0x81, 0x92, b"b"[0])
        ],
        "subclass_loads": Sub(io.BytesIO(data)).load() == collections.OrderedDict(a=1),
        "pure_loads_protocols": all(
            pickle._loads(pickle.dumps(collections.OrderedDict(a=[1, {2: 3}]), protocol=p))
            == collections.OrderedDict(a=[1, {2: 3}])
            for p in range(pickle.HIGHEST_PROTOCOL + 1)
        ),
        # INST and OBJ (protocol 0 and 1 classes) go through the wrapped _instantiate.
        "inst_obj": pickle._loads(b"(icollections\nOrderedDict\np0\n(dp1\nb.") == {},
        "evil_pure": outcome(pickle._loads, evil()),
        "evil_subclass": outcome(lambda d: Sub(io.BytesIO(d)).load(), evil()),
    }
    emit(facts)


def fallback():
    # Everything pickle.py imports is imported first; then the directories that hold
    # extension modules leave sys.path, so the stock _pickle cannot be found.
    import codecs  # noqa: F401
    import functools  # noqa: F401
    import io  # noqa: F401
    import itertools  # noqa: F401
    import re  # noqa: F401
    import struct  # noqa: F401
    import _compat_pickle  # noqa: F401

    sys.path[:] = [entry for entry in sys.path if not entry.rstrip("/").endswith("lib-dynload")]
    import pickle

    facts = {
        "pure_python_installed": pickle.Unpickler is pickle._Unpickler,
        "roundtrip": pickle.loads(pickle.dumps([1, "a"])) == [1, "a"],
        "evil_loads": outcome(pickle.loads, evil()),
    }
    emit(facts)


def subinterp():
    try:
        import _interpreters as interpreters  # 3.13
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12
    result = os.path.join(WORK, "sub.json")
    code = "\n".join([
        "import json, pickle",
        "data = %r" % evil(),
        "try:",
        "    pickle.loads(data); evil = 'loaded'",
        "except Exception as err:",
        "    evil = type(err).__name__",
        "facts = {'roundtrip': pickle.loads(pickle.dumps([1, 2])) == [1, 2],",
        "         'c_unpickler': pickle.Unpickler is not pickle._Unpickler, 'evil': evil}",
        "open(%r, 'w').write(json.dumps(facts))" % result,
    ])
    interp = interpreters.create()
    failure = interpreters.run_string(interp, code)
    interpreters.destroy(interp)
    facts = json.load(open(result)) if os.path.exists(result) else {"failure": repr(failure)}
    import pickle

    facts["main_roundtrip"] = pickle.loads(pickle.dumps({1: 2})) == {1: 2}
    emit(facts)


def joblib_scenario():
    import joblib
    import joblib.numpy_pickle as numpy_pickle
    import numpy as np

    path = os.path.join(WORK, "array.joblib")
    array = np.arange(12.0).reshape(3, 4)
    joblib.dump(array, path)
    facts = {
        "numpy_unpickler_steps_guarded": [
            guarded(numpy_pickle.Unpickler.load_build),
            guarded(numpy_pickle.NumpyUnpickler.dispatch[b"R"[0]]),
            guarded(numpy_pickle.NumpyUnpickler.dispatch[0x81]),
        ],
    }
    try:
        facts["loaded_equal"] = bool((joblib.load(path) == array).all())
    except Exception as err:  # noqa: BLE001
        facts["loaded_equal"] = type(err).__name__
    emit(facts)


def plain():
    import pickle

    emit({
        "pure_guarded": guarded(pickle._Unpickler.load_reduce),
        "loads_from_its_module": pickle.loads.__self__ is sys.modules["_pickle"],
        "roundtrip": pickle.loads(pickle.dumps([1])) == [1],
    })


def reinit():
    import io
    import pickle

    emit({
        "roundtrip": pickle.loads(pickle.dumps([1, "a"], 4)) == [1, "a"],
        "evil_loads": outcome(pickle.loads, evil()),
        "evil_unpickler": outcome(lambda d: pickle.Unpickler(io.BytesIO(d)).load(), evil()),
        "evil_pure": outcome(pickle._loads, evil()),
        "pure_guarded": guarded(pickle._Unpickler.load_reduce),
    })


{
    "names": names,
    "reinit": reinit,
    "pure": pure,
    "fallback": fallback,
    "subinterp": subinterp,
    "joblib": joblib_scenario,
    "plain": plain,
}[SCENARIO]()
