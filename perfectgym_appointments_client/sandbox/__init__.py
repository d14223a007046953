"""A local, stateful sandbox of the appointment API: no API key, no network.

``Sandbox`` serves one studio on 127.0.0.1 for tests, notebooks and the ``demo`` command;
``perfectgym-appointments sandbox --port 8000`` runs it in the foreground. ``Studios(n)`` serves
``n`` studios at once, as the real API's tenants are: one server, a port (a base URL) per studio,
each ``Studio`` with its own key, data, limits, rate limit and faults (``StudioSettings``);
``Studios.varied(6)`` is a showcase mix (ordinary, stricter ``daysAhead`` and ``sliceSize``, down,
slow, rate-limited), ``perfectgym-appointments sandbox --studios 6 --varied`` the same from the
command line. Needs the ``cli`` extra (starlette, uvicorn):
``pip install "perfectgym-appointments-client[cli]"``.

It is at least as strict as a real tenant, so code that works against it works against the API:

* keys and scopes: ``Sandbox.api_key`` ("sandbox-key") may do everything,
  ``Sandbox.read_only_api_key`` ("sandbox-read-only-key", settable, ``None`` for none) may not
  book or cancel (403 ``errormessage.no.privilege``); a wrong key gets 401, and HEAD on any
  API path checks the key alone (200 / 401);
* the rate limit: ``Sandbox(rate_limit=(1000, 60.0))`` by default, per endpoint and key; past
  it 429 ``errormessage.rate.limit.exceeded`` for the whole span, without Retry-After;
  ``rate_limit=None`` switches it off;
* bounded parameters: ``sliceSize`` 10 to 100 (default 50), ``daysAhead`` 1 to 6 (default 1);
  outside them 400 ``errormessage.validation.min`` / ``.max`` with ``reference`` the parameter
  and the bound in ``typedArgs``, never clamped; a studio may be stricter
  (``Sandbox(max_days_ahead=3, max_slice_size=50)``), and may leave the bound out
  (``limits_in_typed_args=False``: ``args`` and ``typedArgs`` empty), as some tenants do;
* the booking rules (``Store.check``): every ``ValidationStatus``, a 28-day booking horizon, a
  minimum lead time per appointment, an appointment switched off for online booking
  (``Store.offline_appointment()``); a booking refused by a rule gets 400 with the status as
  ``errorCode``;
* concurrency: ``write_latency`` seconds a cancel holds its booking; a second change of it
  meanwhile gets 409 ``errormessage.concurrent.modification``;
* languages: error messages follow ``Accept-Language`` (German for de, de-CH, de-LI; English
  otherwise), the ``errorCode`` never changes;
* the demo customer is 1210005199 (``DEMO_CUSTOMER_ID``), the id the API's docs use, for every seed.

``Faults`` adds misbehaviour on purpose (latency, 429/503, resets, 409s, lost answers, 500s
after a booking was made, bookings slower than the client's timeout), ``max_faults`` of them per
setting if asked. For tests: ``Sandbox(on_request=hook)`` sees (and may hold) each request at the
API and each booking or cancel once made; ``Store.rename_appointment`` renames an appointment;
"Open Gym 24/7" (``Store.open_gym()``) is bookable at any hour, so slots across a DST change exist.
"""

try:
    import starlette
    import uvicorn
except ImportError as exc:  # only without the [cli] extra
    raise ImportError(
        f"the sandbox needs its extra: pip install 'perfectgym-appointments-client[cli]' (missing: {exc.name})"
    ) from None

from ._app import RequestHook, create_app
from ._faults import FaultInjector, Faults
from ._i18n import SUPPORTED_LANGUAGES
from ._limits import DEFAULT_RATE_LIMIT, RateLimiter
from ._server import Sandbox, serve
from ._store import (
    BOOKING_HORIZON,
    DEMO_CUSTOMER_ID,
    LIST_WINDOW,
    ZONE,
    Appointment,
    BookingRecord,
    Customer,
    Instructor,
    RuleViolation,
    Store,
)
from ._studios import Studio, Studios, StudioSettings

del starlette, uvicorn

__all__ = [
    "BOOKING_HORIZON",
    "DEFAULT_RATE_LIMIT",
    "DEMO_CUSTOMER_ID",
    "LIST_WINDOW",
    "SUPPORTED_LANGUAGES",
    "ZONE",
    "Appointment",
    "BookingRecord",
    "Customer",
    "FaultInjector",
    "Faults",
    "Instructor",
    "RateLimiter",
    "RequestHook",
    "RuleViolation",
    "Sandbox",
    "Store",
    "Studio",
    "StudioSettings",
    "Studios",
    "create_app",
    "serve",
]
