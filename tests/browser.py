"""Headless Chromium over the Chrome DevTools Protocol, for the documentation site's browser test
(tests/test_docs_browser.py).

The system's Chromium (Debian's ``chromium``; ``.ci/run`` installs it) is driven directly over
its DevTools websocket with aiohttp, a dev dependency already: Playwright and Selenium would each
bring a second browser build or a driver binary, which a machine without internet cannot fetch.
The protocol calls used are few (open a tab, navigate and wait for its load, evaluate a script,
type keys), and every wait has a deadline: a condition is evaluated in the page, re-checked
there until it holds or the deadline passes, never a fixed sleep.

The facade is synchronous (one private event loop, run only inside each call) so that
module-scoped pytest fixtures can share one browser without an async fixture scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")

# Generous: the suite runs on 4 xdist workers under coverage on 2 cores.
DEFAULT_TIMEOUT = 20.0


class BrowserError(RuntimeError):
    """Chromium did not start, a protocol call failed, or a condition did not hold in time."""


def find_chromium() -> str | None:
    """The first Chromium-family executable on PATH, or None."""
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def _flags(profile: Path) -> list[str]:
    flags = [
        "--headless=new",
        "--disable-gpu",
        # Containers give /dev/shm 64 MB; Chromium's renderers crash on pages that outgrow it.
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        # Wide enough for Material's desktop layout: the search box in the header, the sidebar.
        "--window-size=1280,900",
        # The site is served on loopback; every other host fails at once instead of hanging the
        # load event on a machine without internet (Material's theme asks Google Fonts).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--remote-debugging-address=127.0.0.1",
        # A free port, chosen by Chromium and written to DevToolsActivePort: xdist-safe.
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
    ]
    if os.geteuid() == 0:
        # Chromium refuses to start its sandbox as root (CI containers); the pages are our own.
        flags.append("--no-sandbox")
    return [*flags, "about:blank"]


class Browser:
    """One headless Chromium with one tab, driven over CDP. Use ``Browser.launch`` (a context
    manager): the browser is always stopped and its profile removed on exit."""

    def __init__(self, executable: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.executable = executable
        self.timeout = timeout
        self._dir = tempfile.TemporaryDirectory(prefix="pgac-chromium-", ignore_cleanup_errors=True)
        self._profile = Path(self._dir.name) / "profile"
        self._log_path = Path(self._dir.name) / "chromium.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session_id: str | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    @classmethod
    @contextlib.contextmanager
    def launch(cls, executable: str, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Browser]:
        browser = cls(executable, timeout=timeout)
        try:
            browser._start()
            yield browser
        finally:
            browser._close()

    # --- lifecycle -------------------------------------------------------------------------

    def _start(self) -> None:
        self._profile.mkdir()
        with self._log_path.open("wb") as log:
            # Its own process group, so that the renderers and helpers it forks are stopped with
            # it; stderr goes to a file, never a pipe nobody drains (a full pipe blocks Chromium).
            self._proc = subprocess.Popen(
                [self.executable, *_flags(self._profile)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        ws_url = self._devtools_url()
        self._loop.run_until_complete(self._connect(ws_url))

    def _devtools_url(self) -> str:
        """Chromium writes its port and browser target path to DevToolsActivePort once it listens."""
        active = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(
                    f"{self.executable} exited with {self._proc.returncode}: {self._log_tail()}"
                )
            with contextlib.suppress(FileNotFoundError):
                lines = active.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.02)
        raise BrowserError(
            f"{self.executable} did not open its DevTools port in {self.timeout} s: {self._log_tail()}"
        )

    async def _connect(self, ws_url: str) -> None:
        self._http = aiohttp.ClientSession()
        # Pages' DOM answers can be large; no frame size limit.
        self._ws = await self._http.ws_connect(ws_url, max_msg_size=0)
        target = await self._call("Target.createTarget", {"url": "about:blank"}, browser_level=True)
        attached = await self._call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser_level=True
        )
        self._session_id = attached["sessionId"]
        await self._call("Page.enable")
        await self._call("Page.setLifecycleEventsEnabled", {"enabled": True})

    def _close(self) -> None:
        try:
            if self._ws is not None and not self._ws.closed:
                # Browser.close may drop the socket before it answers: either way it is closing.
                with contextlib.suppress(Exception):
                    self._loop.run_until_complete(
                        asyncio.wait_for(self._call("Browser.close", browser_level=True), timeout=5)
                    )
            self._loop.run_until_complete(self._disconnect())
        finally:
            self._loop.close()
            self._stop_process()
            self._dir.cleanup()

    async def _disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def _stop_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Helpers of this browser's own group that outlived it (its id is the group's).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # --- protocol --------------------------------------------------------------------------

    async def _call(
        self, method: str, params: dict[str, Any] | None = None, *, browser_level: bool = False
    ) -> Any:
        assert self._ws is not None
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if not browser_level:
            message["sessionId"] = self._session_id
        await self._ws.send_str(json.dumps(message))
        while True:
            answer = await self._receive()
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self._events.append(answer)

    async def _receive(self) -> dict[str, Any]:
        assert self._ws is not None
        frame = await self._ws.receive(timeout=self.timeout)
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise BrowserError(f"DevTools connection ended ({frame.type.name}): {self._log_tail()}")
        answer: dict[str, Any] = json.loads(frame.data)
        return answer

    async def _wait_event(self, method: str, match: dict[str, Any]) -> dict[str, Any]:
        def matches(event: dict[str, Any]) -> bool:
            params = event.get("params", {})
            return event.get("method") == method and all(params.get(k) == v for k, v in match.items())

        for event in self._events:
            if matches(event):
                self._events.remove(event)
                return event
        async with asyncio.timeout(self.timeout):
            while True:
                event = await self._receive()
                if matches(event):
                    return event
                if "method" in event:
                    self._events.append(event)

    def _run(self, coro: Any) -> Any:
        try:
            return self._loop.run_until_complete(coro)
        except TimeoutError as exc:
            raise BrowserError(f"no answer from Chromium in {self.timeout} s") from exc

    # --- what the tests use ----------------------------------------------------------------

    def navigate(self, url: str) -> int:
        """Open ``url`` in the tab and wait for its load event; return the document's HTTP status."""
        self._run(self._navigate(url))
        status = self.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
        return int(status)

    async def _navigate(self, url: str) -> None:
        self._events.clear()
        result = await self._call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        await self._wait_event("Page.lifecycleEvent", {"name": "load", "loaderId": result["loaderId"]})

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a script run in the page (a promise is awaited)."""
        result = self._run(
            self._call(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
            )
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Evaluate ``expression`` in the page until it is truthy (it is re-checked in the page
        whenever the DOM changes, and at the latest every 50 ms); return its value, or raise
        BrowserError naming ``what`` once the deadline passes."""
        budget_ms = int(self.timeout * 1000) - 500
        script = f"""new Promise((resolve) => {{
            const check = () => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }};
            const first = check();
            if (first) {{ resolve(first); return; }}
            const done = (value) => {{ observer.disconnect(); clearInterval(timer);
                                       clearTimeout(limit); resolve(value); }};
            const observer = new MutationObserver(() => {{ const v = check(); if (v) done(v); }});
            observer.observe(document, {{subtree: true, childList: true, attributes: true,
                                         characterData: true}});
            const timer = setInterval(() => {{ const v = check(); if (v) done(v); }}, 50);
            const limit = setTimeout(() => done(null), {budget_ms});
        }})"""
        value = self.evaluate(script)
        # null is the deadline's answer; a truthy value may still read as falsy here ({}, []).
        if value is None:
            raise BrowserError(f"timed out after {budget_ms} ms waiting for {what}")
        return value

    def set_viewport(self, width: int | None = None, height: int = 900) -> None:
        """Lay pages out as a window ``width`` CSS pixels wide would (navigations keep it);
        None goes back to the window's own size (1280x900)."""
        if width is None:
            self._run(self._call("Emulation.clearDeviceMetricsOverride"))
            return
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self._run(self._call("Emulation.setDeviceMetricsOverride", metrics))

    def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element as key presses (keydown, input, keyup)."""
        self._run(self._type(text))

    async def _type(self, text: str) -> None:
        for char in text:
            await self._call("Input.dispatchKeyEvent", {"type": "keyDown", "key": char, "text": char})
            await self._call("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})
