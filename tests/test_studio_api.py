"""The studio's server without a browser: pages, the options route, the playground's
WebSocket protocol (settings, start/pause/step, bad values, uploads), one session per
connection, clean shutdown, and the numbers behind the panels checked against the
engine and the diagnostics computed directly.

The server runs under uvicorn on a free port (studio_support.serve) and is spoken to with
the ``websockets`` client that uvicorn[standard] brings; starlette's TestClient would need
one more package (httpx2)."""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="starlette not installed (pip install twinnet[studio])")
pytest.importorskip("uvicorn", reason="uvicorn not installed (pip install twinnet[studio])")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets not installed (pip install twinnet[studio])")

from studio_support import runs_dir, serve, studio_server  # noqa: E402, F401
from twinnet.config import ConfigError, TrainConfig  # noqa: E402
from twinnet.diagnostics import collect_stats  # noqa: E402
from twinnet.studio import views  # noqa: E402
from twinnet.studio.app import create_app  # noqa: E402
from twinnet.studio.session import PlaygroundSession  # noqa: E402
from twinnet.studio.settings import DEFAULTS, validate  # noqa: E402


class Socket:
    """A playground WebSocket with JSON helpers."""

    def __init__(self, url: str, origin: str | None = None):
        headers = {"Origin": origin} if origin else None
        connection = ws_client.connect(url.replace("http", "ws", 1) + "/ws/playground", max_size=None,
                                       additional_headers=headers)  # fmt: skip
        self.ws = connection.__enter__()  # closed by close()

    def send(self, **msg) -> None:
        self.ws.send(json.dumps(msg))

    def recv(self, timeout: float = 30) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def until(self, pred, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.1, deadline - time.monotonic()))
            if pred(m):
                return m

    def close(self) -> None:
        self.ws.close()


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8")


def test_pages_static_files_and_options(studio_server):
    for path in ("/", "/backprop", "/runs"):
        status, kind, body = _get(studio_server + path)
        assert status == 200 and kind.startswith("text/html")
        assert 'href="/runs"' in body and 'href="/backprop"' in body  # the shared navigation
    status, _, licence = _get(studio_server + "/static/vendor/uplot/LICENSE")
    assert "MIT License" in licence and "Leon Sorokin" in licence
    _, kind, js = _get(studio_server + "/static/vendor/uplot/uPlot.esm.js")
    assert "export { uPlot as default }" in js
    _, _, text = _get(studio_server + "/api/playground/options")
    options = json.loads(text)
    assert options["defaults"] == DEFAULTS
    assert "spirals" in options["datasets"] and "x1*x2" in options["features"]
    validate(options["defaults"])  # the defaults pass the validation they are sent with


