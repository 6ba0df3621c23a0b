"""The documentation site builds, documents the public contract, and its examples run.

- ``mkdocs build --strict`` passes (every warning is an error: broken links, unknown
  cross-references, pages missing from the nav), and every public name of the design
  contract (shared/DESIGN.md) appears in the generated API reference with a non-empty
  docstring: found by the anchor mkdocstrings gives it (``id="twinnet.nn.Linear"``).
  Needs the ``docs`` extra (mkdocs, mkdocstrings-python, mkdocs-material): skipped with
  a reason otherwise.
- Every Python example of README.md, docs/index.md and docs/guide/*.md runs as written,
  the blocks of a page one after the other in one namespace. There is no way to skip
  one. A block that needs data the reader brings (``x``, ``y``, a run folder) is
  preceded by an HTML comment that gives it small data, invisible on the rendered page
  and on GitHub::

      <!-- test-setup:
      import numpy as np
      x = np.zeros((4, 784), np.float32)
      -->
      ```python
      ...

  The setup runs just before its block, in the same namespace, in a temporary working
  folder. A block that imports torch (or ``twinnet.twin``) is skipped, with the reason,
  when PyTorch is not installed.
- The experiments guide lists every registered experiment.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_MODULES = {
    "mkdocs": "mkdocs",
    "mkdocstrings": "mkdocstrings",
    "mkdocstrings_handlers.python": "mkdocstrings-python",
    "material": "mkdocs-material",
}


def _missing_docs_tools() -> list[str]:
    missing = []
    for module, package in MKDOCS_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if not found:
            missing.append(package)
    return missing


# The public names of shared/DESIGN.md, as the API reference must show them.
DESIGN_NAMES = [
    # nn: Parameter, Module and its methods, every layer
    "twinnet.nn.Parameter",
    "twinnet.nn.Parameter.zero_grad",
    "twinnet.nn.Module",
    "twinnet.nn.Module.forward",
    "twinnet.nn.Module.backward",
    "twinnet.nn.Module.__call__",
    "twinnet.nn.Module.parameters",
    "twinnet.nn.Module.named_parameters",
    "twinnet.nn.Module.train",
    "twinnet.nn.Module.eval",
    "twinnet.nn.Module.state_dict",
    "twinnet.nn.Module.load_state_dict",
    "twinnet.nn.Module.zero_grad",
    "twinnet.nn.Linear",
    "twinnet.nn.Sigmoid",
    "twinnet.nn.Tanh",
    "twinnet.nn.ReLU",
    "twinnet.nn.LeakyReLU",
    "twinnet.nn.GELU",
    "twinnet.nn.SiLU",
    "twinnet.nn.Softmax",
    "twinnet.nn.Identity",
    "twinnet.nn.SwiGLU",
    "twinnet.nn.BatchNorm1d",
    "twinnet.nn.LayerNorm",
    "twinnet.nn.Dropout",
    "twinnet.nn.Sequential",
    # nn.init
    "twinnet.nn.init.xavier_uniform",
    "twinnet.nn.init.xavier_normal",
    "twinnet.nn.init.kaiming_uniform",
    "twinnet.nn.init.kaiming_normal",
    "twinnet.nn.init.lecun_normal",
    "twinnet.nn.init.zeros",
    # losses: forward(pred, target) -> float, backward() -> dL/dpred
    "twinnet.losses.Loss.forward",
    "twinnet.losses.Loss.backward",
    "twinnet.losses.MSELoss",
    "twinnet.losses.BCELoss",
    "twinnet.losses.BCEWithLogitsLoss",
    "twinnet.losses.CrossEntropyLoss",
    # optim
    "twinnet.optim.Optimizer.step",
    "twinnet.optim.Optimizer.zero_grad",
    "twinnet.optim.Optimizer.state_dict",
    "twinnet.optim.Optimizer.load_state_dict",
    "twinnet.optim.SGD",
    "twinnet.optim.RMSprop",
    "twinnet.optim.Adagrad",
    "twinnet.optim.Adam",
    "twinnet.optim.AdamW",
    "twinnet.optim.clip_grad_norm_",
    "twinnet.optim.clip_grad_value_",
    "twinnet.optim.lr_scheduler.StepLR",
    "twinnet.optim.lr_scheduler.ExponentialLR",
    "twinnet.optim.lr_scheduler.CosineAnnealingLR",
    "twinnet.optim.lr_scheduler.LinearWarmup",
    "twinnet.optim.lr_scheduler.OneCycleLR",
    "twinnet.optim.lr_scheduler.ReduceLROnPlateau",
    # check
    "twinnet.check.gradcheck",
    "twinnet.check.GradcheckReport",
    "twinnet.check.GradcheckReport.passed",
    # twin
    "twinnet.twin.to_torch",
    "twinnet.twin.from_torch",
    "twinnet.twin.compare",
    # training, data, runs
    "twinnet.train.Trainer",
    "twinnet.train.Trainer.fit",
    "twinnet.train.History",
    "twinnet.train.EarlyStopping",
    "twinnet.train.LRSchedulerCallback",
    "twinnet.train.Checkpoint",
    "twinnet.train.ProgressBar",
    "twinnet.train.NaNGuard",
    "twinnet.diagnostics.Diagnostics",
    "twinnet.diagnostics.write_report",
    "twinnet.data.load",
    "twinnet.config.TrainConfig",
]

# packages whose reference page renders their public (__all__) classes and functions
REFERENCE_PACKAGES = [
    "twinnet.nn",
    "twinnet.losses",
    "twinnet.optim",
    "twinnet.optim.lr_scheduler",
    "twinnet.check",
    "twinnet.data",
    "twinnet.train",
    "twinnet.diagnostics",
    "twinnet.experiments",
    "twinnet.sklearn",
    "twinnet.twin",
]


# -- a small HTML tree, enough to find an object's docstring by its anchor -----------------
class _Node:
    __slots__ = ("tag", "attrs", "children", "parent", "text")

    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children: list[_Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def elements(self) -> list[_Node]:
        return [c for c in self.children if isinstance(c, _Node)]

    def walk(self):
        yield self
        for c in self.elements():
            yield from c.walk()


class _TreeBuilder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = _Node("root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(_Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


SKIP_IN_DOCSTRING = {"doc-signature", "doc-class-bases", "doc-children", "doc-object", "headerlink"}


def _text(node: _Node) -> str:
    parts = []
    for c in node.children:
        if isinstance(c, str):
            parts.append(c)
        elif not (c.classes & SKIP_IN_DOCSTRING):
            parts.append(_text(c))
    return " ".join(" ".join(parts).split())


def _next_elements(node: _Node):
    siblings = node.parent.elements()
    return siblings[siblings.index(node) + 1 :]


def _docstring_after_heading(heading: _Node) -> str | None:
    for sib in _next_elements(heading):
        if "doc-contents" in sib.classes:
            return _text(sib)
        if "doc-signature" not in sib.classes:
            break
    return None


def _docstring_after_anchor(anchor: _Node) -> str | None:
    """A Markdown anchor ([](){#id}) placed just before a rendered object."""
    holder = anchor.parent if anchor.parent.tag == "p" else anchor
    for sib in _next_elements(holder):
        if "doc-object" in sib.classes:
            heading = next((e for e in sib.elements() if "doc-heading" in e.classes), None)
            return None if heading is None else _docstring_after_heading(heading)
        break
    return None


def reference_docstrings(site: Path) -> dict[str, str]:
    """{anchor id: docstring text} for every object of the built API reference."""
    found: dict[str, str] = {}
    for page in sorted((site / "reference").rglob("index.html")):
        builder = _TreeBuilder()
        builder.feed(page.read_text(encoding="utf-8"))
        for node in builder.root.walk():
            anchor = node.attrs.get("id")
            if not anchor or not anchor.startswith("twinnet."):
                continue
            if "doc-heading" in node.classes:
                text = _docstring_after_heading(node)
            elif node.tag == "a":
                text = _docstring_after_anchor(node)
            else:
                continue
            if text is not None and (anchor not in found or not found[anchor]):
                found[anchor] = text
    return found


@pytest.fixture
def built_site(tmp_path_factory) -> Path:
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install -e '.[docs]')")
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return site


def test_mkdocs_strict_build_documents_the_public_api(built_site):
    """One build (a few seconds), then every check of the built site."""
    docs = reference_docstrings(built_site)
    missing = [name for name in DESIGN_NAMES if name not in docs]
    empty = [name for name in DESIGN_NAMES if name in docs and not docs[name]]
    assert not missing and not empty, (
        "public names of DESIGN.md without a docstring in the API reference "
        "(mkdocstrings leaves out objects without a docstring; add one in src/twinnet):\n"
        f"  missing: {missing}\n  empty: {empty}"
    )
    # the site has every guide page, and the pages written by others are in it too
    for page in ("index.html", "guide/engine/index.html", "guide/training/index.html",
                 "guide/twin/index.html", "guide/diagnostics/index.html", "guide/experiments/index.html",
                 "guide/sklearn/index.html", "guide/scaling/index.html", "experiments/index.html",
                 "reliability/index.html", "reference/index.html"):  # fmt: skip
        assert (built_site / page).is_file(), page
    # offline: no web fonts, no scripts or stylesheets from elsewhere
    html = (built_site / "index.html").read_text(encoding="utf-8")
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html)

    # beyond DESIGN.md: every class and function a documented package exports
    undocumented = []
    for package in REFERENCE_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:  # twinnet.twin without torch: its page is still built statically
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if not docs.get(f"{package}.{name}"):
                    undocumented.append(f"{package}.{name}")
    assert not undocumented, f"exported but without a docstring in the API reference: {undocumented}"


