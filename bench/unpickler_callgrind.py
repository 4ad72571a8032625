"""Instruction counts (callgrind) of loads by pickleguard's unpickler beside stock `_pickle`.

    python bench/unpickler_callgrind.py PYTHON SHIM

For each workload, four runs under callgrind: stock (no preload) with and without the loads,
and preloaded `pickleguard.loads` with and without them; the cost of the loads is the
difference, so start-up and set-up cancel out. The garbage collector is off during the loads. Prints one JSON line per workload with both
counts and their ratio. (numpy workloads need numpy in PYTHON.)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

CHILD = r'''
import pickle, sys
workload, which, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
if workload == "data":
    obj = {"ints": list(range(20000)), "floats": [i * 0.5 for i in range(20000)],
           "strs": ["s%d" % i for i in range(20000)], "rows": [(i, "x", 1.0) for i in range(3000)]}
    data = pickle.dumps(obj, 4)
elif workload == "numpy":
    import numpy as np
    data = pickle.dumps({"layer%d.%s" % (i, k): np.ones((8, 8), dtype="f4")
                         for i in range(300) for k in ("w", "b")}, 4)
elif workload == "globals-no-memo":
    import collections
    n = 5000
    data = b"\x80\x04(" + b"\x8c\x0bcollections\x8c\x0bOrderedDict\x93" * n + b"l."
else:
    raise SystemExit("unknown workload")
if which == "stock":
    import _pickle
    loads = _pickle.loads
else:
    import pickleguard
    loads = pickleguard.loads
loads(data)  # warm: first imports happen outside the measured difference
import gc
gc.collect()
gc.disable()  # the collector's runs land at different points in each variant; not the loader's cost
for _ in range(repeat):
    loads(data)
'''


def instructions(argv, env):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                       env=env, check=True, capture_output=True)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


def main():
    python, shim = sys.argv[1], sys.argv[2]
    base = {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("PICKLEGUARD_")}
    base["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        base[threads] = "1"  # numpy's BLAS threads spin for a varying number of instructions
    preloaded = dict(base, LD_PRELOAD=shim)
    repeat = 10
    for workload in ("data", "numpy", "globals-no-memo"):
        counts = {}
        for which, env in (("stock", base), ("pickleguard", preloaded)):
            argv = [python, "-c", CHILD, workload, which]
            with_loads = instructions(argv + [str(repeat)], env)
            without = instructions(argv + ["0"], env)
            counts[which] = (with_loads - without) / repeat
        print(json.dumps({
            "workload": workload,
            "stock_ir_per_load": round(counts["stock"]),
            "pickleguard_ir_per_load": round(counts["pickleguard"]),
            "ratio": round(counts["pickleguard"] / counts["stock"], 4),
        }), flush=True)


if __name__ == "__main__":
    main()
