"""Trusted IPC by identity (issue 12). One JSON line per case.

Usage: ipc_identity.py MARKER_DIR CASE...

Cases:
  spoof     IPC-1: program code in a file whose path ends in /multiprocessing/connection.py
            unpickles a payload (posix.system) itself.
  patched   IPC-2: program code replaces Connection.recv with its own function, which
            unpickles the payload.
  channel   control: the same bytes through a real Pipe (send_bytes, then recv). Trusted IPC
            runs them: this is the documented residual risk, and proves the payload would run
            if the spoofed frames were trusted.
  sklearn   cross_val_score(LogisticRegression(), X, y, n_jobs=2) on the loky,
            multiprocessing and threading backends.
  worker    IPC-3: a joblib task (loky and multiprocessing backends) loads the payload
            itself; the refusal must reach the parent as UnsafeFileError.
"""

import json
import os
import pickle
import sys
import tempfile


def payload(marker):
    return pickle.dumps(_System("touch " + marker), protocol=2)


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def report(case, marker, **fields):
    fields.update(case=case, marker=os.path.exists(marker))
    print(json.dumps(fields), flush=True)


def outcome(call):
    try:
        call()
        return {"outcome": "loaded"}
    except Exception as exc:  # noqa: BLE001 - every outcome is reported
        kind = type(exc)
        return {
            "outcome": "refused" if kind.__name__ == "UnsafeFileError" else "failed",
            "type": "%s.%s" % (kind.__module__, kind.__qualname__),
            "module": getattr(exc, "module", None),
            "name": getattr(exc, "name", None),
            "message": str(exc)[:300],
        }


def spoof(markers):
    marker = os.path.join(markers, "IPC-1")
    root = tempfile.mkdtemp(prefix="pg-spoof-")
    os.makedirs(os.path.join(root, "multiprocessing"))
    path = os.path.join(root, "multiprocessing", "connection.py")
    with open(path, "w") as f:
        f.write("import pickle\n\ndef recv(data):\n    return pickle.loads(data)\n")
    namespace = {}
    exec(compile(open(path).read(), path, "exec"), namespace)
    report("spoof", marker, **outcome(lambda: namespace["recv"](payload(marker))))


def patched(markers):
    import multiprocessing.connection as connection

    marker = os.path.join(markers, "IPC-2")
    data = payload(marker)

    def recv(self):
        return pickle.loads(data)

    connection._ConnectionBase.recv = recv
    a, b = connection.Pipe()
    report("patched", marker, **outcome(lambda: b.recv()))


def channel(markers):
    import multiprocessing

    marker = os.path.join(markers, "control")
    a, b = multiprocessing.Pipe()
    a.send_bytes(payload(marker))
    report("channel", marker, **outcome(lambda: b.recv()))


def sklearn(markers):
    from joblib import parallel_backend
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = make_classification(n_samples=120, random_state=0)
    for backend in ["loky", "multiprocessing", "threading"]:
        def run():
            with parallel_backend(backend):
                scores = cross_val_score(LogisticRegression(), X, y, n_jobs=2)
            assert len(scores) == 5, scores
        report("sklearn-" + backend, os.path.join(markers, "none"), **outcome(run))


def load_bytes(data):
    return pickle.loads(data)


def worker(markers):
    from joblib import Parallel, delayed

    for backend in ["loky", "multiprocessing"]:
        marker = os.path.join(markers, "IPC-3-" + backend)
        data = payload(marker)

        def run():
            Parallel(n_jobs=2, backend=backend)(delayed(load_bytes)(data) for _ in range(2))
        report("worker-" + backend, marker, **outcome(run))


if __name__ == "__main__":
    markers = sys.argv[1]
    for case in sys.argv[2:]:
        globals()[case](markers)
