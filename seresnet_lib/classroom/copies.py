"""Student copies of the lessons: the exercises, without their solutions.

The lessons mark their exercises with cell tags, which JupyterLab shows (View > Property
Inspector) and nbconvert's ``TagRemovePreprocessor`` understands:

- ``exercise``: the code cell a student answers in, ending with its self-check. Its metadata
  ``exercise`` holds ``{"id": "02.1", "title": "Find the bug"}``; a student copy adds the
  fingerprint of the code as handed out, so that grading can tell an exercise left alone.
- ``solution``: the worked solution (a markdown cell), which student copies leave out.

    seresnet student   # student/NN_*.ipynb: no solutions, no outputs

Grading the copies students hand back is in ``grading.py``.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor, ClearOutputPreprocessor, TagRemovePreprocessor
from nbformat import NotebookNode

from ..paths import display

EXERCISE, SOLUTION = "exercise", "solution"


def tags(cell: NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def exercise_cells(notebook: NotebookNode) -> list[int]:
    """Positions of the cells tagged ``exercise``, in order."""
    return [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and EXERCISE in tags(cell)]


def fingerprint(source: str) -> str:
    """A short hash of a cell's code, blind to leading and trailing blank space."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


# Student copies

def student_copy(lesson: NotebookNode) -> NotebookNode:
    """``lesson`` without its solution cells, outputs, execution counts or run metadata."""
    notebook = copy.deepcopy(lesson)
    resources: dict = {}
    TagRemovePreprocessor(remove_cell_tags={SOLUTION}, enabled=True).preprocess(notebook, resources)
    ClearOutputPreprocessor().preprocess(notebook, resources)
    # keep tags, the exercise ids and the kernel; drop papermill's timings and paths
    ClearMetadataPreprocessor(preserve_cell_metadata_mask={"tags", EXERCISE},
                              preserve_nb_metadata_mask={"kernelspec", "language_info"}).preprocess(notebook, resources)
    for index in exercise_cells(notebook):
        cell = notebook.cells[index]
        cell.metadata[EXERCISE] = {**cell.metadata.get(EXERCISE, {}), "handed_out": fingerprint(cell.source)}
    return notebook


def write_student_copies(lessons: Sequence[Path], out_dir: Path, force: bool = False) -> list[Path]:
    """Write ``student_copy`` of each lesson into ``out_dir``; returns the paths written.

    A copy a student may have worked in is never overwritten silently: if a target file
    exists with other contents, nothing is written unless ``force``.
    """
    out_dir = Path(out_dir)
    if any(out_dir.resolve() == Path(lesson).resolve().parent for lesson in lessons):
        raise ValueError(f"{display(out_dir)} holds the lessons themselves; write student copies to another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{display(out_dir)} is a file, not a folder; choose a folder for the student copies")
    copies = {out_dir / Path(lesson).name: nbformat.writes(student_copy(_read_lesson(Path(lesson))))
              for lesson in lessons}
    changed = [path for path, text in copies.items() if path.exists() and path.read_text() != text]
    if changed and not force:
        names = ", ".join(display(path) for path in changed)
        it, differs = ("it", "differs") if len(changed) == 1 else ("them", "differ")
        raise FileExistsError(f"{names} {differs} from a fresh copy (a student may have worked in {it}); "
                              f"move {it} away, or pass --force to overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in copies.items():
        path.write_text(text)
    return list(copies)


def _read_lesson(path: Path) -> NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook
        raise ValueError(f"{display(path)} cannot be read as a notebook: {error}".splitlines()[0]) from None
