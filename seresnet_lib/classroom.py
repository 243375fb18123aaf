"""Student copies of the lessons, and grading of the copies students hand back.

The lessons mark their exercises with cell tags, which JupyterLab shows (View > Property
Inspector) and nbconvert's ``TagRemovePreprocessor`` understands:

- ``exercise``: the code cell a student answers in, ending with its self-check. Its metadata
  ``exercise`` holds ``{"id": "02.1", "title": "Find the bug"}``.
- ``solution``: the worked solution (a markdown cell), which student copies leave out.

A self-check's result is recorded in the notebook as data (``checks.CHECK_MIME``) next to
its text, so grading reads what the student's own run showed.

    python -m seresnet_lib.series student              # student/NN_*.ipynb, no solutions or outputs
    python -m seresnet_lib.series check alice/*.ipynb  # one line per exercise; checked/grades.csv
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor, ClearOutputPreprocessor, TagRemovePreprocessor
from nbformat import NotebookNode
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from .checks import CHECK_MIME
from .paths import display

EXERCISE, SOLUTION = "exercise", "solution"
PASSED, FAILED, NOT_DONE, CRASHED = "passed", "failed", "not done", "crashed"
MARKS = {PASSED: "✓", FAILED: "✗", NOT_DONE: "·", CRASHED: "✗"}


def tags(cell: NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def exercise_cells(notebook: NotebookNode) -> list[int]:
    """Positions of the cells tagged ``exercise``, in order."""
    return [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and EXERCISE in tags(cell)]


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
    return notebook


def write_student_copies(lessons: Sequence[Path], out_dir: Path, force: bool = False) -> list[Path]:
    """Write ``student_copy`` of each lesson into ``out_dir``; returns the paths written.

    A copy a student may have worked in is never overwritten silently: if a target file
    exists with other contents, nothing is written unless ``force``.
    """
    out_dir = Path(out_dir)
    if any(out_dir.resolve() == Path(lesson).resolve().parent for lesson in lessons):
        raise ValueError(f"{display(out_dir)} holds the lessons themselves; write student copies to another folder")
    copies = {out_dir / Path(lesson).name: nbformat.writes(student_copy(nbformat.read(lesson, as_version=4)))
              for lesson in lessons}
    changed = [path for path, text in copies.items() if path.exists() and path.read_text() != text]
    if changed and not force:
        names = ", ".join(display(path) for path in changed)
        raise FileExistsError(f"{names} already exist(s) and differ(s) from a fresh copy (a student may have worked "
                              f"in it); move it away, or pass --force to overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in copies.items():
        path.write_text(text)
    return list(copies)


# Grading

@dataclass(frozen=True)
class Outcome:
    """One line of the grading table: an exercise of a notebook, or a notebook that crashed."""

    notebook: str
    exercise: str  # "02.1", or "" for the notebook as a whole
    title: str
    result: str  # PASSED, FAILED, NOT_DONE or CRASHED
    detail: str

    @property
    def mark(self) -> str:
        return MARKS[self.result]


def starting_code(lessons: Iterable[Path]) -> dict[str, str]:
    """Each exercise id's cell as the lessons hand it out: an answer still equal to it is not done."""
    code = {}
    for lesson in lessons:
        notebook = nbformat.read(lesson, as_version=4)
        for index in exercise_cells(notebook):
            cell = notebook.cells[index]
            code[cell.metadata[EXERCISE]["id"]] = cell.source.strip()
    return code


def _error_text(output: NotebookNode) -> str:
    return f"{output.ename}: {output.evalue}".strip().splitlines()[0]


def _where(index: int, cell: NotebookNode) -> str:
    """A cell as a reader finds it: its position and its first line."""
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first_line[:50]})"


def grade(notebook: NotebookNode, name: str, starting: dict[str, str]) -> list[Outcome]:
    """Read an executed notebook's exercises: each one's last self-check result, or its error.

    An exercise spans its cell and any cells a student added after it, up to the next
    exercise. A self-check still saying "Not done yet", or a cell left as ``starting`` has
    it (whatever its check says), counts as not done. An error before the first exercise
    is reported as a crash of the notebook.
    """
    positions = exercise_cells(notebook)
    outcomes = []
    first = positions[0] if positions else len(notebook.cells)
    for index, cell in enumerate(notebook.cells[:first]):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                outcomes.append(Outcome(name, "", "", CRASHED, f"{_where(index, cell)}: {_error_text(output)}"))
                break
        if outcomes:
            break
    for position, end in zip(positions, positions[1:] + [len(notebook.cells)]):
        cell = notebook.cells[position]
        exercise = cell.metadata.get(EXERCISE, {})
        exercise_id, title = exercise.get("id", f"cell {position + 1}"), exercise.get("title", "")
        last = None  # ("check", data) or ("error", text), whichever came last
        for later in notebook.cells[position:end]:
            for output in later.get("outputs", []) if later.cell_type == "code" else []:
                if output.output_type == "error":
                    last = ("error", _error_text(output))
                elif CHECK_MIME in output.get("data", {}):
                    last = ("check", output.data[CHECK_MIME])
        unchanged = starting.get(exercise_id) == cell.source.strip()
        if last is None:
            result, detail = (NOT_DONE, "not run") if unchanged else (
                FAILED, "no self-check result: end the exercise cell with its check, as given")
        elif last[0] == "error":  # in a cell left as handed out, an error comes from a cell before it
            result, detail = NOT_DONE if unchanged else FAILED, f"raised {last[1]}"
        elif last[1].get("passed"):
            result, detail = PASSED, last[1].get("message", "")
        elif not last[1].get("done", True) or unchanged:
            result, detail = NOT_DONE, last[1].get("message", "")
        else:
            result, detail = FAILED, last[1].get("message", "")
        outcomes.append(Outcome(name, exercise_id, title, result, detail))
    if not positions and not outcomes:
        outcomes.append(Outcome(name, "", "", FAILED, "no exercise cells (tagged 'exercise') in this notebook"))
    return outcomes


