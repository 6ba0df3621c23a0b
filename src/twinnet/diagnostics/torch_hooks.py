"""The same per-layer statistics for a ``torch.nn.Module``, captured with hooks.

``diagnose_torch(module, x, y, loss_fn)`` runs one probe forward and backward pass with
a forward hook (input, output) and a full backward hook (dL/dinput) on every leaf
module, then computes exactly what :mod:`twinnet.diagnostics.stats` computes for the
NumPy engine, so a twinnet model and its twin (``twin.to_torch(model)``) give the same
rows. ``TorchDiagnostics`` records them from a torch training loop into the same
``diagnostics.csv`` / ``histograms.json`` files as the ``Diagnostics`` callback.

torch is imported inside the functions only: importing this module does not need it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from twinnet.diagnostics.log import DiagnosticsLog, _probe_arrays
from twinnet.diagnostics.measures import MODEL, LayerCapture, ProbeStats, _check_bins, assemble


def _numpy(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def torch_snapshot(module) -> dict[str, np.ndarray]:
    """Copies of every parameter of a torch module as NumPy arrays, by full name."""
    return {name: p.detach().cpu().numpy().copy() for name, p in module.named_parameters()}


@contextmanager
def _preserved_torch(module):
    """Restore every ``param.grad`` (the tensors themselves), buffer, the RNG state and
    ``inplace`` flags (turned off inside: full backward hooks refuse in-place outputs)."""
    import torch

    params = list(module.parameters())
    grads = [p.grad for p in params]
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    inplace = [(m, m.inplace) for m in module.modules() if getattr(m, "inplace", False) is True]
    for m, _ in inplace:
        m.inplace = False
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        for m, flag in inplace:
            m.inplace = flag


def diagnose_torch(
    module, x, y, loss_fn, histogram_bins: int = 30, before: dict | None = None
) -> ProbeStats:
    """Per-layer statistics of a torch module on (x, y), the rows of ``collect_stats``.

    ``x``, ``y``: tensors or arrays (converted to the module's dtype and device; integer
    targets stay integer). ``loss_fn``: a torch loss, ``loss_fn(output, y) -> tensor``
    (mean over the batch, like twinnet's losses). ``before``: :func:`torch_snapshot`
    from just before the last optimiser step, for the update ratios.

    Nothing changes in the module: gradients, buffers and the RNG state are restored.
    A module with an ``inplace=True`` activation runs it out of place during the probe.
    """
    import torch

    _check_bins(histogram_bins)
    first = next(module.parameters(), None)
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    device = first.device if first is not None else torch.device("cpu")
    x = torch.as_tensor(x, device=device)
    # no gradient for the data itself (as in the NumPy path): layers fed by it get none
    x = (x.to(dtype) if x.is_floating_point() else x).detach()
    y = torch.as_tensor(y, device=device)
    if y.is_floating_point():
        y = y.to(dtype)

    leaves = [
        (name or MODEL, m) for name, m in module.named_modules() if next(m.children(), None) is None
    ]
    captures = [LayerCapture(name, type(m).__name__, histogram_bins) for name, m in leaves]
    handles = []

    def forward_hook(cap):
        def hook(_m, inputs, output):
            x = _numpy(inputs[0]) if inputs and torch.is_tensor(inputs[0]) else None
            cap.see_forward(x, _numpy(output) if torch.is_tensor(output) else None)

        return hook

    def backward_hook(cap):
        def hook(_m, grad_input, _grad_output):
            cap.see_backward(_numpy(grad_input[0]) if grad_input else None)

        return hook

    with _preserved_torch(module):
        try:
            for cap, (_, m) in zip(captures, leaves, strict=True):
                handles.append(m.register_forward_hook(forward_hook(cap)))
                handles.append(m.register_full_backward_hook(backward_hook(cap)))
            with torch.enable_grad(), warnings.catch_warnings():
                # a layer fed by the data (which needs no gradient) gets grad_input None
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                out = module(x)
                loss = loss_fn(out, y)
                loss.backward()
            for cap, (_, m) in zip(captures, leaves, strict=True):
                cap.params = {
                    n: (_numpy(p), _numpy(p.grad)) for n, p in m.named_parameters(recurse=False)
                }
        finally:
            for h in handles:
                h.remove()
        return assemble(captures, float(loss.detach()), before, type(module).__name__)


class TorchDiagnostics:
    """Record diagnostics from a PyTorch training loop into a run folder.

    The same files and rows as the ``Diagnostics`` callback (``diagnostics.csv``,
    ``histograms.json``), so ``write_report`` works on the folder::

        diag = TorchDiagnostics(run_dir, module, loss_fn, every=50, probe=(x_val, y_val))
        for step, (xb, yb) in enumerate(batches, start=1):
            loss = loss_fn(module(xb), yb); opt.zero_grad(); loss.backward()
            diag.before_step(step)        # copies the weights when this step is recorded
            opt.step()
            diag.after_step(step, epoch)  # records at step 1 and every ``every`` steps
        diag.finish(step, epoch)          # the last step, if not recorded yet

    ``state_dict``/``load_state_dict`` make it resumable like the callback.
    """

    def __init__(
        self,
        run_dir,
        module,
        loss_fn,
        every: int = 50,
        probe=None,
        probe_size: int = 512,
        histogram_bins: int = 30,
    ):
        for label, value in (
            ("every", every),
            ("probe_size", probe_size),
            ("histogram_bins", histogram_bins),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"TorchDiagnostics {label} must be a positive integer, got {value!r}"
                )
        if probe is None:
            raise ValueError(
                "TorchDiagnostics needs a probe: a dataset with .x/.y or an (x, y) tuple"
            )
        self.module, self.loss_fn, self.every = module, loss_fn, int(every)
        self.histogram_bins = int(histogram_bins)
        if isinstance(probe, tuple | list) and len(probe) == 2:
            probe = tuple(_numpy(p) if hasattr(p, "detach") else p for p in probe)
        self.probe = _probe_arrays(probe, int(probe_size))
        self.log = DiagnosticsLog(Path(run_dir), self.histogram_bins)
        self._before, self._before_step, self._seen_step = None, -1, 0

    def due(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def before_step(self, step: int) -> None:
        """Call just before ``optimizer.step()`` of step ``step`` (1-based)."""
        if self.due(step):
            self._before, self._before_step = torch_snapshot(self.module), step

    def after_step(self, step: int, epoch: int = 1) -> ProbeStats | None:
        """Call after ``optimizer.step()``; records when ``step`` is due."""
        self._seen_step = step
        return self.record(step, epoch) if self.due(step) else None

    def finish(self, step: int, epoch: int = 1) -> ProbeStats | None:
        """Record the final step unless it was recorded already."""
        if step < 1 or self.log.last_step == step:
            return None
        return self.record(step, epoch)

    def record(self, step: int, epoch: int = 1) -> ProbeStats:
        before = self._before if self._before_step == step else None
        x, y = self.probe
        stats = diagnose_torch(self.module, x, y, self.loss_fn, self.histogram_bins, before=before)
        self._before, self._before_step = None, -1
        self.log.add(step, epoch, stats)
        self.log.run_dir.mkdir(parents=True, exist_ok=True)
        self.log.save()
        return stats

    @property
    def rows(self) -> list[dict]:
        return self.log.rows

    def state_dict(self) -> dict:
        return {"step": int(self._seen_step)}

    def load_state_dict(self, state: dict) -> None:
        step = int(state["step"])
        self.log.resume_at(step)
        self._seen_step, self._before, self._before_step = step, None, -1
