"""A local, stateful sandbox of the appointment API: no API key, no network.

``Sandbox`` serves it on 127.0.0.1 for tests, notebooks and the ``demo`` command;
``perfectgym-appointments sandbox --port 8000`` runs it in the foreground. Needs the ``cli``
extra (starlette, uvicorn): ``pip install "perfectgym-appointments-client[cli]"``.
"""

from ._app import create_app
from ._faults import FaultInjector, Faults
from ._server import Sandbox, serve
from ._store import ZONE, Appointment, BookingRecord, Customer, Instructor, RuleViolation, Store

__all__ = [
    "ZONE",
    "Appointment",
    "BookingRecord",
    "Customer",
    "FaultInjector",
    "Faults",
    "Instructor",
    "RuleViolation",
    "Sandbox",
    "Store",
    "create_app",
    "serve",
]
