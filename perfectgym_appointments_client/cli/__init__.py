"""The ``perfectgym-appointments`` command line: a demo, a local sandbox, and one command per task.

Every command but ``demo`` and ``sandbox`` talks to ``PERFECTGYM_BASE_URL`` with
``PERFECTGYM_API_KEY`` (or, with ``--sandbox``, to a sandbox started for the command). Errors are
one line with the error code and trace id, and a non-zero exit status. The key is never printed.

Exit statuses: 0 done; 1 the API or the connection failed (or ``check-key``: the key is refused);
2 a bad argument, option or setting (a missing or malformed key or base URL); 3 ``validate``: the
slot is not AVAILABLE.

The modules: ``_common`` (the app, the shared options, the client, error lines), ``_output``
(tables and JSON), ``_demo``, ``_sandbox`` and ``_commands`` (the commands).
"""

from __future__ import annotations

from ._common import app

# Imported for what importing does: each module registers its commands on ``app``. Not sorted:
# this order is the order ``--help`` lists the commands in.
from . import _demo, _sandbox, _commands  # noqa: F401  # isort: skip

__all__ = ["app", "main"]


def main() -> None:
    app()
