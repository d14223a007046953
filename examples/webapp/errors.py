"""What the browser gets when a call to the API fails: one mapping from the client's exception
tree to HTTP statuses, and the exception handler that answers with it.

    a malformed request (the app's own schemas)     422 (error "invalid_request", fields)
    not found                                       404
    slot taken, customer's rules, 409 from the API  409
    a slot that cannot be booked as asked, a 400    422
    rate limit (ours or the API's)                  429 + Retry-After
    the API overloaded                              503 (+ Retry-After when it said)
    the studio is down (its circuit breaker open)   503 + Retry-After (when it is tried again)
    no answer in time (the call's deadline)         504
    any other API or connection failure             502
    booked, id not readable yet                     202
    booking outcome unknown                         504 / 502, recorded for reconciliation

The body is JSON: ``error`` (a code to branch on), ``detail`` (for people) and, for an answer of
the API, ``upstream`` (operation, status, error code, trace id). Nothing of the request goes in:
the client's exceptions never hold the API key, and the body is built from named fields only.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import attrs
from fastapi import Request
from fastapi.responses import JSONResponse

from perfectgym_appointments_client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    CircuitOpenError,
    ConfigurationError,
    ConflictError,
    NoSlotAvailableError,
    NotFoundError,
    PerfectGymError,
    RateLimitError,
    RescheduleError,
    ServiceUnavailableError,
    SlotNotBookableError,
    format_zoned_datetime,
)

__all__ = ["ErrorAnswer", "classify", "handle_perfectgym_error"]

logger = logging.getLogger("webapp")

# Refusals that say the request itself is wrong (no slot there, not now, not yet, not any more):
# sending it again cannot succeed. Every other refusal (the slot taken, the customer's credits,
# limits, profile; a status newer than this list) depends on the studio's state: a conflict.
_UNPROCESSABLE_STATUSES = frozenset(
    {
        "END_DATE_TIME_NOT_AFTER_START_DATE_TIME",
        "PERIOD_DOES_NOT_MATCH",
        "PAST_START_DATE_TIME",
        "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME",
        "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME",
        "STUDIO_CLOSED",
    }
)


@attrs.frozen
class ErrorAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = attrs.field(factory=dict)


def classify(exc: PerfectGymError, *, now: float, lockout_seconds: int) -> ErrorAnswer:
    """The answer for ``exc``. ``lockout_seconds``: the Retry-After for a 429 that says nothing of
    when it ends (the API locks an endpoint for its rate-limit span)."""
    # The booking flows' errors first: they say what happened to the member, which matters more
    # than the request that failed underneath.
    if isinstance(exc, BookingIdUnknownError):
        return ErrorAnswer(
            202,
            _body(
                "booked_id_unknown",
                "the booking was made; its id can be read from the customer's bookings "
                f"from {exc.visible_from.isoformat()} on. Do not book again.",
                visible_from=exc.visible_from.isoformat(),
            ),
        )
    if isinstance(exc, BookingOutcomeUnknownError):
        timed_out = isinstance(exc.cause, APITimeoutError)
        return ErrorAnswer(
            504 if timed_out else 502,
            _body(
                "booking_outcome_unknown",
                "we could not tell whether the booking was made. It is recorded and will be "
                "reconciled; check the customer's bookings before booking again.",
                customer_id=exc.customer_id,
                appointment_id=exc.bookable_appointment_id,
                start=_wire(exc.start_date_time),
            ),
        )
    if isinstance(exc, RescheduleError):
        return ErrorAnswer(
            502,
            _body(
                "both_bookings",
                "the new slot is booked but the old booking could not be canceled",
                old_booking_id=exc.old_booking_id,
                new_booking_id=exc.new_booking_id,
            ),
        )
    if isinstance(exc, SlotNotBookableError):
        status = exc.status.value
        return ErrorAnswer(
            422 if status in _UNPROCESSABLE_STATUSES else 409,
            _body(
                "slot_not_bookable", f"the studio refuses this booking: {status}", validation_status=status
            ),
        )
    if isinstance(exc, NoSlotAvailableError):
        return ErrorAnswer(409, _body("no_slot_available", str(exc)))
    if isinstance(exc, RateLimitError):
        wait = _retry_after(exc, now=now, fallback=lockout_seconds)
        return ErrorAnswer(
            429,
            _body("rate_limited", f"too many requests to the API; try again in {wait} s", exc),
            {"Retry-After": str(wait)},
        )
    if isinstance(exc, ServiceUnavailableError):
        headers = {} if exc.retry_after is None else {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return ErrorAnswer(
            503, _body("api_unavailable", "the API is overloaded; try again shortly", exc), headers
        )
    if isinstance(exc, CircuitOpenError):
        # Failing at once, nothing sent: the browser may come back once the studio is tried again.
        return ErrorAnswer(
            503,
            _body("studio_unavailable", "the studio's system is not answering; try again shortly"),
            {"Retry-After": str(max(1, math.ceil(exc.retry_in)))},
        )
    if isinstance(exc, APITimeoutError):
        return ErrorAnswer(504, _body("api_timeout", "the API did not answer in time"))
    if isinstance(exc, NotFoundError):
        return ErrorAnswer(404, _body("not_found", "no such appointment or booking", exc))
    if isinstance(exc, ConflictError):
        return ErrorAnswer(409, _body("conflict", "another request changed this booking; reload it", exc))
    if isinstance(exc, BadRequestError):
        return ErrorAnswer(422, _body("bad_request", exc.error_message, exc, reference=exc.reference))
    if isinstance(exc, ConfigurationError):
        return ErrorAnswer(500, _body("misconfigured", "the app's API settings are unusable"))
    if isinstance(exc, APIConnectionError):
        return ErrorAnswer(502, _body("api_unreachable", "the API could not be reached"))
    # 401/403 (our key, not the browser's), 5xx, a malformed answer, broken paging.
    return ErrorAnswer(
        502, _body("api_error", "the API failed", exc if isinstance(exc, APIStatusError) else None)
    )


async def handle_perfectgym_error(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for ``PerfectGymError`` (FastAPI hands it the exception as raised)."""
    if not isinstance(exc, PerfectGymError):  # pragma: no cover - registered for that tree only
        raise exc
    settings = request.app.state.settings
    lockout = settings.rate_limit[1] if settings.rate_limit is not None else 60
    answer = classify(exc, now=time.time(), lockout_seconds=lockout)
    if answer.status >= 500 or answer.status == 202:
        # repr, not str: the type and status codes, short, never the key.
        logger.warning("%s %s -> %d: %r", request.method, request.url.path, answer.status, exc)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


