"""Payloads that got past the hard-deny set in warn mode (issue 12), one JSON line each.

Usage: hard_deny_payloads.py MARKER_DIR GROUP [--control]

GROUP is `stdlib` (every interpreter) or `torch` (needs torch). Each payload would create
MARKER_DIR/<case> if it ran. `--control` runs without pickleguard: a stand-in `pickleguard`
module lets the HD-4 payload call `deactivate_safe_ml_environment`, as the real one would.
Each case names the global that must be refused (the first hard-denied global the stream asks
for), so a refusal of some later global does not count.
"""

import json
import os
import pickle
import sys
import tempfile


def text(value):
    data = value.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def glob(module, name):
    return text(module) + text(name) + b"\x93"  # STACK_GLOBAL (dotted names at protocol 4)


def call(callable_bytes, *args):
    return callable_bytes + b"(" + b"".join(text(a) for a in args) + b"tR"  # MARK ... TUPLE REDUCE


def stream(body):
    return b"\x80\x04" + body + b"."


def cases(marker_dir):
    def marker(case):
        return os.path.join(marker_dir, case)

    stdlib = [
        # HD-1: a dotted name with a dunder part reaches builtins' namespace dict.
        ("HD-1", "builtins", "__dict__.get",
         stream(call(call(glob("builtins", "__dict__.get"), "exec"),
                     "open(%r, 'w').close()" % marker("HD-1")))),
        # HD-3: the C twin of the denied functools.
        ("HD-3", "_functools", "partial",
         stream(glob("_functools", "partial") + b"(" + glob("builtins", "open")
                + text(marker("HD-3")) + text("w") + b"tR)R")),
        # HD-4: the pickle turns the guard off, then runs a command.
        ("HD-4", "pickleguard", "deactivate_safe_ml_environment",
         stream(glob("pickleguard", "deactivate_safe_ml_environment") + b")R0"
                + call(glob("posix", "system"), "touch " + marker("HD-4")))),
        # HD-5: a published gadget that spawns a shell command.
        ("HD-5", "imaplib", "IMAP4_stream",
         stream(call(glob("imaplib", "IMAP4_stream"), "touch " + marker("HD-5")))),
        # HD-6: the pure-Python twin of io.
        ("HD-6", "_pyio", "open", stream(call(glob("_pyio", "open"), marker("HD-6"), "w"))),
        # HD-8: a program module re-exports os.system under another name.
        ("HD-8", "pg_alias", "run",
         stream(call(glob("pg_alias", "run"), "touch " + marker("HD-8")))),
        # HD-9: a program module holds a functools.partial bound to os.system.
        ("HD-9", "pg_alias", "later",
         stream(call(glob("pg_alias", "later"), "touch " + marker("HD-9")))),
    ]
    torch = [
        # HD-2: the module joined with a dotted name reaches a denied function.
        ("HD-2", "torch", "_utils._import_dotted_name",
         stream(call(call(glob("torch", "_utils._import_dotted_name"), "os.system"),
                     "touch " + marker("HD-2")))),
        # HD-7: a published torch gadget that runs a command.
        ("HD-7", "torch.utils.collect_env", "run",
         stream(call(glob("torch.utils.collect_env", "run"), "touch " + marker("HD-7")))),
    ]
    return {"stdlib": stdlib, "torch": torch}


def main():
    marker_dir, group = sys.argv[1], sys.argv[2]
    control = "--control" in sys.argv[3:]
    modules = tempfile.mkdtemp(prefix="pg-alias-")
    with open(os.path.join(modules, "pg_alias.py"), "w") as f:
        f.write("import functools, os\nrun = os.system\nlater = functools.partial(os.system)\n")
    if control:
        with open(os.path.join(modules, "pickleguard.py"), "w") as f:
            f.write("def deactivate_safe_ml_environment():\n    pass\n")
    sys.path.insert(0, modules)
    for case, module, name, data in cases(marker_dir)[group]:
        result = {"case": case, "global": "%s:%s" % (module, name)}
        try:
            pickle.loads(data)
            result["outcome"] = "loaded"
        except Exception as exc:  # noqa: BLE001 - every outcome is reported
            kind = type(exc)
            result["type"] = "%s.%s" % (kind.__module__, kind.__qualname__)
            refused = getattr(exc, "module", None), getattr(exc, "name", None)
            result["outcome"] = "refused" if refused == (module, name) else "failed"
            result["reason"] = getattr(exc, "reason", None)
            result["message"] = str(exc)
        result["marker"] = os.path.exists(os.path.join(marker_dir, case))
        print(json.dumps(result), flush=True)


main()
