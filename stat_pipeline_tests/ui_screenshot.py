#!/usr/bin/env python3
"""Take PNG screenshots of the Dagster UI of a running ``stat-pipeline demo`` (or ``dagster dev``).

This is a standalone helper script, not a pytest test. You look at the PNGs it writes.

    python stat_pipeline_tests/ui_screenshot.py http://127.0.0.1:3111 /tmp/ui_shots
    python stat_pipeline_tests/ui_screenshot.py http://127.0.0.1:3111 /tmp/ui_shots \
        --partition 2026-11-22-14:00

Requirements: the Python standard library, and Debian's Chromium (``apt-get install -y chromium``,
which gives /usr/bin/chromium). It needs no Playwright and no driver. Plain
``chromium --headless --screenshot --virtual-time-budget=15000`` renders the React app of
Dagster 1.13 in full (checked with dagster-webserver 1.13.27 and Chromium 156).

Pages (the URLs are for Dagster 1.13):
  asset_graph.png       /asset-groups: global asset lineage. Groups are collapsed, with edges
                        between groups.
  asset_lineage.png     /assets/stat_queue_periodic?view=lineage&lineageScope=upstream
                        &lineageDepth=5: every upstream asset, drawn inside its group box.
                        Without lineageDepth the depth is 1; the UI caps it at the graph's
                        real depth (3 here).
  asset_partitions.png  /assets/stat_queue_periodic?view=partitions: the partition bar and the
                        materialized/missing counts.
  asset_partition.png   the same page with one partition selected, showing that partition's
                        metadata. Only taken with --partition KEY.
  asset_overview.png    /assets/stat_queue_periodic: status, latest metadata, definition.
  asset_plots.png       /assets/stat_queue_periodic?view=events with the metadata section
                        switched from "Table" to "Plots": each numeric metadata entry plotted
                        per partition (calls_total, answered_rate, ... hour by hour). The
                        switch is React state, not in the URL, so the script serves the UI
                        through a small local proxy that adds a script clicking "Plots" to the
                        pages it serves for this shot (URL marker ``shot=plots``).
                        Checked 2026-12-02 through Chromium's DevTools on the demo: the open
                        source UI of 1.13.27 has no such switch (the asset page's buttons are
                        Overview, Partitions, Events, Checks, Lineage; ``view=plots`` renders
                        empty), so this shot shows the Events view: one materialization per
                        hour with that hour's own figures. Per-hour curves are drawn by the
                        supervisor dashboard (README).

The "Join the Dagster community" modal: on its first visit to a page served from
http://127.0.0.1 or http://localhost, the UI opens this modal over the page, and plain
headless Chromium can't click its Skip button. The UI shows the modal only when
``window.location.origin`` starts with one of those two origins (CommunityNux.tsx). So, by
default, the script opens a loopback server under an alias host name
(``http://dagster-ui.invalid:PORT``) and maps that name to the real address with
``--host-resolver-rules``. The modal never appears, and the server's state is not changed.
``--dismiss-nux`` does what Skip does instead: it sends the GraphQL ``mutation { setNuxSeen }``,
which writes ``$DAGSTER_HOME/.nux/nux.yaml`` on the server.

Chromium runs with the flags this machine needs (--headless --no-sandbox --disable-gpu
--disable-quic --no-first-run --disable-background-networking --disable-component-update
--disable-sync), and each shot gets a new, empty --user-data-dir.
Chromium's stderr goes to ``<out>/<name>.chromium.log``. dbus errors in that log are normal
in a container. Debian's /usr/bin/chromium wrapper also prints ``[: ...: unexpected operator``,
which does no harm.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ASSET = "stat_queue_periodic"
ALIAS_HOST = "dagster-ui.invalid"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def pages(asset: str, partition: str | None) -> list[tuple[str, str]]:
    q = urllib.parse.quote
    shots = [
        ("asset_graph", "/asset-groups"),
        ("asset_lineage", f"/assets/{q(asset)}?view=lineage&lineageScope=upstream&lineageDepth=5"),
        ("asset_partitions", f"/assets/{q(asset)}?view=partitions"),
    ]
    if partition:
        shots.append(("asset_partition",
                      f"/assets/{q(asset)}?view=partitions&partition={q(partition, safe='')}"))
    shots.append(("asset_overview", f"/assets/{q(asset)}"))
    shots.append(("asset_plots", f"/assets/{q(asset)}?view=events&{PLOTS_MARKER}"))
    return shots


PLOTS_MARKER = "shot=plots"
# Added to the HTML the proxy serves: on a page opened with PLOTS_MARKER, click the metadata
# section's "Plots" switch once it is rendered.
CLICK_PLOTS = b"""<script>
if (location.search.includes("%s")) {
  const t = setInterval(() => {
    for (const b of document.querySelectorAll("button")) {
      if (b.textContent.trim() === "Plots") { b.click(); clearInterval(t); return; }
    }
  }, 300);
}
</script>""" % PLOTS_MARKER.encode()


def start_proxy(base: str) -> str:
    """Serve ``base`` on a free loopback port, adding CLICK_PLOTS to its HTML pages; returns
    the proxy's base URL. HTTP only (the UI's pages and GraphQL queries), in a daemon thread."""
    import http.client
    import http.server
    import threading

    target = urllib.parse.urlsplit(base)

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "accept-encoding", "connection")}
            conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if "text/html" in (resp.getheader("Content-Type") or ""):
                data = data.replace(b"</body>", CLICK_PLOTS + b"</body>", 1)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                     "content-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_HEAD = _forward

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def wait_for_server(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/server_info", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base}/server_info did not answer within {timeout:.0f} s")
        time.sleep(1)


def dismiss_nux(base: str) -> None:
    body = json.dumps({"query": "mutation SetNuxSeen { setNuxSeen }"}).encode()
    req = urllib.request.Request(base + "/graphql", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        print("setNuxSeen:", resp.read().decode().strip())


def browser_base(base: str, keep_host: bool) -> tuple[str, list[str]]:
    """The base URL Chromium opens, and any extra flags it needs to reach it."""
    parts = urllib.parse.urlsplit(base)
    host = parts.hostname or ""
    if keep_host or host not in LOOPBACK:
        return base, []
    target = "127.0.0.1" if host == "localhost" else host
    netloc = ALIAS_HOST + (f":{parts.port}" if parts.port else "")
    alias = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return alias, [f"--host-resolver-rules=MAP {ALIAS_HOST} {target}"]


def screenshot(chromium: str, url: str, png: Path, extra: list[str], window: str,
               budget_ms: int, timeout: float) -> bool:
    log = png.with_suffix(".chromium.log")
    png.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="ui_shot_profile_")
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra,
           f"--window-size={window}", f"--virtual-time-budget={budget_ms}",
           f"--screenshot={png}", url]
    try:
        with log.open("w") as err:
            subprocess.run(cmd, stdout=err, stderr=subprocess.STDOUT, timeout=timeout,
                           check=False)
    except subprocess.TimeoutExpired:
        print(f"  chromium timed out after {timeout:.0f} s (see {log})", file=sys.stderr)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return png.exists() and png.stat().st_size > 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url", help="e.g. http://127.0.0.1:3111")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--asset", default=ASSET)
    ap.add_argument("--partition", help="also take the partitions page with this key selected, "
                                        "e.g. 2026-11-22-14:00")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--window-size", default="1600,1000")
    ap.add_argument("--virtual-time-budget", type=int, default=15000, help="ms")
    ap.add_argument("--timeout", type=float, default=120, help="s per screenshot")
    ap.add_argument("--wait", type=float, default=60, help="s to wait for /server_info")
    ap.add_argument("--keep-host", action="store_true",
                    help="open the base URL as given (the community modal may cover the page)")
    ap.add_argument("--dismiss-nux", action="store_true",
                    help="send the GraphQL setNuxSeen mutation first (what the modal's Skip does)")
    args = ap.parse_args(argv)

    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}: apt-get install -y chromium", file=sys.stderr)
        return 2
    base = args.base_url.rstrip("/")
    wait_for_server(base, args.wait)
    if args.dismiss_nux:
        dismiss_nux(base)
    open_base, extra = browser_base(base, args.keep_host)
    proxy_base, proxy_extra = browser_base(start_proxy(base), args.keep_host)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    failed = 0
    for name, path in pages(args.asset, args.partition):
        png = args.out_dir / f"{name}.png"
        via_proxy = PLOTS_MARKER in path
        url = (proxy_base if via_proxy else open_base) + path
        flags = proxy_extra if via_proxy else extra
        t0 = time.monotonic()
        ok = screenshot(args.chromium, url, png, flags, args.window_size,
                        args.virtual_time_budget, args.timeout)
        took = time.monotonic() - t0
        if ok:
            print(f"{png}  ({png.stat().st_size} bytes, {took:.1f} s)  {url}")
        else:
            failed += 1
            print(f"FAILED {name}: {url} (see {png.with_suffix('.chromium.log')})",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
