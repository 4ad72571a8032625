"""Checks the `pickleguard` module's API from inside a preloaded interpreter.

Run as `python api_checks.py WORKDIR`; prints `api checks passed` or fails with a traceback.
"""
import collections
import os
import pickle
import sys

WORKDIR = sys.argv[1]
path_before = list(sys.path)

import pickleguard  # noqa: E402

assert sys.path == path_before, "import pickleguard must not touch sys.path"
assert pickleguard.__spec__.origin == "built-in", pickleguard.__spec__
assert issubclass(pickleguard.UnsafeFileError, pickle.UnpicklingError)
assert pickleguard.UnsafeFileError("re-raised from text").module is None
assert pickleguard.is_active() and pickleguard.mode() == "enforce"
assert "collections.OrderedDict" in pickleguard.allowed()
assert "numpy._core.multiarray._reconstruct" in pickleguard.allowed()

# A class the program defines is refused until allowed, with a message that says how.
with open(os.path.join(WORKDIR, "pgtest_model.py"), "w") as f:
    f.write(
        "class Net:\n"
        "    def __init__(self): self.w = [1.0, 2.0]\n"
        "    def __eq__(self, other): return vars(self) == vars(other)\n"
        "class Outer:\n"
        "    class Inner:\n"
        "        def __eq__(self, other): return type(other) is type(self)\n"
    )
sys.path.insert(0, WORKDIR)
import pgtest_model  # noqa: E402

data = pickle.dumps(pgtest_model.Net(), protocol=2)
try:
    pickle.loads(data)  # LINE-NOT-ALLOWED
    raise AssertionError("pgtest_model.Net loaded without being allowed")
except pickleguard.UnsafeFileError as exc:
    assert (exc.module, exc.name, exc.reason) == ("pgtest_model", "Net", "not-allowlisted"), vars(exc)
    message = str(exc)
    line = [i for i, text in enumerate(open(__file__), 1) if "LINE-NOT-ALLOWED" in text and "pickle" in text][0]
    assert "`pgtest_model.Net`" in message, message
    assert "not in the allowlist" in message, message
    assert "api_checks.py:%d" % line in message, (line, message)
    assert "PICKLEGUARD_ALLOW=pgtest_model.Net " in message, message
    assert 'pickleguard.allow("pgtest_model.Net")' in message, message
    assert "\x1b" not in message

# Dotted qualnames at protocol 4 need the `module:qualname` spelling.
nested = pickle.dumps(pgtest_model.Outer.Inner(), protocol=4)
try:
    pickle.loads(nested)
    raise AssertionError("a nested class loaded without being allowed")
except pickleguard.UnsafeFileError as exc:
    assert exc.name == "Outer.Inner", vars(exc)
    assert 'pickleguard.allow("pgtest_model:Outer.Inner")' in str(exc), str(exc)

pickleguard.allow("pgtest_model.Net", "pgtest_model:Outer.Inner")
assert pickle.loads(data) == pgtest_model.Net()
assert pickle.loads(nested) == pgtest_model.Outer.Inner()
assert "pgtest_model.Net" in pickleguard.allowed()
assert "pgtest_model:Outer.Inner" in pickleguard.allowed()
try:
    pickle.loads(pickle.dumps(pgtest_model.Outer(), 4))
    raise AssertionError("allowing Outer.Inner must not allow Outer")
except pickleguard.UnsafeFileError as exc:
    assert exc.name == "Outer", vars(exc)

# Allowing is exact: a neighbour of an allowed name is still refused.
try:
    pickle.loads(b"\x80\x04\x8c\x0cpgtest_model\x8c\x04Net2\x93.")
    raise AssertionError("pgtest_model.Net2 loaded")
except pickleguard.UnsafeFileError:
    pass

# Hard-denied and malformed names are refused, all or nothing.
before = pickleguard.allowed()
for bad in [("os.system",), ("collections.Counter", "builtins.eval"), ("notaglobal",), ("torch.*",), (42,)]:
    try:
        pickleguard.allow(*bad)
        raise AssertionError("allow%r was accepted" % (bad,))
    except ValueError as exc:
        assert str(exc), bad
assert pickleguard.allowed() == before, "a refused allow() must change nothing"

# fickling's names and semantics.
counter = pickle.dumps(collections.Counter("aab"))
try:
    pickle.loads(counter)
    raise AssertionError("Counter loaded by default")
except pickleguard.UnsafeFileError:
    pass
pickleguard.deactivate_safe_ml_environment()
assert not pickleguard.is_active() and pickleguard.mode() == "off"
assert pickle.loads(counter) == collections.Counter("aab")
pickleguard.activate_safe_ml_environment()
assert pickleguard.is_active() and pickleguard.mode() == "enforce"
try:
    pickle.loads(counter)
    raise AssertionError("Counter loaded after re-activation")
except pickleguard.UnsafeFileError:
    pass
pickleguard.activate_safe_ml_environment(also_allow=["collections.Counter"])
assert pickle.loads(counter) == collections.Counter("aab")

# The typing stub the wheel ships names exactly what the module exports (a stub that lags the
# module hides its API from type checkers).
stub = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "python", "pickleguard", "__init__.pyi"
)
if os.path.exists(stub):
    import ast

    tree = ast.parse(open(stub).read())
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    exported = {n for n in dir(pickleguard) if not n.startswith("_")} | {"__version__"}
    exported &= set(dir(pickleguard))
    assert stubbed == exported, (sorted(stubbed - exported), sorted(exported - stubbed))

print("api checks passed")
