"""A booking flow against the sandbox whose caller is cancelled at each await point, over real
sockets, on both HTTP backends: httpx on asyncio and trio, aiohttp on asyncio (tests/conftest.py
deselects trio with aiohttp). Cancelled before its request is sent, it books and reports nothing;
once the request is at the server, it runs to its end (shielded), the hook is told
(``caller_cancelled``), and the cancellation goes on. The sandbox's state is audited against what
was reported (tests/sandbox_studio.py). The same through the fake API:
tests/test_booking_outcome.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from sandbox_studio import BOOK, BOOKINGS, INSIDE, VALIDATE, Hold, studio, utc

from perfectgym_appointments_client import OutcomeKind
from perfectgym_appointments_client.sandbox import Faults

pytestmark = pytest.mark.anyio


async def cancel_when_held(hold: Hold, call: Callable[[], Awaitable[object]]) -> anyio.CancelScope:
    """Run ``call`` in a task inside a cancel scope; once ``hold``'s request is at the server,
    cancel the scope, then let the request go on. Returns the scope once the task has ended."""
    scope = anyio.CancelScope()
    returned: list[object] = []

    async def caller() -> None:
        with scope:
            returned.append(await call())

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await hold.arrived()
            scope.cancel()
            hold.release()
    finally:
        hold.release()
    assert returned == [], "a cancelled call returns nothing"
    return scope


# -- the caller cancelled at each await point --------------------------------------------------------


async def test_book_cancelled_while_validating_books_nothing_and_reports_nothing(http_backend: str) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        hold = st.server.hold("received", "POST", VALIDATE)
        scope = await cancel_when_held(
            hold,
            lambda: st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
            ),
        )

        assert scope.cancelled_caught
        assert st.posts == 0
        assert st.audit() == []
        assert st.outcomes == []


BOOK_POINTS = {
    "book received": (("received", "POST", BOOK), Faults()),
    "book committed": (("committed", "POST", BOOK), Faults()),
    "check after a lost answer": (
        ("received", "GET", BOOKINGS),
        Faults(rate_commit_then_drop=1.0, max_faults=1),
    ),
}


@pytest.mark.parametrize("point", BOOK_POINTS)
async def test_book_cancelled_with_its_request_at_the_server_runs_to_the_end_and_reports(
    point: str, http_backend: str
) -> None:
    (phase, method, path), faults = BOOK_POINTS[point]
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        st.sb.faults = faults
        hold = st.server.hold(phase, method, path)
        scope = await cancel_when_held(
            hold,
            lambda: st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
            ),
        )

        assert scope.cancelled_caught, "the caller's cancellation went on once the flow ended"
        assert st.posts == 1
        [made] = st.audit()
        [outcome] = st.outcomes
        assert (outcome.operation, outcome.kind, outcome.booking_id, outcome.caller_cancelled) == (
            "book", OutcomeKind.BOOKED, made.id, True,
        )  # fmt: skip
        assert utc(made.start) == utc(slot.start_date_time)


@pytest.mark.parametrize("point", ["new booking committed", "old booking's cancel received"])
async def test_reschedule_cancelled_ends_with_exactly_the_new_booking_and_reports_it(
    point: str, http_backend: str
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slots = await st.slots(appointment, INSIDE)
        first = slots[0]
        second = next(s for s in slots if utc(s.start_date_time) >= utc(first.end_date_time))
        old = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=first
        )
        if point == "new booking committed":
            hold = st.server.hold("committed", "POST", BOOK)
        else:
            hold = st.server.hold("received", "DELETE", f"{BOOKINGS}/{old.booking_id}")
        scope = await cancel_when_held(
            hold,
            lambda: st.client.reschedule(old.booking_id, second, bookable_appointment_id=appointment.id),
        )

        assert scope.cancelled_caught
        [new] = st.audit()  # never neither, never both
        assert new.id != old.booking_id
        assert utc(new.start) == utc(second.start_date_time)
        assert st.sb.store.bookings[old.booking_id].status == "CANCELED"
        booked, rescheduled = st.outcomes
        assert (booked.kind, booked.booking_id) == (OutcomeKind.BOOKED, old.booking_id)
        assert (
            rescheduled.operation, rescheduled.kind, rescheduled.booking_id, rescheduled.old_booking_id,
            rescheduled.canceled_booking_ids, rescheduled.caller_cancelled,
        ) == ("reschedule", OutcomeKind.RESCHEDULED, new.id, old.booking_id, (old.booking_id,), True)  # fmt: skip
