"""One exception hierarchy for everything the client raises.

    PerfectGymError
    ├── APIError                      something went wrong talking to the API
    │   ├── APIStatusError            the API answered 4xx/5xx (status_code, error_code, trace_id, ...)
    │   │   ├── BadRequestError            400
    │   │   ├── AuthenticationError        401
    │   │   ├── PermissionDeniedError      403
    │   │   ├── NotFoundError              404
    │   │   ├── ConflictError              409
    │   │   ├── RateLimitError             429 (retry_after)
    │   │   └── InternalServerError        5xx
    │   │       └── ServiceUnavailableError    503 (retry_after)
    │   ├── APIConnectionError        no answer: connect error, reset, broken protocol
    │   │   └── APITimeoutError       no answer in time
    │   ├── ResponseValidationError   an answer that does not match the spec (names operation and field)
    │   └── PaginationError           the server's cursor went wrong (e.g. repeated an offset)
    ├── ConfigurationError            missing or unusable settings (also a ValueError)
    └── BookingError                  a booking flow could not do what was asked
        ├── SlotNotBookableError      validation said no (carries the ValidationStatus)
        ├── NoSlotAvailableError      book_first_available found nothing bookable
        ├── BookingOutcomeUnknownError  an ambiguous failure we could not resolve: check before retrying
        ├── BookingIdUnknownError     the booking was made (proven) but its id cannot be read yet
        └── RescheduleError           the customer holds (or may hold) both bookings

No exception carries or shows the API key: requests are described by method and path only.

Every one pickles (Celery, multiprocessing, ``ProcessPoolExecutor`` hand errors between
processes) with its type, message and attributes, but without ``response``: the answer as
received is not portable (aiohttp's headers do not pickle) and is None after unpickling. Pickle
leaves out the ``__cause__``/``__context__`` chain, as for any exception. ``copy.copy`` keeps
everything, ``response`` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

if TYPE_CHECKING:
    from ._generated.models import ValidationStatus

_E = TypeVar("_E", bound="PerfectGymError")

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BookingError",
    "BookingIdUnknownError",
    "BookingOutcomeUnknownError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "NoSlotAvailableError",
    "NotFoundError",
    "PaginationError",
    "PerfectGymError",
    "PermissionDeniedError",
    "RateLimitError",
    "RescheduleError",
    "ResponseValidationError",
    "ServiceUnavailableError",
    "SlotNotBookableError",
]


class Response(Protocol):
    """An answer as received, as an error keeps it (``APIStatusError.response``): the request
    layer hands over its own ``HTTPResponse``, whatever backend received it."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...


class PerfectGymError(Exception):
    """Base of every exception this package raises on purpose."""

    # Exception's own reduce calls ``cls(*args)``, which keyword-only constructors refuse, and
    # pickles every attribute, the response included. Rebuilt without calling __init__ instead.
    def __reduce__(self) -> tuple[Any, ...]:
        state = {name: _portable(value) for name, value in vars(self).items()}
        if "response" in state:
            state["response"] = None
        return _rebuild, (type(self), self.args, state)

    def __copy__(self) -> Self:
        return _rebuild(type(self), self.args, dict(vars(self)))


def _rebuild(cls: type[_E], args: tuple[Any, ...], state: dict[str, Any]) -> _E:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


def _portable(value: object) -> object:
    """An attribute as pickled: another library's exception (a ``cause``) becomes a PerfectGymError
    saying what it was, because its own state may hold the request, and the request the key."""
    if isinstance(value, BaseException) and not isinstance(value, PerfectGymError):
        return PerfectGymError(f"{type(value).__name__}: {value}")
    return value


