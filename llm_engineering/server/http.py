"""Streamable HTTP at ``/mcp``: Host/Origin checks always on, a bearer token off loopback."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from llm_engineering.config import Settings
from llm_engineering.errors import ConfigError, UserError
from llm_engineering.origins import allowed_hosts, allowed_origins
from llm_engineering.throttle import TokenThrottle, client_of

__all__ = ["BearerAuth", "BesideMcp", "build_http_app", "run_http", "transport_security"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
KEEP_ALIVE_S = 75
"""How long an idle kept-alive connection stays open (uvicorn's default is 5 s, nginx's 75 s).
uvicorn closes an idle connection when this runs out even if a request arrived meanwhile
unread (after the process was stopped, suspended or starved), and the kernel then resets it
under the client; a longer wait covers such pauses of up to a minute."""


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: only known Host headers, and browser Origins of those hosts."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts(settings),
        allowed_origins=allowed_origins(settings),
    )


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>``.

    Wrong tokens go through ``throttle`` (the dashboard's, when it is served beside), so a
    client that keeps guessing waits longer and longer.
    """

    def __init__(self, app: Any, token: str, throttle: TokenThrottle | None = None):
        self._app = app
        self._token = token.encode()
        self._throttle = throttle or TokenThrottle()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        header = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value
                break
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not await self._throttle.attempt(
            client_of(scope),
            lambda: hmac.compare_digest(given.strip(), self._token),
            "MCP bearer token",
        ):
            body = json.dumps(
                {
                    "error": "unauthorized",
                    "message": "missing or wrong bearer token (Authorization: Bearer <token>)",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="llm-engineering"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


class BesideMcp:
    """ASGI: ``/mcp`` and the lifespan go to the MCP app, every other path to ``other``."""

    def __init__(self, mcp: Any, other: Any):
        self._mcp = mcp
        self._other = other

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path != MCP_PATH and not path.startswith(MCP_PATH + "/"):
            await self._other(scope, receive, send)
        else:
            await self._mcp(scope, receive, send)


def build_http_app(server: MCPServer, settings: Settings, dashboard: Any = None) -> Any:
    """The ASGI app serving ``server`` at ``/mcp``, and ``dashboard`` (its own guard) beside it.

    Raises:
        ConfigError: a non-loopback bind without a token.
    """
    token = settings.token.get_secret_value() if settings.token else ""
    if not settings.host_is_loopback and not token:
        raise ConfigError(
            f"refusing to serve HTTP on {settings.host} without a token: anyone who can reach it "
            "could read your documents. Set --token (or LLM_ENG_TOKEN), or bind to 127.0.0.1."
        )
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        host=settings.host,
    )
    throttle = getattr(dashboard, "throttle", None)  # one count per client for both doors
    mcp: Any = BearerAuth(app, token, throttle) if token else app
    return BesideMcp(mcp, dashboard) if dashboard is not None else mcp


def port_free(host: str, port: int) -> None:
    """Raise a UserError naming the port and how to change it when ``port`` cannot be bound
    on ``host`` (checked before anything says it serves there)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} is in use on {host}: another program (or another llm-eng) "
                "listens there; give another with --port N (or LLM_ENG_PORT)"
            ) from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        probe.close()


def run_http(server: MCPServer, settings: Settings, dashboard: Any = None) -> None:
    import uvicorn

    app = build_http_app(server, settings, dashboard)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    port_free(settings.host, settings.port)
    log.info("serving MCP over HTTP at http://%s:%d%s", host, settings.port, MCP_PATH)
    if dashboard is not None:
        log.info("dashboard at http://%s:%d/", host, settings.port)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,
    )
