"""A CNN takes its sizes from the images: an MLP's `layers` given with it is an error, not
ignored; its run folder does not pretend to have layers; its curves say which network."""

from __future__ import annotations

import pytest

from twinnet import data
from twinnet.cli.main import main as cli_main
from twinnet.config import ConfigError, TrainConfig
from twinnet.train import plots
from twinnet.train.run import run_training


@pytest.mark.parametrize("layers", [[64, 32, 10], ["auto", 100, "auto"]])
@pytest.mark.parametrize("model", ["cnn", "lenet"])
def test_layers_given_with_a_cnn_are_refused(model, layers):
    with pytest.raises(ConfigError, match="'layers' sets the sizes of an MLP.*would be ignored"):
        TrainConfig.from_dict({"dataset": "digits", "model": model, "layers": layers}, dataset_defaults=True)


def test_the_layer_lists_twinnet_filled_in_itself_still_load():
    # config.toml files of CNN runs written before the key was dropped hold one of these
    for dataset, layers in (("mnist", ["auto", 512, 256, "auto"]), ("digits", ["auto", 256, "auto"]),
                            ("digits", ["auto", 512, 256, "auto"])):
        config = TrainConfig.from_dict({"dataset": dataset, "model": "cnn", "layers": layers})
        assert config.model == "cnn"
    # and an MLP takes any sizes, as before
    assert TrainConfig.from_dict({"dataset": "digits", "layers": [64, 32, 10]}).layers == [64, 32, 10]


@pytest.mark.parametrize("flag", [["--hidden", "100"], ["--layers", "64,32,10"]])
def test_the_cli_says_so_in_one_line_with_exit_2(flag, tmp_path, capsys):
    code = cli_main(["train", "--model", "cnn", "--dataset", "digits", *flag, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "would be ignored" in err
    assert not (tmp_path / "r").exists()


def test_a_cnn_runs_config_has_no_layers_and_its_curves_name_the_network(tmp_path, monkeypatch):
    titles = []
    monkeypatch.setattr(plots, "plot_curves", lambda history, path, title="": titles.append(title))
    cnn = TrainConfig.for_dataset("digits", model="cnn", n_samples=200, epochs=1, seed=0)
    run_training(cnn, out=tmp_path / "cnn", progress=False)
    text = (tmp_path / "cnn" / "config.toml").read_text()
    assert 'model = "cnn"' in text and "layers" not in text
    read = TrainConfig.from_toml(tmp_path / "cnn" / "config.toml")
    assert read.replace(layers=cnn.layers) == cnn  # every key the CNN uses reads back the same
    mlp = TrainConfig.for_dataset("digits", n_samples=200, epochs=1, seed=0)
    run_training(mlp, out=tmp_path / "mlp", progress=False)
    assert titles == ["digits: cnn", "digits: 64-256-10"]


def test_an_image_split_counts_every_value_of_an_example_as_a_feature():
    flat, image = data.load("digits"), data.load("digits", shape="image")
    assert image.train.x.shape[1:] == (1, 8, 8)
    assert image.train.n_features == flat.train.n_features == image.n_features == 64
