"""A gym website's booking backend on FastAPI: the example of using the client in a web app.

Run it against a local sandbox with ``scripts/webapp``; by hand::

    PERFECTGYM_BASE_URL=... PERFECTGYM_API_KEY=... uvicorn --factory examples.webapp.app:create_app

* One :class:`AppointmentsClient` for the whole process, opened in the lifespan (its connections,
  its rate-limit budget and its booking flows are shared by every request), handed to handlers
  by a dependency. Handlers get a copy with per-call limits (``with_options``): a handler fails
  fast with 429 instead of waiting for the rate limit, and with 504 past its deadline.
* Every booking outcome goes to SQLite through ``on_booking_outcome`` (store.py), also those of
  handlers cancelled by a disconnect or a shutdown: the store, not the handler's answer, is the
  record of what was booked.
* The client keeps a booking journal (``WEBAPP_JOURNAL``; SQLite beside the store by default):
  a process killed while its bookings were at the server (SIGKILL, the OOM killer) leaves their
  intents there, and the next start recovers them (``client.recover()`` in the lifespan, before
  the app serves), reporting each outcome to the store; resubmits are answered from it.
* The client's exceptions become HTTP answers in one handler (errors.py).
* ``/healthz`` never calls the API; ``/readyz`` at most once per ``WEBAPP_READY_CACHE`` seconds.
* Settings come from the environment, checked once in :func:`create_app` (settings.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from perfectgym_appointments_client import (
    AppointmentsClient,
    ConfigurationError,
    PerfectGymError,
    RateLimit,
    Telemetry,
)

from .disconnect import CancelOnDisconnect
from .errors import handle_invalid_request, handle_perfectgym_error
from .readiness import Readiness
from .schemas import (
    AppointmentOut,
    BookIn,
    BookingOut,
    CancelOut,
    ErrorOut,
    OutcomeOut,
    ReadyOut,
    SlotOut,
    WeekOut,
)
from .settings import Settings, SettingsError
from .store import OutcomeStore

__all__ = ["build_client", "create_app"]

logger = logging.getLogger("webapp")

WEEK = 7  # more than the API's 6 days per request: the client asks for two windows and merges them
MAX_LISTED = 200  # appointments one listing request may return (pages of slice_size each)

ApiId = Annotated[int, Path(gt=0, lt=2**63)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (404, 409, 422, 429, 502, 503, 504)
}


def build_client(settings: Settings, store: OutcomeStore) -> AppointmentsClient:
    """The process's one client. ``ConfigurationError`` for an unusable URL or key."""
    rate_limit = None
    if settings.rate_limit is not None:
        requests, seconds = settings.rate_limit
        rate_limit = RateLimit(requests=requests, seconds=seconds, storage=settings.rate_limit_redis)
    # WEBAPP_OTEL: the client's traces and metrics (the [otel] extra) go to the global providers,
    # which the deployment's OpenTelemetry SDK sets up (opentelemetry-instrument, or its own code).
    telemetry = Telemetry() if settings.otel else None
    return AppointmentsClient(
        api_key=settings.api_key,
        base_url=settings.base_url,
        http_backend=settings.http_backend,
        rate_limit=rate_limit,
        on_booking_outcome=store.record,
        telemetry=telemetry,
        # WEBAPP_JOURNAL: what each booking flow sent, kept where it outlives the process
        # (docs/guides/crash-safety.md). Opened now: one that cannot be opened stops the app.
        journal=settings.journal,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app (uvicorn's ``--factory``): settings from the environment unless given.

    A bad setting stops the process here with one line naming it, before anything listens.
    """
    try:
        settings = Settings.from_env() if settings is None else settings
        # The store's folder, made now: the journal beside it is opened with the client.
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        store = OutcomeStore(settings.db_path)
        client = build_client(settings, store)
    except (SettingsError, ConfigurationError) as exc:
        raise SystemExit(f"webapp: bad setting: {exc}") from None
    _configure_logging(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The store outlives the client: closing the client waits for booking flows still
        # running (their handlers cancelled by the shutdown), and their outcomes are written then.
        with store:
            async with client, anyio.create_task_group() as background:
                await _recover(client)
                if settings.journal is not None and settings.recover_every > 0:
                    background.start_soon(_recover_every, client, settings.recover_every)
                fast = client.with_options(
                    max_rate_limit_wait=settings.max_rate_limit_wait, deadline=settings.deadline
                )
                app.state.client = fast
                app.state.readiness = Readiness(fast, settings.ready_cache_seconds)
                logger.info(
                    "webapp ready: %r, outcomes in %s, booking journal %s",
                    settings, settings.db_path, settings.journal_shown,
                )  # fmt: skip
                yield
                background.cancel_scope.cancel()  # the periodic recovery ends with the app
        logger.info("webapp stopped: every booking flow ended and recorded")

    app = FastAPI(title="Gym bookings (PerfectGym example)", lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.add_exception_handler(PerfectGymError, handle_perfectgym_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    if settings.cancel_on_disconnect:
        app.add_middleware(CancelOnDisconnect)
    _routes(app)
    return app


async def _recover(client: AppointmentsClient, *, quiet: bool = False) -> None:
    """Before serving: the bookings a killed process left in the journal, resolved by evidence and
    reported to the store (``recovered``); what cannot be proven yet stays pending (logged), and
    the next start tries again. Several workers starting at once report each outcome once.

    Failures are logged, never fatal: the app serves without them, as it would without a journal.
    """
    try:
        recovered = await client.recover()
        pending = await client.pending_bookings()
    except PerfectGymError as exc:
        logger.warning("booking journal: recovery failed (%s); the next start tries again", exc)
        return
    # Pending: not proven yet, or running in another worker on the same journal right now.
    level = logging.WARNING if recovered or pending else logging.INFO
    if quiet and level == logging.INFO:
        return  # the periodic recoveries say something only when there is something to say
    logger.log(level, "booking journal: %d booking(s) recovered, %d pending", len(recovered), len(pending))


async def _recover_every(client: AppointmentsClient, seconds: float) -> None:
    """Recovery again every ``seconds``: what a worker killed moments before this start still had
    at the server, and what no evidence proved at startup, is resolved once it can be."""
    while True:
        await anyio.sleep(seconds)
        await _recover(client, quiet=True)


def get_client(request: Request) -> AppointmentsClient:
    client: AppointmentsClient = request.app.state.client
    return client


def get_store(request: Request) -> OutcomeStore:
    store: OutcomeStore = request.app.state.store
    return store


def get_readiness(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


Client = Annotated[AppointmentsClient, Depends(get_client)]
Store = Annotated[OutcomeStore, Depends(get_store)]


def _routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness: the process serves. No API call."""
        return {"ok": True}

    @app.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
    async def readyz(response: Response, readiness: Annotated[Readiness, Depends(get_readiness)]) -> ReadyOut:
        """Readiness: the API answers and accepts the key (asked at most once per WEBAPP_READY_CACHE s)."""
        verdict = await readiness.verdict()
        if not verdict.ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return ReadyOut(ready=verdict.ready, reason=verdict.reason, checked_at=verdict.checked_at)

    @app.get("/appointments", responses=ERRORS)
    async def list_appointments(
        client: Client,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 20,
        slice_size: Annotated[int, Query(ge=10, le=100)] = 50,
    ) -> list[AppointmentOut]:
        """Bookable appointments, at most ``limit`` (the client follows the API's pages)."""
        return [AppointmentOut.of(a) async for a in client.bookable_appointments(slice_size, limit=limit)]

    @app.get("/appointments/{appointment_id}", responses=ERRORS)
    async def get_appointment(client: Client, appointment_id: ApiId) -> AppointmentOut:
        return AppointmentOut.of(await client.get_bookable_appointment(appointment_id))

    @app.get("/appointments/{appointment_id}/slots", responses=ERRORS)
    async def week_of_slots(
        client: Client,
        appointment_id: ApiId,
        customer_id: Annotated[int | None, Query(gt=0, lt=2**63)] = None,
        start_date: dt.date | None = None,
    ) -> WeekOut:
        """The free slots of the next 7 days (from ``start_date``, the studio's local day)."""
        slots = await client.get_slots(
            appointment_id, customer_id=customer_id, days_ahead=WEEK, start_date=start_date
        )
        return WeekOut(
            appointment_id=appointment_id,
            customer_id=customer_id,
            first_day=start_date,
            slots=[SlotOut.of(s) for s in slots],
        )

    @app.post(
        "/bookings", status_code=status.HTTP_201_CREATED, responses={200: {"model": BookingOut}, **ERRORS}
    )
    async def book(client: Client, body: BookIn, response: Response) -> BookingOut:
        """Book a slot (validated first). 201 booked; 200 when the customer already held exactly
        this booking (a resubmit): nothing new was booked."""
        booking = await client.book(
            customer_id=body.customer_id, bookable_appointment_id=body.appointment_id, slot=body.slot()
        )
        if booking.already_existed:
            response.status_code = status.HTTP_200_OK
        return BookingOut.of(booking)

    @app.get("/customers/{customer_id}/bookings", responses=ERRORS)
    async def customer_bookings(client: Client, customer_id: ApiId) -> list[BookingOut]:
        """The customer's bookings within two weeks of now (the API lists no others), canceled ones too."""
        return [BookingOut.of(b) for b in await client.list_bookings(customer_id)]

    @app.get("/bookings/{booking_id}", responses=ERRORS)
    async def get_booking(client: Client, booking_id: ApiId) -> BookingOut:
        return BookingOut.of(await client.get_booking(booking_id))

    @app.delete("/bookings/{booking_id}", responses=ERRORS)
    async def cancel(client: Client, booking_id: ApiId) -> CancelOut:
        """Cancel a booking; cancelling one already canceled answers "already canceled"."""
        return CancelOut(booking_id=booking_id, result=await client.cancel_booking(booking_id))

    @app.get("/outcomes")
    async def outcomes(
        store: Store,
        customer_id: Annotated[int | None, Query(gt=0)] = None,
        kind: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[OutcomeOut]:
        """What the client reported, latest first (``kind=unknown``: the ones to reconcile).
        A staff page in a real app; unauthenticated here."""
        rows = store.outcomes(customer_id=customer_id, kind=kind, limit=limit)
        return [OutcomeOut(**row) for row in rows]


def _configure_logging(level: str) -> None:
    # uvicorn configures its own loggers only. The client's WARNINGs (a booking whose caller went
    # away, a rate-limit lockout) belong in the app's log, next to uvicorn's lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:    %(name)s: %(message)s"))
    for name in ("webapp", "perfectgym_appointments_client"):
        target = logging.getLogger(name)
        # The library's own NullHandler (a library's politeness) is no handler of the app's.
        if all(isinstance(h, logging.NullHandler) for h in target.handlers):
            target.addHandler(handler)
        target.setLevel(level)
