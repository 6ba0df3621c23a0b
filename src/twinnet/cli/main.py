"""``twinnet``: train, evaluate, predict, check gradients, compare with PyTorch, report,
run experiments and fetch datasets.

Errors a user can cause end with one line on stderr and exit code 2, never a
traceback. An interrupted training run saves a checkpoint and exits with 130 after
Ctrl-C (SIGINT) or 143 after SIGTERM (128 + the signal number, as a shell reports it).
"""

from __future__ import annotations

import argparse
import os
import sys

from twinnet import optim
from twinnet.optim.lr_scheduler.recipes import RECIPES

EXIT_USAGE = 2


class UsageError(ValueError):
    """A command-line argument that is not valid."""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 784,512,256,10, got {text!r}") from None
    return values


def _layer_list(text: str) -> list:
    """Layer sizes; the first and the last may be "auto" (the dataset's features, outputs)."""
    parts = [v for v in text.replace(" ", "").split(",") if v]
    try:
        return [v if v == "auto" and i in (0, len(parts) - 1) else int(v) for i, v in enumerate(parts)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes like 784,512,256,10 or auto,512,256,auto, got {text!r}"
        ) from None


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """Flags that override config keys; None means 'not given'."""
    p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
    p.add_argument("--dataset", help="mnist (default), fashion-mnist, digits, click, click-book, xor, spirals, two-spirals, sine, or a .npz file")
    p.add_argument("--data-dir", help="folder holding the dataset's files, searched before $TWINNET_DATA and the cache; given, it must hold them")
    p.add_argument("--model", help="mlp (default: sizes from --layers), cnn (a small CNN) or lenet; a CNN needs mnist, fashion-mnist or digits")
    p.add_argument("--layers", type=_layer_list,
                   help="layer sizes, e.g. 784,512,256,10; 'auto' ends follow the dataset (default auto,512,256,auto)")
    p.add_argument("--hidden", type=_int_list, help="hidden sizes only, e.g. 512,256 (inputs and outputs follow the dataset)")
    p.add_argument("--activation", help="relu, leaky_relu, gelu, gelu_tanh, silu, tanh, sigmoid")
    p.add_argument("--init", help="default (PyTorch's), auto, kaiming_uniform, kaiming_normal, xavier_uniform, lecun_uniform, ...; append _fan_out to a kaiming/he/lecun name for mode=fan_out")
    p.add_argument("--norm", help="none, batch or layer")
    p.add_argument("--dropout", type=float, help="dropout probability after each hidden activation")
    p.add_argument("--optimizer", help=f"{', '.join(optim.OPTIMIZERS)} (default adam; list below)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=float, help="momentum of the momentum and nesterov optimizers (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="weight decay (not applied to biases and norm parameters)")
    p.add_argument("--schedule", help=f"{', '.join(RECIPES)} (default cosine; list below)")
    p.add_argument("--warmup-steps", type=int, help="linear warm-up steps before the schedule")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--batch-size", type=int, help="mini-batch size")
    p.add_argument("--val-fraction", type=float, help="fraction of the training set held out for validation")
    p.add_argument("--n-samples", type=int, help="train on a random subset of this many examples")
    p.add_argument("--label-smoothing", type=float, help="label smoothing for cross-entropy")
    p.add_argument("--clip-grad-norm", type=float, help="clip the global gradient norm (0: off)")
    p.add_argument("--early-stopping", type=int, help="patience in epochs on val_loss (0: off)")
    p.add_argument("--seed", type=int, help="seed for weights, data order and dropout")
    p.add_argument("--dtype", help="float32 or float64")
    p.add_argument("--engine", help="numpy (default) or torch")
    p.add_argument("--device", help="cpu or cuda (torch engine)")
    p.add_argument("--nproc", type=int, help="processes for data-parallel training (torch engine)")
    p.add_argument("--diagnostics", action="store_true", default=None, help="record per-layer diagnostics")
    p.add_argument("--diagnostics-every", type=int, help="record diagnostics every N steps (default 50)")
    p.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps (0: epoch ends only)")


def _train_epilog() -> str:
    """The optimisers and schedules, from their tables (twinnet.optim)."""
    lines = ["optimizers (--optimizer NAME): class, then each hyperparameter with its rule",
             "and class default; --lr, --momentum, --weight-decay set those of that name:"]
    lines += [f"  {optim.registry.describe(name)}" for name in optim.OPTIMIZERS]
    lines += ["", "schedules (--schedule NAME):"]
    lines += [f"  {name:<14}{recipe.doc}" for name, recipe in RECIPES.items()]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (exit 2) like every other error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"twinnet: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="twinnet",
        description="Neural networks from scratch in NumPy, built twice (PyTorch twin).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "train",
        help="train a model (default: 784-512-256-10 ReLU MLP on MNIST)",
        epilog=_train_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_flags(p)
    p.add_argument("--out", help="run folder (default runs/<timestamp>-<dataset>)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")

    p = sub.add_parser("eval", help="test metrics and confusion matrix of a run")
    p.add_argument("dir", help="run folder")
    p.add_argument("--best", action="store_true", help="evaluate best.safetensors instead of model.safetensors")

    p = sub.add_parser(
        "predict",
        help="predict with a trained run: .npy, .csv or a digit .png",
        description="One line per example: index, predicted class, probability. Inputs are unscaled, "
        "like the dataset's raw files; the run's training scaling is applied. Image runs (mnist, "
        "fashion-mnist, digits) take pixels either in [0, 1] or in the raw range (0-255; digits 0-16): "
        "a file whose values are all <= 1 is read as [0, 1] (say which with --pixel-max).",
    )
    p.add_argument("dir", help="run folder")
    p.add_argument("file", help="inputs: .npy or .csv (one example per row, unscaled) or a .png image (MNIST runs)")
    p.add_argument("--pixel-max", default="auto", help="image runs: the value of a white pixel in FILE: auto (default), 1, 255 or 16")
    p.add_argument("--raw", action="store_true", help="inputs are already scaled like the training data")

    p = sub.add_parser("gradcheck", help="check hand-written gradients against finite differences")
    p.add_argument("--layers", type=_int_list, default=[20, 64, 32, 1], help="layer sizes (default 20,64,32,1)")
    p.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    p.add_argument("--norm", default="none", help="none, batch or layer")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout probability (a fixed mask is used)")
    p.add_argument("--loss", default=None, help="mse, bce-logits or cross-entropy (default: from the output size)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eps", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float64", help="float64 (default) or float32 (shows why float32 fails)")
    p.add_argument("--kink", action="store_true", help="put one hidden pre-activation within eps of the ReLU kink")

    p = sub.add_parser("twin", help="compare the NumPy engine with its PyTorch twin")
    p.add_argument("--model", default="mlp", help="mlp (built from --layers) or a CNN on 1x28x28 images: cnn, lenet")
    p.add_argument("--layers", type=_int_list, default=[20, 64, 32, 10])
    p.add_argument("--activation", default="relu")
    p.add_argument("--norm", default="none")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--optimizer", default=None, help="also compare N optimiser steps: sgd, momentum, nesterov, rmsprop, adagrad, adam, adamw")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dtype", default="float64", help="the model's dtype: float64 (default) or float32")
    p.add_argument(
        "--precision",
        default="float64",
        help="float64 (default): compare float64 copies, tolerance 1e-10 (proves the formulas); "
        "model: compare in --dtype (float32: within 1e-5 or 4x torch's own float32 error)",
    )
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("trace", help="print the forward and backward pass of the 2-2-1 worked example (or your own)")
    p.add_argument("--x", default=None, help="input, e.g. 0.5,0.1")
    p.add_argument("--y", type=float, default=None, help="target (default 1)")
    p.add_argument("--w1", default=None, help="W1 row-major, e.g. 0.1,0.2,0.3,0.4")
    p.add_argument("--b1", default=None, help="b1, e.g. 0,0")
    p.add_argument("--w2", default=None, help="W2, e.g. 0.5,0.6")
    p.add_argument("--b2", type=float, default=None, help="b2 (default 0)")
    p.add_argument("--activation", default="sigmoid", help="sigmoid (default), relu or tanh")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate for the update step")
    p.add_argument("--output", default=None, help="output unit: linear, sigmoid, tanh or relu (default: --activation)")
    p.add_argument("--sizes", default=None, help="network inputs-hidden-1, e.g. 1-1-1 or 3-2-1 (default 2-2-1)")
    p.add_argument("--explain", default=None, help="write one weight's gradient out factor by factor, e.g. W1[1,2], b1[2], W2[1], b2")

    p = sub.add_parser("report", help="write DIR/report.html with plots and findings")
    p.add_argument("dir", help="run folder")

    p = sub.add_parser("experiment", help="run a classic experiment (--list shows them)")
    p.add_argument("name", nargs="?", help="experiment name")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out", help="output folder (default runs/experiments/<name>)")
    p.add_argument("--quick", action="store_true", help="a few-seconds version")
    p.add_argument("--data-dir", help="folder holding MNIST (for the MNIST experiments)")
    p.add_argument("--mode", help="another way to run it, e.g. xor --mode book (--list shows the modes)")

    p = sub.add_parser("studio", help="the live browser studio: playground, backprop, runs")
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="run folders to list (default ./runs)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")

    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    f = dsub.add_parser("fetch", help="download a dataset into the user cache and verify it")
    f.add_argument("name", help="mnist or fashion-mnist")
    f.add_argument("--cache-dir", help="where to store it (default ~/.cache/twinnet)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from twinnet.cli import commands

    handler = getattr(commands, f"cmd_{args.command}")
    try:
        return int(handler(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print("twinnet: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, KeyError, ImportError, MemoryError) as e:
        if os.environ.get("TWINNET_DEBUG"):
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in message:
            message = f"{message}: {e.filename}"
        print(f"twinnet: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
