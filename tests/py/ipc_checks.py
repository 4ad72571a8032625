"""multiprocessing under the preload with the default config: the program's own pickles
between its processes keep working, and files loaded inside workers are still checked.

Run as `python ipc_checks.py MARKER_DIR [start methods...]`; prints one `ok <check>` line per
check and `ipc checks passed`.
"""
import collections
import concurrent.futures
import multiprocessing
import os
import pickle
import sys

import pickleguard


class Payload:
    """Not allowlisted: a class from __main__, as programs send them to workers."""

    def __init__(self, value):
        self.value = value


def square(x):
    return Payload(x * x)


def counter(text):
    return collections.Counter(text)


def load_file(path):
    """A worker loading a model file: this must still be enforced."""
    try:
        with open(path, "rb") as f:
            pickle.load(f)
        return "loaded"
    except pickleguard.UnsafeFileError as exc:
        return "blocked:%s.%s" % (exc.module, exc.name)


def queue_worker(queue):
    queue.put(collections.Counter("ipc"))
    queue.put(Payload(7))


def pipe_worker(conn):
    conn.send(collections.deque([1, 2]))
    conn.send(Payload(8))
    conn.close()


def manager_worker(shared):
    shared["counter"] = collections.Counter("abc")


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError("%s failed %s" % (name, detail))
    print("ok", name, flush=True)


def run(method, evil):
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        results = pool.map(square, range(5))
        check(method + " Pool.map", [r.value for r in results] == [0, 1, 4, 9, 16])
        check(method + " Pool counters", pool.apply(counter, ("aab",)) == collections.Counter("aab"))
        check(method + " Pool worker file load", pool.apply(load_file, (evil,)) == "blocked:os.system",
              pool.apply(load_file, (evil,)))
    queue = ctx.Queue()
    process = ctx.Process(target=queue_worker, args=(queue,))
    process.start()
    check(method + " Process+Queue", queue.get(timeout=60) == collections.Counter("ipc") and queue.get(timeout=60).value == 7)
    process.join(60)
    check(method + " Process exit", process.exitcode == 0, process.exitcode)
    parent, child = ctx.Pipe()
    process = ctx.Process(target=pipe_worker, args=(child,))
    process.start()
    check(method + " Pipe", list(parent.recv()) == [1, 2] and parent.recv().value == 8)
    process.join(60)
    with ctx.Manager() as manager:
        shared = manager.dict()
        process = ctx.Process(target=manager_worker, args=(shared,))
        process.start()
        process.join(60)
        check(method + " Manager", shared["counter"] == collections.Counter("abc"))
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as executor:
        check(method + " ProcessPoolExecutor", [p.value for p in executor.map(square, [2, 3])] == [4, 9])
        check(method + " ProcessPoolExecutor worker file load",
              executor.submit(load_file, evil).result() == "blocked:os.system")


def main():
    marker_dir = sys.argv[1]
    methods = sys.argv[2:] or ["spawn", "fork", "forkserver"]
    evil = os.path.join(marker_dir, "evil.pkl")
    with open(evil, "wb") as f:
        f.write(b"cos\nsystem\n(S'touch " + os.path.join(marker_dir, "PWNED").encode() + b"'\ntR.")
    for method in methods:
        run(method, evil)
    check("payload never ran", not os.path.exists(os.path.join(marker_dir, "PWNED")))
    print("ipc checks passed", flush=True)


if __name__ == "__main__":
    main()
