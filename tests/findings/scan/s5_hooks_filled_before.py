"""s5: backward_hooks = an OrderedDict built EMPTY (`OrderedDict()`, which the torch checks
accept as "an empty OrderedDict") and then filled by SETITEM *before* the rebuild is applied.
Neither the runtime's conversion (value.rs: a built object is seen as its global + arguments +
BUILD state) nor the scanner's graph (graph.rs `set_items` ignores anything but a plain dict)
records items stored into an OrderedDict, so both pass it; the runtime's private copy
(freeze.rs) copies the items too, and torch installs `builtins.slice` as a hook that autograd
calls at backward(). Not a scan/load divergence: a hole in both (f6's `late` variant fills the
dict after the check; this one before).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pk import P  # noqa: E402

USE = (
    "import torch\n"
    "print('hooks', dict(obj._backward_hooks))\n"
    "(obj * 2).sum().backward()\n"
)


def build(path):
    p = P(2)
    p.glob("collections", "OrderedDict").t0().reduce().put(7)  # empty: what the check reads
    p.i(0).glob("builtins", "slice").setitem().pop()  # filled before the rebuild
    p.glob("torch._utils", "_rebuild_parameter").mark()
    p.glob("torch._utils", "_rebuild_meta_tensor_no_storage")
    p.mark().glob("torch", "float32").i(2).t1().i(1).t1().true().tup().reduce()
    p.true()
    p.get(7)
    p.tup().reduce()
    with open(path, "wb") as f:
        f.write(p.stop().bytes())


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
