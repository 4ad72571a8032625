"""Shared helpers for the scanner reproducers (run with the ML venv's python)."""
import os
import pickle
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "py"))

import reconstruction_attacks as ra  # noqa: E402


def rc_payload(case, protocol=2):
    """RC-n (tests/py/reconstruction_attacks.py) pickled at `protocol` (2: no FRAME)."""
    np, multiarray, numeric = ra.numpy_names()
    if case == "RC-1":
        obj = ra.Reduce(multiarray.scalar, (ra.forged_object_dtype(), b"AAAAAAAA"))
    elif case == "RC-3":
        state = (1, (2,), ra.forged_object_dtype(), False, b"AAAAAAAABBBBBBBB")
        obj = ra.Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    else:
        return ra.payload(case)
    return pickle.dumps(obj, protocol)


def after_proto(data, inserted):
    """`inserted` opcodes placed right after PROTO."""
    assert data[:1] == b"\x80"
    return data[:2] + inserted + data[2:]


class DupPickler(pickle._Pickler):
    """The pure-Python pickler, writing extra (key, value) pairs after the items of chosen dicts:
    `extra` maps id(dict) to the pairs. A real dict cannot hold a key twice; a pickle can
    (SETITEMS stores the key again, and the later value wins)."""

    def __init__(self, file, protocol, extra):
        super().__init__(file, protocol)
        self.extra = extra
        self._current = []

    def save_dict(self, obj):
        self._current.append(id(obj))
        try:
            super().save_dict(obj)
        finally:
            self._current.pop()

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[dict] = save_dict

    def _batch_setitems(self, items):
        extra = self.extra.get(self._current[-1], []) if self._current else []
        super()._batch_setitems(list(items) + list(extra))


def dumps_dup(obj, protocol, extra):
    import io

    buf = io.BytesIO()
    DupPickler(buf, protocol, extra).dump(obj)
    return buf.getvalue()
