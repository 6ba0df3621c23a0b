"""Untrusted checkpoint files: nothing in them can execute code or make us allocate gigabytes.

Every crafted file is rejected with a ``CheckpointError`` (a ValueError) naming the file
and the problem, by the library (``read_header``, ``load_tensors``, ``load_weights``,
``load_state``) and by the CLI (``twinnet eval DIR``: exit 2, one line on stderr).
"""

from __future__ import annotations

import json
import pickle
import resource
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinnet.checkpoint import (
    CheckpointError,
    load_tensors,
    load_weights,
    read_header,
    read_metadata,
    save_tensors,
    save_weights,
)
from twinnet.cli.main import main
from twinnet.config import TrainConfig
from twinnet.models import build_mlp
from twinnet.train.state import load_state, save_state

TORCH_REASON = "PyTorch not installed (pip install twinnet[torch])"
LAYERS = [2, 8, 3]  # the model of the crafted run folder below


# -- helpers ---------------------------------------------------------------------------------


def craft(path: Path, header, data: bytes = b"", length: int | None = None) -> Path:
    """Write a safetensors-shaped file: 8-byte length, header (dict -> JSON, or raw bytes), data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    path.write_bytes(n.to_bytes(8, "little") + raw + data)
    return path


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def model():
    return build_mlp(LAYERS, "relu", rng=0)


def every_loader(path: Path):
    """Each way twinnet reads a checkpoint; all must reject a bad file the same way."""
    return {
        "read_header": lambda: read_header(path),
        "read_metadata": lambda: read_metadata(path),
        "load_tensors": lambda: load_tensors(path),
        "load_weights": lambda: load_weights(path, model()),
        "load_state": lambda: load_state(path),
    }


def assert_rejected(path: Path, *fragments: str) -> str:
    messages = []
    for name, load in every_loader(path).items():
        with pytest.raises(CheckpointError) as info:
            load()
        msg = str(info.value)
        assert str(path) in msg, (name, msg)
        for f in fragments:
            assert f in msg, (name, f, msg)
        messages.append(msg)
    return messages[0]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder as `twinnet eval` expects it (config.toml + model.safetensors), no training."""
    d = tmp_path / "run"
    d.mkdir()
    cfg = TrainConfig(dataset="spirals", layers=LAYERS, n_samples=300, epochs=1)
    (d / "config.toml").write_text(cfg.to_toml())
    save_weights(
        d / "model.safetensors", model(), {"format": "twinnet-weights", "task": "multiclass"}
    )
    return d


def cli_eval(run_dir: Path, capsys) -> tuple[int, str]:
    code = main(["eval", str(run_dir)])
    _, err = capsys.readouterr()
    return code, err


