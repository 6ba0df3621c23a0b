"""Helpers for the studio's tests: the app served by uvicorn in a background thread, and
Playwright for Python driving Debian's chromium (nothing downloads a browser).

    from studio_support import studio_server, browser, page, screenshot   # pytest fixtures

``studio_server`` yields the base URL ("http://127.0.0.1:PORT") of a studio whose
RUNS_DIR is a fresh tmp folder; ``page`` is a new browser tab (its console errors are
collected in ``page.console_errors``); ``screenshot(page, name)`` saves
tests/artifacts/studio/NAME.png (gitignored) and returns the path.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "studio"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


@contextmanager
def serve(app, host: str = "127.0.0.1"):
    """Run ``app`` with uvicorn on a free port of ``host`` in a daemon thread; yields the
    base URL and stops the server (running its shutdown) on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # the OS picks a free port; the bound socket is handed to uvicorn
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the studio server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    return folder


@pytest.fixture
def studio_server(runs_dir):
    pytest.importorskip("starlette", reason="starlette not installed (pip install twinnet[studio])")
    pytest.importorskip("uvicorn", reason="uvicorn not installed (pip install twinnet[studio])")
    from twinnet.studio.app import create_app

    with serve(create_app(runs_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless chromium per test module (a new page per test is cheap)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install twinnet[dev])"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium not installed (apt-get install chromium) - needed for the browser tests")
    home = tmp_path_factory.mktemp("chromium-home")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            env={**os.environ, "HOME": str(home)},  # chromium writes its caches under HOME
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.console_errors = []
    tab.on("console", lambda m: m.type == "error" and tab.console_errors.append(m.text))
    tab.on("pageerror", lambda e: tab.console_errors.append(str(e)))
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


def screenshot(tab, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=full_page)
    return path
