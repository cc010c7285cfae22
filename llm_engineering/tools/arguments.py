"""A tool's bad arguments said in one line: ``top_k must be between 1 and 50, got 0``.

The SDK validates a tool's arguments with pydantic and answers a mistake with pydantic's
text: several lines, the model's class name, a URL. An assistant reads that worse than a
sentence naming the argument and what it takes. This middleware leaves every call as it
is; only when the SDK refused the arguments does it say why again, from the tool's input
schema: each argument's allowed range, choices or type, and the value it got.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

__all__ = ["argument_problems", "checked_tool_arguments"]

_PYDANTIC = re.compile(r"\d+ validation errors? for \w+")
_TYPES = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def checked_tool_arguments(server: MCPServer) -> Any:
    """Middleware: a ``tools/call`` the SDK refused for its arguments gets one line per
    problem instead of pydantic's text."""

    async def check(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/call" or not _refused_arguments(result):
            return result
        params = dict(ctx.params or {})
        name, arguments = params.get("name"), params.get("arguments")
        schema = next((t.input_schema for t in await server.list_tools() if t.name == name), None)
        problems = argument_problems(schema or {}, arguments or {})
        if not problems:
            return result
        text = f"{name}: " + "; ".join(problems)
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    return check


def _refused_arguments(result: HandlerResult) -> bool:
    data = result.model_dump(by_alias=True) if isinstance(result, BaseModel) else result
    if not isinstance(data, dict) or not (data.get("isError") or data.get("is_error")):
        return False
    texts = [c.get("text", "") for c in data.get("content") or [] if isinstance(c, dict)]
    return any(_PYDANTIC.search(text) for text in texts)


def argument_problems(schema: dict[str, Any], arguments: Any) -> list[str]:
    """What is wrong with ``arguments`` against a tool's JSON ``schema``, a sentence each."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path)):
        problems.append(_sentence(schema, error))
    return list(dict.fromkeys(problems))


def _sentence(schema: dict[str, Any], error: Any) -> str:
    if error.validator == "required":
        missing = [n for n in error.validator_value if n not in (error.instance or {})]
        return ", ".join(f"{n} is required" for n in missing)
    if error.validator == "additionalProperties":
        return str(error.message)
    name = ".".join(str(part) for part in error.path) or "arguments"
    prop = schema.get("properties", {}).get(str(error.path[0]), {}) if error.path else schema
    got = json.dumps(error.instance)
    if error.validator == "anyOf":  # Optional[...]: the branch that is not about the type
        inner = [e for e in error.context if e.validator != "type"]
        if inner:
            return _sentence(schema, inner[0])
        kinds = [b.get("type") for b in prop.get("anyOf", []) if b.get("type")]
        return f"{name} must be {' or '.join(_TYPES.get(k, k) for k in kinds)}, got {got}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = _bounds(prop)
        if low is not None and high is not None:
            return f"{name} must be between {low} and {high}, got {got}"
        if low is not None:
            return f"{name} must be at least {low}, got {got}"
        return f"{name} must be at most {high}, got {got}"
    if error.validator in ("enum", "const"):
        values = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{name} must be one of {', '.join(json.dumps(v) for v in values)}, got {got}"
    if error.validator == "type":
        kinds = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        return f"{name} must be {' or '.join(_TYPES.get(k, k) for k in kinds)}, got {got}"
    if error.validator in ("minItems", "maxItems", "minLength", "maxLength"):
        items = error.validator in ("minItems", "maxItems")
        size = len(error.instance) if isinstance(error.instance, list | str) else 0
        least = error.validator.startswith("min")
        unit = "item" if items else "character"
        bound = error.validator_value
        return (
            f"{name} must hold {'at least' if least else 'at most'} {bound} {unit}"
            f"{'' if bound == 1 else 's'}, got {size}"
        )
    return f"{name}: {error.message}"


def _bounds(prop: dict[str, Any]) -> tuple[Any, Any]:
    """The least and greatest value a property takes (an Optional's number branch too)."""
    for branch in [prop, *prop.get("anyOf", [])]:
        low = branch.get("minimum", branch.get("exclusiveMinimum"))
        high = branch.get("maximum", branch.get("exclusiveMaximum"))
        if low is not None or high is not None:
            return low, high
    return None, None
