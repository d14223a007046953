"""A studio stricter than the documented bounds (issue 28): its 400 ``errormessage.validation.max``
(or ``.min``) on ``daysAhead`` or ``sliceSize`` teaches the client its own bound, the call is asked
again within it, and later calls of any client of that studio go there at once.

Against two sandboxes of one seed (one made stricter per test) over real sockets: what a call
returns from the strict one is what it returns from the ordinary one. The refusals a sandbox
does not make (a ``.min``, a bound that cannot be, other fields, a booking) come from an
``httpx.MockTransport`` handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fakeapi import slot_json

from perfectgym_appointments_client import AppointmentsClient, BadRequestError, RetryPolicy
from perfectgym_appointments_client import _studio_limits as studio_limits
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio

LOGGER = "perfectgym_appointments_client"
SLOTS = "GET /v1/appointments/bookable/{bookableAppointmentId}/slots"
LISTING = "GET /v1/appointments/bookable"


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Sandbox, Sandbox]]:
    """An ordinary studio and one of the same seed (the same data) that each test makes stricter."""
    with Sandbox(seed=8, rate_limit=None) as ordinary, Sandbox(seed=8, rate_limit=None) as strict:
        yield ordinary, strict


@pytest.fixture
def ordinary(pair: tuple[Sandbox, Sandbox]) -> Sandbox:
    return pair[0]


@pytest.fixture
def strict(pair: tuple[Sandbox, Sandbox]) -> Iterator[Sandbox]:
    sb = pair[1]
    yield sb
    sb.max_days_ahead, sb.max_slice_size, sb.limits_in_typed_args = 6, 100, True


def client_of(sb: Sandbox) -> AppointmentsClient:
    return AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, rate_limit=None)


def served(sb: Sandbox, endpoint: str) -> int:
    return int(sb.stats["requests_by_endpoint"].get(endpoint, 0))


def learned(caplog: pytest.LogCaptureFixture, parameter: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and f"refused {parameter}=" in r.getMessage()
    ]


# -- against the sandbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed_args", [True, False], ids=["bound-in-typedArgs", "bound-left-out"])
@pytest.mark.parametrize("from_today", [False, True], ids=["start-date", "no-start-date"])
async def test_slots_beyond_a_stricter_studios_days_ahead_are_those_of_one_big_window(
    ordinary: Sandbox, strict: Sandbox, caplog: pytest.LogCaptureFixture, typed_args: bool, from_today: bool
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    strict.max_days_ahead, strict.limits_in_typed_args = 3, typed_args
    gym = strict.store.open_gym().id
    start = None if from_today else strict.store.now().date() + dt.timedelta(days=2)
    async with client_of(ordinary) as client:
        expected = await client.get_slots(gym, days_ahead=14, start_date=start)
    async with client_of(strict) as client:
        assert await client.get_slots(gym, days_ahead=14, start_date=start) == expected
    first = strict.store.now().date() if start is None else start
    window = {first + dt.timedelta(days=n) for n in range(14)}
    days = {s.start_date_time.date() for s in expected}
    assert days <= window
    # Every day of the window has slots, but today's may all have begun already (a run late in
    # the studio's evening).
    assert window - days <= ({first} if from_today else set()), "every day of the window has slots"
    [message] = learned(caplog, "daysAhead")
    assert strict.base_url in message
    assert "daysAhead=6" in message
    assert studio_limits.bounds(strict.base_url, "daysAhead") == (1, 3)
    # Any client of the studio now asks for windows of 3 days at once: 3+3+3+3+2, nothing refused.
    before = served(strict, SLOTS)
    async with client_of(strict) as later:
        assert await later.get_slots(gym, days_ahead=14, start_date=start) == expected
        assert served(strict, SLOTS) - before == 5
        await later.get_slots(gym, days_ahead=3, start_date=start)
        assert served(strict, SLOTS) - before == 6
    assert len(learned(caplog, "daysAhead")) == 1, "logged once per studio and parameter"


@pytest.mark.parametrize(
    ("typed_args", "size"), [(True, 20), (False, 12)], ids=["bound-in-typedArgs", "halved"]
)
async def test_pages_of_a_stricter_studio_shrink_to_what_it_accepts_and_list_the_same(
    ordinary: Sandbox, strict: Sandbox, caplog: pytest.LogCaptureFixture, typed_args: bool, size: int
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    strict.max_slice_size, strict.limits_in_typed_args = 20, typed_args
    async with client_of(ordinary) as client:
        expected = [a.id async for a in client.bookable_appointments(slice_size=50)]
    async with client_of(strict) as client:
        pages = [
            [a.id for a in page.items] async for page in client.bookable_appointments(slice_size=50).pages()
        ]
    assert [i for page in pages for i in page] == expected
    assert {len(page) for page in pages[:-1]} == {size}
    assert 0 < len(pages[-1]) <= size
    [message] = learned(caplog, "sliceSize")
    assert "sliceSize=50" in message
    assert studio_limits.bounds(strict.base_url, "sliceSize") == (10, size)
    before = served(strict, LISTING)
    async with client_of(strict) as later:
        assert [a.id async for a in later.bookable_appointments(slice_size=50)] == expected
    assert served(strict, LISTING) - before == len(pages), "one request a page, none refused"
    assert len(learned(caplog, "sliceSize")) == 1


async def test_what_one_studio_taught_leaves_the_others_be(ordinary: Sandbox, strict: Sandbox) -> None:
    strict.max_days_ahead = 2
    gym = strict.store.open_gym().id
    start = strict.store.now().date() + dt.timedelta(days=1)
    async with client_of(ordinary) as parent:
        studio = parent.for_studio(strict.base_url, strict.api_key)
        await studio.get_slots(gym, days_ahead=6, start_date=start)
        before = served(ordinary, SLOTS)
        await parent.get_slots(gym, days_ahead=6, start_date=start)
        assert served(ordinary, SLOTS) - before == 1, "the ordinary studio still gets 6 days at once"


# -- refusals the sandbox does not make -------------------------------------------------------------


class Refusing:
    """An httpx.MockTransport handler: answers 400 with ``refusal`` to the requests ``refuses``
    picks, lists ``appointments`` appointments, answers slots and bookings; records every request."""

    def __init__(
        self, refuses: Callable[[httpx.Request], bool], refusal: dict[str, Any], appointments: int = 30
    ):
        self.refuses, self.refusal, self.appointments = refuses, refusal, appointments
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.refuses(request):
            return httpx.Response(400, json={"errorMessage": "refused", **self.refusal})
        path = request.url.path
        if path.endswith("/slots"):
            return httpx.Response(200, json=[slot_json(9)])
        if path == "/v1/appointments/bookable":
            offset, size = int(request.url.params.get("offset", "0")), int(request.url.params["sliceSize"])
            ids = list(range(offset + 1, min(offset + size, self.appointments) + 1))
            return httpx.Response(
                200,
                json={
                    "result": [{"id": i, "title": f"A{i}", "duration": 60} for i in ids],
                    "hasNext": ids[-1] < self.appointments,
                    "offset": str(ids[-1]),
                },
            )
        return httpx.Response(404, json={"errorMessage": "not found", "errorCode": "NOT_FOUND"})

    def asked(self, parameter: str) -> list[int]:
        return [int(r.url.params[parameter]) for r in self.seen if parameter in r.url.params]


def refusal(kind: str, reference: str, bound: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"errorCode": f"errormessage.validation.{kind}", "reference": reference}
    if bound is not None:
        body["args"] = [{kind: bound}]
        body["typedArgs"] = [{"value": bound, "type": "INTEGER"}]
    return body


async def served_by(handler: Refusing) -> AppointmentsClient:
    return AppointmentsClient(
        api_key="key",
        base_url=f"https://studio-{uuid.uuid4().hex[:8]}.example",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        rate_limit=None,
        retry_policy=RetryPolicy(max_retries=2),
    )


@pytest.mark.parametrize("bound", [20, None], ids=["bound-in-typedArgs", "doubled"])
async def test_a_studio_asking_for_larger_pages_gets_them(bound: int | None) -> None:
    handler = Refusing(
        lambda r: int(r.url.params.get("sliceSize", "50")) < 20, refusal("min", "sliceSize", bound)
    )
    client = await served_by(handler)
    async with client._api.backend.client, client:  # type: ignore[attr-defined]
        ids = [a.id async for a in client.bookable_appointments(slice_size=10)]
    assert ids == list(range(1, 31))
    assert handler.asked("sliceSize") == [10, 20, 20]


def _refuses_slots(request: httpx.Request) -> bool:
    return request.url.path.endswith("/slots")


@pytest.mark.parametrize(
    ("case", "refuses", "body"),
    [
        ("another field's bound", _refuses_slots, refusal("max", "customerId", 3)),
        ("not a bound", _refuses_slots, refusal("invalid", "daysAhead")),
        ("the API's default window", _refuses_slots, refusal("max", "daysAhead", 0)),
        ("no bound under the least", _refuses_slots, refusal("max", "daysAhead", 0)),
        (
            "no page under the least",
            lambda r: r.url.path == "/v1/appointments/bookable",
            refusal("max", "sliceSize"),
        ),
        ("a booking", lambda r: r.method == "POST", refusal("max", "daysAhead", 1)),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_other_refusals_are_the_callers_error_asked_once(
    case: str, refuses: Any, body: dict[str, Any]
) -> None:
    handler = Refusing(refuses, body)
    client = await served_by(handler)
    async with client._api.backend.client, client:  # type: ignore[attr-defined]
        if case == "a booking":
            slot = (await client.get_slots(1))[0]
            handler.seen.clear()
            with pytest.raises(BadRequestError):
                await client.book(
                    customer_id=1210005199, bookable_appointment_id=1, slot=slot, validate=False
                )
        elif case == "no page under the least":
            with pytest.raises(BadRequestError):
                await client.bookable_appointments(slice_size=10).to_list()
        elif case == "the API's default window":
            with pytest.raises(BadRequestError):
                await client.get_slots(1)
        else:
            with pytest.raises(BadRequestError):
                await client.get_slots(1, days_ahead=1)
    assert len(handler.seen) == 1, case


async def test_a_studio_refusing_every_days_ahead_ends_in_its_refusal() -> None:
    handler = Refusing(_refuses_slots, refusal("max", "daysAhead"))
    client = await served_by(handler)
    async with client._api.backend.client, client:  # type: ignore[attr-defined]
        with anyio.fail_after(10), pytest.raises(BadRequestError):
            await client.get_slots(1, days_ahead=6, start_date=dt.date(2030, 1, 7))
    assert 1 < len(handler.seen) <= 21, "a day less each time, never below one"
