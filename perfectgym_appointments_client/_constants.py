"""Every default and limit of the client in one place, each with the reason for its value."""

from __future__ import annotations

__all__ = [
    "DEFAULT_BOOKING_CHECK_SETTLE",
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_FAILURES",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HTTP_BACKEND",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RATE_LIMIT_REQUESTS",
    "DEFAULT_RATE_LIMIT_SECONDS",
    "DEFAULT_SEARCH_CONCURRENCY",
    "DEFAULT_SLICE_SIZE",
    "DEFAULT_STORAGE_RETRY_AFTER",
    "DEFAULT_STORAGE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ENV_ACCEPT_LANGUAGE",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_HTTP_BACKEND",
    "HTTP_BACKENDS",
    "KEEPALIVE_EXPIRY",
    "MAX_BREAKER_COOLDOWN",
    "MAX_CONNECTIONS",
    "MAX_DAYS_AHEAD",
    "MAX_DAYS_PER_REQUEST",
    "MAX_RETRIES",
    "MAX_SLICE_SIZE",
    "MIN_SLICE_SIZE",
    "READ_TIMEOUTS_PER_ANSWER",
]

# -- environment ----------------------------------------------------------------------------------
ENV_BASE_URL = "PERFECTGYM_BASE_URL"
ENV_API_KEY = "PERFECTGYM_API_KEY"
ENV_ACCEPT_LANGUAGE = "PERFECTGYM_ACCEPT_LANGUAGE"  # read by the CLI only
ENV_HTTP_BACKEND = "PERFECTGYM_HTTP_BACKEND"  # read by the CLI only

# -- the API's own bounds (openapi.yaml): outside them a tenant answers 400 -----------------------
MIN_SLICE_SIZE = 10
MAX_SLICE_SIZE = 100
DEFAULT_SLICE_SIZE = 50
MAX_DAYS_PER_REQUEST = 6
# The longest slot window a call asks for (get_slots, search_slots, book_first_available): a year
# and a day, beyond any booking horizon a studio sets (the sandbox's is 28 days); 61 requests.
MAX_DAYS_AHEAD = 366
# A tenant allows 1,000 requests a minute per endpoint, then refuses that endpoint for a minute.
DEFAULT_RATE_LIMIT_REQUESTS = 1000
DEFAULT_RATE_LIMIT_SECONDS = 60
# Each call to a shared rate-limit storage (Redis), connect and read; past it the budget is kept
# in-process, and the storage asked again after DEFAULT_STORAGE_RETRY_AFTER seconds.
DEFAULT_STORAGE_TIMEOUT = 0.25
DEFAULT_STORAGE_RETRY_AFTER = 5.0

# -- HTTP -----------------------------------------------------------------------------------------
HTTP_BACKENDS = ("httpx", "aiohttp")
DEFAULT_HTTP_BACKEND = "httpx"  # runs on asyncio and trio; aiohttp is faster but asyncio only
DEFAULT_TIMEOUT = 30.0  # seconds for each of: waiting for a pooled connection, writing, reading
DEFAULT_CONNECT_TIMEOUT = 10.0
# One number for both pool limits. Fewer kept-alive connections than allowed ones (httpx's default
# is 20 of 100) makes httpcore 1.0's pool close an idle connection on nearly every release once
# more than 20 exist, so 100 busy tasks open a new connection (a TLS handshake) per request.
# And httpcore's bookkeeping on every request walks all its connections, quadratically
# (encode/httpx#3215): 100 kept-alive connections cost ~3 ms of client CPU per request on
# loopback, 16 about 1.4 ms (benchmarks/RESULTS.md, concurrency). 16 is also search_slots'
# default fan-out.
DEFAULT_MAX_CONNECTIONS = 16
# The most max_connections may be: past a few hundred, httpcore's per-request bookkeeping (above)
# costs more than the connections bring, and a tenant's rate limit allows no more anyway.
MAX_CONNECTIONS = 1000
KEEPALIVE_EXPIRY = 5.0
DEFAULT_SEARCH_CONCURRENCY = 16
# The most an answer may hold, counted decoded (a small gzip body can unpack to gigabytes). The
# largest real answer is a 6-day slot list of a busy studio: 96 quarter-hour slots a day x 6 days
# x ~360 bytes with two instructors each is ~210 KB; with 20 instructors listed per slot, 1.3 MB.
# 16 MiB is 80 times the first and 12 times the second, and bounds what a hostile or broken
# server can make the client hold (about twice this, while the body is joined).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# The timeouts bound each read, so a server that sends a byte a second never trips them. One
# attempt as a whole is bounded too: its pool wait, connect and write timeouts plus this many
# read timeouts (one for the answer to begin, one for it to end): 130 s by default.
READ_TIMEOUTS_PER_ANSWER = 2

# -- many studios ---------------------------------------------------------------------------------
# Consecutive attempts without an answer (or with a 5xx) that open a studio's circuit breaker: two
# calls' worth with the default two retries, so one unlucky call never opens it.
DEFAULT_BREAKER_FAILURES = 5
# Seconds an open breaker fails its studio's calls at once before one probe goes; at most
# MAX_BREAKER_COOLDOWN, so a studio that is back is used again within half a minute.
DEFAULT_BREAKER_COOLDOWN = 10.0
MAX_BREAKER_COOLDOWN = 30.0

# -- retries and the booking check ----------------------------------------------------------------
DEFAULT_MAX_RETRIES = 2
# The most retries a policy may ask for: ten waits of up to backoff_cap (8 s) are already
# minutes of a caller's time; more is a mistake, not a setting.
MAX_RETRIES = 10
# Seconds the booking check waits before it looks, so a request still in progress has landed.
DEFAULT_BOOKING_CHECK_SETTLE = 1.0
