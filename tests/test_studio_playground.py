"""The playground in a real browser (Debian's chromium driven by Playwright): train on
spirals and watch the loss fall and the heat map change, pause, step exactly once,
change the activation, send a bad value and read the message. Screenshots are saved
under tests/artifacts/studio/."""

from __future__ import annotations

from studio_support import browser, page, runs_dir, screenshot, studio_server  # noqa: F401
from twinnet.config import TrainConfig
from twinnet.train.run import load_splits
from twinnet.train.setup import check_layers_fit


def _heatmap_pixels(tab) -> list[int]:
    return tab.evaluate(
        """() => { const c = document.getElementById('heatmap');
                   return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
                                     .filter((_, i) => i % 97 === 0)); }"""
    )


def _step(tab) -> int:
    return int(tab.locator("#step-count").inner_text())


def _wait_state(tab, state: str) -> None:
    tab.wait_for_function(f"() => window.studio.update && window.studio.update.state === '{state}'")


def test_train_pause_step_and_change_activation(studio_server, page):
    page.goto(studio_server + "/?dataset=spirals&seed=1")
    _wait_state(page, "ready")
    assert page.locator("#status").inner_text() == "ready"
    before_pixels = _heatmap_pixels(page)
    first_loss = page.evaluate("() => window.studio.update.train.loss")
    screenshot(page, "playground-ready")

    page.click("#start")
    page.wait_for_function("() => window.studio.update.step >= 1500", timeout=90_000)
    page.click("#pause")
    _wait_state(page, "paused")
    loss = page.evaluate("() => window.studio.update.train.loss")
    assert loss < 0.8 * first_loss, (first_loss, loss)  # the loss fell
    curve = page.evaluate("() => window.studio.curves.data.train_loss")
    assert len(curve) >= 3 and curve[-1] < curve[0]
    after_pixels = _heatmap_pixels(page)
    changed = sum(a != b for a, b in zip(before_pixels, after_pixels, strict=True))
    assert changed > 0.05 * len(before_pixels)  # the heat map's pixels changed
    assert page.locator("#layers table tbody tr").count() >= 4  # per-layer diagnostics shown
    screenshot(page, "playground-spirals-trained")

    # Step: exactly one optimiser step, shown by the counter
    step = _step(page)
    assert step == page.evaluate("() => window.studio.update.step")
    page.click("#step")
    page.wait_for_function(f"() => window.studio.update.step !== {step}")
    _wait_state(page, "paused")
    assert _step(page) == step + 1
    page.wait_for_timeout(500)  # nothing else arrives: still exactly one step
    assert _step(page) == step + 1

    # change the activation: a fresh network with ReLU, and the URL says so
    page.select_option("#set-activation", "relu")
    page.wait_for_function("() => window.studio.update && window.studio.update.step === 0")
    assert "activation=relu" in page.url
    labels = page.locator("#layers").inner_text()
    assert "ReLU" in labels and "Tanh" not in labels
    assert page.console_errors == []


def test_bad_value_shows_the_message_and_the_page_keeps_working(studio_server, page):
    page.goto(studio_server + "/")
    _wait_state(page, "ready")
    page.fill("#set-lr", "-0.5")
    page.press("#set-lr", "Enter")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text() == "config key 'lr': expected a number > 0, got -0.5"
    screenshot(page, "playground-bad-value", full_page=False)
    # the old session still trains; a good value clears the message
    page.click("#step")
    page.wait_for_function("() => window.studio.update.step === 1")
    page.fill("#set-lr", "0.02")
    page.press("#set-lr", "Enter")
    error.wait_for(state="hidden")
    assert page.console_errors == []


def test_settings_round_trip_through_the_url(studio_server, page, tmp_path):
    page.goto(studio_server + "/?dataset=xor&hidden=4,3&activation=sigmoid&features=x1,x2,x1*x2")
    page.wait_for_function("() => window.studio.dataset && window.studio.dataset.name === 'xor'")
    assert page.evaluate("() => window.studio.dataset.layers") == [3, 4, 3, 1]
    assert page.locator("#set-activation").input_value() == "sigmoid"
    page.click("#export-toml")
    text = page.locator("#export-text").inner_text()
    path = tmp_path / "playground.toml"
    path.write_text(text)
    config = TrainConfig.from_toml(path)  # what `twinnet train --config` reads
    assert (config.dataset, config.activation, config.layers) == ("xor", "sigmoid", [2, 4, 3, 1])
    assert "x1*x2" in text  # the comment says train feeds the raw inputs, not x1*x2
    splits = load_splits(config)
    check_layers_fit(config, splits.n_features, splits.task, splits.n_classes)