# -- the examples of the README and the guides --------------------------------------------
FENCE = re.compile(
    r"(?P<marker><!--\s*(?P<kind>[\w-]+)(?::|\s)(?P<setup>(?:(?!-->).)*)-->\s*\n)?```python\n(?P<code>.*?)\n```", re.S
)
NEEDS_TORCH = re.compile(r"^\s*(import torch|from torch\b|from twinnet import .*\btwin\b|from twinnet\.twin\b)", re.M)


def python_blocks(page: str) -> list[tuple[str, str]]:
    """[(setup, code)] of every ```python block of ``page`` (relative to the repository)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m["marker"] and m["kind"] != "test-setup":
            raise AssertionError(f"{page}: unknown marker <!-- {m['kind']} --> before a python block")
        blocks.append((m["setup"] or "", m["code"]))
    return blocks


PAGES_WITH_EXAMPLES = sorted(
    page
    for page in ["README.md", "docs/index.md", *(f"docs/guide/{p.name}" for p in DOCS.glob("guide/*.md"))]
    if python_blocks(page)
)


def test_every_page_with_python_is_tested():
    """README.md and every guide page with a python block are in the list; none skips one."""
    assert "README.md" in PAGES_WITH_EXAMPLES and "docs/guide/twin.md" in PAGES_WITH_EXAMPLES
    for page in ["README.md", "docs/index.md", *(f"docs/guide/{p.name}" for p in DOCS.glob("guide/*.md"))]:
        text = (ROOT / page).read_text(encoding="utf-8")
        assert "skip-test" not in text, f"{page}: every example must run (give it data with test-setup)"
        assert text.count("```python") == len(python_blocks(page)), page


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_page_examples_run(page, tmp_path, monkeypatch):
    torch_missing = importlib.util.find_spec("torch") is None
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs_example_{page.replace('/', '_').replace('.', '_')}"}
    out = io.StringIO()
    skipped = []
    for i, (setup, code) in enumerate(python_blocks(page), 1):
        if torch_missing and (NEEDS_TORCH.search(code) or NEEDS_TORCH.search(setup)):
            skipped.append(i)
            continue
        for part, source in (("setup of example", setup), ("example", code)):
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(source, f"{page} ({part} {i})", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"{part} {i} of {page} failed: {type(err).__name__}: {err}\n{source}") from err
    if skipped:
        pytest.skip(f"PyTorch not installed: examples {skipped} of {page} need it (pip install twinnet[torch])")


def test_experiments_guide_lists_every_experiment():
    from twinnet.experiments import EXPERIMENTS

    text = (DOCS / "guide" / "experiments.md").read_text(encoding="utf-8")
    missing = [name for name in EXPERIMENTS if f"`{name}`" not in text]
    assert not missing, f"docs/guide/experiments.md does not list {missing}"


def test_nav_lists_every_page():
    """Every Markdown page is in mkdocs.yml's nav (also a --strict warning; this names them)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    missing = [p for p in pages if f": {p}" not in nav]
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"
