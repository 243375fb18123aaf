"""Where things are: the folder relative paths (data/, runs/) start from, and the lessons' folder.

Relative paths are taken from the folder named by the environment variable SERESNET_WORKDIR if
set (the test suite and the grader point it at a temporary folder), else from the working
folder: the folder a notebook's kernel runs in (JupyterLab and papermill start it in the
notebook's folder), or where a command is typed. Never from where the package is installed, so
two clones, or the students of one JupyterHub, sharing one environment each keep their own runs/.
When the working folder is inside a checkout of this project (a folder whose pyproject.toml names
the project seresnet-lib), the checkout's root is taken instead: a notebook executed in notebooks/
and a papermill command run from the root then share one data/ (CIFAR-10 is 170 MB) and runs/.

The lessons' folder (``NOTEBOOKS``, with ``params/`` and ``results/``) is SERESNET_NOTEBOOKS if
set; else the notebooks/ of the checkout the working folder is in; else the working folder if it
holds lessons (a copy of notebooks/, where a lesson's kernel runs); else the notebooks/ of the
checkout the package is installed from (editable), for its committed presets and results; else
the working folder's notebooks/.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

PROJECT = "seresnet-lib"  # the name in pyproject.toml that marks a checkout of this project


def _names_this_project(pyproject: Path) -> bool:
    """Whether ``pyproject`` is this project's (its name compared as packaging does: seresnet_lib too)."""
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name", "")
    except (OSError, ValueError):  # unreadable, not text, not TOML
        return False
    return isinstance(name, str) and re.sub(r"[-_.]+", "-", name).lower() == PROJECT


def checkout_of(folder: Path) -> Path | None:
    """The root of the checkout of this project that ``folder`` is in (``folder`` itself or a folder above
    it), or None."""
    folder = Path(folder).absolute()
    return next((root for root in (folder, *folder.parents) if _names_this_project(root / "pyproject.toml")), None)


def _installed_from() -> Path | None:
    """The checkout the package is installed from (an editable install), or None (installed from a wheel)."""
    root = Path(__file__).resolve().parents[1]
    return root if _names_this_project(root / "pyproject.toml") else None


_PROJECT_ROOT = _installed_from()  # read for the committed presets and results only, never for paths to write


def _notebooks() -> Path:
    if os.environ.get("SERESNET_NOTEBOOKS"):
        return Path(os.environ["SERESNET_NOTEBOOKS"]).expanduser().resolve()
    here = Path.cwd()
    checkout = checkout_of(here)
    if checkout is not None:
        return checkout / "notebooks"
    if any(here.glob("[0-9][0-9]_*.ipynb")):
        return here
    return (_PROJECT_ROOT or here) / "notebooks"


def _committed(name: str) -> Path:
    """``NOTEBOOKS / name``; where the lessons' folder lacks it (a copy of the lessons alone), the one of the
    checkout the package is installed from, if that has it."""
    path = NOTEBOOKS / name
    installed = _PROJECT_ROOT / "notebooks" / name if _PROJECT_ROOT is not None else path
    return installed if not path.exists() and installed.exists() else path


NOTEBOOKS = _notebooks()  # the lessons, their presets (params/) and results/
RESULTS = _committed("results")  # small results of long runs, committed: reference/, sweeps' results.csv
LESSON_05 = _committed("05_train_cifar10.ipynb")  # the training lesson, which sweeps run by default


def workdir() -> Path:
    """The folder relative data and output paths are taken from: SERESNET_WORKDIR if set, else the root of
    the checkout of this project that the working folder is in, else the working folder."""
    if os.environ.get("SERESNET_WORKDIR"):
        return Path(os.environ["SERESNET_WORKDIR"]).expanduser().absolute()
    here = Path.cwd()
    return checkout_of(here) or here


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
