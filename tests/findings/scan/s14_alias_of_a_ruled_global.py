"""s14: the rules are keyed by the name a pickle spells, but one object can have several
names. With an operator's `PICKLEGUARD_ALLOW=numpy._core.multiarray.ndarray` (the same object
as `numpy.ndarray`, which the `ml` pack lets a pickle reference but never apply: applied it
hands out uninitialised memory, RC-5):

  first   the pickle names `numpy.ndarray` first (and drops it), then applies the alias: the
          runtime remembers an object under the first name it was resolved by
          (provenance.rs `resolved`: address -> first Global) and refuses; the scan judges the
          alias by its own name (no rules) and is CLEAN.
  alias_first  the pickle names the alias first (and drops it), then applies `numpy.ndarray`
          BY ITS RULED NAME: the runtime remembers the alias's name and lets it through
          (uninitialised memory under the guard); the scan refuses it (exit 1).
  alias   the pickle only names the alias: the runtime AND the scan let it be applied, and the
          guarded load returns 60000 bytes of uninitialised heap (pointers included).

Rules (and "reference only") should follow the object, not its spelling: an allowed name that
resolves to a ruled global's object should take that global's rules, in both.

    s14_alias_of_a_ruled_global.py build FILE [first|alias_first|alias]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pk import P  # noqa: E402

ALLOW = "numpy._core.multiarray.ndarray"
USE = "print('first bytes', bytes(obj[:16]).hex(), 'nonzero', int((obj != 0).sum()))"


def build(path, variant=None):
    variant = variant or os.environ.get("VARIANT", "first")
    p = P(2)
    if variant == "first":
        p.glob("numpy", "ndarray").pop()
    if variant == "alias_first":
        p.glob("numpy._core.multiarray", "ndarray").pop()
        p.glob("numpy", "ndarray")
    else:
        p.glob("numpy._core.multiarray", "ndarray")
    p.mark().i(60000).t1().s("u1").tup().reduce()
    with open(path, "wb") as f:
        f.write(p.stop().bytes())


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2], *sys.argv[3:4])
