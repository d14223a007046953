"""One TLS context for the whole process.

Building an ``ssl.SSLContext`` loads the whole CA bundle: about 20-40 ms and most of a megabyte
each time. A service that opens a client per studio (hundreds of them) paid that per client;
now every client of the process that was not given a context of its own shares one, made on
first use. It trusts what httpx trusts by default: certifi's bundle, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set (a context per distinct setting, so a test or a process that sets
them later is honoured). ``AppointmentsClient(ssl_context=...)`` passes a caller's own.
"""

from __future__ import annotations

import os
import ssl
import threading

__all__ = ["shared_ssl_context"]

_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for the current ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``."""
    key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    context = _contexts.get(key)
    if context is None:
        import httpx

        with _lock:
            context = _contexts.get(key)
            if context is None:
                # httpx's own default: certifi, or the two variables above when set.
                context = _contexts[key] = httpx.create_ssl_context()
    return context
