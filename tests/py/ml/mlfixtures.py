"""Shared pieces of the ML scenarios: the payload, model classes that must be importable by name
(a pickle of a whole module or a copyreg-registered class names them), and deep comparison.

Nothing here imports torch or pandas at module level (torch models live in `mlmodels.py`), so
`ml_scenarios.py` pays only for the libraries its scenario group uses.
"""
import copyreg
import os


class Backdoor:
    """Unpickling this runs `touch MARKER` through os.system: what a poisoned model carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch '%s'" % self.marker,))


# -- copyreg-registered classes -----------------------------------------------------------

class Point:
    """A class pickled through a copyreg reducer, as C extension types often are."""

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return "Point(%r, %r)" % (self.x, self.y)


def rebuild_point(x, y):
    """The reconstructor `reduce_point` names; a user allows exactly this global."""
    return Point(x, y)


def reduce_point(point):
    return (rebuild_point, (point.x, point.y))


class EvilPoint(Point):
    """Registered with a reducer that makes the pickle call os.system when loaded."""

    marker = None


def reduce_evil_point(point):
    return (os.system, ("touch '%s'" % point.marker,))


copyreg.pickle(Point, reduce_point)
copyreg.pickle(EvilPoint, reduce_evil_point)


# -- comparison ---------------------------------------------------------------------------

def same(a, b):
    """Deep equality that knows tensors, arrays, frames and the containers around them."""
    kind = type(a).__module__.split(".")[0]
    if type(a) is not type(b):
        return False
    if kind == "torch" and type(a).__name__ in ("Tensor", "Parameter"):
        import torch

        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if kind == "numpy" and type(a).__name__ == "ndarray":
        import numpy

        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype == object:
            return all(same(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        return bool(numpy.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if kind == "pandas":
        dtypes = (lambda x: list(x.dtypes)) if hasattr(a, "columns") else (lambda x: [x.dtype])
        return bool(a.equals(b)) and dtypes(a) == dtypes(b) and list(a.index) == list(b.index)
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
