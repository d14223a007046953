"""The app's settings, read from the environment once, at startup.

Every value is checked here, so that a wrong one stops the app before it serves anything, with a
message naming the variable, instead of surfacing as a strange failure on the first request.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["JOURNAL_BESIDE_THE_STORE", "Settings", "SettingsError"]

HttpBackend = Literal["httpx", "aiohttp"]
JOURNAL_BESIDE_THE_STORE = "beside the store"
"""``Settings.journal``'s default: ``sqlite:///<the store's folder>/bookings-journal.db``."""
JOURNAL_FILE = "bookings-journal.db"
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A setting is missing or unusable; the message names the variable (never a secret's value)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What the app runs with. Secrets (the API key, a Redis URL that may hold a password) are
    kept out of the repr: settings end up in logs and error reports."""

    base_url: str
    """PERFECTGYM_BASE_URL: the tenant (or the sandbox)."""
    api_key: str = dataclasses.field(repr=False)
    """PERFECTGYM_API_KEY."""
    db_path: Path = Path("webapp-outcomes.sqlite3")
    """WEBAPP_DB: the SQLite file the booking outcomes are written to."""
    journal: str | None = dataclasses.field(default=JOURNAL_BESIDE_THE_STORE, repr=False)
    """WEBAPP_JOURNAL: the client's booking journal (a sqlite:/// or redis:// URL, or off: None); by
    default a SQLite file beside the store. Shown in logs as ``journal_shown`` (no password)."""
    http_backend: HttpBackend = "httpx"
    """WEBAPP_HTTP_BACKEND: httpx or aiohttp (the [aiohttp] extra; less CPU per request)."""
    rate_limit: tuple[int, int] | None = (1000, 60)
    """WEBAPP_RATE_LIMIT: REQUESTS/SECONDS per endpoint, as the tenant counts (or off)."""
    rate_limit_redis: str | None = dataclasses.field(default=None, repr=False)
    """WEBAPP_RATE_LIMIT_REDIS: a redis:// URL, so that every worker process shares one budget."""
    max_rate_limit_wait: float = 0.5
    """WEBAPP_MAX_RATE_LIMIT_WAIT: seconds a handler waits for its rate-limit turn; past it, 429."""
    deadline: float = 5.0
    """WEBAPP_DEADLINE: seconds a handler's API call may take, retries included; past it, 504."""
    ready_cache_seconds: float = 10.0
    """WEBAPP_READY_CACHE: /readyz asks the API at most once per this many seconds."""
    recover_every: float = 60.0
    """WEBAPP_RECOVER_EVERY: seconds between recoveries from the booking journal after the one at
    startup (0: at startup only). A booking a dead worker may still have at the server is "not
    booked" only once it is older than a flow may run (150 s): a later recovery proves it."""
    cancel_on_disconnect: bool = False
    """WEBAPP_CANCEL_ON_DISCONNECT: cancel a handler when its browser goes away."""
    otel: bool = False
    """WEBAPP_OTEL: OpenTelemetry traces and metrics from the client (app.build_client wires it)."""
    log_level: str = "INFO"
    """WEBAPP_LOG_LEVEL: the level of the app's and the client's loggers."""

    def __post_init__(self) -> None:
        if self.journal == JOURNAL_BESIDE_THE_STORE:
            # Beside the store: a deployment that keeps the store's folder keeps the journal too.
            object.__setattr__(self, "journal", f"sqlite:///{self.db_path.parent / JOURNAL_FILE}")

    @property
    def journal_shown(self) -> str:
        """The journal's URL as it may be logged (a Redis password masked), or "off"."""
        if self.journal is None:
            return "off"
        password = urlsplit(self.journal).password
        return self.journal.replace(password, "***") if password else self.journal

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            base_url=_required(env, "PERFECTGYM_BASE_URL"),
            api_key=_required(env, "PERFECTGYM_API_KEY"),
            db_path=Path(env.get("WEBAPP_DB", "") or cls.db_path),
            journal=_journal(env.get("WEBAPP_JOURNAL", "")),
            http_backend=_backend(env.get("WEBAPP_HTTP_BACKEND", "httpx")),
            rate_limit=_rate_limit(env.get("WEBAPP_RATE_LIMIT", "1000/60")),
            rate_limit_redis=_redis_url(env.get("WEBAPP_RATE_LIMIT_REDIS", "")),
            max_rate_limit_wait=_seconds(
                env, "WEBAPP_MAX_RATE_LIMIT_WAIT", cls.max_rate_limit_wait, zero=True
            ),
            deadline=_seconds(env, "WEBAPP_DEADLINE", cls.deadline),
            ready_cache_seconds=_seconds(env, "WEBAPP_READY_CACHE", cls.ready_cache_seconds),
            recover_every=_seconds(env, "WEBAPP_RECOVER_EVERY", cls.recover_every, zero=True),
            cancel_on_disconnect=_flag(env, "WEBAPP_CANCEL_ON_DISCONNECT"),
            otel=_flag(env, "WEBAPP_OTEL"),
            log_level=_log_level(env.get("WEBAPP_LOG_LEVEL", "INFO")),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _backend(text: str) -> HttpBackend:
    value = text.strip().lower()
    if value == "httpx":
        return "httpx"
    if value == "aiohttp":
        return "aiohttp"
    raise SettingsError(f"WEBAPP_HTTP_BACKEND must be httpx or aiohttp, got {text!r}")


def _rate_limit(text: str) -> tuple[int, int] | None:
    if text.strip().lower() == "off":
        return None
    requests, slash, seconds = text.partition("/")
    try:
        count, span = int(requests), int(seconds)
    except ValueError:
        count = span = 0
    if not slash or count < 1 or span < 1:
        raise SettingsError(
            f"WEBAPP_RATE_LIMIT must be REQUESTS/SECONDS in whole numbers (e.g. 1000/60) or off, got {text!r}"
        )
    return count, span


def _redis_url(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    if not value.startswith(_REDIS_SCHEMES):
        # Not the value: a URL may hold the Redis password.
        raise SettingsError("WEBAPP_RATE_LIMIT_REDIS must be a redis://, rediss:// or redis+unix:// URL")
    return value


def _journal(text: str) -> str | None:
    value = text.strip()
    if not value:
        return JOURNAL_BESIDE_THE_STORE
    if value.lower() == "off":
        return None
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    if value.startswith(_REDIS_SCHEMES):
        return value
    # Not the value: a URL may hold the Redis password.
    raise SettingsError(
        "WEBAPP_JOURNAL must be a sqlite:///path/to/file.db, redis://, rediss:// or redis+unix:// URL, or off"
    )


def _seconds(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        bound = ">= 0" if zero else "> 0"
        raise SettingsError(f"{name} must be a number of seconds {bound}, got {text!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "")
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {text!r}")


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"WEBAPP_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {text!r}")
    return value
