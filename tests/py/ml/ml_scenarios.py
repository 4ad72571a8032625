"""Real ML libraries saving and loading real models, each benign case next to a malicious twin
in the same format. Run by `tests/it/ml_stack.rs`, under the preload and without it (control):

    python ml_scenarios.py GROUP WORKDIR

GROUP is one of: torch, torch-module, checkpoint, numpy, joblib, joblib-arrays, pandas, dill-shelve, copyreg,
processes. The first line is a header {"header": true, "guard": bool, "python": str,
"versions": {...}}; then one JSON line per case:

    {"case", "kind": "benign"|"malicious", "outcome": "loaded"|"blocked"|"refused-by-torch"|"error",
     "same": bool, "marker_exists": bool, "message": str, "file": str, "type": str,
     "module": str|null, "name": str|null, "reason": str|null}

`same` says whether what was loaded equals the original (tensors by torch.equal, arrays by
numpy.array_equal, estimators by their predictions on a fixed input, frames by DataFrame.equals).
A malicious twin's payload runs `touch WORKDIR/markers/<file>`: the marker is removed before
each load and looked for after it, so `marker_exists` is about that load alone.
"""
import collections
import json
import os
import pickle
import sys

import mlfixtures
from mlfixtures import Backdoor, same

try:
    import pickleguard
except ImportError:  # the control run, without the preload
    pickleguard = None


class Context:
    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        self.markers = os.path.join(self.workdir, "markers")
        os.makedirs(self.markers, exist_ok=True)

    def path(self, name):
        return os.path.join(self.workdir, name)

    def marker(self, name):
        """The marker a payload hidden in the file `name` creates."""
        return os.path.join(self.markers, os.path.basename(name))

    def evil(self, name):
        """A payload object for the file `name`."""
        return Backdoor(self.marker(name))


