"""A feedback page per student: their executed notebooks as one web page, each exercise headed by
what its self-check said, readable in any browser without Jupyter.

    write_feedback("alice", grades, Path("checked/feedback"))   # checked/feedback/alice.html

The page is built from the executed copies that grading saved, with nbconvert. Its content
security policy lets the browser run no script and load nothing from outside the file, whatever
HTML a student's notebook holds, and the tags it cannot stop (``<meta>``, ``<base>``, ``<form>``) are
shown as text, so a teacher can open any page safely, offline too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell, new_notebook

from ..paths import resolve
from .copies import EXERCISE, exercise_cells
from .gradebook import CRASHED, FAILED, NOT_DONE, PASSED, Grade, write_whole

_MARKS = {PASSED: "✓", FAILED: "✗", NOT_DONE: "·", CRASHED: "✗"}
_SAFE_NAME = re.compile(r"[^\w.-]+")
# No script runs, nothing is fetched: only the page's own styles and the images inside it.
_POLICY = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'; img-src data:; font-src data:; form-action 'none'; base-uri 'none'\">")
# What a policy cannot stop, a student's HTML may not say: a <meta> refresh would take the reader elsewhere.
_UNSAFE_TAG = re.compile(r"<(?=\s*/?\s*(meta|base|form)\b)", re.IGNORECASE)


def feedback_path(student: str, folder: Path) -> Path:
    """Where a student's page goes: ``folder/STUDENT.html``; a name with characters a file name should not
    hold has them replaced and a short fingerprint added, so that two students never share a page."""
    safe = _SAFE_NAME.sub("_", student).strip("._")
    if safe != student or safe.lower() != safe:
        safe = f"{safe or 'student'}-{hashlib.sha256(student.encode()).hexdigest()[:6]}"
    return Path(folder) / f"{safe}.html"


def write_feedback(student: str, grades: Sequence[Grade], folder: Path) -> Path:
    """Write ``student``'s page from their rows of the grades (each with its executed copy); its path."""
    own = [grade for grade in grades if grade.student == student]
    cells = [_markdown(f"# Feedback: {_text(student)}\n\n{_summary(own)}")]
    for notebook in dict.fromkeys(grade.notebook for grade in own):
        rows = [grade for grade in own if grade.notebook == notebook]
        cells.append(_markdown(f"## {_text(notebook)}"))
        cells += _annotated_cells(rows)
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(
        new_notebook(cells=cells, metadata={"title": f"Feedback: {student}"}))
    head = page.index("<head>") + len("<head>")
    body = f"{page[:head]}\n{_POLICY}{page[head:]}"
    path = feedback_path(student, folder)
    write_whole(path, lambda temporary: temporary.write_text(body, encoding="utf-8"))
    return path


def _summary(rows: Sequence[Grade]) -> str:
    """A table of every exercise's result, and the passes counted."""
    exercises = [row for row in rows if row.exercise]
    passed = sum(row.result == PASSED for row in exercises)
    lines = [f"**{passed} of {len(exercises)} exercises passed.**", "",
             "| notebook | exercise | result | what the self-check said |", "|---|---|---|---|"]
    lines += [f"| {_text(row.notebook)} | {_text(f'{row.exercise} {row.title}'.strip() or '(whole notebook)')} | "
              f"{_MARKS.get(row.result, '?')} {_text(row.result)} | {_text(row.detail)} |" for row in rows]
    return "\n".join(lines)


def _annotated_cells(rows: Sequence[Grade]) -> list[NotebookNode]:
    """The executed copy's cells, each exercise cell preceded by its result; what happened to the
    notebook as a whole comes first."""
    notes = [_markdown(f"> **{_MARKS.get(row.result, '?')} {_text(row.result)}**: {_text(row.detail)}")
             for row in rows if not row.exercise]
    if not rows[0].executed:
        return notes + [_markdown("*No executed copy was saved: the notebook could not be run.*")]
    executed = next((path for path in (resolve(rows[0].executed), Path(rows[0].executed).absolute())
                     if path.is_file()), None)
    try:
        notebook = _defused(nbformat.read(executed, as_version=4))
    except Exception as error:  # moved, deleted or damaged since it was graded
        return notes + [_markdown(f"*The executed copy {_text(rows[0].executed)} cannot be read: "
                                  f"{_text(type(error).__name__)}.*")]
    verdicts = {row.exercise: row for row in rows if row.exercise}
    starts = set(exercise_cells(notebook))
    cells = notes
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get(EXERCISE)
        row = verdicts.pop(str(meta.get("id")), None) if index in starts and isinstance(meta, dict) else None
        if row is not None:
            cells.append(_verdict(row))
        cells.append(cell)
    return cells + [_verdict(row) for row in verdicts.values()]  # exercises whose cell was not found


def _defused(notebook: NotebookNode) -> NotebookNode:
    """The notebook with the tags a content security policy cannot stop made text, in markdown and HTML output."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _UNSAFE_TAG.sub("&lt;", cell.source)
        for output in cell.get("outputs", []):
            if isinstance(output.get("data", {}).get("text/html"), str):
                output.data["text/html"] = _UNSAFE_TAG.sub("&lt;", output.data["text/html"])
    return notebook


def _verdict(row: Grade) -> NotebookNode:
    """An exercise's result and what its self-check said, as a quoted heading for its cell."""
    return _markdown(f"> **Exercise {_text(row.exercise)} {_text(row.title)}: {_MARKS.get(row.result, '?')} "
                     f"{_text(row.result)}**  \n> {_text(row.detail)}")


def _markdown(text: str) -> NotebookNode:
    return new_markdown_cell(text)


def _text(value: str) -> str:
    """Text shown as written inside markdown: HTML escaped, markdown's special characters too."""
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", value.replace("&", "&amp;")).replace("\n", " ")
