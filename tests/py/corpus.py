"""Hand-assembled malicious pickles. Stdlib only; runs on CPython 3.8-3.13.

Each case's payload, if it ever ran, would create its marker file, so a test can prove the
payload did NOT run by checking that the marker does not exist (not only that loading raised).
"""
import pickle
import struct

# (code, module, name) registered with copyreg.add_extension by the loader before EXT cases.
EXTENSIONS = [(0x41, "os", "system"), (0x4142, "posix", "system"), (0x414243, "subprocess", "getoutput")]


def _s0(text):
    """A protocol-0 STRING argument line."""
    return ("S" + repr(text) + "\n").encode()


def _u(text):
    """SHORT_BINUNICODE (protocol 4)."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _bu(text):
    """BINUNICODE (protocol 1+)."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _stack_global(module, name, proto=4, memo=False):
    body = _u(module) + (b"\x94" if memo else b"") + _u(name) + (b"\x94" if memo else b"") + b"\x93"
    return bytes([0x80, proto]) + body


def _call1(arg):
    """TUPLE1 + REDUCE + STOP on a callable already on the stack."""
    return _bu(arg) + b"\x85R."


# Cases whose payload has no side effect: they check a refusal, and have no marker to create.
NO_SIDE_EFFECT = {"AT-23", "AT-24", "AT-25"}


def cases(marker_dir):
    """Yields (case_id, description, payload bytes, marker path)."""
    out = []

    def add(case_id, description, build):
        marker = "%s/%s" % (marker_dir, case_id)
        out.append((case_id, description, build(marker), marker))

    touch = lambda m: "touch " + m
    open_code = lambda m: "open(%r, 'w').close()" % m

    add("AT-01", "os.system through GLOBAL, protocol 0",
        lambda m: b"cos\nsystem\n(" + _s0(touch(m)) + b"tR.")
    add("AT-02", "posix.system through GLOBAL, protocol 2",
        lambda m: b"\x80\x02cposix\nsystem\n" + _call1(touch(m)))
    add("AT-03", "subprocess.Popen through STACK_GLOBAL, protocol 4",
        lambda m: _stack_global("subprocess", "Popen") + b"(" + _bu("touch") + _bu(m) + b"l\x85R.")
    add("AT-04", "builtins.eval through STACK_GLOBAL, protocol 4",
        lambda m: _stack_global("builtins", "eval") + _call1(open_code(m)))
    add("AT-05", "builtins.exec through STACK_GLOBAL, protocol 5",
        lambda m: _stack_global("builtins", "exec", proto=5) + _call1(open_code(m)))
    add("AT-06", "getattr(__import__('os'), 'system') gadget, Python 2 names, protocol 0",
        lambda m: b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'os'\ntRS'system'\ntR("
        + _s0(touch(m)) + b"tR.")
    add("AT-07", "__builtin__.eval, Python 2 name, protocol 1",
        lambda m: b"c__builtin__\neval\n(" + _bu(open_code(m)) + b"tR.")
    add("AT-08", "INST os.system, protocol 0",
        lambda m: b"(" + _s0(touch(m)) + b"ios\nsystem\n.")
    add("AT-09", "OBJ posix.system, protocol 1",
        lambda m: b"(cposix\nsystem\n" + _bu(touch(m)) + b"o.")
    add("AT-10", "EXT1 code registered for os.system",
        lambda m: b"\x80\x02\x82\x41" + _call1(touch(m)))
    add("AT-11", "EXT2 code registered for posix.system",
        lambda m: b"\x80\x02\x83" + struct.pack("<H", 0x4142) + _call1(touch(m)))
    add("AT-12", "EXT4 code registered for subprocess.getoutput",
        lambda m: b"\x80\x02\x84" + struct.pack("<i", 0x414243) + _call1(touch(m)))
    add("AT-13", "dotted qualname posixpath:os.system, protocol 4",
        lambda m: _stack_global("posixpath", "os.system") + _call1(touch(m)))
    add("AT-14", "pickle.loads as a gadget around an os.system pickle",
        lambda m: b"\x80\x02cpickle\nloads\nC" + bytes([len(b"cos\nsystem\n(" + _s0(touch(m)) + b"tR.")])
        + b"cos\nsystem\n(" + _s0(touch(m)) + b"tR." + b"\x85R.")
    add("AT-15", "_pickle.loads as a gadget, protocol 4",
        lambda m: _stack_global("_pickle", "loads") + b"C" + bytes([len(b"cos\nsystem\n(" + _s0(touch(m)) + b"tR.")])
        + b"cos\nsystem\n(" + _s0(touch(m)) + b"tR." + b"\x85R.")
    add("AT-16", "memoized STACK_GLOBAL strings (BINPUT/BINGET) for os.system",
        lambda m: b"\x80\x04" + _u("os") + b"\x94" + _u("system") + b"\x94h\x00h\x01\x93" + _call1(touch(m)))
    add("AT-17", "commands.getoutput, a Python 2 module mapped to subprocess",
        lambda m: b"ccommands\ngetoutput\n(" + _s0(touch(m)) + b"tR.")
    add("AT-18", "pydoc.pipepager runs a shell command",
        lambda m: b"\x80\x02cpydoc\npipepager\n" + _bu("x") + _bu(touch(m)) + b"\x86R.")
    add("AT-19", "builtins.compile + exec chain",
        lambda m: _stack_global("builtins", "exec") + b"\x8c\x08builtins\x8c\x07compile\x93"
        + _bu(open_code(m)) + _bu("<x>") + _bu("exec") + b"\x87R\x85R.")
    add("AT-20", "timeit.timeit runs a code string (as its setup, run once)",
        lambda m: b"\x80\x02ctimeit\ntimeit\n" + _bu("pass") + _bu(open_code(m)) + b"\x86R.")
    add("AT-21", "functools.partial around os.system",
        lambda m: b"\x80\x02cfunctools\npartial\ncos\nsystem\n" + _bu(touch(m)) + b"\x86R)R.")
    add("AT-22", "os.popen through GLOBAL, protocol 3",
        lambda m: b"\x80\x03cos\npopen\n" + _call1(touch(m)))
    add("AT-23", "unlisted module that is not hard-denied: shlex.split is refused by default",
        lambda m: b"\x80\x02cshlex\nsplit\n" + _call1(m))
    add("AT-24", "allowlisted module, non-allowlisted dotted name: collections:OrderedDict.fromkeys",
        lambda m: _stack_global("collections", "OrderedDict.fromkeys") + _call1(m))
    add("AT-25", "builtins.getattr on an allowlisted class",
        lambda m: b"\x80\x02cbuiltins\ngetattr\ncbuiltins\nset\n" + _bu("__init__") + b"\x86R.")
    return out
