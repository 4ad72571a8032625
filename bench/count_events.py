"""Runs a script as __main__ with a Python audit hook that counts every audit event by name.

    python count_events.py OUT_JSON SCRIPT [ARGS...]

Writes {event: count} to OUT_JSON at exit. bench.py runs a pyperformance worker this way at two
loop counts: the difference, divided by the extra loops, is the events per benchmark loop (start-up
and the worker's own I/O cancel). Never timed: a Python hook is far slower than a C one.
"""
import atexit
import collections
import json
import runpy
import sys


def main():
    out, script = sys.argv[1], sys.argv[2]
    counts = collections.Counter()

    def hook(event, args):
        counts[event] += 1

    def dump():
        snapshot = dict(counts)
        with open(out, "w") as f:
            json.dump(snapshot, f)

    sys.addaudithook(hook)
    atexit.register(dump)
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
