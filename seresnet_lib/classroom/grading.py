"""Grading the notebooks students hand back, exercise by exercise, from their self-checks.

Each notebook runs top to bottom in a fresh kernel, from a copy in a scratch folder of its
own (``sandbox``), with its saved outputs cleared first, and goes on past errors. A
self-check's result is recorded in the notebook as data (``checks.CHECK_MIME``) next to its
text, so grading reads what the run showed. Relative paths in the notebook (``runs/``,
``data/``) point into that scratch folder, deleted afterwards.

    seresnet check alice/ bob/01_stem.ipynb --jobs 2   # table, checked/grades.csv

Each notebook's rows reach the CSV as soon as it is graded; ``--resume`` grades only the
notebooks it has no rows for. A determined student can display a forged result: treat the
grade as feedback, not as an exam.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from ..paths import display
from ..processes import adopting_orphans
from .checks import CHECK_MIME
from .copies import EXERCISE, exercise_cells, fingerprint
from .feedback import feedback_path, write_feedback
from .gradebook import (CRASHED, FAILED, NOT_DONE, PASSED, Grade, GradesFile, digest, read_grades_csv, student_of,
                        write_gradebook)
from .options import (SHARED_RUN, SHARED_RUN_LESSON, SHARED_SWEEP, SHARED_SWEEP_LESSON, SWEEP_RUNS, Parameter,
                      make_read_only, parameters_for, record_made_with, shared_run_ready, shared_values, sweep_ready)
from .sandbox import OUTPUT_CUT, KernelUser, Limits, Scratch, remove_stale_scratch, run_in_scratch

_MARKS = {PASSED: "✓", FAILED: "✗", NOT_DONE: "·", CRASHED: "✗"}
_PLAIN_MARKS = {PASSED: "+", FAILED: "x", NOT_DONE: ".", CRASHED: "x"}  # for terminals without ✓ and ✗
GRADEBOOK = "gradebook.csv"  # beside the grades CSV: a row per student
_NO_RESULT = "no self-check result: keep the check call as the exercise cell's last line, not inside print()"


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


def _lesson_of_submission(path: Path) -> str | None:
    """The lesson a submission belongs to, None if it cannot be read."""
    try:
        return _lesson_of(nbformat.read(path, as_version=4), path.name)
    except Exception:  # not a notebook: it is reported when graded
        return None


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
    return _with_output_cuts(outcomes, notebook, spans)


def _with_output_cuts(outcomes: list[Grade], notebook: NotebookNode, spans: dict[str, list[_Span]]) -> list[Grade]:
    """Each outcome's detail, saying which of its cells had output left out (--max-output); a cell
    outside every exercise is told on the first line."""
    cut = {i: cell.metadata[OUTPUT_CUT] for i, cell in enumerate(notebook.cells) if OUTPUT_CUT in cell.metadata}
    if not cut:
        return outcomes
    owner = {i: exercise_id for exercise_id, its_spans in spans.items() for span in its_spans
             for i in range(span.start, span.end) if i in cut}
    noted = []
    for outcome in outcomes:
        cells = [i for i in cut if (owner[i] == outcome.exercise if i in owner else outcome is outcomes[0])]
        note = "; ".join(f"output of cell {i + 1} cut ({cut[i]:,} characters over --max-output)" for i in cells)
        noted.append(replace(outcome, detail=f"{outcome.detail} [{note}]".strip()) if note else outcome)
    return noted


async def _check_notebook(path: Path, exercises: dict[str, Exercise], executed_path: Path, limits: Limits,
                         parameters: Sequence[Parameter], user: KernelUser | None, end_strays,
                         note: Callable[[str, str], None], preload: dict[str, dict[str, Path]]) -> list[Grade]:
    """Run a copy of a student's notebook in a scratch folder of its own, save the executed copy, grade it.
    ``preload``: by lesson, folders copied into the scratch folder first ({"06": {"runs/x": Path}})."""
    name, content = display(path), ""
    try:
        content = digest(path)
        grades = await _run_and_grade(path, name, exercises, executed_path, limits, parameters, user, end_strays,
                                      note, preload)
    except Exception as error:  # contents no lesson has; say so, and go on with the others
        reason = f"could not grade it: {type(error).__name__}: {error}".splitlines()[0]
        grades = [Grade(name, "", "", CRASHED, reason, display(executed_path) if executed_path.exists() else "")]
    return [replace(grade, student=student_of(path), digest=content) for grade in grades]


async def _run_and_grade(path: Path, name: str, exercises: dict[str, Exercise], executed_path: Path,
                         limits: Limits, parameters: Sequence[Parameter], user: KernelUser | None, end_strays,
                         note: Callable[[str, str], None], preload: dict[str, dict[str, Path]]) -> list[Grade]:
    try:
        notebook = load_notebook_node(str(path))  # with the metadata papermill's parameters need
    except Exception as error:  # not JSON, not a notebook, unreadable
        return [Grade(name, "", "", CRASHED, f"cannot read it as a notebook: {error}".splitlines()[0])]
    lesson = _lesson_of(notebook, name)
    values, skipped = parameters_for(notebook, lesson, parameters)
    for text in skipped:
        note(path.name, text)
    if values:
        notebook = parameterize_notebook(notebook, values, kernel_name="python3", language="python")
    stopped = await _execute(path, notebook, user, limits, end_strays, preload.get(lesson, {}))
    if isinstance(stopped, str):
        return [Grade(name, "", "", CRASHED, stopped)]
    executed_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, executed_path)
    return grade(notebook, name, exercises, Stop(*stopped) if stopped else None, display(executed_path))


async def _execute(path: Path, notebook: NotebookNode, user: KernelUser | None, limits: Limits, end_strays,
                   preload: dict[str, Path] | None = None) -> tuple[int, str] | None | str:
    """Run ``notebook`` (read from ``path``) in a scratch folder, with copies of the ``preload`` folders at
    their relative paths there: where it stopped early (None: it ran to its end), or why it could not run."""
    with Scratch(path, user, preload) as scratch:
        shutil.copyfile(path, scratch.notebook)
        scratch.give_to_user(scratch.notebook)
        try:
            return await run_in_scratch(notebook, scratch, limits, end_strays)
        except Exception as error:  # the kernel could not start, or the notebook is malformed
            return f"could not run it: {type(error).__name__}: {error}".splitlines()[0]


async def _make_shared(shared: Path, lessons_needed: set[str], lessons: Sequence[Path], given: Sequence[Parameter],
                       out_dir: Path, limits: Limits, end_strays, progress: Callable[[str], None]) -> str | None:
    """Run lessons 06 and 07 as handed out, once, with their out_dir in ``shared``: lesson 06's sweep and
    lesson 07's own run, each then made read-only. Only the lessons needed and not done before; why one
    failed, or None."""
    for lesson, folder, ready in ((SHARED_SWEEP_LESSON, shared / SHARED_SWEEP, sweep_ready),
                                  (SHARED_RUN_LESSON, shared / SHARED_RUN, shared_run_ready)):
        if lesson not in lessons_needed or ready(folder):
            continue
        handed_out = next((path for path in lessons if path.name.startswith(f"{lesson}_")), None)
        if handed_out is None:
            return f"--shared-run: lesson {lesson} is not among the lessons, so what it shares cannot be made"
        progress(f"running lesson {lesson} as handed out into {display(folder)}, once: every lesson {lesson} "
                 f"starts from it ...")
        values = shared_values(handed_out, given)  # as the students' copies get them
        notebook = parameterize_notebook(load_notebook_node(str(handed_out)),
                                         {**values, "out_dir": str(folder.resolve())}, kernel_name="python3",
                                         language="python")
        stopped = await _execute(handed_out, notebook, None, limits, end_strays)
        executed = out_dir / "shared-run" / handed_out.name
        if not isinstance(stopped, str):
            executed.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, executed)
        if not ready(folder):
            why = stopped if isinstance(stopped, str) else f"see {display(executed)}"
            return f"--shared-run: lesson {lesson} did not complete its work in {display(folder)} ({why})"
        record_made_with(shared, lesson, values)
        make_read_only(folder)
    return None


def check_destinations(paths: Sequence[Path], out_dir: Path, csv_path: Path) -> None:
    """Raise ValueError, before any notebook runs, if the executed copies or the CSV cannot be
    written where asked, or would land among (or on) the notebooks being checked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file; give a folder for the executed copies")
    if csv_path.is_dir():
        raise ValueError(f"--csv {csv_path} is a folder; give a file name such as {csv_path / 'grades.csv'}")
    if csv_path.name == GRADEBOOK:
        raise ValueError(f"--csv {csv_path}: {GRADEBOOK} is the name of the table written beside it, a row per "
                         f"student; give another name, such as grades.csv")
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
                    limits: Limits = Limits(), parameters: Sequence[Parameter] = (), *, jobs: int = 1,
                    users: Sequence[KernelUser | None] = (None,), gradebook: Path | None = None, resume: bool = False,
                    only_changed: bool = False, shared_run: Path | None = None,
                    progress: Callable[[str], None] = print) -> list[Grade]:
    """Grade each notebook, ``jobs`` at a time; one that crashes is reported and the others are still graded.

    Kernels running at once take turns with ``users`` (None: the grader's own account). Each
    notebook's rows go to the ``gradebook`` CSV as soon as it is graded, in place of the rows its
    student's notebook of that name had there; other rows are kept. Not run again: with ``resume``,
    notebooks that have rows there; with ``only_changed``, those whose content is what was graded.
    At the end, ``gradebook.csv`` beside the CSV gets a row per student, and ``out_dir/feedback`` a
    page per student graded. With ``shared_run``, lessons 06 and 07 start from the work it holds
    (``_make_shared`` does it first where it is missing). Ctrl-C (or SIGTERM) stops the notebooks
    being graded: they and those not started get a line saying so, and no row in the CSV, so that
    ``resume`` grades them. The outcomes come in the order of ``paths``.
    """
    unique = list(dict.fromkeys(Path(path).resolve() for path in paths))  # a notebook named twice runs once
    targets = executed_copy_paths(unique, out_dir)
    exercises = lesson_exercises(lessons)
    remove_stale_scratch()
    earlier = read_grades_csv(gradebook) if gradebook and gradebook.exists() else []
    keys = [(student_of(path), path.name) for path in unique]
    _check_students_apart(unique, keys)
    done = {i: kept for i, path in enumerate(unique)
            if (kept := _kept(path, [g for g in earlier if g.key == keys[i]], resume, only_changed, progress))}
    kept = set(done)
    others = [grade for grade in earlier if grade.key not in keys]
    book = GradesFile(gradebook, others + [grade for grades in done.values() for grade in grades])
    preload, given = {}, list(parameters)
    if shared_run is not None:
        parameters = [*parameters, Parameter(SHARED_RUN_LESSON, "run", str((shared_run / SHARED_RUN).resolve()))]
        preload = {SHARED_SWEEP_LESSON: {SWEEP_RUNS: shared_run / SHARED_SWEEP}}
        needed = {_lesson_of_submission(path) for i, path in enumerate(unique) if i not in done}
    noted: set[tuple[str, str]] = set()

    def note(notebook: str, text: str) -> None:
        if (notebook, text) not in noted:
            noted.add((notebook, text))
            progress(f"note: {notebook}: {text}")

    stopping = threading.Event()
    tasks: list[asyncio.Future] = []
    failure: list[str] = []

    async def grade_all():
        loop, this = asyncio.get_running_loop(), asyncio.current_task()
        stop_here.append(lambda: loop.call_soon_threadsafe(this.cancel))  # and with it every notebook's task
        if shared_run is not None:
            failure.extend(filter(None, [await _make_shared(shared_run, needed, lessons, given, out_dir, limits,
                                                            end_strays, progress)]))
            if failure or stopping.is_set():
                return
        turns = asyncio.Queue()
        for turn in range(jobs):
            turns.put_nowait(users[turn % len(users)])

        async def check(i: int):
            user = await turns.get()
            try:
                if not stopping.is_set():
                    progress(f"checking {display(unique[i])} ...")
                    grades = await _check_notebook(unique[i], exercises, targets[i], limits, parameters, user,
                                                   end_strays, note, preload)
                    if not stopping.is_set():  # a notebook stopped by Ctrl-C is not graded, so --resume runs it
                        done[i] = grades
                        book.add(grades)
            finally:
                turns.put_nowait(user)

        tasks.extend(asyncio.ensure_future(check(i)) for i in range(len(unique)) if i not in done)
        await asyncio.gather(*tasks, return_exceptions=True)

    # The event loop runs in a thread of its own, where nbclient cannot take Ctrl-C and SIGTERM for
    # itself (it would stop one notebook's kernel and go on): here they stop the grading.
    stop_here: list[Callable[[], object]] = []
    finished = threading.Event()  # not Thread.join, which a signal can leave believing the thread ended

    def run_loop():
        try:
            asyncio.run(grade_all())
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: what was graded is kept
            pass
        finally:
            finished.set()

    with _terminate_as_interrupt(), adopting_orphans() as end_strays:
        threading.Thread(target=run_loop, name="grading").start()
        try:
            while not finished.wait(0.2):
                pass
        except KeyboardInterrupt:
            stopping.set()
            for stop in stop_here:
                stop()
            finished.wait()
    if failure:
        raise RuntimeError(failure[0])
    graded = [grade for i in range(len(unique)) for grade in done.get(i, [])]
    book.rewrite(others + graded)
    if gradebook is not None:
        graded_now = {keys[i][0] for i in done if i not in kept}
        _write_gradebook_and_feedback(others + graded, graded_now, lessons, gradebook, out_dir, progress)
    stopped = "stopped (Ctrl-C or SIGTERM) before it was graded; --resume grades it"
    return [grade for i, path in enumerate(unique) for grade in done.get(i, [Grade(display(path), "", "", CRASHED,
                                                                                   stopped)])]


