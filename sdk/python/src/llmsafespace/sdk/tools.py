"""Sandbox tools for LLM agents: JSON-schema definitions in the OpenAI and Anthropic
function-calling formats, bound to one sandbox, and a dispatcher that runs a model's
tool call and returns the text to hand back. No dependency on any model SDK."""

import codecs
import inspect
import json
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmsafespace.contracts import FileWritten

from .errors import LLMSafeSpaceError
from .files import FilePart
from .models import ExecutionResult

WORKSPACE = "/workspace"
MAX_CHARACTER_BYTES = 4  # the longest UTF-8 character


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what the model is told, and its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    method: str  # the sandbox method it calls (dotted for `files.read_part` and the like)
    arguments: tuple[str, ...]  # the JSON arguments passed on: required ones positionally
    bounded_by: str | None = None  # the keyword `read_length(max_output_chars)` is passed as


_TIMEOUT = {"type": "number", "description": "Seconds before the run is stopped (default 30)."}

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="run_code",
        description=(
            "Run Python code in a persistent sandboxed interpreter. Variables, imports and "
            "functions survive between calls; the value of a trailing expression is "
            "returned as `result`. Use print() for output."
        ),
        parameters={
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Python source to run."},
                "timeout": _TIMEOUT,
            },
            "required": ["code"],
            "additionalProperties": False,
        },
        method="run_code",
        arguments=("code", "timeout"),
    ),
    ToolSpec(
        name="run_command",
        description=(
            "Run a shell command (/bin/sh -c) in the sandbox, in /workspace by default. "
            "Returns stdout, stderr and the exit code."
        ),
        parameters={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The shell command line."},
                "timeout": _TIMEOUT,
                "cwd": {"type": "string", "description": "Working directory (absolute)."},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
        method="run_command",
        arguments=("command", "timeout", "cwd"),
    ),
    ToolSpec(
        name="read_file",
        description=(
            "Read a text file from the sandbox, a part at a time: from `offset` (default 0, "
            "the beginning), at most 20,000 bytes. Relative paths are under /workspace. "
            "Returns the part as `content` (UTF-8; undecodable bytes replaced), the file's "
            "`size` in bytes, and `truncated`; when more follows, `next_offset` is the "
            "offset to read on from. A part never ends inside a character, so the parts "
            "read on from each `next_offset` join up to the exact text."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "File path: absolute (in /workspace or /tmp) or relative "
                    "to /workspace.",
                },
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "The byte to start at (default 0).",
                },
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        method="files.read_part",
        arguments=("path", "offset"),
        bounded_by="length",
    ),
    ToolSpec(
        name="write_file",
        description=(
            "Write a text file in the sandbox, replacing it if it exists; parent "
            "directories are created. Relative paths are under /workspace."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "File path: absolute (in /workspace or /tmp) or relative "
                    "to /workspace.",
                },
                "content": {"type": "string", "description": "The whole new content."},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
        method="files.write",
        arguments=("path", "content"),
    ),
)


