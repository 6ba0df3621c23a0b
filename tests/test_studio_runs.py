"""The studio's Runs page: /api/runs over HTTP, path traversal refused, and the page in a
real browser (a run that `twinnet train` is writing in another process updates live;
two runs' curves laid over each other)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from studio_support import browser, page, screenshot, serve  # noqa: F401
from twinnet.cli.main import main

pytest.importorskip("starlette", reason="starlette not installed (pip install twinnet[studio])")

TRAIN = ["--dataset", "spirals", "--layers", "2,16,16,3", "--batch-size", "16", "--lr", "0.01", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two finished runs: ReLU with diagnostics, tanh without."""
    root = tmp_path_factory.mktemp("studio-runs") / "runs"
    assert main(["train", *TRAIN, "--epochs", "8", "--diagnostics", "--diagnostics-every", "50",
                 "--out", str(root / "relu")]) == 0  # fmt: skip
    assert main(["train", *TRAIN, "--epochs", "6", "--activation", "tanh", "--out", str(root / "tanh")]) == 0
    return root


@pytest.fixture(scope="module")
def server(runs):
    from twinnet.studio.app import create_app

    with serve(create_app(runs)) as url:
        yield url


def get(base: str, path: str):
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(base: str, path: str):
    status, text = get(base, path)
    return status, json.loads(text)


def test_list_shows_every_run_folder(server, runs):
    (runs / "not-a-run").mkdir()  # no config.toml: not listed
    status, body = get_json(server, "/api/runs")
    assert status == 200
    by_name = {r["name"]: r for r in body["runs"]}
    assert set(by_name) == {"relu", "tanh"}
    metrics = json.loads((runs / "relu" / "metrics.json").read_text())
    assert by_name["relu"]["status"] == "finished" and by_name["relu"]["epochs_done"] == 8
    assert by_name["relu"]["test_accuracy"] == metrics["test_accuracy"]
    assert by_name["tanh"]["activation"] == "tanh" and by_name["tanh"]["epochs"] == 6


def test_detail_is_what_the_report_shows(server, runs):
    from twinnet.diagnostics import findings, read_diagnostics
    from twinnet.train.history import History

    status, d = get_json(server, "/api/runs/relu")
    assert status == 200 and d["status"] == "finished"
    hist = History.from_csv(runs / "relu" / "history.csv").history
    assert d["history"]["columns"]["val_loss"] == hist["val_loss"]
    assert d["metrics"] == json.loads((runs / "relu" / "metrics.json").read_text())
    assert d["config"]["layers"] == [2, 16, 16, 3] and d["config"]["diagnostics"] is True
    want = [f.message for f in findings(runs / "relu")]
    assert [f["message"] for f in d["diagnostics"]["findings"]] == want
    rows = read_diagnostics(runs / "relu")
    layers = d["diagnostics"]["layers"]
    assert layers["step"] == max(r["step"] for r in rows)
    assert [r["layer"] for r in layers["rows"]] == [
        "layer 0 (Linear)", "layer 1 (ReLU, after Linear 0)", "layer 2 (Linear)",
        "layer 3 (ReLU, after Linear 2)", "layer 4 (Linear)",
    ]  # fmt: skip
    last = [r for r in rows if r["layer"] == "0" and r["statistic"] == "weight_norm"][-1]["value"]
    col = layers["headers"].index("||W||")
    assert layers["rows"][0]["cells"][col]["value"] == pytest.approx(last, rel=1e-12)
    assert d["diagnostics"]["series"]["weight_grad_norm"]["steps"] == sorted({r["step"] for r in rows})
    # the pre-activation histograms of the last record, as histograms.json holds them
    from twinnet.diagnostics import read_histograms

    records = read_histograms(runs / "relu")
    last = [r for r in records if r["step"] == records[-1]["step"]]
    hists = d["diagnostics"]["histograms"]
    assert hists["step"] == records[-1]["step"] and len(hists["layers"]) == len(last) == 2
    assert hists["layers"][0]["counts"] == last[0]["counts"]
    assert hists["layers"][0]["layer"] == "layer 1 (ReLU, after Linear 0)"
    # no diagnostics: the page says how to record them
    _, t = get_json(server, "/api/runs/tanh")
    assert "twinnet train --diagnostics" in t["diagnostics"]["note"] and t["diagnostics"]["layers"] is None
    # the full report, rendered by twinnet.diagnostics
    status, html = get(server, "/runs/relu/report")
    assert status == 200 and "twinnet run report: relu" in html


