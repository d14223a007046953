"""The booking flows and their safety rules: book, the booking check, cancel, reschedule, and
book_first_available. Every rule that keeps a member from being booked twice, or told "not booked"
when they are, is in this package, each in the module named after it:

1. A booking request is repeated only on evidence that the first one made nothing: it never
   arrived (429, a failed connect), or the booking check says so. The API has no idempotency key.
   (``_evidence.py``: what a failure says; ``_book.py``: the request and its repeats.)
2. The booking check (``_check.py``) waits ``settle`` seconds (a request may still be in
   progress at the server), then looks:
   - inside the bookings list's window (+/- 2 weeks around now): an active booking of the customer
     at exactly that instant means it was made (the title only breaks ties); none means it was not;
   - outside it: the slot validating AVAILABLE again means nothing was made; CUSTOMER_IN_OTHER_BOOKING
     for a slot that validated AVAILABLE just before means it was made, though its id cannot be
     read (:class:`BookingIdUnknownError`); anything else proves nothing
     (:class:`BookingOutcomeUnknownError`).
3. After a repeated booking request the list is read once more: two active bookings of the customer
   at that instant means both requests were made, and the newer one is canceled (``_book.py``).
4. Once a booking or cancel request may be at the server, the flow runs to its end even if the
   caller is cancelled (a web app's timeout, a client that went away), bounded by the client's
   timeout; then the cancellation goes on, and the outcome is reported: a WARNING log record and
   ``on_booking_outcome`` (``_shield.py``, ``_outcome.py``).
5. A repeated booking (a resubmit, a second tab) books nothing: when the customer already holds an
   active booking of the same appointment at the same instant (CUSTOMER_IN_OTHER_BOOKING, and the
   list shows it), ``book`` returns that booking with ``already_existed=True`` (outcome
   ``ALREADY_BOOKED``). A booking one call of the client made or returned is never credited by
   another call's check as its own (``BookingCheck.claim``).
6. ``reschedule`` books the new slot before it cancels the old booking: it never ends with neither
   (``_reschedule.py``). A cancel is repeated only when it surely did nothing (``_cancel.py``).
7. ``book_first_available`` decides candidates strictly in time order and books exactly one
   (``_first_available.py``).
8. With a journal, a booking outlives its process: the intent is written before the request and
   the outcome once reported; a resubmit the journal shows booked is answered by a ``GET`` of that
   booking, anywhere in time; ``recover`` resolves the intents of processes that died, by evidence,
   reporting each once (``_journaling.py``, ``_recover.py``).

The flows read and validate through ``Operations`` (``_operations.py``) and send their own
requests through ``Requester`` (``_request.py``): nothing here knows the client above them.
"""

from ._flows import BookingFlows
from ._outcome import BookingOutcome, OutcomeHook, OutcomeKind

__all__ = ["BookingFlows", "BookingOutcome", "OutcomeHook", "OutcomeKind"]
