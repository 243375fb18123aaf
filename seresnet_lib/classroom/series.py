"""Run the lessons: every one into a folder, or in place so its saved outputs are this run's.

    seresnet run      # every lesson into runs/, originals untouched
    seresnet record   # every lesson in place, refreshing its saved outputs
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import papermill

from ..kernel import LocalKernelManager
from ..paths import NOTEBOOKS, display


def lessons(directory: Path = NOTEBOOKS) -> list[Path]:
    """The numbered lesson notebooks, in order: 01_*.ipynb, 02_*.ipynb, ..."""
    found = sorted(Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no lesson notebooks (NN_*.ipynb) in {directory}")
    return found


def _execute_lesson(source: Path, target: Path, parameters: dict | None = None) -> Path:
    """Run ``source`` top to bottom in its own folder, writing the executed copy to ``target``."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(source, target, parameters=parameters or {}, cwd=source.parent, kernel_name="python3",
                               progress_bar=False, kernel_manager_class=LocalKernelManager)
    return target


def _strip_run_metadata(path: Path) -> None:
    """Drop papermill's timings and absolute paths, so a recorded notebook only changes when its outputs do."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


def run_series(out_dir: Path = Path("runs"), notebooks: list[Path] | None = None) -> list[Path]:
    """Execute each lesson into ``out_dir`` and return the paths of the executed copies."""
    done = []
    for notebook in notebooks or lessons():
        done.append(_execute_lesson(notebook, Path(out_dir) / Path(notebook).name))
        print(f"executed {display(notebook)} -> {display(done[-1])}", flush=True)
    return done


def record_lessons(notebooks: list[Path] | None = None) -> None:
    """Re-execute each lesson in place: its saved outputs become those of this run.

    The run goes to a temporary copy first; a lesson that fails is left as it was.
    """
    for notebook in notebooks or lessons():
        notebook = Path(notebook)
        executed = notebook.with_name(f".{notebook.stem}.recording.ipynb")
        try:
            _execute_lesson(notebook, executed)
            _strip_run_metadata(executed)
            os.replace(executed, notebook)
        finally:
            executed.unlink(missing_ok=True)
        print(f"recorded {display(notebook)}", flush=True)
