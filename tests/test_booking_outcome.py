"""What the caller and the on_booking_outcome hook are told: a booking flow cancelled by its caller
runs to its end (shielded) and reports, then the cancellation goes on; one cancelled before its
request is sent sends nothing; an async hook is awaited, a failing one changes nothing. Through
the fake API (tests/fakeapi.py), whose gates hold a request at the "server"; the same over real
sockets against the sandbox: tests/test_booking_outcome_sandbox.py.
"""

from __future__ import annotations

import logging

import anyio
import pytest
from fakeapi import BOOK, FakeAPI, make

from perfectgym_appointments_client import AppointmentsClient, BookingOutcome, OutcomeKind

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]


# -- the caller cancelled: the flow runs to its end, then the cancellation goes on -------------------


async def test_a_book_cancelled_while_its_request_is_at_the_server_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        gate = api.gate("POST", BOOK)
        with caplog.at_level(logging.WARNING, logger="perfectgym_appointments_client"):
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def caller() -> None:
                    with scope:
                        await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)
                        pytest.fail("the cancellation must reach the caller")  # pragma: no cover

                tg.start_soon(caller)
                await gate.arrived.wait()
                scope.cancel()  # the web app gives up while the booking is at the server
                await anyio.wait_all_tasks_blocked()
                assert outcomes == []  # still running: shielded from the cancellation
                gate.opened.set()
    assert scope.cancelled_caught
    (booking,) = api.live_bookings(5)
    (outcome,) = outcomes
    assert outcome.kind is OutcomeKind.BOOKED
    assert outcome.caller_cancelled
    assert outcome.booking_id == booking["bookingId"]
    assert str(booking["bookingId"]) in caplog.text
    assert "cancelled" in caplog.text


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancellation_waits_for_the_flow(anyio_backend: str) -> None:
    import asyncio

    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        gate = api.gate("POST", BOOK)
        task = asyncio.ensure_future(client.book(customer_id=5, bookable_appointment_id=1, slot=slot))
        await gate.arrived.wait()
        task.cancel()  # what asyncio.timeout and a disconnected client do
        await anyio.wait_all_tasks_blocked()
        assert not task.done()
        gate.opened.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    (booking,) = api.live_bookings(5)
    assert [(o.kind, o.caller_cancelled, o.booking_id) for o in outcomes] == [
        (OutcomeKind.BOOKED, True, booking["bookingId"])
    ]


async def test_a_reschedule_cancelled_mid_way_finishes_the_move() -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        gate = api.gate("POST", BOOK)
        scope = anyio.CancelScope()

        async def caller() -> None:
            with scope:
                await client.reschedule(old.booking_id, slots[1], bookable_appointment_id=1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await gate.arrived.wait()  # the new booking's request is at the server
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            gate.opened.set()
    assert scope.cancelled_caught
    (new,) = api.live_bookings(5)  # never neither, never both
    assert new["bookingId"] != old.booking_id
    assert outcomes[-1].kind is OutcomeKind.RESCHEDULED
    assert outcomes[-1].caller_cancelled
    assert outcomes[-1].booking_id == new["bookingId"]
    assert old.booking_id in outcomes[-1].canceled_booking_ids


async def test_a_cancel_before_the_request_is_sent_sends_nothing() -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        gate = api.gate("POST", "/v1/appointments/bookable/validate")
        scope = anyio.CancelScope()

        async def caller() -> None:
            with scope:
                await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await gate.arrived.wait()
            scope.cancel()
            gate.opened.set()
    assert scope.cancelled_caught
    assert api.count("POST", BOOK) == 0
    assert outcomes == []


# -- the hook ----------------------------------------------------------------------------------------


async def test_an_async_hook_is_awaited_and_a_failing_hook_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeAPI()
    seen: list[OutcomeKind] = []

    async def store(outcome: BookingOutcome) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(outcome.kind)

    def broken(outcome: BookingOutcome) -> None:
        raise RuntimeError("database down")

    async with make(api) as plain:
        slot = (await plain.get_slots(1))[0]
    async with AppointmentsClient(**api.client_kwargs(), on_booking_outcome=store) as client:
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)
        await client.cancel_booking(booking.booking_id)
    assert seen == [OutcomeKind.BOOKED, OutcomeKind.CANCELED]
    async with AppointmentsClient(**api.client_kwargs(), on_booking_outcome=broken) as client:
        again = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)
    assert again.booking_id != booking.booking_id
    assert "database down" in caplog.text
