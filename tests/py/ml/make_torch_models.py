"""Writes the torch models the example tests load, each with a malicious twin whose payload
would create OUTDIR/markers/<file>:

    python make_torch_models.py OUTDIR

serve_model.pt (zip) and serve_model_legacy.pt (legacy format): the demo's linear-3 model as a
dict of tensors, for examples/serve.py; serve_module.pt: a whole nn.Module (mlmodels.TinyNet);
churn.pt: a checkpoint for examples/legacy/legacy_predict.py.
"""
import collections
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "examples", "legacy"))

import legacy_predict  # noqa: E402
import mlmodels  # noqa: E402
from mlfixtures import Backdoor  # noqa: E402


def main():
    outdir = os.path.abspath(sys.argv[1])
    markers = os.path.join(outdir, "markers")
    os.makedirs(markers, exist_ok=True)

    def path(name):
        return os.path.join(outdir, name)

    def evil(name):
        return Backdoor(os.path.join(markers, name))

    linear = collections.OrderedDict(name="linear-3-torch", weight=torch.tensor([0.5, -1.25, 2.0]),
                                     bias=torch.tensor(0.25))
    torch.save(linear, path("serve_model.pt"))
    torch.save(linear, path("serve_model_legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(collections.OrderedDict(linear, name=evil("serve_evil.pt")), path("serve_evil.pt"))
    torch.save(mlmodels.tiny_net(), path("serve_module.pt"))

    torch.manual_seed(0)
    model = legacy_predict.ChurnClassifier(4, 16, 2)
    checkpoint = {"state_dict": model.state_dict(), "config": {"in_features": 4, "hidden": 16},
                  "classes": ["stays", "churns"], "epoch": 12}
    torch.save(checkpoint, path("churn.pt"))
    torch.save(dict(checkpoint, epoch=evil("churn_evil.pt")), path("churn_evil.pt"))
    print("wrote", sorted(os.listdir(outdir)))


if __name__ == "__main__":
    main()
