"""The dashboard's guard: Host and Origin checks, the token (bearer or login cookie), CSRF.

One ASGI middleware in front of every dashboard route, with the same rules as ``/mcp``:

- the Host header must be one the server is reached by (DNS rebinding), and a browser's
  Origin, when sent, one of those hosts; a POST from another origin is refused;
- with a token configured (always, off loopback) a request needs ``Authorization: Bearer
  <token>`` or the session cookie the login form sets (HttpOnly, SameSite=Strict, signed
  with the token, so changing the token logs everyone out); a page request without it is
  sent to the login form, anything else gets 401 and no data;
- every POST carries a CSRF token (a form field or ``X-CSRF-Token``) that is an HMAC of a
  per-browser cookie under a per-process secret; bearer requests, which a browser cannot
  forge, are exempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from llm_engineering.config import Settings
from llm_engineering.origins import allowed_hosts, allowed_origins
from llm_engineering.throttle import TokenThrottle, client_of

__all__ = ["Guard", "GuardPolicy", "csrf_token_of", "safe_next"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_MAX_AGE_S = 30 * 24 * 3600
PUBLIC_PREFIXES = ("/static/", "/login")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard allows: hosts and origins (patterns ``name:*`` match any port), the token."""

    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    token: str
    port: int

    @classmethod
    def of(cls, settings: Settings) -> GuardPolicy:
        token = settings.token.get_secret_value() if settings.token else ""
        hosts, origins = allowed_hosts(settings), allowed_origins(settings)
        return cls(tuple(hosts), tuple(origins), token, settings.port)

    def host_allowed(self, host: str) -> bool:
        return _matches(host, self.allowed_hosts)

    def origin_allowed(self, origin: str) -> bool:
        return _matches(origin, self.allowed_origins)

    @property
    def session_cookie(self) -> str:
        # Cookies ignore ports: two servers on one host must not overwrite each other's.
        return f"llm_eng_session_{self.port}"

    @property
    def csrf_cookie(self) -> str:
        return f"llm_eng_csrf_{self.port}"


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    if value in patterns:
        return True
    return any(p.endswith(":*") and value.startswith(p[:-1]) for p in patterns)


def csrf_token_of(secret: bytes, browser_id: str) -> str:
    """The CSRF token for the browser whose CSRF cookie is ``browser_id``."""
    return hmac.new(secret, b"csrf:" + browser_id.encode(), hashlib.sha256).hexdigest()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Guard:
    """ASGI middleware applying :class:`GuardPolicy` to every request of ``app``.

    It puts ``csrf_token`` (for forms) and ``session`` (whether a login cookie is in use) in
    ``scope["state"]``; the login and logout handlers call :meth:`session_cookie_value` and
    :meth:`check_token`.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: GuardPolicy,
        secret: bytes | None = None,
        throttle: TokenThrottle | None = None,
    ):
        self._app = app
        self.policy = policy
        self._secret = secret or secrets.token_bytes(32)
        self.throttle = throttle or TokenThrottle()
        """Slows a client that keeps sending wrong tokens (login form and bearer alike)."""

    # -- what handlers use ------------------------------------------------------------------

    def check_token(self, given: str) -> bool:
        return bool(self.policy.token) and hmac.compare_digest(
            given.strip().encode(), self.policy.token.encode()
        )

    async def try_token(self, scope: Scope, given: str, what: str) -> bool:
        """:meth:`check_token` behind the throttle: a client that keeps guessing waits longer."""
        return await self.throttle.attempt(client_of(scope), lambda: self.check_token(given), what)

    def session_cookie_value(self, now: float | None = None) -> str:
        """A fresh login cookie: issue time, nonce, and their HMAC under the token."""
        payload = f"{int(now or time.time())}.{secrets.token_hex(16)}"
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        key = hashlib.sha256(b"llm-eng dashboard session:" + self.policy.token.encode()).digest()
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def _session_valid(self, value: str) -> bool:
        payload, _, signature = value.rpartition(".")
        issued, _, _ = payload.partition(".")
        if not payload or not issued.isdigit():
            return False
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        return time.time() - int(issued) < SESSION_MAX_AGE_S

    # -- the middleware ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)
        method = scope["method"]
        path = scope["path"]
        if not self.policy.host_allowed(headers.get("host", "")):
            await _plain(send, 421, "Invalid Host header")
            return
        origin = headers.get("origin")
        if origin is not None and not self.policy.origin_allowed(origin):
            await _plain(send, 403, "Invalid Origin header: requests from other sites are refused")
            return
        cookies = _cookies(headers.get("cookie", ""))
        bearer = await self._bearer_ok(scope, headers.get("authorization", ""))
        session = self.policy.session_cookie in cookies and self._session_valid(
            cookies[self.policy.session_cookie]
        )
        if self.policy.token and not (bearer or session) and not path.startswith(PUBLIC_PREFIXES):
            await self._refuse(scope, headers, send)
            return
        browser_id = cookies.get(self.policy.csrf_cookie, "")
        fresh = not _looks_like_id(browser_id)
        if fresh:
            browser_id = secrets.token_hex(16)
        state = scope.setdefault("state", {})
        state["csrf_token"] = csrf_token_of(self._secret, browser_id)
        state["session"] = session
        state["token_required"] = bool(self.policy.token)
        if method not in ("GET", "HEAD", "OPTIONS") and not bearer:
            checked = await self._check_csrf(scope, receive, send, headers, state["csrf_token"])
            if checked is None:
                return
            receive = checked
        extra = [(b"set-cookie", self._csrf_cookie(scope, browser_id).encode())] if fresh else []

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS, *extra]
            await send(message)

        await self._app(scope, receive, send_with_headers)

    async def _bearer_ok(self, scope: Scope, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not self.policy.token:
            return False
        return await self.try_token(scope, given, "bearer token")

    async def _refuse(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        wants_page = scope["method"] == "GET" and "text/html" in headers.get("accept", "")
        if wants_page:
            target = scope["path"] + (
                "?" + scope["query_string"].decode() if scope.get("query_string") else ""
            )
            location = "/login?next=" + quote(target, safe="")
            await _plain(send, 303, "log in first", [(b"location", location.encode())])
            return
        await _plain(
            send,
            401,
            "missing or wrong token: log in at /login or send Authorization: Bearer <token>",
            [(b"www-authenticate", b'Bearer realm="llm-engineering"')],
        )

    async def _check_csrf(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], expected: str
    ) -> Receive | None:
        """The request's body replayed for the app when its CSRF token is right, else None."""
        given = headers.get("x-csrf-token", "")
        body = b""
        if not given:
            body = await _read_body(receive)
            content_type = headers.get("content-type", "")
            if content_type.startswith("application/x-www-form-urlencoded"):
                given = parse_qs(body.decode("latin-1")).get("csrf", [""])[0]
        if not given or not hmac.compare_digest(given, expected):
            await _plain(
                send,
                403,
                "missing or stale CSRF token: reload the page and try again",
            )
            return None
        if not body:
            return receive
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def _csrf_cookie(self, scope: Scope, value: str) -> str:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return f"{self.policy.csrf_cookie}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"


def _looks_like_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _cookies(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found[name] = value
    return found


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
