"""Differential fuzzing of pickleguard's unpickler against CPython's `_pickle` (`make
fuzz-unpickler`, not CI). Run under the preload.

Random objects are pickled at a random protocol, then mutated (byte flips, insertions,
deletions, splices of opcodes and of other streams). Each stream goes through `pickleguard.loads`
and `pickleguard.Unpickler` over a file here, and through stock `_pickle` in a worker process
started without the preload (so the reference stays stock once `_pickle` is pickleguard's). They must give equal objects (by repr)
or the same error class, and the file must be left where `_pickle` leaves it. A mismatch is
saved to OUT/mismatch-N.pkl; the stream being tried is in OUT/current.pkl, so a crash of the
process leaves its input behind.

Accepted differences: a stream on which `_pickle` itself runs out of time is not compared, and
a length field far beyond the data is `MemoryError` in `_pickle` (it
allocates first) and `UnpicklingError` in pickleguard (it sees the data is too short). So are the
deliberate differences the README lists, counted apart: 3.14's framing rules (an opcode across the
end of a FRAME, a FRAME before the current one is consumed) and INT/LONG lines read as decimals
(`_pickle` before 3.14 reads them with base 0, so a leading zero is octal or an error); and reprs
that differ only in memory addresses.

Usage: LD_PRELOAD=target/release/libpickleguard.so python3 fuzz/unpickler_differential.py
           [--seconds N] [--seed S] [--out DIR]
"""

import argparse
import io
import os
import pickle
import random
import re
import signal
import sys
import time

import _pickle
import json
import struct
import subprocess

try:
    import pickleguard
except ImportError:  # the stock worker
    pickleguard = None

OPCODES = [bytes([b]) for b in b"(.012FIJKLMNPQRSTVXabcdeghijlopqrstu})]GBC"] + [
    bytes([b]) for b in range(0x80, 0x99)]


class Timeout(Exception):
    pass


ARMED = [False]


def on_alarm(signum, frame):
    if ARMED[0]:
        ARMED[0] = False
        raise Timeout()


def random_object(rng, depth=0):
    kind = rng.randrange(14 if depth < 4 else 8)
    if kind == 0:
        return rng.randrange(-2**80, 2**80)
    if kind == 1:
        return rng.choice([0.0, -0.0, 1.5, float("inf"), rng.random() * 1e300])
    if kind == 2:
        return "".join(chr(rng.randrange(0x20, 0x2000)) for _ in range(rng.randrange(12)))
    if kind == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(600)))
    if kind == 4:
        return rng.choice([None, True, False, 0, -1, 255, 256, 65535, 65536, 2**31, -2**31])
    if kind == 5:
        return bytearray(rng.randrange(256) for _ in range(rng.randrange(20)))
    if kind == 6:
        return complex(1, 2)
    if kind == 7:
        return frozenset(range(rng.randrange(4)))
    if kind == 8:
        return [random_object(rng, depth + 1) for _ in range(rng.randrange(6))]
    if kind == 9:
        return tuple(random_object(rng, depth + 1) for _ in range(rng.randrange(6)))
    if kind == 10:
        return {rng.randrange(50): random_object(rng, depth + 1) for _ in range(rng.randrange(6))}
    if kind == 11:
        return {rng.randrange(50) for _ in range(rng.randrange(6))}
    if kind == 12:
        shared = random_object(rng, depth + 1)
        return [shared, (shared,), {"k": shared}]
    import collections
    return collections.OrderedDict(a=random_object(rng, depth + 1))


def mutate(rng, data, pool):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        choice = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif choice == 1:
            data[pos:pos] = rng.choice(OPCODES)
        elif choice == 2 and data:
            del data[pos:pos + rng.randrange(1, 8)]
        elif choice == 3 and pool:
            other = rng.choice(pool)
            start = rng.randrange(len(other))
            data[pos:pos] = other[start:start + rng.randrange(1, 32)]
        else:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return bytes(data)


def outcome(function, data):
    try:
        return timed_outcome(function, data)
    except Timeout:  # the alarm went off while the error was being handled
        return "timeout", None


def timed_outcome(function, data):
    ARMED[0] = True
    signal.alarm(5)
    try:
        result = repr(function(data))
        ARMED[0] = False
        return "ok", result
    except Timeout:
        return "timeout", None
    except RecursionError:
        return "RecursionError", None
    except Exception as err:  # noqa: BLE001 - the class is what is compared
        LAST_ERROR[0] = str(err)
        return type(err).__name__, None
    finally:
        ARMED[0] = False
        signal.alarm(0)


