"""s13: what `_codecs.encode` returns is an exact `bytes`, which the runtime's conversion turns
into `Value::Bytes(n)` (value.rs converts exact built-in types by value before asking where an
object came from), while the scanner keeps it as `Value::Built { by: _codecs.encode, .. }`
(graph.rs: any global with rules makes a `Node::Built`). The checks then disagree both ways:

  benign  `bytearray(_codecs.encode('abc\\0', 'latin1'))`, what protocols 0-2 write for a
          bytearray holding non-ASCII (tests/py/write_samples.py): the runtime loads it,
          the scan refuses it (bytes-from-data). This is why the it test
          `scan_passes_every_benign_sample_and_the_demo_model` fails at 5d2e9a8.
  scalar  `scalar(dtype('O8') with its genuine state, _codecs.encode('AAAAAAAA', 'utf-8'))`:
          numpy-scalar refuses bytes for a dtype holding references; `byte_len` knows no
          length for a utf-8 `encode` result, so the scan passes it, while the runtime sees
          Bytes(8) and refuses. Harmless unguarded (numpy returns the object for an object
          dtype), but a scan-clean file the guard refuses.

    s13_codec_result_is_bytes.py build FILE [benign|scalar]
"""
import os
import sys

from _common import ra

USE = "print(repr(obj))"


def build(path, variant=None):
    import codecs
    import pickle

    variant = variant or os.environ.get("VARIANT", "scalar")
    if variant == "benign":
        data = pickle.dumps(bytearray(b"abc\x00\xff"), 2)
    else:
        np, multiarray, _ = ra.numpy_names()
        genuine = ra.dtype("O8", (3, "|", None, None, None, -1, -1, 63))
        data = pickle.dumps(
            ra.Reduce(multiarray.scalar, (genuine, ra.Reduce(codecs.encode, ("AAAAAAAA", "utf-8")))),
            2,
        )
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__" and sys.argv[1] == "build":
    build(sys.argv[2], *sys.argv[3:4])
