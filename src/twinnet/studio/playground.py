"""The playground's routes and per-browser-session training (skeleton; filled next)."""

from __future__ import annotations


class SessionRegistry:
    """Every live playground session, so that server shutdown can stop them all."""

    def __init__(self) -> None:
        self._sessions: set = set()

    def add(self, session) -> None:
        self._sessions.add(session)

    def discard(self, session) -> None:
        self._sessions.discard(session)

    def stop_all(self) -> None:
        for session in list(self._sessions):
            session.close()
        self._sessions.clear()


routes = []
