"""Grading the notebooks students hand back, exercise by exercise, from their self-checks.

Each notebook runs top to bottom in a fresh kernel, in its own folder, with its saved outputs
cleared first, and goes on past errors. A self-check's result is recorded in the notebook
as data (``checks.CHECK_MIME``) next to its text, so grading reads what the run showed.
Relative paths in the notebook (``runs/``, ``data/``) point into a scratch folder, deleted
afterwards, so grading never writes into the project's own ``runs/``.

    seresnet check alice/ bob/01_stem.ipynb   # table, checked/grades.csv

A student's code runs with the rights of whoever grades it, and a determined student can
display a forged result: grade in a container or as an unprivileged user, and treat the
grade as feedback, not as an exam.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from ..kernel import LocalKernelManager
from ..paths import display, workdir as project_workdir
from .checks import CHECK_MIME
from .copies import EXERCISE, exercise_cells, fingerprint, tags

PASSED, FAILED, NOT_DONE, CRASHED = "passed", "failed", "not done", "crashed"
_MARKS = {PASSED: "✓", FAILED: "✗", NOT_DONE: "·", CRASHED: "✗"}
_PLAIN_MARKS = {PASSED: "+", FAILED: "x", NOT_DONE: ".", CRASHED: "x"}  # for terminals without ✓ and ✗
_NO_RESULT = "no self-check result: keep the check call as the exercise cell's last line, not inside print()"


@dataclass(frozen=True)
class Grade:
    """One line of the grading table: an exercise of a notebook, or a notebook that crashed."""

    notebook: str
    exercise: str  # "02.1", or "" for the notebook as a whole
    title: str
    result: str  # PASSED, FAILED, NOT_DONE or CRASHED
    detail: str
    executed: str = ""  # where the executed copy was saved


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    handed_out: str  # fingerprint of the exercise cell as the lesson hands it out


def lesson_exercises(lessons: Iterable[Path]) -> dict[str, Exercise]:
    """Every exercise of the lessons, by id, in order."""
    found = {}
    for lesson in lessons:
        notebook = nbformat.read(lesson, as_version=4)
        for index in exercise_cells(notebook):
            cell = notebook.cells[index]
            meta = cell.metadata[EXERCISE]
            found[meta["id"]] = Exercise(meta["id"], meta.get("title", ""), fingerprint(cell.source))
    return found


@dataclass(frozen=True)
class Stop:
    """Where and why a run ended before its last cell."""

    cell: int
    reason: str


def _error_text(output: NotebookNode) -> str:
    return f"{output.ename}: {output.evalue}".strip().splitlines()[0]


def _where(index: int, cell: NotebookNode) -> str:
    """A cell as a reader finds it: its position and its first line."""
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first_line[:50]})"


def _lesson_of(notebook: NotebookNode, name: str) -> str | None:
    """The lesson number ("01") a notebook belongs to: from its exercise ids, else its file name."""
    for index in exercise_cells(notebook):
        exercise_id = str(_exercise_meta(notebook.cells[index]).get("id", ""))
        if "." in exercise_id:
            return exercise_id.split(".")[0]
    stem = Path(name).name
    return stem[:2] if stem[:2].isdigit() and stem[2:3] == "_" else None


def _exercise_meta(cell: NotebookNode) -> dict:
    meta = cell.metadata.get(EXERCISE)
    return meta if isinstance(meta, dict) else {}


@dataclass
class _Span:
    """The cells from one exercise cell up to the next: the exercise's own cell and those added below it."""

    start: int
    end: int
    unchanged: bool
    checks: list[tuple[int, dict]]
    errors: list[str]


def _spans(notebook: NotebookNode, exercises: dict[str, Exercise], ran_until: int) -> dict[str, list[_Span]]:
    """Each exercise id's spans, in notebook order (a pasted copy of an exercise cell is a span of its id)."""
    starts = exercise_cells(notebook)
    spans: dict[str, list[_Span]] = {}
    for start, end in zip(starts, starts[1:] + [len(notebook.cells)]):
        cell = notebook.cells[start]
        meta = _exercise_meta(cell)
        exercise_id = str(meta.get("id") or f"cell {start + 1}")
        known = exercises.get(exercise_id)
        handed_out = meta.get("handed_out") or (known.handed_out if known else None)
        span = _Span(start, end, handed_out == fingerprint(cell.source), [], [])
        for index in range(start, min(end, ran_until)):
            for output in notebook.cells[index].get("outputs", []):
                data = output.get("data", {}).get(CHECK_MIME)
                if output.output_type == "error":
                    span.errors.append(_error_text(output))
                elif isinstance(data, dict):
                    span.checks.append((index, data))
        spans.setdefault(exercise_id, []).append(span)
    return spans


