"""Which Host and Origin headers the HTTP server and the dashboard answer to (DNS rebinding).

Loopback names always; the bind address (and, on a wildcard bind, this machine's names) off
loopback; and what ``allowed_hosts`` / ``allowed_origins`` add. A pattern ``name:*`` matches
any port. ``/mcp`` (the SDK's transport security) and the dashboard's guard use the same lists.
"""

from __future__ import annotations

import socket

from llm_engineering.config import Settings

__all__ = ["allowed_hosts", "allowed_origins"]


def _host_names(settings: Settings) -> list[str]:
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if not settings.host_is_loopback:
        if settings.host in ("0.0.0.0", "::", ""):
            hosts += [socket.gethostname(), socket.getfqdn()]
        else:
            hosts.append(f"[{settings.host}]" if ":" in settings.host else settings.host)
    hosts += settings.allowed_hosts
    return list(dict.fromkeys(h for h in hosts if h))


def allowed_hosts(settings: Settings) -> list[str]:
    """Host header values: each name, bare and with any port."""
    return [entry for host in _host_names(settings) for entry in (host, f"{host}:*")]


def allowed_origins(settings: Settings) -> list[str]:
    """Origin header values a browser page of this server sends, and ``allowed_origins``."""
    hosts = _host_names(settings)
    origins = [f"{scheme}://{host}:*" for host in hosts for scheme in ("http", "https")]
    origins += [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return origins + list(settings.allowed_origins)
