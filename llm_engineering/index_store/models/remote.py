"""One HTTP client for the model servers that embed and rerank: key, timeouts, retries.

A request that cannot reach the server, times out, or gets 408, 429 or a 5xx is tried
again after a growing pause (0.5 s, 1 s, 2 s... at most 8 s); any other refusal is final
at once. Whatever fails at last is a :class:`~llm_engineering.errors.ServerError` whose
message names the server and carries its own error text.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from llm_engineering.errors import ServerError

__all__ = ["ModelServer", "endpoint"]

log = logging.getLogger(__name__)

_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
_FIRST_PAUSE = 0.5
_LONGEST_PAUSE = 8.0


def endpoint(base_url: str, path: str) -> str:
    """``path`` under an OpenAI-style base URL given with or without its ``/v1``."""
    root = base_url.rstrip("/")
    return f"{root}{path}" if root.endswith("/v1") else f"{root}/v1{path}"


def _server_message(response: Any) -> str:
    """The error a server put in its body: OpenAI's ``error.message``, FastAPI's ``detail``..."""
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error
        if error:
            return (error if isinstance(error, str) else json.dumps(error))[:300]
    return json.dumps(body)[:300]


class ModelServer:
    """Posts JSON to a model server, retrying what may pass on a second try.

    Args:
        base_url: The server, as configured (for messages).
        role: What it serves, for messages: ``embedding server``, ``rerank server``.
        api_key: Sent as a bearer token when given.
        key_setting: The setting that holds the key, named when the server refuses it.
        timeout: Seconds one request may take.
        retries: Further tries after a failed one.
        connections: Requests that may be in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        role: str,
        *,
        api_key: str | None = None,
        key_setting: str = "",
        timeout: float = 60.0,
        retries: int = 3,
        connections: int = 4,
    ):
        import httpx

        self.base_url = base_url
        self.role = role
        self.retries = retries
        self._key_setting = key_setting
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._closed = threading.Event()

    def post(self, url: str, body: dict[str, Any], *, retry: bool = True) -> Any:
        """POST ``body`` to ``url`` and return the decoded JSON answer.

        Args:
            retry: False to make one try only (probing which endpoint a server has).

        Raises:
            ServerError: the server could not be reached, timed out, refused the request or
                answered something that is not JSON, after the retries.
        """
        tries = 1 + (self.retries if retry else 0)
        pause = _FIRST_PAUSE
        for attempt in range(1, tries + 1):
            try:
                return self._post_once(url, body)
            except ServerError as exc:
                if not exc.retryable or attempt == tries or self._closed.is_set():
                    if attempt > 1:
                        raise ServerError(
                            f"{exc} (after {attempt} tries)", exc.status, exc.retryable
                        ) from exc
                    raise
                log.warning("%s; trying again in %.1f s", exc, pause)
                self._closed.wait(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
        raise AssertionError("unreachable")

    def _post_once(self, url: str, body: dict[str, Any]) -> Any:
        import httpx

        try:
            response = self._client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise ServerError(
                f"the {self.role} at {url} did not answer in time ({type(exc).__name__})",
                retryable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise ServerError(
                f"cannot reach the {self.role} at {url} ({type(exc).__name__}: {exc})",
                retryable=True,
            ) from exc
        status = response.status_code
        if status in (401, 403):
            hint = f": check the API key ({self._key_setting})" if self._key_setting else ""
            raise ServerError(
                f"the {self.role} at {url} refused the request ({status}){hint}", status
            )
        if status >= 400:
            raise ServerError(
                f"the {self.role} at {url} answered {status}: {_server_message(response)}",
                status,
                retryable=status in _RETRYABLE,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(
                f"the {self.role} at {url} answered with something that is not JSON: "
                f"{response.text[:200]!r}",
                status,
            ) from exc

    def close(self) -> None:
        """Stop waiting between retries and close the connections."""
        self._closed.set()
        self._client.close()
