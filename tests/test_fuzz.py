"""Input fuzzing with hypothesis: every public entry point, thrown random shapes, dtypes,
values and argument types.

The contract: a correct result (right shape and dtype, finite for finite inputs), or a
documented exception: ValueError or TypeError (twinnet's own subclasses included:
ConfigError, DataError, CheckpointError), RuntimeError for backward before forward. Never
IndexError, KeyError, AttributeError, ZeroDivisionError, OverflowError, and never an
exception class or message from NumPy's internals (a broadcast error, a zero-size
reduction, ...) leaking out instead of a message that names the argument.
The CLI: exit 0, 1 only for a NaNGuard stop, or 2 with one line on stderr.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from twinnet import data, losses, nn
from twinnet.cli.main import main
from twinnet.config import TrainConfig

SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

# messages numpy or Python produce on their own; seeing one means a check is missing
INTERNAL_MESSAGES = (
    "operands could not be broadcast",
    "zero-size array",
    "could not convert",
    "setting an array element",
    "not supported between instances",
    "unhashable type",
    "object of type",
    "has no len",
    "negative dimensions",
    "out of bounds for axis",
    "ufunc",
    "invalid literal for int",
    "object is not iterable",
    "object is not subscriptable",
    "cannot be interpreted as an integer",
    "must be real number",
    "expected str, bytes or os.PathLike",
    "cannot reshape",
    "data type",
)


def check_error(e: BaseException, allowed=(ValueError, TypeError)) -> None:
    """Fail unless ``e`` is an allowed exception with a message of our own."""
    assert isinstance(e, allowed) and not isinstance(e, IndexError | KeyError), (
        f"{type(e).__name__}: {e}"
    )
    module = type(e).__module__
    assert module == "builtins" or module.startswith("twinnet"), (
        f"internal exception {module}.{type(e).__name__}: {e}"
    )
    message = str(e)
    leaked = [m for m in INTERNAL_MESSAGES if m in message]
    assert not leaked, f"an internal message leaked: {type(e).__name__}: {message}"


def attempt(fn, *args, allowed=(ValueError, TypeError), **kwargs):
    """(True, result) or (False, exception) after ``check_error``; the outcome is counted
    in hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - checked right here
        check_error(e, allowed)
        count(f"rejected: {type(e).__name__}")
        return False, e
    count("accepted")
    return True, result


def count(label: str) -> None:
    """A hypothesis event (counted in --hypothesis-show-statistics); a no-op outside @given."""
    with contextlib.suppress(InvalidArgument):
        event(label)


# -- random arrays ----------------------------------------------------------------------------------

DTYPES = [
    "float32",
    "float64",
    "float16",
    "int64",
    "int8",
    "uint8",
    "bool",
    "complex128",
    "object",
    "<U3",
]
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e4]


@st.composite
def arrays(draw, shapes=None, dtypes=DTYPES, features=4):
    """A numpy array of random shape, dtype and values (NaN/inf included), or a non-array."""
    if draw(st.integers(0, 14)) == 0:
        return draw(st.sampled_from([None, 3.0, "x", [[1.0, 2.0, 3.0, 4.0]], [], {"a": 1}]))
    if shapes is None:
        shapes = st.one_of(
            st.sampled_from([(), (features,), (0, features), (1, features), (3, features), (5, features),
                             (2, 3, features), (3, features + 1), (3, 0), (0,), (2, 1, 1, features)]),
            st.lists(st.integers(0, 5), max_size=4).map(tuple),
        )  # fmt: skip
    shape = draw(shapes)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.normal(scale=draw(st.sampled_from([1.0, 3.0, 100.0])), size=shape)
    n_special = draw(st.integers(0, 2)) if a.size else 0
    for _ in range(n_special):
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(SPECIALS))
    with np.errstate(all="ignore"):
        if dtype == "<U3":
            return a.astype(str).astype("<U3")
        return a.astype(dtype)


def mostly(valid, invalid):
    """Four draws in five from ``valid``: enough bad values to probe, enough good ones that
    the checks after the first one are reached too."""
    return st.sampled_from([True, True, True, True, False]).flatmap(
        lambda ok: valid if ok else invalid
    )


def finite_moderate(x) -> bool:
    return (
        isinstance(x, np.ndarray)
        and x.dtype.kind == "f"
        and bool(np.isfinite(x).all())
        and (x.size == 0 or np.abs(x).max() < 1e3)
    )


