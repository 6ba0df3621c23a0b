"""Per-channel diagnostics of CNNs and their pictures (issue 20 item 4).

- channel_stats on a network whose numbers can be worked out by hand (a dead channel,
  the gradient per channel from softmax - onehot), and against torch autograd;
- the probe leaves the model exactly as it was;
- collect_stats counts dead *channels* of an image batch, not dead columns;
- the filter, feature-map and channel figures of a run folder, and nothing for an MLP.
"""

import numpy as np
import pytest

from twinnet import losses, nn
from twinnet.config import TrainConfig
from twinnet.diagnostics import collect_stats
from twinnet.diagnostics.channels import channel_stats, format_table, summary_rows
from twinnet.diagnostics.conv_plots import has_conv, make_conv_plots, mosaic
from twinnet.models import build_cnn, build_mlp
from twinnet.train.run import run_training


def _one_dead_channel_net(h=4, w=4):
    """Conv 1x1 with filters +1 and -1 (no bias), ReLU, Flatten, Linear: on positive
    images channel 1 is -x < 0 everywhere, a dead channel."""
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(1, 2, 1, bias=False, dtype=np.float64, rng=rng)
    conv.weight.data[...] = np.array([1.0, -1.0]).reshape(2, 1, 1, 1)
    lin = nn.Linear(2 * h * w, 3, dtype=np.float64, rng=rng)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin)


def test_channel_stats_by_hand():
    model = _one_dead_channel_net()
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, (5, 1, 4, 4))  # all positive
    y = rng.integers(0, 3, 5)
    stats = channel_stats(model, losses.CrossEntropyLoss(), x, y)
    assert [(s.layer, s.layer_type) for s in stats] == [("0", "Conv2d"), ("1", "ReLU")]
    conv, relu = stats
    assert relu.dead.tolist() == [False, True] and relu.active.tolist() == [1.0, 0.0]
    assert relu.mean[0] == pytest.approx(x.mean()) and relu.std[0] == pytest.approx(x.std())
    assert conv.mean[1] == pytest.approx(-x.mean())
    # dL/dlogits = (softmax - onehot) / B; dL/dh = dlogits @ W, h the flattened ReLU output
    h = np.concatenate([x, np.zeros_like(x)], axis=1).reshape(5, -1)
    logits = h @ model[3].weight.data.T + model[3].bias.data
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = (p - np.eye(3)[y]) / 5
    dh = (dlogits @ model[3].weight.data).reshape(5, 2, 4, 4)
    want = np.sqrt((dh**2).sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(relu.grad_norm, want, rtol=1e-12)
    # through the ReLU: channel 0 passes everything, the dead channel 1 nothing
    np.testing.assert_allclose(conv.grad_norm, [want[0], 0.0], rtol=1e-12)
    # dL/dW[0] = sum of dL/dy_0 * x (1x1 filter); the dead filter learns nothing
    assert conv.weight_grad_norm[0] == pytest.approx(abs((dh[:, 0] * x[:, 0]).sum()), rel=1e-12)
    assert conv.weight_grad_norm[1] == 0.0 and conv.weight_norm.tolist() == [1.0, 1.0]

    rows = {(r["layer"], r["statistic"]): r["value"] for r in summary_rows(stats)}
    assert rows[("1", "dead_channels")] == 1 and rows[("1", "dead_channel_fraction")] == 0.5
    assert ("0", "dead_channels") not in rows  # a convolution cannot be dead, its ReLU can
    assert "1/2" in format_table(stats)


def test_channel_stats_leave_the_model_as_it_was():
    model = build_cnn("cnn", (1, 8, 8), 10, dropout=0.3, rng=0)
    for p in model.parameters():
        p.grad[...] = 7.0
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 6)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    dropout_state = model[7].rng.bit_generator.state
    channel_stats(model, losses.CrossEntropyLoss(), x, y)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # weights, BN statistics
    assert all(np.all(p.grad == 7.0) for p in model.parameters())
    assert model[7].rng.bit_generator.state == dropout_state


