"""The companion notebooks run top to bottom, and their exercise checks can fail.

- ``notebooks/theory.ipynb`` executes without an error (with PyTorch, its twin checks
  assert; without, they are skipped: a second run hides torch from the kernel).
- ``notebooks/exercises_solutions.ipynb`` executes with ``TWINNET_STRICT_CHECKS=1``, so a
  check that does not print "right" raises, and all ten report right.
- ``notebooks/exercises.ipynb`` (the unsolved stubs) executes, and all ten checks report
  wrong, as they must before the learner writes anything.
- The checks in ``notebooks/_checks.py`` catch typical mistakes with the right hint.
- ``notebooks/convolution.ipynb`` executes: its unsolved exercises report "not yet", its
  solutions "right", and a typical mistake "wrong".

The kernel runs this interpreter (``sys.executable``) through a kernelspec written to a
temporary folder, whatever kernels the machine has installed. Needs the ``docs`` extra
(nbclient, nbformat, ipykernel): skipped with a reason otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "twinnet-test-python"
MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]
needs_jupyter = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install -e '.[docs]')"
)
EXERCISES = 10


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec for this very interpreter, found first through JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "twinnet tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # connection files and the IPython profile in the test's own folder, not in $HOME
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the notebooks switch to inline themselves
    monkeypatch.delenv("TWINNET_STRICT_CHECKS", raising=False)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one BLAS/torch thread per kernel: two xdist workers already share two cores
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.setenv(var, "1")
    return monkeypatch


def run_notebook(name: str, timeout: int = 180):
    """Execute notebooks/<name> in a fresh kernel (cwd notebooks/); return the notebook.
    Any cell that raises fails the test with nbclient's CellExecutionError."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return nb


def stream_text(nb) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def results(nb) -> dict:
    """The RESULTS JSON line printed by ``_checks.summary()`` in the last cell."""
    lines = [ln for ln in stream_text(nb).splitlines() if ln.startswith("RESULTS ")]
    assert lines, "the notebook printed no RESULTS line (is _checks.summary() the last cell?)"
    return json.loads(lines[-1][len("RESULTS ") :])


def images(nb) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


@needs_jupyter
def test_theory_notebook_runs(kernel_env):
    nb = run_notebook("theory.ipynb")
    text = stream_text(nb)
    assert f"kernel: {sys.executable}" in text  # the kernel ran the interpreter under test
    assert images(nb) >= 4, "the plots should render inline"
    if importlib.util.find_spec("torch") is not None:
        assert "twin check" in text and "PASSED" in text
        assert "twin check skipped" not in text


@needs_jupyter
def test_theory_notebook_runs_without_torch(kernel_env, tmp_path):
    # a `torch` package that refuses to import, first on the kernel's path
    fake = tmp_path / "no_torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch hidden by the test')\n")
    path = os.pathsep.join(p for p in (str(fake.parent), os.environ.get("PYTHONPATH", "")) if p)
    kernel_env.setenv("PYTHONPATH", path)
    nb = run_notebook("theory.ipynb")
    text = stream_text(nb)
    assert "PyTorch twin: not installed" in text
    assert "twin check skipped" in text
    assert "max |twinnet - torch|" not in text


@needs_jupyter
def test_solutions_pass_every_check(kernel_env):
    kernel_env.setenv("TWINNET_STRICT_CHECKS", "1")  # a wrong answer raises: the run fails
    nb = run_notebook("exercises_solutions.ipynb")
    res = results(nb)
    assert len(res) == EXERCISES
    wrong = {k: r["message"] for k, r in res.items() if not r["ok"]}
    assert not wrong, wrong


@needs_jupyter
def test_unsolved_exercises_fail_every_check(kernel_env):
    nb = run_notebook("exercises.ipynb")  # stubs raise NotImplementedError inside the checks
    res = results(nb)
    assert len(res) == EXERCISES
    assert all(not r["ok"] for r in res.values()), res
    assert all(r["message"].startswith("wrong: ") for r in res.values())


@needs_jupyter
def test_convolution_notebook_runs_and_its_checks_can_fail(kernel_env):
    nb = run_notebook("convolution.ipynb")
    text = stream_text(nb)
    assert "max |Conv2d - loops| = 0.0" in text and "gradcheck (stride 2, padding 1, groups 2): PASSED" in text
    assert images(nb) >= 1  # the filters of the trained CNN
    if importlib.util.find_spec("torch") is not None:
        assert "twin check LeNet-5: PASSED" in text
    res = results(nb)  # {name: message}
    assert [res[f"exercise {i}"] for i in range(1, 6)] == ["not yet: write the function above"] * 5
    assert [res[f"solution {i}"] for i in range(1, 6)] == ["right"] * 5
    assert res["mistake 5"].startswith("wrong: ")  # a typical mistake is caught
    committed = _load_notebook_json("convolution.ipynb")  # committed without outputs
    assert all(not c.get("outputs") for c in committed["cells"] if c["cell_type"] == "code")


def _load_notebook_json(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text())


