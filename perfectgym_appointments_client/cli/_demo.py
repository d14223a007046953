"""The ``demo`` command: the whole flow against an in-process sandbox, step by step."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from .. import AppointmentsClient, BookableAppointment, PerfectGymError, ValidationStatus
from ..sandbox import Sandbox
from ._common import command, run, state
from ._output import appointments_table, bookings_table, rule, show, slots_table, when

__all__ = ["demo"]


@command()
def demo(seed: Annotated[int, typer.Option(help="Sandbox data seed.")] = 42) -> None:
    """Walk the whole flow against an in-process sandbox: no API key, no network."""

    async def job() -> None:
        out = state.out
        async with (
            Sandbox(seed=seed) as sb,
            AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client,
        ):
            rule("[bold]PerfectGym appointments: demo against a local sandbox")
            out.print(f"sandbox at {sb.base_url} (seed {seed}); customer {sb.demo_customer_id}\n")

            pages = 0
            appointments: list[BookableAppointment] = []
            async for page in client.bookable_appointments(slice_size=50).pages():
                pages += 1
                appointments.extend(page.items)
            out.print(f"1. {len(appointments)} bookable appointments, listed in {pages} pages of up to 50")
            show(appointments_table(appointments[:8], "first bookable appointments"))

            customer = sb.demo_customer_id
            appointment, slots = None, []
            for candidate in appointments:
                # A week: the client asks for it as two windows (the API answers at most 6 days).
                slots = await client.get_slots(candidate.id, customer_id=customer, days_ahead=7)
                if len(slots) >= 2:
                    appointment = candidate
                    break
            if appointment is None:
                raise PerfectGymError("the sandbox offered no slots this week")
            out.print(
                f"\n2. free slots of '{escape(str(appointment.title))}' this week ({len(slots)} in all)"
            )
            show(slots_table(slots[:10], f"{appointment.title}: first slots"))

            slot = slots[0]
            status = await client.validate_slot(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
            )
            out.print(
                f"\n3. validate {when(slot.start_date_time)} for customer {customer}: [bold]{status}[/bold]"
            )
            if status is not ValidationStatus.AVAILABLE:
                raise PerfectGymError(f"the first slot is not bookable: {status}")

            booking = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
            )
            out.print(f"\n4. booked: booking {booking.booking_id}, {booking.booking_status}")
            show(bookings_table([booking], "the new booking"))

            out.print(f"\n5. bookings of customer {customer}")
            show(bookings_table(await client.list_bookings(customer), f"customer {customer}"))

            moved = await client.reschedule(
                booking.booking_id, slots[1], bookable_appointment_id=appointment.id
            )
            out.print(
                f"\n6. rescheduled to {when(moved.start_date_time)}: new booking {moved.booking_id}, "
                f"old booking {booking.booking_id} canceled"
            )
            show(
                bookings_table(await client.list_bookings(customer), f"customer {customer} after reschedule")
            )

            message = await client.cancel_booking(moved.booking_id)
            out.print(f"\n7. canceled booking {moved.booking_id}: {message}")
            show(bookings_table(await client.list_bookings(customer), f"customer {customer} at the end"))
            rule("[bold green]demo finished")

    run(job)