class SandboxTools:
    """The sandbox tools bound to one `Sandbox` (use `dispatch`) or `AsyncSandbox` (use
    `adispatch`). `run_code` / `run_command` answer a JSON object with `stdout`, `stderr`,
    `exit_code`, `status`, `result` and `error`; `read_file` one with `path`, `size`,
    `offset`, `content` and `truncated` (and `next_offset` when more follows: at most
    `max_output_chars` bytes a call, never ending inside a character, though one whole
    character if `max_output_chars` is smaller); `write_file` one with `path` and `size`.
    A call that itself failed (unknown tool, bad arguments, an API error) answers
    `{"error": {...}}`."""

    def __init__(self, sandbox: Any, *, max_output_chars: int = 20_000) -> None:
        self.sandbox = sandbox
        self.max_output_chars = max_output_chars
        self._specs = {spec.name: spec for spec in TOOL_SPECS}

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def openai(self) -> list[dict[str, Any]]:
        """`tools=` for OpenAI chat completions (`{"type": "function", "function": …}`)."""
        return [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                },
            }
            for spec in self._specs.values()
        ]

    def anthropic(self) -> list[dict[str, Any]]:
        """`tools=` for Anthropic messages (`{"name", "description", "input_schema"}`)."""
        return [
            {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}
            for spec in self._specs.values()
        ]

    def dispatch(self, name: str, arguments: dict[str, Any] | str) -> str:
        """Run the tool call on a synchronous sandbox; the JSON text to return to the model."""
        return self._dispatch(name, arguments)[0]

    def _dispatch(self, name: str, arguments: dict[str, Any] | str) -> tuple[str, bool]:
        try:
            call, path = self._call(name, arguments)
            return self._format(call(), path), False
        except (LLMSafeSpaceError, ValueError) as exc:
            return _failure(exc), True

    async def adispatch(self, name: str, arguments: dict[str, Any] | str) -> str:
        """Run the tool call on an `AsyncSandbox`; the JSON text to return to the model."""
        try:
            call, path = self._call(name, arguments)
            outcome = call()
            return self._format(await outcome if inspect.isawaitable(outcome) else outcome, path)
        except (LLMSafeSpaceError, ValueError) as exc:
            return _failure(exc)

    def openai_message(self, tool_call: dict[str, Any]) -> dict[str, Any]:
        """Answer one OpenAI `tool_calls` entry with the `role: tool` message."""
        function = tool_call["function"]
        content = self.dispatch(function["name"], function.get("arguments") or "{}")
        return {"role": "tool", "tool_call_id": tool_call["id"], "content": content}

    def anthropic_result(self, tool_use: dict[str, Any]) -> dict[str, Any]:
        """Answer one Anthropic `tool_use` block with its `tool_result` block."""
        content, failed = self._dispatch(tool_use["name"], tool_use.get("input") or {})
        return {
            "type": "tool_result",
            "tool_use_id": tool_use["id"],
            "content": content,
            "is_error": failed,
        }

    def _call(
        self, name: str, arguments: dict[str, Any] | str
    ) -> tuple[Callable[[], Any], str | None]:
        """The bound call, and the resolved path for the file tools (else None)."""
        spec = self._specs.get(name)
        if spec is None:
            raise ValueError(f"unknown tool {name!r}; known: {', '.join(self._specs)}")
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"tool arguments are not valid JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise ValueError("tool arguments must be a JSON object")
        unknown = set(args) - set(spec.arguments)
        if unknown:
            raise ValueError(f"unknown arguments for {name}: {', '.join(sorted(unknown))}")
        required = [arg for arg in spec.arguments if arg in spec.parameters["required"]]
        for argument in required:
            if not isinstance(args.get(argument), str):
                raise ValueError(f"{name} needs a string {argument!r}")
        for argument, value in args.items():
            schema = spec.parameters["properties"][argument]
            if schema["type"] == "integer" and (
                not isinstance(value, int) or isinstance(value, bool) or value < schema["minimum"]
            ):
                raise ValueError(f"{name}'s {argument!r} must be an integer >= {schema['minimum']}")
        path = None
        if "path" in args:
            args["path"] = path = workspace_path(args["path"])
        positional = [args.pop(argument) for argument in required]
        if spec.bounded_by is not None:
            args[spec.bounded_by] = read_length(self.max_output_chars)
        target: Any = self.sandbox
        for part in spec.method.split("."):
            target = getattr(target, part)
        method: Callable[..., Any | Awaitable[Any]] = target
        return (lambda: method(*positional, **args)), path

    def _format(self, result: ExecutionResult | FileWritten | FilePart, path: str | None) -> str:
        limit = self.max_output_chars
        if isinstance(result, FilePart):
            assert path is not None
            return json.dumps(file_part_result(path, result, limit))
        if isinstance(result, FileWritten):
            return json.dumps({"path": path, "size": result.size})
        return json.dumps(
            {
                "status": result.status.value,
                "exit_code": result.exit_code,
                "stdout": result.stdout[-limit:],
                "stderr": result.stderr[-limit:],
                "result": result.result,
                "error": result.error.model_dump() if result.error else None,
            }
        )


def _failure(exc: Exception) -> str:
    code = getattr(exc, "code", None) or "invalid_tool_call"
    return json.dumps({"error": {"code": code, "message": str(exc)}})


def workspace_path(path: str) -> str:
    """A tool's path argument made absolute: a relative one is under /workspace."""
    return posixpath.normpath(posixpath.join(WORKSPACE, path))


def read_length(length: int) -> int:
    """How many bytes to read for a `read_file` part of at most `length`: at least one
    character's worth, so a part whose `length` is smaller than a character can be it."""
    return max(length, MAX_CHARACTER_BYTES)


def file_part_result(path: str, part: FilePart, length: int) -> dict[str, Any]:
    """What `read_file` answers for a part of a file (read with `read_length(length)`):
    its text, and where to read on."""
    text, used = _decoded(part, length)
    end = part.offset + used
    body: dict[str, Any] = {
        "path": path,
        "size": part.size,
        "offset": part.offset,
        "content": text,
        "truncated": end < part.size,
    }
    if end < part.size:
        body["next_offset"] = end
        body["note"] = (
            f"showing {used} bytes from offset {part.offset} of a {part.size}-byte file; "
            f"call read_file with offset={end} for more"
        )
    return body


def _decoded(part: FilePart, length: int) -> tuple[str, int]:
    """The part's first `length` bytes as UTF-8 (bad bytes replaced), and how many bytes
    that text is. A character cut off at the end is left for the next part, so parts read
    on from one another decode as the whole file does; when the cut character is all there
    is (`length` is smaller than it), the text is that whole character, read past `length`."""
    text, used = _whole_characters(part, length)
    if used == 0 and part.data:
        text, used = _whole_characters(part, _character_length(part.data[0]))
    return text, used


def _whole_characters(part: FilePart, length: int) -> tuple[str, int]:
    """The part's first `length` bytes decoded but for a character cut off at their end
    (unless the file ends there), and how many bytes that text is."""
    data = part.data[:length]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=part.offset + len(data) >= part.size)
    return text, len(data) - len(decoder.getstate()[0])


def _character_length(lead: int) -> int:
    """The bytes of the UTF-8 character that `lead` (a multi-byte lead byte) starts."""
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