def test_exercises_and_solutions_differ_only_in_the_answers():
    ex, sol = _load_notebook_json("exercises.ipynb"), _load_notebook_json("exercises_solutions.ipynb")
    assert len(ex["cells"]) == len(sol["cells"])
    tasks = 0
    for i, (a, b) in enumerate(zip(ex["cells"], sol["cells"], strict=True)):
        tagged = "exercise" in a.get("metadata", {}).get("tags", [])
        assert tagged == ("exercise" in b.get("metadata", {}).get("tags", [])), f"cell {i}"
        if tagged:
            tasks += 1
            assert "raise NotImplementedError" in "".join(a["source"]), f"cell {i} should be a stub"
            assert "raise NotImplementedError" not in "".join(b["source"]), f"cell {i} is unsolved"
        elif i > 0:  # the title differs
            assert a["source"] == b["source"], f"cell {i} differs between the two notebooks"
    assert tasks == EXERCISES
    for nb in (ex, sol, _load_notebook_json("theory.ipynb")):  # committed without outputs
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


# -- the checks themselves, without a kernel: right answers pass, typical mistakes fail ----
@pytest.fixture
def checks(monkeypatch):
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    monkeypatch.delenv("TWINNET_STRICT_CHECKS", raising=False)
    import _checks

    _checks.RESULTS.clear()
    return _checks


def _last(checks) -> str:
    return list(checks.RESULTS.values())[-1]["message"]


def test_checks_accept_right_answers(checks):
    assert checks.check_affine(lambda x, w, b: x @ w.T + b)
    assert checks.check_relu(lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0)
    assert checks.check_affine_backward(lambda x, w, g: (g @ w, g.T @ x, g.sum(0)))
    assert checks.check_init_scales(lambda i, o: np.sqrt(2 / (i + o)), lambda i: np.sqrt(2 / i))


@pytest.mark.parametrize(
    "case, hint",
    [
        ("no_bias", "add the bias"),
        ("relu_kink", "exactly x = 0"),
        ("no_hidden_relu", "no ReLU between"),
        ("unstable_ce", "subtract each row's max"),
        ("sum_ce", "sum over the batch"),
        ("db_mean", "SUM of grad_out"),
        ("dw_transposed", "must match W"),
        ("one_sided", "centred difference"),
        ("variance", "standard deviation"),
        ("dropout_not_inverted", "1/(1-p)"),
        ("dropout_keep_p", "probability of DROPPING"),
        ("layernorm_unbiased", "biased variance"),
        ("layernorm_no_eps", "add eps"),
        ("always_healthy", "not"),
        ("wrong_layer", "where it starts"),
    ],
)
def test_checks_catch_typical_mistakes(checks, case, hint):
    def one_sided(f, x, eps=1e-6):
        g, f0 = np.zeros_like(x), f(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            g[i] = (f(x) - f0) / eps
            x[i] = old
        return g

    def log_softmax_naive(z, y):
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return float(-np.log(p[np.arange(len(y)), y]).mean())

    def log_softmax_sum(z, y):
        s = z - z.max(1, keepdims=True)
        lp = s - np.log(np.exp(s).sum(1, keepdims=True))
        return float(-lp[np.arange(len(y)), y].sum())

    def dead_in_wrong_layer(model, loss_fn, x, y):
        return {"cause": "dead_relu", "layer": "7"}

    def always_healthy(model, loss_fn, x, y):
        return {"cause": "healthy", "layer": None}

    run = {
        "no_bias": lambda: checks.check_affine(lambda x, w, b: x @ w.T),
        "relu_kink": lambda: checks.check_relu(lambda x: np.maximum(x, 0), lambda x: (x >= 0) * 1.0),
        "no_hidden_relu": lambda: checks.check_two_layer(
            lambda x, w1, b1, w2, b2: (x @ w1.T + b1) @ w2.T + b2
        ),
        "unstable_ce": lambda: checks.check_softmax_cross_entropy(log_softmax_naive),
        "sum_ce": lambda: checks.check_softmax_cross_entropy(log_softmax_sum),
        "db_mean": lambda: checks.check_affine_backward(lambda x, w, g: (g @ w, g.T @ x, g.mean(0))),
        "dw_transposed": lambda: checks.check_affine_backward(lambda x, w, g: (g @ w, x.T @ g, g.sum(0))),
        "one_sided": lambda: checks.check_numerical_gradient(one_sided),
        "variance": lambda: checks.check_init_scales(lambda i, o: 2 / (i + o), lambda i: 2 / i),
        "dropout_not_inverted": lambda: checks.check_dropout(
            lambda x, p, rng: (lambda m: (x * m, m))((rng.random(x.shape) >= p) * 1.0)
        ),
        "dropout_keep_p": lambda: checks.check_dropout(
            lambda x, p, rng: (lambda m: (x * m, m))((rng.random(x.shape) < p) / (1 - p))
        ),
        "layernorm_unbiased": lambda: checks.check_layernorm(
            lambda x, g, b, eps=1e-5: g * (x - x.mean()) / np.sqrt(x.var(ddof=1) + eps) + b
        ),
        "layernorm_no_eps": lambda: checks.check_layernorm(
            lambda x, g, b, eps=1e-5: g * (x - x.mean()) / np.sqrt(x.var()) + b
        ),
        "always_healthy": lambda: checks.check_debugging(always_healthy),
        "wrong_layer": lambda: checks.check_debugging(dead_in_wrong_layer),
    }[case]
    with np.errstate(all="ignore"):
        assert run() is False
    message = _last(checks)
    assert message.startswith("wrong: ") and hint in message, message


def test_strict_mode_raises(checks, monkeypatch):
    monkeypatch.setenv("TWINNET_STRICT_CHECKS", "1")
    with pytest.raises(AssertionError, match="01_affine: wrong"):
        checks.check_affine(lambda x, w, b: None)
