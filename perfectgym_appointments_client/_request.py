"""The one request path under every facade method: build -> wait for the rate limit -> send ->
typed error or parse, inside the one retry loop.

An operation is a generated module (``_generated/api/appointments/*.py``): it names itself
(``OPERATION_ID``, ``METHOD``, ``REQUIRED_SCOPE``), builds its request (``build_request``) and
reads a successful answer from status and JSON (``parse_response``). The backend (``_http.py``
says what one is, ``_backends.py`` picks one) moves bytes. What neither knows lives here: the API key, the User-Agent, retries, the rate limit,
typed errors and logging.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote_plus, urljoin, urlsplit

import anyio

from ._backends import open_backend
from ._breaker import Breaker, CircuitBreaker, failing_studios
from ._call_options import CallBound, current_bound
from ._connections import Connections, FairShare
from ._constants import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    CircuitOpenError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServiceUnavailableError,
    status_error_class,
)
from ._generated.types import PreparedRequest, Unset
from ._http import ClosedMeanwhile, HTTPBackend, HTTPResponse, ResponseTooLarge, SendFailure, Timeouts, Turn
from ._retry import Decide, Resolved, RetryPolicy, parse_retry_after
from ._throttling import Throttle
from ._version import API_VERSION, __version__

if TYPE_CHECKING:
    from ._generated.models import ErrorResponse
    from ._telemetry import Instruments

__all__ = ["USER_AGENT", "Operation", "Requester", "Secret", "logger"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

logger = logging.getLogger("perfectgym_appointments_client")
logger.addHandler(logging.NullHandler())

USER_AGENT = f"perfectgym-appointments-client/{__version__} (PerfectGym Next API {API_VERSION})"


@functools.cache
def _field_in_message() -> re.Pattern[str]:
    """A parse error's leading field path (compiled with the first malformed answer, not at import)."""
    from ._field_paths import FIELD_PATH

    return re.compile(rf"^({FIELD_PATH.pattern}): ")


_QUERY = re.compile(r"\?[^\s'\"<>)]*")


class Operation(Protocol[T_co]):
    """A generated operation module, as the request layer uses it."""

    OPERATION_ID: str
    METHOD: str
    REQUIRED_SCOPE: str | None
    SUCCESS_STATUSES: frozenset[int]

    def build_request(self, *args: Any, **kwargs: Any) -> PreparedRequest: ...

    def parse_response(self, status_code: int, data: Any) -> T_co: ...


class Secret:
    """Holds the API key so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"


class _Headers(dict[str, str]):
    """A request's headers; their repr hides the key (tracebacks that show locals print it)."""

    def __repr__(self) -> str:
        return repr({name: "***" if name == "X-API-KEY" else value for name, value in self.items()})


