"""An explicit --data-dir is obeyed or refused, never silently replaced (issue 15.3).

Before: a --data-dir that did not exist was skipped when $TWINNET_DATA was set, and
the run trained on other data with exit 0.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from twinnet import data
from twinnet.cli.main import main
from twinnet.data.idx import DataError

SHARED = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
needs_mnist = pytest.mark.skipif(not SHARED.is_dir(), reason="MNIST not in $TWINNET_DATA/mnist")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@needs_mnist
def test_missing_data_dir_is_an_error_even_with_twinnet_data(tmp_path, capsys):
    assert os.environ.get("TWINNET_DATA")  # the fall-back that used to hide the mistake
    nowhere = tmp_path / "no-such-folder"
    code = main(["train", "--dataset", "mnist", "--data-dir", str(nowhere), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 2
    line = one_error_line(capsys)
    assert str(nowhere) in line and "does not exist" in line
    assert not (tmp_path / "run" / "model.safetensors").exists()


@needs_mnist
def test_data_dir_without_the_files_is_an_error(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "notes.txt").write_text("not MNIST")
    with pytest.raises(DataError, match=r"mnist.* not found in data_dir .*: missing train-images-idx3-ubyte"):
        data.load("mnist", data_dir=tmp_path)
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 2
    line = one_error_line(capsys)
    assert str(tmp_path) in line and "t10k-labels-idx1-ubyte" in line


@needs_mnist
@pytest.mark.parametrize("layout", ["folder itself", "name subfolder"])
def test_data_dir_with_the_files_is_used(tmp_path, layout):
    target = tmp_path if layout == "folder itself" else tmp_path / "mnist"
    target.mkdir(exist_ok=True)
    for f in SHARED.iterdir():
        if "idx" in f.name:
            shutil.copy(f, target / f.name)
    splits = data.load("mnist", data_dir=tmp_path, n_samples=100)
    assert Path(splits.source) == target


def test_missing_data_dir_for_a_generated_dataset(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load("xor", data_dir=tmp_path / "nope")
    assert len(data.load("xor", data_dir=tmp_path).train.x) > 0  # an existing folder is fine
