# Types of the `pickleguard` module that the preloaded guard provides (libpickleguard_core.so).
import pickle
from typing import IO, Any, Callable, Dict, Iterable, List, Literal, Optional

__version__: str

class UnsafeFileError(pickle.UnpicklingError):
    """A pickle asked for a global the policy refuses, applied an allowed one in a way its
    reconstruction rules refuse, or carries code."""

    module: str
    name: str
    reason: Literal["not-allowlisted", "hard-denied", "reconstruction", "contains code"]
    # Set when `reason` is "reconstruction": the check that refused it (ALLOWLIST.md).
    check: str

class UnpicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> Dict[int, Any]: ...

class Unpickler:
    """pickleguard's unpickler: `pickle.Unpickler` and `_pickle.Unpickler` in a guarded process.
    Subclasses may override `find_class` and `persistent_load` as with the stock one."""

    memo: Any
    persistent_load: Callable[[Any], Any]
    def __init__(
        self,
        file: IO[bytes],
        *,
        fix_imports: bool = ...,
        encoding: str = ...,
        errors: str = ...,
        buffers: Optional[Iterable[Any]] = ...,
    ) -> None: ...
    def load(self) -> Any: ...
    def find_class(self, module_name: str, global_name: str) -> Any: ...

def load(
    file: IO[bytes],
    *,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...
def loads(
    data: bytes,
    /,
    *,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...

def is_active() -> bool: ...
def mode() -> Literal["enforce", "warn", "off"]: ...
def allowed() -> List[str]: ...
def allow(*names: str) -> None: ...
def activate_safe_ml_environment(also_allow: Optional[Iterable[str]] = ...) -> None: ...
def deactivate_safe_ml_environment() -> None: ...
