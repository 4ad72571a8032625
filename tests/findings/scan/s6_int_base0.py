"""s6: INT and LONG are read with base 0 by both CPython unpicklers (`_pickle`: strtol(s, 0) /
PyLong_FromString(s, NULL, 0); `pickle._Unpickler`: `int(data, 0)`), so `I0x10\\n` is 16 and
`L0b11L\\n` is 3 on every CPython 3.8-3.13. The scanner's value pass refuses them
(`text::int_literal`: decimal only) and stops; the main pass goes on: the scan is CLEAN while
a process without the preload crashes (RC-1 after the INT).

The runtime (src/unpickler/machine.rs `text_int`/`text_long`, "Decimal only, as int(text)")
refuses them too, with ValueError: safe, but it is also a conformance bug (files CPython loads
fail under the guard), and it is the reason the value pass cannot simply match the runtime
here: the scan must match CPython, which runs the payload when the preload is absent.

    s6_int_base0.py build FILE [int_hex|int_bin|long_hex|long_octal]
"""
import os
import sys

from _common import after_proto, rc_payload

USE = "repr(obj)"
VARIANTS = {
    "int_hex": b"I0x10\n0",
    "int_bin": b"I0b1\n0",
    "long_hex": b"L0x10L\n0",
    "long_octal": b"L0o10L\n0",
}


def build(path, variant=None):
    variant = variant or os.environ.get("VARIANT", "int_hex")
    data = after_proto(rc_payload("RC-1"), VARIANTS[variant])
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2], *sys.argv[3:4])
