"""The Backprop page's route: one example's forward and backward pass, step by step.

``GET /api/backprop?example=worked`` traces the classic 2-2-1 worked example of
``twinnet trace`` (sigmoid units, L = 1/2 (y_hat - y)^2; ``x``, ``y``, ``lr`` may be
overridden). Any other query describes a network as the playground does, with the keys
of a config file (``dataset``, ``layers=2,4,1``, ``activation``, ``init``, ``seed``,
``lr``, ...) validated by :class:`twinnet.config.TrainConfig`, plus ``index``: which
training example to trace. The model is built as ``twinnet train`` builds it (same
weights for the same seed, in float64) and the loss is the one training uses.
``example=playground`` takes the playground's own URL keys (``dataset``, ``features``,
``hidden``, ``activation``, ...; validated by ``twinnet.studio.settings``) and traces the
network the playground starts from, on one of the examples it trains on.

The answer is :func:`twinnet.experiments.trace_net.trace_network`'s dict, plus
``torch`` (the largest difference against the PyTorch twin for this very example, or
why it is unavailable), ``settings`` and ``notes``. A bad value answers 400 with
``{"error": message}``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from twinnet import nn
from twinnet.config import ConfigError, TrainConfig
from twinnet.experiments.trace import _defaults
from twinnet.experiments.trace_net import MAX_UNITS, TraceError, torch_check, trace_network

# keys this page reads besides the config keys (or the playground's settings)
OWN_KEYS = ("example", "index", "x", "y", "step")
# config keys that change nothing in one example's trace (left out, and said so)
IGNORED = {"norm": "none", "dropout": 0.0}
# the built-in datasets with few enough inputs to draw -> the layers the page starts with
SMALL_DATASETS = {"xor": "2,3,1", "spirals": "2,4,3", "two-spirals": "2,4,2", "sine": "1,4,1"}
MAX_SAMPLES = 20000  # examples generated for one trace (n_samples)
# the task's loss, as twinnet train picks it (train.setup.make_loss)
TASK_LOSS = {"binary": "bce_logits", "multiclass": "cross_entropy", "regression": "mse"}
# the playground's loss names -> trace_network's
PLAYGROUND_LOSS = {"cross-entropy": "cross_entropy", "bce": "bce_logits", "mse": "mse"}


class BadRequest(ValueError):
    """A query value that is not valid; the message names it."""


def _numbers(key: str, text: str) -> list[float]:
    try:
        values = [float(p) for p in text.replace(" ", "").split(",") if p != ""]
    except ValueError:
        raise BadRequest(f"{key} must be comma-separated numbers, got {text!r}") from None
    if not values or not all(np.isfinite(values)):
        raise BadRequest(f"{key} must be finite numbers, got {text!r}")
    return values


def config_from_query(query: dict[str, str]) -> TrainConfig:
    """The config keys of ``query`` (strings) typed as TrainConfig's fields and validated."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict = {}
    for key, text in query.items():
        if key in OWN_KEYS:
            continue
        if key not in fields:
            raise BadRequest(f"unknown setting {key!r}; valid: {', '.join([*OWN_KEYS, *fields])}")
        default = getattr(TrainConfig(), key)
        kind = fields[key].type
        try:
            if key == "layers":
                values[key] = [int(p) for p in text.replace(" ", "").split(",") if p != ""]
            elif isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                values[key] = text.lower() in ("true", "1")
            elif isinstance(default, int) or "int" in str(kind):
                values[key] = None if text == "" and "None" in str(kind) else int(text)
            elif isinstance(default, float) or "float" in str(kind):
                values[key] = None if text == "" and "None" in str(kind) else float(text)
            else:
                values[key] = text
        except ValueError:
            expected = {"layers": "comma-separated integers like 2,4,1"}.get(key, f"a {type(default).__name__}")
            raise BadRequest(f"config key {key!r}: expected {expected}, got {text!r}") from None
    return TrainConfig.from_dict(values, source="settings")


def worked_example(query: dict[str, str]) -> dict:
    """The 2-2-1 example of ``twinnet trace``: sigmoid units, the same weights."""
    d = _defaults(2, 2)
    layers = [nn.Linear(2, 2, dtype=np.float64), nn.Sigmoid(), nn.Linear(2, 1, dtype=np.float64), nn.Sigmoid()]
    model = nn.Sequential(*layers)
    model[0].weight.data[...] = np.reshape(d["w1"], (2, 2))
    model[0].bias.data[...] = d["b1"]
    model[2].weight.data[...] = [d["w2"]]
    model[2].bias.data[...] = d["b2"]
    x = _numbers("x", query["x"]) if "x" in query else d["x"]
    y = _numbers("y", query["y"]) if "y" in query else [d["y"]]
    lr = _numbers("lr", query["lr"])[0] if "lr" in query else d["lr"]
    if lr < 0:
        raise BadRequest(f"lr must be >= 0, got {lr:g}")
    return {"model": model, "x": x, "y": y, "loss": "half_squared", "lr": lr,
            "settings": {"example": "worked"}, "notes": [
                "The classic worked example: a 2-2-1 network with sigmoid units in both layers "
                "and the loss L = 1/2 (y_hat - y)^2 (as `twinnet trace` prints it)."]}  # fmt: skip


