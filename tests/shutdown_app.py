"""A web app that books through one shared client, as a gym's backend would: the client lives in
the app's lifespan, and every booking outcome the client reports is appended to a file (the app's
"database"). tests/test_shutdown.py runs it under a real uvicorn and stops it with SIGTERM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from perfectgym_appointments_client import AppointmentsClient, BookingOutcome, Slot

ZONE = ZoneInfo("Europe/Berlin")


def record(outcome: BookingOutcome) -> None:
    with open(os.environ["SHUTDOWN_APP_OUTCOMES"], "a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "kind": str(outcome.kind),
                    "booking_id": outcome.booking_id,
                    "caller_cancelled": outcome.caller_cancelled,
                }
            )
            + "\n"
        )


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with AppointmentsClient(
        api_key=os.environ["SHUTDOWN_APP_API_KEY"],
        base_url=os.environ["SHUTDOWN_APP_BASE_URL"],
        on_booking_outcome=record,
        booking_check_settle=0,
    ) as client:
        app.state.client = client
        yield


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def book(request: Request) -> JSONResponse:
    body = await request.json()
    slot = Slot(
        start_date_time=dt.datetime.fromisoformat(body["start"]).astimezone(ZONE),
        end_date_time=dt.datetime.fromisoformat(body["end"]).astimezone(ZONE),
    )
    client: AppointmentsClient = request.app.state.client
    booking = await client.book(
        customer_id=body["customer"], bookable_appointment_id=body["appointment"], slot=slot
    )
    return JSONResponse({"booking_id": booking.booking_id})


app = Starlette(routes=[Route("/health", health), Route("/book", book, methods=["POST"])], lifespan=lifespan)
