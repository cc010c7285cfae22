"""Server settings: where the HTTP server listens, whom it answers, and how much it logs."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from llm_engineering.config.values import split_list

__all__ = ["ServerSettings", "is_loopback"]


class ServerSettings(BaseModel):
    """The server's settings (a part of :class:`~llm_engineering.config.Settings`)."""

    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port.")
    cli_transport: Literal["auto", "unix", "tcp"] = Field(
        default="auto",
        description="How the command line reaches a running server: a UNIX socket in the data "
        "folder (auto, where the platform has them), or loopback TCP with a token in a file "
        "only the user can read (auto elsewhere).",
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token HTTP clients (and the dashboard's login) must give; required "
        "off loopback.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host names the HTTP server answers to (e.g. behind a proxy).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra browser Origin values the HTTP server accepts."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR; logs go to stderr."
    )

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _allowed_from_string(cls, value: Any) -> Any:
        return split_list(value)

    @property
    def host_is_loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
