"""Where things are: the lessons' folder, and the folder relative paths (data/, runs/) start from.

Relative paths are taken from the folder named by the environment variable SERESNET_WORKDIR
if set (the test suite points it at a temporary folder), else from the project root in a
checkout (the package installed editable), else from the working directory. So a notebook
executed in notebooks/ and a papermill command run from the root both use the root's data/
and runs/.

The lessons' folder (``NOTEBOOKS``, with ``params/`` and ``results/``) is the checkout's
notebooks/; with the package installed from a wheel, the working directory if it holds the
lessons (a copy of notebooks/, where a lesson's kernel runs), else its notebooks/ folder.
SERESNET_NOTEBOOKS names another.
"""

from __future__ import annotations

import os
from pathlib import Path

_checkout = Path(__file__).resolve().parents[1]
_PROJECT_ROOT = _checkout if (_checkout / "pyproject.toml").is_file() else None


def _notebooks() -> Path:
    if os.environ.get("SERESNET_NOTEBOOKS"):
        return Path(os.environ["SERESNET_NOTEBOOKS"]).expanduser().resolve()
    if _PROJECT_ROOT is not None:
        return _PROJECT_ROOT / "notebooks"
    here = Path.cwd()
    return here if any(here.glob("[0-9][0-9]_*.ipynb")) else here / "notebooks"


NOTEBOOKS = _notebooks()  # the lessons, their presets (params/) and results/
RESULTS = NOTEBOOKS / "results"  # small results of long runs, committed: reference/, sweeps' results.csv
LESSON_05 = NOTEBOOKS / "05_train_cifar10.ipynb"  # the training lesson, which sweeps run by default


def workdir() -> Path:
    """The folder relative data and output paths are taken from."""
    return Path(os.environ.get("SERESNET_WORKDIR") or _PROJECT_ROOT or Path.cwd())


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
