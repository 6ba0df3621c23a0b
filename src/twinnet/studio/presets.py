"""The book's experiments as playground states: pick one and watch its claim happen live.

Each preset is a plain settings dict (the page's state, so the URL holds it and a link
shares it), the experiment it belongs to (its claim is read from the experiment's own
``CLAIM`` / ``MODES``: one source, never a copy), a line saying what to watch, what the
playground cannot express of the experiment (said, not faked), and the follow-up states
that show the other side of the claim ("now with ReLU"). Every state goes through
``settings.validate``, the same checks as a config file (tested).
"""

from __future__ import annotations

from twinnet.experiments import EXPERIMENTS, MODES
from twinnet.studio.settings import DEFAULTS

# preset id -> experiment (name, mode), title, settings (over DEFAULTS), what to watch,
# what the playground cannot express, follow-ups: [(button label, changes to settings)]
PRESETS = {
    "linear-collapse": {
        "experiment": ("linear-collapse", None),
        "title": "Linear collapse",
        "settings": {"dataset": "xor", "hidden": [8, 8, 8], "activation": "identity", "lr": 0.03},
        "watch": "Three hidden layers without an activation are one matrix: every hidden unit is a plain ramp "
                 "over the plane, the output can only be one too, so it stays unsure (white) and the validation "
                 "accuracy near 50% (chance). With ReLU the same depth fits XOR within a hundred steps.",
        "missing": "",
        "then": [("same depth with ReLU", {"activation": "relu"})],
    },
    "symmetry-breaking": {
        "experiment": ("symmetry-breaking", None),
        "title": "Symmetry breaking",
        "settings": {"dataset": "blobs", "hidden": [6], "activation": "sigmoid", "init": "zeros",
                     "optimizer": "sgd", "lr": 0.5, "batch_size": 1000},
        "watch": "Every weight starts at 0: the six hidden units' maps stay identical while they train, so the "
                 "layer acts as one unit and the three blobs are not separated. Random initialisation (auto) "
                 "breaks the tie: six different maps.",
        "missing": "The experiment's constant 0.5 start is not a config init; 'zeros' is (sigmoid units, "
                   "because with tanh and zero weights nothing would move at all).",
        "then": [("random initialisation", {"init": "auto"})],
    },
    "exploding-gradients": {
        "experiment": ("exploding-gradients", None),
        "title": "Exploding gradients",
        "settings": {"dataset": "sine", "hidden": [32, 32, 32, 32, 32, 32], "activation": "relu",
                     "optimizer": "sgd", "lr": 0.2},
        "watch": "Six ReLU layers, plain SGD at lr 0.2: within a few steps the gradients blow up, the loss becomes NaN "
                 "and training stops. Clipping the gradient norm to 1 at the same learning rate trains.",
        "missing": "The experiment scales He initialisation by 2; inits have no scale in a config, so the "
                   "learning rate does the exploding here.",
        "then": [("clip the gradient norm to 1", {"clip_grad_norm": 1.0})],
    },
    "batch-size": {
        "experiment": ("batch-size", None),
        "title": "Batch size",
        "settings": {"dataset": "digits", "hidden": [32], "activation": "relu", "optimizer": "sgd", "lr": 0.05,
                     "batch_size": 1},
        "watch": "The experiment's 64-32-10 ReLU net, SGD at lr 0.05, batch 1: about 90% validation accuracy "
                 "after two epochs, with a noisy curve. Full batch takes one smooth step per epoch and is "
                 "still near 10% then; a mini-batch of 32 sits between.",
        "missing": "The gradient-noise measurement and the per-second comparison are the experiment's, not "
                   "the page's.",
        "then": [("full batch", {"batch_size": 2000}), ("mini-batch 32", {"batch_size": 32})],
    },
    "overfitting": {
        "experiment": ("overfitting", None),
        "title": "Overfitting",
        "settings": {"dataset": "digits", "hidden": [64, 64], "activation": "relu", "val_fraction": 0.75},
        "watch": "A 64-64 network on 90 training digits: the training loss goes to 0 while the validation "
                 "loss turns up (the findings say so). Then L2 (weight decay 0.01) or dropout 0.5.",
        "missing": "Early stopping is not a playground setting: the curves show where it would stop.",
        "then": [("L2 0.01", {"weight_decay": 0.01}), ("dropout 0.5", {"dropout": 0.5})],
    },
    "dead-relu": {
        "experiment": ("dead-relu", None),
        "title": "Dead ReLU",
        "settings": {"dataset": "spirals", "activation": "relu", "lr": 0.3},
        "watch": "At lr 0.3 the first steps push most ReLU units below zero on every input: the hidden maps go "
                 "blank, the layer table shows them dead and the findings name the layer. LeakyReLU at the "
                 "same learning rate keeps its units.",
        "missing": "",
        "then": [("LeakyReLU", {"activation": "leaky_relu"}), ("ReLU at lr 0.01", {"lr": 0.01})],
    },
    "xor-book": {
        "experiment": ("xor", "book"),
        "title": "The chapter's XOR recipe",
        "settings": {"dataset": "xor", "hidden": [2], "activation": "sigmoid", "loss": "bce",
                     "optimizer": "sgd", "lr": 0.5, "batch_size": 1000, "epochs": 10000},
        "watch": "2-2-1 sigmoid network, full-batch gradient descent at lr 0.5: after a plateau the two hidden "
                 "units split the plane and the accuracy reaches 100% (a few thousand steps). Seed 2 stalls "
                 "in a local minimum.",
        "missing": "The playground trains classes with cross-entropy (BCE on the same sigmoid output), not "
                   "MSE, and on 400 noisy XOR points instead of the 4 corners.",
        "then": [("seed 2", {"seed": 2})],
    },
}


def claim(experiment: tuple[str, str | None]) -> str:
    """The experiment's registered claim (or its mode's)."""
    name, mode = experiment
    return MODES[name][mode] if mode else EXPERIMENTS[name][1]


def state(preset: dict, changes: dict | None = None) -> dict:
    """The whole playground state of a preset (DEFAULTS completed), with ``changes``."""
    return {**DEFAULTS, **preset["settings"], **(changes or {})}


def for_page() -> list[dict]:
    """The presets as the page shows them: full states, the claim text, the lines."""
    out = []
    for key, p in PRESETS.items():
        name, mode = p["experiment"]
        out.append({
            "id": key,
            "title": p["title"],
            "command": f"twinnet experiment {name}" + (f" --mode {mode}" if mode else ""),
            "claim": claim(p["experiment"]),
            "watch": p["watch"],
            "missing": p["missing"],
            "settings": state(p),
            "then": [{"label": label, "settings": state(p, changes)} for label, changes in p["then"]],
        })  # fmt: skip
    return out
