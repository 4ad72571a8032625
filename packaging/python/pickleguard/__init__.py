"""pickleguard, when this process is NOT preloaded with libpickleguard.so.

In a process started with the guard (``pickleguard run -- python ...`` or
``LD_PRELOAD=.../libpickleguard.so``), ``import pickleguard`` gives the guard's own built-in
module and this file is never run. Here, nothing checks pickles, and this module says so: the
query functions answer truthfully (not active, mode ``off``) and the functions that would
change the protection raise, so a program that relies on the guard fails closed.
"""

import pickle as _pickle
import sys as _sys

__all__ = [
    "UnsafeFileError",
    "activate_safe_ml_environment",
    "allow",
    "allowed",
    "deactivate_safe_ml_environment",
    "is_active",
    "mode",
]

__version__ = "0.0.0"  # the workspace version, written by packaging/build_wheel.py

_WHY = (
    "pickleguard: this process is NOT protected against unsafe pickles: libpickleguard.so is "
    "not preloaded; start it with `pickleguard run -- python ...`"
)

_sys.stderr.write(_WHY + "\n")


class UnsafeFileError(_pickle.UnpicklingError):
    """A pickle asked for a global the policy refuses (raised only by the preloaded guard)."""

    module = None
    name = None
    reason = None


def is_active():
    """Whether pickles are being checked: never, in a process without the preload."""
    return False


def mode():
    """The mode in force: ``off`` without the preload."""
    return "off"


def allowed():
    """Every allowed global: none are checked without the preload."""
    return []


def allow(*names):
    """Refused: there is no guard in this process to allow globals in."""
    raise RuntimeError(_WHY)


def activate_safe_ml_environment(also_allow=None):
    """Refused: the guard cannot be activated from Python; it must be preloaded."""
    raise RuntimeError(_WHY)


def deactivate_safe_ml_environment():
    """Nothing to deactivate without the preload."""