def test_layer_table_colours_what_the_findings_judge(runs, monkeypatch):
    import importlib

    from twinnet.diagnostics import read_diagnostics
    from twinnet.studio.runs import run_detail

    rules = importlib.import_module("twinnet.diagnostics.findings")
    rows = read_diagnostics(runs / "relu")
    d = run_detail(runs, "relu")["diagnostics"]["layers"]
    dead = d["headers"].index("dead")
    relu = d["rows"][1]
    last_dead = [r["value"] for r in rows if r["layer"] == "1" and r["statistic"] == "dead_fraction"][-1]
    assert relu["cells"][dead]["value"] == last_dead
    assert relu["cells"][dead]["bad"] == (last_dead >= rules.THRESHOLDS["dead_fraction"])
    # without judged_values (an older twinnet.diagnostics): the last record against the lines
    monkeypatch.delattr(rules, "judged_values", raising=False)
    d = run_detail(runs, "relu")["diagnostics"]["layers"]
    assert "||ΔW||/||W|| median" not in d["headers"]
    col = d["headers"].index("||ΔW||/||W|| last")
    last_ratio = [r["value"] for r in rows if r["layer"] == "0" and r["statistic"] == "weight_update_ratio"][-1]
    cell = d["rows"][0]["cells"][col]
    assert cell["value"] == last_ratio
    t = rules.THRESHOLDS
    assert cell["bad"] == (last_ratio > t["update_ratio_high"] or 0 < last_ratio < t["update_ratio_low"])
    assert d["rows"][1]["cells"][d["headers"].index("dead")]["bad"] == (last_dead >= t["dead_fraction"])


def test_version_answers_unchanged_until_a_file_changes(server, runs):
    _, d = get_json(server, "/api/runs/tanh")
    _, again = get_json(server, "/api/runs/tanh?version=" + urllib.parse.quote(d["version"]))
    assert again == {"unchanged": True, "version": d["version"], "status": "finished"}
    path = runs / "tanh" / "history.csv"
    text = path.read_text()
    path.write_text(text + text.splitlines()[-1].replace("6,", "7,", 1) + "\n")
    try:
        _, changed = get_json(server, "/api/runs/tanh?version=" + urllib.parse.quote(d["version"]))
        assert changed.get("unchanged") is None and len(changed["history"]["columns"]["epoch"]) == 7
    finally:
        path.write_text(text)


def test_status_of_unfinished_runs(tmp_path):
    from twinnet.studio.runs import LIVE_SECONDS, status

    run = tmp_path / "r"
    run.mkdir()
    (run / "config.toml").write_text('[train]\ndataset = "xor"\n')
    (run / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
    assert status(run) == "training"
    old = time.time() - LIVE_SECONDS - 5
    for f in run.iterdir():
        os.utime(f, (old, old))
    assert status(run) == "incomplete"
    (run / "metrics.json").write_text('{"stop_reason": "NaNGuard: loss is nan at step 3"}')
    assert status(run) == "stopped"


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/..",
        "/api/runs/.",
        "/api/runs/%2e%2e",
        "/api/runs/..%2F..%2Fetc",
        "/api/runs/..%2fsecret",
        "/api/runs/%2Fetc",
        "/api/runs/%252e%252e%252fsecret",
        "/api/runs/..%5C..%5Csecret",
        "/api/runs/relu%2F..%2F..%2Fsecret",
        "/api/runs/outside-link",
        "/api/runs/nothing-here",
        "/runs/..%2Fsecret/report",
        "/runs/outside-link/report",
        "/runs/relu%2F..%2F..%2Fsecret/report",
    ],
)
def test_path_traversal_is_refused(server, runs, path):
    secret = runs.parent / "secret"  # a run folder next to RUNS_DIR, not under it
    if not secret.exists():
        secret.mkdir()
        (secret / "config.toml").write_text('[train]\ndataset = "TOP-SECRET"\n')
    link = runs / "outside-link"
    if not link.exists():
        link.symlink_to(secret, target_is_directory=True)
    status, text = get(server, path)
    assert status in (400, 404), (path, status)
    assert "TOP-SECRET" not in text
    _, listing = get(server, "/api/runs")
    assert "outside-link" not in listing and "TOP-SECRET" not in listing


def test_a_symlinked_file_out_of_the_run_is_not_read(server, runs, tmp_path):
    outside = tmp_path / "history.csv"
    outside.write_text("epoch,train_loss\n1,123456789.0\n")
    run = runs / "with-link"
    run.mkdir()
    (run / "config.toml").write_text('[train]\ndataset = "xor"\nepochs = 1\n')
    (run / "history.csv").symlink_to(outside)
    try:
        status, text = get(server, "/api/runs/with-link")
        assert status == 200 and "123456789" not in text
        assert json.loads(text)["history"]["columns"] == {}
        assert get(server, "/runs/with-link/report")[0] == 404
    finally:
        (run / "history.csv").unlink()
        for f in run.iterdir():
            f.unlink()
        run.rmdir()


