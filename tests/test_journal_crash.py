"""A booking outlives its process (issue 29), tested as deployed: a real child process books
through the sandbox with a booking journal, is SIGKILLed while its booking request is held at the
server, and the booking is then made; a new process recovers it, reported once, as booked, with
the sandbox's id, also when two processes recover at once. And resubmits answered from the
journal, beyond the bookings list's window, in the same process and after a restart."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from perfectgym_appointments_client import (
    AppointmentsClient,
    BookingOutcome,
    OutcomeKind,
    SlotNotBookableError,
)
from perfectgym_appointments_client.sandbox import Faults, Sandbox

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
BOOK = "/v1/appointments/booking/book"

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import anyio
    from perfectgym_appointments_client import AppointmentsClient, SlotNotBookableError

    async def main():
        args = json.loads(os.environ["ARGS"])
        async with AppointmentsClient(journal=os.environ["JOURNAL"], http_backend=os.environ["BACKEND"],
                                      timeout=60) as client:
            if args.get("recover"):
                found = await client.recover()
                print(json.dumps([[o.operation, o.kind.value, o.booking_id, o.recovered] for o in found]))
                return
            slots = await client.get_slots(args["appointment"], customer_id=args["customer"], days_ahead=3,
                                           start_date=__import__("datetime").date.fromisoformat(args["day"]))
            print("booking", flush=True)
            booking = await client.book(customer_id=args["customer"], bookable_appointment_id=args["appointment"],
                                        slot=slots[0])
            print(json.dumps({"booking_id": booking.booking_id}), flush=True)

    anyio.run(main)
    """
)