def _check_students_apart(paths: Sequence[Path], keys: Sequence[tuple[str, str]]) -> None:
    """ValueError if two submissions would be one student's notebook of one name (their rows would merge)."""
    first: dict[tuple[str, str], Path] = {}
    for path, key in zip(paths, keys):
        if key in first:
            raise ValueError(f"{display(first[key])} and {display(path)} would both be student {key[0]!r}'s "
                             f"{key[1]}: a student is the submission's folder (or, for a notebook not named like a "
                             f"lesson, its file name); grade them in separate calls with separate --csv, or rename")
        first[key] = path


def _kept(path: Path, rows: list[Grade], resume: bool, only_changed: bool,
          progress: Callable[[str], None]) -> list[Grade]:
    """The rows a notebook keeps instead of being graded again (none: it is graded)."""
    if rows and resume:
        progress(f"{display(path)}: graded before, kept (--resume)")
        return rows
    if rows and only_changed and all(row.digest == _digest_or_none(path) for row in rows):
        progress(f"{display(path)}: unchanged since it was graded, kept (--only-changed)")
        return rows
    return []


def _digest_or_none(path: Path) -> str | None:
    try:
        return digest(path)
    except OSError:  # unreadable now: graded again, and reported then
        return None


def _write_gradebook_and_feedback(grades: Sequence[Grade], students: set[str], lessons: Sequence[Path],
                                  csv_path: Path, out_dir: Path, progress: Callable[[str], None]) -> None:
    """``gradebook.csv`` beside the grades CSV, for the whole class; a feedback page for each of
    ``students`` (and for any student who has none yet)."""
    by_lesson: dict[str, list[str]] = {}
    for exercise_id in lesson_exercises(lessons):
        by_lesson.setdefault(exercise_id.split(".")[0], []).append(exercise_id)
    write_gradebook(grades, by_lesson, csv_path.with_name(GRADEBOOK))
    folder = out_dir / "feedback"
    for student in sorted({grade.student for grade in grades}):
        if student in students or not feedback_path(student, folder).exists():
            try:
                write_feedback(student, grades, folder)
            except Exception as error:  # one page that cannot be made costs no other
                progress(f"note: no feedback page for {student}: {type(error).__name__}: {error}".splitlines()[0])


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM stops it as Ctrl-C does (in the main thread; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def grades_summary(outcomes: Sequence[Grade]) -> str:
    exercises = [o for o in outcomes if o.exercise]
    counts = {result: sum(o.result == result for o in exercises) for result in (PASSED, FAILED, NOT_DONE)}
    crashed = len({o.notebook for o in outcomes if o.result == CRASHED})
    text = (f"{counts[PASSED]} of {len(exercises)} exercises passed, {counts[FAILED]} failed, "
            f"{counts[NOT_DONE]} not done")
    return text + (f"; {crashed} notebook(s) crashed" if crashed else "")
