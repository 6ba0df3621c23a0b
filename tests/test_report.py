"""The HTML report and the findings: self-contained, honest about what is missing, escaped."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from twinnet import losses, nn, optim
from twinnet.config import TrainConfig
from twinnet.diagnostics import Diagnostics, findings, write_report
from twinnet.train import Trainer

DEPTH, WIDTH = 10, 64


def make_run(run_dir, act, init, diagnostics=True, epochs=2, seed=0):
    """A run folder as ``twinnet train`` writes it, from a short fit of a 20-64x9-1 network."""
    rng = np.random.default_rng(seed)
    sizes = [20] + [WIDTH] * (DEPTH - 1) + [1]
    layers = []
    for i in range(DEPTH):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], init=init, rng=rng))
        if i < DEPTH - 1:
            layers.append(act())
    model = nn.Sequential(*layers)
    x = rng.normal(size=(256, 20)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.float32)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        dataset="synthetic",
        layers=sizes,
        activation=act.__name__.lower(),
        init=init,
        epochs=epochs,
        batch_size=64,
        diagnostics=diagnostics,
        diagnostics_every=3,
    )
    (run_dir / "config.toml").write_text(config.to_toml())
    callbacks = [Diagnostics(run_dir, every=3, probe=(x[:128], y[:128]))] if diagnostics else []
    trainer = Trainer(
        model,
        losses.BCEWithLogitsLoss(),
        optim.Adam(model.parameters(), lr=1e-3),
        callbacks=callbacks,
        task="binary",
    )
    trainer.fit((x[:192], y[:192]), val=(x[192:], y[192:]), epochs=epochs, batch_size=64)
    trainer.history.to_csv(run_dir / "history.csv")
    test = trainer.evaluate(x[192:], y[192:])
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_seconds": 0.1,
        "epochs": epochs,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


@pytest.fixture(scope="module")
def sigmoid_report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("sigmoid") / "run", nn.Sigmoid, "xavier_uniform")
    return run, write_report(run)


# -- the report -------------------------------------------------------------------------
def test_report_names_vanishing_gradients_in_a_deep_sigmoid_run(sigmoid_report):
    run, path = sigmoid_report
    assert path == run / "report.html"
    page = path.read_text()
    assert "vanishing gradients" in page
    assert "layer 0 (Linear)" in page and "layer 18 (Linear)" in page
    rules = {f.rule for f in findings(run)}
    assert "vanishing_gradients" in rules


def test_relu_he_run_has_no_vanishing_gradients(tmp_path):
    run = make_run(tmp_path / "relu", nn.ReLU, "kaiming_normal", epochs=1)
    assert "vanishing_gradients" not in {f.rule for f in findings(run)}


def test_report_is_one_self_contained_file(sigmoid_report):
    run, path = sigmoid_report
    page = path.read_text()
    assert "http://" not in page and "https://" not in page and 'src="//' not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.IGNORECASE)
    assert targets and all(t.startswith("data:image/png;base64,") for t in targets), targets[:3]
    assert not re.search(r"url\s*\(", page)  # no CSS fetches either
    names = [
        "curves",
        "grad_norms",
        "activation_std",
        "dead_saturated",
        "update_ratio",
        "histograms",
    ]
    assert len(targets) == len(names)
    for t in targets:
        assert base64.b64decode(t.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    for name in names:
        assert (run / "plots" / f"{name}.png").is_file()
    for section in ("Findings", "Final metrics", "Per-layer statistics", "Configuration"):
        assert f"<h2>{section}</h2>" in page
    assert "test_accuracy" in page and "xavier_uniform" in page


def test_report_without_diagnostics_still_reports_the_run(tmp_path):
    run = make_run(tmp_path / "plain", nn.ReLU, "default", diagnostics=False, epochs=1)
    page = write_report(run).read_text()
    assert "Diagnostics were not recorded" in page and "--diagnostics" in page
    assert "test_accuracy" in page and page.count("data:image/png;base64,") == 1  # the curves
    assert "Per-layer statistics" not in page


def test_report_on_an_almost_empty_folder(tmp_path):
    (tmp_path / "metrics.json").write_text("{not json")
    page = write_report(tmp_path).read_text()
    assert "No <code>config.toml</code>" in page
    assert "metrics.json could not be read" in page
    assert "Diagnostics were not recorded" in page
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        write_report(tmp_path / "missing")


def test_report_escapes_every_text(tmp_path):
    (tmp_path / "config.toml").write_text('dataset = "<script>alert(1)</script>"\n')
    (tmp_path / "metrics.json").write_text(json.dumps({"<b>bold</b>": "<img src=x>"}))
    page = write_report(tmp_path).read_text()
    assert "<script>" not in page and "<b>bold" not in page and "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_twinnet_train_with_diagnostics_then_report(tmp_path):
    from twinnet.train.run import run_training

    config = TrainConfig(
        dataset="spirals",
        layers=[2, 32, 32, 3],
        epochs=2,
        batch_size=64,
        diagnostics=True,
        diagnostics_every=10,
        checkpoint_every=0,
    )
    result = run_training(config, out=tmp_path / "run", progress=False, log=lambda *a: None)
    run = result.directory
    rows = (run / "diagnostics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,layer,layer_type,statistic,value" and len(rows) > 50
    page = write_report(run).read_text()
    assert "Per-layer statistics" in page and "layer 1 (ReLU, after Linear 0)" in page
    assert "Diagnostics were not recorded" not in page


def test_cli_report_command(tmp_path, capsys):
    from twinnet.cli.main import main

    (tmp_path / "config.toml").write_text(TrainConfig(dataset="xor").to_toml())
    assert main(["report", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out and (tmp_path / "report.html").is_file()


def test_report_renders_in_headless_chromium(sigmoid_report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(
            "chromium not installed (apt-get install chromium) - needed for the screenshot check"
        )
    _, path = sigmoid_report
    shot = tmp_path / "shot.png"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        f"file://{path.resolve()}",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}  # chromium writes its caches under HOME
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert shot.is_file(), f"no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]  # floats in [0, 1]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05  # not a blank page
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.15
    assert colourful.mean() > 0.002  # the plots' coloured lines and the findings box are drawn


# -- the findings rules, on hand-made rows ------------------------------------------------
def rows_for(steps, values: dict):
    """Rows of a 0 Linear, 1 ReLU, 2 Linear, 3 ReLU, 4 Linear network; ``values`` maps
    (layer, statistic) to a function of the step."""
    types = {"0": "Linear", "1": "ReLU", "2": "Linear", "3": "ReLU", "4": "Linear"}
    out = []
    for s in steps:
        values = {
            (layer, "act_mean"): lambda s: 0.1 for layer in types
        } | values  # every layer appears
        for (layer, statistic), f in values.items():
            out.append(
                {
                    "step": s,
                    "epoch": 1,
                    "layer": layer,
                    "layer_type": types[layer],
                    "statistic": statistic,
                    "value": float(f(s)),
                }
            )
    return out


def test_dead_units_finding_quotes_layer_share_and_step():
    rows = rows_for(
        [1, 600, 1200],
        {("1", "dead_fraction"): lambda s: 0.0, ("3", "dead_fraction"): lambda s: 0.41 * (s > 1)},
    )
    (f,) = findings(rows)
    assert f.rule == "dead_units" and f.layers == ("3",) and f.step == 1200
    assert f.message.startswith(
        "layer 3 (ReLU, after Linear 2): 41% of units dead at step 1200 (first seen at step 600)"
    )


def test_findings_say_when_a_problem_went_away():
    rows = rows_for([1, 50, 100], {("1", "dead_fraction"): lambda s: 0.6 if s == 50 else 0.1})
    (f,) = findings(rows)
    assert (
        "60% of units dead at step 50" in f.message
        and "back within the line by the last record (step 100)" in f.message
    )


def test_gradient_ratio_findings():
    vanishing = rows_for(
        [1, 50],
        {("0", "weight_grad_norm"): lambda s: 1e-9, ("4", "weight_grad_norm"): lambda s: 1e-3},
    )
    (f,) = findings(vanishing)
    assert (
        f.rule == "vanishing_gradients"
        and "vanishing gradients" in f.message
        and "1.0e-06" in f.message
    )
    exploding = rows_for(
        [1], {("0", "weight_grad_norm"): lambda s: 1e4, ("4", "weight_grad_norm"): lambda s: 1.0}
    )
    assert [f.rule for f in findings(exploding)] == ["exploding_gradients"]
    healthy = rows_for(
        [1], {("0", "weight_grad_norm"): lambda s: 0.01, ("4", "weight_grad_norm"): lambda s: 0.1}
    )
    assert findings(healthy) == []


def test_update_ratio_findings_use_the_median_after_step_1():
    high = rows_for(
        [1, 50, 100, 150],
        {
            ("0", "weight_update_ratio"): lambda s: 0.5 if s == 1 else 3e-2,
            ("2", "weight_update_ratio"): lambda s: 1e-3,
        },
    )
    (f,) = findings(high)
    assert f.rule == "learning_rate_high" and "learning rate may be too high" in f.message
    assert f.layers == ("0",) and "3.0e-02" in f.message
    low = rows_for([1, 50], {("0", "weight_update_ratio"): lambda s: 1e-7})
    assert [f.rule for f in findings(low)] == ["learning_rate_low"]
    frozen = rows_for([1, 50], {("0", "weight_update_ratio"): lambda s: 0.0})
    assert findings(frozen) == []  # no movement at all is not a learning-rate problem
    spike_at_step_1 = rows_for(
        [1, 50, 100], {("0", "weight_update_ratio"): lambda s: 0.5 if s == 1 else 1e-3}
    )
    assert findings(spike_at_step_1) == []


def test_saturation_collapse_and_non_finite_findings():
    types = {"0": "Linear", "1": "Tanh", "2": "Linear", "3": "Tanh"}
    rows = [
        {
            "step": 10,
            "epoch": 1,
            "layer": layer,
            "layer_type": types[layer],
            "statistic": stat,
            "value": v,
        }
        for layer, stat, v in [
            ("0", "act_mean", 0.0),
            ("1", "saturated_fraction", 0.75),
            ("3", "saturated_fraction", 0.1),
            ("1", "act_std", 0.5),
            ("3", "act_std", 1e-3),
            ("2", "act_mean", float("nan")),
        ]
    ]
    got = {f.rule: f for f in findings(rows)}
    assert set(got) == {"saturation", "activations_collapse", "non_finite"}
    assert got["saturation"].message.startswith(
        "layer 1 (Tanh, after Linear 0): 75% of units saturated at step 10"
    )
    assert (
        got["non_finite"].severity == "error"
        and "layer 2 (Linear) act_mean is nan" in got["non_finite"].message
    )


def test_findings_of_a_folder_without_diagnostics_is_empty(tmp_path):
    assert findings(tmp_path) == []


# -- one rule for the findings and the per-layer table (issue 15.5) ------------------------
def red_layers(rows) -> set[str]:
    """Labels of the table rows that have a red cell."""
    from twinnet.diagnostics.report import _layer_section

    html_table = _layer_section(rows)
    out = set()
    for tr in re.findall(r"<tr>(.*?)</tr>", html_table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr)
        if cells and 'class="num bad"' in tr:
            out.add(cells[0])
    return out


def cosine_ratio(s: int) -> float:
    """An update ratio that follows a cosine schedule over 1000 steps down to lr ~ 0."""
    return max(1e-3 * (1 + np.cos(np.pi * s / 1000)) / 2, 2.6e-7)


def test_end_of_a_cosine_schedule_is_no_alarm_in_findings_or_table():
    steps = [1, *range(50, 1001, 50)]
    rows = rows_for(steps, {(layer, "weight_update_ratio"): cosine_ratio for layer in ("0", "2", "4")})
    assert rows[-1]["value"] == pytest.approx(2.6e-7)  # the last record: far below 1e-5
    assert findings(rows) == []
    assert red_layers(rows) == set()  # was: every update ratio painted red
    from twinnet.diagnostics.findings import judged_values

    value, bad, how = judged_values(rows)[("0", "weight_update_ratio")]
    assert not bad and how == "median of 20" and value == pytest.approx(np.median([cosine_ratio(s) for s in steps[1:]]))


@pytest.mark.parametrize(
    "values, rule",
    [
        ({("0", "weight_update_ratio"): lambda s: 3e-2, ("2", "weight_update_ratio"): lambda s: 1e-3}, "learning_rate_high"),
        ({("2", "weight_update_ratio"): lambda s: 1e-7 if s > 1 else 1e-3}, "learning_rate_low"),
        ({("1", "dead_fraction"): lambda s: 0.4}, "dead_units"),
        ({("0", "weight_update_ratio"): lambda s: 1e-3 if s < 200 else 0.5}, None),  # median 1e-3, last 0.5
    ],
)
def test_table_is_red_exactly_where_a_finding_fires(values, rule):
    rows = rows_for([1, 50, 100, 150, 200], values)
    found = [f for f in findings(rows) if f.rule in ("learning_rate_high", "learning_rate_low", "dead_units")]
    assert [f.rule for f in found] == ([rule] if rule else [])
    from twinnet.diagnostics.stats import layer_labels

    types = {r["layer"]: r["layer_type"] for r in rows}
    labels = layer_labels(list(types.items()))
    assert red_layers(rows) == {labels[name] for f in found for name in f.layers}


def test_histograms_share_bins_and_rebin_keeps_counts(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from twinnet.diagnostics import plots

    # hand-computed: [2, 2] on [0, 1, 2] -> [4] on [0, 2]; [1, 1, 2] on [0, .5, 1, 2]
    np.testing.assert_allclose(plots.rebin([2, 2], [0, 1, 2], [0, 2]), [4])
    np.testing.assert_allclose(plots.rebin([4], [0, 2], [0, 0.5, 1, 2]), [1, 1, 2])
    first = {"step": 1, "layer": "1", "counts": [5, 10, 5], "edges": [-0.3, -0.1, 0.1, 0.3]}
    last = {"step": 90, "layer": "1", "counts": [1, 3, 6, 3, 2], "edges": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]}
    edges = plots.shared_edges([first, last])
    np.testing.assert_allclose(edges, [-2, -1, 0, 1, 2, 3])  # the widest bin, the whole range
    assert plots.rebin(first["counts"], first["edges"], edges).sum() == pytest.approx(20)

    drawn = []
    monkeypatch.setattr(Axes, "stairs", lambda self, values, edges, **kw: drawn.append((id(self), np.asarray(edges))))
    rows = rows_for([1, 90], {("1", "act_std"): lambda s: 1.0})
    plots.plot_diagnostics(rows, [first, last], tmp_path)
    assert len(drawn) == 2 and drawn[0][0] == drawn[1][0]
    np.testing.assert_array_equal(drawn[0][1], drawn[1][1])  # was: each record its own bins


def test_update_ratio_reference_labels_are_readable(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from twinnet.diagnostics import plots

    labels = []
    original = Axes.annotate

    def spy(self, text, *args, **kwargs):
        labels.append((text, kwargs.get("fontsize"), kwargs.get("bbox")))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Axes, "annotate", spy)
    rows = rows_for([1, 50], {("0", "weight_update_ratio"): lambda s: 1e-3, ("1", "act_std"): lambda s: 1.0})
    plots.plot_diagnostics(rows, [], tmp_path)
    assert [t for t, _, _ in labels] == ["too high: 1e-2", "typical: 1e-3", "too low: 1e-5"]
    # 10 pt at the figure's 100 dpi is 14 px in the 750 px wide image the report shows at 1200 px
    assert all(size >= 10 and bbox for _, size, bbox in labels)


def test_plots_without_activation_statistics(tmp_path):
    """Rows with no act_std at all (a run recording only weights) draw the other plots."""
    from twinnet.diagnostics import plots

    rows = rows_for([1, 50], {("0", "weight_update_ratio"): lambda s: 1e-3})
    titles = [p.title for p in plots.plot_diagnostics(rows, [], tmp_path)]
    assert "Update ratio" in titles and "Activation scale" not in titles
