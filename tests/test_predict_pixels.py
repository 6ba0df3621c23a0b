"""`twinnet predict` on real MNIST test digits saved both ways: pixels 0-255 and [0, 1] (issue 15.2).

Before: a [0, 1] file went through the 0-255 training scaler unchanged, and every digit
came out as the same class. Now both conventions give the same predictions, the right
ones for most digits, and values that are no pixels are refused with one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from twinnet.cli.main import main
from twinnet.data import download

MNIST = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MNIST.is_dir(), reason="MNIST not in $TWINNET_DATA/mnist"),
]
N = 40


@pytest.fixture(scope="module")
def run_and_digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    code = main(["train", "--dataset", "mnist", "--layers", "784,64,10", "--epochs", "2", "--n-samples", "6000",
                 "--out", str(root / "run"), "--quiet"])  # fmt: skip
    assert code == 0
    arrays = download.read_folder(MNIST, download.REMOTE["mnist"])
    images, labels = arrays["test"]
    x255 = images[:N].reshape(N, 784).astype(np.float64)  # what the IDX file holds: 0..255
    np.save(root / "d255.npy", x255)
    np.save(root / "d1.npy", (x255 / 255.0).astype(np.float32))  # the usual float convention
    np.savetxt(root / "d1.csv", x255 / 255.0, delimiter=",")
    np.savetxt(root / "d255.csv", x255, delimiter=",", fmt="%d")
    np.save(root / "standardised.npy", (x255 - 33.3) / 78.6)
    return root, labels[:N].astype(int)


def predicted(capsys, *argv) -> tuple[int, np.ndarray, str]:
    code = main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    lines = [line.split("\t") for line in captured.out.strip().splitlines()]
    return code, np.array([int(cls) for _, cls, _ in lines]) if code == 0 else np.array([]), captured.err


def test_both_pixel_conventions_give_the_same_right_answers(run_and_digits, capsys):
    root, labels = run_and_digits
    run = root / "run"
    code, ref, err = predicted(capsys, run, root / "d255.npy")
    assert code == 0 and err == ""  # the training convention: no note
    assert (ref == labels).mean() >= 0.8, (ref, labels)
    assert len(set(ref.tolist())) >= 8  # not one class for everything
    for name in ("d1.npy", "d1.csv", "d255.csv"):
        code, got, err = predicted(capsys, run, root / name)
        assert code == 0, err
        np.testing.assert_array_equal(got, ref, err_msg=name)
        assert ("[0, 1]" in err) == name.startswith("d1"), err  # says how it read the file
    code, got, _ = predicted(capsys, run, root / "d1.npy", "--pixel-max", "1")
    assert code == 0 and np.array_equal(got, ref)


def test_values_that_are_no_pixels_are_refused(run_and_digits, capsys):
    root, _ = run_and_digits
    run = root / "run"
    for argv in ([root / "standardised.npy"], [root / "d255.npy", "--pixel-max", "1"], [root / "d1.npy", "--pixel-max", "3"]):
        code, _, err = predicted(capsys, run, *argv)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("twinnet: error:"), err
    code, _, err = predicted(capsys, run, root / "standardised.npy")
    assert "--raw" in err and "[0, 1] or [0, 255]" in err


def test_predict_help_says_what_is_expected(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "[0, 1]" in out and "0-255" in out and "--pixel-max" in out
