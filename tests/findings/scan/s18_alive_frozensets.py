"""s18: s15 with a result the conversion does not read by value: `frozenset(([4000 ints],))`
(pack ml, items-from-literals) applied REPS times through the memo, each result APPENDed to
one list, so every record stays alive with its arguments' 4,001 values. 5,000 of them (30 KB of
file) would be 20 M remembered values: the guard refuses the load as `kept-values` once one
load remembers more than `bounds::MAX_KEPT` (4,194,304), instead of growing without bound,
and the scan reports the same refusal.

    s18_alive_frozensets.py build FILE     (REPS from S18_REPS, default 5000)
"""
import os
import sys

REPS = int(os.environ.get("S18_REPS", "5000"))
USE = "print(len(obj))"


def build(path, reps=None):
    reps = REPS if reps is None else reps
    out = bytearray(b"\x80\x02]q\x03cbuiltins\nfrozenset\nq\x00(]q\x02(")
    for i in range(4000):
        out += b"K" + bytes([i % 256])
    out += b"etq\x01"  # ([...],) memo 1
    out += b"0"
    out += b"h\x03h\x00h\x01Ra0" * reps  # list.append(frozenset(*args)), then drop the list
    out += b"h\x03."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
