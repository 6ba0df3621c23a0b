"""Layers with explicit forward and backward passes (the NumPy engine)."""

from twinnet.nn import init
from twinnet.nn.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh
from twinnet.nn.conv import Conv2d
from twinnet.nn.dropout import Dropout
from twinnet.nn.flatten import Flatten
from twinnet.nn.linear import Linear
from twinnet.nn.module import Module, Sequential
from twinnet.nn.normalization import BatchNorm1d, LayerNorm
from twinnet.nn.normalization2d import BatchNorm2d
from twinnet.nn.parameter import Parameter
from twinnet.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from twinnet.nn.residual import Residual
from twinnet.nn.swiglu import SwiGLU

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GELU",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "SwiGLU",
    "Tanh",
    "init",
]
