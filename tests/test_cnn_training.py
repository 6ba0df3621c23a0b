"""CNNs in `twinnet train`: images from `data.load(shape="image")`, the `model` config key,
`build_cnn`'s networks, both engines, resume, eval and predict (issue 20 item 3).

Fast: scikit-learn's 8x8 digits or a few hundred MNIST images. The accuracy on the real
MNIST and Fashion-MNIST test sets is measured by full runs (README, docs/guide/convolution.md).
"""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from twinnet import data, nn
from twinnet.checkpoint import load_tensors, load_weights, read_metadata
from twinnet.cli.main import main
from twinnet.config import ConfigError, TrainConfig
from twinnet.models import build_cnn
from twinnet.train import run as run_module
from twinnet.train.run import run_training
from twinnet.train.setup import make_model

MNIST = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="real MNIST not found: set TWINNET_DATA to a folder holding mnist/",
)
# 400 of the 8x8 digits, 240 of them for training: 8 batches of 32 an epoch
DIGITS_CNN = dict(dataset="digits", model="cnn", n_samples=400, batch_size=32, lr=3e-3, epochs=2, seed=3)


def cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- images from data.load --------------------------------------------------------------------


def test_digits_as_images_are_the_flat_rows_reshaped():
    flat = data.load("digits", seed=1)
    images = data.load("digits", seed=1, shape="image")
    for a, b in ((flat.train, images.train), (flat.val, images.val), (flat.test, images.test)):
        assert b.x.shape == (len(a.x), 1, 8, 8) and b.x.dtype == np.float32
        assert np.array_equal(b.x.reshape(len(b.x), -1), a.x) and np.array_equal(a.y, b.y)
    assert images.n_features == 64  # the model's input size, as before


@needs_mnist
def test_mnist_image_keeps_rows_and_columns():
    splits = data.load("mnist", shape="image", n_samples=200, scale="none")
    raw = data.read_idx(MNIST / "t10k-images-idx3-ubyte.gz")  # (10000, 28, 28) uint8
    assert splits.test.x.shape == (10000, 1, 28, 28)
    assert np.array_equal(splits.test.x[:, 0], raw.astype(np.float32))  # pixel (r, c) stays at (r, c)


@pytest.mark.parametrize(
    "name, shape, fragment",
    [("spirals", "image", "image datasets"), ("digits", "grid", "'grid'"), ("mnist", None, "None")],
)
def test_a_bad_shape_is_one_clear_error(name, shape, fragment):
    with pytest.raises(ValueError, match="shape must be") as err:
        data.load(name, shape=shape)
    assert fragment in str(err.value)


def test_npz_files_load_flat_only(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((20, 4)), y=np.arange(20) % 2)
    with pytest.raises(ValueError, match="'flat' for a .npz"):
        data.load(path, shape="image")


# -- the networks -----------------------------------------------------------------------------


