"""What a teacher grades with besides the notebooks: parameters for one lesson or for all, and the
work every student's lessons 06 and 07 would do alike, done once.

    -p train_size 256        every notebook whose parameters cell has train_size
    -p 05:train_size 256     lesson 05 only
    --shared-run DIR         lessons 06 and 07 start from what DIR holds, computed once for the class:
                             DIR/07_inside_se, the run every lesson 07 loads (read-only) instead of
                             training its own; DIR/06_experiments, lesson 06's sweep, whose complete
                             runs each lesson 06 finds in its runs/ and skips

A notebook is given only the parameters its ``parameters`` cell assigns; the others are skipped
for it, with a note, rather than stopping it with an unknown-parameter error.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..parameters import parse_value, top_level_assignments
from ..paths import display
from .copies import tags

# What --shared-run computes once for the class, in a folder each (the lesson's out_dir when it runs):
SHARED_RUN_LESSON, SHARED_RUN = "07", "07_inside_se"  # lesson 07's run, which every lesson 07 loads (its `run`)
SHARED_SWEEP_LESSON, SHARED_SWEEP = "06", "06_experiments"  # lesson 06's sweep, its complete runs copied to each
SWEEP_RUNS = "runs/06_experiments"  # where lesson 06's sweep writes by default, so where the copies go
_MADE_WITH = "made_with.json"  # in --shared-run's folder: the -p values each lesson's shared work was made with
_LESSON = re.compile(r"\d\d")


@dataclass(frozen=True)
class Parameter:
    """``-p [LESSON:]NAME VALUE``: a value for a notebook's parameters cell, in one lesson or (None) all."""

    lesson: str | None
    name: str
    value: object

    @classmethod
    def parse(cls, name: str, value: str) -> Parameter:
        """From the command line's two words; ValueError saying what is allowed."""
        lesson, _, bare = name.rpartition(":")
        if lesson and not _LESSON.fullmatch(lesson):
            raise ValueError(f"-p {name}: a lesson is given as two digits before the colon, as in "
                             f"-p 05:{bare or 'train_size'} {value}")
        if not bare.isidentifier():
            raise ValueError(f"-p {name}: {bare!r} is not a parameter name (a Python variable name, as in the "
                             f"notebook's parameters cell)")
        return cls(lesson or None, bare, parse_value(value))

    def __str__(self) -> str:
        return f"{self.lesson + ':' if self.lesson else ''}{self.name}"


