"""s10: the arguments remembered for a built object hold the converted arguments of the built
objects inside them, copied whole (provenance.rs `to_value` -> value.rs `Origin::Built`
clones `built.args`; graph.rs `convert` clones `Node::Built`'s args): a chain
O1 = deque(([],)), Ok = deque(([O(k-1)],)) gives O(k) a remembered Value k levels deep and
k nodes big. The MAX_DEPTH/MAX_NODES bounds apply to each conversion's own walk, not to the
copies, so:
- memory and time are quadratic in the file: 3000 links (63 KB) take 1.3 GB and 2 s in the scan
  AND in the guarded load (the unguarded load: 14 MB, 0.03 s);
- the Value's depth is unbounded, and cloning/dropping it recurses once per level: a guarded
  load in a thread with a 1 MiB stack (THREAD_STACK) dies with SIGSEGV; unguarded it loads.
Packs: ml,stdlib-data (collections.deque, items-from-literals).

    s10_built_args_chain.py build FILE     (links from S10_LINKS, default 3000)
"""
import os
import struct
import sys

LINKS = int(os.environ.get("S10_LINKS", "3000"))
PACKS = "ml,stdlib-data"
THREAD_STACK = 1 << 20
USE = "print(type(obj))"


def build(path, links=None):
    links = LINKS if links is None else links
    out = bytearray(b"\x80\x02ccollections\ndeque\nr\x00\x00\x00\x00")
    out += b"j\x00\x00\x00\x00(]tRr\x01\x00\x00\x000"  # O1 = deque(([],))
    for i in range(2, links + 1):
        # Oi = deque(([O(i-1)],)), memo i
        out += b"j\x00\x00\x00\x00(]j" + struct.pack("<I", i - 1) + b"atRr" + struct.pack("<I", i) + b"0"
    out += b"j" + struct.pack("<I", links) + b"."
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
