"""s1: a protocol-0 number line that CPython and pickleguard's unpickler read, but the
scanner's value pass refuses, stops the value pass (`reconstruction::check_stream` ->
`Stop::Broken`), while the main pass (`text::decimal` -> Data) goes on and reports nothing:
every value check after it is skipped.

`_pickle` and the runtime read these lines as C strings (the text ends at a NUL) and LONG drops
its `L` before trimming; `text::int_literal` and the FLOAT arm of the value pass do neither:
  int_nul   `I1\\0\\n`      -> 1           int_empty `I\\0\\n`  -> 0
  int_01    `I01\\0x\\n`    -> True        float_nul `F1.5\\0\\n` -> 1.5
  long_nul  `L5\\0L\\n`     -> 5           long_space `L 5 L\\n` -> 5
Here each hides RC-1 (a forged object dtype whose 8 file bytes become a PyObject pointer in
`scalar`): scan clean, guarded load refuses, unguarded load crashes.

    s1_int_nul.py build FILE [VARIANT]
"""
import os
import sys

from _common import after_proto, rc_payload

USE = "repr(obj)"
VARIANTS = {
    "int_nul": b"I1\x00\n0",
    "int_empty": b"I\x00\n0",
    "int_01": b"I01\x00x\n0",
    "float_nul": b"F1.5\x00\n0",
    "long_nul": b"L5\x00L\n0",
    "long_space": b"L 5 L\n0",
}


def build(path, variant=None):
    variant = variant or os.environ.get("VARIANT", "int_nul")
    data = after_proto(rc_payload("RC-1"), VARIANTS[variant])
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2], *sys.argv[3:4])
