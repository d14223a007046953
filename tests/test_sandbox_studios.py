"""Many studios at once (``Studios``): one server, a port per studio, each studio with its own key,
data, limits, rate limit, faults and stats, reached over real sockets. Also the stricter limits a
single ``Sandbox`` takes (``max_days_ahead``, ``max_slice_size``, ``limits_in_typed_args``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client.sandbox import (
    DEMO_CUSTOMER_ID,
    Faults,
    Sandbox,
    Studio,
    Studios,
    StudioSettings,
    create_app,
)

BOOKABLE = "/v1/appointments/bookable"
MAX = "errormessage.validation.max"


def get(studio: Studio | Sandbox, path: str, *, key: str | None = None, **params: Any) -> httpx.Response:
    headers = {"X-API-KEY": studio.api_key if key is None else key}
    return httpx.get(f"{studio.base_url}{path}", headers=headers, params=params, timeout=10)


def slots_path(studio: Studio | Sandbox) -> str:
    return f"{BOOKABLE}/{studio.store.open_gym().id}/slots"


@pytest.fixture(scope="module")
def three() -> Iterator[Studios]:
    with Studios(3, rate_limit=None) as studios:
        yield studios


@pytest.fixture(scope="module")
def varied() -> Iterator[Studios]:
    with Studios.varied(7) as studios:
        yield studios


def test_each_studio_answers_its_own_key_with_its_own_data(three: Studios) -> None:
    assert len(three) == 3
    assert list(three) == [three[0], three[1], three[2]]
    assert three.base_urls == [studio.base_url for studio in three]
    assert len({studio.port for studio in three}) == 3
    listed = []
    for index, studio in enumerate(three):
        assert studio.index == index
        assert studio.name == f"studio-{index:03d}"
        assert studio.api_key == f"studio-{index}-key"
        assert studio.read_only_api_key is None
        assert studio.base_url == f"http://127.0.0.1:{studio.port}"
        assert studio.store.seed == 42 + index
        assert studio.demo_customer_id == DEMO_CUSTOMER_ID
        answer = get(studio, BOOKABLE)
        assert answer.status_code == 200, answer.text
        ids = [item["id"] for item in answer.json()["result"]]
        assert ids == [appointment.id for appointment in studio.store.listed()]
        listed.append(ids)
    assert listed[0] != listed[1] != listed[2], "each studio is seeded on its own"


def test_a_key_of_another_studio_gets_401(three: Studios) -> None:
    first, second = three[0], three[1]
    answer = get(first, BOOKABLE, key=second.api_key)
    assert answer.status_code == 401
    assert answer.json()["errorCode"] == "errormessage.unauthorized"
    head = httpx.head(f"{first.base_url}{BOOKABLE}", headers={"X-API-KEY": second.api_key})
    assert head.status_code == 401
    head = httpx.head(f"{second.base_url}{BOOKABLE}", headers={"X-API-KEY": second.api_key})
    assert head.status_code == 200


def test_the_keys_stay_out_of_the_reprs(three: Studios) -> None:
    for text in (repr(three), *map(repr, three)):
        assert "-key" not in text
    assert repr(three[1]).startswith("Studio('studio-001', base_url='http://127.0.0.1:")
    assert repr(three) == "Studios(3 studios on 127.0.0.1, free ports, seed=42)"


@pytest.mark.anyio
async def test_the_facade_books_in_one_studio_only(three: Studios) -> None:
    first, second = three[0], three[1]
    async with AppointmentsClient(api_key=first.api_key, base_url=first.base_url) as client:
        slots = await client.get_slots(
            first.store.open_gym().id, customer_id=first.demo_customer_id, days_ahead=3
        )
        booking = await client.book(
            customer_id=first.demo_customer_id,
            bookable_appointment_id=first.store.open_gym().id,
            slot=slots[-1],
        )
    assert booking.booking_id in first.store.bookings
    assert booking.booking_id not in second.store.bookings


def test_stats_are_per_studio(three: Studios) -> None:
    before = [studio.stats["requests"] for studio in three]
    for _ in range(3):
        assert get(three[2], BOOKABLE).status_code == 200
    after = [studio.stats["requests"] for studio in three]
    assert after[2] - before[2] == 3
    assert after[:2] == before[:2]
    served = httpx.get(f"{three[2].base_url}/_sandbox/stats").json()
    assert served["requests_by_endpoint"] == three[2].stats["requests_by_endpoint"]
    assert served["requests"] == after[2] + 1  # the stats request itself


# -- per-studio limits ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict() -> Iterator[Studios]:
    settings = {
        0: StudioSettings(max_days_ahead=3, max_slice_size=50),
        1: StudioSettings(max_days_ahead=3, max_slice_size=50, limits_in_typed_args=False),
    }
    with Studios(3, rate_limit=None, settings=settings) as studios:
        yield studios


@pytest.mark.parametrize(("param", "value", "bound"), [("daysAhead", 4, 3), ("sliceSize", 51, 50)])
def test_a_studio_stricter_than_the_api_refuses_past_its_own_limit(
    strict: Studios, param: str, value: int, bound: int
) -> None:
    studio = strict[0]
    path = slots_path(studio) if param == "daysAhead" else BOOKABLE
    answer = get(studio, path, **{param: value})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["errorCode"] == MAX
    assert body["reference"] == param
    assert body["args"] == [{"max": bound}]
    assert body["typedArgs"] == [{"value": bound, "type": "INTEGER"}]
    assert get(studio, path, **{param: bound}).status_code == 200  # its limit itself is fine
    other = strict[2]  # the others keep the API's bounds
    assert get(other, slots_path(other) if param == "daysAhead" else BOOKABLE, **{param: value}).is_success


@pytest.mark.parametrize(("param", "value", "code"), [("daysAhead", 6, MAX), ("sliceSize", 100, MAX)])
def test_a_studio_may_leave_its_limit_out_of_the_refusal(
    strict: Studios, param: str, value: int, code: str
) -> None:
    studio = strict[1]
    path = slots_path(studio) if param == "daysAhead" else BOOKABLE
    answer = get(studio, path, **{param: value})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["errorCode"], body["reference"]) == (code, param)
    assert body["args"] == []
    assert body["typedArgs"] == []
    below = get(studio, slots_path(studio), daysAhead=0).json()  # the minimum's refusal too
    assert (below["errorCode"], below["typedArgs"], below["args"]) == ("errormessage.validation.min", [], [])


def test_a_sandbox_takes_the_limits_and_changes_them_while_running() -> None:
    with Sandbox(seed=3, rate_limit=None, max_days_ahead=3, max_slice_size=20) as sb:
        assert (sb.max_days_ahead, sb.max_slice_size, sb.limits_in_typed_args) == (3, 20, True)
        page = get(sb, BOOKABLE).json()
        assert len(page["result"]) == 20, "a default sliceSize above the limit comes down to it"
        assert page["hasNext"]
        answer = get(sb, slots_path(sb), daysAhead=6)
        assert answer.status_code == 400
        assert answer.json()["typedArgs"] == [{"value": 3, "type": "INTEGER"}]
        sb.max_days_ahead = 6
        assert get(sb, slots_path(sb), daysAhead=6).status_code == 200
        sb.max_slice_size = 10
        sb.limits_in_typed_args = False
        answer = get(sb, BOOKABLE, sliceSize=11)
        assert answer.status_code == 400
        assert (answer.json()["errorCode"], answer.json()["typedArgs"]) == (MAX, [])
        strict = Studios(1)
        strict[0].max_days_ahead = 2
        assert strict[0].max_days_ahead == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_days_ahead", 0), ("max_days_ahead", 7), ("max_days_ahead", True), ("max_days_ahead", 2.0),
     ("max_slice_size", 9), ("max_slice_size", 101)],
)  # fmt: skip
def test_the_limits_are_checked_wherever_they_are_set(name: str, value: Any) -> None:
    match = f"{name} must be a whole number from"
    with pytest.raises(ValueError, match=match):
        Sandbox(**{name: value})
    with pytest.raises(ValueError, match=match):
        StudioSettings(**{name: value})
    sb = Sandbox()
    with pytest.raises(ValueError, match=match):
        setattr(sb, name, value)
    with pytest.raises(ValueError, match=match):
        create_app(sb.store, "key", **{name: value})


# -- faults and rate limits stay in their studio ----------------------------------------------------


def test_a_down_studio_answers_503_while_the_others_answer(varied: Studios) -> None:
    statuses = [get(studio, BOOKABLE).status_code for studio in varied if studio.role != "slow"]
    assert statuses == [200, 200, 200, 503, 200, 200]
    assert varied[3].fault_counts["503"] >= 1
    assert varied[0].fault_counts == {}


def test_a_studios_rate_limit_locks_only_that_studio() -> None:
    with Studios(2, rate_limit=(2, 60.0), settings={1: StudioSettings(rate_limit=(3, 60.0))}) as studios:
        first, second = studios
        assert [get(first, BOOKABLE).status_code for _ in range(3)] == [200, 200, 429]
        assert first.rate_limiter.lockout_remaining(first.api_key, f"GET {BOOKABLE}") > 50
        assert [get(second, BOOKABLE).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert (first.stats["rate_limited"], second.stats["rate_limited"]) == (1, 1)
        first.rate_limit = None  # settable: counting starts afresh
        assert get(first, BOOKABLE).status_code == 200
        assert get(second, BOOKABLE).status_code == 429


def test_faults_are_settable_per_studio(three: Studios) -> None:
    three[1].faults = Faults(rate_503=1.0)
    try:
        assert [get(studio, BOOKABLE).status_code for studio in three] == [200, 503, 200]
    finally:
        three[1].faults = Faults()


def test_the_varied_mix_has_its_roles() -> None:
    studios = Studios.varied(8)
    assert [studio.role for studio in studios] == [*Studios.VARIED_ROLES, "ordinary", "ordinary"]
    assert list(Studios.VARIED_ROLES) == [
        "ordinary", "days-ahead max 3", "slice-size max 50", "down", "slow", "rate-limited",
    ]  # fmt: skip
    assert (studios[1].max_days_ahead, studios[2].max_slice_size) == (3, 50)
    assert studios[3].faults == Faults(rate_503=1.0)
    assert studios[4].faults == Faults(latency=1.0)
    assert studios[5].rate_limit == (60, 60.0)
    assert studios[6].rate_limit == (1000, 60.0)
    mine = Studios.varied(6, settings={0: StudioSettings(limits_in_typed_args=False)}, seed=7)
    assert mine[0].role == "no limits in typedArgs"
    assert mine[0].store.seed == 7
    with pytest.raises(ValueError, match="at least 6 studios"):
        Studios.varied(5)


def test_a_role_says_what_sets_a_studio_apart() -> None:
    assert StudioSettings().role == "ordinary"
    assert "rate_limit=INHERIT" in repr(StudioSettings())  # not given: the Studios' own
    assert StudioSettings(rate_limit=None).role == "no rate limit"
    assert StudioSettings(faults=Faults(rate_reset=0.1)).role == "faulty"
    both = StudioSettings(max_days_ahead=2, faults=Faults(rate_503=1.0, latency=0.5))
    assert both.role == "days-ahead max 2, down, slow"


def test_studios_check_their_options() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Studios(0)
    with pytest.raises(ValueError, match=r"settings for studios \[3\]"):
        Studios(3, settings={3: StudioSettings()})
    with pytest.raises(ValueError, match="past 65535"):
        Studios(3, port=65534)
    with pytest.raises(ValueError, match="rate_limit"):
        Studios(2, rate_limit=(0, 60.0))
    with pytest.raises(ValueError, match="rate_limit"):
        StudioSettings(rate_limit=(5, 0.0))


# -- serving -------------------------------------------------------------------------------------


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts file descriptors in /proc")
def test_two_hundred_studios_start_and_stop_leaving_nothing_behind() -> None:
    threads, files = set(threading.enumerate()), fds()
    began = time.monotonic()
    studios = Studios(200, rate_limit=None)
    with studios:
        started = time.monotonic() - began
        assert fds() >= files + 200  # a listening socket each
        ports = {studio.port for studio in studios}
        assert len(ports) == 200
        with httpx.Client(timeout=10) as http:
            for studio in studios[0], studios[99], studios[199]:
                answer = http.get(f"{studio.base_url}{BOOKABLE}", headers={"X-API-KEY": studio.api_key})
                assert answer.status_code == 200
    assert started < 10, f"Studios(200) took {started:.1f} s to start"
    assert set(threading.enumerate()) <= threads
    # At most as many as before: the module's other servers may have closed connections meanwhile.
    assert fds() <= files
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", studios[7].port), 2):
        pass


@pytest.mark.anyio
async def test_async_with_serves_beside_the_event_loop() -> None:
    async with Studios(2) as studios:
        for studio in studios:
            async with AppointmentsClient(api_key=studio.api_key, base_url=studio.base_url) as client:
                assert await client.check_api_key()
        with pytest.raises(RuntimeError, match="this set of studios is running already"):
            studios.start()


def test_consecutive_ports_from_a_port_in_use_free_what_was_bound() -> None:
    # A busy port with a free one below it: the first studio binds, the second cannot.
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            busy_port = probe.getsockname()[1]
        try:
            with socket.socket() as below:
                below.bind(("127.0.0.1", busy_port - 1))
        except OSError:
            continue
        busy = socket.socket()
        try:
            busy.bind(("127.0.0.1", busy_port))
        except OSError:
            busy.close()
            continue
        with busy:
            busy.listen()
            studios = Studios(2, port=busy_port - 1)
            assert (
                repr(studios)
                == f"Studios(2 studios on 127.0.0.1, ports {busy_port - 1}-{busy_port}, seed=42)"
            )
            with pytest.raises(OSError, match="in use"):
                studios.start()
        with socket.socket() as again:
            again.bind(("127.0.0.1", busy_port - 1))  # released by the failed start
        with studios:  # both free now: it starts, on its ports
            assert [studio.port for studio in studios] == [busy_port - 1, busy_port]
            assert get(studios[1], BOOKABLE).status_code == 200
        return
    pytest.skip("found no free port below a free one")


def test_too_few_file_descriptors_say_so() -> None:
    script = textwrap.dedent(
        """
        import os, resource
        from perfectgym_appointments_client.sandbox import Studios
        studios = Studios(100)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        try:
            studios.start()
        except OSError as exc:
            print(exc)
        print(len(os.listdir("/proc/self/fd")) < 30)
        """
    )
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counts file descriptors in /proc")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    message, closed = done.stdout.splitlines()
    assert "Too many open files" in message
    assert "100 studios need a file descriptor each" in message
    assert "ulimit -n" in message
    assert closed == "True", "the sockets bound before are closed"
