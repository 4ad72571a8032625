"""Loads from many threads at once and from forked children, under the preload.

Run as `python threads_and_forks.py MARKER_DIR`. Prints `threads and forks passed`. Every
malicious load must be refused (its marker never created), every benign one must load, and
children forked while other threads are mid-load must neither deadlock nor lose the guard.
"""
import collections
import os
import pickle
import sys
import threading

import pickleguard

MARKER_DIR = sys.argv[1]
BENIGN = pickle.dumps(collections.OrderedDict(w=[1.0] * 64, b={1, 2}), protocol=2)
failures = []


def malicious(tag):
    marker = os.path.join(MARKER_DIR, tag)
    return b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."


def worker(index, rounds=300):
    payload = malicious("thread-%d" % index)
    for _ in range(rounds):
        if pickle.loads(BENIGN)["b"] != {1, 2}:
            failures.append("benign load differs in thread %d" % index)
        try:
            pickle.loads(payload)
            failures.append("payload loaded in thread %d" % index)
        except pickleguard.UnsafeFileError:
            pass


def child(index):
    """Runs in a forked child: the guard must still be there, and loading must not hang."""
    try:
        pickle.loads(malicious("child-%d" % index))
        os._exit(3)
    except pickleguard.UnsafeFileError:
        pass
    worker(1000 + index, rounds=20)
    os._exit(0 if not failures else 4)


threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for thread in threads:
    thread.start()
children = []
for index in range(8):
    pid = os.fork()
    if pid == 0:
        child(index)
    children.append(pid)
for thread in threads:
    thread.join()
for pid in children:
    _, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) != 0:
        failures.append("child %d exited with status %d" % (pid, status))

assert not failures, failures
assert not os.listdir(MARKER_DIR), os.listdir(MARKER_DIR)
print("threads and forks passed")