def test_drawn_points_become_the_training_data(studio_server, page):
    page.goto(studio_server + "/?dataset=drawn")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "at least 4 drawn points" in error.inner_text()
    box = page.locator("#heatmap").bounding_box()
    clicks = [(0.25, 0.25, "0"), (0.75, 0.75, "0"), (0.25, 0.75, "1"), (0.75, 0.25, "1"), (0.3, 0.3, "0"), (0.7, 0.3, "1")]
    for fx, fy, cls in clicks:
        page.select_option("#draw-class", cls)
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.wait_for_function("() => window.studio.dataset && window.studio.dataset.name === 'drawn'"
                           " && window.studio.dataset.n_train + window.studio.dataset.n_val === 6")  # fmt: skip
    error.wait_for(state="hidden")
    points = page.evaluate("() => window.studio.state.points")
    # the canvas spans [-1, 1] in both directions, x2 upwards: (0.25, 0.25) of the box is (-0.5, 0.5)
    assert points[0] == [-0.5, 0.5, 0] and points[2] == [-0.5, -0.5, 1]
    assert "points=" in page.url
    page.click("#start")
    page.wait_for_function("() => window.studio.update && window.studio.update.step > 30")
    assert page.locator("#units canvas").count() == 16  # 8 + 8 hidden units, one thumbnail each
    screenshot(page, "playground-drawn")
    assert page.console_errors == []


def _val_accuracy_after(tab, steps: int) -> float:
    """Train at least ``steps`` steps, then pause. A small preset on a fast machine may
    finish its 300 epochs before a click lands: the check and the click run as one
    script in the page, so Pause is clicked exactly when it is enabled."""
    tab.click("#start")
    tab.wait_for_function(f"() => window.studio.update.step >= {steps}", timeout=60_000)
    tab.evaluate("() => { const b = document.getElementById('pause'); if (!b.disabled) b.click(); }")
    tab.wait_for_function("() => ['paused', 'finished'].includes(window.studio.update.state)")
    return tab.evaluate("() => window.studio.update.val.accuracy")


def _unit_maps(tab) -> list[list[int]]:
    """The first hidden layer's unit maps as the page received them (0..255 per cell)."""
    return tab.evaluate("() => window.studio.update.units[0].units.map((b) => Array.from(atob(b), (c) => c.charCodeAt(0)))")


def test_book_experiment_presets(studio_server, page):
    from twinnet.experiments import EXPERIMENTS

    page.goto(studio_server + "/")
    _wait_state(page, "ready")
    page.select_option("#preset", "linear-collapse")
    page.wait_for_function("() => window.studio.dataset && window.studio.dataset.layers.join() === '2,8,8,8,1'")
    assert page.locator("#set-activation").input_value() == "identity"
    assert all(k in page.url for k in ("dataset=xor", "hidden=8%2C8%2C8", "activation=identity"))
    assert page.locator("#preset-claim").inner_text() == f"Claim: {EXPERIMENTS['linear-collapse'][1]}"
    # the backprop page can trace this network: the link carries the playground's keys
    link = page.locator("#backprop-link")
    href = link.get_attribute("href")
    assert href.startswith("/backprop?example=playground&") and page.url.split("?")[1] in href
    assert page.request.get(studio_server + href.replace("/backprop", "/api/backprop", 1)).ok

    # no activation: three layers are one matrix, XOR stays near chance; ReLU fits it
    linear = _val_accuracy_after(page, 150)
    screenshot(page, "playground-preset-linear-collapse")
    page.click("#preset-then-0")
    page.wait_for_function("() => window.studio.update && window.studio.update.step === 0 && window.studio.state.activation === 'relu'")
    assert "activation=relu" in page.url and page.locator("#preset-box").is_visible()
    relu = _val_accuracy_after(page, 150)
    assert linear < 0.75 and relu > 0.9, (linear, relu)  # a line gets at most 3 of the 4 XOR clusters right

    # zero initialisation: every hidden unit's map is the same, and stays so while training
    page.select_option("#preset", "symmetry-breaking")
    page.wait_for_function("() => window.studio.dataset && window.studio.dataset.name === 'blobs' && window.studio.update && window.studio.update.step === 0")
    assert "init=zeros" in page.url
    _val_accuracy_after(page, 60)
    maps = _unit_maps(page)
    assert len(maps) == 6 and max(maps[0]) - min(maps[0]) > 50  # the units learned something ...
    assert all(max(abs(a - b) for a, b in zip(m, maps[0], strict=True)) <= 1 for m in maps)  # ... all the same
    screenshot(page, "playground-preset-symmetry")
    page.click("#preset-then-0")  # random initialisation: six different maps from the start
    page.wait_for_function("() => window.studio.update && window.studio.update.step === 0 && window.studio.state.init === 'auto'")
    maps = _unit_maps(page)
    assert min(max(abs(a - b) for a, b in zip(m, maps[0], strict=True)) for m in maps[1:]) > 20

    # too big for the backprop page (64 inputs): the link is off and says why
    page.select_option("#preset", "overfitting")
    page.wait_for_function("() => window.studio.dataset && window.studio.dataset.name === 'digits'")
    assert link.get_attribute("aria-disabled") == "true" and link.get_attribute("href") is None
    assert "up to 8 units" in link.get_attribute("title")
    # a shared link opens with its experiment's line
    page.goto(page.url)
    page.locator("#preset-box").wait_for(state="visible")
    assert page.locator("#preset").input_value() == "overfitting"
    assert page.console_errors == []
