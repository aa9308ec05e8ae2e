"""The supervisor dashboard: static HTML/JS/CSS served at ``/`` by the API's process.

It reads only the statistics API (the same origin's ``/1.0/...`` routes, with the user's
``X-Auth-Token``), so it shows nothing the API would not give to that token. The files are
package data, served as they are (no build step at install time); the charting library is
Chart.js's prebuilt bundle from npm, pinned in ``chart.js.lock`` and refreshed by
``refresh_chartjs.sh``.
"""
from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

DASHBOARD_DIR = Path(__file__).resolve().parent / "static"

# The page loads only its own files and talks only to its own origin's API: a stray
# script (or an injected one) could not send a token elsewhere. Blob URLs carry the CSV
# downloads.
HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
     b"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # a new release of the files is picked up at the next load, not after a cache expiry
    (b"cache-control", b"no-cache"),
]


class _WithHeaders:
    """Adds HEADERS to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def dashboard_mount(path: str = "/") -> Mount:
    """A Mount serving the dashboard (``index.html`` at ``path``); add it after the API's
    routes, so that ``/1.0/...`` stays the API's."""
    files = StaticFiles(directory=DASHBOARD_DIR, html=True)
    return Mount(path, app=_WithHeaders(files), name="dashboard")