def test_default_cnn_layers_and_parameter_count():
    model = build_cnn("cnn", (1, 28, 28), 10, rng=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU",
                     "Flatten", "Linear", "ReLU", "Linear"]  # fmt: skip
    assert (model[0].stride, model[3].stride) == ((2, 2), (2, 2))
    assert model[0].bias is None and model[3].bias is None  # BatchNorm makes a bias useless
    # conv 1->32 5x5: 32*25 + BN 2*32; conv 32->64 3x3: 64*32*9 + BN 2*64; 64*7*7 -> 128; 128 -> 10
    expected = (32 * 25 + 64) + (64 * 32 * 9 + 128) + (3136 * 128 + 128) + (128 * 10 + 10)
    assert model.num_parameters() == expected
    assert model(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    assert model[0].input_grad is False  # no gradient for the data
    # norm="batch" changes nothing for the CNN that always normalises
    same = build_cnn("cnn", (1, 28, 28), 10, norm="batch", rng=0)
    assert [type(m) for m in same] == [type(m) for m in model]


def test_lenet_with_batch_norm_and_dropout():
    model = build_cnn("lenet", (1, 28, 28), 10, norm="batch", dropout=0.5, rng=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds[:9] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten"]
    assert kinds[9] == "Dropout" and model[0].bias is None  # BatchNorm makes a bias useless
    # 6*25, 16*6*25 (no biases), BatchNorm (2 per channel), 16*5*5 -> 120 -> 84 -> 10
    expected = 150 + 2400 + 2 * (6 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert model.num_parameters() == expected


def test_a_network_that_does_not_fit_the_images_says_so():
    assert build_cnn("cnn", (1, 8, 8), 10, rng=0)(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"'lenet' does not fit images of shape \(1, 8, 8\)"):
        build_cnn("lenet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="unknown CNN 'vgg'"):
        build_cnn("vgg")
    with pytest.raises(ValueError, match="norm must be one of"):
        build_cnn("cnn", norm="layer")


def test_build_cnn_is_its_torch_twin_to_1e_10():
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    from twinnet import losses, twin

    model = build_cnn("lenet", (1, 28, 28), 10, norm="batch", dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y)
    assert report.passed(), report
    assert isinstance(twin.to_torch(model)[0], torch.nn.Conv2d)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (dict(model="resnet"), "one of ['mlp', 'cnn', 'lenet']"),
        (dict(model="cnn", dataset="spirals"), "needs an image dataset"),
        (dict(model="lenet", norm="layer"), "norm 'none' or 'batch'"),
    ],
)
def test_bad_model_config_names_the_key(overrides, fragment):
    with pytest.raises(ConfigError, match="'model'") as err:
        TrainConfig(**overrides)
    assert fragment in str(err.value)


def test_the_config_builds_the_cnn_for_the_dataset():
    model = make_model(TrainConfig(dataset="Fashion_MNIST", model="cnn", seed=4))
    ref = build_cnn("cnn", (1, 28, 28), 10, rng=4)
    assert model.state_dict().keys() == ref.state_dict().keys()
    for k, v in ref.state_dict().items():
        assert np.array_equal(model.state_dict()[k], v), k  # same seed, same weights
    assert TrainConfig().model == "mlp"  # the default stays the MLP


def test_bad_model_flag_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = cli(["train", "--model", "cnn", "--dataset", "xor", "--out", tmp_path / "r"], capsys)
    assert code == 2 and err.count("\n") == 1 and "needs an image dataset" in err
    assert not (tmp_path / "r").exists()


# -- training, eval, predict -----------------------------------------------------------------


def test_train_eval_predict_a_cnn_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = cli(
        ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "2", "--batch-size", "32",
         "--lr", "3e-3", "--quiet", "--out", out], capsys)  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5, metrics  # chance is 0.10
    assert metrics["parameters"] == build_cnn("cnn", (1, 8, 8), 10).num_parameters()
    assert "model = \"cnn\"" in (out / "config.toml").read_text()

    code, stdout, err = cli(["eval", out], capsys)
    assert code == 0, err
    acc = next(float(ln.split()[1]) for ln in stdout.splitlines() if ln.split()[:1] == ["accuracy"])
    assert acc == pytest.approx(metrics["test_accuracy"], abs=1e-6)  # printed with 6 digits

    # predict reads flat rows of 64 raw pixels (0..16) and reshapes them into images
    from sklearn.datasets import load_digits

    raw = load_digits().data[:40]
    np.save(tmp_path / "x.npy", raw)
    code, stdout, err = cli(["predict", out, tmp_path / "x.npy"], capsys)
    assert code == 0, err
    predicted = [int(line.split("\t")[1]) for line in stdout.splitlines()]
    # the same as the run's model on the same rows scaled as in training, as images
    model = make_model(TrainConfig.from_toml(out / "config.toml"))
    load_weights(out / "model.safetensors", model)
    scaler = json.loads(read_metadata(out / "model.safetensors")["scaler"])
    images = data.apply_scaler(raw, scaler).reshape(40, 1, 8, 8)
    assert predicted == model.eval()(images).argmax(axis=1).tolist()


def _interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C (a real SIGINT) right after training step ``step`` of the NumPy engine."""
    on_batch_end = run_module.RunLogger.on_batch_end

    def then_interrupt(self, trainer, logs):
        on_batch_end(self, trainer, logs)
        if trainer.global_step == step:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(run_module.RunLogger, "on_batch_end", then_interrupt)


def test_an_interrupted_cnn_run_resumes_bit_identical(tmp_path, monkeypatch):
    config = TrainConfig(**DIGITS_CNN, dropout=0.2, checkpoint_every=0)
    full = run_training(config, out=tmp_path / "full", progress=False)
    assert full.status == "completed"
    _interrupt_at(monkeypatch, 12)  # in epoch 2 (8 batches an epoch)
    cut = run_training(config, out=tmp_path / "cut", progress=False)
    assert cut.status == "interrupted" and not (tmp_path / "cut" / "model.safetensors").exists()
    monkeypatch.undo()
    done = run_training(resume=tmp_path / "cut", progress=False, log=lambda line: None)
    assert done.status == "completed"
    a, _ = load_tensors(tmp_path / "full" / "model.safetensors")
    b, _ = load_tensors(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and "1.running_mean" in a  # BatchNorm2d statistics resume too
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert (tmp_path / "cut" / "history.csv").read_bytes() == (tmp_path / "full" / "history.csv").read_bytes()


def test_the_torch_engine_trains_the_same_cnn(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="PyTorch not installed")
    monkeypatch.setenv("TWINNET_NUM_THREADS", "1")
    # float64, no dropout: the two engines take the same steps up to rounding
    config = TrainConfig(**{**DIGITS_CNN, "epochs": 1}, dtype="float64")
    ours = run_training(config, out=tmp_path / "numpy", progress=False)
    theirs = run_training(config.replace(engine="torch"), out=tmp_path / "torch", progress=False)
    assert ours.status == theirs.status == "completed"
    a, _ = load_tensors(tmp_path / "numpy" / "model.safetensors")
    b, _ = load_tensors(tmp_path / "torch" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-9, err_msg=name)


def test_an_interrupted_torch_cnn_run_resumes_bit_identical(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="PyTorch not installed")
    from twinnet.train.engines.torch import TorchStepper

    monkeypatch.setenv("TWINNET_NUM_THREADS", "1")
    config = TrainConfig(**DIGITS_CNN, dropout=0.2, engine="torch", checkpoint_every=0)
    full = run_training(config, out=tmp_path / "full", progress=False)
    apply, steps = TorchStepper.apply, []

    def step_then_ctrl_c(self):
        apply(self)
        steps.append(1)
        if len(steps) == 12:  # in epoch 2
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TorchStepper, "apply", step_then_ctrl_c)
    cut = run_training(config, out=tmp_path / "cut", progress=False)
    assert cut.status == "interrupted"
    monkeypatch.setattr(TorchStepper, "apply", apply)
    done = run_training(resume=tmp_path / "cut", progress=False, log=lambda line: None)
    assert done.status == "completed"
    a, _ = load_tensors(tmp_path / "full" / "model.safetensors")
    b, _ = load_tensors(tmp_path / "cut" / "model.safetensors")
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert done.metrics["test_accuracy"] == full.metrics["test_accuracy"]


@needs_mnist
@pytest.mark.slow
def test_a_small_mnist_subset_trains_as_images(tmp_path):
    config = TrainConfig(model="cnn", n_samples=600, epochs=2, seed=0)
    result = run_training(config, out=tmp_path / "run", progress=False)
    assert result.status == "completed" and result.metrics["test_accuracy"] > 0.5  # chance 0.1


def test_model_layers_are_not_an_mlp_in_a_cnn_run():
    model = make_model(TrainConfig(dataset="digits", model="cnn"))
    assert isinstance(model[0], nn.Conv2d) and model[-1].out_features == 10


def test_the_cnn_defaults_to_dropout_before_its_classifier_unless_told_otherwise():
    # MODEL_DEFAULTS: without dropout the default CNN overfits MNIST (test 99.12% < 99.2%)
    assert TrainConfig.for_dataset("mnist", model="cnn").dropout == 0.5
    assert TrainConfig.for_dataset("mnist", model="cnn", dropout=0.0).dropout == 0.0
    assert TrainConfig.for_dataset("mnist", model="lenet").dropout == 0.0
    assert TrainConfig.for_dataset("mnist").dropout == 0.0  # the MLP's run is unchanged
    # a saved config is read back as written, without defaults
    assert TrainConfig.from_dict({"model": "cnn"}).dropout == 0.0
