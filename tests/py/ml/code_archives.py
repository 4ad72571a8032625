"""Code-bearing torch archives (issue 12): a TorchScript model and a torch.package whose code
creates a marker file as they load. One JSON line per case.

Usage: code_archives.py make DIR MARKER_DIR    writes DIR/ts_model.pt and DIR/package.pt
       code_archives.py load DIR MARKER_DIR    loads them: TS-1, TS-2, PK-1

TS-1  torch.jit.load of the TorchScript archive: its scripted __setstate__ creates the marker
      (torch.from_file with shared=True creates the file).
TS-2  torch.load(weights_only=False) of the same archive, which torch hands to torch.jit.load.
PK-1  PackageImporter.load_pickle of a pickle that names only collections.OrderedDict: the
      package's own `collections` module runs, creates the marker, and shadows the real one.
"""

import collections
import json
import os
import sys
import warnings
from typing import Tuple

import torch

warnings.simplefilter("ignore")


def marker_path(markers, case):
    return os.path.join(markers, case)


class Touching(torch.nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.w = torch.ones(2)

    def forward(self, x):
        return x + self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, torch.Tensor, bool]:
        return (self.path, self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, torch.Tensor, bool]) -> None:
        self.path = state[0]
        self.w = state[1]
        self.training = state[2]
        # Used below so TorchScript keeps the call: shared=True creates the file.
        touched = torch.from_file(self.path, True, 8, dtype=torch.uint8)
        self.w = self.w + touched[:2].float() * 0


def make(directory, markers):
    # One archive per TorchScript case, each touching its own marker.
    for case in ["TS-1", "TS-2"]:
        scripted = torch.jit.script(Touching(marker_path(markers, case)))
        torch.jit.save(scripted, os.path.join(directory, case + ".pt"))
    from torch.package import PackageExporter

    with PackageExporter(os.path.join(directory, "package.pt")) as exporter:
        exporter.save_source_string(
            "collections",
            "open(%r, 'w').close()\nfrom _collections import OrderedDict\n"
            % marker_path(markers, "PK-1"),
        )
        exporter.intern("collections")
        exporter.save_pickle("res", "obj.pkl", collections.OrderedDict(weights=[1, 2]))
    print(json.dumps({"made": sorted(os.listdir(directory))}))


def outcome(call):
    try:
        call()
        return {"outcome": "loaded"}
    except Exception as exc:  # noqa: BLE001 - every outcome is reported
        kind = type(exc)
        return {
            "outcome": "refused" if kind.__name__ == "UnsafeFileError" else "failed",
            "type": "%s.%s" % (kind.__module__, kind.__qualname__),
            "module": getattr(exc, "module", None),
            "name": getattr(exc, "name", None),
            "reason": getattr(exc, "reason", None),
            "message": str(exc),
        }


def load(directory, markers):
    from torch.package import PackageImporter

    cases = [
        ("TS-1", lambda: torch.jit.load(os.path.join(directory, "TS-1.pt"))),
        ("TS-2", lambda: torch.load(os.path.join(directory, "TS-2.pt"), weights_only=False)),
        (
            "PK-1",
            lambda: PackageImporter(os.path.join(directory, "package.pt")).load_pickle(
                "res", "obj.pkl"
            ),
        ),
    ]
    for case, call in cases:
        result = outcome(call)
        result.update(case=case, marker=os.path.exists(marker_path(markers, case)))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    action, directory, markers = sys.argv[1:4]
    {"make": make, "load": load}[action](directory, markers)