def test_ready_step_exactly_once_pause_and_reset(studio_server):
    s = Socket(studio_server)
    s.send(type="settings", settings={"dataset": "spirals", "hidden": [5, 4]})
    ds = s.recv()
    assert ds["type"] == "dataset" and ds["layers"] == [2, 5, 4, 3] and ds["classes"] == ["arm 0", "arm 1", "arm 2"]
    ready = s.recv()
    assert (ready["type"], ready["state"], ready["step"]) == ("update", "ready", 0)
    for expected in (1, 2, 3):
        s.send(type="step")
        u = s.until(lambda m: m["type"] == "update" and m["state"] == "paused")
        assert u["step"] == expected
    s.send(type="start")
    s.until(lambda m: m["type"] == "update" and m["step"] > 50)
    s.send(type="pause")
    paused = s.until(lambda m: m["type"] == "update" and m["state"] == "paused")
    with pytest.raises(TimeoutError):  # paused means no more steps, so nothing is sent
        s.recv(timeout=0.6)
    s.send(type="reset")
    assert s.recv()["type"] == "dataset"
    again = s.recv()
    assert again["step"] == 0 and again["train"]["loss"] == pytest.approx(ready["train"]["loss"])  # same seed, same start
    assert paused["step"] > 50
    s.close()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lr": -1}, "config key 'lr': expected a number > 0, got -1"),
        ({"activation": "relu6"}, "config key 'activation': expected one of"),
        ({"batch_size": "many"}, "config key 'batch_size': expected an integer >= 1, got 'many'"),
        ({"hidden": [8, 0]}, "config key 'hidden': expected up to 6 layer widths, each an integer in 1..64, got [8, 0]"),
        ({"features": ["x3"]}, "config key 'features': expected one or more distinct names of"),
        ({"momentum": 0.5}, "settings: unknown key 'momentum'"),
        ({"dataset": "sine", "loss": "cross-entropy"}, "config key 'loss': this dataset is a regression task"),
        ({"dataset": "drawn", "points": [[0, 0, 0]]}, "config key 'points': expected at least 4 drawn points"),
    ],
)
def test_a_bad_value_gets_one_clear_message_and_the_session_lives_on(studio_server, settings, message):
    s = Socket(studio_server)
    s.send(type="settings", settings={})
    s.recv(), s.recv()
    s.send(type="settings", settings=settings)
    err = s.recv()
    assert err["type"] == "error" and err["message"].startswith(message), err
    assert "Traceback" not in err["message"]
    s.send(type="step")  # the previous session still answers
    assert s.until(lambda m: m["type"] == "update")["step"] == 1
    s.close()


def test_bad_messages_are_answered_not_fatal(studio_server):
    s = Socket(studio_server)
    s.ws.send("{not json")
    assert s.recv()["type"] == "error"
    s.send(type="start")
    assert s.recv()["message"] == "no network yet: the settings have not been accepted"
    s.send(type="explode")
    assert "unknown message type 'explode'" in s.recv()["message"]
    s.send(type="settings", settings=[1, 2])
    assert s.recv()["message"] == "settings: expected a table of keys, got list"
    s.close()


def test_dropped_csv_trains_and_a_pickled_npz_is_refused(studio_server):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    csv_text = "a,b,label\n" + "\n".join(f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(x, y, strict=True))
    s = Socket(studio_server)
    s.send(type="upload", name="mine.csv", data=base64.b64encode(csv_text.encode()).decode())
    assert s.recv() == {"type": "uploaded", "name": "mine.csv", "rows": 60}
    s.send(type="settings", settings={"dataset": "upload"})
    ds = s.recv()
    assert ds["type"] == "dataset" and ds["n_train"] + ds["n_val"] == 60 and ds["layers"][-1] == 1  # two classes: one logit (bce)
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}] * 5, dtype=object), y=np.zeros(5))
    s.send(type="upload", name="evil.npz", data=base64.b64encode(buf.getvalue()).decode())
    err = s.until(lambda m: m["type"] == "error")
    assert err["message"].startswith("file 'evil.npz': not a readable .npz without pickles")
    s.close()


def test_a_page_from_another_site_cannot_connect(studio_server):
    with pytest.raises(Exception, match="403|1008|rejected|refused"):
        Socket(studio_server, origin="http://evil.example").recv(timeout=5)


def test_two_tabs_are_two_sessions_and_shutdown_stops_training(runs_dir):
    app = create_app(runs_dir)
    with serve(app) as url:
        a, b = Socket(url), Socket(url)
        for s in (a, b):
            s.send(type="settings", settings={"seed": 3})
            s.recv(), s.recv()
        a.send(type="start")
        a.until(lambda m: m["type"] == "update" and m["step"] > 20)
        b.send(type="step")
        assert b.until(lambda m: m["type"] == "update")["step"] == 1  # b did not move with a
        sessions = list(app.state.sessions._sessions)
        assert len(sessions) == 2
        assert any(s.alive for s in sessions)
    # the server has stopped: every training thread has ended
    assert not any(s.alive for s in sessions)
    assert not [t for t in threading.enumerate() if t.name == "twinnet-studio-session"]


