"""Relative paths (data/, runs/) mean the same folder wherever a notebook runs from.

In a checkout (the package installed editable) they are taken from the project root,
so a notebook executed in notebooks/ and a papermill command run from the root both
use the root's data/ and runs/; otherwise from the working directory.
"""

from __future__ import annotations

from pathlib import Path

_checkout = Path(__file__).resolve().parents[1]
PROJECT_ROOT = _checkout if (_checkout / "pyproject.toml").is_file() else None


def resolve(path: str | Path) -> Path:
    """An absolute path: relative ones are taken from the project root."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    return (PROJECT_ROOT or Path.cwd()) / path


def display(path: str | Path) -> str:
    """The path as a reader should see it: relative to the project root when inside it."""
    path = Path(path)
    for base in (PROJECT_ROOT, Path.cwd()):
        if base is not None:
            try:
                return str(path.resolve().relative_to(base.resolve()))
            except ValueError:
                pass
    return str(path)