def unsafe_file_error(exc):
    """The pickleguard refusal in `exc` or what it was raised from, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "UnsafeFileError" and type(exc).__module__ == "pickleguard":
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def classify(exc):
    refusal = unsafe_file_error(exc)
    if refusal is not None:
        result = {"outcome": "blocked", "type": "pickleguard.UnsafeFileError",
                  "module": getattr(refusal, "module", None), "name": getattr(refusal, "name", None),
                  "reason": getattr(refusal, "reason", None), "message": str(refusal)}
        if result["module"] is None:
            # Re-raised from a DataLoader worker as UnsafeFileError(traceback text): the
            # worker's message is the last line of that text.
            message = str(refusal).rstrip().rsplit("\npickleguard.UnsafeFileError: ", 1)[-1]
            refused = message.split("`")[1] if message.count("`") >= 2 else ""
            module, _, name = refused.rpartition(":" if ":" in refused else ".")
            result.update(message=message, module=module or None, name=name or None,
                          reason="hard-denied" if "it is hard-denied" in message
                          else "not-allowlisted", rewrapped=True)
        return result
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        return {"outcome": "refused-by-torch", "type": type(exc).__name__, "message": text}
    return {"outcome": "error", "type": type(exc).__module__ + "." + type(exc).__name__,
            "message": text}


def attempt(ctx, case, kind, file, load, original=None, compare=same):
    """Loads with `load()`, compares the result with `original` (if given) and prints the line."""
    marker = ctx.marker(file)
    if os.path.exists(marker):
        os.remove(marker)
    result = {"case": case, "kind": kind, "file": os.path.basename(file), "same": False,
              "outcome": "loaded", "message": "", "type": None, "module": None, "name": None,
              "reason": None}
    try:
        value = load()
    except BaseException as exc:  # noqa: B902 - a payload or a refusal may raise anything
        result.update(classify(exc))
    else:
        if original is not None:
            try:
                result["same"] = bool(compare(original, value))
            except Exception as exc:  # a comparison that cannot run is a difference
                result["message"] = "comparison failed: %r" % exc
    result["marker_exists"] = os.path.exists(marker)
    print(json.dumps(result), flush=True)


def pair(ctx, case, file, evil_file, save, load, benign, malicious, compare=same):
    """A benign case and its malicious twin: saves both with `save(obj, path)`, loads both with
    `load(path)`."""
    save(benign, ctx.path(file))
    save(malicious, ctx.path(evil_file))
    attempt(ctx, case, "benign", file, lambda: load(ctx.path(file)), benign, compare)
    attempt(ctx, case + "-evil", "malicious", evil_file, lambda: load(ctx.path(evil_file)))


# -- torch --------------------------------------------------------------------------------

def torch_checkpoint(torch, mlmodels):
    """A state_dict plus tensors of the dtypes and layouts real checkpoints hold."""
    model = mlmodels.tiny_net()
    base = torch.arange(12, dtype=torch.float32)
    return model, {
        "model": model.state_dict(),
        "tensors": {
            "bfloat16": torch.linspace(-1, 1, 6, dtype=torch.bfloat16).reshape(2, 3),
            "float16": torch.linspace(-2, 2, 5, dtype=torch.float16),
            "float64": torch.randn(3, 3, dtype=torch.float64),
            "int8": torch.arange(-4, 4, dtype=torch.int8),
            "bool": torch.tensor([True, False, True]),
            "complex64": torch.randn(4, dtype=torch.complex64),
            "view": base[2:8].view(2, 3),
            "base": base,
            "parameter": torch.nn.Parameter(torch.ones(3)),
            "empty": torch.empty(0, 5),
        },
        "step": 1000,
        "lr_history": [0.1, 0.05, 0.025],
    }


def optimizer_state(torch, mlmodels, optimizer_class, **kwargs):
    model = mlmodels.tiny_net()
    model.train()
    optimizer = optimizer_class(model.parameters(), **kwargs)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
    return optimizer.state_dict()


def with_payload(state, payload):
    """A deep copy of an optimizer state_dict whose first param group carries the payload."""
    import copy

    state = copy.deepcopy(state)
    state["param_groups"][0]["scheduler_hook"] = payload
    return state


def rewrite_data_pkl(source, target, marker):
    """A malicious `.pt` made from a real benign checkpoint: its `archive/data.pkl` gets a
    prefix that calls os.system and pops the result, then the original pickle. Everything else
    in the zip is copied byte for byte, so an unguarded torch.load returns the original data."""
    import zipfile

    command = ("touch '%s'" % marker).encode()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        names = zin.namelist()
        assert any(n.endswith("/data.pkl") for n in names), names
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                assert data[:2] == b"\x80\x02", data[:2]  # PROTO 2
                payload = (b"\x80\x02cos\nsystem\n(X" + len(command).to_bytes(4, "little")
                           + command + b"tR0")
                data = payload + data[2:]
            zout.writestr(info, data)


def group_torch(ctx):
    import torch

    import mlmodels

    _model, checkpoint = torch_checkpoint(torch, mlmodels)
    evil = dict(checkpoint, note=ctx.evil("state_dict_evil.pt"))

    def save(obj, path):
        torch.save(obj, path)

    def load_full(path):
        return torch.load(path, weights_only=False)

    def load_weights(path):
        return torch.load(path, weights_only=True)

    pair(ctx, "state-dict", "state_dict.pt", "state_dict_evil.pt", save, load_full, checkpoint, evil)
    attempt(ctx, "state-dict-weights-only", "benign", "state_dict.pt",
            lambda: load_weights(ctx.path("state_dict.pt")), checkpoint)
    attempt(ctx, "state-dict-weights-only-evil", "malicious", "state_dict_evil.pt",
            lambda: load_weights(ctx.path("state_dict_evil.pt")))

    for name, cls, kwargs in [("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
                              ("adam", torch.optim.Adam, {"lr": 1e-3})]:
        state = optimizer_state(torch, mlmodels, cls, **kwargs)
        file, evil_file = "optimizer_%s.pt" % name, "optimizer_%s_evil.pt" % name
        pair(ctx, "optimizer-" + name, file, evil_file, save, load_full, state,
             with_payload(state, ctx.evil(evil_file)))
        attempt(ctx, "optimizer-%s-weights-only" % name, "benign", file,
                lambda: load_weights(ctx.path(file)), state)
        attempt(ctx, "optimizer-%s-weights-only-evil" % name, "malicious", evil_file,
                lambda: load_weights(ctx.path(evil_file)))

    def save_legacy(obj, path):
        torch.save(obj, path, _use_new_zipfile_serialization=False)

    legacy_evil = dict(checkpoint, note=ctx.evil("legacy_evil.pt"))
    pair(ctx, "legacy-format", "legacy.pt", "legacy_evil.pt", save_legacy, load_full,
         checkpoint, legacy_evil)
    attempt(ctx, "legacy-format-weights-only", "benign", "legacy.pt",
            lambda: load_weights(ctx.path("legacy.pt")), checkpoint)
    attempt(ctx, "legacy-format-weights-only-evil", "malicious", "legacy_evil.pt",
            lambda: load_weights(ctx.path("legacy_evil.pt")))

    rewritten = ctx.path("state_dict_rewritten.pt")
    rewrite_data_pkl(ctx.path("state_dict.pt"), rewritten, ctx.marker(rewritten))
    attempt(ctx, "zip-rewritten-data-pkl-evil", "malicious", rewritten,
            lambda: load_full(rewritten), checkpoint)
    attempt(ctx, "zip-rewritten-data-pkl-weights-only-evil", "malicious", rewritten,
            lambda: load_weights(rewritten), checkpoint)


def same_module(torch):
    probe = torch.linspace(-3, 3, 20).reshape(5, 4)

    def compare(original, loaded):
        with torch.no_grad():
            return (type(loaded) is type(original) and not loaded.training
                    and same(original.state_dict(), loaded.state_dict())
                    and torch.equal(original(probe), loaded(probe)))
    return compare


def group_torch_module(ctx):
    """A whole nn.Module pickled with torch.save(model): refused by default; the Rust test
    allows what each refusal suggests until it loads."""
    import torch

    import mlmodels

    model = mlmodels.tiny_net()
    evil = mlmodels.tiny_net()
    evil.training_hook = ctx.evil("module_evil.pt")
    pair(ctx, "module-pickle", "module.pt", "module_evil.pt", torch.save,
         lambda path: torch.load(path, weights_only=False), model, evil, same_module(torch))


def group_checkpoint(ctx):
    """Training checkpoints with RNG state, argparse.Namespace and TrainingArguments."""
    import argparse
    import random

    import numpy as np
    import torch
    from transformers import TrainingArguments

    import mlmodels

    model = mlmodels.tiny_net()
    np.random.seed(1234)
    np.random.rand(7)
    random.seed(99)
    rng = {
        "epoch": 3,
        "model": model.state_dict(),
        "numpy_rng": np.random.get_state(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
    }
    namespace = dict(rng, args=argparse.Namespace(lr=0.1, epochs=3, data="train.csv",
                                                  layers=[4, 8, 2], amp=False))
    training_args = TrainingArguments(output_dir=ctx.path("trainer-out"), learning_rate=3e-4,
                                      num_train_epochs=2, report_to=[], seed=7)
    # Trainer reads args.device, which caches accelerate's PartialState in the object: a
    # checkpoint written during training pickles that too.
    assert str(training_args.device) == "cpu"
    full = dict(namespace, training_args=training_args)

    evil_args = TrainingArguments(output_dir=ctx.path("trainer-out"), report_to=[])
    evil_args.run_name = ctx.evil("checkpoint_training_args_evil.pt")

    def load(path):
        return torch.load(path, weights_only=False)

    def compare(original, loaded):
        if not same({k: v for k, v in original.items() if k != "training_args"},
                    {k: v for k, v in loaded.items() if k != "training_args"}):
            return False
        if "training_args" in original:
            a, b = original["training_args"], loaded["training_args"]
            return type(a) is type(b) and a.to_dict() == b.to_dict() and a == b
        return True

    pair(ctx, "checkpoint-rng", "checkpoint_rng.pt", "checkpoint_rng_evil.pt", torch.save, load,
         rng, dict(rng, numpy_rng=(ctx.evil("checkpoint_rng_evil.pt"),) + rng["numpy_rng"][1:]),
         compare)
    pair(ctx, "checkpoint-namespace", "checkpoint_namespace.pt", "checkpoint_namespace_evil.pt",
         torch.save, load, namespace,
         dict(namespace, args=argparse.Namespace(
             lr=0.1, callback=ctx.evil("checkpoint_namespace_evil.pt"))),
         compare)
    pair(ctx, "checkpoint-training-args", "checkpoint_training_args.pt",
         "checkpoint_training_args_evil.pt", torch.save, load, full,
         dict(full, training_args=evil_args), compare)


# -- numpy --------------------------------------------------------------------------------

def group_numpy(ctx):
    import numpy as np

    objects = np.empty(5, dtype=object)
    objects[:] = ["label", 3, {"classes": ["cat", "dog"]}, (1.5, None), [np.int64(7)]]
    evil_objects = objects.copy()
    evil_objects[2] = ctx.evil("objects_evil.npy")

    def save_npy(array, path):
        with open(path, "wb") as f:  # np.save would append .npy to a name without it
            np.save(f, array, allow_pickle=True)

    def load_npy(path):
        return np.load(path, allow_pickle=True)

    pair(ctx, "npy-object-array", "objects.npy", "objects_evil.npy", save_npy, load_npy, objects,
         evil_objects)

    arrays = {
        "weights": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
        "labels": objects,
        "records": np.array([(1, 2.5, b"ab")], dtype=[("id", "i4"), ("score", "f8"),
                                                     ("tag", "S2")]),
        "when": np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
    }
    evil_arrays = dict(arrays, labels=evil_objects.copy())
    evil_arrays["labels"][2] = ctx.evil("arrays_evil.npz")

    def save_npz(values, path):
        with open(path, "wb") as f:
            np.savez_compressed(f, **values)

    def load_npz(path):
        with np.load(path, allow_pickle=True) as npz:
            return {key: npz[key] for key in npz.files}

    pair(ctx, "npz-with-object-array", "arrays.npz", "arrays_evil.npz", save_npz, load_npz,
         arrays, evil_arrays)

    scalars = {
        "arrays": [np.arange(6, dtype=np.int16).reshape(2, 3), np.array([1 + 2j]),
                   np.array([0.5], dtype=np.float16), np.ma.masked_array([1, 2], mask=[0, 1]).data],
        "scalars": [np.float64(2.5), np.int32(-3), np.bool_(True)],
        "dtype": np.dtype("<f4"),
        "strings": np.array(["a", "bc"], dtype=np.dtypes.StringDType()),
    }

    def save_pickle(value, path):
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)

    pair(ctx, "np-load-pickle-file", "arrays.pkl", "arrays_evil.pkl", save_pickle, load_npy,
         scalars, dict(scalars, dtype=ctx.evil("arrays_evil.pkl")))


# -- joblib / scikit-learn ----------------------------------------------------------------

def group_joblib(ctx):
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = make_classification(n_samples=120, n_features=6, random_state=0)
    probe = np.linspace(-2, 2, 60).reshape(10, 6)

    def fit(make):
        return make().fit(x, y)

    def pipeline():
        return Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=3)),
                         ("clf", LogisticRegression())])

    models = {
        "pipeline": lambda: pipeline(),
        "logistic-regression": lambda: LogisticRegression(max_iter=200),
        "random-forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=5),
    }

    def compare(original, loaded):
        return type(loaded) is type(original) and bool(
            np.array_equal(original.predict(probe), loaded.predict(probe))
            and np.array_equal(original.predict_proba(probe), loaded.predict_proba(probe)))

    compressions = [("plain", 0), ("zlib", ("zlib", 3)), ("gzip", ("gzip", 3)),
                    ("bz2", ("bz2", 3)), ("lzma", ("lzma", 3)), ("xz", ("xz", 3))]
    for name, make in models.items():
        model = fit(make)
        evil_model = fit(make)
        for label, compress in compressions:
            if name != "pipeline" and label not in ("plain", "zlib"):
                continue
            file = "%s-%s.joblib" % (name, label)
            evil_file = "%s-%s-evil.joblib" % (name, label)
            evil_model.metadata_ = ctx.evil(evil_file)
            pair(ctx, "joblib-%s-%s" % (name, label), file, evil_file,
                 lambda obj, path, c=compress: joblib.dump(obj, path, compress=c), joblib.load,
                 model, evil_model, compare)


def group_joblib_arrays(ctx):
    """joblib.dump of plain numpy arrays (no estimator): loads with the default pack. The evil
    twin is an object array, which joblib writes as a nested pickle: its payload is refused."""
    import joblib
    import numpy as np

    arrays = {"weights": np.linspace(0, 1, 12).reshape(3, 4), "ids": np.arange(5),
              "fortran": np.asfortranarray(np.ones((2, 3), dtype=np.float32)),
              "records": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])}
    for label, compress in [("plain", 0), ("zlib", 3)]:
        evil = dict(arrays, objects=np.array([1, ctx.evil("arrays-%s-evil.joblib" % label)],
                                             dtype=object))
        pair(ctx, "joblib-arrays-" + label, "arrays-%s.joblib" % label,
             "arrays-%s-evil.joblib" % label,
             lambda obj, path, c=compress: joblib.dump(obj, path, compress=c), joblib.load,
             arrays, evil)


# -- pandas -------------------------------------------------------------------------------

def group_pandas(ctx):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({
        "int": np.arange(6, dtype=np.int64),
        "float": np.linspace(0, 1, 6),
        "text": ["a", "b", "c", "d", "e", "f"],
        "flag": [True, False] * 3,
        "category": pd.Categorical(["x", "y", "x", "z", "y", "x"]),
        "nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
        "when": pd.date_range("2024-01-01", periods=6, freq="D"),
        "when_utc": pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC"),
        "elapsed": pd.to_timedelta(np.arange(6), unit="s"),
    }, index=pd.Index(list("uvwxyz"), name="key"))
    series = pd.Series([1.5, 2.5, np.nan], index=pd.date_range("2024-01-01", periods=3),
                       name="price")
    for compression in ["plain", "gzip", "bz2", "xz", "zip"]:
        file = "frame-%s.pkl" % compression
        evil_file = "frame-%s-evil.pkl" % compression
        evil = frame.copy()
        evil["note"] = [None] * 5 + [ctx.evil(evil_file)]
        kwargs = {} if compression == "plain" else {"compression": compression}
        pair(ctx, "pandas-frame-" + compression, file, evil_file,
             lambda obj, path, kw=kwargs: obj.to_pickle(path, **kw),
             lambda path, kw=kwargs: pd.read_pickle(path, **kw), frame, evil)
    evil_series = series.astype(object)
    evil_series.iloc[1] = ctx.evil("series-evil.pkl")
    pair(ctx, "pandas-series", "series.pkl", "series-evil.pkl", lambda obj, path: obj.to_pickle(path),
         pd.read_pickle, series, evil_series)


# -- dill, shelve, copyreg ----------------------------------------------------------------

def group_dill_shelve(ctx):
    import shelve

    import dill
    import numpy as np

    data = {"weights": [0.5, -1.25, 2.0], "meta": collections.OrderedDict(name="linear-3"),
            "shape": (3,), "tags": {"a", "b"}, "blob": b"\x00\x01",
            "scalar": np.float64(2.5)}

    def dump(obj, path):
        with open(path, "wb") as f:
            dill.dump(obj, f)

    def load(path):
        with open(path, "rb") as f:
            return dill.load(f)

    pair(ctx, "dill-data", "data.dill", "system_evil.dill", dump, load, data,
         dict(data, meta=ctx.evil("system_evil.dill")))
    # dill pickles every plain ndarray through its own `dill._dill._create_array`, and a
    # builtin type it meets as an object (complex's reduce names `complex`) through
    # `dill._dill._load_type`: both live in the hard-denied `dill` module.
    pair(ctx, "dill-complex", "complex.dill", "complex_evil.dill", dump, load,
         {"scale": 1 + 2j}, {"scale": 1 + 2j, "hook": ctx.evil("complex_evil.dill")})
    arrays = {"weights": np.linspace(0, 1, 6).reshape(2, 3), "ids": np.arange(4)}
    pair(ctx, "dill-numpy-array", "arrays.dill", "arrays_evil.dill", dump, load, arrays,
         dict(arrays, ids=ctx.evil("arrays_evil.dill")))

    marker = ctx.marker("lambda_evil.dill")

    class RunsALambda:
        """dill pickles the lambda by value (code and all); loading calls it."""

        def __reduce__(self):
            return ((lambda: os.system("touch '%s'" % marker)), ())

    dump(dict(data, meta=RunsALambda()), ctx.path("lambda_evil.dill"))
    attempt(ctx, "dill-lambda-evil", "malicious", "lambda_evil.dill",
            lambda: load(ctx.path("lambda_evil.dill")))

    shelf_path = ctx.path("store.shelf")
    with shelve.open(shelf_path) as shelf:
        shelf["model"] = data
        shelf["evil"] = dict(data, meta=ctx.evil("store.shelf"))

    def read(key):
        with shelve.open(shelf_path, flag="r") as shelf:
            return shelf[key]

    attempt(ctx, "shelve-entry", "benign", "store.shelf", lambda: read("model"), data)
    attempt(ctx, "shelve-entry-evil", "malicious", "store.shelf", lambda: read("evil"))


def group_copyreg(ctx):
    """Classes pickled through copyreg.pickle reducers; `mlfixtures` registers them."""
    points = [mlfixtures.Point(1, 2), mlfixtures.Point(3.5, -1.0)]
    evil = mlfixtures.EvilPoint(0, 0)
    evil.marker = ctx.marker("points_evil.pkl")

    def save(obj, path):
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    def load(path):
        with open(path, "rb") as f:
            return pickle.load(f)

    pair(ctx, "copyreg-reducer", "points.pkl", "points_evil.pkl", save, load, points,
         [points[0], evil])


# -- processes ----------------------------------------------------------------------------

Sample = collections.namedtuple("Sample", "x label")


class SquaresDataset:
    """A map-style Dataset defined in the script, as training scripts do."""

    def __init__(self, n, evil_path=None):
        self.n = n
        self.evil_path = evil_path

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        import torch

        if self.evil_path is not None:
            # A worker that loads a file: that load is the program's, and is checked.
            torch.load(self.evil_path, weights_only=False)
        return Sample(torch.full((3,), float(index * index)), index)


class Result:
    """Not allowlisted anywhere: only multiprocessing's own IPC may carry it."""

    def __init__(self, value, array):
        self.value = value
        self.array = array

    def __eq__(self, other):
        import numpy as np

        return self.value == other.value and np.array_equal(self.array, other.array)