def _session(settings=None) -> tuple[PlaygroundSession, list[str]]:
    sent: list[str] = []
    return PlaygroundSession(validate(settings or {}), sent.append), sent


def test_the_panels_show_what_the_engine_computes():
    session, sent = _session({"dataset": "spirals", "hidden": [6], "seed": 2})
    session.step()
    # once the paused snapshot is out, the worker waits: the model is ours to read
    while not any('"state": "paused"' in m for m in sent):
        time.sleep(0.01)
    try:
        snap = session.snapshot()
        # the heat map's cell = the model's softmax at that cell's centre
        out = snap["output"]
        probs = np.frombuffer(base64.b64decode(out["data"]), np.uint8).reshape(out["n"] * out["n"], 3) / 255
        grid = views.plane_grid(session.pd.extent, out["n"])
        for cell in (0, 4321, 9999):
            scores = session.trainer.predict(session.pd.transform(grid[cell : cell + 1]))
            e = np.exp(scores[0] - scores[0].max())
            np.testing.assert_allclose(probs[cell], e / e.sum(), atol=0.5 / 255 + 1e-6)
        # the layer panel = collect_stats (what `twinnet train --diagnostics` records) on the probe batch
        direct = collect_stats(session.model, session.loss_fn, *session.probe_xy).table()
        for layer in snap["layers"]:
            for stat, value in layer["stats"].items():
                if not stat.endswith("update_ratio"):
                    assert value == pytest.approx(direct[(layer["layer"], stat)], rel=1e-6), (layer["layer"], stat)
        assert snap["layers"][0]["stats"]["weight_update_ratio"] > 0  # the step moved the weights
        # the curves' new point = Trainer.evaluate on the validation split
        assert snap["point"]["val_loss"] == pytest.approx(session.trainer.evaluate(session.pd.x_val, session.y_val)["loss"])
        # the diagram's weights are the model's
        np.testing.assert_allclose(snap["network"][0]["weight"], session.model[0].weight.data, atol=5e-5)
    finally:
        session.close()


def test_findings_speak_when_relu_units_die():
    session, sent = _session({"dataset": "spirals", "activation": "relu", "lr": 0.3, "seed": 0})
    session.publish_every = 0.0
    session.start()
    deadline = time.monotonic() + 60
    while session.trainer.global_step < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    session.close()
    last = json.loads(next(m for m in reversed(sent) if m.startswith('{"type": "update"')))
    dead = [f for f in last["findings"] if f["rule"] == "dead_units"]
    assert dead and "units dead" in dead[0]["message"]


def test_settings_are_checked_by_the_config_itself():
    for key, value in [("lr", 0), ("dropout", 1.0), ("epochs", 0), ("optimizer", "lbfgs"), ("val_fraction", 1.5)]:
        with pytest.raises(ConfigError) as ours:
            validate({key: value})
        with pytest.raises(ConfigError) as config_file:
            TrainConfig(**{key: value})
        assert str(ours.value) == str(config_file.value)


def test_label_noise_flips_the_requested_share():
    clean, _ = _session({"dataset": "spirals"})
    noisy, _ = _session({"dataset": "spirals", "label_noise": 0.2})
    flipped = np.mean(clean.pd.y_train != noisy.pd.y_train)
    assert 0.15 < flipped < 0.25
    assert np.array_equal(clean.pd.y_val, noisy.pd.y_val)  # validation labels stay true


# -- the command ------------------------------------------------------------------------


