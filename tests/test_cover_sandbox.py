"""The sandbox's own controls: faults and write latency read back and changed while it runs, a port
in use, a second start, a store too small for its rules, a date-time that is not a string."""

from __future__ import annotations

import socket

import httpx
import pytest

from perfectgym_appointments_client.sandbox import Faults, Sandbox, Store

START = "2026-03-24T09:00:00.000+01:00[Europe/Berlin]"


def test_faults_read_back_and_change_while_it_runs() -> None:
    with Sandbox(seed=7, rate_limit=None) as sb:
        headers = {"X-API-KEY": sb.api_key}
        url = f"{sb.base_url}/v1/appointments/bookable"
        assert sb.faults == Faults()
        always_503 = Faults(rate_503=1.0)
        sb.faults = always_503
        assert sb.faults is always_503
        assert httpx.get(url, headers=headers, timeout=10).status_code == 503
        sb.faults = Faults()
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
        assert sb.fault_counts["503"] == 1


def test_write_latency_reads_back_and_refuses_negative_seconds() -> None:
    sb = Sandbox(seed=7, write_latency=0.25)
    assert sb.write_latency == 0.25
    sb.write_latency = 0
    assert sb.write_latency == 0
    with pytest.raises(ValueError, match="write_latency must be >= 0 seconds"):
        sb.write_latency = -1
    assert sb.write_latency == 0
    with pytest.raises(ValueError, match="write_latency must be >= 0 seconds"):
        Sandbox(seed=7, write_latency=float("nan"))


def test_a_port_in_use_fails_the_start_and_leaves_the_sandbox_startable() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    sb = Sandbox(seed=7, port=port, rate_limit=None)
    try:
        with pytest.raises(OSError, match="in use"):
            sb.start()
    finally:
        busy.close()
    with sb:  # the port is free now: the same sandbox starts
        assert sb.port == port
        answer = httpx.get(f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key})
        assert answer.status_code == 200


def test_a_running_sandbox_refuses_a_second_start() -> None:
    with Sandbox(seed=7) as sb:
        port = sb.port
        with pytest.raises(RuntimeError, match="running already"):
            sb.start()
        assert sb.port == port  # still serving where it was
        assert httpx.head(
            f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key}
        ).is_success


@pytest.mark.parametrize(("appointments", "customers"), [(0, 60), (132, 7)])
def test_the_store_needs_an_appointment_and_a_customer_for_each_rule(
    appointments: int, customers: int
) -> None:
    with pytest.raises(ValueError, match="at least 1 appointment and 8 customers"):
        Store(7, appointments=appointments, customers=customers)


@pytest.mark.parametrize("value", [1679644800, ["2026-03-24T09:00"], {"at": START}])  # null is "required"
def test_a_date_time_that_is_not_a_string_is_400_naming_the_field(value: object) -> None:
    with Sandbox(seed=7, rate_limit=None) as sb:
        appointment = next(iter(sb.store.appointments))
        body = {
            "customerId": sb.demo_customer_id,
            "bookableAppointmentId": appointment,
            "startDateTime": value,
            "endDateTime": START,
        }
        answer = httpx.post(
            f"{sb.base_url}/v1/appointments/bookable/validate", headers={"X-API-KEY": sb.api_key}, json=body
        )
    assert answer.status_code == 400
    error = answer.json()
    assert (error["errorCode"], error["reference"]) == ("errormessage.validation.datetime", "startDateTime")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_that_leaves_mid_body_is_no_server_error(anyio_backend: str) -> None:
    """A cancelled call closes its connection while its body is on the way: the sandbox answers
    nobody (499) instead of raising, which uvicorn would log as an ASGI application error."""
    from perfectgym_appointments_client.sandbox._app import create_app

    app = create_app(Store(seed=7), "key")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/appointments/bookable/validate", "raw_path": b"", "query_string": b"",
        "root_path": "", "headers": [(b"x-api-key", b"key"), (b"content-length", b"200")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }  # fmt: skip
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # raised ClientDisconnect before
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499
