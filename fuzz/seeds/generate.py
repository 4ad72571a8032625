"""Writes the fuzz seed corpus into this directory: one small file per format the scanner reads.

Standard library only. Run from anywhere: `python3 fuzz/seeds/generate.py`. The `sp*` seeds are
copies of the scanner's adversarial fixtures (SP-n), written by `scan/tests/it/make_fixtures.py`.
"""
import bz2
import collections
import gzip
import io
import lzma
import os
import pickle
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


class Payload:
    """Pickles as a call to os.system; the seeds are scanned, never loaded."""

    def __reduce__(self):
        return (os.system, ("true",))


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def su(text):
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def joblib_like():
    """A joblib dump of one float64 array: wrapper, BUILD, padding, raw bytes, then more pickle."""
    out = b"\x80\x04" + su("joblib.numpy_pickle") + su("NumpyArrayWrapper") + b"\x93)\x81}("
    out += su("shape") + b"K\x02\x85" + su("dtype") + su("numpy") + su("dtype") + b"\x93"
    out += su("f8") + b"\x89\x88\x87R(K\x03" + su("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += su("numpy_array_alignment_bytes") + b"K\x10ub"
    return out + b"\x02\xff\xff" + struct.pack("<2d", 1.0, 2.0) + b"."


def main():
    model = collections.OrderedDict(weight=[1.0, 2.0], bias=b"\x00\x01", name="lin", shape=(2, 3))
    for proto in range(6):
        write(f"model-p{proto}.pkl", pickle.dumps(model, protocol=proto))
    write("payload-p2.pkl", pickle.dumps([Payload()], protocol=2))
    write("payload-p4.pkl", pickle.dumps({"x": Payload()}, protocol=4))
    write("memo-stack-global.pkl", b"\x80\x04" + su("posix") + b"\x94" + su("system") + b"\x94\x93\x94h\x00h\x01\x93.")
    write("ext.pkl", b"\x80\x02\x82\x01\x83\x01\x01\x84\x01\x00\x00\x00.")
    write("two-pickles.pkl", pickle.dumps(1, protocol=2) + pickle.dumps(Payload(), protocol=0))

    body = pickle.dumps(model, protocol=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", body)
        z.writestr("archive/data/0", b"\x00" * 16)
        z.writestr("archive/version", "3\n")
    write("torch.zip", buf.getvalue())

    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    legacy = magic + pickle.dumps(1001, protocol=2) + pickle.dumps({"little_endian": True}, protocol=2)
    legacy += body + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 2) + b"\x00\x01"
    write("torch-legacy.pt", legacy)

    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) - 10) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + pickle.dumps([None], protocol=3)
    write("object.npy", npy)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", npy)
    write("arrays.npz", buf.getvalue())

    payload = pickle.dumps(Payload(), protocol=4)
    write("payload.pkl.gz", gzip.compress(payload))
    write("payload.pkl.bz2", bz2.compress(payload))
    write("payload.pkl.xz", lzma.compress(payload, check=lzma.CHECK_NONE))
    write("payload.pkl.lzma", lzma.compress(payload, format=lzma.FORMAT_ALONE))
    write("payload.pkl.z", zlib.compress(payload))
    write("payload.zfile", b"ZF" + hex(len(payload)).encode().ljust(19) + zlib.compress(payload))
    write("joblib-array.joblib", joblib_like())


if __name__ == "__main__":
    main()
