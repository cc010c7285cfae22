"""What each kind of model server needs to answer with one of our adapters.

=================  =====================================================================
kind               how an adapter is asked for
=================  =====================================================================
vllm               ``model`` = its served name ``NAME@VERSION``; one the server does not
                   list yet is loaded with ``POST /v1/load_lora_adapter`` (its PEFT folder,
                   as the server sees it) when the server allows run-time updates, and
                   unloaded with ``/v1/unload_lora_adapter`` when it is deleted
llama-server       given at start (``--lora FILE``); a request carries
                   ``lora: [{id, scale}]``, the id found by path in ``GET /lora-adapters``
                   (every adapter not named is at scale 0 for that request)
llama-cpp-python   ``python -m llama_cpp.server --config_file``: one model alias per
                   adapter version (``lora_path``), sent as ``model``
openai             none
=================  =====================================================================

``auto`` tells them apart by ``owned_by`` in ``GET /v1/models`` (``vllm``, ``llamacpp``,
and ``me`` for llama-cpp-python). An adapter trained on another base than the server's
model is refused with both names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from llm_engineering.errors import ModelLoadError, UserError
from llm_engineering.generation.base import Availability, ServedAdapter

__all__ = [
    "ADAPTER_KINDS",
    "KINDS",
    "PathMap",
    "ServerAdapters",
    "detect_kind",
    "model_key",
    "server_adapters",
]

KINDS = ("openai", "vllm", "llama-server", "llama-cpp-python")
ADAPTER_KINDS = KINDS[1:]
_OWNERS = {"vllm": "vllm", "llamacpp": "llama-server", "me": "llama-cpp-python"}
_QUANT = re.compile(r"[.-](?:i?q\d[\w]*|f16|f32|bf16|fp16)$", re.IGNORECASE)


def detect_kind(listing: dict[str, Any]) -> str:
    """The server kind a ``GET /v1/models`` answer shows (``openai`` when it shows none)."""
    for model in listing.get("data") or []:
        kind = _OWNERS.get(str(model.get("owned_by", "")))
        if kind:
            return kind
    return "openai"


def model_key(name: str) -> str:
    """A model name compared across spellings: ``HuggingFaceTB/SmolLM2-135M-Instruct``,
    ``/models/SmolLM2-135M-Instruct.Q4_1.gguf`` and ``smollm2-135m-instruct`` are one model."""
    last = PurePosixPath(name.replace("\\", "/").rstrip("/")).name.lower()
    if last.endswith(".gguf"):
        last = last[: -len(".gguf")]
    while True:
        shorter = _QUANT.sub("", last)
        if shorter == last:
            return last
        last = shorter


@dataclass(frozen=True)
class PathMap:
    """Our adapters folder (``data_dir/adapters``) as a model server sees it."""

    local_root: Path
    server_root: str = ""
    """Empty: the same path (the server runs here)."""

    def server(self, local: Path) -> str:
        if not self.server_root:
            return str(local)
        try:
            relative = local.relative_to(self.local_root)
        except ValueError:
            return str(local)
        return f"{self.server_root.rstrip('/')}/{relative.as_posix()}"


class ServerAdapters:
    """Adapters on a plain OpenAI-compatible server: there are none.

    Args:
        client: The ``httpx.Client`` (its headers carry the API key).
        root: The server's URL without ``/v1``.
        model: The base model the requests name.
        listing: Its ``GET /v1/models`` answer.
        paths: Where the server sees our adapters folder.
    """

    kind = "openai"

    def __init__(self, client: Any, root: str, model: str, listing: dict[str, Any], paths: PathMap):
        self._client = client
        self.root = root
        self.model = model
        self.listing = listing
        self.paths = paths

    def fields(self, adapter: ServedAdapter | None) -> dict[str, Any]:
        """What the chat request carries to answer with ``adapter`` (None: the base).

        Raises:
            UserError: the server cannot serve it; the message says why and what to do.
        """
        if adapter is None:
            return {}
        raise UserError(
            f"the model server at {self.root} is a plain OpenAI-compatible server ({self.model}), "
            f"which serves no adapters, so {adapter.spec} cannot answer there. Adapters are served "
            "by vLLM, llama.cpp's llama-server and llama-cpp-python's server: start one with what "
            "`llm-eng adapters --serve vllm|llama-server|llama-cpp-python` prints, and set "
            "llm_server to its kind (or auto)"
        )

    def availability(self, adapter: ServedAdapter) -> Availability:
        try:
            self._check_base(adapter)
            return self._availability(adapter)
        except (UserError, ModelLoadError) as exc:
            return Availability("none", str(exc))

    def _availability(self, adapter: ServedAdapter) -> Availability:
        return Availability(
            "none",
            f"the model server at {self.root} is a plain OpenAI-compatible server, which serves "
            "no adapters (vLLM, llama-server and llama-cpp-python's server do: set llm_server)",
        )

    def release(self, specs: Sequence[str]) -> list[str]:
        """Unload deleted adapter versions where the server allows it; notes on the rest."""
        return []

    # -- shared -------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._client.request(method, f"{self.root}{path}", **kwargs)
        except httpx.TransportError as exc:
            raise ModelLoadError(f"cannot reach the model server at {self.root} ({exc})") from exc

    def _models(self) -> list[dict[str, Any]]:
        response = self._send("GET", "/v1/models")
        if response.status_code >= 400:
            raise ModelLoadError(
                f"the model server at {self.root} answered {response.status_code} to /v1/models: "
                f"{response.text[:300]}"
            )
        self.listing = response.json()
        return list(self.listing.get("data") or [])

    def _base_names(self) -> list[str]:
        return [self.model]

    def _check_base(self, adapter: ServedAdapter) -> None:
        names = [name for name in self._base_names() if name]
        wanted = {model_key(adapter.base_model), model_key(adapter.base_gguf)} - {""}
        if not wanted or wanted & {model_key(name) for name in names}:
            return
        raise UserError(
            f"adapter {adapter.spec} was trained on {adapter.base_model}, but the {self.kind} "
            f"server at {self.root} serves {names[0]}: answer there with an adapter trained on "
            f"{names[0]}, or serve {adapter.base_model} there"
        )


class VllmAdapters(ServerAdapters):
    kind = "vllm"

    def _base_names(self) -> list[str]:
        for model in self.listing.get("data") or []:
            if model.get("id") == self.model or not model.get("parent"):
                return [str(model.get("id", "")), str(model.get("root") or "")]
        return [self.model]

    def fields(self, adapter: ServedAdapter | None) -> dict[str, Any]:
        if adapter is None:
            return {}
        served = {str(m.get("id")) for m in self._models()}
        self._check_base(adapter)
        if adapter.spec not in served:
            self._load(adapter)
        return {"model": adapter.spec}

    def _load(self, adapter: ServedAdapter) -> None:
        if adapter.peft is None or not (adapter.peft / "adapter_config.json").is_file():
            raise UserError(f"adapter {adapter.spec} has no PEFT folder for vLLM to load")
        path = self.paths.server(adapter.peft)
        response = self._send(
            "POST", "/v1/load_lora_adapter", json={"lora_name": adapter.spec, "lora_path": path}
        )
        if response.status_code == 200 or "already" in response.text:
            return
        if response.status_code == 404 and _route_missing(response):
            raise UserError(
                f"the vLLM server at {self.root} does not serve {adapter.spec} and does not allow "
                "loading adapters at run time: start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
                f"or with --lora-modules {adapter.spec}={path} (`llm-eng adapters --serve vllm` "
                "prints the whole command)"
            )
        raise UserError(
            f"the vLLM server at {self.root} could not load {adapter.spec} from {path} "
            f"({response.status_code}: {_message(response)}); if the server sees the adapters "
            "folder at another path, set llm_server_adapters_path to it"
        )

    def _availability(self, adapter: ServedAdapter) -> Availability:
        if adapter.spec in {str(m.get("id")) for m in self._models()}:
            return Availability("server", f"served as {adapter.spec} by vLLM at {self.root}")
        return Availability(
            "server",
            f"loaded into vLLM at {self.root} on first use (/v1/load_lora_adapter; the server "
            "needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)",
        )

    def release(self, specs: Sequence[str]) -> list[str]:
        notes = []
        served = {str(m.get("id")) for m in self._models()}
        for spec in [s for s in specs if s in served]:
            response = self._send("POST", "/v1/unload_lora_adapter", json={"lora_name": spec})
            if response.status_code != 200:
                notes.append(
                    f"the vLLM server at {self.root} still serves {spec} "
                    f"({response.status_code}: {_message(response)}); restart it without it"
                )
        return notes


class LlamaServerAdapters(ServerAdapters):
    kind = "llama-server"

    def _base_names(self) -> list[str]:
        names = [self.model]
        response = self._send("GET", "/props")
        if response.status_code == 200:
            names.append(str(response.json().get("model_path") or ""))
        return names

    def _adapter_id(self, adapter: ServedAdapter) -> int | None:
        response = self._send("GET", "/lora-adapters")
        if response.status_code >= 400:
            raise ModelLoadError(
                f"llama-server at {self.root} answered {response.status_code} to /lora-adapters"
            )
        wanted = self.paths.server(adapter.lora)
        # Our files are all named adapter.gguf: NAME/VERSION/adapter.gguf tells them apart
        # wherever the server keeps the adapters folder.
        tail = "/".join(adapter.lora.parts[-3:])
        for entry in response.json():
            path = str(entry.get("path", "")).replace("\\", "/")
            if path in (wanted, tail) or path.endswith("/" + tail):
                return int(entry["id"])
        return None

    def fields(self, adapter: ServedAdapter | None) -> dict[str, Any]:
        if adapter is None:
            return {"lora": []}
        self._check_base(adapter)
        found = self._adapter_id(adapter)
        if found is None:
            raise UserError(
                f"llama-server at {self.root} was not started with adapter {adapter.spec}; it "
                f"takes adapters at start: restart it with --lora {self.paths.server(adapter.lora)} "
                "(`llm-eng adapters --serve llama-server` prints the whole command)"
            )
        return {"lora": [{"id": found, "scale": 1.0}]}

    def _availability(self, adapter: ServedAdapter) -> Availability:
        found = self._adapter_id(adapter)
        if found is None:
            return Availability(
                "none",
                f"llama-server at {self.root} was not started with it (restart it with the "
                "flags `llm-eng adapters --serve llama-server` prints)",
            )
        return Availability("server", f"adapter id {found} of llama-server at {self.root}")

    def release(self, specs: Sequence[str]) -> list[str]:
        return [
            f"llama-server at {self.root} keeps {', '.join(specs)} loaded until it is restarted "
            "(no request can use a deleted version through llm-eng)"
        ]


class LlamaCppPythonAdapters(ServerAdapters):
    kind = "llama-cpp-python"

    def fields(self, adapter: ServedAdapter | None) -> dict[str, Any]:
        if adapter is None:
            return {}
        self._check_base(adapter)
        aliases = [str(m.get("id")) for m in self._models()]
        # Its server answers an alias it does not know with its first model, silently.
        if adapter.spec not in aliases:
            raise UserError(
                f"the llama-cpp-python server at {self.root} does not serve {adapter.spec} (it "
                f"serves {', '.join(aliases)}); it serves the adapters of its --config_file: "
                "write it again with `llm-eng adapters --serve llama-cpp-python` and restart it"
            )
        return {"model": adapter.spec}

    def _availability(self, adapter: ServedAdapter) -> Availability:
        if adapter.spec in {str(m.get("id")) for m in self._models()}:
            return Availability(
                "server", f"model {adapter.spec} of llama-cpp-python at {self.root}"
            )
        return Availability(
            "none",
            f"the llama-cpp-python server at {self.root} was not started with it (write its "
            "config again with `llm-eng adapters --serve llama-cpp-python` and restart it)",
        )

    def release(self, specs: Sequence[str]) -> list[str]:
        aliases = {str(m.get("id")) for m in self._models()}
        kept = [spec for spec in specs if spec in aliases]
        if not kept:
            return []
        return [
            f"the llama-cpp-python server at {self.root} still lists {', '.join(kept)} until its "
            "config is written again (`llm-eng adapters --serve llama-cpp-python`) and it restarts"
        ]


_CLASSES: dict[str, type[ServerAdapters]] = {
    "openai": ServerAdapters,
    "vllm": VllmAdapters,
    "llama-server": LlamaServerAdapters,
    "llama-cpp-python": LlamaCppPythonAdapters,
}


def server_adapters(
    kind: str, client: Any, root: str, model: str, listing: dict[str, Any], paths: PathMap
) -> ServerAdapters:
    """How the server at ``root`` serves adapters; ``auto`` detects its kind from ``listing``."""
    chosen = detect_kind(listing) if kind == "auto" else kind
    return _CLASSES[chosen](client, root, model, listing, paths)


def _route_missing(response: Any) -> bool:
    try:
        return bool(response.json().get("detail") == "Not Found")
    except ValueError:
        return True


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text[:300])
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:300]
    return str(body)[:300]
