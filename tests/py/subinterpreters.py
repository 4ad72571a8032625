# Own-GIL subinterpreters (3.12+; shared-GIL ones before) refusing pickles in parallel, for
# tests/it/lifetimes.rs. usage: subinterpreters.py INTERPRETERS LOOPS MARKER_DIR
#
# Each subinterpreter, in its own thread, loads a malicious pickle LOOPS times and must catch
# every refusal with `except pickle.UnpicklingError` of its own `pickle`; its payload would
# create MARKER_DIR/PWNED-<n>. Each also raises the find_class event with arguments that are
# not a (module, name) pair, which the guard refuses with a RuntimeError. The main interpreter refuses in a loop too, and calls
# pickleguard.is_active() meanwhile. Prints one JSON line per interpreter, then "done".
import json
import os
import pickle
import sys
import threading
import time

try:
    import _interpreters as interpreters  # 3.13+
except ImportError:
    try:
        import _xxsubinterpreters as interpreters  # 3.8-3.12
    except ImportError:
        print("SKIP: this CPython has no subinterpreter module")
        sys.exit(0)

count, loops, marker_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

CODE = """
import json, os, pickle, sys
marker = os.path.join(%(dir)r, "PWNED-%(n)d")
payload = b"cos\\nsystem\\n(S'touch " + marker.encode() + b"'\\ntR."
caught, bad_args, other = 0, 0, []
for _ in range(%(loops)d):
    try:
        pickle.loads(payload)
    except pickle.UnpicklingError as err:
        caught += 1
    except BaseException as err:
        other.append(type(err).__module__ + "." + type(err).__qualname__)
    try:
        sys.audit("pickle.find_class", 1, 2)
    except RuntimeError:
        bad_args += 1
with open(os.path.join(%(dir)r, "report-%(n)d.json"), "w") as out:
    json.dump({"interpreter": %(n)d, "caught": caught, "bad_args": bad_args,
               "other": sorted(set(other))}, out)
"""


def create():
    # 3.12's _xxsubinterpreters.create() makes an isolated (own-GIL) interpreter by default,
    # and 3.13's _interpreters.create() too; older ones share the main GIL.
    return interpreters.create()


def worker(n, failures):
    interp = create()
    try:
        failure = interpreters.run_string(
            interp, CODE % {"dir": marker_dir, "n": n, "loops": loops}
        )
        if failure is not None:
            failures.append((n, repr(failure)))
    except Exception as err:
        failures.append((n, repr(err)))
    finally:
        interpreters.destroy(interp)


failures = []
threads = [threading.Thread(target=worker, args=(n, failures)) for n in range(1, count + 1)]
for thread in threads:
    thread.start()
try:
    import pickleguard
except ImportError:  # the control run, without the preload
    pickleguard = None
main_caught = 0
payload = b"cos\nsystem\n(S'touch " + os.path.join(marker_dir, "PWNED-0").encode() + b"'\ntR."
while pickleguard and (any(t.is_alive() for t in threads) or main_caught < loops):
    try:
        pickle.loads(payload)
    except pickle.UnpicklingError:
        main_caught += 1
    assert pickleguard.is_active()
    if sys.version_info < (3, 12):
        # Before 3.12 all interpreters share one GIL, and 3.9-3.11 never ask a thread of
        # another interpreter to drop it: a main thread that never blocks starves them.
        time.sleep(0.001)
for thread in threads:
    thread.join()
print(json.dumps({"interpreter": 0, "caught": main_caught, "failures": failures}))
for n in range(1, count + 1):
    path = os.path.join(marker_dir, "report-%d.json" % n)
    with open(path) as report:
        print(report.read())
    os.remove(path)
print("done")
