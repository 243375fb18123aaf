"""Relative paths (data/, runs/) mean the same folder wherever a notebook runs from.

They are taken from the folder named by the environment variable SERESNET_WORKDIR if
set (the test suite points it at a temporary folder), else from the project root in a
checkout (the package installed editable), else from the working directory. So a
notebook executed in notebooks/ and a papermill command run from the root both use the
root's data/ and runs/.
"""

from __future__ import annotations

import os
from pathlib import Path

_checkout = Path(__file__).resolve().parents[1]
PROJECT_ROOT = _checkout if (_checkout / "pyproject.toml").is_file() else None
NOTEBOOKS = (PROJECT_ROOT or Path.cwd()) / "notebooks"  # the lessons, their presets (params/) and results/
RESULTS = NOTEBOOKS / "results"  # small results of long runs, committed: reference/, sweeps' results.csv


def workdir() -> Path:
    """The folder relative data and output paths are taken from."""
    return Path(os.environ.get("SERESNET_WORKDIR") or PROJECT_ROOT or Path.cwd())


def resolve(path: str | Path) -> Path:
    """An absolute path: relative ones are taken from ``workdir()``."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else workdir() / path


def display(path: str | Path) -> str:
    """The path as a reader should see it: relative to ``workdir()`` (or the working directory) when inside it."""
    path = Path(path).resolve()
    for base in (workdir(), Path.cwd()):
        try:
            return str(path.relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)