def _verdict(spans: list[_Span], stop: Stop | None) -> tuple[str, str]:
    """(result, detail) of one exercise from its spans."""
    checks = [check for span in spans for check in span.checks]
    untouched = {span.start for span in spans if span.unchanged}
    left_alone = len(untouched) == len(spans)
    if checks:
        index, result = checks[-1]
        message = str(result.get("message", ""))
        if result.get("passed") is True:
            return PASSED, message
        if result.get("done") is False or index in untouched:
            return NOT_DONE, message
        return FAILED, message
    if stop and any(stop.cell < span.end for span in spans):
        return (NOT_DONE if left_alone else FAILED), f"not run to its end: the notebook stopped in cell {stop.cell + 1}"
    errors = [error for span in spans for error in span.errors]
    if errors:
        return (NOT_DONE if left_alone else FAILED), f"raised {errors[-1]}"
    return (NOT_DONE, "not run") if left_alone else (FAILED, _NO_RESULT)


def grade(notebook: NotebookNode, name: str, exercises: dict[str, Exercise], stop: Stop | None = None,
          executed: str = "") -> list[Grade]:
    """Read an executed notebook: each exercise's last self-check result, or else its error.

    An exercise spans its cell and any cells a student added after it, up to the next
    exercise cell. It is not done while its check says "Not done yet", or while the result
    comes from its cell as handed out. An error before the first exercise is a crash of the
    notebook; an exercise of the lesson that is not in the notebook is missing.
    """
    def outcome(exercise_id, title, result, detail):
        return Grade(name, exercise_id, title, result, detail, executed)

    ran_until = stop.cell if stop else len(notebook.cells)  # outputs of the stopped cell and later are not read
    starts = exercise_cells(notebook)
    outcomes = []
    for index, cell in enumerate(notebook.cells[:min(starts[0] if starts else ran_until, ran_until)]):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            outcomes.append(outcome("", "", CRASHED, f"{_where(index, cell)}: {_error_text(errors[0])}"))
            break
    if stop:
        outcomes.append(outcome("", "", CRASHED, f"{_where(stop.cell, notebook.cells[stop.cell])}: {stop.reason}"))
    spans = _spans(notebook, exercises, ran_until)
    for exercise_id, its_spans in spans.items():
        known = exercises.get(exercise_id)
        title = str(_exercise_meta(notebook.cells[its_spans[0].start]).get("title") or (known.title if known else ""))
        outcomes.append(outcome(exercise_id, title, *_verdict(its_spans, stop)))
    lesson = _lesson_of(notebook, name)
    for exercise in exercises.values():
        if exercise.id.split(".")[0] == lesson and exercise.id not in spans:
            outcomes.append(outcome(exercise.id, exercise.title, FAILED,
                                    "missing: its cell, or the cell's 'exercise' tag, was deleted"))
    if not outcomes:
        outcomes.append(outcome("", "", FAILED, "no exercise cells (tagged 'exercise') in this notebook"))
    return outcomes


def execute_submission(notebook: NotebookNode, folder: Path, timeout: int, workdir: Path) -> Stop | None:
    """Run every cell of ``notebook`` in place, in ``folder``, going on past errors.

    Saved outputs are cleared first and no cell is skipped, so every output read later comes
    from this run. ``workdir`` is where the library takes relative paths from. Returns where
    and why the run stopped early (a cell over ``timeout`` seconds, a dead kernel), or None.
    """
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout, allow_errors=True,
                            skip_cells_with_tag="", resources={"metadata": {"path": str(folder)}},
                            kernel_manager_class=LocalKernelManager)
    try:
        client.execute(env={**os.environ, "SERESNET_WORKDIR": str(workdir)})
    except CellTimeoutError:
        reason = f"it ran longer than {timeout} s (--timeout)"
    except DeadKernelError:
        reason = "the kernel died (out of memory, or the code ended its process)"
    else:
        return None
    started = [i for i, cell in enumerate(notebook.cells) if cell.get("execution_count")] or [0]
    return Stop(started[-1], reason)


def check_notebook(path: Path, exercises: dict[str, Exercise], executed_path: Path, timeout: int = 600,
                   parameters: dict | None = None) -> list[Grade]:
    """Execute a student's notebook (saving the executed copy) and grade it."""
    name = display(path)
    try:
        notebook = load_notebook_node(str(path))  # with the metadata papermill's parameters need
    except Exception as error:  # not JSON, not a notebook, unreadable
        return [Grade(name, "", "", CRASHED, f"cannot read it as a notebook: {error}".splitlines()[0])]
    if parameters and any("parameters" in tags(cell) for cell in notebook.cells):
        notebook = parameterize_notebook(notebook, parameters, kernel_name="python3", language="python")
    with tempfile.TemporaryDirectory(prefix="seresnet-check-") as workdir:
        data = project_workdir() / "data"
        if data.is_dir():  # datasets already downloaded are shared; runs/ is not
            (Path(workdir) / "data").symlink_to(data, target_is_directory=True)
        try:
            stop = execute_submission(notebook, Path(path).resolve().parent, timeout, Path(workdir))
        except Exception as error:  # the kernel could not start, or the notebook is malformed
            reason = f"could not run it: {type(error).__name__}: {error}".splitlines()[0]
            return [Grade(name, "", "", CRASHED, reason)]
    executed_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, executed_path)
    try:
        return grade(notebook, name, exercises, stop, display(executed_path))
    except Exception as error:  # contents no lesson has; say so, and go on with the others
        reason = f"could not grade it: {type(error).__name__}: {error}".splitlines()[0]
        return [Grade(name, "", "", CRASHED, reason, display(executed_path))]


