"""Tiny hand assembler for pickle opcodes (protocol 2..4), used by the reproducers."""
import struct


class P:
    def __init__(self, proto=2):
        self.b = bytearray(b"\x80" + bytes([proto]))

    def raw(self, data):
        self.b += data
        return self

    def glob(self, module, name):
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def s(self, text):  # BINUNICODE
        data = text.encode("utf-8")
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def by(self, data):  # SHORT_BINBYTES / BINBYTES (protocol 3+)
        if len(data) < 256:
            return self.raw(b"C" + bytes([len(data)]) + data)
        return self.raw(b"B" + struct.pack("<I", len(data)) + data)

    def i(self, n):
        if 0 <= n < 256:
            return self.raw(b"K" + bytes([n]))
        if -(2**31) <= n < 2**31:
            return self.raw(b"J" + struct.pack("<i", n))
        data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(data)]) + data)

    def none(self):
        return self.raw(b"N")

    def true(self):
        return self.raw(b"\x88")

    def false(self):
        return self.raw(b"\x89")

    def mark(self):
        return self.raw(b"(")

    def tup(self):  # MARK ... TUPLE
        return self.raw(b"t")

    def t0(self):
        return self.raw(b")")

    def t1(self):
        return self.raw(b"\x85")

    def t2(self):
        return self.raw(b"\x86")

    def t3(self):
        return self.raw(b"\x87")

    def empty_dict(self):
        return self.raw(b"}")

    def empty_list(self):
        return self.raw(b"]")

    def setitem(self):
        return self.raw(b"s")

    def setitems(self):
        return self.raw(b"u")

    def append(self):
        return self.raw(b"a")

    def appends(self):
        return self.raw(b"e")

    def reduce(self):
        return self.raw(b"R")

    def build(self):
        return self.raw(b"b")

    def put(self, n):
        return self.raw(b"r" + struct.pack("<I", n))

    def get(self, n):
        return self.raw(b"j" + struct.pack("<I", n))

    def pop(self):
        return self.raw(b"0")

    def stop(self):
        return self.raw(b".")

    def bytes(self):
        return bytes(self.b)

    # numpy helpers -----------------------------------------------------------------
    def dtype(self, typestr):
        """numpy.dtype(typestr, False, True), no BUILD."""
        return self.glob("numpy", "dtype").s(typestr).false().true().t3().reduce()

    def plain_dtype(self, typestr, order, flags=0):
        """A fixed-size dtype with its genuine state."""
        self.dtype(typestr)
        return self.mark().i(3).s(order).none().none().none().i(-1).i(-1).i(flags).tup().build()
