"""s4: the scanner merges dict keys that Python keeps apart: two str keys made of different
lone surrogates (BINUNICODE `ED A0 80` = '\\ud800' and `ED A0 81` = '\\ud801', which CPython
reads with surrogatepass) both decode lossily to "\\ufffd\\ufffd\\ufffd" in graph.rs
(`Text::Utf8` + `same_key` by text), so the second pair REPLACES the first in the scan.

A struct dtype `V8` whose names tuple is ('\\ud801',) and whose fields dict is
{'\\ud800': (i8, 1<<44), '\\ud801': (i8, 0)}: the scan sees one field at offset 0 (clean); the
runtime sees both entries and refuses (numpy-dtype-state: offset 1<<44 runs past itemsize 8).
Unguarded, numpy accepts the extra field and `arr['\\ud800']` reads 16 TiB past the buffer.
(The same merge hides any pair whose key differs only in surrogates, or `\\uXXXX` surrogate
escapes in UNICODE, which become U+FFFD and equal a real U+FFFD.)
"""
import pickle
import sys

import numpy as np

from _common import ra

USE = "print(obj['\\ud800'])"


def build(path):
    _, multiarray, _ = ra.numpy_names()
    fields = {"\ud800": (np.dtype("i8"), 1 << 44), "\ud801": (np.dtype("i8"), 0)}
    struct = ra.dtype("V8", (3, "|", None, ("\ud801",), fields, 8, 1, 16))
    state = (1, (2,), struct, False, b"\0" * 16)
    obj = ra.Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    with open(path, "wb") as f:
        f.write(pickle.dumps(obj, 2))


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
