"""s16: `_pickle` reads INT with strtol(s, 0): a leading zero makes it octal, so `I063\\n` is
51, not 63 (`pickle._Unpickler` raises on it: `int(b"063", 0)`; pickleguard's unpickler reads
63). A genuine object dtype state whose flags are written `I063` is, for `pickle.loads` and
`torch.load` without the preload, an object dtype with flags 51: no NEEDS_INIT, so numpy
allocates its array uninitialised and `_setlist_pkl` DECREFs the garbage "previous" pointers
while filling it: the unguarded load crashes in the load itself.
The scan reads 63 (as the guard's unpickler does) and is CLEAN; the guarded load reads 63 and
loads a genuine array (safe, but not the object CPython builds: a conformance bug).

Three readers, three readings of one file: the issue 10 rule makes that a finding by itself.
"""
import pickle
import sys

from _common import ra

USE = "print(obj.dtype.flags, obj)"


def build(path):
    np, multiarray, _ = ra.numpy_names()
    genuine = ra.dtype("O8", (3, "|", None, None, None, -1, -1, 63))
    state = (1, (4,), genuine, False, [None, None, None, None])
    obj = ra.Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    data = pickle.dumps(obj, 2)
    flags = b"J\xff\xff\xff\xffK?"  # alignment -1, then flags 63 as BININT1
    assert data.count(flags) == 1
    with open(path, "wb") as f:
        f.write(data.replace(flags, b"J\xff\xff\xff\xffI063\n"))


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
