"""Writes the benchmark's workload files and their malicious twins. Run by bench.py, in the bench
venv, in a process without any preload.

    python bench/workloads.py OUT_DIR [--scale 1.0] [--huge-mib 1024]

Prints one JSON object: {name: {"path", "bytes", "kind", ...}}.

Every workload is made from a fixed seed, so two runs write files of the same size and shape.
`--scale` shrinks everything for development runs (0.05 writes small files in seconds).
"""
import argparse
import collections
import json
import os
import pickle
import random
import sys


def object_heavy_records(count, rng):
    """~250 bytes of pickle per record: dicts of str, int, float, bool, a list and a tuple, and
    every 8th record an OrderedDict, a global the unpickler resolves once and then memoizes.
    Only globals that every compared protection allows, so each of them can be timed."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    out = []
    for i in range(count):
        record = {
            "id": i,
            "name": "user-%08d-%s" % (i, rng.choice(words)),
            "email": "%s.%d@example.org" % (rng.choice(words), rng.randrange(10**6)),
            "score": rng.random(),
            "weights": (rng.random(), rng.random(), rng.random()),
            "tags": [rng.choice(words) for _ in range(3)],
            "note": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(60)),
            "active": bool(i & 1),
            "parent": None if i % 3 else i // 3,
        }
        if i % 8 == 0:
            record["meta"] = collections.OrderedDict([("k", i), ("unit", "ms")])
        out.append(record)
    return out


def write_object_heavy(path, count, rng):
    """`pickle.dump` with its default protocol, as most programs write pickles."""
    with open(path, "wb") as f:
        pickle.dump(object_heavy_records(count, rng), f)


def write_object_heavy_unmemoized(path, count):
    """The worst case for any find_class hook: pickled with the memo off (Pickler.fast), so each
    of the `count` OrderedDicts carries its own STACK_GLOBAL and the unpickler raises one
    `pickle.find_class` event per object. Writers without a memo (protocol-0 emitters, some
    hand-rolled serializers) produce such files; stock `pickle.dump` does not."""
    rows = [collections.OrderedDict([("id", i), ("v", i * 0.5)]) for i in range(count)]
    with open(path, "wb") as f:
        pickler = pickle.Pickler(f, protocol=4)
        pickler.fast = True
        pickler.dump(rows)


def write_numpy_dict(path, total_mib, rng):
    import numpy as np

    gen = np.random.default_rng(1234)
    arrays = {}
    budget = int(total_mib * 2**20)
    i = 0
    shapes = [(64,), (128, 64), (256, 256), (1024, 256), (512,), (32, 32, 3)]
    dtypes = [np.float32, np.float64, np.int64, np.int32, np.float16, np.uint8]
    while budget > 0:
        shape = shapes[i % len(shapes)]
        dtype = dtypes[(i // len(shapes)) % len(dtypes)]
        arr = (gen.random(shape) * 100).astype(dtype)
        arrays["layer%04d.%s" % (i, np.dtype(dtype).name)] = arr
        budget -= arr.nbytes
        i += 1
    with open(path, "wb") as f:
        pickle.dump(arrays, f)  # default protocol (4): numpy's _reconstruct path
    return {"arrays": len(arrays)}


def write_torch_small(path, count):
    import torch

    torch.manual_seed(0)
    sd = collections.OrderedDict()
    for i in range(count):
        sd["blocks.%d.weight" % i] = torch.randn(8, 8)
    torch.save(sd, path)
    return {"tensors": count}


def write_torch_large(path, total_mib):
    import torch

    torch.manual_seed(0)
    per = int(total_mib * 2**20 / 4 / 4)  # 4 float32 tensors
    cols = 1024
    rows = max(1, per // cols)
    sd = collections.OrderedDict()
    for i in range(4):
        sd["layers.%d.weight" % i] = torch.rand(rows, cols)
    torch.save(sd, path)
    return {"tensors": 4, "shape": [rows, cols]}


def write_sklearn(path, scale):
    """A fitted scikit-learn pipeline (scaler, PCA, logistic regression over many classes),
    as joblib.dump stores it. Tree models are not used: their node arrays cannot be validated,
    so `Tree` left the `sklearn` pack (ALLOWLIST.md) and a forest is refused by default."""
    import joblib
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    gen = np.random.default_rng(7)
    n = max(200, int(20000 * scale))
    features = 256
    X = gen.normal(size=(n, features))
    y = (np.abs(X[:, :4]).argmax(axis=1) + 4 * (X[:, 4] > 0)).astype(int)
    model = make_pipeline(StandardScaler(), PCA(n_components=128, random_state=0),
                          LogisticRegression(max_iter=200))
    model.fit(X, y)
    joblib.dump(model, path)
    return {"estimator": "StandardScaler+PCA+LogisticRegression", "features": features, "train_rows": n}


def write_huge(path, mib):
    """A >= 1 GiB pickle: one numpy array, protocol 4 (its bytes are one BINBYTES8 operand).
    Written in pieces so generating it does not need twice its size in memory."""
    import numpy as np

    nbytes = int(mib * 2**20)
    arr = np.zeros(nbytes, dtype=np.uint8)
    arr[:: 4096] = 7  # touch every page so the file is real data, not a sparse hole
    with open(path, "wb") as f:
        pickle.dump({"weights": arr}, f, protocol=4)


def write_tiny(path):
    with open(path, "wb") as f:
        pickle.dump({"a": 1}, f)


class Evil:
    """Pickles to `os.system("touch MARKER")`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def write_evil_twins(out, files):
    """One malicious file per loader: if any protection lets it through, MARKER appears."""
    import joblib
    import torch

    twins = {}
    for loader, suffix in (("pickle", "pkl"), ("torch", "pt"), ("joblib", "joblib")):
        path = os.path.join(out, "evil_%s.%s" % (loader, suffix))
        marker = os.path.join(out, "PWNED_%s" % loader)
        payload = {"model": [1.0, 2.0], "x": Evil(marker)}
        if loader == "pickle":
            with open(path, "wb") as f:
                pickle.dump(payload, f, protocol=4)
        elif loader == "torch":
            torch.save(payload, path)
        else:
            joblib.dump(payload, path)
        twins[loader] = {"path": path, "marker": marker, "bytes": os.path.getsize(path)}
    files["evil"] = twins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--huge-mib", type=float, default=1024.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(42)
    s = args.scale
    files = {}

    def add(name, filename, kind, writer, *wargs, **extra):
        path = os.path.join(args.out, filename)
        info = writer(path, *wargs) or {}
        info.update(extra)
        info.update({"path": path, "bytes": os.path.getsize(path), "kind": kind})
        files[name] = info
        print("wrote %s: %.1f MB" % (filename, info["bytes"] / 1e6), file=sys.stderr)

    add("object_heavy", "object_heavy.pkl", "pickle", write_object_heavy, max(1000, int(200_000 * s)), rng,
        objects=max(1000, int(200_000 * s)))
    add("object_heavy_nomemo", "object_heavy_nomemo.pkl", "pickle", write_object_heavy_unmemoized,
        max(1000, int(200_000 * s)), objects=max(1000, int(200_000 * s)),
        find_class_events=max(1000, int(200_000 * s)))
    add("numpy_dict", "numpy_dict.pkl", "pickle", write_numpy_dict, max(1.0, 100 * s), rng)
    add("torch_small", "torch_small.pt", "torch", write_torch_small, max(200, int(20_000 * s)))
    add("torch_large", "torch_large.pt", "torch", write_torch_large, max(4.0, 500 * s))
    add("sklearn_joblib", "sklearn_pipeline.joblib", "joblib", write_sklearn, s)
    write_evil_twins(args.out, files)
    # A tiny pickle: the scanners' fixed cost (start-up), not their throughput.
    add("tiny", "tiny.pkl", "pickle", write_tiny)
    if args.huge_mib > 0:
        add("huge", "huge.pkl", "pickle", write_huge, args.huge_mib)
    json.dump(files, sys.stdout)


if __name__ == "__main__":
    main()
