"""Runs each reproducer: scan verdict, guarded load, unguarded load.

    harness.py [--json] [sN_name.py ...]     (default: every sN_*.py here)

With --json, one line per case: {"case", "scan_exit", "scan_concerns" (kinds), "guarded",
"unguarded"}, each load an outcome: loaded, refused (UnsafeFileError), error, crashed, hung.

Needs PICKLEGUARD_ROOT (the worktree with target/release built) and PY (the ML venv python).
"""
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("PICKLEGUARD_ROOT", os.path.abspath(os.path.join(HERE, "..", "..", "..")))
PY = os.environ.get("PY", "/work/main/.venv-ml/bin/python")
SCAN = os.path.join(ROOT, "target/release/pickleguard")
SHIM = os.path.join(ROOT, "target/release/libpickleguard.so")

LOAD = r"""
import pickle, sys, threading
if len(sys.argv) > 4 and "joblib" in sys.argv[4]:
    import joblib
if len(sys.argv) > 4 and "torch" in sys.argv[4]:
    import torch
data = open(sys.argv[1], "rb").read()
result = {}
def load():
    try:
        loader = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else "pickle.loads(data)"
        path = sys.argv[1]
        result["obj"] = eval(loader)
    except Exception as e:
        result["error"] = e
stack = int(sys.argv[3]) if len(sys.argv) > 3 else 0
if stack:
    # The load runs in a thread with this stack size (as in a server's worker thread).
    threading.stack_size(stack)
    t = threading.Thread(target=load); t.start(); t.join()
else:
    load()
if "error" in result:
    e = result["error"]
    print("RAISED", type(e).__name__, str(e)[:300]); sys.exit(3)
obj = result["obj"]
try:
    use = sys.argv[2] if len(sys.argv) > 2 else ""
    if use:
        exec(use)
except Exception as e:
    print("USE-RAISED", type(e).__name__, str(e)[:200]); sys.exit(4)
try:
    import reprlib
    shown = reprlib.repr(obj)[:60]
except Exception:
    shown = type(obj).__name__
print("LOADED", shown)
"""


class Ran:
    def __init__(self, returncode, stdout, stderr, seconds, max_rss_kb):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.cost = "%.2f s, %d MB" % (seconds, max_rss_kb // 1024)
        self.seconds, self.mb = seconds, max_rss_kb // 1024


def run(cmd, env, timeout):
    """Runs `cmd` under /usr/bin/time, for its wall time and peak memory (measured from a small
    parent: a child forked from this process would report this process's peak too)."""
    timed = ["/usr/bin/time", "-f", "PGTIME %e %M"] + cmd
    p = subprocess.run(timed, env=env, capture_output=True, text=True, timeout=timeout)
    lines = p.stderr.splitlines()
    seconds, rss = 0.0, 0
    rest = []
    for line in lines:
        if line.startswith("PGTIME "):
            _, seconds, rss = line.split()
        elif line.startswith("Command terminated by signal") or line.startswith("Command exited with"):
            pass
        else:
            rest.append(line)
    code = p.returncode
    for line in lines:
        if line.startswith("Command terminated by signal"):
            code = -int(line.split()[-1])
    return Ran(code, p.stdout, "\n".join(rest), float(seconds), int(rss))


def load(path, guarded, use="", timeout=20, packs="", stack=0, loader="", allow=""):
    env = dict(os.environ)
    if allow and guarded:
        env["PICKLEGUARD_ALLOW"] = allow
    if packs:
        env["PICKLEGUARD_PACKS"] = packs
    env.pop("LD_PRELOAD", None)
    if guarded:
        env["LD_PRELOAD"] = SHIM
    try:
        p = run([PY, "-c", LOAD, path, use, str(stack), loader], env, timeout)
    except subprocess.TimeoutExpired:
        return "HUNG (>%ss)" % timeout
    out = (p.stdout.strip().splitlines() or [""])[-1]
    if p.returncode < 0:
        return "CRASHED signal %d (%s)" % (-p.returncode, p.cost)
    return "rc=%d %s (%s)" % (p.returncode, out[:300], p.cost)


def scan(path, timeout=60, packs="", allow=""):
    env = dict(os.environ)
    if allow:
        env["PICKLEGUARD_ALLOW"] = allow
    if packs:
        env["PICKLEGUARD_PACKS"] = packs
    try:
        p = run([SCAN, "scan", "--format", "json", path], env, timeout)
    except subprocess.TimeoutExpired:
        return "HUNG", ""
    if p.returncode < 0:
        return "CRASHED signal %d (%s)" % (-p.returncode, p.cost), p.stderr.strip()[-300:]
    detail = ""
    try:
        report = json.loads(p.stdout)
        f = report["files"][0]
        detail = "status=%s error=%s concerns=%s" % (f.get("status"), json.dumps(f.get("error"))[:200], json.dumps(f.get("concerns"))[:400])
    except Exception:
        detail = (p.stdout + p.stderr)[-600:]
    SCAN_COST.update(seconds=p.seconds, mb=p.mb)
    return "exit %d (%s)" % (p.returncode, p.cost), detail


# The last scan's wall time and peak memory.
SCAN_COST = {}


def megabytes(text):
    """The peak memory a load's result line reports, in MB."""
    import re

    found = re.search(r"(\d+) MB\)$", text)
    return int(found.group(1)) if found else None


def outcome(text):
    """The kind of a load's result line."""
    if text.startswith("CRASHED"):
        return "crashed"
    if text.startswith("HUNG"):
        return "hung"
    if "LOADED" in text or "USE-RAISED" in text:
        return "harmed" if "USE-RAISED" in text else "loaded"
    if "UnsafeFileError" in text:
        return "refused"
    return "error"


def main(names, as_json=False):
    if not names:
        names = sorted(glob.glob(os.path.join(HERE, "s[0-9]*_*.py")))
    for name in names:
        spec = importlib.util.spec_from_file_location("m", name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, getattr(mod, "FILENAME", "f.pkl"))
            mod.build(path)
            use = getattr(mod, "USE", "")
            packs = getattr(mod, "PACKS", "")
            allow = getattr(mod, "ALLOW", "")
            s, detail = scan(path, packs=packs, allow=allow)
            stack = getattr(mod, "THREAD_STACK", 0)
            loader = getattr(mod, "LOADER", "")
            g = load(path, True, use, packs=packs, stack=stack, loader=loader, allow=allow)
            u = load(path, False, use, stack=stack, loader=loader)
            if as_json:
                kinds = sorted(set(k for k in ("rule", "readers_disagree", "unscannable", "code")
                                   if '"kind": "%s"' % k in detail))
                code = int(s.split()[1]) if s.startswith("exit ") else None
                print(json.dumps({"case": os.path.basename(name)[:-3], "scan_exit": code,
                                  "scan_concerns": kinds, "scan_seconds": SCAN_COST.get("seconds"),
                                  "scan_mb": SCAN_COST.get("mb"), "guarded": outcome(g),
                                  "guarded_mb": megabytes(g),
                                  "unguarded": outcome(u)}), flush=True)
                continue
            print("==", os.path.basename(name))
            print("  scan:", s, "|", detail)
            print("  guarded:", g)
            print("  unguarded:", u)


if __name__ == "__main__":
    args = sys.argv[1:]
    as_json = "--json" in args
    main([a for a in args if a != "--json"], as_json)
