"""What grading leaves for a teacher: the grades CSV, one row per exercise of each submission, and
the gradebook, one row per student.

A class is often graded in several calls (as submissions come in, or lesson by lesson). Rows are
keyed by (student, notebook, exercise): a call replaces the rows of the submissions it grades and
keeps every other row, so ``grades.csv`` and ``gradebook.csv`` always hold the whole class. A
student is the submission's folder (``alice/05_train_cifar10.ipynb``: alice) or, for a notebook
not named like a lesson, its file stem (``alice.ipynb``: alice).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..paths import display

PASSED, FAILED, NOT_DONE, CRASHED = "passed", "failed", "not done", "crashed"
_LESSON_FILE = re.compile(r"(\d\d)_.*\.ipynb")
_EXERCISE_ID = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class Grade:
    """One line of the grading table: an exercise of a notebook, or a notebook that crashed."""

    notebook: str  # the submission, as given
    exercise: str  # "02.1", or "" for the notebook as a whole
    title: str
    result: str  # PASSED, FAILED, NOT_DONE or CRASHED
    detail: str
    executed: str = ""  # where the executed copy was saved
    student: str = ""
    digest: str = ""  # of the submission's content when graded (--only-changed)

    @property
    def key(self) -> tuple[str, str]:
        """The submission this row belongs to: (student, notebook file name)."""
        return self.student, Path(self.notebook).name


def student_of(path: Path) -> str:
    """Whose submission ``path`` is: its folder's name for a notebook named like a lesson, else its stem."""
    path = Path(path).resolve()
    return path.parent.name if _LESSON_FILE.fullmatch(path.name) else path.stem


def _lesson_of_file(name: str) -> str | None:
    """The lesson number ("05") in a notebook's file name, if it is named like a lesson."""
    match = _LESSON_FILE.fullmatch(Path(name).name)
    return match.group(1) if match else None


def digest(path: Path) -> str:
    """A fingerprint of a submission's content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class GradesFile:
    """The grades CSV, written as grades are made: rows are appended and flushed as each notebook is
    graded, so they survive the grader; at the end it is rewritten whole, in the notebooks' order."""

    def __init__(self, path: Path | None, kept: Sequence[Grade]):
        self.path = path
        self.rewrite(kept)  # at once, as a whole: a grader killed now leaves the rows it found

    def add(self, grades: Sequence[Grade]) -> None:
        if self.path is not None:
            with open(self.path, "a", newline="", encoding="utf-8") as file:
                csv.writer(file).writerows(_row(grade) for grade in grades)
                file.flush()
                os.fsync(file.fileno())

    def rewrite(self, grades: Sequence[Grade]) -> None:
        if self.path is not None:
            write_whole(self.path, lambda temporary: write_grades_csv(grades, temporary))


def write_whole(path: Path, write) -> None:
    """Write ``path`` whole or not at all: into a temporary file beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


_COLUMNS = ["student", "notebook", "exercise", "title", "result", "detail", "executed", "digest"]
_BEFORE_STUDENTS = ["notebook", "exercise", "title", "result", "detail", "executed"]  # CSVs of earlier versions


def _row(grade: Grade) -> list[str]:
    return [grade.student, grade.notebook, grade.exercise, grade.title, grade.result, grade.detail, grade.executed,
            grade.digest]


def read_grades_csv(path: Path) -> list[Grade]:
    """The rows of a grades CSV; ValueError naming the file if it is not one. A CSV written before
    the student column gets each row's student from its notebook's path."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"cannot read the grades in {display(path)}: {error}") from None
    columns = rows[0] if rows else []
    if columns not in (_COLUMNS, _BEFORE_STUDENTS) or any(len(row) != len(columns) for row in rows[1:]):
        raise ValueError(f"{display(path)} is not a grades table (columns {', '.join(_COLUMNS)}), and its rows "
                         f"would be kept: give --csv another file, or move it away")
    if columns == _COLUMNS:
        return [Grade(notebook, exercise, title, result, detail, executed, student, digest_)
                for student, notebook, exercise, title, result, detail, executed, digest_ in rows[1:]]
    return [Grade(*row, student=student_of(Path(row[0]))) for row in rows[1:]]


def write_grades_csv(outcomes: Sequence[Grade], path: Path) -> None:
    """The outcomes as CSV: student, notebook, exercise, title, result, detail, executed copy, digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(_COLUMNS)
        writer.writerows(_row(o) for o in outcomes)


def _exercise_order(exercise_id: str) -> tuple[int, int]:
    lesson, number = _EXERCISE_ID.fullmatch(exercise_id).groups()
    return int(lesson), int(number)


def gradebook(grades: Iterable[Grade], exercises_of_lessons: dict[str, list[str]]) -> tuple[list[str], list[list]]:
    """Students as rows, exercises as columns: (header, rows).

    An exercise passed counts 1; failed, not done, missing or in a notebook that crashed, 0; in a
    lesson the student has not handed in (or not had graded), it is left empty. ``total`` adds up
    the student's passes, ``out_of`` the exercises graded. ``exercises_of_lessons`` gives each
    lesson's exercise ids ({"05": ["05.1", "05.2"]}), so that a notebook that never ran still counts
    its exercises.
    """
    grades = list(grades)
    ids = {g.exercise for g in grades if _EXERCISE_ID.fullmatch(g.exercise)}
    ids |= {i for listed in exercises_of_lessons.values() for i in listed}
    columns = sorted(ids, key=_exercise_order)
    rows = []
    for student in sorted({g.student for g in grades}):
        own = [g for g in grades if g.student == student]
        lessons = {_lesson_of_file(g.notebook) for g in own} | {g.exercise.split(".")[0] for g in own if g.exercise}
        graded = {i for i in columns if i.split(".")[0] in lessons}
        passed = {g.exercise for g in own if g.result == PASSED}
        marks = [(1 if i in passed else 0) if i in graded else "" for i in columns]
        rows.append([_as_text(student), *marks, len(passed & graded), len(graded)])
    return ["student", *columns, "total", "out_of"], rows


def _as_text(name: str) -> str:
    """A name a spreadsheet shows as written, never runs as a formula (=, +, -, @ first)."""
    return f"'{name}" if name[:1] in ("=", "+", "-", "@") else name


def write_gradebook(grades: Iterable[Grade], exercises_of_lessons: dict[str, list[str]], path: Path) -> None:
    """``gradebook`` as a CSV file, written whole or not at all."""
    header, rows = gradebook(grades, exercises_of_lessons)

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows([header, *rows])

    write_whole(path, write)
