"""s15: the guard keeps the converted arguments of every built object still alive
(provenance.rs `after` records `Built { args: Value }` for each result; `prune` drops only the
records of objects nothing else holds), up to MAX_NODES values each, even for results of an
exact built-in type whose record is never read (value.rs converts `bytes` by value first).

`bytes(([4000 byte values],))` (pack ml, bytes-from-data) applied REPS times through the memo,
each result APPENDed to one list (6 bytes of file each): every 4 KB bytes object costs ~290 KB
of records. REPS = 10000 (68 KB): guarded 2.9 GB, unguarded 50 MB; the scan also 2.8 GB (s3).
Four times the file is ~12 GB under the guard.

    s15_alive_records_keep_args.py build FILE     (REPS from S15_REPS, default 3000)
"""
import os
import sys

REPS = int(os.environ.get("S15_REPS", "3000"))
USE = "print(len(obj))"


def build(path, reps=None, name=b"bytes"):
    """`name` is the `builtins` global applied (s18 applies `frozenset`)."""
    reps = REPS if reps is None else reps
    out = bytearray(b"\x80\x02]q\x03cbuiltins\n" + name + b"\nq\x00(]q\x02(")
    for i in range(4000):
        out += b"K" + bytes([i % 256])
    out += b"etq\x01"  # ([0..255, 0..], ) memo 1
    out += b"00"  # drop the args and the callable: the list stays
    out += b"h\x00h\x01Ra" * reps  # list.append(bytes(*args))
    out += b"."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
