"""A journal that fails never fails a booking (issue 29): Redis stopped mid-flow, a SQLite file
another process holds locked; the booking goes on, one WARNING says so, and the journal is used
again once it answers. A journal that cannot be opened is a ConfigurationError when the client
is made, saying nothing of the key or a password."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from benchmarks.redis_process import RedisMissing, RedisProcess
from perfectgym_appointments_client import AppointmentsClient, ConfigurationError
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio
LOGGER = "perfectgym_appointments_client"


def _bookable(sb: Sandbox) -> Any:
    return next(a for a in sb.store.listed() if not a.premium_only and not a.requires_confirmation)


def _journal_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "booking journal" in r.getMessage()
    ]


async def _slots(client: AppointmentsClient, sb: Sandbox, customer: int, appointment: Any) -> list[Any]:
    return await client.get_slots(
        appointment.id,
        customer_id=customer,
        days_ahead=3,
        start_date=sb.store.now().date() + dt.timedelta(days=4),
    )


async def test_a_stopped_redis_journal_degrades_with_one_warning_and_is_used_again_after_it_restarts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        redis = RedisProcess().start()
    except RedisMissing as exc:
        pytest.skip(f"{exc} (Debian package redis-server; .ci/run installs it)")
    caplog.set_level(logging.INFO, LOGGER)
    try:
        async with Sandbox() as sb:
            customer = sb.store.add_customer().id
            appointment = _bookable(sb)
            async with AppointmentsClient(
                api_key=sb.api_key, base_url=sb.base_url, journal=redis.url
            ) as client:
                journal = client._journal
                assert journal is not None
                # Asked again at once after a failure (5 s by default), so the test needs no wait.
                journal.timeout, journal.retry_after = 0.5, 0.0
                slots = await _slots(client, sb, customer, appointment)
                redis.stop()  # mid-flow: between the slots read and the bookings
                first = await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0]
                )
                second = await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[1]
                )
                assert len(_journal_warnings(caplog)) == 1, caplog.text
                assert "***" in _journal_warnings(caplog)[0] or "redis" in _journal_warnings(caplog)[0]
                redis.start()
                # redis-py's pooled connection is stale after a restart: one more failed call (no
                # second WARNING), then it reconnects.
                await client.pending_bookings()
                third = await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[2]
                )
                assert any("answers again" in r.getMessage() for r in caplog.records)
                held = [b.id for b in sb.store.snapshot() if b.customer_id == customer and b.active]
                assert sorted(held) == sorted([first.booking_id, second.booking_id, third.booking_id])
                # The booking made while Redis answered again is in the journal: a resubmit is answered from it.
                again = await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[2]
                )
                assert (again.booking_id, again.already_existed) == (third.booking_id, True)
        assert "sandbox-key" not in caplog.text
        assert redis.url.split("@")[0].split(":")[-1] not in caplog.text  # the password
    finally:
        redis.close()


async def test_a_locked_sqlite_journal_degrades_with_one_warning_and_the_booking_is_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    path = tmp_path / "journal.db"
    async with Sandbox() as sb:
        customer = sb.store.add_customer().id
        appointment = _bookable(sb)
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, journal=f"sqlite:///{path}"
        ) as client:
            journal = client._journal
            assert journal is not None
            journal.timeout, journal.retry_after = 0.3, 0.0
            slots = await _slots(client, sb, customer, appointment)
            other = sqlite3.connect(path, isolation_level=None)  # another process's write lock
            other.execute("BEGIN EXCLUSIVE")
            try:
                booking = await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0]
                )
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert len(_journal_warnings(caplog)) == 1, caplog.text
            assert [b.id for b in sb.store.snapshot() if b.customer_id == customer and b.active] == [
                booking.booking_id
            ]
            later = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[1]
            )  # the journal answers again
            again = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[1]
            )
            assert (again.booking_id, again.already_existed) == (later.booking_id, True)


def test_a_journal_file_that_is_not_a_database_is_refused_when_the_client_is_made(tmp_path: Path) -> None:
    garbage = tmp_path / "bookings.db"
    garbage.write_bytes(b"this is not a SQLite database, just some bytes" * 100)
    with pytest.raises(ConfigurationError, match="cannot be opened") as caught:
        AppointmentsClient(
            api_key="a-secret-key-1", base_url="https://tenant.example", journal=f"sqlite:///{garbage}"
        )
    assert "a-secret-key-1" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        AppointmentsClient(
            api_key="k",
            base_url="https://tenant.example",
            journal=f"sqlite:///{tmp_path}/no/such/folder/j.db",
        )
    with pytest.raises(ConfigurationError, match="sqlite:/// or redis://"):
        AppointmentsClient(api_key="k", base_url="https://tenant.example", journal="postgres://db/bookings")
    with pytest.raises(TypeError, match="journal must be"):
        AppointmentsClient(api_key="k", base_url="https://tenant.example", journal=42)  # type: ignore[arg-type]


async def test_an_outcome_the_failing_journal_missed_is_written_by_recover_and_not_reported_twice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    outcomes: list[Any] = []
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def lock_once_the_booking_is_at_the_server(phase: str, method: str, path_: str) -> None:
        # The intent is written by then; the outcome will meet the lock.
        if (phase, method, path_) == ("received", "POST", "/v1/appointments/booking/book"):
            locker.execute("BEGIN EXCLUSIVE")

    async with Sandbox() as sb:
        customer = sb.store.add_customer().id
        appointment = _bookable(sb)
        async with AppointmentsClient(
            api_key=sb.api_key,
            base_url=sb.base_url,
            journal=f"sqlite:///{path}",
            on_booking_outcome=outcomes.append,
        ) as client:
            journal = client._journal
            assert journal is not None
            journal.timeout, journal.retry_after = 0.3, 0.0
            slots = await _slots(client, sb, customer, appointment)
            sb.on_request = lock_once_the_booking_is_at_the_server
            booking = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0]
            )
            sb.on_request = None
            assert list(journal.unwritten) != []  # reported, not written
            journal.clock = lambda: 10**10  # long after: a dead flow's entry would be due now
            locker.execute("ROLLBACK")
            assert await client.recover() == []  # written, not resolved and reported again
            assert journal.unwritten == {}
            assert await client.pending_bookings() == []
        assert [(o.kind.value, o.booking_id) for o in outcomes] == [("booked", booking.booking_id)]
    locker.close()


async def test_a_failing_redis_journal_logs_its_error_without_the_urls_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A store's error may quote its URL; the journal shows only the masked URL, so the password
    # is taken from the URL it was opened with.
    from perfectgym_appointments_client._journal import _redis, open_journal

    class Refusing:
        def __init__(self, url: str, *, timeout: float) -> None:
            self.url = url

        def add(self, entry: Any) -> None:
            raise ConnectionError(f"cannot reach {self.url}")

    monkeypatch.setattr(_redis, "RedisStore", Refusing)
    caplog.set_level(logging.WARNING, LOGGER)
    journal = open_journal("redis://:s3cret-pass@127.0.0.1:1/0", logger=logging.getLogger(LOGGER))
    assert not await journal.add(journal.new_entry("book", "https://tenant.example"))
    [warning] = _journal_warnings(caplog)
    assert "s3cret-pass" not in warning
    assert "cannot reach redis://:***@127.0.0.1:1/0" in warning
