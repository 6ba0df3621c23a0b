"""Layers with explicit forward and backward passes (the NumPy engine)."""

from twinnet.nn import init
from twinnet.nn.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh
from twinnet.nn.dropout import Dropout
from twinnet.nn.linear import Linear
from twinnet.nn.module import Module, Sequential
from twinnet.nn.normalization import BatchNorm1d, LayerNorm
from twinnet.nn.parameter import Parameter
from twinnet.nn.swiglu import SwiGLU

__all__ = [
    "BatchNorm1d",
    "Dropout",
    "GELU",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "SwiGLU",
    "Tanh",
    "init",
]
