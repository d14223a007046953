"""Booking safety: a member is never booked twice, and never told "not booked" when they are.

Through the fake API (one process, so a test can hold a request at the "server" and cancel its
caller at exactly that point). The same rules are exercised over real sockets against the
sandbox in tests/test_booking_safety_sandbox.py and by the soak.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
from fakeapi import FAR_DAY, FakeAPI, slot_json, status_once

from perfectgym_appointments_client import (
    AppointmentsClient,
    BookingIdUnknownError,
    BookingOutcome,
    BookingOutcomeUnknownError,
    OutcomeKind,
    RetryPolicy,
    Slot,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]

BOOK = "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"


async def no_sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


def make(api: FakeAPI, outcomes: list[BookingOutcome] | None = None, **kwargs: Any) -> AppointmentsClient:
    policy = RetryPolicy(max_retries=kwargs.pop("max_retries", 2), sleep=no_sleep)
    hook = outcomes.append if outcomes is not None else None
    return AppointmentsClient(**api.client_kwargs(), retry_policy=policy, on_booking_outcome=hook, **kwargs)


def far_api() -> FakeAPI:
    """Slots three weeks out: past the bookings list's two-week window."""
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7], day=FAR_DAY) for h in (8, 9, 10)]
    return api


def commit_then(status: int) -> Any:
    """The booking is made, then the answer is lost: a ``status`` error instead."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK:
            fault.api.book(json.loads(request.content))  # type: ignore[attr-defined]
            return httpx.Response(status, json={"errorMessage": "lost", "errorCode": "x"})
        return None

    return fault


def add(api: FakeAPI, fault: Any) -> None:
    fault.api = api
    api.faults.append(fault)


# -- the check, outside the list's window ------------------------------------------------------------


async def test_far_slot_made_then_dropped_is_reported_booked_with_unknown_id() -> None:
    api = far_api()
    api.drop_after_commit = 1
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(BookingIdUnknownError) as info:
            await client.book(5, 1, slot)  # validates AVAILABLE first: evidence for the check
    error = info.value
    assert api.count("POST", BOOK) == 1  # never a second booking request
    assert len(api.live_bookings(5)) == 1
    assert api.count("GET", BOOKINGS) == 0  # the list cannot show it: not asked
    assert error.customer_id == 5
    assert error.start_date_time == slot.start_date_time
    assert error.visible_from < FAR_DAY
    assert "list_bookings(5)" in str(error)
    assert [o.kind for o in outcomes] == [OutcomeKind.BOOKED_ID_UNKNOWN]


async def test_far_slot_without_prior_validation_is_unknown_not_rebooked() -> None:
    api = far_api()
    api.drop_after_commit = 1
    async with make(api) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(BookingOutcomeUnknownError, match="proves neither") as info:
            await client.book(5, 1, slot, validate=False)
    assert api.count("POST", BOOK) == 1
    assert len(api.live_bookings(5)) == 1
    assert info.value.start_date_time == slot.start_date_time


async def test_far_slot_that_validates_available_again_is_rebooked() -> None:
    api = far_api()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0])
    assert api.count("POST", BOOK) == 2
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


# -- the check, inside the window ---------------------------------------------------------------------


async def test_a_renamed_appointment_is_still_found_by_its_instant() -> None:
    api = FakeAPI()
    api.titles[1] = "Personal Training (renamed)"
    api.drop_after_commit = 1
    async with make(api) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0])
    assert api.count("POST", BOOK) == 1
    assert booking.title == "Personal Training (renamed)"
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_a_booking_at_the_same_wall_time_on_another_day_is_not_taken_for_ours() -> None:
    api = FakeAPI()
    other = slot_json(8, day=FAR_DAY)
    api.book({"customerId": 5, "bookableAppointmentId": 1, **other})  # an older booking, elsewhere
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0])
    assert api.count("POST", BOOK) == 2
    assert len(api.live_bookings(5)) == 2
    assert booking.start_date_time != Slot.from_dict(other).start_date_time


async def test_a_late_commit_seen_after_the_repeat_is_canceled_and_reported() -> None:
    api = FakeAPI()
    first: dict[str, Any] = {}

    def slow_first(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK:
            first["body"] = json.loads(request.content)  # lands only later (below)
            return httpx.Response(504, json={"errorMessage": "gateway timeout", "errorCode": "x"})
        return None

    def second_arrives_after_the_first_landed(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK and "body" in first:
            api.book(first.pop("body"))
        return None

    api.faults.append(slow_first)
    api.faults.append(second_arrives_after_the_first_landed)
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0], validate=False)
    live = api.live_bookings(5)
    assert [b["bookingId"] for b in live] == [booking.booking_id]  # one left: the older
    assert api.count("POST", BOOK) == 2
    assert len(api.bookings) == 2
    (outcome,) = outcomes
    assert outcome.kind is OutcomeKind.BOOKED
    assert outcome.booking_id == booking.booking_id
    assert len(outcome.canceled_booking_ids) == 1
    assert outcome.canceled_booking_ids[0] != booking.booking_id


async def test_409_after_a_commit_is_found_not_repeated() -> None:
    api = FakeAPI()
    add(api, commit_then(409))
    async with make(api) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0])
    assert api.count("POST", BOOK) == 1
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


# -- cancellation: the flow runs to its end, then the cancellation goes on --------------------------


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
                        await client.book(5, 1, slot)
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
        task = asyncio.ensure_future(client.book(5, 1, slot))
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
        old = await client.book(5, 1, slots[0])
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
                await client.book(5, 1, slot)

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await gate.arrived.wait()
            scope.cancel()
            gate.opened.set()
    assert scope.cancelled_caught
    assert api.count("POST", BOOK) == 0
    assert outcomes == []


# -- the hook ---------------------------------------------------------------------------------------


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
        booking = await client.book(5, 1, slot)
        await client.cancel_booking(booking.booking_id)
    assert seen == [OutcomeKind.BOOKED, OutcomeKind.CANCELED]
    async with AppointmentsClient(**api.client_kwargs(), on_booking_outcome=broken) as client:
        again = await client.book(5, 1, slot)
    assert again.booking_id != booking.booking_id
    assert "database down" in caplog.text