def _journal_url(kind: str, tmp_path: Path, redis_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bookings.db'}"
    assert redis_url is not None
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def _journal_bytes(kind: str, tmp_path: Path, redis_url: str | None) -> bytes:
    """Everything the journal holds, as bytes: the SQLite files (WAL included), or every Redis
    key and value."""
    if kind == "sqlite":
        return b"".join(path.read_bytes() for path in tmp_path.glob("bookings.db*"))
    import redis

    connection = redis.Redis.from_url(redis_url or "")
    held = b""
    for key in connection.scan_iter(count=1000):
        held += key
        kind_of = connection.type(key)
        if kind_of == b"hash":
            held += b"".join(k + v for k, v in connection.hgetall(key).items())
        elif kind_of == b"set":
            held += b"".join(connection.smembers(key))
        elif kind_of == b"zset":
            held += b"".join(connection.zrange(key, 0, -1))
    return held


# The booking request's body is read before it is handled (the slow-commit fault reads it first,
# here with no wait of its own): once its process has died the booking can still land, as a slow
# database's would. HeldBooking holds it at the server meanwhile.
BODY_READ_FIRST = Faults(rate_slow_commit=1.0, slow_commit_seconds=0)


class HeldBooking:
    """The sandbox's ``on_request``: holds the booking request at the server (``arrived``) until
    :meth:`release`, and tells when the sandbox has made (committed) the booking."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.committed = threading.Event()
        self._released = threading.Event()

    async def __call__(self, phase: str, method: str, path: str) -> None:  # in the sandbox's loop
        if (method, path) != ("POST", BOOK):
            return
        if phase == "received":
            self.arrived.set()
            await anyio.to_thread.run_sync(self._released.wait, 60)
        elif phase == "committed":
            self.committed.set()

    def release(self) -> None:
        self._released.set()


async def _kill_once_held(child: anyio.abc.Process, held: HeldBooking, sb: Sandbox) -> None:
    """SIGKILL ``child`` once its booking request is held at the server (its body read)."""
    try:
        assert await anyio.to_thread.run_sync(held.arrived.wait, 30), "the booking never reached the server"
        assert sb.fault_counts["slow_commit"] == 1  # its body was read first
        assert not held.committed.is_set()
    finally:
        child.send_signal(signal.SIGKILL)  # the worker dies with its booking at the server
        await child.wait()


def _bookable(sb: Sandbox) -> Any:
    return next(a for a in sb.store.listed() if not a.premium_only and not a.requires_confirmation)


def _env(sb: Sandbox, journal: str, backend: str, **args: Any) -> dict[str, str]:
    return {
        **os.environ, "PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key,
        "JOURNAL": journal, "BACKEND": backend, "ARGS": json.dumps(args),
    }  # fmt: skip


@pytest.fixture(params=["sqlite", "redis"])
def journal_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the processes run their own loops
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_a_booking_whose_process_is_killed_at_the_server_is_recovered_once_as_booked(
    tmp_path: Path, backend: str, journal_kind: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if journal_kind == "redis" else None
    journal = _journal_url(journal_kind, tmp_path, redis_url)
    # The booking request is held at the server before it is handled (its body read already):
    # the worker is killed then, and the booking lands after it died, as with a slow database.
    held = HeldBooking()
    with Sandbox(faults=BODY_READ_FIRST, on_request=held) as sb:
        customer = sb.store.add_customer().id
        appointment = _bookable(sb)
        day = (sb.store.now().date() + dt.timedelta(days=3)).isoformat()
        env = _env(sb, journal, backend, customer=customer, appointment=appointment.id, day=day)
        child = await anyio.open_process([sys.executable, "-c", _CHILD], env=env)
        try:
            await _kill_once_held(child, held, sb)
        finally:
            held.release()
        assert await anyio.to_thread.run_sync(held.committed.wait, 30)
        sb.faults = Faults()
        [made] = [b for b in sb.store.snapshot() if b.customer_id == customer and b.active]

        # Two processes recover at the same time: the booking is reported once, by one of them.
        outputs: list[str] = []

        async def recover() -> None:
            result = await anyio.run_process(
                [sys.executable, "-c", _CHILD], env=_env(sb, journal, backend, recover=True), check=False
            )
            assert result.returncode == 0, result.stderr.decode()
            outputs.append(result.stdout.decode().strip().splitlines()[-1])

        async with anyio.create_task_group() as tg:
            tg.start_soon(recover)
            tg.start_soon(recover)
        reported = [entry for output in outputs for entry in json.loads(output)]
        assert reported == [["book", "booked", made.id, True]]
        # And once only: a later recovery finds nothing left.
        outcomes: list[BookingOutcome] = []
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, journal=journal, on_booking_outcome=outcomes.append
        ) as client:
            assert await client.recover() == []
            assert await client.pending_bookings() == []
        assert outcomes == []


async def test_a_resubmit_beyond_the_list_window_is_answered_from_the_journal_and_after_a_restart(
    tmp_path: Path, journal_kind: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if journal_kind == "redis" else None
    journal = _journal_url(journal_kind, tmp_path, redis_url)
    async with Sandbox() as sb:
        customer = sb.store.add_customer().id
        appointment = _bookable(sb)
        three_weeks = sb.store.now().date() + dt.timedelta(days=21)
        outcomes: list[BookingOutcome] = []
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, journal=journal, on_booking_outcome=outcomes.append
        ) as client:
            slot = (
                await client.get_slots(
                    appointment.id, customer_id=customer, days_ahead=3, start_date=three_weeks
                )
            )[0]
            first = await client.book(customer_id=customer, bookable_appointment_id=appointment.id, slot=slot)
            again = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
            )  # the member presses "book" again
        assert again.booking_id == first.booking_id
        assert again.already_existed
        # Without a journal, the same resubmit is refused (the list does not show three weeks ahead).
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as plain:
            with pytest.raises(SlotNotBookableError, match="CUSTOMER_IN_OTHER_BOOKING"):
                await plain.book(customer_id=customer, bookable_appointment_id=appointment.id, slot=slot)
        # After a restart (a new client on the same journal): answered from it too.
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, journal=journal) as restarted:
            after = await restarted.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
            )
            assert (after.booking_id, after.already_existed) == (first.booking_id, True)
            # Canceled meanwhile, the book goes ahead as new.
            assert await restarted.cancel_booking(first.booking_id)
            assert await restarted.cancel_booking(first.booking_id) == "already canceled"  # from the journal
            anew = await restarted.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
            )
            assert anew.booking_id != first.booking_id
            assert not anew.already_existed
        active = [b.id for b in sb.store.snapshot() if b.customer_id == customer and b.active]
        assert active == [anew.booking_id]
        held = _journal_bytes(journal_kind, tmp_path, redis_url)
        assert sb.base_url.encode() in held  # what it holds is read here (its entries name the studio)...
        assert sb.api_key.encode() not in held  # ...and the key is never written
        assert [o.kind for o in outcomes] == [OutcomeKind.BOOKED]  # the resubmit booked and reported nothing


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_recovery_while_the_dead_process_booking_is_still_at_the_server_leaves_it_pending(
    tmp_path: Path, anyio_backend: str
) -> None:
    # Recovering at once (a pod restarted within seconds): the bookings list does not show the
    # booking yet, and "not booked" would be final and wrong. It stays pending until it is made,
    # or until it is older than a request can be at the server.
    journal = _journal_url("sqlite", tmp_path, None)
    held = HeldBooking()  # released only once the test is done: the booking stays at the server
    with Sandbox(faults=BODY_READ_FIRST, on_request=held) as sb, contextlib.ExitStack() as on_exit:
        on_exit.callback(held.release)
        customer = sb.store.add_customer().id
        appointment = _bookable(sb)
        day = (sb.store.now().date() + dt.timedelta(days=3)).isoformat()
        env = _env(sb, journal, "httpx", customer=customer, appointment=appointment.id, day=day)
        child = await anyio.open_process([sys.executable, "-c", _CHILD], env=env)
        await _kill_once_held(child, held, sb)
        outcomes: list[BookingOutcome] = []
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, journal=journal, on_booking_outcome=outcomes.append
        ) as client:
            assert await client.recover() == []  # the booking is still at the server
            [pending] = await client.pending_bookings()
            assert (pending.operation, pending.kind, pending.customer_id) == (
                "book",
                OutcomeKind.UNKNOWN,
                customer,
            )
            assert not held.committed.is_set()
            # Much later (the journal's clock past a flow's bound) with still no booking: not booked.
            journal_ = client._journal
            assert journal_ is not None
            journal_.clock = lambda: time.time() + 3600
            [late] = await client.recover()
            assert (late.kind, late.recovered) == (OutcomeKind.NOT_BOOKED, True)
        assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]
