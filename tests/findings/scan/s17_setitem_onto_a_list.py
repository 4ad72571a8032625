"""s17: SETITEM/SETITEMS work on any object with `__setitem__`, a list included (`_pickle`'s
do_setitems: PyObject_SetItem unless the target is exactly a dict), and with a `slice` key
(`builtins.slice` is in pack ml) they resize it: `L[0:1000] = []` empties L. The scan's graph
applies SETITEM only to dicts (graph.rs `set_items`), so in the scan a list keeps the items
it had; the runtime converts the real list.

  empty  (default) an object array: `_reconstruct` + BUILD (1, (1000,), dtype('O8') with its
         genuine state, False, L) where L was built with 1000 Nones and then emptied by
         `L[slice(0, 1000)] = []`. The scan counts 1000 items (clean); the runtime counts 0
         and refuses (numpy-array-state); unguarded, numpy's `_setlist_pkl` reads 1000 items
         from the empty list (PyList_GET_ITEM, no bounds check) and crashes in the load.
  bytes  `bytes(L)` with L = [1, 2], then `L[0] = 300`: scan clean, guarded refuses,
         unguarded ValueError (harmless; shows the plain index case).

Every check that reads a list's items or length reads the scan's stale copy (torch sizes and
strides given as lists, pandas' blocks list, lists of byte values, object-array data).

    s17_setitem_onto_a_list.py build FILE [empty|bytes]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pk import P  # noqa: E402

USE = "print(obj[:3])"


def build(path, variant=None):
    variant = variant or os.environ.get("VARIANT", "empty")
    p = P(2)
    if variant == "bytes":
        p.glob("builtins", "bytes")
        p.mark().empty_list().put(1).mark().i(1).i(2).appends().tup()  # ([1, 2],), L memo 1
        p.get(1).i(0).i(300).setitem().pop()  # L[0] = 300
        p.reduce()
    else:
        n = 1000
        p.empty_list().put(50).mark()
        for _ in range(n):
            p.none()
        p.appends()
        # L[slice(0, n)] = []
        p.glob("builtins", "slice").i(0).i(n).t2().reduce().empty_list().setitem().pop()
        p.glob("numpy._core.multiarray", "_reconstruct")
        p.glob("numpy", "ndarray").i(0).t1().by(b"b").t3().reduce()
        p.mark().i(1).i(n).t1()
        p.dtype("O8").mark().i(3).s("|").none().none().none().i(-1).i(-1).i(63).tup().build()
        p.false().get(50).tup().build()
    with open(path, "wb") as f:
        f.write(p.stop().bytes())


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2], *sys.argv[3:4])
