"""Memory-copy bandwidth of this machine, for the scanner's "memory speed" comparison.

    python child_copy.py MIB REPEATS

Copies a MIB-MiB numpy array into another (a single memcpy for contiguous arrays) REPEATS times
after one warm-up copy, and prints one JSON line with every copy's GB/s (bytes copied / s, so a
copy reads and writes that many bytes each).
"""
import json
import sys
import time

import numpy as np


def main():
    mib, repeats = float(sys.argv[1]), int(sys.argv[2])
    n = int(mib * 2**20)
    src = np.ones(n, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up: faults every page of both arrays in
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        rates.append(n / (time.perf_counter() - start) / 1e9)
    print(json.dumps({"bytes": n, "gb_per_s": rates}))


if __name__ == "__main__":
    main()
