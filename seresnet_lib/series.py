"""Run the lessons, and hand them out to a class.

    python -m seresnet_lib.series run      # every lesson into runs/, originals untouched
    python -m seresnet_lib.series record   # every lesson in place, refreshing its saved outputs
    python -m seresnet_lib.series student  # copies for students in student/: no solutions, no outputs
    python -m seresnet_lib.series check student/*.ipynb   # run students' copies, grade each exercise
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
import papermill

from . import classroom, grading
from .paths import NOTEBOOKS, display


def lessons(directory: Path = NOTEBOOKS) -> list[Path]:
    """The numbered lesson notebooks, in order: 01_*.ipynb, 02_*.ipynb, ..."""
    found = sorted(Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no lesson notebooks (NN_*.ipynb) in {directory}")
    return found


def execute(source: Path, target: Path, parameters: dict | None = None) -> Path:
    """Run ``source`` top to bottom in its own folder, writing the executed copy to ``target``."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        source, target, parameters=parameters or {}, cwd=source.parent, kernel_name="python3", progress_bar=False
    )
    return target


def strip_run_metadata(path: Path) -> None:
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
        done.append(execute(notebook, Path(out_dir) / Path(notebook).name))
        print(f"executed {display(notebook)} -> {display(done[-1])}", flush=True)
    return done


def record(notebooks: list[Path] | None = None) -> None:
    """Re-execute each lesson in place: its saved outputs become those of this run.

    The run goes to a temporary copy first; a lesson that fails is left as it was.
    """
    for notebook in notebooks or lessons():
        notebook = Path(notebook)
        executed = notebook.with_name(f".{notebook.stem}.recording.ipynb")
        try:
            execute(notebook, executed)
            strip_run_metadata(executed)
            os.replace(executed, notebook)
        finally:
            executed.unlink(missing_ok=True)
        print(f"recorded {display(notebook)}", flush=True)


def notebook_value(text: str):
    """A -p value as papermill's command line reads it: int, float, True/False/None, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def notebooks_in(paths: list[Path]) -> list[Path]:
    """The notebooks named, with each folder standing for the .ipynb files in it."""
    found = []
    for path in paths:
        found += sorted(p for p in path.glob("*.ipynb") if not p.name.startswith(".")) if path.is_dir() else [path]
    return found


def say(text: str) -> None:
    """Print ``text``, with what the terminal's encoding cannot show replaced, never failing on it."""
    encoding = sys.stdout.encoding or "utf-8"
    print(text.encode(encoding, errors="replace").decode(encoding), flush=True)


def check_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``check``: everything checked before any notebook runs; the table is shown before it is saved."""
    notebooks = notebooks_in(args.notebooks)
    if not notebooks:
        parser.error(f"no notebooks in {', '.join(map(str, args.notebooks))}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be a number of seconds > 0, got {args.timeout}")
    csv_path = args.csv or args.out_dir / "grades.csv"
    try:
        grading.check_destinations(notebooks, args.out_dir, csv_path)
    except ValueError as error:
        parser.error(str(error))
    parameters = {name: notebook_value(value) for name, value in args.parameter}
    try:
        handed_out = lessons()  # to tell an exercise left alone, in copies made before fingerprints
    except FileNotFoundError:
        handed_out = []
    outcomes = grading.check_notebooks(notebooks, handed_out, args.out_dir, args.timeout, parameters, progress=say)
    grading.write_csv(outcomes, csv_path)  # first: whatever the terminal can show, the grades are kept
    say("\n" + grading.table(outcomes) + "\n")
    say(f"{grading.summary(outcomes)}. Table: {display(csv_path)}; executed copies: {display(args.out_dir)}/")
    return 0 if outcomes and all(o.result == grading.PASSED for o in outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seresnet_lib.series", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,record,student,check}")
    default_lessons = "every notebooks/NN_*.ipynb"
    run = commands.add_parser("run", help="execute lessons into a folder, leaving them as they are")
    run.add_argument("notebooks", nargs="*", type=Path, help=f"default: {default_lessons}")
    run.add_argument("--out-dir", type=Path, default=Path("runs"), help="where to write (default: runs)")
    rec = commands.add_parser("record", help="execute lessons in place, so their saved outputs are this run's")
    rec.add_argument("notebooks", nargs="*", type=Path, help=f"default: {default_lessons}")
    student = commands.add_parser("student", help="write student copies: no solutions, no outputs")
    student.add_argument("notebooks", nargs="*", type=Path, help=f"default: {default_lessons}")
    student.add_argument("--out-dir", type=Path, default=Path("student"), help="where to write (default: student)")
    student.add_argument("--force", action="store_true", help="overwrite copies that differ (students' work is lost)")
    grader = commands.add_parser(
        "check", help="run students' notebooks and grade each exercise by its self-check",
        description="Run each notebook top to bottom and print one line per exercise: passed, failed, or not done. "
                    "Exits 1 unless every exercise passed.")
    grader.add_argument("notebooks", nargs="+", type=Path, help="students' notebooks, or folders of them")
    grader.add_argument("--out-dir", type=Path, default=Path("checked"),
                       help="where the executed copies go (default: checked)")
    grader.add_argument("--csv", type=Path, help="the table for a gradebook (default: OUT_DIR/grades.csv)")
    grader.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default: 600)")
    grader.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a parameter for notebooks that have a parameters cell, e.g. -p train_size 256")
    args = parser.parse_args(argv)
    missing = [str(n) for n in args.notebooks if not n.exists()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.command == "run":
        paths = run_series(args.out_dir, args.notebooks)
        print(f"\n{len(paths)} executed notebooks are in {args.out_dir}/: open them with `make lab` or jupyter lab.")
    elif args.command == "record":
        record(args.notebooks)
    elif args.command == "student":
        try:
            paths = classroom.write_student_copies(args.notebooks or lessons(), args.out_dir, force=args.force)
        except (FileExistsError, FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{len(paths)} student copies in {display(args.out_dir)}/: no solutions, no outputs.")
    else:
        return check_command(parser, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
