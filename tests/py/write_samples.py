"""Writes the attack corpus and the benign samples as files, for the static scanner's tests.

    python write_samples.py OUTDIR

OUTDIR/malicious/AT-nn.pkl: every corpus payload. OUTDIR/benign/protoN.pkl: the benign sample
of benign_roundtrip.py at every protocol.
"""
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benign_roundtrip  # noqa: E402
import corpus  # noqa: E402


def main():
    out = sys.argv[1]
    for kind in ("malicious", "benign"):
        os.makedirs(os.path.join(out, kind), exist_ok=True)
    markers = os.path.join(out, "markers")
    for case_id, _description, payload, _marker in corpus.cases(markers):
        with open(os.path.join(out, "malicious", case_id + ".pkl"), "wb") as f:
            f.write(payload)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with open(os.path.join(out, "benign", "proto%d.pkl" % protocol), "wb") as f:
            pickle.dump(benign_roundtrip.sample(), f, protocol=protocol)


if __name__ == "__main__":
    main()
