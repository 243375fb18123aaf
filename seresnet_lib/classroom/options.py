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

import ast
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from ..parameters import parse_value
from ..paths import display
from .copies import tags

# What --shared-run computes once for the class, in a folder each (the lesson's out_dir when it runs):
SHARED_RUN_LESSON, SHARED_RUN = "07", "07_inside_se"  # lesson 07's run, which every lesson 07 loads (its `run`)
SHARED_SWEEP_LESSON, SHARED_SWEEP = "06", "06_experiments"  # lesson 06's sweep, its complete runs copied to each
SWEEP_RUNS = "runs/06_experiments"  # where lesson 06's sweep writes by default, so where the copies go
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
    names = set()
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign) else []
            names |= {name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)}
    return names


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


def check_shared_folder(folder: Path) -> None:
    """ValueError, before anything runs, if ``folder`` is a file, or lacks what it shares and cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--shared-run {display(folder)} is a file; give the folder that holds (or will hold) the "
                         f"class's shared run and sweep")
    if shared_run_ready(folder / SHARED_RUN) and sweep_ready(folder / SHARED_SWEEP):
        return
    existing = next(parent for parent in [folder, *folder.absolute().parents] if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--shared-run {display(folder)} lacks lesson 07's run or lesson 06's sweep, and "
                         f"{display(existing)} cannot be written to make them there")


def make_read_only(folder: Path) -> None:
    """Take write permission away from everyone on ``folder`` and everything in it (runs are read, never
    written, by the notebooks that share them)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
