"""Checks of arguments that many places share, with the messages they give."""

from __future__ import annotations

from .errors import InvalidValueError


def type_name(value: object) -> str:
    """A value's type for a message, with its article: "an int", "a list", "None"."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def integer(name: str, value: object, low: int = 1, high: int | None = None, why: str = "") -> int:
    """`value` if it is an int (not a bool) from `low` to `high`, else an error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise InvalidValueError(f"{name} must be an integer {bounds}{why}, got {value!r}")
    return value
