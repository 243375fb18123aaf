"""The classroom's commands: ``seresnet run``, ``record``, ``student`` and ``check`` (also
``python -m seresnet_lib.classroom run|record|student|check``).

    seresnet run                        # every lesson into runs/, originals untouched
    seresnet record                     # every lesson in place, refreshing its saved outputs
    seresnet student                    # copies for students in student/: no solutions, no outputs
    seresnet check student/*.ipynb      # run students' copies, grade each exercise
    seresnet check class/ -p 05:train_size 256 --shared-run runs/class --jobs 2   # a class, fast
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..paths import display
from . import grading, options, sandbox
from .copies import write_student_copies
from .gradebook import read_grades_csv
from .series import lessons, record_lessons, run_series

_LESSONS = "every notebooks/NN_*.ipynb"


def run(argv: list[str], prog: str) -> int:
    """Execute lessons into a folder, leaving them as they are."""
    parser = argparse.ArgumentParser(prog=prog, description=run.__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path, help=f"default: {_LESSONS}")
    parser.add_argument("--out-dir", type=Path, default=Path("runs"), help="where to write (default: runs)")
    args = parser.parse_args(argv)
    _check_exist(parser, args.notebooks)
    paths = run_series(args.out_dir, args.notebooks)
    print(f"\n{len(paths)} executed notebooks are in {args.out_dir}/: open them with `make lab` or jupyter lab.")
    return 0


def record(argv: list[str], prog: str) -> int:
    """Execute lessons in place, so that their saved outputs are this run's."""
    parser = argparse.ArgumentParser(prog=prog, description=record.__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path, help=f"default: {_LESSONS}")
    args = parser.parse_args(argv)
    _check_exist(parser, args.notebooks)
    record_lessons(args.notebooks)
    return 0


def student(argv: list[str], prog: str) -> int:
    """Write student copies of the lessons: no solutions, no outputs."""
    parser = argparse.ArgumentParser(prog=prog, description=student.__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path, help=f"default: {_LESSONS}")
    parser.add_argument("--out-dir", type=Path, default=Path("student"), help="where to write (default: student)")
    parser.add_argument("--force", action="store_true", help="overwrite copies that differ (students' work is lost)")
    args = parser.parse_args(argv)
    _check_exist(parser, args.notebooks)
    try:
        paths = write_student_copies(args.notebooks or lessons(), args.out_dir, force=args.force)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(paths)} student copies in {display(args.out_dir)}/: no solutions, no outputs.")
    return 0


