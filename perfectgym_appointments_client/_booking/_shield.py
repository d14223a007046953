"""Rule 4: once a booking or cancel request may be at the server, the flow runs to its end
whatever its caller does, bounded in time; then its outcome is reported and the caller's
cancellation goes on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import attrs
import sniffio

from .._exceptions import APITimeoutError, BookingOutcomeUnknownError
from .._generated.models import AppointmentBookingRequest
from ._outcome import BookingOutcome, OutcomeHook, describe, report

__all__ = ["Shield", "run_to_the_end"]

T = TypeVar("T")


@attrs.frozen
class Shield:
    """Runs flows to their end for one client: at most ``bound`` seconds each, reported to ``hook``."""

    bound: float
    hook: OutcomeHook | None

    async def run(
        self,
        operation: str,
        subject: AppointmentBookingRequest | int,
        flow: Callable[..., Awaitable[tuple[T, BookingOutcome]]],
        *args: Any,
        old_booking_id: int | None = None,
    ) -> T:
        """``flow(*args)`` run to its end; its outcome reported; its value returned (or its error
        raised), unless the caller was cancelled meanwhile."""
        return await run_to_the_end(
            operation, subject, flow, args, bound=self.bound, hook=self.hook, old_booking_id=old_booking_id
        )


async def run_to_the_end(
    operation: str,
    subject: AppointmentBookingRequest | int,
    flow: Callable[..., Awaitable[tuple[T, BookingOutcome]]],
    args: tuple[Any, ...],
    *,
    bound: float,
    hook: OutcomeHook | None,
    old_booking_id: int | None = None,
) -> T:
    """Run ``flow(*args)``, whose request may reach the server, to its end (at most ``bound`` seconds),
    whatever the caller does, and report how it ended.

    Under trio and anyio cancel scopes a shielded scope is enough. Under asyncio a native
    cancellation (``asyncio.timeout``, ``Task.cancel``) gets through shields, so the flow runs
    in a task of its own that the caller waits for until it ends.
    """
    result: list[Any] = []

    async def bounded() -> None:
        with anyio.move_on_after(bound):
            try:
                result.append(await flow(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the caller below
                result.append(exc)
        if not result:  # the bound ran out mid-flow: whatever was sent, we cannot tell
            customer = subject.customer_id if isinstance(subject, AppointmentBookingRequest) else None
            cause = APITimeoutError(
                f"{operation} did not end within {bound:.0f} s", operation=operation, method="", path=""
            )
            result.append(BookingOutcomeUnknownError(str(cause), customer_id=customer, cause=cause))

    natively_cancelled = False
    with anyio.CancelScope(shield=True):
        if sniffio.current_async_library() == "asyncio":
            import asyncio

            task = asyncio.ensure_future(bounded())
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    natively_cancelled = True
        else:
            await bounded()
    outcome_or_error = result[0]
    caller_cancelled = natively_cancelled
    if not caller_cancelled:
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except anyio.get_cancelled_exc_class():
            caller_cancelled = True
    outcome = describe(operation, subject, outcome_or_error, old_booking_id)
    with anyio.CancelScope(shield=True):
        await report(attrs.evolve(outcome, caller_cancelled=caller_cancelled), hook)
    if caller_cancelled:
        if natively_cancelled:
            import asyncio

            raise asyncio.CancelledError
        await anyio.lowlevel.checkpoint_if_cancelled()
    if isinstance(outcome_or_error, BaseException):
        raise outcome_or_error
    value: T = outcome_or_error[0]
    return value
