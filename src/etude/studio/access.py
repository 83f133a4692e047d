"""Who may use the studio: the checks every request passes before the API sees it.

A local web service is reachable from every page the user's browser opens: a page can post a
form to it (no CORS preflight is needed for that), and through DNS rebinding (a hostile name that
resolves to 127.0.0.1) it can even read the answers. So, as Jupyter and other local servers do:

1. **Host**: the request's Host header must name the studio's own address: the loopback names
   (localhost, 127.0.0.1, ::1), the address it listens on, and names added with --allow-host.
   A studio listening on every address (0.0.0.0 or ::) serves any name unless --allow-host is
   given; its token guards it. Otherwise 403.
2. **Origin**: a request that changes state (POST, PUT, PATCH, DELETE) sent by a browser carries
   an Origin; it must be the studio's own (`http://` + the Host header). Otherwise 403. Programs
   that send no Origin (curl, scripts) pass this check.
3. **Token**: a secret made at each start; required on every /api call whenever the studio listens
   beyond loopback (and on loopback with --token). It may come as `Authorization: Bearer TOKEN`,
   as `?token=TOKEN`, or as the cookie the page's address (`/?token=TOKEN`) sets (HttpOnly,
   SameSite=Strict, so other sites' requests never carry it). Otherwise 401.

No CORS headers are ever sent: other origins cannot read any answer.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    """Whether an address (or the name localhost) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The studio's access rules for one start (see the module docstring)."""

    hosts: frozenset[str] | None = LOOPBACK_NAMES  # Host names served (lower case, no port); None: any
    token: str | None = None  # the secret every /api call must carry; None: no token asked
    cookie: str = "etude-studio-token"  # the cookie's name (the port is added: cookies ignore ports)

    @classmethod
    def for_address(cls, host: str, port: int, allow_hosts: Iterable[str] = (), token: bool = False) -> Access:
        """The rules for a studio listening on host:port. Beyond loopback a token is always made;
        on loopback only when `token`."""
        added = {h.lower().strip("[]") for h in allow_hosts}
        if host in WILDCARDS:
            hosts = None if not added else LOOPBACK_NAMES | added
        else:
            hosts = LOOPBACK_NAMES | {host.lower().strip("[]")} | added
        needs_token = token or not is_loopback(host)
        return cls(hosts, secrets.token_urlsafe(24) if needs_token else None, f"etude-studio-token-{port}")

    def serves(self, host_header: str) -> bool:
        """Whether a Host header (name[:port]) names this studio."""
        if self.hosts is None:
            return True
        name = host_header.lower()
        if name.startswith("["):  # [::1]:8765
            name = name[1 : name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.split(":")[0]
        return name in self.hosts

    def url(self, host: str, port: int) -> str:
        """The address to open: with the token, where there is one."""
        shown = "127.0.0.1" if host in WILDCARDS else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/" + (f"?token={self.token}" if self.token else "")


class AccessMiddleware:
    """ASGI middleware applying an `Access` to every HTTP request (see the module docstring)."""

    def __init__(self, app, access: Access):
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        refusal = self._refusal(scope, headers, host)
        if refusal is not None:
            return await _answer(send, *refusal)
        return await self.app(scope, receive, self._with_cookie(scope, send))

    def _refusal(self, scope, headers: dict[str, str], host: str) -> tuple[int, str, str] | None:
        """(status, header at fault, message) when the request is refused, else None."""
        if not self.access.serves(host):
            return 403, "host", f"this studio does not serve the host name {host!r} (start it with --allow-host NAME)"
        origin = headers.get("origin")
        if scope["method"] in STATE_CHANGING and (
            (origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}")
            or headers.get("sec-fetch-site") == "cross-site"
        ):
            return 403, "origin", "requests that change the studio come from its own page only"
        if self.access.token and scope["path"].startswith("/api") and not self._has_token(scope, headers):
            return 401, "token", "this studio needs its token: open the address `etude studio` printed"
        return None

    def _has_token(self, scope, headers: dict[str, str]) -> bool:
        given = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        given += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        given += _cookies(headers.get("cookie", "")).get(self.access.cookie, [])
        return any(secrets.compare_digest(g.encode(), self.access.token.encode()) for g in given)

    def _with_cookie(self, scope, send):
        """`send`, adding the token's cookie to the page when it was opened with the right token."""
        token = self.access.token
        if not token or scope["path"] != "/":
            return send
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if not secrets.compare_digest(given.encode(), token.encode()):
            return send
        cookie = f"{self.access.cookie}={token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        return send_with_cookie


def _cookies(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out.setdefault(name, []).append(value)
    return out


async def _answer(send, status: int, where: str, msg: str) -> None:
    body = json.dumps({"detail": [{"loc": ["header", where], "msg": msg}]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
