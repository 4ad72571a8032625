"""s7: every SETITEM into a dict of at most 64 entries compares its key with every key already
there (graph.rs `set_items` -> `same_key`), and each string comparison decodes both strings in
full (`Text::text()`: UTF-8 validation, or a fresh String for non-ASCII latin-1), even when the
key is the very object already stored. Python hashes once (str caches its hash) and finds the
key by identity: O(1) per SETITEM.

A dict with 64 keys of 64 KiB each (memoized), then N SETITEMs of the last key through the memo
(4 bytes each): the scan decodes 63 x 2 x 64 KiB = 8 MiB per 4 bytes of file (the value pass
runs because the stream also applies `builtins.set` to `([],)`). The load takes milliseconds.

    s7_dict_key_compare_cost.py build FILE        (N from S7_REPS, default 2000)
"""
import os
import struct
import sys

REPS = int(os.environ.get("S7_REPS", "2000"))
KEYS = 64
KEY_LEN = 64 * 1024


def build(path, reps=None):
    reps = REPS if reps is None else reps
    out = bytearray(b"\x80\x02}")  # EMPTY_DICT
    for i in range(KEYS):
        key = (b"%02d" % i) + b"k" * (KEY_LEN - 2)
        out += b"X" + struct.pack("<I", len(key)) + key + b"q" + bytes([i])  # BINPUT i
        out += b"Ns"  # value None, SETITEM
    out += (b"h" + bytes([KEYS - 1]) + b"Ns") * reps
    out += b"0"  # drop the dict
    out += b"cbuiltins\nset\n(]tR."  # set(([],)): the value pass runs
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
