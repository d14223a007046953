"""cancel_booking: the cancel, and one whose answer is lost or garbled: the booking is read back,
never canceled again blindly, and what the read cannot tell is reported as unknown. Through the
fake API (tests/fakeapi.py), on both HTTP backends.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fakeapi import (
    BOOKINGS,
    FakeAPI,
    answer_200,
    answer_once,
    commit_then_garble,
    first_slot,
    httpx_alone,
    make,
    status_once,
)

from perfectgym_appointments_client import (
    AppointmentStatus,
    BookingOutcome,
    BookingOutcomeUnknownError,
    NotFoundError,
    OutcomeKind,
    ParticipantStatus,
    ResponseValidationError,
    ServiceUnavailableError,
)
from perfectgym_appointments_client._booking._cancel import ALREADY_CANCELED, CANCELED

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]


async def test_get_list_and_cancel_bookings() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        read = await client.get_booking(made.booking_id)
        assert (read.booking_id, read.customer_id) == (made.booking_id, 5)
        assert read.appointment_status is AppointmentStatus.PLANNED
        assert read.participant_status is ParticipantStatus.UNSET
        assert [b.booking_id for b in await client.list_bookings(5)] == [made.booking_id]
        message = await client.cancel_booking(made.booking_id)
        assert message == f"Booking {made.booking_id} was canceled."  # the fake server's own text
        assert (await client.get_booking(made.booking_id)).is_canceled
        with pytest.raises(NotFoundError) as info:
            await client.get_booking(999)
    assert info.value.trace_id == "t-404"


async def test_cancel_that_dropped_after_success_counts_as_done() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))

        def cancel_then_drop(request: httpx.Request) -> httpx.Response | None:
            if request.method == "DELETE":
                api.bookings[made.booking_id]["bookingStatus"] = "CANCELED"
                raise httpx.ReadTimeout("timed out")
            return None

        api.faults.append(cancel_then_drop)
        await client.cancel_booking(made.booking_id)
    assert api.count("DELETE", f"{BOOKINGS}/{made.booking_id}") == 1


async def test_malformed_success_on_cancel_counts_once_the_booking_reads_canceled() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        api.faults.append(commit_then_garble(api, "DELETE"))
        await client.cancel_booking(made.booking_id)
        assert api.live_bookings(5) == []
        # A garbled answer to a cancel the server did not carry out is an error.
        again = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        api.faults.append(lambda r: httpx.Response(200, content=b"") if r.method == "DELETE" else None)
        with pytest.raises(ResponseValidationError):
            await client.cancel_booking(again.booking_id)
    assert [b["bookingId"] for b in api.live_bookings(5)] == [again.booking_id]


@httpx_alone
async def test_an_ambiguous_cancel_of_a_booking_that_does_not_exist_is_not_repeated() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "DELETE", f"{BOOKINGS}/999"))
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.cancel_booking(999)
    assert api.count("DELETE", f"{BOOKINGS}/999") == 1
    assert api.count("GET", f"{BOOKINGS}/999") == 1  # read back: not found, nothing to repeat
    assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.NOT_CANCELED, 999)]


@httpx_alone
async def test_an_ambiguous_cancel_whose_read_back_fails_is_unknown() -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
        path = f"{BOOKINGS}/{booking.booking_id}"
        api.faults += [status_once(503, "DELETE", path), status_once(403, "GET", path)]
        with pytest.raises(BookingOutcomeUnknownError, match="may or may not be canceled") as info:
            await client.cancel_booking(booking.booking_id)
    assert getattr(info.value.__cause__, "status_code", None) == 403
    assert api.count("DELETE", path) == 1  # never repeated blind
    assert [(o.operation, o.kind) for o in outcomes] == [
        ("book", OutcomeKind.BOOKED),
        ("cancel", OutcomeKind.UNKNOWN),
    ]
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({}, CANCELED),  # the official VoidResult: success is not required
        ({"success": None}, CANCELED),
        ({"success": ""}, CANCELED),
        ({"success": "Termin storniert."}, "Termin storniert."),
    ],
)
async def test_cancel_returns_the_servers_text_or_the_canceled_constant(
    answer: dict[str, Any], expected: str
) -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        path = f"{BOOKINGS}/{made.booking_id}"
        api.faults.append(answer_200(api, "DELETE", json=answer))
        assert await client.cancel_booking(made.booking_id) == expected
    assert api.live_bookings(5) == []
    assert api.count("DELETE", path) == 1
    assert api.count("GET", path) == 0  # a readable success is not read back


async def test_cancel_of_a_canceled_booking_returns_already_canceled() -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        path = f"{BOOKINGS}/{made.booking_id}"
        api.bookings[made.booking_id]["bookingStatus"] = "CANCELED"  # by the studio's staff
        refusal = {
            "errorMessage": f"Appointment booking {made.booking_id} is already canceled",
            "errorCode": "errormessage.appointment.booking.already.canceled",
        }
        api.faults.append(answer_once("DELETE", path, 400, refusal))
        assert await client.cancel_booking(made.booking_id) == ALREADY_CANCELED
    assert api.count("DELETE", path) == 1
    assert (outcomes[-1].operation, outcomes[-1].kind) == ("cancel", OutcomeKind.CANCELED)


async def test_an_unclear_cancel_read_back_canceled_returns_the_canceled_constant() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        api.faults.append(commit_then_garble(api, "DELETE"))
        assert await client.cancel_booking(made.booking_id) == CANCELED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # The official VoidResult requires nothing, so this body fits its schema.
        ({"errorMessage": "Database timeout", "errorCode": "INTERNAL"}, "errorMessage"),
        ({"success": [1, 2]}, "success"),
    ],
)
@pytest.mark.parametrize("carried_out", [True, False])
async def test_a_200_that_is_no_confirmation_is_read_back(
    body: dict[str, Any], field: str, carried_out: bool
) -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        path = f"{BOOKINGS}/{made.booking_id}"
        api.faults.append(answer_200(api, "DELETE", carried_out=carried_out, json=body))
        if carried_out:
            assert await client.cancel_booking(made.booking_id) == CANCELED
        else:
            with pytest.raises(ResponseValidationError) as info:
                await client.cancel_booking(made.booking_id)
            assert info.value.field == field
    assert api.count("GET", path) == 1  # read back once
    assert api.count("DELETE", path) == 1  # never sent again blindly
    assert api.live_bookings(5) == ([] if carried_out else [api.bookings[made.booking_id]])