def cube(x):
    import numpy as np

    return Result(x ** 3, np.full(2, x, dtype=np.int64))


def load_file(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def group_processes(ctx):
    import multiprocessing

    import torch
    from torch.utils.data import DataLoader

    def batches(loader):
        return [(batch.x, batch.label) for batch in loader]

    expected = batches(DataLoader(SquaresDataset(8), batch_size=2))
    torch.save({"w": torch.ones(2), "hook": ctx.evil("worker_evil.pt")}, ctx.path("worker_evil.pt"))
    with open(ctx.path("pool_evil.pkl"), "wb") as f:
        pickle.dump({"w": [1.0], "hook": ctx.evil("pool_evil.pkl")}, f)

    for method in ["fork", "spawn"]:
        def run(evil=None, method=method):
            loader = DataLoader(SquaresDataset(8, evil), batch_size=2, num_workers=2,
                                multiprocessing_context=method, timeout=120)
            iterator = iter(loader)
            try:
                return batches(iterator)
            finally:
                # Stop the workers now, not whenever the traceback that holds the iterator is
                # freed: a worker left behind slows every case after it.
                iterator._shutdown_workers()
        attempt(ctx, "dataloader-workers-" + method, "benign", "none", run, expected)
    # A worker loading a file is checked like any other load (spawn workers too: see
    # tests/py/ipc_checks.py); fork keeps this case fast.
    attempt(ctx, "dataloader-workers-fork-evil", "malicious", "worker_evil.pt",
            lambda: run(ctx.path("worker_evil.pt"), "fork"))

    def pool_map():
        with multiprocessing.Pool(2) as pool:
            return pool.map(cube, range(6))

    def pool_evil():
        with multiprocessing.Pool(2) as pool:
            return pool.apply(load_file, (ctx.path("pool_evil.pkl"),))

    attempt(ctx, "pool-map", "benign", "none", pool_map, [cube(x) for x in range(6)])
    attempt(ctx, "pool-worker-file-evil", "malicious", "pool_evil.pkl", pool_evil)


GROUPS = {
    "torch": group_torch,
    "torch-module": group_torch_module,
    "checkpoint": group_checkpoint,
    "numpy": group_numpy,
    "joblib": group_joblib,
    "joblib-arrays": group_joblib_arrays,
    "pandas": group_pandas,
    "dill-shelve": group_dill_shelve,
    "copyreg": group_copyreg,
    "processes": group_processes,
}

DISTRIBUTIONS = ["torch", "numpy", "scipy", "joblib", "scikit-learn", "pandas", "dill",
                 "transformers", "accelerate"]


def main():
    group, workdir = sys.argv[1], sys.argv[2]
    from importlib import metadata

    versions = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    print(json.dumps({"header": True, "group": group, "guard": bool(
        pickleguard is not None and pickleguard.is_active()), "python": sys.version.split()[0],
        "versions": versions}), flush=True)
    GROUPS[group](Context(workdir))


if __name__ == "__main__":
    main()