def test_channel_gradients_match_torch_autograd():
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    from twinnet import twin

    model = build_cnn("lenet", (1, 28, 28), 10, norm="batch", dtype=np.float64, rng=3)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    ours = channel_stats(model, losses.CrossEntropyLoss(), x, y)

    tmodel = twin.to_torch(model)
    h, outs = torch.from_numpy(x), []
    for layer in tmodel:
        h = layer(h)
        h.retain_grad()
        outs.append(h)
    torch.nn.functional.cross_entropy(h, torch.from_numpy(y)).backward()
    for s in ours:
        g = outs[int(s.layer)].grad.numpy()
        np.testing.assert_allclose(s.grad_norm, np.sqrt((g**2).sum(axis=(0, 2, 3))), rtol=1e-10, err_msg=s.layer)
        out = outs[int(s.layer)].detach().numpy()
        np.testing.assert_allclose(s.mean, out.mean(axis=(0, 2, 3)), rtol=1e-10, atol=1e-14)
        if s.layer_type == "Conv2d":
            dw = tmodel[int(s.layer)].weight.grad.numpy()
            np.testing.assert_allclose(s.weight_grad_norm, np.sqrt((dw**2).sum(axis=(1, 2, 3))), rtol=1e-10)


def test_channel_stats_refuse_what_they_cannot_probe():
    with pytest.raises(ValueError, match=r"images \(B, C, H, W\), got shape \(2, 64\)"):
        channel_stats(build_cnn("cnn", (1, 8, 8), rng=0), losses.CrossEntropyLoss(), np.zeros((2, 64)), [0, 1])
    with pytest.raises(TypeError, match="nn.Sequential"):
        channel_stats(nn.Conv2d(1, 1, 1), losses.MSELoss(), np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))


def test_collect_stats_counts_dead_channels_not_columns():
    model = _one_dead_channel_net()
    x = np.random.default_rng(4).uniform(0.5, 2.0, (5, 1, 4, 4))
    stats = collect_stats(model, losses.CrossEntropyLoss(), x, np.array([0, 1, 2, 0, 1]))
    # 2 channels, 1 dead (as columns of width 4 it would say 0 of 4)
    assert stats.value("1", "dead_units") == 1 and stats.value("1", "dead_fraction") == 0.5


def test_mosaic_tiles_row_major_with_blank_lines():
    tiles = np.arange(12, dtype=float).reshape(3, 2, 2)
    m = mosaic(tiles, cols=2)
    assert m.shape == (5, 5)
    np.testing.assert_array_equal(m[:2, :2], tiles[0])
    np.testing.assert_array_equal(m[:2, 3:], tiles[1])
    np.testing.assert_array_equal(m[3:, :2], tiles[2])
    assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all() and np.isnan(m[3:, 3:]).all()
    scaled = mosaic(tiles, cols=3, normalise=True)
    np.testing.assert_array_equal(scaled[:2, :2], [[0, 1 / 3], [2 / 3, 1]])


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "run"
    config = TrainConfig(dataset="digits", model="cnn", epochs=1, batch_size=64, seed=0)
    assert run_training(config, out=out, progress=False).status == "completed"
    return out


def test_a_cnn_run_gets_its_filter_feature_map_and_channel_figures(cnn_run):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    plots = make_conv_plots(cnn_run)
    names = [p.path.name for p in plots]
    assert names == ["conv_filters.png", "conv_feature_maps.png", "conv_channels.png"]
    for p in plots:
        assert p.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.caption and p.title
    assert not [f for f in (cnn_run / "plots").iterdir() if f.name.startswith(".")]  # no temp files left


def test_an_mlp_run_gets_no_conv_figures(tmp_path):
    out = tmp_path / "mlp"
    run_training(TrainConfig(dataset="digits", layers=[64, 16, 10], epochs=1), out=out, progress=False)
    assert make_conv_plots(out) == [] and make_conv_plots(tmp_path / "missing") == []
    assert not has_conv(build_mlp([4, 3, 2], rng=0)) and has_conv(build_cnn("lenet", rng=0))


def test_the_report_of_a_cnn_run_shows_its_filters_and_feature_maps(cnn_run):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    from twinnet.diagnostics.report import render_report

    page = render_report(cnn_run)
    for title in ("Learned filters of the first convolution", "Feature maps of one example", "Channels: activity and gradient"):
        assert f"<h3>{title}</h3>" in page
    assert page.count('<img alt="conv_') == 3  # embedded, the page stays one file


def test_a_report_says_why_the_conv_figures_are_missing(cnn_run, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    import shutil

    from twinnet.diagnostics.report import render_report

    run = tmp_path / "run"
    shutil.copytree(cnn_run, run)
    (run / "model.safetensors").write_bytes(b"not a safetensors file")
    page = render_report(run)
    assert "The convolution figures could not be drawn" in page and "<h3>Learned filters" not in page
