"""Checks of arguments that many places share, with the messages they give."""

from __future__ import annotations


def type_name(value: object) -> str:
    """A value's type for a message, with its article: "an int", "a list", "None"."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
