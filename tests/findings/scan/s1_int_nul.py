"""s1: an INT whose line holds a NUL (`I1\\0\\n`) stops the scanner's value pass.

CPython (`strtol`) and pickleguard's unpickler read `I1\\0\\n` as 1 (the text ends at the NUL);
the scanner's `text::int_literal` refuses it, so `reconstruction::check_stream` stops
(`Stop::Broken`) while the main pass (`text::decimal` -> Data) goes on: every value check after
it is skipped. Here it hides RC-1 (a forged object dtype whose 8 file bytes become a PyObject
pointer in `scalar`): scan clean, guarded load refuses, unguarded load crashes.
"""
import sys

from _common import after_proto, rc_payload

USE = "repr(obj)"


def build(path):
    data = after_proto(rc_payload("RC-1"), b"I1\x00\n0")
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2])