async def handle_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A request the app's own schemas refuse (a malformed body, a bad path or query parameter):
    422 in the same shape as every other error, ``{"error", "detail"}``, instead of FastAPI's
    ``{"detail": [...]}``. ``fields`` names what was wrong where (no input values: they may hold
    anything a browser sent)."""
    from fastapi.exceptions import RequestValidationError

    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for that type only
        raise exc
    fields = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "problem": str(error.get("msg", "")),
        }
        for error in exc.errors()[:20]  # bounded: a body may be wrong in many places
    ]
    detail = "; ".join(f"{field['location']}: {field['problem']}" for field in fields) or "invalid request"
    return JSONResponse(_body("invalid_request", detail, fields=fields), status_code=422)


def _retry_after(exc: RateLimitError, *, now: float, fallback: int) -> int:
    if exc.reopens_at is not None:
        seconds = exc.reopens_at - now
    elif exc.retry_after is not None:
        seconds = exc.retry_after
    else:
        seconds = fallback
    return max(1, math.ceil(seconds))


def _body(error: str, detail: str, upstream: APIStatusError | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if upstream is not None:
        body["upstream"] = {
            "operation": upstream.operation,
            "status_code": upstream.status_code,
            "error_code": upstream.error_code,
            "trace_id": upstream.trace_id,
        }
    body.update((key, value) for key, value in extra.items() if value is not None)
    return body


def _wire(value: Any) -> str | None:
    return None if value is None else format_zoned_datetime(value)
