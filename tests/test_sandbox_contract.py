"""The sandbox against the API's documented contract, over real sockets with raw httpx.

What a real tenant does and the sandbox must do at least as strictly: bounded parameters,
error bodies, Accept-Language, keys and scopes, HEAD as a key check, the rate limit per
endpoint, concurrent modification (409), the bookings list's window, the booking horizon and
lead time, appointments switched off for online booking, and the demo customer's id.

"Now" is pinned to Monday 2026-03-23 08:10 in Berlin (winter time; summer time starts Sunday
2026-03-29, so the 28-day horizon ends in summer time).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from perfectgym_appointments_client._tls import shared_ssl_context
from perfectgym_appointments_client.sandbox import (
    DEMO_CUSTOMER_ID,
    ZONE,
    Appointment,
    Faults,
    RateLimiter,
    Sandbox,
    Store,
)
from perfectgym_appointments_client.sandbox._i18n import MESSAGES, SUPPORTED_LANGUAGES, negotiate, text

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 3, 23, 8, 10, tzinfo=ZONE)
BOOKABLE = "/v1/appointments/bookable"
VALIDATE, BOOK = f"{BOOKABLE}/validate", "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"

TYPED_ARG_TYPES = {
    "TIMESTAMP", "BOOLEAN", "DATE", "MONTH_DAY", "TIME", "TERM", "TERM_LIST", "INTEGER", "DECIMAL",
    "STRING", "MONEY", "LIMITABLE_CONFIG_PROPERTY", "I18N_KEY", "I18N_KEY_LIST", "PERMISSION_LIST",
    "ENUM", "AVAILABILITY_LIST",
}  # fmt: skip
ERROR_CODE = re.compile(r"errormessage(\.[a-z]+)+|[A-Z][A-Z_]+")


def pinned() -> dt.datetime:
    return NOW


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=7, clock=pinned) as sb:
        yield sb


def raw(sandbox: Sandbox, key: str | None = "default", **headers: str) -> httpx.AsyncClient:
    sent = {"X-API-KEY": sandbox.api_key if key == "default" else key} if key is not None else {}
    # Plain HTTP: the process's one TLS context spares each client loading the CA bundle (~20 ms).
    return httpx.AsyncClient(
        base_url=sandbox.base_url, headers={**sent, **headers}, verify=shared_ssl_context()
    )


def at(days: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(NOW.date() + dt.timedelta(days=days), dt.time(hour, minute), ZONE)


def wire(value: dt.datetime) -> str:
    return f"{value.isoformat(timespec='milliseconds')}[Europe/Berlin]"


def body_for(customer: int, appointment: Appointment, start: dt.datetime) -> dict[str, Any]:
    end = start + dt.timedelta(minutes=appointment.duration)
    return {
        "customerId": customer,
        "bookableAppointmentId": appointment.id,
        "startDateTime": wire(start),
        "endDateTime": wire(end),
    }


def plain(
    store: Store, *, lead: int | None = None, durations: tuple[int, ...] = (30, 45, 60, 90)
) -> Appointment:
    return next(
        a
        for a in store.appointments.values()
        if a.online
        and not a.premium_only
        and not a.requires_confirmation
        and (lead is None or a.lead_minutes == lead)
        and a.duration in durations
    )


def book(store: Store, customer: int, appointment: Appointment, start: dt.datetime) -> int:
    end = start + dt.timedelta(minutes=appointment.duration)
    return store.book(customer, appointment.id, start, end).id


def assert_error_body(answer: httpx.Response) -> dict[str, Any]:
    """The official ``ErrorResponse``: only its fields, none null, args objects, typedArgs typed."""
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, dict)
    assert set(body) <= {"errorMessage", "errorCode", "traceId", "reference", "args", "typedArgs"}, body
    assert None not in body.values(), "absent, never null"
    assert isinstance(body["errorMessage"], str)
    assert body["errorMessage"]
    assert ERROR_CODE.fullmatch(body["errorCode"]), body["errorCode"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["traceId"])
    if "reference" in body:
        assert isinstance(body["reference"], str)
        assert body["reference"]
    assert all(isinstance(item, dict) for item in body.get("args", []))
    for item in body.get("typedArgs", []):
        assert set(item) == {"value", "type"}, item
        assert item["type"] in TYPED_ARG_TYPES
    return body


# -- parameter bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "code", "bound"),
    [
        ("sliceSize", 9, "errormessage.validation.min", 10),
        ("sliceSize", 0, "errormessage.validation.min", 10),
        ("sliceSize", -5, "errormessage.validation.min", 10),
        ("sliceSize", 101, "errormessage.validation.max", 100),
        ("sliceSize", 1000, "errormessage.validation.max", 100),
        ("daysAhead", 0, "errormessage.validation.min", 1),
        ("daysAhead", 7, "errormessage.validation.max", 6),
        ("daysAhead", 92, "errormessage.validation.max", 6),
    ],
)
async def test_out_of_range_parameters_are_refused_not_clamped(
    sandbox: Sandbox, param: str, value: int, code: str, bound: int
) -> None:
    kind = code.rsplit(".", 1)[1]
    path = BOOKABLE if param == "sliceSize" else f"{BOOKABLE}/{plain(sandbox.store).id}/slots"
    async with raw(sandbox) as http:
        answer = await http.get(path, params={param: value})
    assert answer.status_code == 400, answer.text
    body = assert_error_body(answer)
    assert body["errorCode"] == code
    assert body["errorMessage"] == ("The value is too small" if kind == "min" else "The value is too large")
    assert body["reference"] == param
    assert body["args"] == [{kind: bound}]
    assert body["typedArgs"] == [{"value": bound, "type": "INTEGER"}]


async def test_the_bounds_themselves_and_the_defaults_are_served(sandbox: Sandbox) -> None:
    listed = len(sandbox.store.listed())
    appointment = plain(sandbox.store)
    async with raw(sandbox) as http:
        for size, expected in ((None, 50), (10, 10), (100, 100)):
            params = {} if size is None else {"sliceSize": size}
            answer = await http.get(BOOKABLE, params=params)
            assert answer.status_code == 200
            assert len(answer.json()["result"]) == min(expected, listed)
        for days in (1, 6):
            answer = await http.get(
                f"{BOOKABLE}/{appointment.id}/slots",
                params={"daysAhead": days, "slotWindowStartDate": "2026-03-24"},
            )
            assert answer.status_code == 200
            assert answer.json()
        # daysAhead defaults to one day: only the window's first day.
        answer = await http.get(
            f"{BOOKABLE}/{appointment.id}/slots", params={"slotWindowStartDate": "2026-03-24"}
        )
        days_seen = {slot["startDateTime"][:10] for slot in answer.json()}
        assert days_seen == {"2026-03-24"}


# -- error bodies and languages ------------------------------------------------------------------------


def _error_requests(sandbox: Sandbox) -> list[tuple[str | None, str, str, dict[str, Any], Any]]:
    """(key, method, path, params, body) for one request per kind of error the sandbox sends."""
    store = sandbox.store
    appointment = plain(store)
    key, read_only = sandbox.api_key, sandbox.read_only_api_key
    demo = store.customer_with("demo").id
    canceled = book(store, demo, appointment, at(4))
    store.cancel(canceled)
    started = next(b.id for b in store.bookings.values() if b.active and b.start < NOW)
    body = body_for(store.customer_with("idle").id, appointment, at(2))
    return [
        (None, "GET", BOOKABLE, {}, None),
        ("wrong", "GET", BOOKABLE, {}, None),
        (read_only, "POST", BOOK, {}, body),
        (key, "GET", BOOKABLE, {"sliceSize": 5}, None),
        (key, "GET", BOOKABLE, {"sliceSize": 500}, None),
        (key, "GET", BOOKABLE, {"sliceSize": "x"}, None),
        (key, "GET", BOOKABLE, {"offset": "x"}, None),
        (key, "GET", f"{BOOKABLE}/{appointment.id}/slots", {"slotWindowStartDate": "x"}, None),
        (key, "GET", BOOKINGS, {}, None),
        (key, "POST", VALIDATE, {}, "{"),
        (key, "POST", VALIDATE, {}, {**body, "startDateTime": "tomorrow"}),
        (key, "POST", VALIDATE, {}, {**body, "instructorIds": [1]}),
        (key, "POST", BOOK, {}, body),  # CUSTOMER_IDLE
        (key, "GET", f"{BOOKABLE}/1", {}, None),
        (key, "GET", f"{BOOKINGS}/1", {}, None),
        (key, "GET", BOOKINGS, {"customerId": 1}, None),
        (key, "DELETE", f"{BOOKINGS}/{canceled}", {}, None),
        (key, "DELETE", f"{BOOKINGS}/{started}", {}, None),
        (key, "GET", "/v1/no/such/thing", {}, None),
        (key, "PUT", BOOKABLE, {}, None),
    ]


async def test_every_error_has_the_official_body_in_english_and_german(sandbox: Sandbox) -> None:
    seen = set()
    for key, method, path, params, body in _error_requests(sandbox):
        answers = {}
        for language in ("en", "de"):
            async with raw(sandbox, key, **{"Accept-Language": language}) as http:
                content = body if isinstance(body, str) else None
                payload = None if isinstance(body, str) else body
                answers[language] = await http.request(
                    method, path, params=params, content=content, json=payload
                )
        en, de = answers["en"], answers["de"]
        assert en.status_code == de.status_code >= 400, (method, path, en.text)
        english, german = assert_error_body(en), assert_error_body(de)
        assert english["errorCode"] == german["errorCode"], "the code never changes with the language"
        assert english.get("reference") == german.get("reference")
        assert english["errorMessage"] != german["errorMessage"], english["errorCode"]
        assert en.headers["content-language"] == "en"
        assert de.headers["content-language"] == "de"
        seen.add(english["errorCode"])
    assert len(seen) >= 15


def test_every_message_has_a_german_text() -> None:
    for code, (english, german) in MESSAGES.items():
        assert english, code
        assert german, code
        assert english != german, code


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("de", "de"),
        ("DE", "de"),
        ("de-CH", "de-CH"),
        ("de-CH,de;q=0.9,en;q=0.8", "de-CH"),
        ("en;q=0.5, de;q=0.9", "de"),
        ("de-LI", "de-LI"),
        ("de-AT", "de"),  # not listed: its primary language is
        ("fr-LU", "fr-LU"),
        ("ja, de;q=0.1", "de"),
        ("ja", "en"),
        ("de;q=0, en", "en"),
        ("de;q=abc, fr", "fr"),
        ("*", "en"),
    ],
)
def test_accept_language_is_negotiated(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected
    assert expected in SUPPORTED_LANGUAGES


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("de", "Der Wert ist zu groß"),
        ("de-CH,de;q=0.9,en;q=0.8", "Der Wert ist zu gross"),  # Swiss spelling: no sharp s
        ("de-LI", "Der Wert ist zu gross"),
        ("en-GB", "The value is too large"),
        ("fr", "The value is too large"),  # supported, but the sandbox has no French: English
        ("xx", "The value is too large"),
    ],
)
async def test_error_messages_follow_accept_language(sandbox: Sandbox, header: str, message: str) -> None:
    async with raw(sandbox, **{"Accept-Language": header}) as http:
        answer = await http.get(BOOKABLE, params={"sliceSize": 101})
    body = assert_error_body(answer)
    assert body["errorMessage"] == message
    assert body["errorCode"] == "errormessage.validation.max"


async def test_german_refusal_keeps_the_status_as_code(sandbox: Sandbox) -> None:
    store = sandbox.store
    request = body_for(store.customer_with("no-contingent").id, plain(store), at(2))
    async with raw(sandbox, **{"Accept-Language": "de"}) as http:
        answer = await http.post(BOOK, json=request)
    body = assert_error_body(answer)
    assert answer.status_code == 400
    assert body["errorCode"] == "NO_CONTINGENT"
    assert (
        body["errorMessage"]
        == text("NO_CONTINGENT", "de")
        == "Der Kunde hat kein Kontingent mehr für diesen Termin"
    )


async def test_answers_never_carry_null(sandbox: Sandbox) -> None:
    store = sandbox.store
    demo = store.customer_with("demo").id
    bare = next(a for a in store.listed() if a.description is None and a.img_url is None)
    booking = book(store, demo, bare, at(2))

    def nulls(value: Any) -> bool:
        if isinstance(value, dict):
            return any(v is None or nulls(v) for v in value.values())
        if isinstance(value, list):
            return any(v is None or nulls(v) for v in value)
        return False

    async with raw(sandbox) as http:
        for path, params in [
            (BOOKABLE, {"sliceSize": 100}),
            (f"{BOOKABLE}/{bare.id}", {}),
            (f"{BOOKABLE}/{bare.id}/slots", {"daysAhead": 6}),
            (f"{BOOKINGS}/{booking}", {}),
            (BOOKINGS, {"customerId": demo}),
        ]:
            answer = await http.get(path, params=params)
            assert answer.status_code == 200, answer.text
            assert not nulls(answer.json()), path
    assert not nulls(json.loads(json.dumps([i.to_json() for i in store.instructors.values()])))


# -- keys, scopes, HEAD -----------------------------------------------------------------------------------


async def test_read_only_key_reads_but_may_not_book_or_cancel(sandbox: Sandbox) -> None:
    store = sandbox.store
    appointment = plain(store)
    demo = store.customer_with("demo").id
    booking = book(store, demo, appointment, at(3))
    request = body_for(demo, appointment, at(2))
    before = len(store.bookings)
    assert sandbox.read_only_api_key == "sandbox-read-only-key"
    async with raw(sandbox, sandbox.read_only_api_key) as http:
        for path, params in [
            (BOOKABLE, {}),
            (f"{BOOKABLE}/{appointment.id}", {}),
            (f"{BOOKABLE}/{appointment.id}/slots", {}),
            (f"{BOOKINGS}/{booking}", {}),
            (BOOKINGS, {"customerId": demo}),
        ]:
            assert (await http.get(path, params=params)).status_code == 200, path
        assert (await http.post(VALIDATE, json=request)).json() == {"validationStatus": "AVAILABLE"}
        refused = [await http.post(BOOK, json=request), await http.delete(f"{BOOKINGS}/{booking}")]
    for answer in refused:
        assert answer.status_code == 403
        body = assert_error_body(answer)
        assert body["errorCode"] == "errormessage.no.privilege"
        assert body["errorMessage"] == "No privilege"
        assert body["typedArgs"] == [{"value": ["APPOINTMENTS_WRITE"], "type": "PERMISSION_LIST"}]
    assert len(store.bookings) == before
    assert store.bookings[booking].active


@pytest.mark.parametrize("key", [None, "wrong", ""])
async def test_a_wrong_key_is_401_on_every_endpoint(sandbox: Sandbox, key: str | None) -> None:
    async with raw(sandbox, key) as http:
        for method, path in [
            ("GET", BOOKABLE),
            ("GET", f"{BOOKABLE}/1"),
            ("GET", f"{BOOKABLE}/1/slots"),
            ("POST", VALIDATE),
            ("POST", BOOK),
            ("GET", f"{BOOKINGS}/1"),
            ("DELETE", f"{BOOKINGS}/1"),
            ("GET", BOOKINGS),
        ]:
            answer = await http.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 401, (method, path)
            body = assert_error_body(answer)
            assert (body["errorCode"], body["errorMessage"]) == ("errormessage.unauthorized", "Unauthorized")


@pytest.mark.parametrize(
    "path",
    [
        BOOKABLE,
        f"{BOOKABLE}/1",
        f"{BOOKABLE}/not-a-number/slots",
        VALIDATE,
        BOOK,
        BOOKINGS,
        f"{BOOKINGS}/123",
        f"{BOOKINGS}/x",
    ],
)
async def test_head_checks_the_key_alone(sandbox: Sandbox, path: str) -> None:
    for key, expected in (
        (sandbox.api_key, 200),
        (sandbox.read_only_api_key, 200),  # no scope check
        ("wrong", 401),
        (None, 401),
    ):
        async with raw(sandbox, key) as http:
            answer = await http.head(path)
        assert answer.status_code == expected, (path, key)
        assert answer.content == b""


def test_keys_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="differ"):
        Sandbox(api_key="same", read_only_api_key="same")
    with pytest.raises(ValueError, match="empty"):
        Sandbox(read_only_api_key="")
    assert Sandbox(read_only_api_key=None).read_only_api_key is None


async def test_without_a_read_only_key_that_key_is_unknown() -> None:
    async with (
        Sandbox(seed=7, clock=pinned, read_only_api_key=None) as sb,
        raw(sb, "sandbox-read-only-key") as http,
    ):
        assert (await http.get(BOOKABLE)).status_code == 401


# -- the rate limit -------------------------------------------------------------------------------------


async def test_rate_limit_locks_one_endpoint_for_the_span() -> None:
    ids_endpoint = "GET /v1/appointments/bookable/{bookableAppointmentId}"
    async with Sandbox(seed=7, clock=pinned, rate_limit=(5, 1.0)) as sb, raw(sb) as http:
        # The limiter on the test's clock (a private hook: Sandbox takes no clock for it), so that
        # the span passes when the test moves the time, not in real time.
        now = [time.monotonic()]
        sb.rate_limiter._clock = lambda: now[0]
        ids = [a.id for a in sb.store.listed()[:8]]
        # One counter for the route, whatever the id in the path.
        statuses = [(await http.get(f"{BOOKABLE}/{i}")).status_code for i in ids[:5]]
        assert statuses == [200] * 5
        limited = await http.get(f"{BOOKABLE}/{ids[5]}", headers={"Accept-Language": "de"})
        assert limited.status_code == 429
        assert "retry-after" not in limited.headers
        assert not any(h.startswith("x-ratelimit") for h in limited.headers)
        body = limited.json()
        assert set(body) == {"errorMessage", "errorCode", "traceId"}
        assert body["errorCode"] == "errormessage.rate.limit.exceeded"
        assert body["errorMessage"] == "Anfragelimit überschritten"
        now[0] += 0.25
        english = await http.get(f"{BOOKABLE}/{ids[6]}")
        assert english.status_code == 429
        assert english.json()["errorMessage"] == "Rate limit exceeded"
        # The span runs from the request that went over, not from the latest refused one.
        remaining = sb.rate_limiter.lockout_remaining(sb.api_key, ids_endpoint)
        assert 0 < remaining <= 1.0
        assert remaining == pytest.approx(0.75)

        # Other endpoints keep answering, and another key has its own counters.
        assert (await http.get(BOOKABLE)).status_code == 200
        async with raw(sb, sb.read_only_api_key) as other:
            assert (await other.get(f"{BOOKABLE}/{ids[0]}")).status_code == 200

        stats = sb.stats
        assert stats["rate_limited"] == 2
        assert stats["rate_limited_by_endpoint"] == {ids_endpoint: 2}
        assert stats["requests_by_endpoint"][ids_endpoint] == 8
        assert stats["requests_by_endpoint"]["GET /v1/appointments/bookable"] == 1
        served = (await http.get("/_sandbox/stats")).json()
        assert served["rate_limited"] == 2
        assert served["rate_limited_by_endpoint"] == {ids_endpoint: 2}

        now[0] += 0.75  # the span has passed
        assert sb.rate_limiter.lockout_remaining(sb.api_key, ids_endpoint) == 0
        assert (await http.get(f"{BOOKABLE}/{ids[7]}")).status_code == 200
        assert sb.stats["rate_limited"] == 2


async def test_rate_limit_can_be_switched_off_and_changed_while_running() -> None:
    async with Sandbox(seed=7, clock=pinned, rate_limit=None) as sb, raw(sb) as http:
        assert sb.rate_limit is None
        statuses = {(await http.get(BOOKABLE)).status_code for _ in range(30)}
        assert statuses == {200}
        sb.rate_limit = (2, 30.0)
        statuses = {(await http.get(BOOKABLE)).status_code for _ in range(3)}
        assert statuses == {200, 429}
        sb.rate_limit = None
        assert (await http.get(BOOKABLE)).status_code == 200
        assert sb.stats["requests_by_endpoint"]["GET /v1/appointments/bookable"] == 34


def test_default_rate_limit_is_the_apis_1000_a_minute() -> None:
    assert Sandbox().rate_limit == (1_000, 60.0)
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    endpoint = "GET /v1/appointments/bookable"
    for n in range(1_000):
        now[0] = n * 0.05  # 1,000 requests within 50 seconds
        assert limiter.admit("key", endpoint)
    now[0] = 50.0
    assert not limiter.admit("key", endpoint), "the 1,001st within a minute"
    assert limiter.admit("key", "POST /v1/appointments/booking/book"), "other endpoints count apart"
    assert limiter.admit("other-key", endpoint), "other keys count apart"
    now[0] = 109.9
    assert not limiter.admit("key", endpoint), "locked for the whole minute after"
    now[0] = 110.0
    assert limiter.admit("key", endpoint)
    assert limiter.rate_limited[endpoint] == 2


def test_rate_limit_is_checked_when_made() -> None:
    for bad in [(0, 60.0), (10, 0.0), (10, -1.0), (True, 1.0)]:
        with pytest.raises(ValueError, match="rate_limit"):
            Sandbox(rate_limit=bad)  # type: ignore[arg-type]


# -- 409: concurrent modification -----------------------------------------------------------------------


async def test_two_cancels_at_once_one_wins_one_gets_409() -> None:
    async with Sandbox(seed=7, clock=pinned, write_latency=0.3) as sb, raw(sb) as http:
        store = sb.store
        appointment = plain(store)
        customer = store.customer_with("demo")
        booking = book(store, customer.id, appointment, at(2))
        credits = customer.contingent[appointment.category]
        answers: list[httpx.Response] = []

        async def cancel() -> None:
            answers.append(await http.delete(f"{BOOKINGS}/{booking}"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel)
            tg.start_soon(cancel)
        assert {a.status_code for a in answers} == {200, 409}
        conflict = next(a for a in answers if a.status_code == 409)
        body = assert_error_body(conflict)
        assert body["errorCode"] == "errormessage.concurrent.modification"
        assert body["errorMessage"] == "The entity was modified by another request"
        assert store.bookings[booking].status == "CANCELED"
        assert customer.contingent[appointment.category] == credits + 1, "the credit came back once"
        # Once the first is done the booking is free again: a third cancel meets the rule, not a lock.
        again = await http.delete(f"{BOOKINGS}/{booking}")
        assert again.status_code == 400
        assert again.json()["errorCode"] == "errormessage.appointment.booking.already.canceled"


def test_write_latency_is_checked() -> None:
    with pytest.raises(ValueError, match="write_latency"):
        Sandbox(write_latency=-1)


async def test_cancelling_a_started_booking_is_400() -> None:
    now = [NOW]
    async with Sandbox(seed=7, clock=lambda: now[0]) as sb, raw(sb, **{"Accept-Language": "de"}) as http:
        store = sb.store
        booking = book(store, store.customer_with("demo").id, plain(store), at(1))
        now[0] = at(1, 9, 1)
        answer = await http.delete(f"{BOOKINGS}/{booking}")
    assert answer.status_code == 400
    body = assert_error_body(answer)
    assert body["errorCode"] == "errormessage.appointment.booking.already.started"
    assert body["errorMessage"] == f"Die Terminbuchung {booking} hat bereits begonnen"
    assert store.bookings[booking].active


# -- the bookings list window -----------------------------------------------------------------------------


async def test_bookings_list_holds_only_the_four_weeks_around_now() -> None:
    now = [NOW]
    async with Sandbox(seed=7, clock=lambda: now[0]) as sb, raw(sb) as http:
        store = sb.store
        customer = store.add_customer().id
        appointment = plain(store, durations=(60,))
        canceled = book(store, customer, appointment, at(5))  # Saturday
        store.cancel(canceled)
        inside = book(store, customer, appointment, at(12))  # Saturday
        edge = book(store, customer, appointment, at(14))  # Monday, 09:00-10:00 summer time
        outside = book(store, customer, appointment, at(16))  # Wednesday

        async def listed() -> dict[int, str]:
            answer = await http.get(BOOKINGS, params={"customerId": customer})
            assert answer.status_code == 200
            return {b["bookingId"]: b["bookingStatus"] for b in answer.json()}

        # NOW is winter time, the edge booking summer time: the window is measured in instants.
        assert await listed() == {inside: "BOOKED", canceled: "CANCELED"}
        edge_end = (at(14) + dt.timedelta(hours=1)).astimezone(dt.UTC)
        now[0] = edge_end - dt.timedelta(days=14, minutes=1)  # it starts inside the window, ends outside
        assert edge not in await listed()
        now[0] = edge_end - dt.timedelta(days=14)  # it ends exactly at the window's end
        assert await listed() == {inside: "BOOKED", canceled: "CANCELED", edge: "BOOKED"}
        now[0] = at(28, 10)  # the window now starts at 10:00 on the edge booking's day
        assert await listed() == {outside: "BOOKED"}
        now[0] = at(30, 9)  # starts exactly at the window's start
        assert await listed() == {outside: "BOOKED"}
        now[0] = at(30, 9, 1)
        assert await listed() == {}


# -- booking horizon and lead time ------------------------------------------------------------------------


async def test_booking_horizon_is_28_days_in_instants(sandbox: Sandbox) -> None:
    store = sandbox.store
    appointment = plain(store, durations=(30, 60))
    customer = store.customer_with("demo").id
    # NOW + 28 days is 2026-04-20 08:10 in winter time, i.e. 09:10 in summer time: 09:00 (summer)
    # is inside the horizon, 10:00 past it. Comparing wall clocks would refuse 09:00.
    async with raw(sandbox) as http:
        inside = await http.post(VALIDATE, json=body_for(customer, appointment, at(28, 9)))
        past = await http.post(VALIDATE, json=body_for(customer, appointment, at(28, 10)))
        slots = await http.get(
            f"{BOOKABLE}/{appointment.id}/slots", params={"slotWindowStartDate": "2026-04-19", "daysAhead": 3}
        )
    assert inside.json() == {"validationStatus": "AVAILABLE"}
    assert past.json() == {"validationStatus": "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME"}
    starts = [dt.datetime.fromisoformat(s["startDateTime"].split("[")[0]) for s in slots.json()]
    assert starts, "the last day of the horizon has slots"
    assert max(starts) <= NOW.astimezone(dt.UTC) + dt.timedelta(days=28)
    assert max(starts) == dt.datetime(2026, 4, 20, 9, tzinfo=ZONE)


@pytest.mark.parametrize("lead", [0, 60, 120])
async def test_slots_leave_out_the_lead_time(sandbox: Sandbox, lead: int) -> None:
    store = sandbox.store
    appointment = plain(store, lead=lead, durations=(30, 60))
    async with raw(sandbox) as http:
        slots = (await http.get(f"{BOOKABLE}/{appointment.id}/slots")).json()
        first = dt.datetime.fromisoformat(slots[0]["startDateTime"].split("[")[0])
        assert first >= NOW + dt.timedelta(minutes=lead)
        assert first - NOW < dt.timedelta(minutes=lead + appointment.duration), "nothing left out beyond it"
        # The slot before the first listed one is too soon (or past) for the rules too.
        before = first - dt.timedelta(minutes=appointment.duration)
        status = (
            await http.post(VALIDATE, json=body_for(sandbox.demo_customer_id, appointment, before))
        ).json()
    expected = "PAST_START_DATE_TIME" if before <= NOW else "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME"
    assert status == {"validationStatus": expected}


# -- appointments not bookable online -----------------------------------------------------------------


async def test_an_appointment_switched_off_for_online_booking(sandbox: Sandbox) -> None:
    store = sandbox.store
    offline = store.offline_appointment()
    demo = sandbox.demo_customer_id
    async with raw(sandbox) as http:
        listed: list[int] = []
        offset = "0"
        while True:
            page = (await http.get(BOOKABLE, params={"offset": offset, "sliceSize": 100})).json()
            listed += [a["id"] for a in page["result"]]
            offset = page["offset"]
            if not page["hasNext"]:
                break
        assert offline.id not in listed
        assert len(listed) == len(store.appointments) - sum(not a.online for a in store.appointments.values())
        one = await http.get(f"{BOOKABLE}/{offline.id}")
        assert one.status_code == 200
        assert one.json()["title"] == offline.title
        slots = await http.get(f"{BOOKABLE}/{offline.id}/slots", params={"daysAhead": 6})
        assert slots.status_code == 200
        assert slots.json() == []
        request = body_for(demo, offline, at(2))
        assert (await http.post(VALIDATE, json=request)).json() == {"validationStatus": "NOT_AVAILABLE"}
        booked = await http.post(BOOK, json=request)
    assert booked.status_code == 400
    assert assert_error_body(booked)["errorCode"] == "NOT_AVAILABLE"


# -- the demo customer ------------------------------------------------------------------------------------


async def test_the_demo_customer_is_1210005199(sandbox: Sandbox) -> None:
    assert sandbox.demo_customer_id == DEMO_CUSTOMER_ID == 1210005199
    appointment = plain(sandbox.store)
    async with raw(sandbox) as http:
        slots = (
            await http.get(
                f"{BOOKABLE}/{appointment.id}/slots", params={"customerId": DEMO_CUSTOMER_ID, "daysAhead": 6}
            )
        ).json()
        assert len(slots) > 50, "the demo customer has plenty to choose from"
        assert (await http.get(BOOKINGS, params={"customerId": DEMO_CUSTOMER_ID})).status_code == 200


# -- faults -----------------------------------------------------------------------------------------------


async def test_fault_409_changes_nothing(sandbox: Sandbox) -> None:
    store = sandbox.store
    appointment = plain(store)
    demo = sandbox.demo_customer_id
    booking = book(store, demo, appointment, at(3))
    before = len(store.bookings)
    sandbox.faults = Faults(rate_409=1.0)
    async with raw(sandbox) as http:
        booked = await http.post(BOOK, json=body_for(demo, appointment, at(2)))
        canceled = await http.delete(f"{BOOKINGS}/{booking}")
        read = await http.get(f"{BOOKINGS}/{booking}")
    for answer in (booked, canceled):
        assert answer.status_code == 409
        assert assert_error_body(answer)["errorCode"] == "errormessage.concurrent.modification"
    assert read.status_code == 200, "reads are never answered 409"
    assert len(store.bookings) == before
    assert store.bookings[booking].active
    assert sandbox.fault_counts["409"] == 2


# -- the extra ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_importing_the_sandbox_without_its_extra_says_how_to_get_it(missing: str) -> None:
    code = f"import sys; sys.modules[{missing!r}] = None; import perfectgym_appointments_client.sandbox"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: the sandbox needs its extra: pip install 'perfectgym-appointments-client[cli]'"
        f" (missing: {missing})"
    )
    assert "ModuleNotFoundError" not in done.stderr