def test_without_the_extra_the_command_names_it_in_one_line(monkeypatch, capsys):
    from twinnet.cli.main import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` now fails
    assert main(["studio", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err == 'twinnet: error: twinnet studio needs the studio extra: pip install "twinnet[studio]"\n'


def test_a_busy_port_is_one_clear_line(capsys):
    from twinnet.cli.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["studio", "--no-browser", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"twinnet: error: cannot listen on 127.0.0.1:{port} (") and err.count("\n") == 1
    assert "choose another port with --port" in err


def test_the_command_serves_warns_off_loopback_and_stops_training_on_ctrl_c(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "twinnet.cli.main", "studio", str(tmp_path), "--no-browser",
           "--port", str(port), "--host", "0.0.0.0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"twinnet studio: http://127.0.0.1:{port}/"), line
        s = Socket(f"http://127.0.0.1:{port}")
        s.send(type="settings", settings={})
        s.recv(), s.recv()
        s.send(type="start")
        s.until(lambda m: m["type"] == "update" and m["step"] > 10)
        proc.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn shuts down, the session's thread is joined
        assert proc.wait(timeout=30) == 130  # the CLI's exit code for an interrupted command
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert "twinnet: warning: serving on 0.0.0.0" in err and "Traceback" not in err
    assert err.rstrip().endswith("twinnet: interrupted")


def test_the_heat_maps_probabilities_are_the_metrics_probabilities(rng):
    from twinnet.train import metrics as M

    scores = rng.normal(scale=5, size=(50, 3)).astype(np.float32)
    np.testing.assert_allclose(views._probabilities(scores, "multiclass"), M.probabilities(scores, "multiclass"), atol=1e-6)
    logit = scores[:, :1]
    p1 = M.probabilities(logit, "binary")
    np.testing.assert_allclose(views._probabilities(logit, "binary"), np.stack([1 - p1, p1], axis=1), atol=1e-6)


def test_the_exported_python_builds_the_same_starting_model():
    session, _ = _session({"dataset": "spirals", "hidden": [5, 3], "activation": "gelu", "init": "xavier_uniform",
                           "optimizer": "adamw", "weight_decay": 0.01, "seed": 7})  # fmt: skip
    code = session.dataset_message()["export"]["python"]
    namespace: dict = {}
    exec(compile(code, "exported.py", "exec"), namespace)  # the user's side: run what Export gave
    model, optimizer = namespace["model"], namespace["optimizer"]
    theirs, ours = model.state_dict(), session.model.state_dict()
    assert theirs.keys() == ours.keys()
    for k in ours:
        np.testing.assert_array_equal(theirs[k], ours[k])
    assert type(optimizer) is type(session.optimizer) and optimizer.param_groups[0]["lr"] == session.optimizer.param_groups[0]["lr"]
    assert type(namespace["loss_fn"]) is type(session.loss_fn)


def test_findings_include_overfitting_from_the_epoch_history():
    history = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": v}
               for e, v in enumerate([0.9, 0.7, 0.6, 0.65, 0.7, 0.75, 0.8])]  # fmt: skip
    rules = [f["rule"] for f in views.plain_findings([], history)]
    assert rules == ["overfitting"]
    assert views.plain_findings([], history[:3]) == []  # val_loss still falling: nothing to say


# -- book experiments (presets) ----------------------------------------------------------


def _train_until_done(settings: dict, timeout: float = 60) -> PlaygroundSession:
    """A session trained to its last epoch (or until it stops); the worker is joined."""
    session, _ = _session(settings)
    session.publish_every = 10.0  # few snapshots: this is about the numbers
    session.start()
    deadline = time.monotonic() + timeout
    while session.state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    session.close()
    return session


def test_every_preset_is_a_valid_state_with_its_experiments_own_claim(studio_server):
    from twinnet.experiments import EXPERIMENTS, MODES
    from twinnet.studio.presets import PRESETS

    with urllib.request.urlopen(studio_server + "/api/playground/options") as r:
        page = json.loads(r.read())["presets"]
    assert {p["id"] for p in page} == set(PRESETS) >= {
        "linear-collapse", "symmetry-breaking", "exploding-gradients", "batch-size", "overfitting", "dead-relu", "xor-book"}
    for p in page:
        name, mode = PRESETS[p["id"]]["experiment"]
        assert p["claim"] == (MODES[name][mode] if mode else EXPERIMENTS[name][1])  # one source
        assert p["command"].startswith(f"twinnet experiment {name}")
        for state in [p["settings"], *(t["settings"] for t in p["then"])]:
            assert set(state) == set(DEFAULTS)  # a whole page state: the URL round-trips it
            validate(state)  # the config's own checks
        assert p["then"] and all(t["settings"] != p["settings"] for t in p["then"])


def test_exploding_gradients_preset_diverges_and_clipping_rescues_it():
    from twinnet.studio.presets import PRESETS, state

    preset = PRESETS["exploding-gradients"]
    plain = _train_until_done(state(preset, {"epochs": 4}))
    assert plain.state == "stopped" and "the loss became nan" in plain.message.lower(), plain.message
    clipped = _train_until_done(state(preset, {"epochs": 4, "clip_grad_norm": 1.0}))
    assert clipped.state == "finished" and clipped.trainer.clip_grad_norm == 1.0
    val = clipped.trainer.evaluate(clipped.pd.x_val, clipped.y_val)["loss"]
    assert val < 0.25  # sin(pi x) has variance 0.5: the clipped net fits it


def test_symmetry_preset_keeps_the_hidden_units_identical():
    from twinnet.studio.presets import PRESETS, state

    preset = PRESETS["symmetry-breaking"]
    zero = _train_until_done(state(preset, {"epochs": 100}))
    w = np.hstack([zero.model[0].weight.data, zero.model[0].bias.data[:, None], zero.model[2].weight.data.T])
    assert np.abs(w[:, :2]).max() > 0.1  # the units moved ...
    np.testing.assert_allclose(w, np.broadcast_to(w[0], w.shape), atol=1e-6)  # ... together
    random = _train_until_done(state(preset, {"epochs": 100, "init": "auto"}))
    w = random.model[0].weight.data
    assert np.abs(w - w[0]).max() > 0.1
    acc = lambda s: s.trainer.evaluate(s.pd.x_val, s.y_val)["accuracy"]  # noqa: E731
    assert acc(random) > acc(zero) + 0.15  # one unit cannot separate three blobs


def test_the_backprop_link_knows_the_backprop_pages_limit():
    small, _ = _session({"dataset": "xor", "hidden": [8, 8, 8]})
    assert small.dataset_message()["backprop"] is None
    wide, _ = _session({"dataset": "xor", "hidden": [9]})
    assert "up to 8 units" in wide.dataset_message()["backprop"]
    features, _ = _session({"dataset": "digits", "hidden": [4]})  # 64 inputs
    assert "64 inputs" in features.dataset_message()["backprop"]



def test_a_blown_up_network_publishes_why_it_stopped():
    from twinnet.studio.presets import PRESETS, state

    session, sent = _session(state(PRESETS["exploding-gradients"], {"epochs": 4}))
    session.start()
    deadline = time.monotonic() + 60
    while (session.alive or session._thread is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    session.close()
    last = json.loads(sent[-1])  # NaN weights and losses travel as null, not as a drawing error
    assert last["type"] == "update" and last["state"] == "stopped" and last["train"]["loss"] is None
    assert last["message"].startswith("the loss became nan at step")


def test_batch_size_and_overfitting_presets_show_their_claims():
    from twinnet.studio.presets import PRESETS, state

    def val(session, key):
        return session.trainer.evaluate(session.pd.x_val, session.y_val)[key]

    batch = PRESETS["batch-size"]
    one, full = (_train_until_done(state(batch, {"epochs": 1, **c})) for c in ({}, batch["then"][0][1]))
    assert val(one, "accuracy") > 0.8 and val(full, "accuracy") < 0.4  # per epoch, batch 1 learns fastest
    over = PRESETS["overfitting"]
    plain = _train_until_done(state(over, {"epochs": 25}))
    rules = [f["rule"] for f in views.plain_findings([], plain.epoch_rows)]
    assert len(plain.pd.x_train) <= 100 and "overfitting" in rules
    l2 = _train_until_done(state(over, {"epochs": 25, **over["then"][0][1]}))
    assert val(l2, "loss") < val(plain, "loss")
