"""Debian's headless ``chromium`` driven through its DevTools protocol (websocket-client).

A real browser for the dashboard tests: it runs the page's JavaScript, Chart.js included,
talks to a real server, downloads the CSV files into a folder and takes screenshots. No
driver, no Playwright: Chromium writes the port it listens on into ``DevToolsActivePort`` of
its profile folder, and we speak the protocol's JSON messages over one websocket per target.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import websocket

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
]


def chromium_path() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class _Session:
    """One websocket to one DevTools target; replies matched to requests by id."""

    def __init__(self, url: str) -> None:
        # suppress_origin: Chromium refuses websocket upgrades carrying a foreign Origin
        self.ws = websocket.create_connection(url, timeout=120, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params: Any) -> dict:
        request_id = next(self._ids)
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """A headless Chromium with one page; ``close()`` stops it."""

    def __init__(self, profile_dir: Path, downloads: Path, width: int = 1400,
                 height: int = 1000) -> None:
        executable = chromium_path()
        if executable is None:
            raise BrowserError("no chromium on PATH (apt-get install -y chromium)")
        profile_dir.mkdir(parents=True, exist_ok=True)
        downloads.mkdir(parents=True, exist_ok=True)
        self.downloads = downloads
        self.log = (profile_dir.parent / f"{profile_dir.name}.chromium.log").open("w")
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            port, browser_path = self._devtools_address(profile_dir / "DevToolsActivePort")
            self.browser = _Session(f"ws://127.0.0.1:{port}{browser_path}")
            self.browser.call("Browser.setDownloadBehavior", behavior="allow",
                              downloadPath=str(downloads), eventsEnabled=True)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            self.page = _Session(pages[0]["webSocketDebuggerUrl"])
            self.page.call("Page.enable")
            self.page.call("Runtime.enable")
            self.page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_address(self, active_port: Path) -> tuple[int, str]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode} (see {self.log.name})")
            if active_port.exists():
                lines = active_port.read_text().splitlines()
                if len(lines) >= 2:
                    return int(lines[0]), lines[1]
            time.sleep(0.1)
        raise BrowserError(f"chromium wrote no DevToolsActivePort (see {self.log.name})")

    def goto(self, url: str, timeout: float = 15.0) -> None:
        """Navigate to ``url`` and return once the page's document is that URL's. A
        navigation can be lost (once in a loaded full suite, the dashboard test found a
        page that was not the dashboard after 60 s): then it is sent again, and a page that
        never arrives fails here, saying where the browser is."""
        document = url.split("#")[0]
        href = None
        for attempt in range(3):
            if attempt:
                # the same URL again would only be a same-document (fragment) navigation,
                # never a new request for the document
                self.page.call("Page.navigate", url="about:blank")
            self.page.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout / 3
            while time.monotonic() < deadline:
                href, ready = self.evaluate("[location.href, document.readyState]")
                if href.split("#")[0] == document and ready != "loading":
                    return
                time.sleep(0.1)
        raise BrowserError(f"could not load {url}: the browser is at {href!r}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.page.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]}…: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 60.0) -> Any:
        """Poll until ``expression`` is truthy; its value. A timeout fails with ``what``
        and the page's state and error text, not with a bare timeout."""
        deadline = time.monotonic() + timeout
        # while a page loads, document.body may not exist yet: that is "not yet", not an error
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        while True:
            value = self.evaluate(guarded)
            if value:
                return value
            if time.monotonic() > deadline:
                state = self.evaluate("JSON.stringify({state: document.body && document.body.dataset.state,"
                                      " error: (document.getElementById('error') || {}).textContent,"
                                      " login: (document.getElementById('login-error') || {}).textContent})")
                raise BrowserError(f"waited {timeout:.0f} s for {what}; page: {state}")
            time.sleep(0.2)

    def insert_text(self, text: str) -> None:
        """Type ``text`` into the focused element, as a keyboard would."""
        self.page.call("Input.insertText", text=text)

    def screenshot(self, png: Path) -> Path:
        """The whole page (beyond the window's height) as a PNG."""
        metrics = self.page.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": size["width"],
                                    "height": size["height"], "scale": 1})
        png.write_bytes(base64.b64decode(shot["data"]))
        return png

    def wait_for_download(self, name: str, timeout: float = 30.0) -> Path:
        """The downloaded file ``name`` once Chromium has finished writing it."""
        path = self.downloads / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            partial = list(self.downloads.glob("*.crdownload"))
            if path.exists() and not partial:
                return path
            time.sleep(0.1)
        raise BrowserError(f"no download {name} in {self.downloads}: "
                           f"{sorted(p.name for p in self.downloads.iterdir())}")

    def close(self) -> None:
        for session in ("page", "browser"):
            if hasattr(self, session):
                try:
                    getattr(self, session).close()
                except Exception:
                    pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
