"""Loops of audit-event-heavy calls, each timed inside one fresh process.

    python child_audit.py SCALE WORKDIR [count]

Prints one JSON line {loop: {"seconds", "iterations", "ns_per_iteration"}}; with `count`, a
Python audit hook also counts the events of each loop ("events_per_iteration"), and the times are
meaningless. Stdlib only, so it runs on any CPython >= 3.8. bench.py runs it with no hook
(stock), with the do-nothing C hook (the floor) and with pickleguard, interleaved.

The loops (the audit events each raises per iteration are counted by `count` and listed in
BENCHMARKS.md):
  sys_audit        sys.audit("bench.event", 1): one event, the hook's cheapest possible work
  logging          Logger.info through a formatting handler: findCaller uses sys._getframe
  open_close       open(path, "rb").close()
  os_stat          os.stat(path): no audit event (a control: should not move at all)
  compile_exec     compile() + exec()
  import_cached    importlib.import_module of an imported module: no event (a control)
  import_fresh     re-import of a module removed from sys.modules: finds, reads, compiles and
                   runs its source again (PYTHONDONTWRITEBYTECODE or not, the same in every variant)
  find_class       pickle.loads of a 2-global pickle: two `pickle.find_class` events, the only
                   event pickleguard does real work on (allowlisted globals)
"""
import collections  # noqa: F401  (imported, so find_class times the check, not an import)
import importlib
import json
import logging
import os
import pickle
import sys
import time


class FormattingHandler(logging.Handler):
    """Formats every record (so logging does all of its per-record work) and keeps nothing."""

    def emit(self, record):
        self.format(record)


def loop_sys_audit(n, ctx):
    audit = sys.audit
    for _ in range(n):
        audit("bench.event", 1)


def loop_logging(n, ctx):
    log = ctx["logger"]
    for i in range(n):
        log.info("request %d served in %.3f ms", i, 0.25)


def loop_open_close(n, ctx):
    path = ctx["file"]
    for _ in range(n):
        open(path, "rb").close()


def loop_os_stat(n, ctx):
    path = ctx["file"]
    stat = os.stat
    for _ in range(n):
        stat(path)


def loop_compile_exec(n, ctx):
    for i in range(n):
        code = compile("y = x * 2 + %d" % (i & 7), "<bench>", "exec")
        exec(code, {"x": i})


def loop_import_cached(n, ctx):
    imp = importlib.import_module
    for _ in range(n):
        imp("json")
        imp("logging")


def loop_import_fresh(n, ctx):
    names = ctx["fresh_modules"]
    modules = sys.modules
    imp = importlib.import_module
    for i in range(n):
        name = names[i % len(names)]
        modules.pop(name, None)
        imp(name)


def loop_find_class(n, ctx):
    data = ctx["two_globals"]
    loads = pickle.loads
    for _ in range(n):
        loads(data)


LOOPS = [
    # name, function, iterations at scale 1 (about 0.3 s each on stock CPython 3.11 here)
    ("sys_audit", loop_sys_audit, 5_000_000),
    ("logging", loop_logging, 40_000),
    ("open_close", loop_open_close, 100_000),
    ("os_stat", loop_os_stat, 300_000),
    ("compile_exec", loop_compile_exec, 40_000),
    ("import_cached", loop_import_cached, 400_000),
    ("import_fresh", loop_import_fresh, 4_000),
    ("find_class", loop_find_class, 150_000),
]


def main():
    scale = float(sys.argv[1])
    workdir = sys.argv[2]
    count = len(sys.argv) > 3 and sys.argv[3] == "count"
    events = []
    if count:
        # Not timed: which audit events each loop raises, per iteration.
        sys.addaudithook(lambda event, args: events.append(event))

    logger = logging.getLogger("bench")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = FormattingHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(funcName)s:%(lineno)d %(message)s"))
    logger.addHandler(handler)

    fresh_dir = os.path.join(workdir, "fresh_modules")
    names = ["pgbench_fresh_%03d" % i for i in range(50)]
    if not os.path.isdir(fresh_dir):
        os.makedirs(fresh_dir, exist_ok=True)
        for name in names:
            with open(os.path.join(fresh_dir, name + ".py"), "w") as f:
                f.write("VALUE = %r\n\ndef f(x):\n    return x + VALUE\n" % name)
    sys.path.insert(0, fresh_dir)
    importlib.invalidate_caches()

    # protocol 2 without memo reuse: (OrderedDict, complex) -> exactly two find_class events.
    two_globals = pickle.dumps(collections.OrderedDict(a=complex(1, 2)), protocol=2)

    ctx = {"logger": logger, "file": os.path.join(fresh_dir, names[0] + ".py"),
           "fresh_modules": names, "two_globals": two_globals}
    out = {}
    for name, fn, base in LOOPS:
        n = max(10, int(base * scale))
        fn(max(1, n // 20), ctx)  # warm-up: caches, specialisation
        del events[:]
        start = time.perf_counter()
        fn(n, ctx)
        seconds = time.perf_counter() - start
        out[name] = {"seconds": seconds, "iterations": n, "ns_per_iteration": seconds / n * 1e9}
        if count:
            names = {}
            for event in events:
                names[event] = names.get(event, 0) + 1
            out[name]["events_per_iteration"] = {k: round(v / n, 2) for k, v in sorted(names.items())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
