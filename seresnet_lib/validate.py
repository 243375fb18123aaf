"""Argument checks that fail early with a message naming the argument and what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {choices}")


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> None:
    """Raise ValueError unless ``value`` is an int in [minimum, maximum] (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def check_number(name: str, value: Any, allowed: str, test) -> None:
    """Raise ValueError unless ``value`` is a real number for which ``test(value)`` holds.

    ``allowed`` describes the range in the message, e.g. "> 0" or "in [0, 1)".
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r} ({type(value).__name__})"
                         + _number_as_text_hint(value))
    if not test(value):
        raise ValueError(f"{name} must be {allowed}, got {value}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_str(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r} ({type(value).__name__})")


def _number_as_text_hint(value: Any) -> str:
    """For a number that arrived as text, e.g. ``lr: 1e-3`` in a YAML file: why, and how to write it."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if not math.isfinite(number):
        return ""
    written = re.fullmatch(r"\s*([-+]?[0-9_]*\.?[0-9_]*)[eE]([-+]?)([0-9]+)\s*", value)
    if written:  # PyYAML reads YAML 1.1: a float with an exponent needs a dot and a sign, as in 1.0e-3
        mantissa, sign, digits = written.groups()
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        return (f"; YAML (papermill's -f and -y) reads {value.strip()} as text: write "
                f"{mantissa}e{sign or '+'}{digits} or {number!r}")
    return f"; a number in quotes is text: write {number!r} without quotes (with papermill, -p rather than -r)"