def execute(notebook: NotebookNode, folder: Path, timeout: int) -> str | None:
    """Run every cell of ``notebook`` in place, in ``folder``, going on past errors.

    Returns why the run stopped early (a cell over ``timeout`` seconds, a dead kernel), or None.
    """
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except CellTimeoutError:
        return f"a cell ran longer than {timeout} s"
    except DeadKernelError as error:
        return f"the kernel died: {error}"
    return None


def check_notebook(path: Path, starting: dict[str, str], executed_path: Path, timeout: int = 600,
                   parameters: dict | None = None) -> list[Outcome]:
    """Execute a student's notebook (saving the executed copy) and grade it."""
    name = display(path)
    try:
        notebook = load_notebook_node(str(path))  # with the metadata papermill's parameters need
    except Exception as error:  # not JSON, not a notebook, unreadable
        return [Outcome(name, "", "", CRASHED, f"cannot read it as a notebook: {error}".splitlines()[0])]
    if parameters and any("parameters" in tags(cell) for cell in notebook.cells):
        notebook = parameterize_notebook(notebook, parameters, kernel_name="python3", language="python")
    stopped = execute(notebook, Path(path).resolve().parent, timeout)
    executed_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, executed_path)
    outcomes = grade(notebook, name, starting)
    if stopped:
        ran = [i for i, cell in enumerate(notebook.cells) if cell.get("execution_count")] or [0]
        outcomes.insert(0, Outcome(name, "", "", CRASHED, f"{_where(ran[-1], notebook.cells[ran[-1]])}: {stopped}"))
    return outcomes


def executed_copy_path(path: Path, out_dir: Path, taken: set[Path]) -> Path:
    """Where the executed copy of ``path`` goes: out_dir/<its folder>/<its name>, never twice the same."""
    path = Path(path).resolve()
    target = Path(out_dir) / path.parent.name / path.name
    number = 2
    while target in taken or target.resolve() == path:
        target = Path(out_dir) / path.parent.name / f"{path.stem}-{number}{path.suffix}"
        number += 1
    taken.add(target)
    return target


def check_notebooks(paths: Sequence[Path], lessons: Sequence[Path], out_dir: Path = Path("checked"),
                    timeout: int = 600, parameters: dict | None = None, progress=print) -> list[Outcome]:
    """Grade each notebook in turn; one that crashes is reported and the others are still graded."""
    starting = starting_code(lessons)
    outcomes, taken = [], set()
    for path in paths:
        progress(f"checking {display(path)} ...")
        outcomes += check_notebook(path, starting, executed_copy_path(path, out_dir, taken), timeout, parameters)
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as an aligned text table, one line each."""
    rows = [(o.notebook, f"{o.exercise} {o.title}".strip() or "(whole notebook)", f"{o.mark} {o.result}", o.detail)
            for o in outcomes]
    header = ("notebook", "exercise", "result", "detail")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row[:3], widths)) + "  " + row[3]
                     for row in [header, *rows]).rstrip()


def write_csv(outcomes: Sequence[Outcome], path: Path) -> None:
    """The outcomes as CSV for a gradebook: notebook, exercise, title, result, detail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["notebook", "exercise", "title", "result", "detail"])
        writer.writerows([o.notebook, o.exercise, o.title, o.result, o.detail] for o in outcomes)


def summary(outcomes: Sequence[Outcome]) -> str:
    exercises = [o for o in outcomes if o.exercise]
    counts = {result: sum(o.result == result for o in exercises) for result in (PASSED, FAILED, NOT_DONE)}
    crashed = len({o.notebook for o in outcomes if o.result == CRASHED})
    text = (f"{counts[PASSED]} of {len(exercises)} exercises passed, {counts[FAILED]} failed, "
            f"{counts[NOT_DONE]} not done")
    return text + (f"; {crashed} notebook(s) crashed" if crashed else "")