# -- in the browser -------------------------------------------------------------------------------


def test_page_overlays_two_runs_and_shows_a_report(server, page):  # noqa: F811
    page.goto(server + "/runs?run=relu&compare=relu,tanh")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("#compare:not([hidden]) canvas")
    legend = page.locator("#compare-chart .u-legend").inner_text()
    assert "relu" in legend and "tanh" in legend
    assert page.locator("#compare-chart").get_attribute("data-points") == "8"  # epochs 1..8 (tanh: 1..6)
    assert page.locator("#run-name").inner_text() == "relu"
    assert page.locator("#run-status").inner_text() == "finished"
    assert page.locator("table.layers tr").count() == 6  # header + 5 layers
    assert page.locator("#findings").inner_text() != ""
    assert page.locator("#histograms .hist canvas").count() == 2
    screenshot(page, "runs-finished-and-compare")
    # switch the compared curve; the URL keeps it
    page.select_option("#compare-metric", "val_accuracy")
    assert "metric=val_accuracy" in page.url
    # untick one: the overlay disappears
    page.uncheck('tr[data-run="tanh"] input[type=checkbox]')
    page.wait_for_selector("#compare[hidden]", state="attached")
    assert "compare=relu" in page.url and "tanh" not in page.url.split("compare=")[1]


def test_page_refuses_traversal_and_keeps_working(server, page):  # noqa: F811
    page.goto(server + "/runs?run=..%2F..%2Fetc")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("#error:not(:empty)")
    assert "no run named" in page.locator("#error").inner_text()
    assert page.locator("#run").is_hidden()
    page.click('tr[data-run="tanh"] a')
    page.wait_for_function("document.querySelector('#run-name').textContent === 'tanh'")
    page.wait_for_function("document.querySelector('#error').textContent === ''")
    screenshot(page, "runs-refused-then-tanh", full_page=False)


def test_page_follows_a_run_that_twinnet_train_is_writing(tmp_path, page):  # noqa: F811
    from twinnet.studio.app import create_app

    runs = tmp_path / "runs"
    runs.mkdir()
    out = runs / "live"
    # 14000 training examples of spirals in batches of 16: about a second an epoch here
    cmd = [sys.executable, "-m", "twinnet.cli.main", "train", "--dataset", "spirals", "--n-samples", "20000",
           "--layers", "2,16,16,3", "--batch-size", "16", "--epochs", "8", "--checkpoint-every", "100",
           "--diagnostics", "--diagnostics-every", "200", "--quiet", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        with serve(create_app(runs)) as url:
            deadline = time.monotonic() + 120
            while not (out / "history.csv").is_file():  # the first epoch row
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no epoch within 120 s"
                time.sleep(0.02)
            # freeze the trainer while the page loads, so that the next epoch is certainly
            # written while the page watches (however fast this machine trains)
            os.kill(proc.pid, signal.SIGSTOP)
            page.goto(url + "/runs?run=live")
            page.wait_for_selector("body[data-ready]")
            page.wait_for_selector("#run-status")
            first = int(page.locator("#run-epochs").inner_text().split()[1])
            assert 1 <= first < 8
            assert page.locator("#run-status").inner_text() == "training"
            assert page.locator('tr[data-run="live"] .status').inner_text() == "training"
            assert "Still training" in page.locator("#metrics").inner_text()
            os.kill(proc.pid, signal.SIGCONT)
            # a new epoch appears without reloading the page
            page.wait_for_function(
                f"parseInt(document.querySelector('#run-epochs').textContent.split(' ')[1]) > {first}",
                timeout=120_000,
            )
            screenshot(page, "runs-live-training")
            assert int(page.locator("#chart-loss").get_attribute("data-points")) > first
            # and when training ends, the page shows the finished run's metrics
            assert proc.wait(timeout=240) == 0, proc.communicate()
            page.wait_for_function("document.querySelector('#run-status').textContent === 'finished'", timeout=30_000)
            assert "test_accuracy" in page.locator("#metrics").inner_text()
            assert page.locator("#run-epochs").inner_text() == "epoch 8 of 8"
            screenshot(page, "runs-live-finished")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_a_missing_runs_folder_lists_nothing(tmp_path):
    from twinnet.studio.app import create_app

    with serve(create_app(tmp_path / "no-such-folder")) as url:
        status, body = get_json(url, "/api/runs")
        assert status == 200 and body["runs"] == []
        assert get_json(url, "/api/runs/anything")[0] == 404
