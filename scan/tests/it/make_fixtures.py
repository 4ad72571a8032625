"""Writes scanner fixtures into OUTDIR and a manifest.json describing what each must scan to.

Standard library only: torch, numpy and joblib files are mimicked byte for byte. The expected
globals of every real pickle come from an oracle, a `pickle.Unpickler` whose `find_class` records
the names it is asked for (exactly what the `pickle.find_class` audit event reports) and returns an
inert stand-in, so nothing in a fixture ever runs.

Usage: python make_fixtures.py OUTDIR
"""
import bz2
import collections
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import sys
import types
import zipfile
import zlib

OUT = sys.argv[1]
MANIFEST = []


class Stand:
    """Whatever the pickle asks for: accepts any call, state or item."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Stand()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


def recorder(base):
    class Recorder(base):
        def __init__(self, file, seen):
            super().__init__(file)
            self.seen = seen

        def find_class(self, module, name):
            self.seen.append((module, name))
            return Stand

        def persistent_load(self, pid):
            return Stand()

    return Recorder


# _pickle's unpickler, and the pure-Python one that joblib uses.
RECORDERS = [recorder(pickle.Unpickler), recorder(pickle._Unpickler)]


def oracle(*streams):
    """The globals CPython resolves while loading every pickle in each stream, either way."""
    seen = []
    for data in streams:
        for Recorder in RECORDERS:
            f = io.BytesIO(data)
            while f.tell() < len(data):
                Recorder(f, seen).load()
    return sorted(set(seen))


def add(name, data, fmt, globals_, error=False, members=None, limits=None, concerns=()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    MANIFEST.append(
        {
            "file": name,
            "format": fmt,
            "globals": [list(g) for g in globals_],
            "error": error,
            "members": members,
            "limits": limits,
            "concerns": sorted(set(concerns)),
        }
    )


def file_oracle(path):
    """The globals `_pickle` resolves loading the file through a real file object (its
    read-ahead and FRAME handling), one pickle."""
    seen = []
    with open(path, "rb") as f:
        try:
            recorder(pickle.Unpickler)(f, seen).load()
        except Exception:
            pass
    return sorted(set(seen))


LOADS_SEEN = []


def _refuse_globals(event, args):
    if event == "pickle.find_class" and LOADS_SEEN and LOADS_SEEN[-1] is None:
        LOADS_SEEN[-1] = tuple(args)
        raise RuntimeError("stopped at the first global")


def bytes_oracle(data):
    """The first global `_pickle` resolves with pickle.loads (memory, no file reads): found
    through the audit event, which stops the load before the global is imported."""
    LOADS_SEEN.append(None)
    try:
        pickle.loads(data)
    except Exception:
        pass
    first = LOADS_SEEN.pop()
    return [first] if first else []


class Payload:
    """Pickles as a call to os.system; fixtures are scanned, never loaded."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def su(text):
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def compressed(codec, inner="pickle"):
    return {"compressed": {"codec": codec, "inner": inner}}


# A fake torch, so pickles name torch's globals exactly as torch.save writes them.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils
torch._utils = torch_utils


class FloatStorage:
    pass


FloatStorage.__module__ = "torch"
FloatStorage.__qualname__ = "FloatStorage"
torch.FloatStorage = FloatStorage


def _rebuild_tensor_v2(*args):
    pass


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class StorageRef:
    def __init__(self, key):
        self.key = key


