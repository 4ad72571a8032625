"""s11: s6 in a joblib file, which is how scikit-learn models ship. joblib loads with the
pure-Python `pickle._Unpickler`, which reads INT as `int(data, 0)`: `I0x10\\n` is 16, and so
does pickleguard's wrapped pure-Python unpickler. The scanner's value pass stops at it
(`text::int_literal`), so the forged object dtype in the `NumpyArrayWrapper` (flags 0: joblib
then reads 16 raw file bytes as the array's PyObject pointers) is never checked: scan CLEAN,
guarded joblib.load refuses (numpy-dtype-state), unguarded joblib.load crashes. Without the
`I0x10\\n0` prefix the scan reports it (exit 1).
"""
import io
import sys

import joblib
import numpy as np

from _common import after_proto

LOADER = "joblib.load(path)"
FILENAME = "model.joblib"
USE = "print(obj)"


def build(path):
    buf = io.BytesIO()
    joblib.dump(np.array([0x4141414141414141, 0x4242424242424242], dtype="i8"), buf)
    data = buf.getvalue()
    # The wrapper's dtype becomes an object dtype whose state keeps the int64 flags (0).
    forged = data.replace(b"\x8c\x02i8", b"\x8c\x02O8").replace(b"\x8c\x01<", b"\x8c\x01|")
    assert forged != data
    with open(path, "wb") as f:
        f.write(after_proto(forged, b"I0x10\n0"))


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
