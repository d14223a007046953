"""The request path under every facade method: build -> send -> map errors -> parse, in one retry loop.

Requests are built and answers parsed by the generated endpoint modules (``_get_kwargs`` and
``_parse_response``); this module owns what the generated layer does not: the API key, the
User-Agent, timeouts, retries, typed errors and logging.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

import httpx

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServiceUnavailableError,
    status_error_class,
)
from ._field_paths import FIELD_PATH
from ._generated.client import Client as GeneratedClient
from ._generated.models import ErrorResponse
from ._generated.types import Unset
from ._retry import Decide, Resolved, RetryPolicy, is_connect_failure, parse_retry_after
from ._throttling import Throttle
from ._version import API_VERSION, __version__

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_TIMEOUT", "USER_AGENT", "BaseClient", "logger"]

T = TypeVar("T")

logger = logging.getLogger("perfectgym_appointments_client")
logger.addHandler(logging.NullHandler())

USER_AGENT = f"perfectgym-appointments-client/{__version__} (PerfectGym Next API {API_VERSION}; httpx/{httpx.__version__})"
# One number for both limits. Fewer kept-alive connections than allowed ones (httpx's default is
# 20 of 100) makes httpcore 1.0's pool close an idle connection on nearly every release once
# more than 20 exist, so 100 busy tasks open a new connection (a TLS handshake) per request.
# And the pool's bookkeeping on every request walks all its connections, quadratically
# (encode/httpx#3215): 100 kept-alive connections cost ~3 ms of client CPU per request on
# loopback, 16 about 1.4 ms (benchmarks/RESULTS.md, concurrency). 16 is also search_slots'
# default fan-out.
DEFAULT_MAX_CONNECTIONS = 16
KEEPALIVE_EXPIRY = 5.0
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_FIELD_IN_MESSAGE = re.compile(rf"^({FIELD_PATH.pattern}): ")
# Method, path and the scope each operation needs (openapi.yaml's x-required-scope; a test
# checks this table against the spec).
_OPERATIONS = {
    "getBookableAppointments": ("GET", "/v1/appointments/bookable", "BOOKABLE_APPOINTMENTS_READ"),
    "getBookableAppointment": (
        "GET", "/v1/appointments/bookable/{bookableAppointmentId}", "BOOKABLE_APPOINTMENTS_READ",
    ),
    "getBookableAppointmentSlots": (
        "GET", "/v1/appointments/bookable/{bookableAppointmentId}/slots", "BOOKABLE_APPOINTMENTS_READ",
    ),
    "validateForAppointmentBooking": (
        "POST", "/v1/appointments/bookable/validate", "BOOKABLE_APPOINTMENTS_READ",
    ),
    "bookAppointmentBooking": ("POST", "/v1/appointments/booking/book", "APPOINTMENTS_WRITE"),
    "getAppointmentBooking": ("GET", "/v1/appointments/booking/{bookingId}", "APPOINTMENTS_READ"),
    "deleteAppointmentBooking": ("DELETE", "/v1/appointments/booking/{bookingId}", "APPOINTMENTS_WRITE"),
    "getAppointmentBookings": ("GET", "/v1/appointments/booking", "APPOINTMENTS_READ"),
    "checkApiKey": ("HEAD", "/v1/appointments/bookable", None),
}  # fmt: skip


class _Secret:
    """Holds the API key so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"


@functools.cache
def operation_id(endpoint: ModuleType) -> str:
    """``...api.appointments.get_bookable_appointment_slots`` -> ``getBookableAppointmentSlots``."""
    head, *rest = endpoint.__name__.rsplit(".", 1)[-1].split("_")
    return head + "".join(part.title() for part in rest)