class Requester:
    """Sends operations for :class:`AppointmentsClient` over one backend; not public."""

    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str,
        timeouts: Timeouts | None,
        retry_policy: RetryPolicy,
        http_backend: str,
        http_client: object | None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        accept_language: str | None = None,
        throttle: Throttle | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
        max_connections_per_studio: int | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        connections: Connections | None = None,
    ) -> None:
        if max_response_bytes is not None and (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a whole number of bytes >= 1 or None, got {max_response_bytes!r}"
            )
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        # Named in connection errors: "connection refused" alone does not say which tenant.
        # (Without any user:password@ a URL may carry.)
        self.host = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self.accept_language = accept_language
        # Every request's headers but the key (added to each request's own copy).
        fixed = {
            "User-Agent": USER_AGENT,
            # The encodings both backends unpack a bounded piece at a time (not brotli or zstd,
            # which the libraries would offer when installed), on both the same.
            "Accept-Encoding": "gzip, deflate",
        }
        self.throttle = throttle
        # The client's OpenTelemetry instruments, if it has any (the client sets them once made).
        self.telemetry: Instruments | None = None
        self.retry_policy = retry_policy
        # A Secret, not the str: a failure below (no such backend, aiohttp under trio) records
        # this frame's locals in a traceback with locals, and the key must not be one of them.
        self._key = api_key
        self._timeouts = timeouts
        self._pool_timeout = None if timeouts is None else timeouts.pool
        if connections is None:
            backend = open_backend(
                http_backend,
                http_client=http_client,
                timeouts=timeouts,
                max_connections=max_connections,
                max_response_bytes=max_response_bytes,
                ssl_context=ssl_context,
            )
            # The fair share only over a pool we made: a caller's own client has its own limits.
            share = (
                None if http_client is not None else FairShare(max_connections, max_connections_per_studio)
            )
            connections = Connections(backend, owned=http_client is None, share=share)
            self._parent = True
        else:
            connections.join()
            self._parent = False
        self.connections = connections
        self.backend: HTTPBackend = connections.backend
        if self._parent:
            # Sent by the backend itself where it can (an aiohttp session of ours: its default
            # headers, set once; a header given per request is one more step on every request).
            # (The language stays a header of each request: it is this client's setting, and the
            # backend may send for other clients.)
            self.backend.send_by_default(fixed)
        if accept_language is not None:
            fixed["Accept-Language"] = accept_language
        sent = self.backend.default_headers
        self._fixed_headers = {name: value for name, value in fixed.items() if sent.get(name) != value}
        # How long a call may wait for an answer, and so for its rate-limit turn (None: no bound).
        self.read_timeout = self.backend.read_timeout
        self._closed = False
        self.breaker: Breaker | None = None
        if circuit_breaker is not None:
            self.breaker = Breaker(circuit_breaker, base_url=self.base_url, host=self.host, logger=logger)

    def derive(self, *, api_key: Secret, base_url: str) -> Requester:
        """Another studio's requester over this one's connections (``for_studio``); the studio
        client gives it its own throttle."""
        return Requester(
            api_key=api_key, base_url=base_url, timeouts=self._timeouts, retry_policy=self.retry_policy,
            http_backend=self.backend.name, http_client=None, accept_language=self.accept_language,
            max_response_bytes=self.backend.max_response_bytes,
            circuit_breaker=None if self.breaker is None else self.breaker.settings, connections=self.connections,
        )  # fmt: skip

    @property
    def closed(self) -> bool:
        """Whether this requester sends nothing more: it was closed, or the connections it shares were."""
        return self._closed or self.connections.closed

    async def aclose(self) -> None:
        if self._parent:
            await self.connections.aclose()
        else:
            # A studio client derived from another closes nothing it shares.
            self._closed = True
            self.connections.leave()

    # -- the call path ------------------------------------------------------------------------
    def request(
        self, operation: Operation[T], *args: Any, decide: Decide | None = None, **kwargs: Any
    ) -> Awaitable[T]:
        """Call ``operation`` with the arguments of its ``build_request``, in the one retry loop
        (``await api.request(...)``).

        After each failure ``decide`` says what happens next: send again (True, if the policy has
        a retry left), give up and raise (False), or end the call with a value it found
        (:class:`Resolved`, e.g. the booking a failed request did make). Without ``decide`` a
        failure is retried when the policy calls it retryable (reads, validate).

        Not a coroutine itself: a call with no deadline (most) is the retry loop's own coroutine,
        one fewer on every request's way (each is made, and passed through at every resumption).
        """
        prepared = operation.build_request(*args, **kwargs)
        bound = current_bound.get()
        remaining = bound.remaining() if bound is not None else None
        if bound is None or remaining is None:
            return self._send(operation, prepared, decide, bound)
        return self._send_within(operation, prepared, decide, bound, remaining)

    async def _send_within(
        self,
        operation: Operation[T],
        prepared: PreparedRequest,
        decide: Decide | None,
        bound: CallBound,
        remaining: float,
    ) -> T:
        """:meth:`_send` within the ``remaining`` seconds of the call's deadline."""
        name, method, path = operation.OPERATION_ID, prepared.method, prepared.path
        if remaining <= 0:
            raise self._past_deadline(name, method, path, sent=False)
        with anyio.move_on_after(remaining):
            return await self._send(operation, prepared, decide, bound)
        raise self._past_deadline(name, method, path, sent=True)

    async def _send(
        self,
        operation: Operation[T],
        prepared: PreparedRequest,
        decide: Decide | None,
        bound: CallBound | None,
    ) -> T:
        name, method, path = operation.OPERATION_ID, prepared.method, prepared.path
        url = self.base_url + path
        if prepared.params:
            url += "?" + _query_string(prepared.params)
        # The key goes on each request, not on a client-wide header dict.
        headers = _Headers(self._fixed_headers)
        headers["X-API-KEY"] = self._key.reveal()
        if prepared.headers:
            headers.update(prepared.headers)
        content = None if prepared.json is None else json.dumps(prepared.json, ensure_ascii=False).encode()
        policy = self.retry_policy
        telemetry, breaker, share = self.telemetry, self.breaker, self.connections.share
        studio = self.base_url
        debug = logger.isEnabledFor(logging.DEBUG)
        retry_number = 0
        failed: APIError | None = None  # the last attempt's error, once a retry is on its way
        while True:
            # Off (None) unless the client was given a Telemetry: then this attempt's span.
            attempt = None if telemetry is None else telemetry.attempt(operation, method, retry_number)
            probe = False
            try:
                if breaker is not None and failing_studios:
                    # Before the rate-limit turn: a studio that is down costs its callers nothing.
                    # (Nothing to ask while no studio of the process has failed lately.)
                    try:
                        probe = breaker.admit(name, method, path)
                    except CircuitOpenError as circuit_open:
                        if failed is None:
                            raise
                        # Opened while this call waited to retry: it ends as its retries would
                        # have, with its own last error (a booking flow decided on that one).
                        failed.add_note(f"not retried: {circuit_open}")
                        raise failed from failed.__cause__
                if self.throttle is not None:
                    # Outside the inner try: a wait longer than the call may take is our own
                    # RateLimitError, raised before anything is sent, not a failure to retry.
                    waited = await self.throttle.wait_turn(
                        name, patience=self.patience(bound), method=method, path=path
                    )
                    if attempt is not None:
                        attempt.waited(waited)
                try:
                    # Timed only for the DEBUG line (a clock read per request otherwise for nothing).
                    started = time.perf_counter() if debug else 0.0
                    sent_headers = headers if attempt is None else attempt.outgoing(headers)
                    # The studio's fair share of the pool (_connections.py), if it shares one: the
                    # backend takes this request's turn, at once in the common case, by waiting
                    # otherwise; it is given back once the answer is read.
                    turn = None if share is None else Turn(share, studio, self._pool_timeout, self)
                    try:
                        try:
                            if self.closed:
                                # A call that was waiting (for its rate-limit turn, a retry) when
                                # the client was closed: nothing is sent, and no backend reopens a
                                # session nobody would close.
                                raise _NotSent(self._closed_error(name, method, path))
                            response = await self.backend.send(method, url, sent_headers, content, turn)
                        finally:
                            if turn is not None:
                                turn.give_back()
                    except ClosedMeanwhile:
                        # Closed while it waited for a connection: nothing was sent either.
                        raise _NotSent(self._closed_error(name, method, path)) from None
                    except SendFailure as failure:
                        raise self._connection_error(name, method, path, failure) from failure.__cause__
                    except ResponseTooLarge as too_large:
                        raise _invalid(
                            name, method, path, too_large.status_code, "<body>",
                            f"answer larger than the {_size(too_large.limit)} cap (max_response_bytes)",
                        ) from None  # fmt: skip
                    if debug:
                        logger.debug(
                            "%s %s %s -> %s in %.1f ms (attempt %d)",
                            name, method, path, response.status_code, (time.perf_counter() - started) * 1000,
                            retry_number + 1,
                        )  # fmt: skip
                    if response.status_code >= 300:
                        raise self._status_error(operation, method, path, response)
                    if breaker is not None and failing_studios and (probe or breaker.tracking):
                        breaker.record(None, probe=probe)
                        probe = False
                    result: T = self._parse(operation, method, path, response)
                    if attempt is not None:
                        attempt.end(response.status_code, None)
                    return result
                except (APIStatusError, APIConnectionError, ResponseValidationError) as exc:
                    if breaker is not None:
                        breaker.record(exc, probe=probe)
                        probe = False
                    if attempt is not None:  # ended before the decision, which may send (a check)
                        attempt.end(None, exc)
                        attempt = None
                    if (
                        self.throttle is not None
                        and isinstance(exc, RateLimitError)
                        and exc.retry_after is None
                    ):
                        await self.throttle.locked_out(name)
                    can_retry = retry_number < policy.max_retries
                    verdict = await (decide or self._retry_if_retryable)(exc, can_retry)
                    if isinstance(verdict, Resolved):
                        resolved: T = verdict.value
                        return resolved
                    if not (verdict and can_retry):
                        raise
                    if breaker is not None and breaker.blocks_retry():
                        exc.add_note(f"not retried: the studio's circuit breaker opened ({self.host})")
                        raise
                    delay = policy.delay(exc, retry_number)
                    _check_wait(exc, delay, bound)
                    logger.warning(
                        "retrying after %s (attempt %d failed; waiting %.2f s)", exc, retry_number + 1, delay
                    )
                    await policy.sleep(delay)
                    retry_number += 1
                    failed = exc
            except BaseException as exc:
                # Not sent (its rate-limit turn, a closed client), cancelled, or a bug: the span ends.
                error = exc.error if isinstance(exc, _NotSent) else exc
                if attempt is not None:
                    attempt.end(None, error)
                if probe and breaker is not None:
                    breaker.release(probe=True)  # no verdict: the next call probes
                if error is not exc:
                    raise error from None
                raise

    def patience(self, bound: CallBound | None) -> float | None:
        """How long this request may wait for its rate-limit turn: the client's timeout, or less."""
        limits = [self.read_timeout]
        if bound is not None:
            limits += [bound.max_rate_limit_wait, bound.remaining()]
        known = [limit for limit in limits if limit is not None]
        return max(0.0, min(known)) if known else None

    def _closed_error(self, name: str, method: str, path: str) -> APIConnectionError:
        return self._no_answer(
            APIConnectionError, name, method, path, "not sent: the client has been closed", sent=False
        )

    def _past_deadline(self, name: str, method: str, path: str, *, sent: bool) -> APIConnectionError:
        what = "did not end within the call's deadline" + ("" if sent else "; nothing was sent")
        return self._no_answer(APITimeoutError, name, method, path, what, sent=sent)

    def _no_answer(
        self, cls: type[APIConnectionError], name: str, method: str, path: str, what: str, *, sent: bool,
        certificate_rejected: bool = False,
    ) -> APIConnectionError:  # fmt: skip
        """A call that ended without an answer, named with its host (which tenant)."""
        error = cls(f"{name} ({method} {self.host}{path}) {what}", operation=name, method=method, path=path)
        error.host = self.host
        error.may_have_reached_server = sent
        # Not retried (_retry.py): a certificate that fails verification stays failing.
        error.certificate_rejected = certificate_rejected
        return error

    async def _retry_if_retryable(self, exc: APIError, can_retry: bool) -> bool:
        return self.retry_policy.is_retryable(exc)

    # -- answers --------------------------------------------------------------------------------
    @staticmethod
    def _parse(operation: Operation[T], method: str, path: str, response: HTTPResponse) -> T:
        """The generated parser, with anything it trips over turned into ResponseValidationError."""
        name, status = operation.OPERATION_ID, response.status_code
        if status not in operation.SUCCESS_STATUSES:  # a 204 has no body to complain about
            raise _invalid(name, method, path, status, "<status>", "unexpected status")
        try:
            data = None if method == "HEAD" else json.loads(response.content)
            return operation.parse_response(status, data)
        except json.JSONDecodeError as exc:
            raise _invalid(name, method, path, status, "<body>", f"not JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise _invalid(name, method, path, status, "<body>", "not UTF-8 text") from exc
        except RecursionError as exc:  # json's C decoder gives up on [[[[...: no answer nests that deep
            raise _invalid(name, method, path, status, "<body>", "JSON nested too deeply") from exc
        except KeyError as exc:
            raise _invalid(name, method, path, status, str(exc.args[0]), "required field missing") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            message = str(exc)
            match = _field_in_message().match(message)
            raise _invalid(
                name, method, path, status, match.group(1) if match else "<body>", message
            ) from exc

    def _connection_error(
        self, name: str, method: str, path: str, failure: SendFailure
    ) -> APIConnectionError:
        cls = APITimeoutError if failure.timed_out else APIConnectionError
        what = "timed out" if failure.timed_out else "failed"
        # Queries are left out of the message, also where a library's own text quotes the URL
        # (aiohttp's timeouts do): they hold customer ids, nothing a log needs.
        description = _QUERY.sub("", failure.description)
        error = self._no_answer(
            cls, name, method, path, f"{what}: {description}", sent=failure.reached_server,
            certificate_rejected=failure.certificate_rejected,
        )  # fmt: skip
        error.no_free_connection = failure.no_free_connection
        return error

    def _status_error(
        self, operation: Operation[Any], method: str, path: str, response: HTTPResponse
    ) -> APIStatusError:
        from ._generated.models import ErrorResponse  # loaded with the first error, not at import

        name, status = operation.OPERATION_ID, response.status_code
        body: ErrorResponse | None = None
        try:
            data = json.loads(response.content)
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
        if 300 <= status < 400:
            fields["error_message"] = self._redirect_message(path, response.headers.get("Location"))
        cls = status_error_class(status)
        extra: dict[str, Any] = {}
        if cls in (RateLimitError, ServiceUnavailableError):
            extra["retry_after"] = parse_retry_after(response.headers.get("Retry-After"))
        elif cls is PermissionDeniedError:
            extra["required_scope"] = operation.REQUIRED_SCOPE
        error = cls(
            status_code=status, operation=name, method=method, path=path, response=response, **fields, **extra
        )
        logger.info("%s (%s %s) -> HTTP %s %s", name, method, path, status, error.error_code or "")
        return error

    def _redirect_message(self, path: str, location: str | None) -> str:
        """What a 3xx says: where it points (its origin only: a query may hold anything), and
        that it was not followed, since following it would take the key along."""
        if not location:
            return "a redirect without a Location, not followed"
        target = urlsplit(urljoin(f"{self.host}{path}", location.strip()))
        origin = f"{target.scheme}://{target.netloc.rpartition('@')[2]}"
        where = "elsewhere on the same origin" if origin == self.host else f"to {origin}"
        return f"a redirect {where}, not followed (the API key goes to base_url's origin only)"


class _NotSent(Exception):
    """Carries an error of a request that was not sent past the retry loop's handler: not a
    failure to retry, nor one that says anything of the studio."""

    def __init__(self, error: APIConnectionError) -> None:
        super().__init__(str(error))
        self.error = error


def _query_string(params: dict[str, Any]) -> str:
    """``urlencode(params)`` for the generated operations' queries (names the spec spells in ASCII
    letters; ints, strings, dates as values), without quoting the ints, which is most of its cost."""
    return "&".join(
        f"{name}={value}" if type(value) is int else f"{name}={quote_plus(str(value))}"
        for name, value in params.items()
    )


def _size(limit: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


def _check_wait(exc: APIError, delay: float, bound: CallBound | None) -> None:
    """Raise ``exc`` now if waiting ``delay`` before its retry is longer than the call accepts."""
    if bound is None:
        return
    if (
        isinstance(exc, RateLimitError)
        and bound.max_rate_limit_wait is not None
        and delay > bound.max_rate_limit_wait
    ):
        exc.add_note(f"not retried: the wait ({delay:.1f} s) is longer than max_rate_limit_wait")
        raise exc
    remaining = bound.remaining()
    if remaining is not None and delay >= remaining:
        exc.add_note(f"not retried: the wait ({delay:.1f} s) would pass the call's deadline")
        raise exc


def _invalid(
    name: str, method: str, path: str, status: int, field: str, detail: str
) -> ResponseValidationError:
    return ResponseValidationError(
        operation=name, method=method, path=path, field=field, detail=detail, status_code=status
    )


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
