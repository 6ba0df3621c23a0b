"""The studio's Backprop page: /api/backprop over HTTP and the page in a real browser.

The browser test reads the numbers the page shows for the 2-2-1 worked example and
compares them with what `twinnet trace` prints and with the figures worked by hand
(tests/test_worked_example.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

from studio_support import browser, page, runs_dir, screenshot, studio_server  # noqa: F401
from twinnet.cli.main import main

pytest.importorskip("starlette", reason="starlette not installed (pip install twinnet[studio])")


def get(base: str, path: str):
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def printed(out: str, lhs: str):
    """The value `twinnet trace` printed on the line starting with ``lhs``."""
    for line in out.splitlines():
        if line.strip().startswith(lhs):
            return json.loads(line.rsplit("= ", 1)[1])
    raise AssertionError(f"no line starting with {lhs!r}")


# the page's quantity -> the start of the line `twinnet trace` prints it on
TRACE_LINES = {
    "z1": "z1 = W1 x + b1",
    "a1": "a1 = sigmoid(z1)",
    "z2": "z2 = W2 a1 + b2",
    "y_hat": "y_hat = sigmoid(z2)",
    "L": "L = 1/2 (y_hat - y)^2",
    "dL/dy_hat": "dL/dy_hat = y_hat - y",
    "sigmoid'(z2)": "sigmoid'(z2) = y_hat (1 - y_hat)",
    "delta2": "delta2 = dL/dz2",
    "dL/dW2": "dL/dW2 = delta2 a1",
    "dL/db2": "dL/db2 = delta2",
    "dL/da1": "dL/da1 = W2^T delta2",
    "sigmoid'(z1)": "sigmoid'(z1) = a1 (1 - a1)",
    "delta1": "delta1 = dL/dz1",
    "dL/dW1": "dL/dW1 = delta1 x^T",
    "dL/db1": "dL/db1 = delta1",
    "new W1": "W1 <- W1",
    "new b1": "b1 <- b1",
    "new W2": "W2 <- W2",
    "new b2": "b2 <- b2",
}


def test_api_worked_example_equals_trace(studio_server, capsys):  # noqa: F811
    status, r = get(studio_server, "/api/backprop?example=worked")
    assert status == 200
    assert main(["trace"]) == 0
    out = capsys.readouterr().out
    values = {s["symbol"]: s["value"] for s in r["steps"] if s["phase"] != "update" or s["symbol"] != "L"}
    for symbol, lhs in TRACE_LINES.items():
        ours = np.ravel(values[symbol])
        np.testing.assert_allclose(ours, np.ravel(printed(out, lhs)), rtol=6e-4, atol=1e-12, err_msg=symbol)
    assert r["sizes"] == [2, 2, 1] and r["loss"]["name"] == "half_squared"
    assert r["engine_vs_formula"] < 1e-15
    if r["torch"]["available"]:
        assert r["torch"]["max_abs_diff"] < 1e-12
    else:
        assert "PyTorch is not installed" in r["torch"]["reason"]


def test_api_playground_network(studio_server):  # noqa: F811
    q = urllib.parse.urlencode({"example": "dataset", "dataset": "spirals", "layers": "2,4,4,3",
                                "activation": "relu", "seed": 3, "index": 7})  # fmt: skip
    status, r = get(studio_server, "/api/backprop?" + q)
    assert status == 200, r
    assert r["sizes"] == [2, 4, 4, 3] and r["activations"] == ["relu", "relu", "identity"]
    assert r["loss"]["name"] == "cross_entropy" and r["settings"]["index"] == 7
    # the weights are those `twinnet train` starts from for this config (same seed, float64)
    from twinnet.config import TrainConfig
    from twinnet.train.setup import make_model

    model = make_model(TrainConfig(dataset="spirals", layers=[2, 4, 4, 3], activation="relu", seed=3, dtype="float64"))
    np.testing.assert_array_equal(r["params"]["W2"], model[2].weight.data)
    # and the example is training example 7 of spirals
    from twinnet import data

    x, y = data.load("spirals", seed=3, dtype=np.float64).train[7]
    np.testing.assert_allclose(r["x"], x)
    assert r["y"] == int(y)
    if r["torch"]["available"]:
        assert r["torch"]["max_abs_diff"] < 1e-12


@pytest.mark.parametrize(
    "query, message",
    [
        ("example=dataset&dataset=xor&layers=2,3,2", "config key 'layers': the last size must be 1"),
        ("example=dataset&dataset=xor&lr=-1", "config key 'lr': expected a number > 0, got -1.0"),
        ("example=dataset&dataset=xor&layers=2,x,1", "config key 'layers': expected comma-separated integers"),
        ("example=dataset&dataset=xor&layers=2,30,1", "up to 8 units a layer"),
        ("example=dataset&dataset=mnist&layers=784,10", "dataset must be one of xor, spirals"),
        ("example=dataset&dataset=xor&activation=gelux", "config key 'activation': expected one of"),
        ("example=dataset&dataset=xor&index=4", "index must be in 0..3"),
        ("example=dataset&dataset=xor&data_dir=/etc", "data_dir cannot be set"),
        ("example=dataset&dataset=xor&colour=red", "unknown setting 'colour'"),
        ("example=dataset&dataset=spirals&n_samples=1000000000", "at most 20000 examples"),
        ("example=worked&x=1", "x must be 2 finite numbers"),
        ("example=worked&lr=-0.5", "lr must be >= 0, got -0.5"),
        ("example=other", "example must be one of worked, dataset, playground"),
    ],
)
def test_api_bad_values_answer_400_with_the_message(studio_server, query, message):  # noqa: F811
    status, r = get(studio_server, "/api/backprop?" + query)
    assert status == 400 and set(r) == {"error"}
    assert message in r["error"]


def test_page_shows_the_worked_example_and_its_gradients(studio_server, page, capsys):  # noqa: F811
    page.goto(studio_server + "/backprop?example=worked")
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#counter").inner_text() == "1 / 20"
    # step forward with the button: the card shows z1 = W1 x + b1 = [0.07, 0.19]
    assert page.locator("#card .eq").get_attribute("data-symbol") == "z1"
    assert page.locator("#card .matrix td").all_inner_texts() == ["0.07", "0.19"]
    page.click("#next")
    assert page.locator("#card .eq").get_attribute("data-symbol") == "a1"
    assert "step=1" in page.url
    page.keyboard.press("End")
    assert page.locator("#counter").inner_text() == "20 / 20"
    shown = {
        row.get_attribute("data-symbol"): row.locator("td.value").inner_text()
        for row in page.locator("#steps tbody tr").all()
        if not (row.get_attribute("data-phase") == "update" and row.get_attribute("data-symbol") == "L")
    }
    main(["trace"])
    out = capsys.readouterr().out
    for symbol, lhs in TRACE_LINES.items():
        # both print 4 significant digits: the same numbers, digit for digit
        assert np.ravel(json.loads(shown[symbol])).tolist() == np.ravel(printed(out, lhs)).tolist(), symbol
    # the hand-worked figures (tests/test_worked_example.py)
    assert json.loads(shown["y_hat"]) == 0.6427 and json.loads(shown["L"]) == 0.06383
    assert json.loads(shown["delta2"]) == -0.08204
    assert json.loads(shown["dL/dW2"]) == [[-0.04246, -0.04491]]
    assert json.loads(shown["dL/dW1"]) == [[-0.005122, -0.001024], [-0.006098, -0.00122]]
    # the diagram draws every weight's gradient: negative here, so blue, thickest for the largest |g|
    edges = page.locator("#net line.edge")
    assert edges.count() == 6
    widths = {}
    for e in edges.all():
        assert e.get_attribute("stroke") == "#2a7ab0"
        widths[(e.get_attribute("data-layer"), e.get_attribute("data-i"), e.get_attribute("data-j"))] = float(
            e.get_attribute("stroke-width"))  # fmt: skip
    assert max(widths, key=widths.get) == ("2", "0", "1")  # dL/dW2[1,2] = -0.04491, the largest
    assert widths[("1", "0", "1")] < widths[("1", "1", "0")] < widths[("2", "0", "0")]
    # a click on a line explains its gradient with the trace's own numbers
    page.locator('#net line.edge-hit[data-layer="1"][data-i="0"][data-j="1"]').dispatch_event("click")
    info = page.locator("#edge-info").inner_text()
    assert "dL/dW1[1,2] = delta1[1] \u00b7 x[2] = (-0.01024) \u00b7 (0.1) = -0.001024" in info, info
    assert "W1[1,2] \u2190 0.2 - 0.1 \u00b7 (-0.001024) = 0.2001" in info, info
    badge = page.locator("#torch-badge").inner_text()
    assert "checked by PyTorch" in badge or "not checked by PyTorch" in badge
    screenshot(page, "backprop-worked-example")
    page.goto(studio_server + "/backprop?example=worked&step=13")
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#card .eq").get_attribute("data-symbol") == "dL/dW1"  # the URL keeps the step
    screenshot(page, "backprop-worked-dW1", full_page=False)
    assert page.console_errors == [] or all("favicon" in e or "404" in e for e in page.console_errors)


def test_page_shows_a_bad_value_and_keeps_working(studio_server, page):  # noqa: F811
    page.goto(studio_server + "/backprop?example=dataset&dataset=spirals&layers=2,4,4,3&activation=relu&step=20")
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#counter").inner_text() == "21 / 29"
    screenshot(page, "backprop-spirals-relu")
    page.fill("#layers", "2,40,3")
    page.click("#trace")
    page.wait_for_selector("#error:not(:empty)")
    assert "up to 8 units a layer" in page.locator("#error").inner_text()
    assert page.locator("#counter").inner_text() == "21 / 29"  # the last good trace stays
    page.fill("#layers", "2,5,5,3")
    page.select_option("#activation", "tanh")
    page.click("#trace")
    page.wait_for_function("document.querySelector('#counter').textContent === '1 / 29'")
    assert page.locator("#error").inner_text() == ""
    assert "activation=tanh" in page.url and "layers=2%2C5%2C5%2C3" in page.url
    # another dataset brings layers that fit it
    page.select_option("#dataset", "sine")
    assert page.input_value("#layers") == "1,4,1"
    page.click("#trace")
    page.wait_for_function("location.search.includes('dataset=sine') && document.querySelector('#counter').textContent === '1 / 19'")
    assert page.locator("#error").inner_text() == ""


def test_api_traces_the_playgrounds_own_network(studio_server):  # noqa: F811
    """example=playground takes the playground's URL keys and traces the network it starts from."""
    from twinnet.studio.data import make_data
    from twinnet.studio.settings import validate
    from twinnet.train.setup import make_model

    q = "example=playground&dataset=circles&features=x1,x2,x1%5E2,x2%5E2&hidden=4,3&activation=tanh&index=2"
    status, r = get(studio_server, "/api/backprop?" + q)
    assert status == 200, r
    assert r["sizes"] == [4, 4, 3, 1] and r["inputs"] == ["x1", "x2", "x1^2", "x2^2"]
    assert r["loss"]["name"] == "bce_logits" and r["activations"] == ["tanh", "tanh", "identity"]
    s = validate({"dataset": "circles", "features": ["x1", "x2", "x1^2", "x2^2"], "hidden": [4, 3], "activation": "tanh"})
    pd = make_data(s)
    np.testing.assert_allclose(r["x"], pd.x_train[2], rtol=1e-7)  # the features of example 2
    assert r["y"] == float(pd.y_train[2])
    start = make_model(s.config.replace(layers=[4, 4, 3, 1]))  # the playground's float32 model
    np.testing.assert_allclose(r["params"]["W1"], start[0].weight.data, rtol=1e-6)
    np.testing.assert_allclose(r["params"]["W3"], start[4].weight.data, rtol=1e-6)
    if r["torch"]["available"]:
        assert r["torch"]["max_abs_diff"] < 1e-12
    for bad, message in (("&hidden=16", "up to 8 units a layer"), ("&activation=nope", "config key 'activation'"),
                         ("&dataset=mnist", "up to 8 units a layer"), ("&colour=red", "unknown key 'colour'")):  # fmt: skip
        status, r = get(studio_server, "/api/backprop?example=playground" + bad)
        assert status == 400 and message in r["error"], (bad, r)


def test_page_traces_the_playgrounds_network(studio_server, page):  # noqa: F811
    page.goto(studio_server + "/backprop?example=playground&dataset=circles&features=x1,x2,x1%5E2,x2%5E2"
              "&hidden=4,3&activation=tanh&index=2&step=20")  # fmt: skip
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#counter").inner_text() == "21 / 29"
    assert "dataset=circles" in page.locator("#pg-summary").inner_text()
    assert page.locator("#net .node text").first.text_content() == "x1"
    assert page.locator("#net line.edge").count() == 4 * 4 + 4 * 3 + 3
    assert "target y =" in page.locator("#target").text_content()
    screenshot(page, "backprop-playground-circles")
    page.fill("#index", "3")
    page.click("#trace")
    page.wait_for_function("location.search.includes('index=3') && document.querySelector('#counter').textContent === '1 / 29'")
    assert "dataset=circles" in page.url and "hidden=4%2C3" in page.url
