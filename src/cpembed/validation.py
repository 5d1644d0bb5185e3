"""Checks of arguments that many places share, with the messages they give."""

from __future__ import annotations

from .errors import InvalidValueError


def type_name(value: object) -> str:
    """A value's type for a message, with its article: "an int", "a list", "None"."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def positive_int(name: str, value: object) -> int:
    """`value` if it is an integer >= 1 (not a bool), else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"{name} must be a positive integer, got {value!r}")
    return value