class BaseClient:
    """Sends requests built by the generated layer; used only through :class:`AppointmentsClient`."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: httpx.Timeout | None,
        retry_policy: RetryPolicy,
        http_client: httpx.AsyncClient | None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        accept_language: str | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.accept_language = accept_language
        self.throttle = throttle
        self.retry_policy = retry_policy
        self._key = _Secret(api_key)
        self._owns_http = http_client is None
        # A user's client keeps its own settings; we only add our timeout if one was asked for.
        self._timeout = timeout if timeout is not None or http_client is not None else DEFAULT_TIMEOUT
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self.http = http_client or httpx.AsyncClient(timeout=self._timeout, limits=limits)
        # _parse_response only reads raise_on_unexpected_status from it; it never sends.
        self.generated = GeneratedClient(base_url=self.base_url, raise_on_unexpected_status=False)

    @property
    def timeout(self) -> httpx.Timeout | None:
        """The per-request timeout we set (None: a user's http_client decides)."""
        return self._timeout

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    # -- the call path ------------------------------------------------------------------------
    async def call(
        self,
        endpoint: ModuleType,
        *args: Any,
        expect: type[Any],
        items: type[Any] | None = None,
        decide: Decide | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build with the generated ``_get_kwargs``, send, parse with ``_parse_response``, check the
        answer is an ``expect`` (a list of ``items``), all inside the one retry loop."""
        operation = operation_id(endpoint)
        request_kwargs = endpoint._get_kwargs(*args, **kwargs)

        def parse(response: httpx.Response) -> Any:
            parsed = self.parse(operation, endpoint, response)
            value = self.expect(parsed, expect, operation)
            if items is not None:
                for index, element in enumerate(value):
                    if not isinstance(element, items):  # the field is formatted only for the error
                        self.expect(element, items, operation, f"[{index}]")
            return value

        return await self.request(operation, request_kwargs, parse, decide)

    async def request(
        self,
        operation: str,
        request_kwargs: Mapping[str, Any],
        parse: Callable[[httpx.Response], T],
        decide: Decide | None = None,
    ) -> T | Any:
        """The one retry loop. After each failure ``decide`` says what happens next: send again
        (True, if the policy has a retry left), give up and raise (False), or end the call with a
        value it found (:class:`Resolved`, e.g. the booking a failed request did make). Without
        ``decide`` a failure is retried when the policy calls it retryable (reads, validate)."""
        policy = self.retry_policy
        decide = decide or self._retry_if_retryable
        retry_number = 0
        while True:
            if self.throttle is not None:
                # Outside the try: a wait longer than the call may take is our own RateLimitError,
                # raised before anything is sent, not a failure to retry.
                await self.throttle.wait_turn(
                    operation,
                    patience=self._patience(),
                    method=str(request_kwargs["method"]).upper(),
                    path=str(request_kwargs["url"]),
                )
            try:
                return parse(await self._send_once(operation, request_kwargs, attempt=retry_number + 1))
            except (APIStatusError, APIConnectionError, ResponseValidationError) as exc:
                if self.throttle is not None and isinstance(exc, RateLimitError) and exc.retry_after is None:
                    await self.throttle.locked_out(operation)
                can_retry = retry_number < policy.max_retries
                verdict = await decide(exc, can_retry)
                if isinstance(verdict, Resolved):
                    return verdict.value
                if not (verdict and can_retry):
                    raise
                delay = policy.delay(exc, retry_number)
                self._log_failure(exc, retry_number + 1, delay)
                await policy.sleep(delay)
                retry_number += 1

    def _patience(self) -> float | None:
        """How long a call may wait for the rate limit: its read timeout (None: no bound)."""
        timeout = self._timeout if self._timeout is not None else self.http.timeout
        return timeout.read

    async def _retry_if_retryable(self, exc: APIError, can_retry: bool) -> bool:
        return self.retry_policy.is_retryable(exc)

    async def _send_once(
        self, operation: str, request_kwargs: Mapping[str, Any], *, attempt: int
    ) -> httpx.Response:
        method = str(request_kwargs["method"]).upper()
        path = str(request_kwargs["url"])
        # The key goes on each request, not on the httpx client, so it sits in no client-wide
        # header dict; it is blanked on the request once sent (below).
        headers = {
            "User-Agent": USER_AGENT,
            "X-API-KEY": self._key.reveal(),
            **request_kwargs.get("headers", {}),
        }
        if self.accept_language is not None:
            headers["Accept-Language"] = self.accept_language
        request = self.http.build_request(
            method,
            self.base_url + path,
            params=request_kwargs.get("params"),
            json=request_kwargs.get("json"),
            headers=headers,
            timeout=self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        started = time.perf_counter()
        try:
            response = await self.http.send(request)
        except httpx.TimeoutException as exc:
            raise self._connection_error(APITimeoutError, operation, method, request.url, exc) from exc
        except httpx.RequestError as exc:
            # TransportError, and what httpx raises past it while reading the answer: a body that
            # its Content-Encoding cannot decode (DecodingError), a redirect loop of a client that
            # follows redirects. No usable answer either way.
            raise self._connection_error(APIConnectionError, operation, method, request.url, exc) from exc
        finally:
            # Errors keep the request (exc.response.request, exc.__cause__.request); once sent,
            # its copy of the key is only a way to leak it.
            if "X-API-KEY" in request.headers:
                request.headers["X-API-KEY"] = "***"
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> %s in %.1f ms (attempt %d)",
                operation, method, path, response.status_code, (time.perf_counter() - started) * 1000, attempt,
            )  # fmt: skip
        if response.status_code >= 300:
            raise self._status_error(operation, method, path, response)
        return response

    def parse(self, operation: str, endpoint: ModuleType, response: httpx.Response) -> Any:
        """The generated parser, with anything it trips over turned into ResponseValidationError."""
        method, path = response.request.method, response.request.url.path
        try:
            parsed = endpoint._parse_response(client=self.generated, response=response)
        except json.JSONDecodeError as exc:
            raise self._invalid(operation, method, path, response, "<body>", f"not JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise self._invalid(operation, method, path, response, "<body>", "not UTF-8 text") from exc
        except RecursionError as exc:  # json's C decoder gives up on [[[[...: no answer nests that deep
            raise self._invalid(
                operation, method, path, response, "<body>", "JSON nested too deeply"
            ) from exc
        except KeyError as exc:
            raise self._invalid(
                operation, method, path, response, str(exc.args[0]), "required field missing"
            ) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            message = str(exc)
            match = _FIELD_IN_MESSAGE.match(message)
            field = match.group(1) if match else "<body>"
            raise self._invalid(operation, method, path, response, field, message) from exc
        if parsed is None or isinstance(parsed, ErrorResponse):
            raise self._invalid(operation, method, path, response, "<status>", "unexpected status")
        return parsed

    @staticmethod
    def expect(value: Any, kind: type[T], operation: str, response_field: str = "<body>") -> T:
        """Narrow a parsed answer to the type the spec promises (the generated parser may pass through
        unexpected shapes unchanged)."""
        if not isinstance(value, kind):
            method, path, _ = _OPERATIONS.get(operation, ("", "", None))
            raise ResponseValidationError(
                operation=operation,
                method=method,
                path=path,
                field=response_field,
                detail=f"expected {kind.__name__}, got {type(value).__name__}",
                status_code=200,
            )
        return value

    # -- errors ---------------------------------------------------------------------------------
    @staticmethod
    def _connection_error(
        cls: type[APIConnectionError], operation: str, method: str, url: httpx.URL, exc: httpx.RequestError
    ) -> APIConnectionError:
        what = "timed out" if cls is APITimeoutError else "failed"
        # The host is named: "connection refused" alone does not say which tenant or port.
        # The query is left out (it holds customer ids, nothing a log needs).
        host = f"{url.scheme}://{url.netloc.decode('ascii')}"
        error = cls(
            f"{operation} ({method} {host}{url.path}) {what}: {_describe(exc)}",
            operation=operation,
            method=method,
            path=url.path,
        )
        error.host = host
        error.may_have_reached_server = not is_connect_failure(exc)
        return error

    @staticmethod
    def _status_error(operation: str, method: str, path: str, response: httpx.Response) -> APIStatusError:
        status = response.status_code
        body: ErrorResponse | None = None
        try:
            data = response.json()
            if isinstance(data, dict) and isinstance(data.get("errorMessage"), str):
                body = ErrorResponse.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            body = None  # an HTML page from a proxy, a truncated body...: the status still decides
        if body is not None:
            fields: dict[str, Any] = {
                "error_message": body.error_message,
                "error_code": _text_or_none(body.error_code),
                "trace_id": _text_or_none(body.trace_id),
                "reference": _text_or_none(body.reference),
                "args": _error_args(data.get("args")),
                "typed_args": _typed_args(data.get("typedArgs")),
            }
        else:
            snippet = " ".join(re.sub(r"<[^>]+>", " ", response.text[:500]).split())[:200]
            fields = {"error_message": snippet or response.reason_phrase or f"HTTP {status}"}
        cls = status_error_class(status)
        extra: dict[str, Any] = {}
        if cls in (RateLimitError, ServiceUnavailableError):
            extra["retry_after"] = parse_retry_after(response.headers.get("Retry-After"))
        elif cls is PermissionDeniedError:
            extra["required_scope"] = _OPERATIONS.get(operation, ("", "", None))[2]
        error = cls(
            status_code=status,
            operation=operation,
            method=method,
            path=path,
            response=response,
            **fields,
            **extra,
        )
        logger.info("%s (%s %s) -> HTTP %s %s", operation, method, path, status, error.error_code or "")
        return error

    @staticmethod
    def _invalid(
        operation: str, method: str, path: str, response: httpx.Response, field: str, detail: str
    ) -> ResponseValidationError:
        return ResponseValidationError(
            operation=operation,
            method=method,
            path=path,
            field=field,
            detail=detail,
            status_code=response.status_code,
        )

    @staticmethod
    def _log_failure(exc: BaseException | None, attempt: int, wait: float) -> None:
        logger.warning("retrying after %s (attempt %d failed; waiting %.2f s)", exc, attempt, wait)


def _text_or_none(value: object) -> str | None:
    return None if value is None or isinstance(value, Unset) else str(value)


def _error_args(raw: object) -> list[Any]:
    """``args``: objects since the official spec (a list of strings in older answers); kept as sent."""
    return list(raw) if isinstance(raw, list) else []


def _typed_args(raw: object) -> list[tuple[str, Any]]:
    """``typedArgs`` as ``(type, value)`` pairs; items that are not ``{type, value}`` objects are skipped
    (the arguments are deprecated: a malformed one must not hide the error it comes with)."""
    if not isinstance(raw, list):
        return []
    return [
        (item["type"], item.get("value"))
        for item in raw
        if isinstance(item, dict) and isinstance(item.get("type"), str)
    ]


def _describe(exc: BaseException) -> str:
    """``ConnectError: <why>``, the why taken from the first exception in the chain that gives one.

    Some transports raise with an empty message and keep the reason in the cause (under trio a
    failed TLS handshake is ``ConnectError()`` from ``BrokenResourceError()`` from the
    ``SSLCertVerificationError``).
    """
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            break
        if str(current):
            inner = "" if current is exc else f"{type(current).__name__}: "
            return f"{type(exc).__name__}: {inner}{current}"
        current = current.__cause__ or current.__context__
    return type(exc).__name__
