"""twinnet: neural networks from scratch in NumPy, built twice.

Every layer has an explicit forward and backward you can read; every model has a
PyTorch twin (``twinnet.twin``, optional) that proves those gradients right.
Importing twinnet never imports torch or matplotlib.
"""

from twinnet import check, losses, nn, optim

__version__ = "0.1.0"

__all__ = ["check", "losses", "nn", "optim", "__version__"]
