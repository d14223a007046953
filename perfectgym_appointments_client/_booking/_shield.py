"""Rule 4: once a booking or cancel request may be at the server, the flow runs to its end
whatever its caller does, bounded in time; then its outcome is reported and the caller's
cancellation goes on. Closing the client waits for the flows still running (``InFlight``), so a
shutdown does not cut them off."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
import attrs
import sniffio

from .._call_options import unbounded
from .._exceptions import APITimeoutError, BookingOutcomeUnknownError
from .._generated.models import AppointmentBookingRequest
from .._zoned import instant
from ._journaling import begin, finish
from ._outcome import BookingOutcome, OutcomeHook, describe, report

if TYPE_CHECKING:
    from .._journal import Entry, Journal
    from .._telemetry import Instruments

__all__ = ["InFlight", "Shield", "run_to_the_end"]

T = TypeVar("T")


class InFlight:
    """The flows of one client still running: ``drain`` waits for them before the client closes."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: anyio.Event | None = None

    def started(self) -> None:
        self.count += 1

    def ended(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def drain(self, bound: float) -> int:
        """Wait until no flow runs, at most ``bound`` seconds, whatever the caller does meanwhile;
        returns how many still run."""
        if self.count == 0:
            return 0
        idle = self._idle = self._idle or anyio.Event()

        async def wait() -> None:
            with anyio.move_on_after(bound):
                await idle.wait()

        natively_cancelled = await _uncancellable(wait)
        running = self.count
        if natively_cancelled:
            import asyncio

            raise asyncio.CancelledError
        return running


class SlotLocks:
    """One booking flow at a time per customer and slot, within one client.

    Two calls booking the same slot for the same customer at once (two tabs, a resubmit while the
    first still runs) cannot tell afterwards whose request made the booking the list shows: one
    check could credit itself with the other's. Run one after the other, the second meets the
    first's booking as the customer's own (``already_existed``). An entry lives while a flow holds
    or awaits it, so there are never more than the flows running.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[int, Any, Any], tuple[anyio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, body: AppointmentBookingRequest) -> AsyncIterator[None]:
        key = (body.customer_id, instant(body.start_date_time), instant(body.end_date_time))
        lock, users = self._locks.setdefault(key, (anyio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


@attrs.frozen
class Intent:
    """Where a flow's intent goes before its request: the journal, the studio, whether the slot
    validated AVAILABLE just before (evidence for recovery)."""

    journal: Journal
    studio: str
    validated: bool


@attrs.frozen
class Shield:
    """Runs flows to their end for one client: at most ``bound`` seconds each, reported to ``hook``
    (and to ``telemetry``, the client's OpenTelemetry instruments, if any)."""

    bound: float
    hook: OutcomeHook | None
    telemetry: Instruments | None = None
    in_flight: InFlight = attrs.field(factory=InFlight)
    slots: SlotLocks = attrs.field(factory=SlotLocks)
    # The booking journal (rule 8, ``_journaling.py``) and the studio its entries are of, if any.
    journal: Journal | None = None
    studio: str = ""

    async def run(
        self,
        operation: str,
        subject: AppointmentBookingRequest | int,
        flow: Callable[..., Awaitable[tuple[T, BookingOutcome]]],
        *args: Any,
        old_booking_id: int | None = None,
        validated: bool = False,
    ) -> T:
        """``flow(*args)`` run to its end; its outcome reported; its value returned (or its error
        raised), unless the caller was cancelled meanwhile. With a journal, the intent is written
        first (``validated``: the slot validated AVAILABLE just before, evidence for recovery)."""
        # One flow at a time per customer and slot; a cancel (by booking id) takes no lock.
        slot_lock = (
            self.slots.hold(subject)
            if isinstance(subject, AppointmentBookingRequest)
            else contextlib.nullcontext()
        )
        async with slot_lock:
            self.in_flight.started()
            try:
                intent = None
                if self.journal is not None:
                    intent = Intent(self.journal, self.studio, validated)
                return await run_to_the_end(
                    operation,
                    subject,
                    flow,
                    args,
                    bound=self.bound,
                    hook=self.hook,
                    old_booking_id=old_booking_id,
                    telemetry=self.telemetry,
                    intent=intent,
                )
            finally:
                self.in_flight.ended()


async def run_to_the_end(
    operation: str,
    subject: AppointmentBookingRequest | int,
    flow: Callable[..., Awaitable[tuple[T, BookingOutcome]]],
    args: tuple[Any, ...],
    *,
    bound: float,
    hook: OutcomeHook | None,
    old_booking_id: int | None = None,
    telemetry: Instruments | None = None,
    intent: Intent | None = None,
) -> T:
    """Run ``flow(*args)``, whose request may reach the server, to its end (at most ``bound`` seconds),
    whatever the caller does, and report how it ended (and, with a journal, write it there once
    reported).

    The flow runs in ``_uncancellable``.
    """
    result: list[Any] = []

    entry: list[Entry] = []

    async def bounded() -> None:
        # The caller's per-call bounds stop here: cutting a sent booking off would leave its
        # outcome unknown; the flow's own bound holds instead.
        with unbounded(), anyio.move_on_after(bound):
            try:
                if intent is not None:
                    # Written here, past the caller's cancellation: once a flow runs, its intent
                    # and then its request go out, as without a journal its request would.
                    written = await begin(
                        intent.journal, intent.studio, operation, subject, validated=intent.validated,
                        old_booking_id=old_booking_id,
                    )  # fmt: skip
                    if written is not None:
                        entry.append(written)
                result.append(await flow(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the caller below
                result.append(exc)
        if not result:  # the bound ran out mid-flow: whatever was sent, we cannot tell
            result.append(_cut_off(operation, subject, f"did not end within {bound:.0f} s"))

    natively_cancelled = await _uncancellable(bounded)
    if not result:  # its task was cancelled itself: the event loop is shutting down
        result.append(_cut_off(operation, subject, "was stopped before it ended (its event loop shut down)"))
    outcome_or_error = result[0]
    caller_cancelled = natively_cancelled
    if not caller_cancelled:
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except anyio.get_cancelled_exc_class():
            caller_cancelled = True
    outcome = describe(operation, subject, outcome_or_error, old_booking_id)
    with anyio.CancelScope(shield=True):
        reported = attrs.evolve(outcome, caller_cancelled=caller_cancelled)
        await report(reported, hook, telemetry)
        if intent is not None and entry:
            await finish(intent.journal, entry[0], reported)
    if caller_cancelled:
        if natively_cancelled:
            import asyncio

            raise asyncio.CancelledError
        await anyio.lowlevel.checkpoint_if_cancelled()
    if isinstance(outcome_or_error, BaseException):
        raise outcome_or_error
    value: T = outcome_or_error[0]
    return value


def _cut_off(
    operation: str, subject: AppointmentBookingRequest | int, why: str
) -> BookingOutcomeUnknownError:
    """A flow that ended before it could tell what its request did."""
    customer = subject.customer_id if isinstance(subject, AppointmentBookingRequest) else None
    cause = APITimeoutError(f"{operation} {why}", operation=operation, method="", path="")
    return BookingOutcomeUnknownError(str(cause), customer_id=customer, cause=cause)


async def _uncancellable(job: Callable[[], Awaitable[None]]) -> bool:
    """Run ``job`` to its end whatever the caller does; True if the caller was natively cancelled.

    Under trio and anyio cancel scopes a shielded scope is enough. Under asyncio a native
    cancellation (``asyncio.timeout``, ``Task.cancel``, uvicorn's shutdown) gets through shields,
    so the job runs in a task of its own that the caller waits for until it ends.
    """
    natively_cancelled = False
    with anyio.CancelScope(shield=True):
        if sniffio.current_async_library() == "asyncio":
            import asyncio

            task = asyncio.ensure_future(job())
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    natively_cancelled = True
            if not task.cancelled():
                task.result()  # its own error, if it had one (the jobs here catch theirs)
        else:
            await job()
    return natively_cancelled