class Tensor:
    def __init__(self, key):
        self.key = key

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, (StorageRef(self.key), 0, (2,), (1,), False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", FloatStorage, obj.key, "cpu", 2)
        return None


def torch_pickle(obj, protocol=2):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def npy(descr, shape, body):
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    header = header.encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


def joblib_dump(after):
    """joblib.dump([array]) of one aligned 3-element float64 array, then `after` (a pickle tail)."""
    out = b"\x80\x04" + su("joblib.numpy_pickle") + b"\x94" + su("NumpyArrayWrapper") + b"\x94\x93\x94)\x81\x94}\x94("
    out += su("subclass") + su("numpy") + su("ndarray") + b"\x93\x94"
    out += su("shape") + b"K\x03\x85\x94" + su("order") + su("C")
    out += su("dtype") + su("numpy") + su("dtype") + b"\x93\x94" + su("f8") + b"\x89\x88\x87\x94R\x94"
    out += b"(K\x03" + su("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b"
    out += su("allow_mmap") + b"\x88" + su("numpy_array_alignment_bytes") + b"K\x10ub"
    out += b"\x04\xff\xff\xff\xff" + struct.pack("<3d", 99.0, 46.0, 99.0)  # data full of 'c' and '.'
    return out + after


def zip_of(members, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tar_header(name, size):
    header = bytearray(512)
    header[: len(name)] = name
    header[100:107] = b"0000644"
    header[124:135] = b"%011o" % size
    header[156:157] = b"0"
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header)


def tar_of(members):
    out = b""
    for name, data in members:
        out += tar_header(name, len(data)) + data
        out += b"\0" * (-len(out) % 512)
    return out + b"\0" * 1024


def two_reader_zip(benign, evil):
    """One file, two torch archives: Python's zipfile (which shifts offsets by the bytes it
    finds prepended) reads `benign`, torch's miniz (absolute offsets) reads `evil`. Both have
    the same member names and sizes, so their central directories have the same size and
    offset: the evil archive's directory sits where the end record says, the benign one where
    zipfile looks after its shift."""
    size = max(len(benign), len(evil))
    # Trailing bytes after STOP are never read.
    benign, evil = benign.ljust(size, b"N"), evil.ljust(size, b"N")
    b = zip_of([("archive/data.pkl", benign), ("archive/version", b"3\n")])
    e = zip_of([("archive/data.pkl", evil), ("archive/version", b"3\n")])
    assert len(b) == len(e)
    return e[:-22] + b


def adversarial(model):
    """Files on which a reader other than the obvious one would run a payload (issue 10)."""
    sys.addaudithook(_refuse_globals)
    evil = pickle.dumps(Payload(), protocol=2)
    system = ("posix", "system")

    # SP-1: numpy reads the header with ast.literal_eval: '\x4f' is 'O', an object array.
    header = "{'descr': '\\x4f', 'fortran_order': False, 'shape': (1,), }"
    header = header.encode() + b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    escaped = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + evil
    add("sp1-escaped-descr.npy", escaped, "npy", [system])

    # SP-2: joblib asks dtype.hasobject, bit 0 of the flags in the dtype's state: a float64
    # dtype whose flags say 1 makes joblib unpickle a nested stream where the data would be.
    dump = joblib_dump(b"")
    flags = dump.index(b"K\x00t\x94b")
    forged = dump[:flags] + b"K\x01" + dump[flags + 2 :]
    data_at = forged.index(b"\x04\xff\xff\xff\xff")
    forged = forged[:data_at] + evil + b"."
    add(
        "sp2-forged-flags.joblib",
        forged,
        "pickle",
        [("joblib.numpy_pickle", "NumpyArrayWrapper"), ("numpy", "dtype"), ("numpy", "ndarray"), system],
        # The forged flags are also a forged dtype state, which the reconstruction rules refuse.
        concerns=["rule"],
    )

    # SP-3: a safetensors header of 0x180 bytes: its length starts 0x80 0x01, like PROTO 1.
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header = header.ljust(0x180, b" ")
    add("sp3-low-byte-0x80.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 8, {"safe": {"kind": "safetensors"}}, [])

    # SP-4: one file, two archives: zipfile reads a benign data.pkl, torch's miniz the evil one.
    benign = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    add(
        "sp4-two-readers.pt",
        two_reader_zip(benign, evil),
        "torch_zip",
        sorted(set(oracle(benign)) | {system}),
        members=["archive/data.pkl", "[as torch reads it] archive/data.pkl"],
        concerns=["readers_disagree"],
    )

    # SP-5: a FRAME whose last opcode's argument runs past the frame. _pickle reading a file
    # (the frame read with read(), not peek()) drops the rest of the frame and reads the
    # argument from after it; pickle.loads reads on. The file reading runs a STACK_GLOBAL and
    # REDUCE that pickle.loads takes as the text of a UNICODE line.
    call = su("posix") + su("system") + b"\x93" + su("echo pwn") + b"\x85R0V"
    assert b"\n" not in call
    after = b"A" + b"V" + b"y" * 10 + call + b"\n" + b"N."
    frame = b"N0" * 6000 + b"\x8c\x0c" + b"A" * 11
    straddle = b"\x80\x04\x95" + struct.pack("<Q", len(frame)) + frame + after
    path = os.path.join(OUT, "sp5-frame-straddle.pkl")
    add("sp5-frame-straddle.pkl", straddle, "pickle", [], concerns=["readers_disagree"])
    seen = file_oracle(path)
    assert seen == [system] and bytes_oracle(straddle) == [], (seen, bytes_oracle(straddle))
    MANIFEST[-1]["globals"] = [list(g) for g in seen]
    MANIFEST[-1]["members"] = [None, "[as CPython's file unpickler reads it]"]

    # SP-6: a protocol-0 pickle that is also a tar (valid checksum): torch.load reads the tar,
    # pickle.load the pickle. Both readings are scanned.
    head = b"cposix\nsystem\n(S'echo pwned'\ntR."
    tar = tar_of([(head, b""), (b"pickle", pickle.dumps(model, protocol=2))])
    add(
        "sp6-pickle-and-tar.pt",
        tar,
        "tar",
        sorted(set(oracle(pickle.dumps(model, protocol=2))) | {system}),
        members=[None, "pickle"],
    )

    # SP-7: TorchScript: torch.load hands the archive to torch.jit.load, which runs its code.
    script = zip_of(
        [
            ("m/data.pkl", pickle.dumps(None, protocol=2)),
            ("m/constants.pkl", pickle.dumps((), protocol=2)),
            ("m/code/__torch__/m.py", b"def forward(self):\n    return ops.prim.x()\n"),
            ("m/version", b"3\n"),
        ]
    )
    add("sp7-torchscript.pt", script, "torch_script", [], members=["m/data.pkl", "m/constants.pkl"], concerns=["code"])

    # SP-8: torch.package: packaged modules run at import, and one shadows `collections`.
    packaged = zip_of(
        [
            ("pkg/.data/version", b"6\n"),
            ("pkg/.data/extern_modules", b""),
            ("pkg/collections/__init__.py", b"import os\nos.system('echo pwned')\nOrderedDict = dict\n"),
            ("pkg/model/model.pkl", pickle.dumps(collections.OrderedDict(a=1), protocol=3)),
        ]
    )
    add(
        "sp8-torch-package.pt",
        packaged,
        "torch_package",
        oracle(pickle.dumps(collections.OrderedDict(a=1), protocol=3)),
        members=["pkg/model/model.pkl"],
        concerns=["code"],
    )

    # SP-9: dill's references to __main__ and its code builders.
    dilled = b"\x80\x03cdill._dill\n_create_function\nq\x00c__main__\nhelper\nq\x01\x86q\x02."
    add("sp9-dill-main.pkl", dilled, "pickle", oracle(dilled), concerns=["code"])

    # SP-10: 7z archives are named, never skipped.
    add("sp10-archive.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "seven_zip", [], concerns=["unscannable"])

    # SP-11: GGUF and ONNX are safe formats.
    add("sp11-model.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 16, {"safe": {"kind": "gguf"}}, [])
    add("sp11-model.onnx", b"\x08\x07\x12\x07pytorch\x1a\x032.1", {"safe": {"kind": "onnx"}}, [])

    # SP-13: an allowed global applied in a way its reconstruction rules refuse: numpy.ndarray
    # called directly hands out uninitialised memory (the rules allow it only as a reference).
    direct = b"\x80\x02cnumpy\nndarray\nK\x10\x85R."
    add("sp13-ndarray-applied.pkl", direct, "pickle", [("numpy", "ndarray")], concerns=["rule"])

    # SP-12: the stream breaks right after a refused global: still a finding.
    cut = evil[: evil.index(b"system") + 8] + b"\xff"
    add("sp12-broken-after-global.pkl", cut, "pickle", [system], error=True)


def main():
    model = collections.OrderedDict(weight=[1.0, 2.0], bias=b"\x00\x01", name="lin", shape=(2, 3), s={1})
    evil = [model, Payload()]

    # Raw pickles, every protocol, both picklers.
    for protocol in range(6):
        data = pickle.dumps(evil, protocol=protocol)
        add(f"evil-p{protocol}.pkl", data, "pickle", oracle(data))
        buf = io.BytesIO()
        pickle._Pickler(buf, protocol=protocol).dump(model)
        add(f"model-py-p{protocol}.pkl", buf.getvalue(), "pickle", oracle(buf.getvalue()))

    # Several pickles in one file, as repeated pickle.dump calls write them.
    multi = pickle.dumps(1, protocol=4) + pickle.dumps(model, protocol=2) + pickle.dumps(Payload(), protocol=0)
    add("multi.pkl", multi, "pickle", oracle(multi))

    # Cut after the malicious GLOBAL: the global stays listed, and the stream is an error.
    whole = pickle.dumps(Payload(), protocol=2)
    cut = whole[: whole.index(b"system") + 8]
    add("truncated.pkl", cut, "pickle", [("posix", "system")], error=True)

    # torch.save's zip layout. The blob under data/ is a pickle too, but torch never unpickles
    # tensor data, so it must not be reported.
    state = collections.OrderedDict(weight=Tensor("0"), bias=Tensor("1"))
    data_pkl = torch_pickle(state)
    members = [
        ("archive/data.pkl", data_pkl),
        ("archive/data/0", pickle.dumps(Payload(), protocol=2)),
        ("archive/data/1", b"\x00" * 8),
        ("archive/version", b"3\n"),
        ("archive/byteorder", b"little"),
        ("archive/.data/serialization_id", b"1234567890"),
    ]
    add("model.pt", zip_of(members), "torch_zip", oracle(data_pkl), members=["archive/data.pkl"])
    add("model-deflated.pt", zip_of(members, zipfile.ZIP_DEFLATED), "torch_zip", oracle(data_pkl), members=["archive/data.pkl"])

    # torch's legacy format: five pickles, then raw storage bytes that must not be read as one.
    heads = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}, protocol=2),
        torch_pickle(state),
        pickle.dumps(["0", "1"], protocol=2),
    ]
    storages = struct.pack("<q", 2) + b"cos\nsystem\n." + struct.pack("<q", 2) + b"\xff" * 8
    add("legacy.pt", b"".join(heads) + storages, "torch_legacy", oracle(*heads))

    # numpy: an object array is a pickle after the header; a float array is not.
    obj_payload = pickle.dumps([model, None], protocol=3)
    obj_npy = npy("|O", (2,), obj_payload)
    add("object.npy", obj_npy, "npy", oracle(obj_payload))
    add("floats.npy", npy("<f8", (3,), struct.pack("<3d", 99.0, 46.0, 1.0)), {"safe": {"kind": "npy"}}, [])
    evil_npy = npy("|O", (1,), pickle.dumps(Payload(), protocol=3))
    npz = zip_of([("a.npy", obj_npy), ("b.npy", npy("<i8", (1,), b"c" * 8)), ("c.npy", evil_npy)], zipfile.ZIP_DEFLATED)
    add("arrays.npz", npz, "npz", sorted(set(oracle(obj_payload)) | {("posix", "system")}), members=["a.npy", "c.npy"])

    # joblib: raw array bytes inside the pickle stream, plain or compressed.
    tail = b"\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x85."
    dump = joblib_dump(tail)
    expected = [("joblib.numpy_pickle", "NumpyArrayWrapper"), ("numpy", "dtype"), ("numpy", "ndarray"), ("os", "system")]
    add("model.joblib", dump, "pickle", expected)
    add("model-zlib.joblib", zlib.compress(dump, 3), compressed("zlib"), expected)
    add("model-gzip.joblib", gzip.compress(dump), compressed("gzip"), expected)
    add("model-bz2.joblib", bz2.compress(dump), compressed("bzip2"), expected)
    add("model-lzma.joblib", lzma.compress(dump, format=lzma.FORMAT_ALONE), compressed("lzma"), expected)
    add("model-xz.joblib", lzma.compress(dump, check=lzma.CHECK_NONE), compressed("xz"), expected)
    zfile = b"ZF" + ("0x%x" % len(dump)).encode().ljust(19) + zlib.compress(dump)
    add("model-zfile.pkl", zfile, compressed("joblib_zfile"), expected)
    add("truncated-gzip.joblib", gzip.compress(dump)[:-30], compressed("gzip"), expected[:3], error=True)

    # A generic zip: pickles found by content, text skipped, nested archives followed.
    evil2 = pickle.dumps(Payload(), protocol=2)
    inner = zip_of([("deep/evil.pkl", evil2)])
    generic = zip_of(
        [
            ("weights.bin", pickle.dumps(model, protocol=4)),
            ("README.txt", b"col1,col2\nread me\n"),
            ("notes.md", b"# notes\n"),
            ("inner.zip", inner),
            ("evil.pkl.gz", gzip.compress(evil2)),
        ],
        zipfile.ZIP_DEFLATED,
    )
    add(
        "bundle.zip",
        generic,
        "zip",
        sorted(set(oracle(pickle.dumps(model, protocol=4))) | {("posix", "system")}),
        members=["weights.bin", "inner.zip!/deep/evil.pkl", "evil.pkl.gz"],
    )

    # Bombs: 64 MiB of zeros behind a small deflated member, and archives nested too deep.
    bomb = zip_of([("bomb.pkl", b"\x80\x04" + b"\x00" * (64 << 20))], zipfile.ZIP_DEFLATED)
    add("bomb.zip", bomb, "zip", [], error=True, limits={"max_decompressed": 1 << 20})
    nested = zip_of([("evil.pkl", evil2)])
    for level in range(6):
        nested = zip_of([(f"level{level}.zip", nested)])
    add("nested.zip", nested, "zip", [], error=True)

    # Not pickles at all.
    add("README.md", b"# model card\ncolumns: a, b\n", "unknown", [])
    add("empty.bin", b"", "unknown", [])

    adversarial(model)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"python": sys.version.split()[0], "fixtures": MANIFEST}, f, indent=1)


main()
