"""Normalisation layers: BatchNorm1d (over the batch) and LayerNorm (over features)."""

from __future__ import annotations

import numpy as np

from twinnet.nn.module import Module, check_cached, check_grad, check_input
from twinnet.nn.parameter import Parameter


class BatchNorm1d(Module):
    """Batch normalisation over the batch axis of a (B, C) input (Ioffe & Szegedy, 2015).

    Train mode: normalise with the batch mean and (biased) variance, and update the
    running estimates ``running = (1 - momentum) * running + momentum * batch`` (the
    running variance uses the unbiased batch variance, as PyTorch does).
    Eval mode: normalise with the running estimates.
    Then ``y = gamma * x_hat + beta`` (``weight`` = gamma, ``bias`` = beta).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        if not isinstance(num_features, int | np.integer) or num_features < 1:
            raise ValueError(f"{type(self).__name__} num_features must be a positive integer, got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"{type(self).__name__} eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__} momentum must be in [0, 1], got {momentum}")
        self.num_features = int(num_features)
        # the input must match the parameters' dtype; without any arrays, any float dtype works
        self.dtype = np.dtype(dtype) if affine or track_running_stats else None
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x, self.num_features, dtype=self.dtype)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            n = x.shape[0]
            if n < 2:
                raise ValueError(
                    f"{self!r} needs more than 1 example per batch in training mode, got input "
                    f"of shape {x.shape} (use eval() or a larger batch)"
                )
            mean = x.mean(axis=0)  # (C,)
            var = x.var(axis=0)  # (C,) biased, used to normalise
            if self.training and self.track_running_stats:
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += m * var * (n / (n - 1))  # unbiased
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        # x_hat = (x - mean) / sqrt(var + eps)
        x_hat = (x - mean) * inv_std  # (B, C)
        self._cache = (x_hat, inv_std, use_batch_stats)
        if self.affine:
            # y = gamma x_hat + beta
            return x_hat * self.weight.data + self.bias.data
        return x_hat

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._cache)
        x_hat, inv_std, used_batch_stats = self._cache
        check_grad(self, grad_out, x_hat.shape)
        if self.affine:
            # dL/dgamma = sum_b dL/dy * x_hat,  dL/dbeta = sum_b dL/dy
            self.weight.grad += (grad_out * x_hat).sum(axis=0)
            self.bias.grad += grad_out.sum(axis=0)
            d_xhat = grad_out * self.weight.data
        else:
            d_xhat = grad_out
        if not used_batch_stats:
            # running statistics are constants: dL/dx = dL/dx_hat / sqrt(var + eps)
            return d_xhat * inv_std
        n = x_hat.shape[0]
        # mean and var depend on every x in the batch, which adds two correction terms:
        # dL/dx = (1/N) / sqrt(var+eps) * (N dL/dx_hat - sum dL/dx_hat - x_hat sum(dL/dx_hat x_hat))
        return (inv_std / n) * (
            n * d_xhat - d_xhat.sum(axis=0) - x_hat * (d_xhat * x_hat).sum(axis=0)
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class LayerNorm(Module):
    """Layer normalisation over the last axis (Ba et al., 2016), affine by default.

    Each example is normalised by its own mean and (biased) variance over its
    ``normalized_shape`` features, so it behaves the same in train and eval mode.
    """

    def __init__(
        self,
        normalized_shape: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        if isinstance(normalized_shape, tuple | list):
            if len(normalized_shape) != 1:
                raise ValueError(
                    f"LayerNorm normalises over the last axis only; got normalized_shape={normalized_shape}"
                )
            normalized_shape = normalized_shape[0]
        if not isinstance(normalized_shape, int | np.integer) or normalized_shape < 1:
            raise ValueError(f"LayerNorm normalized_shape must be a positive integer, got {normalized_shape!r}")
        if eps <= 0:
            raise ValueError(f"LayerNorm eps must be > 0, got {eps}")
        self.normalized_shape = int(normalized_shape)
        # the input must match the parameters' dtype; without any, any float dtype works
        self.dtype = np.dtype(dtype) if elementwise_affine else None
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(normalized_shape, dtype=dtype)) if bias else None
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x, self.normalized_shape, ndim=None, dtype=self.dtype)
        mean = x.mean(axis=-1, keepdims=True)  # (B, 1)
        var = x.var(axis=-1, keepdims=True)  # (B, 1)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        # x_hat = (x - mean) / sqrt(var + eps), per example
        x_hat = (x - mean) * inv_std  # (B, D)
        self._cache = (x_hat, inv_std)
        if not self.elementwise_affine:
            return x_hat
        # y = gamma x_hat + beta
        y = x_hat * self.weight.data
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._cache)
        x_hat, inv_std = self._cache
        check_grad(self, grad_out, x_hat.shape)
        batch_axes = tuple(range(grad_out.ndim - 1))
        if self.elementwise_affine:
            # dL/dgamma = sum over examples of dL/dy * x_hat;  dL/dbeta = sum of dL/dy
            self.weight.grad += (grad_out * x_hat).sum(axis=batch_axes)
            if self.bias is not None:
                self.bias.grad += grad_out.sum(axis=batch_axes)
            d_xhat = grad_out * self.weight.data
        else:
            d_xhat = grad_out
        d = x_hat.shape[-1]
        # dL/dx = (1/D) / sqrt(var+eps) * (D dL/dx_hat - sum dL/dx_hat - x_hat sum(dL/dx_hat x_hat)), sums over features
        return (inv_std / d) * (
            d * d_xhat
            - d_xhat.sum(axis=-1, keepdims=True)
            - x_hat * (d_xhat * x_hat).sum(axis=-1, keepdims=True)
        )

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