def check_destinations(paths: Sequence[Path], out_dir: Path, csv_path: Path) -> None:
    """Raise ValueError, before any notebook runs, if the executed copies or the CSV cannot be
    written where asked, or would land among (or on) the notebooks being checked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file; give a folder for the executed copies")
    if csv_path.is_dir():
        raise ValueError(f"--csv {csv_path} is a folder; give a file name such as {csv_path / 'grades.csv'}")
    if csv_path.suffix == ".ipynb" or csv_path.resolve() in {Path(path).resolve() for path in paths}:
        raise ValueError(f"--csv {csv_path} would overwrite a notebook; give a .csv file name")
    for parent in csv_path.resolve().parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--csv {csv_path}: {display(parent)} is a file, not a folder")
    executed_copy_paths(paths, out_dir)


def executed_copy_paths(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """Where each notebook's executed copy goes: under ``out_dir``, by its path from here.

    Raises ValueError if a copy would land in a folder of the notebooks being checked (they
    would be graded next time) or on one of them.
    """
    targets, taken = [], set()
    folders = {Path(path).resolve().parent for path in paths}
    for path in paths:
        path = Path(path).resolve()
        try:
            relative = path.relative_to(Path.cwd())
        except ValueError:
            relative = Path(path.parent.name) / path.name
        target = (Path(out_dir) / relative).resolve()
        if target.parent in folders:
            raise ValueError(f"--out-dir {out_dir} would put executed copies among the notebooks being checked "
                             f"(in {display(target.parent)}); choose another folder")
        number = 2
        while target in taken:
            target = target.with_name(f"{path.stem}-{number}{path.suffix}")
            number += 1
        taken.add(target)
        targets.append(target)
    return targets


def check_notebooks(paths: Sequence[Path], lessons: Sequence[Path], out_dir: Path = Path("checked"),
                    timeout: int = 600, parameters: dict | None = None,
                    progress: Callable[[str], None] = print) -> list[Grade]:
    """Grade each notebook in turn; one that crashes is reported and the others are still graded.

    After Ctrl-C, the notebooks graded so far are returned, with a line for the one interrupted.
    """
    unique = list(dict.fromkeys(Path(path).resolve() for path in paths))  # a notebook named twice runs once
    targets = executed_copy_paths(unique, out_dir)
    exercises = lesson_exercises(lessons)
    outcomes = []
    for path, target in zip(unique, targets):
        progress(f"checking {display(path)} ...")
        try:
            outcomes += check_notebook(path, exercises, target, timeout, parameters)
        except KeyboardInterrupt:
            outcomes.append(Grade(display(path), "", "", CRASHED,
                                    "interrupted (Ctrl-C): this notebook and those after it were not graded"))
            break
    return outcomes


def grades_table(outcomes: Sequence[Grade], encoding: str | None = None) -> str:
    """The outcomes as an aligned text table, one line each; plain marks where ✓ and ✗ cannot be written."""
    marks = _MARKS
    try:
        "".join(_MARKS.values()).encode(encoding or sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        marks = _PLAIN_MARKS
    rows = [(o.notebook, f"{o.exercise} {o.title}".strip() or "(whole notebook)", f"{marks[o.result]} {o.result}",
             o.detail) for o in outcomes]
    header = ("notebook", "exercise", "result", "detail")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row[:3], widths)) + "  " + row[3]
                     for row in [header, *rows]).rstrip()


def write_grades_csv(outcomes: Sequence[Grade], path: Path) -> None:
    """The outcomes as CSV for a gradebook: notebook, exercise, title, result, detail, executed copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["notebook", "exercise", "title", "result", "detail", "executed"])
        writer.writerows([o.notebook, o.exercise, o.title, o.result, o.detail, o.executed] for o in outcomes)


def grades_summary(outcomes: Sequence[Grade]) -> str:
    exercises = [o for o in outcomes if o.exercise]
    counts = {result: sum(o.result == result for o in exercises) for result in (PASSED, FAILED, NOT_DONE)}
    crashed = len({o.notebook for o in outcomes if o.result == CRASHED})
    text = (f"{counts[PASSED]} of {len(exercises)} exercises passed, {counts[FAILED]} failed, "
            f"{counts[NOT_DONE]} not done")
    return text + (f"; {crashed} notebook(s) crashed" if crashed else "")