def parameters_cell_names(notebook: NotebookNode) -> set[str] | None:
    """The names a notebook's ``parameters`` cells assign; None if it has no such cell."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and "parameters" in tags(cell)]
    if not cells:
        return None
    return set().union(*(top_level_assignments(cell.source) for cell in cells))


def parameters_for(notebook: NotebookNode, lesson: str | None,
                   given: Sequence[Parameter]) -> tuple[dict[str, object], list[str]]:
    """The values a notebook gets, and a note for each parameter skipped because it has no such
    parameter. A value for its lesson wins over one for all lessons; a later one over an earlier."""
    names = parameters_cell_names(notebook)
    values, skipped = {}, []
    for parameter in sorted(given, key=lambda p: p.lesson is not None):  # stable: order kept within each kind
        if parameter.lesson not in (None, lesson):
            continue
        if names is not None and parameter.name in names:
            values[parameter.name] = parameter.value
        elif str(parameter) not in skipped:
            skipped.append(str(parameter))
    where = "has no parameters cell" if names is None else "has no such parameter in its parameters cell"
    return values, [f"-p {name} skipped: the notebook {where}" for name in skipped]


def check_lessons_have(given: Sequence[Parameter], lessons: Sequence[Path]) -> None:
    """ValueError, before anything runs, for a -p that no lesson as handed out could take: a lesson that
    does not exist, or a name its parameters cell (or every lesson's, for a bare -p) lacks."""
    if not lessons:
        return
    names = {lesson.name[:2]: parameters_cell_names(nbformat.read(lesson, as_version=4)) or set()
             for lesson in lessons}
    for parameter in given:
        if parameter.lesson is not None and parameter.lesson not in names:
            raise ValueError(f"-p {parameter}: there is no lesson {parameter.lesson}; the lessons are "
                             f"{', '.join(sorted(names))}")
        having = [lesson for lesson, cell in names.items() if parameter.name in cell]
        if parameter.lesson is not None and parameter.lesson not in having:
            raise ValueError(f"-p {parameter}: lesson {parameter.lesson}'s parameters are "
                             f"{', '.join(sorted(names[parameter.lesson])) or 'none'}")
        if not having:
            raise ValueError(f"-p {parameter}: no lesson has a parameter {parameter.name}")


def check_parameters(given: Sequence[Parameter], shared_run: Path | None) -> None:
    """ValueError, before anything runs, if --shared-run and a -p both set lesson 07's run."""
    clash = [str(p) for p in given if p.name == "run" and p.lesson in (None, SHARED_RUN_LESSON)]
    if shared_run is not None and clash:
        raise ValueError(f"--shared-run sets lesson {SHARED_RUN_LESSON}'s parameter run; -p {clash[0]} sets it "
                         f"too: give one of them")


def sweep_ready(folder: Path) -> bool:
    """Whether ``folder`` holds a sweep that ran to its end (it wrote its results table)."""
    return (Path(folder) / "results.csv").is_file()


def shared_run_ready(folder: Path) -> bool:
    """Whether ``folder`` holds a complete run with its checkpoint, for lesson 07 to load."""
    for run in Path(folder).glob("run-*"):
        try:
            complete = json.loads((run / "metrics.json").read_text()).get("status") == "complete"
        except (OSError, ValueError, AttributeError):
            continue
        if complete and (run / "checkpoint.pt").is_file():
            return True
    return False


def shared_values(lesson: Path, given: Sequence[Parameter]) -> dict[str, object]:
    """The -p values the handed-out ``lesson`` runs with when it makes the shared work (where it writes aside)."""
    notebook = nbformat.read(lesson, as_version=4)
    values, _ = parameters_for(notebook, lesson.name[:2], given)
    return {name: value for name, value in values.items() if name not in ("out_dir", "run")}


def _read_made_with(folder: Path) -> dict[str, dict]:
    try:
        return json.loads((folder / _MADE_WITH).read_text())
    except (OSError, ValueError):
        return {}


def record_made_with(folder: Path, lesson: str, values: dict) -> None:
    made = {**_read_made_with(folder), lesson: values}
    (folder / _MADE_WITH).write_text(json.dumps(made, indent=2, default=str))


def check_shared_folder(folder: Path, lessons: Sequence[Path] = (), given: Sequence[Parameter] = ()) -> None:
    """ValueError, before anything runs, if ``folder`` is a file, lacks what it shares and cannot be written, or
    holds work made with other -p values than ``given`` would make it with."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--shared-run {display(folder)} is a file; give the folder that holds (or will hold) the "
                         f"class's shared run and sweep")
    made = _read_made_with(folder)
    for lesson in lessons:
        number = lesson.name[:2]
        values = shared_values(lesson, given)
        if number in made and made[number] != json.loads(json.dumps(values, default=str)):
            raise ValueError(f"--shared-run {display(folder)}: lesson {number}'s shared work there was made with -p "
                             f"{made[number] or 'nothing'}, and this call gives {values or 'none'}; give the same -p, "
                             f"or another --shared-run folder")
    if shared_run_ready(folder / SHARED_RUN) and sweep_ready(folder / SHARED_SWEEP):
        return
    existing = next(parent for parent in [folder, *folder.absolute().parents] if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--shared-run {display(folder)} lacks lesson 07's run or lesson 06's sweep, and "
                         f"{display(existing)} cannot be written to make them there")


def make_read_only(folder: Path) -> None:
    """Make ``folder`` and everything in it readable by everyone (the kernels' account included) and writable
    by no one (runs are read, never written, by the notebooks that share them)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
            if path.is_dir():
                mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