class APIError(PerfectGymError):
    """A call to the API failed. ``operation`` is the spec's operationId."""

    def __init__(self, message: str, *, operation: str, method: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.method = method
        self.path = path


class APIStatusError(APIError):
    """The API answered with an error status; the fields come from its ErrorResponse body.

    When the body is not the API's JSON (an HTML page from a proxy), ``error_code`` and
    ``trace_id`` are None and ``error_message`` holds the start of the body.
    """

    status_code: int

    def __init__(
        self,
        *,
        status_code: int,
        operation: str,
        method: str,
        path: str,
        error_message: str,
        error_code: str | None = None,
        trace_id: str | None = None,
        reference: str | None = None,
        args: list[Any] | None = None,
        typed_args: list[tuple[str, Any]] | None = None,
        response: Response | None = None,
    ) -> None:
        detail = f"{operation} ({method} {path}) failed: HTTP {status_code}"
        if error_code:
            detail += f" {error_code}"
        detail += f": {error_message}"
        if reference:
            detail += f" [reference: {reference}]"
        if trace_id:
            detail += f" [trace id: {trace_id}]"
        super().__init__(detail, operation=operation, method=method, path=path)
        self.status_code = status_code
        self.error_message = error_message
        self.error_code = error_code
        self.trace_id = trace_id
        self.reference = reference
        self.error_args: list[Any] = args or []
        """``args`` as sent (deprecated by the API): a list of objects."""
        self.typed_args: list[tuple[str, Any]] = typed_args or []
        """``typedArgs`` as ``(type, value)`` pairs, e.g. ``("INTEGER", 100)`` (deprecated by the API)."""
        self.response = response
        """The answer as received (status, headers, body); it holds nothing of the request."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, error_code={self.error_code!r}, "
            f"operation={self.operation!r}, trace_id={self.trace_id!r})"
        )


class BadRequestError(APIStatusError):
    """400: the request is invalid (``reference`` names the field), or the studio's rules refused a
    booking (``error_code`` is the ValidationStatus; the booking flows raise SlotNotBookableError)."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: no API key, a wrong one, or the wrong header name."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """403: the API key lacks the scope the operation needs (``required_scope``)."""

    status_code = 403

    def __init__(self, *, required_scope: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.required_scope = required_scope
        if required_scope:
            self.message = f"{self.message} (the API key needs the scope {required_scope})"
            self.args = (self.message,)


class NotFoundError(APIStatusError):
    """404: the entity does not exist."""

    status_code = 404


class ConflictError(APIStatusError):
    """409: concurrent modification, the entity was modified by another request.

    On a booking request it is ambiguous (the booking may exist); the booking flows check.
    """

    status_code = 409


class _RetryAfterMixin:
    retry_after: float | None
    """Seconds the server asked us to wait (from ``Retry-After``), if it said."""


class RateLimitError(APIStatusError, _RetryAfterMixin):
    """429, or the client's own rate limit would make the call wait longer than its timeout
    (then nothing was sent, and ``reopens_at`` says when, as a ``time.time()`` value)."""

    status_code = 429
    reopens_at: float | None = None

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """Any 5xx."""


class ServiceUnavailableError(InternalServerError, _RetryAfterMixin):
    """503: the API is under high database load; reads are retried with exponential backoff."""

    status_code = 503

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    if status_code in STATUS_ERRORS:
        return STATUS_ERRORS[status_code]
    return InternalServerError if status_code >= 500 else APIStatusError


class APIConnectionError(APIError):
    """No usable answer: the connection failed, was reset, or the protocol broke.

    ``may_have_reached_server`` is False only when the request surely was not sent (connect
    errors, no free connection): only then is repeating a non-idempotent call safe.
    """

    may_have_reached_server: bool = True
    certificate_rejected: bool = False
    """The server's TLS certificate failed verification: no retry can heal it, so none is made."""
    host: str | None = None
    """``scheme://host:port`` the request went to."""
    no_free_connection: bool = False
    """None of the client's connections came free in time (its pool's limit): the request was
    not sent, and this says nothing of the studio."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class CircuitOpenError(APIConnectionError):
    """Not sent: the studio's circuit breaker is open (:class:`CircuitBreaker`): its recent
    attempts got no answer or a 5xx, so its calls fail at once instead of spending their retries.

    ``host`` names the studio (never the key); ``retry_in`` is the seconds until one call is let
    through again to see whether it is back (0 while that probe is on its way), ``retry_at`` the
    same as epoch seconds. ``may_have_reached_server`` is False.
    """

    may_have_reached_server = False
    retry_in: float = 0.0
    retry_at: float = 0.0


class ResponseValidationError(APIError):
    """The API answered 2xx with a body that does not match the spec."""

    def __init__(
        self, *, operation: str, method: str, path: str, field: str, detail: str, status_code: int
    ) -> None:
        super().__init__(
            f"{operation} ({method} {path}): malformed answer (HTTP {status_code}) at {field}: {detail}",
            operation=operation,
            method=method,
            path=path,
        )
        self.field = field
        self.detail = detail
        self.status_code = status_code


class PaginationError(APIError):
    """The server's paging went wrong, e.g. it answered the same cursor twice."""


class ConfigurationError(PerfectGymError, ValueError):
    """The client cannot be set up as asked (e.g. no base URL or API key)."""


class BookingError(PerfectGymError):
    """A booking flow could not do what was asked."""


class SlotNotBookableError(BookingError):
    """``book(validate=True)``: the API's validation refused the slot; nothing was booked."""

    def __init__(self, status: ValidationStatus, *, customer_id: int, bookable_appointment_id: int) -> None:
        super().__init__(
            f"slot not bookable for customer {customer_id} on bookable appointment "
            f"{bookable_appointment_id}: {status}"
        )
        self.status = status
        self.customer_id = customer_id
        self.bookable_appointment_id = bookable_appointment_id


class NoSlotAvailableError(BookingError):
    """``book_first_available`` found no slot it could book; ``statuses`` counts why."""

    def __init__(self, message: str, *, checked: int, statuses: Mapping[str, int]) -> None:
        super().__init__(message)
        self.checked = checked
        self.statuses = dict(statuses)


class BookingOutcomeUnknownError(BookingError):
    """A booking (or cancel) request failed ambiguously and nothing proved whether it was carried out.

    Nothing was repeated. The slot and customer are here (``customer_id`` is None for a cancel);
    list the customer's bookings (or validate the slot, or read the booking) before trying again.
    Every other error from ``book`` comes with proof that nothing was booked.
    """

    def __init__(
        self,
        message: str,
        *,
        customer_id: int | None,
        cause: BaseException,
        bookable_appointment_id: int | None = None,
        start_date_time: datetime | None = None,
        end_date_time: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.customer_id = customer_id
        self.cause = cause
        self.bookable_appointment_id = bookable_appointment_id
        self.start_date_time = start_date_time
        self.end_date_time = end_date_time


class BookingIdUnknownError(BookingError):
    """The booking WAS made (proven), but its id cannot be read yet.

    The slot lies outside the bookings list's window (two weeks around now): the slot validated
    AVAILABLE before the request and CUSTOMER_IN_OTHER_BOOKING after it. The customer is booked;
    ``list_bookings(customer_id)`` shows the booking from ``visible_from`` on. Do not book again.
    """

    def __init__(
        self,
        message: str,
        *,
        customer_id: int,
        bookable_appointment_id: int,
        start_date_time: datetime,
        end_date_time: datetime,
        visible_from: date,
        cause: BaseException,
    ) -> None:
        super().__init__(message)
        self.customer_id = customer_id
        self.bookable_appointment_id = bookable_appointment_id
        self.start_date_time = start_date_time
        self.end_date_time = end_date_time
        self.visible_from = visible_from
        self.cause = cause


class RescheduleError(BookingError):
    """Reschedule could not finish the move, and the customer holds (or may hold) both bookings:
    the new slot was booked (``new_booking_id``; None when its id could not be read) but the old
    booking could not be canceled, or was kept because the new one's outcome is unclear."""

    def __init__(
        self, message: str, *, old_booking_id: int, new_booking_id: int | None, cause: BaseException
    ) -> None:
        super().__init__(message)
        self.old_booking_id = old_booking_id
        self.new_booking_id = new_booking_id
        self.cause = cause