def through_file(data):
    f = io.BytesIO(data + b"END")
    value = pickleguard.Unpickler(f).load()
    return value, f.tell()


def stock_through_file(data):
    f = io.BytesIO(data + b"END")
    value = _pickle.Unpickler(f).load()
    return value, f.tell()


def worker():
    """The stock side: length-prefixed streams on stdin, one JSON line of outcomes each."""
    signal.signal(signal.SIGALRM, on_alarm)
    source, sink = sys.stdin.buffer, sys.stdout
    while True:
        header = source.read(4)
        if len(header) < 4:
            return 0
        data = source.read(struct.unpack("<I", header)[0])
        sink.write(json.dumps([outcome(_pickle.loads, data),
                               outcome(stock_through_file, data)]) + "\n")
        sink.flush()


class Stock:
    """A stock worker process; restarted if stock _pickle crashes on a stream."""

    def __init__(self):
        self.child = None

    def start(self):
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("PICKLEGUARD_")}
        self.child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def outcomes(self, data):
        if self.child is None or self.child.poll() is not None:
            self.start()
        try:
            self.child.stdin.write(struct.pack("<I", len(data)) + data)
            self.child.stdin.flush()
            line = self.child.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            self.child.wait()
            self.child = None
            return None  # stock crashed on it: nothing to compare with
        return [tuple(o) for o in json.loads(line)]


# The message of the last exception pickleguard's unpickler raised here.
LAST_ERROR = [""]

# pickleguard's framing errors: 3.14's rules, applied on every version (README).
FRAME_RULES = ("pickle exhausted before end of frame", "beginning of a new frame before end of current frame")

# An INT or LONG line with a leading zero: decimal to pickleguard, base 0 to `_pickle` < 3.14.
LEADING_ZERO = re.compile(rb"[IL][+-]?0[0-9_]")

ADDRESS = re.compile(r"0x[0-9a-f]+")


def same(ours, theirs):
    # _pickle runs out of memory where pickleguard allocates nothing: see the docstring.
    return ours == theirs or theirs[0] in ("timeout", "MemoryError")


def deliberate(ours, theirs, message, data):
    """Whether a difference is one the README lists (see the docstring)."""
    if ours[0] == "UnpicklingError" and message in FRAME_RULES:
        return True
    if ours[0] == theirs[0] == "ok" and ADDRESS.sub("0x", ours[1]) == ADDRESS.sub("0x", theirs[1]):
        return True
    return "ValueError" in (ours[0], theirs[0]) and LEADING_ZERO.search(data) is not None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", default="target/fuzz-unpickler")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    stock = Stock()
    stock_crashes = 0
    os.makedirs(args.out, exist_ok=True)
    signal.signal(signal.SIGALRM, on_alarm)
    rng = random.Random(args.seed)
    pool, runs, mismatches, accepted = [], 0, 0, 0
    deadline = time.monotonic() + args.seconds
    current = os.path.join(args.out, "current.pkl")
    while time.monotonic() < deadline:
        data = pickle.dumps(random_object(rng), rng.randrange(pickle.HIGHEST_PROTOCOL + 1))
        pool.append(data)
        del pool[:-64]
        if rng.random() < 0.8:
            data = mutate(rng, data, pool)
        with open(current, "wb") as f:
            f.write(data)
        runs += 1
        theirs_all = stock.outcomes(data)
        if theirs_all is None:
            stock_crashes += 1
            continue
        checks = []
        for entry, function, theirs in [
            ("loads", pickleguard.loads, theirs_all[0]),
            ("Unpickler(file)", through_file, theirs_all[1]),
        ]:
            LAST_ERROR[0] = ""
            checks.append((entry, outcome(function, data), theirs, LAST_ERROR[0]))
        for entry, ours, theirs, message in checks:
            if ours[0] == "UnsafeFileError":
                continue  # a (mutated) global the guard refuses: the guard's business
            if not same(ours, theirs) and deliberate(ours, theirs, message, data):
                accepted += 1
                continue
            if not same(ours, theirs):
                path = os.path.join(args.out, "mismatch-%d.pkl" % mismatches)
                with open(path, "wb") as f:
                    f.write(data)
                mismatches += 1
                print("MISMATCH %s: pickleguard %s, _pickle %s (%s)"
                      % (entry, ours, theirs, path), flush=True)
    os.remove(current)
    print("unpickler differential fuzz: seed %d, %d streams, %d mismatch(es), %d deliberate "
          "difference(s) (README), %d stream(s) that crashed stock _pickle"
          % (args.seed, runs, mismatches, accepted, stock_crashes))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