def assert_cli_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twinnet: error:"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_the_crafted_run_folder_evaluates(run_dir, capsys):
    """Control: the folder used below is good, so each failure is the crafted file's doing."""
    code = main(["eval", str(run_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "confusion matrix" in out


# -- (a) pickles never run -------------------------------------------------------------------


class Evil:
    """Unpickling this creates ``marker`` (a harmless stand-in for running any command)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail loudly if anything calls the pickle module while loading."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was called while loading a checkpoint")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_payload_is_rejected_and_never_runs(tmp_path, protocol, run_dir, capsys):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Evil(probe), protocol=protocol))
    assert probe.exists(), "the payload is live: unpickling it does create the file"

    marker = tmp_path / "pwned"
    payload = pickle.dumps(Evil(marker), protocol=protocol)
    path = tmp_path / "model.safetensors"
    path.write_bytes(payload)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("load", "loads", "Unpickler"):
            mp.setattr(pickle, name, lambda *a, **k: pytest.fail("pickle called"))
        assert_rejected(path, "not a safetensors file")
        shutil.copy(path, run_dir / "model.safetensors")
        assert_cli_one_line(*cli_eval(run_dir, capsys), "not a safetensors file")
    assert not marker.exists()


def test_pickle_bytes_inside_a_valid_file_stay_bytes(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Evil(marker))
    # hidden after a valid header as unclaimed data: rejected
    hidden = craft(tmp_path / "hidden.safetensors", {"__metadata__": {}}, payload)
    assert_rejected(hidden, f"{len(payload)} bytes of data belong to no tensor")
    # stored as a uint8 tensor: it is just bytes, and no model has such a tensor
    stored = craft(
        tmp_path / "stored.safetensors",
        {"blob": entry("U8", (len(payload),), (0, len(payload)))},
        payload,
    )
    tensors, _ = load_tensors(stored)
    assert tensors["blob"].dtype == np.uint8 and tensors["blob"].tobytes() == payload
    with pytest.raises(CheckpointError, match="unexpected 'blob'"):
        load_weights(stored, model())
    assert not marker.exists()


@pytest.mark.parametrize("what", ["state_dict", "evil_object"])
def test_torch_save_file_is_rejected(tmp_path, what, run_dir, capsys, no_unpickling):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    marker = tmp_path / "pwned"
    obj = (
        {k: torch.from_numpy(v) for k, v in model().state_dict().items()}
        if what == "state_dict"
        else Evil(marker)
    )
    path = run_dir / "model.safetensors"
    torch.save(obj, path)
    assert path.read_bytes()[:2] == b"PK"  # a zip holding a pickle
    assert_rejected(path, "not a safetensors file")
    assert_cli_one_line(*cli_eval(run_dir, capsys), "not a safetensors file")
    assert not marker.exists()


# -- (b) a header length that would allocate gigabytes -----------------------------------------


def _peak_growth(fn) -> tuple[int, int]:
    """(tracemalloc peak, ru_maxrss growth) in bytes while ``fn`` runs."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return peak, rss1 - rss0


MB = 2**20


@pytest.mark.parametrize("length", [2**62, 10 * 2**30, 2**64 - 1, 16 * MB + 1])
def test_oversized_header_length_is_rejected_without_allocating(tmp_path, length):
    path = craft(tmp_path / "big.safetensors", b'{"a": 1}' + b" " * 8, length=length)

    def reject_all():
        for load in every_loader(path).values():
            with pytest.raises(CheckpointError, match="header length"):
                load()

    peak, rss = _peak_growth(reject_all)
    assert peak < 50 * MB and rss < 50 * MB, (peak, rss)


def test_header_length_on_a_sparse_ten_gigabyte_file(tmp_path):
    """A file that really is 10 GB long (sparse: no disk used) with a 9 GB header length:
    the 16 MB header limit refuses it before reading anything."""
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as f:
        f.write((9 * 2**30).to_bytes(8, "little"))
        f.truncate(10 * 2**30)
    if path.stat().st_blocks * 512 > 100 * MB:
        pytest.skip("this file system does not support sparse files")
    peak, rss = _peak_growth(lambda: pytest.raises(CheckpointError, read_header, path))
    assert peak < 50 * MB and rss < 50 * MB


# -- (c) truncated files -----------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path) -> Path:
    path = tmp_path / "good.safetensors"
    save_weights(path, model(), {"format": "twinnet-weights"})
    return path


@pytest.mark.parametrize(
    "keep", ["all-but-1", "all-but-100", "header-only", "half-header", "7-bytes", "empty"]
)
def test_truncated_file_is_rejected(good_file, keep, run_dir, capsys):
    raw = good_file.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    cut = {
        "all-but-1": len(raw) - 1,
        "all-but-100": len(raw) - 100,
        "header-only": 8 + n,
        "half-header": 8 + n // 2,
        "7-bytes": 7,
        "empty": 0,
    }[keep]
    good_file.write_bytes(raw[:cut])
    msg = assert_rejected(good_file)
    assert any(w in msg for w in ("truncated", "too short", "larger than the file")), msg
    shutil.copy(good_file, run_dir / "model.safetensors")
    assert_cli_one_line(*cli_eval(run_dir, capsys), "model.safetensors")


# -- (d) shapes that lie -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tensor, fragment",
    [
        (entry("F32", (100000, 100000), (0, 16)), "claims shape [100000, 100000]"),
        (entry("F32", (100000, 100000), (0, 40_000_000_000)), "outside the 16 bytes"),
        (entry("F64", (2**40, 2**40), (0, 16)), "claims shape"),
        (entry("F32", (2,), (0, 16)), "spans 16 bytes"),
    ],
)
def test_lying_shape_is_rejected_before_allocation(tmp_path, tensor, fragment):
    path = craft(tmp_path / "lie.safetensors", {"0.weight": tensor}, bytes(16))

    def reject_all():
        for load in every_loader(path).values():
            with pytest.raises(CheckpointError, match=fragment.replace("[", r"\[")):
                load()

    peak, rss = _peak_growth(reject_all)
    assert peak < 50 * MB and rss < 50 * MB, (peak, rss)


# -- (e) overlapping and gapped offsets ------------------------------------------------------------


@pytest.mark.parametrize(
    "offsets, fragment",
    [
        (((0, 16), (8, 24)), "overlaps or leaves a gap"),  # overlap
        (((0, 16), (20, 36)), "overlaps or leaves a gap"),  # gap
        (((0, 16), (0, 16)), "overlaps or leaves a gap"),  # both on the same bytes
        (((16, 32), (16, 32)), "overlaps or leaves a gap"),  # aliased, leading bytes unclaimed
        (((0, 16), (16, 32)), "bytes of data belong to no tensor"),  # trailing bytes unclaimed
        (((8, 4), (16, 32)), "outside"),  # start after stop
        (((-8, 8), (16, 32)), "outside"),  # negative
    ],
)
def test_overlapping_or_gapped_offsets_are_rejected(tmp_path, offsets, fragment):
    header = {"a": entry("F32", (4,), offsets[0]), "b": entry("F32", (4,), offsets[1])}
    path = craft(tmp_path / "x.safetensors", header, bytes(40))
    assert_rejected(path, fragment)


# -- (f) malformed headers ---------------------------------------------------------------------------

OK = entry("F32", (2,), (0, 8))
MALFORMED = {
    "not-json": (b"this is not json at all!", "not JSON"),
    "not-utf8": (b'{"a": "\xff\xfe"}', "not JSON"),
    "json-array": ([OK], "not a JSON object"),
    "json-string": ("a string", "not a JSON object"),
    "json-null": (None, "not a JSON object"),
    "deep-nesting": (b"[" * 200_000 + b"]" * 200_000, "not JSON"),
    "duplicate-name": (
        b'{"a": %s, "a": %s}' % (json.dumps(OK).encode(), json.dumps(entry("I32")).encode()),
        "twice",
    ),
    "dtype-unknown": ({"a": entry("F31")}, "unsupported dtype 'F31'"),
    "dtype-bf16": ({"a": entry("BF16", (4,))}, "unsupported dtype 'BF16'"),
    "dtype-lowercase": ({"a": entry("f32")}, "unsupported dtype"),
    "dtype-list": ({"a": entry(["F32"])}, "unsupported dtype"),
    "dtype-null": ({"a": entry(None)}, "unsupported dtype"),
    "shape-bool": ({"a": entry("F32", (True, 2))}, "invalid shape"),
    "shape-negative": ({"a": entry("F32", (-2,))}, "invalid shape"),
    "shape-float": ({"a": entry("F32", (2.0,))}, "invalid shape"),
    "shape-string": (
        {"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}},
        "invalid shape",
    ),
    "offsets-three": ({"a": entry("F32", (2,), (0, 4, 8))}, "byte offsets"),
    "offsets-bool": ({"a": entry("U8", (1,), (False, True))}, "byte offsets"),
    "offsets-float": ({"a": entry("F32", (2,), (0.0, 8.0))}, "byte offsets"),
    "entry-extra-key": ({"a": {**OK, "exec": "rm -rf /"}}, "malformed header entry"),
    "entry-missing-key": ({"a": {"dtype": "F32", "shape": [2]}}, "malformed header entry"),
    "entry-not-object": ({"a": [1, 2]}, "malformed header entry"),
    "metadata-list": ({"__metadata__": [], "a": OK}, "metadata must map strings to strings"),
    "metadata-int-value": (
        {"__metadata__": {"epoch": 3}, "a": OK},
        "metadata must map strings to strings",
    ),
    "metadata-nested": (
        {"__metadata__": {"state": {"x": "y"}}, "a": OK},
        "metadata must map strings to strings",
    ),
    "metadata-string": ({"__metadata__": "x", "a": OK}, "metadata must map strings to strings"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_header_is_rejected(tmp_path, case, run_dir, capsys):
    header, fragment = MALFORMED[case]
    path = craft(tmp_path / "bad.safetensors", header, bytes(8))
    assert_rejected(path, fragment)
    shutil.copy(path, run_dir / "model.safetensors")
    assert_cli_one_line(*cli_eval(run_dir, capsys), fragment)


# -- (g, h) a checkpoint of another model ---------------------------------------------------------


def test_other_architecture_lists_every_mismatch_in_one_message(tmp_path, run_dir, capsys):
    other = build_mlp(
        [2, 16, 3, 3], "relu", rng=0
    )  # 0.weight (16, 2), 2.weight (3, 16), 4.*: extra
    path = tmp_path / "other.safetensors"
    save_weights(path, other)
    state = model().state_dict()
    state.pop("2.bias")
    with pytest.raises(CheckpointError) as info:
        load_tensors(path, expected=state | {"extra.weight": np.zeros(3, np.float32)})
    msg = str(info.value)
    assert msg.count("\n") == 0 and "different architecture" in msg
    for part in (
        "missing 'extra.weight'",
        "unexpected '2.bias'",
        "unexpected '4.weight'",
        "unexpected '4.bias'",
        "'0.weight' has shape (16, 2) in the file, (8, 2) in the model",
        "'0.bias' has shape (16,) in the file, (8,) in the model",
        "'2.weight' has shape (3, 16) in the file, (3, 8) in the model",
    ):
        assert part in msg, (part, msg)

    shutil.copy(path, run_dir / "model.safetensors")
    code, err = cli_eval(run_dir, capsys)
    assert_cli_one_line(
        code,
        err,
        "unexpected '4.weight'",
        "'0.weight' has shape (16, 2) in the file, (8, 2) in the model",
    )


def test_model_is_untouched_when_a_checkpoint_does_not_fit(tmp_path):
    path = tmp_path / "other.safetensors"
    save_weights(path, build_mlp([2, 16, 3], "relu", rng=1))
    m = model()
    before = m.state_dict()
    with pytest.raises(CheckpointError):
        load_weights(path, m)
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())


def test_float64_file_into_float32_model_is_reported(tmp_path, run_dir, capsys):
    path = tmp_path / "f64.safetensors"
    save_weights(path, build_mlp(LAYERS, "relu", dtype=np.float64, rng=0))
    with pytest.raises(CheckpointError) as info:
        load_weights(path, model())
    msg = str(info.value)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert f"'{name}' has dtype float64 in the file, float32 in the model" in msg
    shutil.copy(path, run_dir / "model.safetensors")
    assert_cli_one_line(
        *cli_eval(run_dir, capsys), "dtype float64 in the file, float32 in the model"
    )


# -- training-state files ---------------------------------------------------------------------------


def _trainer_state() -> dict:
    from twinnet import losses, optim
    from twinnet.train import Trainer

    m = build_mlp(LAYERS, "relu", dropout=0.1, rng=0)
    t = Trainer(m, losses.CrossEntropyLoss(), optim.Adam(m.parameters(), lr=1e-2), seed=0)
    rng = np.random.default_rng(0)
    t.fit(
        (rng.normal(size=(64, 2)).astype(np.float32), rng.integers(0, 3, 64)),
        epochs=1,
        batch_size=16,
    )
    return t.state_dict()


def _retamper(path: Path, edit) -> None:
    """Rewrite the metadata of a state file: ``edit(metadata dict) -> metadata dict``."""
    tensors, meta = load_tensors(path)
    save_tensors(path, tensors, edit(dict(meta)))


def _edit_doc(fn):
    def edit(meta):
        doc = json.loads(meta["state"])
        fn(doc)
        meta["state"] = json.dumps(doc)
        return meta

    return edit


TAMPERED_STATE = {
    "state-not-json": (lambda m: m | {"state": "{not json"}, "not valid JSON"),
    "state-deeply-nested": (
        lambda m: m | {"state": "[" * 100_000 + "]" * 100_000},
        "not valid JSON",
    ),
    "wrong-format": (lambda m: m | {"format": "pickle"}, "not a twinnet training-state file"),
    "no-state": (lambda m: {"format": "twinnet-train-state"}, "not a twinnet training-state file"),
    "missing-tensor": (
        _edit_doc(lambda d: d["model"].update({"0.weight": {"__tensor__": "state/nope"}})),
        "missing tensor",
    ),
    "tensor-key-not-a-string": (
        _edit_doc(lambda d: d["model"].update({"0.weight": {"__tensor__": [1]}})),
        "state/model/0.weight",
    ),
    "tuple-not-a-list": (_edit_doc(lambda d: d.update({"epoch": {"__tuple__": 5}})), "state/epoch"),
    "intkeys-not-ints": (
        _edit_doc(lambda d: d.update({"rngs": {"a": 1, "__intkeys__": True}})),
        "state/rngs",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED_STATE))
def test_tampered_training_state_is_rejected(tmp_path, case):
    path = tmp_path / "checkpoint.safetensors"
    save_state(path, _trainer_state())
    edit, fragment = TAMPERED_STATE[case]
    _retamper(path, edit)
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_state(path)
    assert str(path) in str(info.value)


def test_state_roundtrip_is_exact(tmp_path):
    state = _trainer_state()
    path = tmp_path / "checkpoint.safetensors"
    save_state(path, state)
    back = load_state(path)
    assert back.keys() == state.keys()
    for k, v in state["model"].items():
        assert np.array_equal(back["model"][k], v) and back["model"][k].dtype == v.dtype
    assert back["rngs"] == state["rngs"] and back["history"] == state["history"]


# -- the CLI on a tampered resumable run ----------------------------------------------------------


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A finished tiny run with its state/checkpoint.safetensors (a resume would do nothing)."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
        code = main(["train", "--dataset", "spirals", "--layers", "2,8,3", "--n-samples", "300",
                     "--epochs", "1", "--batch-size", "32", "--dropout", "0.1", "--quiet",
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    (out / "model.safetensors").unlink()  # as if killed after the last checkpoint
    return out


RESUME_TAMPER = {
    "not-json": (lambda m: m | {"state": "{"}, "not valid JSON"),
    "pickle-payload": (None, "not a safetensors file"),
    "other-architecture": ("arch", "cannot load state"),
    "epoch-not-a-number": (_edit_doc(lambda d: d.update({"epoch": "three"})), "three"),
    "history-not-rows": (_edit_doc(lambda d: d.update({"history": 5})), ""),
    "unknown-rng-module": (
        _edit_doc(lambda d: d.update({"rngs": {"7": {"bit_generator": "PCG64"}}})),
        "",
    ),
    "rng-state-garbage": (
        _edit_doc(lambda d: d["rngs"].update({k: {"x": 1} for k in d["rngs"]})),
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(RESUME_TAMPER))
def test_resume_from_a_tampered_state_exits_2_with_one_line(
    interrupted_run, tmp_path, case, capsys
):
    run = tmp_path / "run"
    shutil.copytree(interrupted_run, run)
    state = run / "state" / "checkpoint.safetensors"
    edit, fragment = RESUME_TAMPER[case]
    if edit is None:
        state.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    elif edit == "arch":
        tensors, meta = load_tensors(state)
        tensors["state/model/0.weight"] = np.zeros((5, 2), np.float32)
        save_tensors(state, tensors, meta)
    else:
        _retamper(state, edit)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
        code = main(["train", "--resume", str(run), "--quiet"])
    _, err = capsys.readouterr()
    assert_cli_one_line(code, err, fragment)
    assert not (tmp_path / "pwned").exists()


def test_resume_from_a_state_naming_a_module_without_rng(interrupted_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(interrupted_run, run)
    _retamper(
        run / "state" / "checkpoint.safetensors", _edit_doc(lambda d: d["rngs"].update({"0": {}}))
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
        code = main(["train", "--resume", str(run), "--quiet"])
    assert_cli_one_line(code, capsys.readouterr().err)


# -- temp files of interrupted writes ----------------------------------------------------------------


def test_leftover_temp_file_never_shadows_and_is_cleaned_by_the_next_save(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_state(path, {"step": 1, "w": np.ones(3)})
    stale = [
        tmp_path / ".checkpoint.safetensors.k1ll3d.tmp",
        tmp_path / ".checkpoint.safetensors.x.tmp",
    ]
    for s in stale:
        s.write_bytes(b"half a checkpoint")
    other = tmp_path / ".other.safetensors.abc.tmp"  # another file's temp file: not ours to delete
    other.write_bytes(b"x")
    assert load_state(path)["step"] == 1  # read by its own name only
    save_state(path, {"step": 2, "w": np.ones(3)})
    assert load_state(path)["step"] == 2
    assert not any(s.exists() for s in stale) and other.exists()


# -- fuzzed headers: either a clean load or a CheckpointError, never another exception -----------------

_names = st.text(alphabet="ab.0_", min_size=0, max_size=4)
_ints = st.one_of(
    st.integers(-3, 40), st.sampled_from([2**63, 2**64, -(2**63)]), st.booleans(), st.floats(0, 40)
)
_dtypes = st.one_of(
    st.sampled_from(["F32", "F64", "F16", "I64", "U8", "BOOL", "BF16", "f32", ""]),
    st.integers(),
    st.none(),
)
_entries = st.one_of(
    st.fixed_dictionaries({
        "dtype": _dtypes,
        "shape": st.one_of(st.lists(_ints, max_size=3), _ints, st.text(max_size=2)),
        "data_offsets": st.one_of(st.lists(_ints, min_size=0, max_size=3), st.tuples(_ints, _ints).map(list)),
    }),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.integers(),
    st.none(),
)  # fmt: skip
_metadata = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
    st.lists(st.text(max_size=2), max_size=2),
)
_headers = st.dictionaries(_names, _entries, max_size=3).flatmap(
    lambda d: st.one_of(st.just(d), _metadata.map(lambda m: {**d, "__metadata__": m}))
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=_headers, data_len=st.integers(0, 48), slack=st.integers(-3, 3))
def test_fuzzed_headers_load_or_raise_checkpoint_error(tmp_path, header, data_len, slack):
    raw = json.dumps(header).encode()
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(max(0, len(raw) + slack).to_bytes(8, "little") + raw + bytes(range(data_len)))
    try:
        tensors, meta = load_tensors(path)
    except CheckpointError:
        return
    # accepted: then it is exactly what the header says
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    assert sorted(tensors) == sorted(entries)
    for k, t in tensors.items():
        assert list(t.shape) == entries[k]["shape"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
