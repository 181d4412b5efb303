"""The probes package's one error tree.

``ProbeSpecError`` is a permanent validation error on a pod manifest, shaped like an apimachinery ``field.Error``:
``.field`` is the full field path and ``str()`` is ``"<field>: <type>: <detail>"``.
``ExecTimeoutError`` is what an :class:`~probes.types.ExecRunner` raises when a command outlives its timeout.
"""
from __future__ import annotations

from typing import Final

__all__ = ["ProbeError", "ProbeSpecError", "ExecTimeoutError", "ProbeRunError", "go_quote", "render_field_value"]


class ProbeError(Exception):
    """Base of every error raised by ``probes``."""


class ProbeSpecError(ProbeError, ValueError):
    """A probe object in a pod manifest is invalid. Permanent: the pod must not start."""

    REQUIRED: Final = "Required value"
    INVALID: Final = "Invalid value"
    FORBIDDEN: Final = "Forbidden"
    UNSUPPORTED: Final = "Unsupported value"
    NOT_FOUND: Final = "Not found"

    def __init__(self, *, field: str, type: str, detail: str, value: object = None) -> None:
        self.field = field
        self.type = type
        self.detail = detail
        self.value = value
        super().__init__(self._render())

    def _render(self) -> str:
        if self.type in (self.INVALID, self.UNSUPPORTED, self.NOT_FOUND):
            body = f"{self.type}: {render_field_value(self.value)}"
            return f"{self.field}: {body}: {self.detail}" if self.detail else f"{self.field}: {body}"
        return f"{self.field}: {self.type}: {self.detail}" if self.detail else f"{self.field}: {self.type}"


class ExecTimeoutError(ProbeError, TimeoutError):
    """An exec probe's command did not finish within its timeout (a probe failure, never a hang)."""


class ProbeRunError(ProbeError):
    """A probe could not be run at all (the prober's own fault, not the container's): the result is thrown away."""


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
            "\f": "\\f", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (what field errors use): control and non-printable characters escaped, so a value
    never breaks the one-line error."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def render_field_value(value: object) -> str:
    """Render a value the way apimachinery's field errors do: strings quoted, numbers bare."""
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
