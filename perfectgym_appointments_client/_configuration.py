"""The client's configuration, checked when it is made: the API key, the base URL and the
timeouts, each refused with a ``ConfigurationError`` that would otherwise fail every call later.

The key and the URL arrive masked (``Secret``) and are refused from frames that hold them masked:
a traceback rendered with its locals must not show them, and no message quotes them (a wrong URL
may hold a password or be the key itself).
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, ENV_API_KEY, ENV_BASE_URL
from ._exceptions import ConfigurationError
from ._http import Timeouts
from ._request import Secret, logger

__all__ = ["NOT_GIVEN", "clean_api_key", "clean_base_url", "timeouts_for"]

# A default that None cannot stand for (``timeout=None`` means no limit).
NOT_GIVEN: Any = object()
# What an API key may hold: visible ASCII. Whitespace, controls and other characters do not
# survive a header (httpx refuses non-ASCII, CR/LF would split it).
_NOT_IN_A_KEY = re.compile(r"[^!-~]")


def clean_api_key(given: Secret) -> Secret:
    """The key as sent: without surrounding whitespace, and only what a header value carries.

    Raised from here, where no local holds the key plain; the checks ran in a frame that has
    returned by then. No message shows the key, nor any character of it.
    """
    problem = _key_problem(given.reveal())
    if problem is not None:
        raise problem
    return Secret(given.reveal().strip())


def _key_problem(value: object) -> Exception | None:
    if value is None or value == "":
        return ConfigurationError(f"no API key: pass api_key=... or set {ENV_API_KEY}")
    if not isinstance(value, str):
        return TypeError(f"api_key must be a str, got {type(value).__name__}")
    key = value.strip()
    if not key:
        return ConfigurationError(f"the API key is only whitespace (from api_key=... or {ENV_API_KEY})")
    bad = _NOT_IN_A_KEY.search(key)
    if bad is None:
        return None
    return ConfigurationError(
        f"the API key holds {_kind(bad.group())} (character {bad.start() + 1} of {len(key)}), "
        "which an HTTP header cannot carry: check how it was copied or read"
    )


def _kind(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char.isspace():
        return "whitespace"
    if unicodedata.category(char) in ("Cc", "Cf"):
        return "an invisible or control character"
    return "a non-ASCII character"


def clean_base_url(given: Secret, *, key_looks_like_a_url: bool) -> str:
    """The base URL as used, without surrounding whitespace.

    Refused as the key is (from a frame holding it masked), in messages that do not quote it: a
    wrong one may hold a password, a token in its query, or be the API key itself.
    """
    problem = _base_url_problem(given.reveal(), key_looks_like_a_url)
    if problem is not None:
        raise problem
    url = str(given.reveal()).strip()
    parts = urlsplit(url)
    if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname or ""):
        logger.warning(
            "base_url %s://%s is plain http to a host that is not loopback: the API key crosses the "
            "network in clear text (use https://)",
            parts.scheme,
            parts.netloc,
        )
    return url


def _base_url_problem(value: object, key_looks_like_a_url: bool) -> Exception | None:
    if value is None or value == "":
        return ConfigurationError(f"no base URL: pass base_url=... or set {ENV_BASE_URL}")
    if not isinstance(value, str):
        return TypeError(f"base_url must be a str, got {type(value).__name__}")
    url = value.strip()
    if not url:
        return ConfigurationError(f"no base URL (only whitespace): pass base_url=... or set {ENV_BASE_URL}")
    if not url.lower().startswith(("http://", "https://")):
        swapped = " (api_key and base_url look swapped)" if key_looks_like_a_url else ""
        return ConfigurationError(f"base_url must start with http:// or https://{swapped}")
    for position, char in enumerate(url, start=1):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            return ConfigurationError(f"base_url holds {_kind(char)} (character {position})")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - it raises on a port that is not a number in range
    except ValueError:
        return ConfigurationError("base_url's port is not a number from 0 to 65535")
    if parts.username is not None or parts.password is not None:
        return ConfigurationError(
            "base_url must not hold user:password@: the API authenticates by the API key, and a "
            "password in the URL would show wherever the URL does"
        )
    if not parts.hostname:
        return ConfigurationError("base_url has no host")
    if "?" in url:
        return ConfigurationError("base_url must not have a query (?...): request paths are appended to it")
    if "#" in url:
        return ConfigurationError(
            "base_url must not have a fragment (#...): request paths are appended to it"
        )
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def timeouts_for(timeout: float | httpx.Timeout | None, *, given_client: bool) -> Timeouts | None:
    """The timeouts asked for; None leaves a given ``http_client`` its own."""
    if timeout is NOT_GIVEN:
        if given_client:
            return None
        return Timeouts(
            connect=DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_TIMEOUT, write=DEFAULT_TIMEOUT, pool=DEFAULT_TIMEOUT
        )
    if timeout is None:
        return Timeouts(connect=None, read=None, write=None, pool=None)
    if isinstance(timeout, httpx.Timeout):
        for name in ("connect", "read", "write", "pool"):
            value = getattr(timeout, name)
            if value is not None and not _is_seconds(value):
                raise ConfigurationError(
                    f"timeout.{name} must be seconds > 0 (finite) or None, got {value!r}"
                )
        return Timeouts.from_httpx(timeout)
    if not _is_seconds(timeout):
        raise ConfigurationError(
            f"timeout must be seconds > 0 (finite; None for no limit), an httpx.Timeout or None, got {timeout!r}"
        )
    seconds = float(timeout)
    return Timeouts(connect=seconds, read=seconds, write=seconds, pool=seconds)


def _is_seconds(value: object) -> bool:
    # nan compares False with everything: "not > 0" alone would let it through as a wait.
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf
