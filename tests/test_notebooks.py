"""The lessons follow the series' conventions, and every worked solution passes its self-check."""

import ast
import hashlib
import json
import linecache
import re
from pathlib import Path

import nbformat
import pytest
import torch

from seresnet_lib import seresnet50
from seresnet_lib.classroom import checks, copies
from seresnet_lib.classroom.checks import CheckResult
from seresnet_lib.classroom.series import lessons

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = lessons(NOTEBOOKS)
SOLUTION_CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)
EXERCISE_HEADING = re.compile(r"^### Exercise (\d+) · (.+)$", re.MULTILINE)


def read(path):
    return nbformat.read(path, as_version=4)


def solution_cells(notebook) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if copies.SOLUTION in copies.tags(cell)]


def solutions(notebook) -> list[str]:
    """The code of each worked solution of a lesson (a path or a notebook), in order."""
    notebook = read(notebook) if isinstance(notebook, Path) else notebook
    return [SOLUTION_CODE.search(notebook.cells[i].source).group(1) for i in solution_cells(notebook)]


def run_cell(code: str, namespace: dict | None = None):
    """Execute code as IPython runs a cell; return the value of its last line, as the notebook would display it.

    Like IPython, it keeps the code in ``linecache``, where ``inspect`` finds the source of the functions
    it defines (the "find the bug" checks read it).
    """
    filename = f"<cell {hashlib.sha256(code.encode()).hexdigest()[:12]}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    tree = ast.parse(code)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "a solution ends with its self-check call"
    namespace = {} if namespace is None else namespace
    exec(compile(tree, filename, "exec"), namespace)
    return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)


def lesson_names(lesson: Path) -> dict:
    """What a lesson defines before its exercises and its solutions use without defining: lesson 07's trained
    ``model`` and its ``batch`` of 8 test images. Run on their own, an untrained model and random images stand in."""
    if lesson.name == "07_inside_se.ipynb":
        torch.manual_seed(0)
        return {"model": seresnet50(num_classes=10).eval(), "batch": torch.rand(8, 3, 32, 32)}
    return {}


def test_lessons_01_to_04_exist():
    names = [path.name for path in LESSONS]
    assert names[:4] == ["01_stem.ipynb", "02_bottleneck_blocks.ipynb",
                         "03_squeeze_excitation.ipynb", "04_seresnet50.ipynb"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_opens_with_objectives_prerequisites_and_time(path):
    first = read(path).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Lesson ")
    for heading in ("What you will learn", "Prerequisites", "Time"):
        assert heading in first.source


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_imports_the_installed_library_without_path_tricks(path):
    code = "\n".join(cell.source for cell in read(path).cells if cell.cell_type == "code")
    assert "from seresnet_lib" in code
    assert "sys.path" not in code


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_is_recorded_from_a_real_run(path):
    code_cells = [cell for cell in read(path).cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), "re-record with `make record`"
    for cell in code_cells:
        for output in cell.outputs:
            assert output.output_type != "error"
            assert output.get("name") != "stderr", f"stderr output in: {cell.source[:60]}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_ends_with_at_least_two_checked_exercises(path):
    self_checks = "|".join(name for name in dir(checks) if name.startswith("check_"))
    code = [cell.source for cell in read(path).cells if cell.cell_type == "code"]
    exercise_cells = [source for source in code if re.search(rf"^({self_checks})\(", source, re.MULTILINE)]
    assert len(exercise_cells) >= 2
    assert len(solutions(path)) >= len(exercise_cells)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_each_exercise_cell_is_tagged_and_followed_by_its_tagged_solution(path):
    notebook = read(path)
    exercises, answers = copies.exercise_cells(notebook), solution_cells(notebook)
    assert len(exercises) == len(answers)
    ids = []
    for number, (exercise, answer) in enumerate(zip(exercises, answers), start=1):
        cell = notebook.cells[exercise]
        heading = EXERCISE_HEADING.search(notebook.cells[exercise - 1].source)
        assert heading and int(heading.group(1)) == number, "the exercise cell follows its heading"
        assert cell.metadata["exercise"] == {"id": f"{path.name[:2]}.{number}", "title": heading.group(2)}
        assert answer == exercise + 1 and notebook.cells[answer].cell_type == "markdown"
        source = notebook.cells[answer].source
        assert source.startswith("<details>") and source.endswith("</details>"), "nothing else in a solution cell"
        ids.append(cell.metadata["exercise"]["id"])
    assert len(set(ids)) == len(ids)
    untagged = [cell.source for cell in notebook.cells if not copies.tags(cell)]
    assert not any("<details>" in source for source in untagged), "every solution is tagged"
    if path != LESSONS[-1]:
        assert untagged[-1].startswith("**Next:** lesson"), "the last cell points on, and stays in student copies"


@pytest.mark.parametrize(
    "path, index",
    [(path, i) for path in LESSONS for i in range(len(solutions(path)))],
    ids=lambda value: value.name if isinstance(value, Path) else f"solution{value + 1}",
)
def test_worked_solution_passes_its_check(path, index):
    result = run_cell(solutions(path)[index], lesson_names(path))
    assert isinstance(result, CheckResult)
    assert result.passed, result.message


FIND_THE_BUG = {"02.1": "There is a ReLU after the last BN", "03.2": "The squeeze uses max-pooling"}


@pytest.mark.parametrize("exercise_id, bug", FIND_THE_BUG.items(), ids=list(FIND_THE_BUG))
def test_find_the_bug_checks_say_nothing_of_the_bug_until_the_code_changes(exercise_id, bug, capsys):
    [lesson] = [path for path in LESSONS if path.name.startswith(exercise_id[:2])]
    notebook = read(lesson)
    [cell] = [notebook.cells[i] for i in copies.exercise_cells(notebook)
              if notebook.cells[i].metadata["exercise"]["id"] == exercise_id]
    assert sum(source in cell.source for source in checks.HANDED_OUT_BUGS) == 1, \
        "the check recognizes the class exactly as the lesson hands it out"
    imports = next(cell.source for cell in notebook.cells if cell.cell_type == "code")
    namespace = {}
    exec(imports, namespace)
    handed_out = run_cell(cell.source, namespace)
    assert not handed_out.passed and not handed_out.done
    assert handed_out.message == "Not done yet: run the cell, read what it prints, and find the bug."
    assert capsys.readouterr().out.strip(), "the cell prints something to read"
    changed = run_cell(cell.source.replace("    def forward(self, x):", "    def forward(self, x):  # looked"),
                       namespace)
    assert not changed.passed and changed.done and changed.message.startswith(bug)


# The series is also a web book, whose code blocks are 88 columns wide: a longer line scrolls sideways.
# nbval reads its markers from cell tags (nbval-ignore-output, ...), so readers never see them in the code.
CODE_WIDTH = 88


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_code_fits_the_web_book_and_carries_no_nbval_comments(path):
    """Code cells, and the worked solutions' code folded into markdown cells."""
    cells = json.loads(path.read_text())["cells"]
    code = [(index, "".join(cell["source"])) for index, cell in enumerate(cells) if cell["cell_type"] == "code"]
    problems = []
    for number, (index, source) in enumerate(code):
        where = f"{path.name} cell {index} (nbval's Cell {number})"
        problems += [f"{where}, line {line_number}: an nbval marker in the code; tag the cell instead "
                     f"(e.g. nbval-ignore-output): {line.strip()}"
                     for line_number, line in enumerate(source.splitlines(), start=1)
                     if "NBVAL" in line or "PYTEST_VALIDATE" in line]
    folded = [(index, "\n".join(SOLUTION_CODE.findall("".join(cell["source"]))))
              for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"]
    for index, source in code + folded:
        problems += [f"{path.name} cell {index}, line {line_number}: {len(line)} columns, more than {CODE_WIDTH}: "
                     f"{line.strip()[:60]}"
                     for line_number, line in enumerate(source.splitlines(), start=1) if len(line) > CODE_WIDTH]
    assert not problems, "\n".join(problems)
