"""How often one call moves between the package's files: ``python -m benchmarks.call_path``.

A profile hook records, for one ``get_slots`` and one ``book`` (validate, then book), the package
file each Python frame belongs to, against canned answers (httpx.MockTransport). A "move" is two
consecutive package frames in different files. Library frames are skipped (a backend calling
httpx and getting its answer back is no move), and the generated model files count as one,
``_generated/models`` (parsing a slot list visits three of them per slot).

A "return to a file already left" is a call into a file that is already on the calling chain
further up, through another file: code below calling back up (a cycle at run time). A call
path that reads top-down has none; the figure is printed per call.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import perfectgym_appointments_client as package
from perfectgym_appointments_client import AppointmentsClient

ROOT = Path(package.__file__).parent
START = "2030-06-24T08:00:00.000+02:00[Europe/Berlin]"
END = "2030-06-24T09:00:00.000+02:00[Europe/Berlin]"
SLOT = {"startDateTime": START, "endDateTime": END, "instructors": []}
BOOKING = {
    "bookingId": 7, "bookingStatus": "BOOKED", "startDateTime": START, "endDateTime": END,
    "title": "Yoga", "appointmentStatus": "PLANNED", "participantStatus": "UNSET", "instructors": [],
}  # fmt: skip


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/slots"):
        return httpx.Response(200, json=[SLOT])
    if request.url.path.endswith("/validate"):
        return httpx.Response(200, json={"validationStatus": "AVAILABLE"})
    return httpx.Response(200, json=BOOKING)


def where(path: str) -> str | None:
    file = Path(path)
    if not file.is_relative_to(ROOT):
        return None
    name = file.relative_to(ROOT).as_posix()
    return "_generated/models" if name.startswith("_generated/models/") else name


def chain(frame: Any) -> list[str]:
    """The package files of the frames calling ``frame``, nearest first (library frames skipped)."""
    files: list[str] = []
    caller = frame.f_back
    while caller is not None:
        name = where(caller.f_code.co_filename)
        if name is not None:
            files.append(name)
        caller = caller.f_back
    return files


async def walk(call: Callable[[AppointmentsClient], Awaitable[Any]]) -> tuple[list[str], list[str]]:
    """The package files one call passes through, in order, each run of one file once; and the
    returns to a file already left (``caller -> file``)."""
    files: list[str] = []
    returns: list[str] = []

    def hook(frame: Any, event: str, arg: Any) -> None:
        current = frame if event == "call" else frame.f_back if event == "return" else None
        name = None if current is None else where(current.f_code.co_filename)
        if name is not None and (not files or files[-1] != name):
            files.append(name)
        if event == "call" and name is not None:
            callers = chain(frame)
            if callers and callers[0] != name and name in callers[1:]:
                returns.append(f"{callers[0]} -> {name}")

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with AppointmentsClient(
        api_key="k", base_url="https://tenant.example", http_client=http, booking_check_settle=0
    ) as client:
        await call(client)  # the first call imports and fills caches
        sys.setprofile(hook)
        try:
            await call(client)
        finally:
            sys.setprofile(None)
    await http.aclose()
    return files, returns


CALLS: dict[str, Callable[[AppointmentsClient], Awaitable[Any]]] = {
    "get_slots": lambda client: client.get_slots(1, days_ahead=1),
    "book": lambda client: client.book(customer_id=5, bookable_appointment_id=1, slot=SlotStub()),
}


class SlotStub:
    def __init__(self) -> None:
        from perfectgym_appointments_client import parse_zoned_datetime

        self.start_date_time = parse_zoned_datetime(START)
        self.end_date_time = parse_zoned_datetime(END)


def main() -> None:
    for name, call in CALLS.items():
        files, returns = asyncio.run(walk(call))
        print(f"{name}: {len(files) - 1} moves between {len(set(files))} files")
        print("   " + " -> ".join(files))
        print(f"   returns to a file already left: {len(returns)}")
        for move in dict.fromkeys(returns):
            print(f"      {move}")


if __name__ == "__main__":
    main()
