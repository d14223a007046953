"""A member who presses "Book" again (a resubmit after a lost answer, a second tab) gets the booking
they hold, marked ``already_existed``, and is never booked twice; and no call's booking check
credits itself with a booking another call of the same client made or returned.

Against the sandbox over real sockets, both HTTP backends, asyncio and trio.
"""

from __future__ import annotations

import datetime as dt

import anyio
import pytest
from sandbox_studio import BOOK, BOOKINGS, INSIDE, OUTSIDE, Studio, studio, utc

from perfectgym_appointments_client import (
    Booking,
    OutcomeKind,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client.sandbox import Faults

pytestmark = pytest.mark.anyio


def active_of(st: Studio) -> list[int]:
    return sorted(b.id for b in st.sb.store.snapshot() if b.customer_id == st.customer and b.active)


@pytest.mark.parametrize("validate", [True, False], ids=["validated", "unvalidated"])
async def test_booking_the_same_slot_again_returns_the_held_booking_marked_already_existed(
    http_backend: str, validate: bool
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        first = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
        )
        again = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot, validate=validate
        )

        assert not first.already_existed
        assert again.already_existed
        assert again.booking_id == first.booking_id
        assert utc(again.start_date_time) == utc(slot.start_date_time)
        assert active_of(st) == [first.booking_id], "one booking at the server"
        # Validated, the repeat sends no booking request; unvalidated, its request is refused.
        assert st.posts == (1 if validate else 2)
        kinds = [(o.kind, o.booking_id) for o in st.outcomes]
        expected = [(OutcomeKind.BOOKED, first.booking_id)]
        if not validate:
            expected.append((OutcomeKind.ALREADY_BOOKED, first.booking_id))
        assert kinds == expected
        st.audit(first)


async def test_another_appointment_at_the_same_time_is_still_refused(http_backend: str) -> None:
    async with studio(http_backend) as st:
        plain = [a for a in st.sb.store.listed() if not a.premium_only and not a.all_hours]
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        await st.client.book(customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot)
        other = next(
            a
            for a in plain
            if a.id != appointment.id and a.duration == appointment.duration and a.title != appointment.title
        )
        with pytest.raises(SlotNotBookableError) as caught:
            await st.client.book(customer_id=st.customer, bookable_appointment_id=other.id, slot=slot)
        assert caught.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
        assert len(active_of(st)) == 1


async def test_beyond_the_bookings_list_a_repeat_is_refused_as_before(http_backend: str) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, OUTSIDE))[0]
        await st.client.book(customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot)
        with pytest.raises(SlotNotBookableError) as caught:
            await st.client.book(customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot)
        assert caught.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
        assert len(active_of(st)) == 1


async def test_a_lost_answers_check_does_not_credit_itself_with_the_resubmits_booking(
    http_backend: str,
) -> None:
    """The first call's booking commits and its answer is lost; while its check is held at the
    server, the member resubmits and gets the booking back. The first call's check then finds
    that booking, handed out already, and does not report it as its own."""
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        st.sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        check = st.server.hold("received", "GET", BOOKINGS)  # the first call's check
        results: dict[str, Booking] = {}

        async def first() -> None:
            results["first"] = await st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await check.arrived()
            results["resubmit"] = await st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
            )
            check.release()

        [held] = active_of(st)
        assert results["resubmit"].booking_id == held
        assert results["resubmit"].already_existed
        assert results["first"].booking_id == held
        assert results["first"].already_existed
        assert st.posts == 1, "the resubmit sent no booking request"
        booked = [o for o in st.outcomes if o.kind is OutcomeKind.BOOKED]
        assert booked == [], "nobody credits itself with a booking another call returned"
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.ALREADY_BOOKED, held)]


async def test_a_resubmit_after_the_check_credited_the_booking_returns_it(http_backend: str) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        st.sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        first = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
        )
        again = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
        )
        assert not first.already_existed
        assert again.already_existed
        assert first.booking_id == again.booking_id == active_of(st)[0]
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.BOOKED, first.booking_id)]
        assert st.server.count("received", "POST", BOOK) == 1


async def test_two_calls_booking_one_slot_at_once_end_with_one_booking_credited_once(
    http_backend: str,
) -> None:
    """Two tabs press "Book" together, and the first request meets a 409 (not done): the two
    flows run one after the other, so the second meets the first's booking as the member's."""
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        st.sb.faults = Faults(rate_409=1.0, max_faults=1)
        results: list[Booking] = []

        async def tab() -> None:
            results.append(
                await st.client.book(
                    customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
                )
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(tab)
            tg.start_soon(tab)
        [held] = active_of(st)
        assert sorted(b.already_existed for b in results) == [False, True]
        assert {b.booking_id for b in results} == {held}
        assert [o.booking_id for o in st.outcomes if o.kind is OutcomeKind.BOOKED] == [held]


async def test_booking_flows_of_one_slot_run_one_at_a_time_and_others_alongside() -> None:
    from perfectgym_appointments_client._booking._shield import SlotLocks
    from perfectgym_appointments_client._generated.models import AppointmentBookingRequest

    def body(customer: int, hour: int) -> AppointmentBookingRequest:
        start = dt.datetime(2030, 1, 7, hour, tzinfo=dt.UTC)
        return AppointmentBookingRequest(
            customer_id=customer, bookable_appointment_id=1, start_date_time=start,
            end_date_time=start + dt.timedelta(hours=1),
        )  # fmt: skip

    locks = SlotLocks()
    events: list[str] = []
    release = anyio.Event()

    async def flow(name: str, request: AppointmentBookingRequest) -> None:
        async with locks.hold(request):
            events.append(f"{name} in")
            await release.wait()
            events.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(flow, "a", body(1, 9))
        tg.start_soon(flow, "b", body(1, 9))  # the same customer and slot: waits for a
        tg.start_soon(flow, "c", body(1, 10))  # another slot: alongside
        tg.start_soon(flow, "d", body(2, 9))  # another customer: alongside
        await anyio.wait_all_tasks_blocked()
        # a or b, whichever ran first (trio starts tasks in any order), and c and d alongside
        [first] = [e[0] for e in events if e[0] in "ab"]
        assert sorted(e[0] for e in events) == sorted([first, "c", "d"])
        release.set()
    second = "b" if first == "a" else "a"
    assert events.index(f"{first} out") < events.index(f"{second} in")
    assert locks._locks == {}, "no entry outlives its flows"


async def test_rescheduling_onto_a_slot_the_member_holds_moves_nothing(http_backend: str) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slots = await st.slots(appointment, INSIDE)
        first = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slots[0]
        )
        second = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slots[1]
        )
        with pytest.raises(SlotNotBookableError) as caught:
            await st.client.reschedule(
                first.booking_id, slots[1], bookable_appointment_id=appointment.id, validate=False
            )
        assert caught.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
        assert active_of(st) == sorted([first.booking_id, second.booking_id]), "the old booking stays"
        [moved] = [o for o in st.outcomes if o.operation == "reschedule"]
        assert moved.kind is OutcomeKind.NOT_BOOKED
        st.audit()
