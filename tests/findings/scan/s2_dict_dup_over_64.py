"""s2: a key stored twice in a dict of more than 64 entries: the scanner keeps both pairs
(graph.rs `DEDUPLICATED_DICT`), and a check that looks a key up (`find`, first match) reads the
FIRST value, while Python's dict (and so the runtime) holds the LAST.

Here RC-9: an MT19937 state whose inner `state` dict has `pos` = 0 first, 64 junk keys, then
`pos` = 10**6 again. numpy ignores the junk keys. random.rs `field(.., "pos")` sees 0 in the
scan (clean) and 10**6 at load (refused); unguarded, the next draw reads far outside the key.
"""
import sys

import numpy as np

from _common import dumps_dup, ra

USE = "obj.random_raw(10)"
PACKS = "ml,sklearn"


def build(path):
    bit_generator = np.random.MT19937(1)
    ctor, args, (state, seed) = bit_generator.__reduce__()
    inner = {"pos": 0, "key": state["state"]["key"]}
    for i in range(64):
        inner["junk%d" % i] = 0
    state["state"] = inner
    obj = ra.Reduce(ctor, args, (state, seed))
    data = dumps_dup(obj, 2, {id(inner): [("pos", 10**6)]})
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