def dataset_example(query: dict[str, str]) -> dict:
    """A network as the playground builds it and one example of its training data."""
    from twinnet.train.run import load_splits
    from twinnet.train.setup import check_layers_fit, make_model

    if "data_dir" in query:
        raise BadRequest("data_dir cannot be set from the page: the studio reads only the built-in datasets")
    if query.get("dataset") not in SMALL_DATASETS:
        raise BadRequest(
            f"dataset must be one of {', '.join(SMALL_DATASETS)} (at most {MAX_UNITS} inputs), got {query.get('dataset')!r}"
        )
    # a step you can see (the config's default lr 0.001 is Adam's); layers fitting the data
    query = {"lr": "0.1", "layers": SMALL_DATASETS[query["dataset"]], **query}
    config = config_from_query(query)
    if config.n_samples is not None and config.n_samples > MAX_SAMPLES:
        raise BadRequest(f"config key 'n_samples': the backprop page makes at most {MAX_SAMPLES} examples, got {config.n_samples}")
    notes = []
    if max(config.layers) > MAX_UNITS or len(config.layers) > 7:
        raise BadRequest(
            f"the backprop view shows up to {MAX_UNITS} units a layer and 6 Linear layers, got "
            f"layers {config.layers}: make the network smaller"
        )
    dropped = [k for k, v in IGNORED.items() if getattr(config, k) != v]
    if dropped:
        notes.append(f"{' and '.join(dropped)} left out: this page traces the plain Linear + activation network.")
    config = config.replace(dtype="float64", **IGNORED)
    splits = load_splits(config)
    check_layers_fit(config, splits.n_features, splits.task, splits.n_classes)
    try:
        index = int(query.get("index", "0"))
    except ValueError:
        raise BadRequest(f"index must be an integer, got {query['index']!r}") from None
    if not 0 <= index < len(splits.train):
        raise BadRequest(f"index must be in 0..{len(splits.train) - 1} (training examples of {config.dataset}), got {index}")
    x, y = splits.train[index]
    loss = TASK_LOSS[splits.task]
    y = int(y) if loss == "cross_entropy" else np.asarray(y, dtype=np.float64).reshape(-1).tolist()
    notes.append(
        f"Training example {index} of {config.dataset} ({splits.task}); the loss is the one "
        f"`twinnet train` uses for it ({loss}); weights drawn as training starts (init "
        f"{config.init}, seed {config.seed}); one plain SGD step with lr {config.lr:g}."
    )
    settings = {k: getattr(config, k) for k in ("dataset", "layers", "activation", "init", "seed", "lr")}
    settings["index"] = index
    return {"model": make_model(config), "x": np.asarray(x, dtype=np.float64).tolist(), "y": y,
            "loss": loss, "lr": config.lr, "settings": settings, "notes": notes}  # fmt: skip


def playground_settings(query: dict[str, str]) -> dict:
    """The playground's URL keys typed as its defaults (as its page's pg-state.js reads them)."""
    from twinnet.studio.settings import DEFAULTS

    raw: dict = {}
    for key, text in query.items():
        if key in OWN_KEYS:
            continue
        d = DEFAULTS.get(key)
        if key == "points":
            raw[key] = [[_typed(v) for v in p.split(",")] for p in text.split(";") if p]
        elif key == "hidden":
            raw[key] = [_typed(v) for v in text.split(",") if v != ""]
        elif isinstance(d, list):
            raw[key] = [v for v in text.split(",") if v != ""]
        elif isinstance(d, int | float) and not isinstance(d, bool):
            raw[key] = _typed(text)
        else:
            raw[key] = text  # unknown keys too: validate() names them
    return raw


