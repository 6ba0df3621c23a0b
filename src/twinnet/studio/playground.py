"""The playground's WebSocket: one training session per connection (per browser tab).

Messages from the page (JSON):
    {"type": "settings", "settings": {...}}   validate, then build a fresh session (reset)
    {"type": "start"} / {"type": "pause"} / {"type": "step"} / {"type": "reset"}
    {"type": "upload", "name": "data.csv", "data": "<base64>"}   a dropped .csv/.npz
Messages to the page:
    {"type": "dataset", ...}  after each (re)build: points, classes, layers, export texts
    {"type": "update", ...}   a snapshot of every panel (see ``session.snapshot``)
    {"type": "error", "message": "..."}  a bad value or file; the old session keeps going

Building a session and closing one run in a worker thread (``asyncio.to_thread``), so
the event loop only moves messages. Snapshots waiting to be sent are coalesced: a page
that draws slowly gets the newest one, never a growing backlog.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from twinnet.config import INITS, OPTIMIZERS, SCHEDULES
from twinnet.models import ACTIVATIONS, NORMS
from twinnet.studio import presets
from twinnet.studio.data import DRAW_EXTENT, parse_upload
from twinnet.studio.session import PlaygroundSession
from twinnet.studio.settings import DATASETS, DEFAULTS, FEATURES, LOSSES, PLANE_DATASETS, validate

MAX_MESSAGE = 12 * 2**20  # an upload's base64 text included


class SessionRegistry:
    """Every live playground session, so that server shutdown can stop them all."""

    def __init__(self) -> None:
        self._sessions: set = set()

    def add(self, session) -> None:
        self._sessions.add(session)

    def discard(self, session) -> None:
        self._sessions.discard(session)

    def __len__(self) -> int:
        return len(self._sessions)

    def stop_all(self) -> None:
        for session in list(self._sessions):
            session.close()
        self._sessions.clear()


class Outbox:
    """Messages for one WebSocket, filled from any thread, sent in order by one task;
    an update waiting behind another update replaces it.

    ``put`` first waits (up to ``wait`` seconds) until the message before it is on the
    wire. The worker thread holds the GIL almost all the time it trains; without this
    hand-over the event loop would get the GIL so rarely that messages (and the page's
    Pause) lag by seconds. Waiting for the previous message, not this one, lets training
    go on while a snapshot is sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wait: float = 1.0):
        self.loop, self.wait, self.pending, self.ready = loop, wait, [], asyncio.Event()
        self._previous = threading.Event()
        self._previous.set()

    def put(self, text: str) -> None:  # any thread but the loop's
        self._previous.wait(self.wait)
        sent = self._previous = threading.Event()
        self.loop.call_soon_threadsafe(self._put, text, sent)

    def put_nowait(self, text: str) -> None:  # the loop's thread
        self._put(text, None)

    def _put(self, text: str, sent) -> None:
        if self.pending and _is_update(text) and _is_update(self.pending[-1][0]):
            replaced = self.pending.pop()
            if replaced[1] is not None:
                replaced[1].set()
        self.pending.append((text, sent))
        self.ready.set()

    async def run(self, websocket: WebSocket) -> None:
        batch: list = []
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                batch, self.pending = self.pending, []
                while batch:
                    text, sent = batch[0]
                    await websocket.send_text(text)
                    batch.pop(0)
                    if sent is not None:
                        sent.set()
        finally:  # closed: nobody waits for a message that will never be sent
            for _, sent in batch + self.pending:
                if sent is not None:
                    sent.set()


def _is_update(text: str) -> bool:
    return text.startswith('{"type": "update"')


def _error(message: str) -> str:
    return json.dumps({"type": "error", "message": " ".join(str(message).split())})


def _same_origin(websocket: WebSocket) -> bool:
    """Refuse pages from other sites: a WebSocket is not bound by the same-origin policy."""
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == websocket.headers.get("host")


async def playground_socket(websocket: WebSocket) -> None:
    if not _same_origin(websocket):
        await websocket.close(code=1008)
        return
    await websocket.accept()
    registry: SessionRegistry = websocket.app.state.sessions
    outbox = Outbox(asyncio.get_running_loop())
    sender = asyncio.create_task(outbox.run(websocket))
    session: PlaygroundSession | None = None
    settings, upload = None, None

    async def rebuild(new_settings) -> None:
        nonlocal session, settings
        fresh = await asyncio.to_thread(_build, new_settings, outbox.put, upload)
        old, session, settings = session, fresh, new_settings
        registry.add(fresh)
        if old is not None:
            registry.discard(old)
            await asyncio.to_thread(old.close)

    try:
        while True:
            text = await websocket.receive_text()
            try:
                if len(text) > MAX_MESSAGE:
                    raise ValueError(f"message too large: expected at most {MAX_MESSAGE // 2**20} MB")
                msg = json.loads(text)
                kind = msg.get("type") if isinstance(msg, dict) else None
                if kind == "settings":
                    await rebuild(validate(msg.get("settings", DEFAULTS)))
                elif kind == "reset":
                    await rebuild(settings or validate(DEFAULTS))
                elif kind == "upload":
                    payload = base64.b64decode(str(msg.get("data", "")), validate=True)
                    upload = await asyncio.to_thread(parse_upload, str(msg.get("name", "")), payload)
                    outbox.put_nowait(json.dumps({"type": "uploaded", "name": msg.get("name"), "rows": len(upload[0])}))
                elif kind in ("start", "pause", "step"):
                    if session is None:
                        raise ValueError("no network yet: the settings have not been accepted")
                    getattr(session, kind)()
                else:
                    raise ValueError(f"unknown message type {kind!r}; expected settings, start, pause, step, reset or upload")
            except (ValueError, TypeError, KeyError, OSError, binascii.Error, MemoryError) as e:
                outbox.put_nowait(_error(e))  # includes ConfigError, DataError, bad JSON
            except Exception as e:  # a bug: say so in one line; the page and the server live on
                outbox.put_nowait(_error(f"internal error: {type(e).__name__}: {e}"))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        if session is not None:
            registry.discard(session)
            await asyncio.to_thread(session.close)


def _build(settings, publish, upload) -> PlaygroundSession:
    """A fresh session and its first messages (runs in a worker thread)."""
    session = PlaygroundSession(settings, publish, upload)
    publish(json.dumps(session.dataset_message(), allow_nan=False))
    session.publish_snapshot()
    return session


async def options(request):
    """The settings' defaults and choices, from the same tables the config validates with."""
    return JSONResponse({
        "defaults": DEFAULTS,
        "datasets": list(DATASETS),
        "features": list(FEATURES),
        "activations": [a for a in ACTIVATIONS if a != "identity"] + ["identity"],
        "inits": list(INITS),
        "losses": list(LOSSES),
        "optimizers": list(OPTIMIZERS),
        "schedules": list(SCHEDULES),
        "norms": list(NORMS),
        "draw_extent": DRAW_EXTENT,
        "plane_datasets": PLANE_DATASETS,
        "presets": presets.for_page(),
    })  # fmt: skip


routes = [
    Route("/api/playground/options", options),
    WebSocketRoute("/ws/playground", playground_socket),
]
