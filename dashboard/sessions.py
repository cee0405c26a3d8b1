"""Dashboard sessions: opaque random tokens in an httpOnly cookie, state kept server-side.

In memory, on purpose: a session lives 30 minutes, a restart only signs people out, and the
dashboard runs as one process beside the API. Only a SHA-256 of each token is kept, so the
table never holds a usable cookie. Sessions authorize reads; every destructive action still
needs a fresh wallet signature (dashboard.actions).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

SESSION_TTL = timedelta(minutes=30)
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    wallet: str  # lower-case 0x address
    created_at: datetime
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, ttl: timedelta = SESSION_TTL, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, wallet: str, now: datetime) -> tuple[str, Session]:
        """A new session and its token (the cookie value); absolute expiry, no sliding."""
        self._purge(now)
        if len(self._sessions) >= self._max:  # still full of live sessions: drop the oldest
            oldest = min(self._sessions, key=lambda k: self._sessions[k].created_at)
            del self._sessions[oldest]
        token = secrets.token_urlsafe(32)
        session = Session(wallet=wallet, created_at=now, expires_at=now + self.ttl)
        self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str | None, now: datetime) -> Session | None:
        if not token or len(token) > 128:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        if now >= session.expires_at:
            del self._sessions[key]
            return None
        return session

    def delete(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _purge(self, now: datetime) -> None:
        expired = [k for k, s in self._sessions.items() if now >= s.expires_at]
        for key in expired:
            del self._sessions[key]