def check(argv: list[str], prog: str) -> int:
    """Run students' notebooks and grade each exercise by its self-check.

    Everything is checked before any notebook runs; the table is shown before it is saved.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description="Run each notebook top to bottom, from a copy in a scratch folder of its own, and "
                               "print one line per exercise: passed, failed, or not done. Exits 1 unless every "
                               "exercise passed.")
    parser.add_argument("notebooks", nargs="+", type=Path, help="students' notebooks, or folders of them")
    parser.add_argument("--out-dir", type=Path, default=Path("checked"),
                        help="where the executed copies go (default: checked)")
    parser.add_argument("--csv", type=Path, help="the table for a gradebook (default: OUT_DIR/grades.csv), "
                                                 "written as each notebook is graded; the rows of notebooks not "
                                                 "graded now are kept")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows the CSV has, and grade only the notebooks it has none for")
    parser.add_argument("--only-changed", action="store_true",
                        help="grade only the notebooks whose content changed since they were graded (or that "
                             "were never graded); keep the others' rows")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its own kernel "
                                                            "(default: 1)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default: 600)")
    parser.add_argument("--max-output", type=float, default=5.0, metavar="MB",
                        help="millions of characters of output a cell may keep; the rest is cut, and the cut "
                             "marked (default: 5)")
    parser.add_argument("--user", type=lambda text: [name for name in text.split(",") if name],
                        help="as root: the account(s) kernels run as, one per job (default: nobody; root: "
                             "the grader's own). Others' kernels run as themselves")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("[LESSON:]NAME", "VALUE"),
                        help="a parameter for the notebooks whose parameters cell has it (others skip it, with a "
                             "note): -p train_size 256 for every lesson, -p 05:train_size 256 for lesson 05 only")
    parser.add_argument("--shared-run", type=Path, metavar="DIR",
                        help="the work every student's lessons 06 and 07 do alike, done once for the class: lesson "
                             "07 looks inside the run in DIR/07_inside_se (read-only) instead of training its own, "
                             "and lesson 06's sweep finds its complete runs in a copy of DIR/06_experiments; what "
                             "is missing there, lessons 06 and 07 as handed out make first")
    args = parser.parse_args(argv)
    _check_exist(parser, args.notebooks)
    notebooks = _notebooks_in(args.notebooks)
    if not notebooks:
        parser.error(f"no notebooks in {', '.join(map(str, args.notebooks))}")
    for name, value, least in (("timeout", args.timeout, 1), ("jobs", args.jobs, 1), ("max-output", args.max_output,
                                                                                        0.001)):
        if value < least:
            parser.error(f"--{name} must be at least {least}, got {value}")
    csv_path = args.csv or args.out_dir / "grades.csv"
    try:
        parameters = [options.Parameter.parse(name, value) for name, value in args.parameter]
        options.check_parameters(parameters, args.shared_run)
        options.check_lessons_have(parameters, _handed_out())
        grading.check_destinations(notebooks, args.out_dir, csv_path)
        if csv_path.exists():  # its rows are kept: it must be a grades table
            read_grades_csv(csv_path)
        users = sandbox.kernel_users(args.user)
        for user in dict.fromkeys(users):
            sandbox.check_can_start_kernel(user)
            if args.shared_run is not None:
                sandbox.check_can_read(args.shared_run, user, "--shared-run")
        if args.shared_run is not None:
            options.check_shared_folder(args.shared_run, _handed_out(), parameters)
    except ValueError as error:
        parser.error(str(error))
    if args.jobs > len(set(users)) and users[0] is not None:
        _say(f"note: {args.jobs} kernels at once as {', '.join(sorted({u.name for u in users}))}: kernels of one "
             f"account can reach each other while both run; give --user one account per job to keep them apart")
    handed_out = _handed_out()  # to tell an exercise left alone, in copies made before fingerprints
    limits = sandbox.Limits(args.timeout, round(args.max_output * 1_000_000))
    try:
        grades = grading.check_notebooks(notebooks, handed_out, args.out_dir, limits, parameters, jobs=args.jobs,
                                         users=users, gradebook=csv_path, resume=args.resume,
                                         only_changed=args.only_changed, shared_run=args.shared_run, progress=_say)
    except (RuntimeError, ValueError) as error:  # two submissions of one student, or no shared work: none graded
        print(f"error: {error}", file=sys.stderr)
        return 2
    _say("\n" + grading.grades_table(grades) + "\n")
    _say(f"{grading.grades_summary(grades)}. Tables: {display(csv_path)} (a row per exercise), "
         f"{display(csv_path.with_name(grading.GRADEBOOK))} (a row per student); feedback pages: "
         f"{display(args.out_dir / 'feedback')}/; executed copies: {display(args.out_dir)}/")
    return 0 if grades and all(grade.result == grading.PASSED for grade in grades) else 1


def _handed_out() -> list[Path]:
    """The lessons as handed out, or none where they cannot be found (an installed copy without them)."""
    try:
        return lessons()
    except FileNotFoundError:
        return []


def _check_exist(parser: argparse.ArgumentParser, notebooks: list[Path]) -> None:
    missing = [str(n) for n in notebooks if not n.exists()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")


def _notebooks_in(paths: list[Path]) -> list[Path]:
    """The notebooks named, with each folder standing for the .ipynb files in it."""
    found = []
    for path in paths:
        found += sorted(p for p in path.glob("*.ipynb") if not p.name.startswith(".")) if path.is_dir() else [path]
    return found


def _say(text: str) -> None:
    """Print ``text``, with what the terminal's encoding cannot show replaced, never failing on it."""
    encoding = sys.stdout.encoding or "utf-8"
    print(text.encode(encoding, errors="replace").decode(encoding), flush=True)
