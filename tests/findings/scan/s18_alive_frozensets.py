"""s18: s15 with a result the conversion does not read by value: `frozenset(([4000 ints],))`
(pack ml, items-from-literals) applied REPS times through the memo, each result APPENDed to
one list, so every record stays alive with its arguments' 4,001 values. 5,000 of them (38 KB of
file) would be 20 M remembered values: the guard refuses the load as `kept-values` once one
load remembers more than `bounds::MAX_KEPT` (4,194,304), instead of growing without bound,
and the scan reports the same refusal.

    s18_alive_frozensets.py build FILE     (REPS from S18_REPS, default 5000)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s15_alive_records_keep_args as s15  # noqa: E402

REPS = int(os.environ.get("S18_REPS", "5000"))
USE = "print(len(obj))"


def build(path, reps=None):
    s15.build(path, REPS if reps is None else reps, name=b"frozenset")


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
