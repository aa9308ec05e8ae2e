"""``stat-pipeline api --host H --port P``: the statistics API (and what is mounted next to
it) on the warehouse named by ``STAT_WAREHOUSE_URL``, served by uvicorn.

Secrets come from the environment only and are never logged:
  STAT_WAREHOUSE_URL       the warehouse (PostgreSQL URL); its tables are created if missing;
  STAT_API_TOKEN           the token every request must carry in X-Auth-Token; when unset a
                           token is generated and printed once, at start, on stdout;
  STAT_API_WAZO_AUTH_URL   optional: check tokens against this wazo-auth instead (a Wazo
                           user's own tokens, with call-logd's ACLs and the tenants they see),
                           e.g. https://wazo.example.com/api/auth or http://127.0.0.1:9497.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from stat_pipeline.commands.serve import WAREHOUSE_URL_VARIABLE

TOKEN_VARIABLE = "STAT_API_TOKEN"
WAZO_AUTH_VARIABLE = "STAT_API_WAZO_AUTH_URL"


class ApiConfigError(RuntimeError):
    """A configuration problem, told in one line."""


@dataclass(frozen=True)
class TokenSetup:
    checker: object
    announcement: Optional[str]  # what to print once at start (a generated token), or None


def warehouse_url(env: dict[str, str]) -> str:
    url = env.get(WAREHOUSE_URL_VARIABLE, "")
    if not url:
        raise ApiConfigError(f"{WAREHOUSE_URL_VARIABLE} is not set: the API reads the warehouse it "
                             "names (postgresql+psycopg2://user@host/db)")
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ApiConfigError(f"{WAREHOUSE_URL_VARIABLE} must be a PostgreSQL URL "
                             "(postgresql+psycopg2://user@host/db)")
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which we do not ship
    return url if scheme == "postgresql+psycopg2" else "postgresql+psycopg2://" + rest


def token_setup(env: dict[str, str]) -> TokenSetup:
    from stat_pipeline.serving.auth import StaticToken, WazoAuth, generated_token

    if auth_url := env.get(WAZO_AUTH_VARIABLE, "").strip():
        try:
            return TokenSetup(WazoAuth(auth_url), f"tokens are checked by wazo-auth at {auth_url}")
        except ValueError as exc:
            raise ApiConfigError(str(exc)) from None
    if token := env.get(TOKEN_VARIABLE, ""):
        return TokenSetup(StaticToken(token), None)
    token = generated_token()
    return TokenSetup(StaticToken(token),
                      f"{TOKEN_VARIABLE} is not set; this run's token (X-Auth-Token): {token}")


def check_warehouse(url: str) -> None:
    """Reach the warehouse and create its tables now, so a wrong URL is one line, not a
    traceback from the server's start-up."""
    import sqlalchemy as sa

    from stat_pipeline.warehouse.migrate import migrate

    engine = sa.create_engine(url)
    try:
        migrate(engine)
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
        raise ApiConfigError(f"cannot use the warehouse ({WAREHOUSE_URL_VARIABLE}): {first}") from None
    finally:
        engine.dispose()


def run_api(host: str, port: int, env: Optional[dict[str, str]] = None,
            print_line: Callable[[str], None] = print) -> int:
    import uvicorn

    from stat_pipeline.serving.app import create_app

    env = dict(os.environ if env is None else env)
    url = warehouse_url(env)
    tokens = token_setup(env)
    check_warehouse(url)
    app = create_app(url, tokens.checker, mounts=extra_mounts())
    if tokens.announcement:
        print_line(f"stat-pipeline api: {tokens.announcement}")
    print_line(f"stat-pipeline api: http://{host}:{port}/1.0/queues/statistics "
               f"(OpenAPI: http://{host}:{port}/1.0/api/api.yml)")
    # uvicorn's access log shows method, path and query, never headers (the token)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


def extra_mounts() -> list:
    """What the process serves next to the API: the supervisor dashboard, when installed."""
    try:
        from stat_pipeline.serving.dashboard import dashboard_mount
    except ImportError:
        return []
    return [dashboard_mount("/")]