# -- nn layers ------------------------------------------------------------------------------------------

D = 4  # features of every fuzzed layer


def make_layer(name: str, dtype):
    rng = np.random.default_rng(0)
    return {
        "Linear": lambda: nn.Linear(D, 3, dtype=dtype, rng=rng),
        "Linear(nobias)": lambda: nn.Linear(D, 3, bias=False, dtype=dtype, rng=rng),
        "Sigmoid": nn.Sigmoid,
        "Tanh": nn.Tanh,
        "ReLU": nn.ReLU,
        "LeakyReLU": lambda: nn.LeakyReLU(0.2),
        "GELU": nn.GELU,
        "GELU(tanh)": lambda: nn.GELU(approximate="tanh"),
        "SiLU": nn.SiLU,
        "Softmax": nn.Softmax,
        "Softmax(dim=0)": lambda: nn.Softmax(dim=0),
        "Identity": nn.Identity,
        "SwiGLU": lambda: nn.SwiGLU(D, 5, dtype=dtype, rng=rng),
        "BatchNorm1d": lambda: nn.BatchNorm1d(D, dtype=dtype),
        "BatchNorm1d(eval)": lambda: nn.BatchNorm1d(D, dtype=dtype).eval(),
        "LayerNorm": lambda: nn.LayerNorm(D, dtype=dtype),
        "Dropout": lambda: nn.Dropout(0.5, rng=0),
        "Dropout(eval)": lambda: nn.Dropout(0.5, rng=0).eval(),
        "Sequential": lambda: nn.Sequential(nn.Linear(D, 6, dtype=dtype, rng=rng), nn.LayerNorm(6, dtype=dtype), nn.ReLU(), nn.Linear(6, 2, dtype=dtype, rng=rng)),
    }[name]()  # fmt: skip


LAYERS = [
    "Linear", "Linear(nobias)", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU", "GELU(tanh)", "SiLU",
    "Softmax", "Softmax(dim=0)", "Identity", "SwiGLU", "BatchNorm1d", "BatchNorm1d(eval)", "LayerNorm",
    "Dropout", "Dropout(eval)", "Sequential",
]  # fmt: skip
OUT_FEATURES = {"Linear": 3, "Linear(nobias)": 3, "SwiGLU": D, "Sequential": 2}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward_is_a_runtime_error(name):
    layer = make_layer(name, np.float32)
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.ones((2, D), np.float32))


@settings(SETTINGS, max_examples=300)
@given(
    name=st.sampled_from(LAYERS),
    param_dtype=st.sampled_from([np.float32, np.float64]),
    data_=st.data(),
)
def test_layers_forward_and_backward_on_random_input(name, param_dtype, data_):
    layer = make_layer(name, param_dtype)
    good = st.sampled_from([(0, D), (1, D), (2, D), (5, D), (2, 3, D)]).flatmap(
        lambda shape: arrays(shapes=st.just(shape), dtypes=[np.dtype(param_dtype).name])
    )
    x = data_.draw(st.one_of(good, arrays()), label="x")
    if (
        name.startswith("Softmax")
        and isinstance(x, np.ndarray)
        and x.ndim
        and x.shape[layer.dim] == 0
    ):
        return  # open defect, see test_softmax_over_an_empty_axis_is_a_clear_error
    ok, y = attempt(layer, x)
    if not ok:
        return
    assert isinstance(x, np.ndarray) and x.dtype.kind == "f", (
        f"{name} accepted {type(x).__name__} {getattr(x, 'dtype', '')}"
    )
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype, (name, x.dtype, y.dtype)
    if name in OUT_FEATURES:
        assert y.shape == (*x.shape[:-1], OUT_FEATURES[name])
    else:
        assert y.shape == x.shape
    if finite_moderate(x) and not (name.startswith("Softmax") and x.size == 0):
        assert np.isfinite(y).all(), (name, x, y)

    # backward: a gradient of the output's shape (random values, NaN/inf included)
    grad = data_.draw(arrays(shapes=st.just(y.shape), dtypes=[str(x.dtype)]))
    if not isinstance(grad, np.ndarray):
        grad = np.ones_like(y)
    ok, g = attempt(layer.backward, grad)
    if ok:
        assert isinstance(g, np.ndarray) and g.shape == x.shape and g.dtype == x.dtype, (name, g)
        for p in layer.parameters():
            assert p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype
        if finite_moderate(x) and finite_moderate(grad):
            assert np.isfinite(g).all(), (name, x, grad, g)


