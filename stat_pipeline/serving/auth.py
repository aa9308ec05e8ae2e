"""Who may read which tenants' statistics: ``X-Auth-Token`` and ``Wazo-Tenant``.

Two ways to check a token, both answering "which tenants may this request see":

* ``StaticToken``: one shared secret (``STAT_API_TOKEN``, or one generated at start). It
  sees every tenant; a ``Wazo-Tenant`` header narrows the answer to that tenant.
* ``WazoAuth``: the token is a Wazo token, checked against wazo-auth
  (``STAT_API_WAZO_AUTH_URL``) exactly as wazo-call-logd checks it, so a Wazo user's
  tokens and ACLs work unchanged:
    1. ``HEAD /0.1/token/{token}?scope={acl}[&tenant={Wazo-Tenant}]`` — 204 valid, 404
       unknown or expired (401 here), 403 missing ACL or tenant not allowed (403 here);
    2. the tenant: the ``Wazo-Tenant`` header (allowed by step 1), else the token's own
       (``GET /0.1/token/{token}`` -> ``metadata.tenant_uuid``);
    3. that tenant and all its sub-tenants, recursively: ``GET /0.1/tenants`` with the
       token and ``Wazo-Tenant: {tenant}`` (wazo-auth lists the tenant's whole subtree).
       A token without ``auth.tenants.read`` gets a 401 there and sees its own tenant only
       (xivo's ``Token.visible_tenants``).
  Failures to reach wazo-auth are 503 ``authentication-server-unreachable``, as in Wazo.

The token is never logged. Errors echo it in ``details.invalid_token`` as Wazo does (the
caller sent it; nothing else sees it).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Optional, Protocol
from urllib.parse import quote, urlsplit

import requests
from anyio import to_thread
from starlette.requests import Request

# what wazo-auth is given to answer; its answers are small and local
AUTH_TIMEOUT_SECONDS = 10


class ApiError(Exception):
    """An error answered as Wazo's JSON ``{message, error_id, details, timestamp}``."""

    def __init__(self, status_code: int, message: str, error_id: str, details=None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error_id = error_id
        self.details = details or {}


def unauthorized(token: str, required_access: Optional[str] = None, **extra) -> ApiError:
    details = {"invalid_token": token, **extra}
    if required_access:
        details["required_access"] = required_access
    return ApiError(401, "Unauthorized", "unauthorized", details)


def unauthorized_tenant(tenant_uuid: str) -> ApiError:
    return ApiError(401, "Unauthorized tenant", "unauthorized-tenant", {"tenant_uuid": str(tenant_uuid)})


@dataclass(frozen=True)
class Access:
    """The tenants a request may see; ``None`` = every tenant (the shared secret, no header)."""

    tenant_uuids: Optional[tuple[str, ...]]


class TokenChecker(Protocol):
    async def authorize(self, request: Request, required_acl: str) -> Access: ...


def request_token(request: Request) -> str:
    return request.headers.get("X-Auth-Token", "")


def request_tenant(request: Request) -> Optional[str]:
    return request.headers.get("Wazo-Tenant") or None


class StaticToken:
    """One shared secret for every route and tenant."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the API token must not be empty")
        self._token = token.encode()

    async def authorize(self, request: Request, required_acl: str) -> Access:
        token = request_token(request)
        # constant time: the comparison must not tell how much of a guess was right
        if not token or not secrets.compare_digest(token.encode(), self._token):
            raise unauthorized(token, required_acl)
        tenant = request_tenant(request)
        return Access(None if tenant is None else (tenant,))


def generated_token() -> str:
    return secrets.token_urlsafe(32)


class WazoAuth:
    """Tokens checked by a wazo-auth server at ``base_url`` (e.g. ``https://wazo.example/api/auth``
    or ``http://127.0.0.1:9497``), the calls wazo-call-logd makes through xivo's helpers."""

    def __init__(self, base_url: str, *, verify_certificate: bool = True,
                 timeout: float = AUTH_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("STAT_API_WAZO_AUTH_URL must be an http(s) URL, "
                             "e.g. https://wazo.example.com/api/auth")
        self._base = base_url.rstrip("/") + "/0.1"
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._verify = verify_certificate
        self._timeout = timeout

    async def authorize(self, request: Request, required_acl: str) -> Access:
        token = request_token(request)
        tenant = request_tenant(request)
        # requests is blocking; a worker thread keeps the event loop serving others
        return await to_thread.run_sync(self._authorize, token, tenant, required_acl)

    def _call(self, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return session.request(method, self._base + path, timeout=self._timeout,
                                   verify=self._verify, **kwargs)
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, error) -> ApiError:
        return ApiError(503, "Authentication server unreachable", "authentication-server-unreachable",
                        {"auth_server_host": self._host, "auth_server_port": self._port,
                         "original_error": str(error)})

    def _authorize(self, token: str, tenant: Optional[str], required_acl: str) -> Access:
        if not token:
            raise unauthorized(token, required_acl)
        with requests.Session() as session:
            session.headers.update({"Accept": "application/json", "X-Auth-Token": token})
            token_path = "/token/" + quote(token, safe="")
            params = {"scope": required_acl}
            if tenant:
                params["tenant"] = tenant
            answer = self._call(session, "HEAD", token_path, params=params)
            # 404 is wazo-auth's "unknown or expired"; a 401 (some proxies and versions) means
            # the same to a caller, where xivo's helpers would call it unreachable
            if answer.status_code in (401, 404):
                raise unauthorized(token, required_acl, reason="not_found_or_expired")
            if answer.status_code == 403:
                raise ApiError(403, "Forbidden", "forbidden", {
                    "invalid_token": token, "reason": "missing_permission_or_invalid_tenant",
                    "required_access": required_acl, "tenant_uuid": tenant})
            if answer.status_code != 204:
                raise self._unreachable(f"wazo-auth answered {answer.status_code} to the token check")

            token_tenant: Optional[str] = None

            def own_tenant() -> Optional[str]:
                nonlocal token_tenant
                if token_tenant is None:
                    info = self._call(session, "GET", token_path)
                    if info.status_code != 200:
                        raise unauthorized(token, required_acl)
                    token_tenant = ((info.json().get("data") or {}).get("metadata") or {}).get("tenant_uuid")
                return token_tenant

            tenant = tenant or own_tenant()
            if not tenant:
                raise unauthorized(token, required_acl)
            listing = self._call(session, "GET", "/tenants", headers={"Wazo-Tenant": tenant})
            if listing.status_code == 401:
                if own_tenant() == tenant:
                    return Access((tenant,))
                raise unauthorized_tenant(tenant)
            if listing.status_code != 200:
                raise self._unreachable(f"wazo-auth answered {listing.status_code} to the tenant list")
            uuids = [item["uuid"] for item in listing.json().get("items", [])]
            # the scoping tenant is part of wazo-auth's answer; keep it even if a version does not
            return Access(tuple(dict.fromkeys([tenant, *uuids])))
