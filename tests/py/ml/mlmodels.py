"""A torch model class importable by name, as a pickle of a whole `nn.Module` refers to it
(`mlmodels.TinyNet`)."""
import torch


class TinyNet(torch.nn.Module):
    """Parameters and buffers (BatchNorm's running stats and its int64 counter)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(4, 8),
            torch.nn.BatchNorm1d(8),
            torch.nn.ReLU(),
            torch.nn.Linear(8, 2),
        )

    def forward(self, x):
        return self.body(x)


def tiny_net():
    """A trained-looking TinyNet in eval mode, the same on every call."""
    torch.manual_seed(0)
    model = TinyNet()
    model.train()
    model(torch.randn(16, 4))  # moves BatchNorm's running stats away from their defaults
    model.eval()
    return model