@pytest.mark.parametrize("shape, dim", [((3, 0), -1), ((0, 4), 0)])
def test_softmax_over_an_empty_axis_is_a_clear_error(shape, dim):
    attempt(nn.Softmax(dim=dim), np.zeros(shape, np.float32))  # an empty result would do too


@pytest.mark.parametrize("name", LAYERS)
def test_backward_rejects_a_gradient_of_the_wrong_shape(name):
    # NumPy would broadcast a (1, d) gradient against a (3, d) output (defect D9, fixed)
    layer = make_layer(name, np.float32)
    y = layer(np.ones((3, D), np.float32))
    with pytest.raises(ValueError, match=rf"output's shape \(3, {y.shape[1]}\), got shape \(1, {y.shape[1]}\)"):
        layer.backward(np.ones((1, y.shape[1]), np.float32))
    with pytest.raises(ValueError, match="output's shape"):
        layer.backward(np.ones((3, y.shape[1] + 1), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        layer.backward([[1.0] * y.shape[1]] * 3)
    assert layer.backward(np.ones_like(y)).shape == (3, D)  # the right shape still works


# -- losses --------------------------------------------------------------------------------------------

LOSSES = {
    "MSELoss": losses.MSELoss,
    "BCELoss": losses.BCELoss,
    "BCEWithLogitsLoss": losses.BCEWithLogitsLoss,
    "BCEWithLogitsLoss(pos_weight)": lambda: losses.BCEWithLogitsLoss(pos_weight=2.0),
    "CrossEntropyLoss": losses.CrossEntropyLoss,
    "CrossEntropyLoss(smoothing)": lambda: losses.CrossEntropyLoss(label_smoothing=0.1),
}


@st.composite
def targets(draw, n):
    """Labels and targets of every kind: right and wrong types, ranges and shapes."""
    kind = draw(
        st.sampled_from(
            [
                "int",
                "int-bad",
                "float",
                "float-frac",
                "nan",
                "bool",
                "str",
                "object",
                "list",
                "scalar",
                "none",
                "shape",
            ]
        )
    )
    n = n if kind != "shape" else draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind in ("int", "shape"):
        return rng.integers(0, 3, n)
    if kind == "int-bad":
        return rng.choice(np.array([-1, 0, 2, 3, 1000, -(2**62)]), n)
    if kind == "float":
        return rng.integers(0, 2, n).astype(draw(st.sampled_from([np.float32, np.float64])))
    if kind == "float-frac":
        return rng.random(n)
    if kind == "nan":
        t = rng.integers(0, 2, n).astype(float)
        if n:
            t[0] = np.nan
        return t
    if kind == "bool":
        return rng.integers(0, 2, n).astype(bool)
    if kind == "str":
        return np.array(["a", "b", "1"] * n)[:n]
    if kind == "object":
        return np.array([1, "x", None] * n, dtype=object)[:n]
    if kind == "list":
        return [0] * n
    if kind == "scalar":
        return draw(st.sampled_from([0, 1.5, "a"]))
    return None


@settings(SETTINGS, max_examples=300)
@given(name=st.sampled_from(sorted(LOSSES)), data_=st.data())
def test_losses_on_random_predictions_and_targets(name, data_):
    loss_fn = LOSSES[name]()
    good = st.sampled_from([(1, 3), (4, 3), (4, 1), (6, 2)]).flatmap(
        lambda shape: arrays(shapes=st.just(shape), dtypes=["float32", "float64"])
    )
    pred = data_.draw(mostly(good, arrays(features=3)), label="pred")
    n = len(pred) if isinstance(pred, np.ndarray) and pred.ndim else 3
    target = data_.draw(mostly(st.just("VALID"), targets(n)), label="target")
    if isinstance(target, str) and target == "VALID":  # a valid target for this loss
        rng = np.random.default_rng(n)
        c = pred.shape[-1] if isinstance(pred, np.ndarray) and pred.ndim == 2 else 1
        target = (
            rng.integers(0, max(c, 1), n)
            if name.startswith("Cross")
            else rng.integers(0, 2, np.shape(pred)).astype(float)
        )
    if (
        name.startswith("BCE")
        and isinstance(pred, np.ndarray)
        and pred.ndim == 2
        and isinstance(target, np.ndarray)
        and target.ndim == 1
    ):
        target = target.reshape(-1, 1)[:, [0] * pred.shape[1]] if pred.shape[1] else target
    if (
        name == "BCELoss"
        and isinstance(pred, np.ndarray)
        and pred.dtype.kind == "f"
        and data_.draw(st.booleans())
    ):
        pred = np.abs(np.tanh(pred))  # mostly valid probabilities, to get past the range check
    ok, loss = attempt(loss_fn, pred, target)
    if not ok:
        return
    assert isinstance(pred, np.ndarray) and pred.dtype.kind == "f" and pred.size > 0
    assert isinstance(loss, float)
    if name.startswith("CrossEntropy"):
        t = np.asarray(target)
        assert (
            t.dtype.kind in "iu"
            and t.shape == (pred.shape[0],)
            and t.min() >= 0
            and t.max() < pred.shape[1]
        )
    clean_target = np.asarray(target).dtype.kind in "iub" or bool(
        np.isfinite(np.asarray(target, dtype=float)).all()
    )
    if finite_moderate(pred) and clean_target:
        assert math.isfinite(loss), (name, pred, target, loss)
    ok, g = attempt(loss_fn.backward)
    assert ok, g
    assert g.shape == pred.shape and g.dtype == pred.dtype


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_backward_before_forward_is_a_runtime_error(name):
    with pytest.raises(RuntimeError, match="backward"):
        LOSSES[name]().backward()


# -- data.from_arrays and data.load -----------------------------------------------------------------------

GOOD_LABELS = ["int", "int-offset", "int-neg", "float-whole", "float-frac", "bool", "str"]
BAD_LABELS = ["nan", "inf", "object", "2d", "wrong-len"]


@st.composite
def label_arrays(draw, n, kinds):
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(1, 4))
    y = rng.integers(0, k, n)
    if kind == "int-offset":
        return y + 7
    if kind == "int-neg":
        return y - 2
    if kind == "float-whole":
        return y.astype(float)
    if kind == "float-frac":
        return rng.normal(size=n)
    if kind in ("nan", "inf"):
        y = rng.normal(size=n)
        if n:
            y[0] = np.nan if kind == "nan" else np.inf
        return y
    if kind == "bool":
        return y.astype(bool)
    if kind == "str":
        return np.array(["cat", "dog", "eel", "fox"])[y]
    if kind == "object":
        return np.array([1, "x", 2.5, None], dtype=object)[y]
    if kind == "2d":
        return np.stack([y, y], axis=1)
    if kind == "wrong-len":
        return y[: max(0, n - 1)]
    return y


@st.composite
def one_bad(draw, good: dict, bad: dict):
    """Keyword arguments: all from ``good``, or all but one, drawn from ``bad``."""
    culprit = draw(st.sampled_from([None, None, None, *sorted(bad)]))
    return culprit, {k: draw(bad[k] if k == culprit else v) for k, v in good.items()}


FROM_ARRAYS_GOOD = {
    "x": arrays(shapes=st.tuples(st.integers(1, 30), st.integers(1, 3)), dtypes=["float64", "float32", "int64", "uint8"]).filter(
        lambda a: isinstance(a, np.ndarray) and np.isfinite(a).all()),
    "task": st.sampled_from([None, "multiclass", "binary", "regression"]),
    "val_fraction": st.sampled_from([0.15, 0.0, 0.5]),
    "scale": st.sampled_from(["none", "standard", "minmax"]),
    "dtype": st.sampled_from([np.float32, np.float64, "float32"]),
    "seed": st.sampled_from([0, 1, 2**40]),
    "with_test": st.booleans(),
    "labels": st.just(GOOD_LABELS),
}  # fmt: skip
FROM_ARRAYS_BAD = {
    "x": arrays(
        dtypes=[
            "float32",
            "float64",
            "float16",
            "int64",
            "uint8",
            "bool",
            "complex128",
            "object",
            "<U3",
        ]
    ),
    "task": st.sampled_from(["ranking", 3, ""]),
    "val_fraction": st.sampled_from([0.99, 1.0, -0.1, float("nan"), "0.2", True]),
    "scale": st.sampled_from(["zscore", None, 1]),
    "dtype": st.sampled_from([np.float16, np.int32, "nonsense", None]),
    "seed": st.sampled_from([-1, 1.5, True, "0"]),
    "labels": st.just(BAD_LABELS),
}


@settings(SETTINGS, max_examples=200)
@given(args=one_bad(FROM_ARRAYS_GOOD, FROM_ARRAYS_BAD), data_=st.data())
def test_from_arrays_on_random_arrays(args, data_):
    culprit, kw = args
    x, with_test = kw.pop("x"), kw.pop("with_test")
    n = len(x) if isinstance(x, np.ndarray) and x.ndim else 5
    y = data_.draw(label_arrays(n, kw.pop("labels")), label="y")
    if with_test and isinstance(x, np.ndarray) and x.ndim:
        kw |= dict(x_test=x[:3], y_test=y[:3])
    ok, splits = attempt(data.from_arrays, x, y, **kw)
    count(f"bad {culprit}: {'accepted' if ok else 'rejected'}")
    if not ok:
        return
    check_splits(splits, np.dtype(kw["dtype"]))
    if not with_test:
        assert len(splits.train) + len(splits.val) + len(splits.test) == len(x)


@pytest.mark.parametrize(
    "kind",
    GOOD_LABELS + BAD_LABELS + ["object-mixed", "object-str", "object-num", "str-vs-int-test"],
)
@pytest.mark.parametrize("task", [None, "multiclass", "binary", "regression"])
def test_from_arrays_every_task_and_label_kind(task, kind):
    """The cross product the random test reaches only by luck."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 2)), rng.integers(0, 2, 20)
    y_test = None
    if kind in ("object-mixed", "object-str", "object-num"):
        pool = {"object-mixed": [1, "x"], "object-str": ["a", "b"], "object-num": [1, 2.5]}[kind]
        y = np.array(pool * 10, dtype=object)
    elif kind == "str-vs-int-test":
        y, y_test = np.array(["a", "b"])[y], np.array([0, 1, 1])
    else:
        y = _label(kind, y, rng)
    kw = {} if y_test is None else dict(x_test=x[:3], y_test=y_test)
    ok, splits = attempt(data.from_arrays, x, y, task=task, **kw)
    if ok:
        check_splits(splits, np.dtype(np.float32))


def _label(kind, y, rng):
    """The labels ``label_arrays`` draws, made deterministically from y in {0, 1}."""
    return {
        "int": y, "int-offset": y + 7, "int-neg": y - 2, "float-whole": y.astype(float),
        "float-frac": rng.normal(size=len(y)), "bool": y.astype(bool), "str": np.array(["cat", "dog"])[y],
        "nan": np.where(y == 0, np.nan, 1.0), "inf": np.where(y == 0, np.inf, 1.0),
        "object": np.array([1, "x"], dtype=object)[y], "2d": np.stack([y, y], axis=1), "wrong-len": y[:-1],
    }[kind]  # fmt: skip


def check_splits(splits, dtype) -> None:
    assert dtype in (np.float32, np.float64)
    assert len(splits.train) >= 1
    for part in (splits.train, splits.val, splits.test):
        assert part.x.dtype == dtype and part.x.ndim == 2 and part.x.shape[1] == splits.n_features
        assert np.isfinite(part.x).all()
        if splits.task == "regression":
            assert part.y.dtype == dtype and np.isfinite(part.y).all()
        else:
            assert part.y.dtype == np.int64 and part.y.ndim == 1
            assert part.y.size == 0 or (part.y.min() >= 0 and part.y.max() < splits.n_classes)


LOAD_GOOD = {
    "name": st.sampled_from(
        ["xor", "spirals", "two-spirals", "sine", "click", "digits", "XOR", "two_spirals", " sine "]
    ),
    "n_samples": st.sampled_from([None, 4, 50, 300]),
    "val_fraction": st.sampled_from([None, 0.0, 0.3]),
    "seed": st.sampled_from([0, 7, 2**63]),
    "dtype": st.sampled_from([np.float32, np.float64, "float64"]),
    "scale": st.sampled_from([None, "none", "standard", "minmax"]),
}
LOAD_BAD = {
    "name": st.one_of(
        st.sampled_from(["cifar", "", "nope.npz", "../x.npz", "mnist.npz"]), st.text(max_size=8)
    ),
    "n_samples": st.sampled_from([0, -5, 3, 10**9, 2.5, True, "100"]),
    "val_fraction": st.sampled_from([0.99, 1.0, -0.5, float("nan"), "x"]),
    "seed": st.sampled_from([-1, 0.5, False, None]),
    "dtype": st.sampled_from([np.float16, int, "garbage", None]),
    "scale": st.just("max"),
}


@settings(SETTINGS, max_examples=80)
@given(args=one_bad(LOAD_GOOD, LOAD_BAD))
def test_data_load_with_random_arguments(args):
    culprit, kw = args
    key = kw["name"].strip().lower().replace("_", "-")
    assume(key not in ("mnist", "fashion-mnist"))  # those would download
    if kw["n_samples"] == 10**9:
        kw["n_samples"] = (
            10**5
        )  # a billion samples is a memory request, not a bad input (docs/reliability.md)
    if key == "click" and kw["n_samples"] is None:
        kw["n_samples"] = 500
    ok, splits = attempt(data.load, **kw, download=False)
    count(f"bad {culprit}: {'accepted' if ok else 'rejected'}")
    if ok:
        check_splits(splits, np.dtype(kw["dtype"]))


# -- TrainConfig ------------------------------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 8, 128, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(
        [
            "relu",
            "adam",
            "none",
            "cosine",
            "float64",
            "numpy",
            "batch",
            "default",
            "mnist",
            "xavier_uniform",
        ]
    ),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-2, 1000), max_size=4),
    st.lists(st.text(max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
KEYS = mostly(
    st.sampled_from(TrainConfig.keys()),
    st.one_of(st.text(max_size=8), st.sampled_from(["learning_rate", "train", "Layers"])),
)
GOOD_VALUES = {
    "dataset": st.sampled_from(["mnist", "spirals", "x.npz"]), "data_dir": st.sampled_from([None, "/data"]),
    "model": st.sampled_from(["mlp", "cnn", "lenet"]),
    "layers": st.lists(st.integers(1, 900), min_size=2, max_size=4), "activation": st.sampled_from(["relu", "gelu", "tanh"]),
    "init": st.sampled_from(["default", "auto", "he_normal"]), "norm": st.sampled_from(["none", "batch", "layer"]),
    "dropout": st.floats(0, 0.99), "optimizer": st.sampled_from(["sgd", "adamw", "nesterov"]), "lr": st.floats(1e-6, 10),
    "momentum": st.floats(0, 0.99), "weight_decay": st.floats(0, 1), "schedule": st.sampled_from(["none", "onecycle"]),
    "warmup_steps": st.integers(0, 100), "epochs": st.integers(1, 50), "batch_size": st.integers(1, 4096),
    "val_fraction": st.one_of(st.none(), st.floats(0, 0.99)), "n_samples": st.one_of(st.none(), st.integers(1, 10**6)),
    "label_smoothing": st.floats(0, 0.99), "clip_grad_norm": st.floats(0, 10), "early_stopping": st.integers(0, 10),
    "seed": st.integers(0, 2**32), "dtype": st.sampled_from(["float32", "float64"]), "engine": st.sampled_from(["numpy", "torch"]),
    "device": st.sampled_from(["cpu", "cuda"]), "nproc": st.just(1), "diagnostics": st.booleans(),
    "diagnostics_every": st.integers(1, 100), "checkpoint_every": st.integers(0, 1000),
}  # fmt: skip


@st.composite
def config_dicts(draw, bad_values, toml=False):
    """Config dicts of valid keys and values, but (one time in two) for one bad key or value."""
    keys = draw(st.lists(st.sampled_from(TrainConfig.keys()), max_size=5, unique=True))
    values = {k: draw(GOOD_VALUES[k]) for k in keys}
    culprit = draw(st.sampled_from(["none", "key", "value"]))
    if culprit == "key":
        values[draw(KEYS)] = draw(bad_values)
    elif culprit == "value":
        values[draw(st.sampled_from(TrainConfig.keys()))] = draw(bad_values)
    if toml:  # TOML has no null: a missing key is its None
        values = {k: v for k, v in values.items() if v is not None}
    count(f"bad {culprit}")
    return values


def check_config(cfg: TrainConfig) -> None:
    cfg.validate()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        path.write_text(cfg.to_toml())
        assert TrainConfig.from_toml(path) == cfg


@settings(SETTINGS, max_examples=200)
@given(values=config_dicts(ANY_VALUE))
def test_train_config_from_dict_with_random_keys_and_values(values):
    ok, cfg = attempt(TrainConfig.from_dict, values)
    if ok:
        check_config(cfg)


@settings(SETTINGS, max_examples=30)
@given(
    values=st.one_of(
        st.lists(st.integers(), max_size=2), st.integers(), st.text(max_size=3), st.none()
    )
)
def test_train_config_from_dict_with_a_non_mapping(values):
    attempt(TrainConfig.from_dict, values)


TOML_VALUE = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([10**30, 0, 3, 64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["relu", "sgd", "spirals", "float32"]),
    st.booleans(),
    st.lists(st.integers(-3, 800), max_size=4),
    st.lists(st.floats(allow_nan=False), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(SETTINGS, max_examples=150)
@given(
    values=config_dicts(TOML_VALUE, toml=True),
    wrap=st.sampled_from(["train", "top", "train-not-a-table"]),
    garbage=st.one_of(st.none(), st.binary(max_size=20)),
)
def test_train_config_from_random_toml(values, wrap, garbage):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        if garbage is not None:
            path.write_bytes(garbage)
        elif wrap == "train-not-a-table":
            path.write_text(
                tomli_w.dumps({"train": 5, **{k: v for k, v in values.items() if k != "train"}})
            )
        else:
            path.write_text(tomli_w.dumps({"train": values} if wrap == "train" else values))
        ok, cfg = attempt(TrainConfig.from_toml, path)
    if ok:
        check_config(cfg)


# -- the command line ------------------------------------------------------------------------------------------

NUM = st.one_of(
    st.integers(-3, 5).map(str),
    st.sampled_from(["0.5", "1e-3", "-1", "nan", "inf", "1e6", "0", "1e400", "2", "x", "", "1,2"]),
)
FLAGS = {
    "--dataset": st.sampled_from(
        ["xor", "spirals", "sine", "two-spirals", "cifar", "", "missing.npz", "XOR"]
    ),
    "--layers": st.sampled_from(
        [
            "2,4,1",
            "2,8,3",
            "2,1",
            "1,1",
            "2,0,1",
            "2",
            "",
            "a,b",
            "2,-4,1",
            "2.5,1",
            "2,4,2",
            "2,,1",
        ]
    ),
    "--activation": st.sampled_from(["relu", "tanh", "gelu_tanh", "swish", "", "RELU"]),
    "--init": st.sampled_from(["default", "auto", "xavier_normal", "glorot", "", "zeros"]),
    "--norm": st.sampled_from(["none", "batch", "layer", "group"]),
    "--dropout": NUM,
    "--optimizer": st.sampled_from(["sgd", "adam", "adamw", "lbfgs", "Adam"]),
    "--lr": NUM,
    "--momentum": NUM,
    "--weight-decay": NUM,
    "--schedule": st.sampled_from(
        ["none", "cosine", "onecycle", "plateau", "step", "warmup-cosine", "linear"]
    ),
    "--warmup-steps": NUM,
    "--epochs": st.sampled_from(["1", "2", "0", "-1", "x", "1.5"]),
    "--batch-size": st.sampled_from(["1", "2", "3", "16", "0", "-2", "10000000", "x"]),
    "--val-fraction": NUM,
    "--n-samples": st.sampled_from(["4", "7", "20", "3", "0", "-1", "x", "1e3"]),
    "--label-smoothing": NUM,
    "--clip-grad-norm": NUM,
    "--early-stopping": st.sampled_from(["0", "1", "-1", "x"]),
    "--seed": st.sampled_from(["0", "1", "-1", str(2**70), "x", "0.5"]),
    "--dtype": st.sampled_from(["float32", "float64", "float16", "int", ""]),
    "--engine": st.sampled_from(["numpy", "jax", ""]),
    "--device": st.sampled_from(["cpu", "tpu", ""]),
    "--nproc": st.sampled_from(["1", "2", "0", "x"]),
    "--diagnostics-every": st.sampled_from(["1", "50", "0", "-5"]),
    "--checkpoint-every": st.sampled_from(["0", "1", "2", "-1", "x"]),
    "--config": st.sampled_from(["missing.toml", "DIR", "GARBAGE", "EMPTY"]),
    "--data-dir": st.sampled_from(["/nonexistent", "DIR"]),
}
BASE = ["train", "--dataset", "xor", "--layers", "2,4,1", "--epochs", "1", "--quiet"]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse rejects the value before main's own checks
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_cli_outcome(code, err: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if code == 0:
        return
    if code == 1:  # a run NaNGuard stopped (e.g. --lr 1e6): finished, not crashed
        assert len(lines) == 1 and lines[0].startswith("twinnet: training stopped: NaNGuard:"), err
        return
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("twinnet: error:"), err
    check_error(ValueError(lines[0]))  # the message is ours, not an internal one


@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "garbage.toml").write_bytes(b"\x00\xff[train\nlr = ")
    (d / "empty.toml").write_text("")
    return d


_counter = itertools.count()


@settings(SETTINGS, max_examples=120)
@given(
    flags=st.lists(st.sampled_from(sorted(FLAGS)), min_size=1, max_size=3, unique=True),
    data_=st.data(),
)
def test_cli_train_with_random_flag_values(flags, data_, cli_sandbox):
    argv = list(BASE)
    for flag in flags:
        value = data_.draw(FLAGS[flag], label=flag)
        value = {
            "DIR": str(cli_sandbox),
            "GARBAGE": str(cli_sandbox / "garbage.toml"),
            "EMPTY": str(cli_sandbox / "empty.toml"),
        }.get(value, value)
        argv += [flag, value]
    out = cli_sandbox / f"run{next(_counter)}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
        mp.delenv("TWINNET_DEBUG", raising=False)
        code, _, err = run_main([*argv, "--out", str(out)])
    count(f"exit {code}")
    assert_cli_outcome(code, err)
    if code == 2 and ("config key" in err or ": error: argument" in err):
        assert not out.exists(), err  # refused before anything was written


@settings(SETTINGS, max_examples=40)
@given(
    layers=st.sampled_from(["3,4,2", "3,1", "0,2", "3", "x", "3,4,1"]),
    activation=st.sampled_from(["tanh", "relu", "nope"]),
    norm=st.sampled_from(["none", "batch", "layer", "x"]),
    dropout=st.sampled_from(["0", "0.3", "1", "-0.5", "nan"]),
    loss=st.sampled_from(["", "mse", "bce-logits", "cross-entropy", "hinge"]),
    batch=st.sampled_from(["1", "2", "4", "0"]),  # "-1": see test_gradcheck_negative_batch_size
    eps=st.sampled_from(["1e-6", "0", "-1e-6", "nan", "1e3"]),
)
def test_cli_gradcheck_with_random_flag_values(layers, activation, norm, dropout, loss, batch, eps):
    argv = ["gradcheck", "--layers", layers, "--activation", activation, "--norm", norm, "--dropout", dropout,
            "--batch-size", batch, "--eps", eps] + (["--loss", loss] if loss else [])  # fmt: skip
    code, _, err = run_main(argv)
    count(f"exit {code}")
    if (
        code == 1
    ):  # a gradcheck that ran and did not pass (e.g. eps=0 or 1e3): a result, not an error
        assert "Traceback" not in err and not err.strip(), err
        return
    assert_cli_outcome(code, err)


def test_gradcheck_negative_batch_size():
    code, _, err = run_main(["gradcheck", "--batch-size", "-1"])
    assert_cli_outcome(code, err)


def test_an_argparse_error_is_one_line():
    code, _, err = run_main(["train", "--lr", "fast"])
    assert code == 2
    assert err.strip().splitlines() == [
        "twinnet: error: argument --lr: invalid float value: 'fast'"
    ]


@settings(SETTINGS, max_examples=30)
@given(
    command=st.sampled_from(["eval", "predict", "report"]),
    target=st.sampled_from(["missing", "FILE", "DIR", "EMPTYDIR"]),
    extra=st.sampled_from(["x.npy", "x.csv", "x.png", "x.txt", ""]),
)
def test_cli_eval_and_predict_on_random_paths(command, target, extra, cli_sandbox):
    empty = cli_sandbox / "emptydir"
    empty.mkdir(exist_ok=True)
    (cli_sandbox / "x.npy").write_bytes(b"\x93NUMPY garbage")
    (cli_sandbox / "x.csv").write_text("1,2\nnot,numbers\n")
    path = {
        "missing": str(cli_sandbox / "nope"),
        "FILE": str(cli_sandbox / "garbage.toml"),
        "DIR": str(cli_sandbox),
        "EMPTYDIR": str(empty),
    }[target]
    argv = [command, path] + ([str(cli_sandbox / extra)] if command == "predict" and extra else [])
    code, _, err = run_main(argv)
    assert code == 2
    assert_cli_outcome(code, err)
