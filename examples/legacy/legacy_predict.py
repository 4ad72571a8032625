#!/usr/bin/env python3
"""Batch scoring with the churn classifier.

    python legacy_predict.py checkpoints/churn.pt 0.1,0.5,3,1 0.9,0.2,1,0

Prints one line per row: the row, the predicted class and its probability.
"""
import sys

import torch
import torch.nn as nn


class ChurnClassifier(nn.Module):
    def __init__(self, in_features, hidden, n_classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.net(x)


def load_checkpoint(path):
    # torch 2.6 changed the default to weights_only=True, which broke our old checkpoints.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    config = checkpoint["config"]
    model = ChurnClassifier(config["in_features"], config["hidden"], len(checkpoint["classes"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint["classes"]


def main():
    model, classes = load_checkpoint(sys.argv[1])
    rows = [[float(v) for v in arg.split(",")] for arg in sys.argv[2:]]
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.tensor(rows)), dim=1)
    for row, p in zip(rows, probabilities):
        best = int(p.argmax())
        print("%s -> %s (%.4f)" % (",".join("%g" % v for v in row), classes[best], p[best]))


if __name__ == "__main__":
    main()