def _typed(text: str):
    """"3" -> 3, "0.5" -> 0.5, anything else stays text (the validation names it)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def playground_limit(dataset: str, hidden: list[int], layers: list[int] | None = None) -> str | None:
    """Why this page cannot trace the playground's network (None: it can); ``layers``
    (inputs and outputs included) once the data is known. The playground asks too."""
    if dataset == "upload":
        return "dataset 'upload': the backprop page cannot see a dropped file; pick another dataset"
    if max(hidden, default=0) > MAX_UNITS or len(hidden) > 5:
        return (f"the backprop view shows up to {MAX_UNITS} units a layer and 5 hidden layers, got hidden "
                f"layers {hidden}: make the network smaller in the playground")  # fmt: skip
    if layers is not None and max(layers) > MAX_UNITS:
        return f"the backprop view shows up to {MAX_UNITS} units a layer, got layers {layers} ({dataset} has {layers[0]} inputs)"
    return None


def playground_example(query: dict[str, str]) -> dict:
    """The network the playground starts from for these settings (its URL query), and one
    of the training examples it feeds that network (after its input features)."""
    from twinnet.studio.data import make_data
    from twinnet.studio.settings import resolve_loss, validate
    from twinnet.train.setup import make_model

    s = validate(playground_settings(query))
    if too_big := playground_limit(s.dataset, s.hidden):
        raise BadRequest(too_big)
    pd = make_data(s)
    loss, task = resolve_loss(s.loss, pd.task, pd.n_classes)
    layers = [pd.x_train.shape[1], *s.hidden, pd.n_classes if task == "multiclass" else 1]
    if too_big := playground_limit(s.dataset, s.hidden, layers):
        raise BadRequest(too_big)
    notes = []
    dropped = [k for k, v in IGNORED.items() if getattr(s.config, k) != v]
    if dropped:
        notes.append(f"{' and '.join(dropped)} left out: this page traces the plain Linear + activation network.")
    config = s.config.replace(layers=layers, dtype="float64", **IGNORED)
    try:
        index = int(query.get("index", "0"))
    except ValueError:
        raise BadRequest(f"index must be an integer, got {query['index']!r}") from None
    if not 0 <= index < len(pd.x_train):
        raise BadRequest(f"index must be in 0..{len(pd.x_train) - 1} (training examples), got {index}")
    name = PLAYGROUND_LOSS[loss]
    y = pd.y_train[index]
    y = int(y) if name == "cross_entropy" else np.asarray(y, dtype=np.float64).reshape(-1).tolist()
    lr = _numbers("lr", query["lr"])[0] if "lr" in query else 0.1
    notes.append(
        f"The playground's network on training example {index} of {s.dataset} (inputs: "
        f"{', '.join(pd.features)}); its loss ({loss}); the weights it starts from (init {config.init}, "
        f"seed {config.seed}, in float64); one plain SGD step with lr {lr:g}."
    )
    return {"model": make_model(config), "x": np.asarray(pd.x_train[index], dtype=np.float64).tolist(), "y": y,
            "loss": name, "lr": lr, "settings": {"example": "playground", "index": index},
            "inputs": list(pd.features), "notes": notes}  # fmt: skip


EXAMPLES = {"worked": worked_example, "dataset": dataset_example, "playground": playground_example}


def compute(query: dict[str, str]) -> dict:
    """The page's whole answer for ``query``; raises BadRequest/ConfigError/TraceError/ValueError."""
    example = query.get("example", "dataset")
    if example not in EXAMPLES:
        raise BadRequest(f"example must be one of {', '.join(EXAMPLES)}, got {example!r}")
    spec = EXAMPLES[example](query)
    result = trace_network(spec["model"], spec["x"], spec["y"], loss=spec["loss"], lr=spec["lr"])
    result["torch"] = torch_check(spec["model"], spec["x"], spec["y"], loss=spec["loss"])
    result["settings"] = spec["settings"]
    result["notes"] = spec["notes"]
    result["inputs"] = spec.get("inputs") or [f"x{i + 1}" for i in range(len(result["x"]))]
    return result


async def api_backprop(request: Request) -> JSONResponse:
    query = dict(request.query_params)
    try:
        result = await run_in_threadpool(compute, query)
    except (BadRequest, ConfigError, TraceError, ValueError) as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    return JSONResponse(result)


def options() -> dict:
    """What the page's menus offer (the server's tables, not a copy in JavaScript)."""
    from twinnet.config import INITS
    from twinnet.experiments.trace_net import ACTIVATIONS

    return {"datasets": list(SMALL_DATASETS), "dataset_layers": SMALL_DATASETS, "activations": list(ACTIVATIONS), "inits": list(INITS),
            "max_units": MAX_UNITS, "defaults": {"dataset": "xor", "layers": "2,3,1", "activation": "tanh",
                                                 "init": "default", "seed": 0, "index": 0, "lr": 0.1}}  # fmt: skip


async def api_options(request: Request) -> JSONResponse:
    return JSONResponse(options())


routes = [Route("/api/backprop", api_backprop), Route("/api/backprop/options", api_options)]
