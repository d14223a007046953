"""The booking journal: what each booking flow set out to do and how it ended, kept where it
outlives the process (``AppointmentsClient(journal="sqlite:///...")`` or ``"redis://..."``).

``_base.py`` says what a journal is (an entry, a store, the ``Journal`` the flows use, which never
lets a failing store fail a booking); ``_sqlite.py`` and ``_redis.py`` are the two stores, each
importing its driver only when asked for. The booking flows (``_booking/``) use it; nothing here
imports them.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

from .._exceptions import ConfigurationError
from .._throttling import without_password
from ._base import FINISHED_AFTER, PENDING, Entry, Journal, JournalStore, process_alive, this_process

__all__ = [
    "FINISHED_AFTER",
    "PENDING",
    "Entry",
    "Journal",
    "JournalStore",
    "open_journal",
    "process_alive",
    "this_process",
]


def open_journal(url: str, *, logger: logging.Logger, timeout: float = 2.0) -> Journal:
    """The journal at ``url``: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
    ``redis://host:port/db`` (``rediss://``, ``redis+unix://`` too). A journal that cannot be opened
    is a :class:`ConfigurationError` now, not a failure at the first booking."""
    if not isinstance(url, str):
        raise TypeError(f"journal must be a sqlite:/// or redis:// URL or None, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    shown = _shown(url)
    store: JournalStore
    if scheme == "sqlite":
        import sqlite3

        from ._sqlite import SQLiteStore

        path = unquote(url[len("sqlite:///") :]) if url.lower().startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(f"journal {shown!r}: a SQLite journal is sqlite:///path/to/file.db")
        try:
            store = SQLiteStore(path, timeout=timeout)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"journal {shown!r} cannot be opened: {exc}") from None
    elif scheme in ("redis", "rediss", "redis+unix"):
        try:
            # Inside the try: the module imports redis-py, the [redis] extra, at its top.
            from ._redis import RedisStore

            store = RedisStore(url, timeout=timeout)
        except ImportError as exc:
            raise ConfigurationError(
                f"a redis:// journal needs the redis extra: pip install 'perfectgym-appointments-client[redis]' ({exc})"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any failure to reach it: a setting to fix
            raise ConfigurationError(
                f"journal {shown!r} cannot be opened: {type(exc).__name__}: {exc}"
            ) from None
    else:
        raise ConfigurationError(f"journal must be a sqlite:/// or redis:// URL or None, got {shown!r}")
    # The store's errors are shown without the password, which only the URL given here knows.
    return Journal(
        store, url=shown, logger=logger, timeout=timeout, scrub=lambda text: without_password(text, url)
    )


def _shown(url: str) -> str:
    """The URL as it may be shown: without a password."""
    return without_password(url, url)
