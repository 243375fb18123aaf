"""Student copies and grading: `make student` and `make check`.

The student copy of every lesson is run, and graded, in test_rerun.py (all "not done", then all
passed with the worked solutions). Here: what a copy keeps and drops, how each kind of answer is
graded, and the command line on small notebooks.
"""

import csv
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_notebooks import LESSONS, read, solution_cells

from seresnet_lib.classroom import cli, copies, feedback, gradebook, grading, options, sandbox
from seresnet_lib.classroom.checks import CHECK_MIME
from seresnet_lib.classroom.options import Parameter
from seresnet_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_student_copy_drops_solutions_and_outputs_and_keeps_everything_else(path):
    lesson = read(path)
    copy = copies.student_copy(lesson)
    kept = [cell for i, cell in enumerate(lesson.cells) if i not in solution_cells(lesson)]
    assert [(c.cell_type, c.source) for c in copy.cells] == [(c.cell_type, c.source) for c in kept]
    assert not any("<details>" in cell.source or copies.SOLUTION in copies.tags(cell) for cell in copy.cells)
    assert [{**copy.cells[i].metadata, "exercise": {**copy.cells[i].metadata["exercise"], "handed_out": None}}
            for i in copies.exercise_cells(copy)] == \
           [{**lesson.cells[i].metadata, "exercise": {**lesson.cells[i].metadata["exercise"], "handed_out": None}}
            for i in copies.exercise_cells(lesson)]  # tags and ids kept
    for cell in copy.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert copy.metadata["kernelspec"]["name"] == "python3"
    assert lesson.cells[solution_cells(lesson)[0]].source.startswith("<details>")  # the lesson is untouched


def test_student_copies_are_written_and_a_changed_one_is_not_overwritten(tmp_path):
    [first, second] = copies.write_student_copies(LESSONS[:2], tmp_path / "student")
    assert [first.name, second.name] == [LESSONS[0].name, LESSONS[1].name]
    assert copies.write_student_copies(LESSONS[:2], tmp_path / "student") == [first, second]  # same: fine
    worked = first.read_text().replace("answer = None", "answer = (64, 40, 40)")
    first.write_text(worked)
    with pytest.raises(FileExistsError, match=rf"student/{first.name} differs from a fresh copy .* pass --force"):
        copies.write_student_copies(LESSONS[:2], tmp_path / "student")
    assert first.read_text() == worked
    copies.write_student_copies(LESSONS[:2], tmp_path / "student", force=True)
    assert "answer = None" in first.read_text()
    with pytest.raises(ValueError, match="holds the lessons themselves"):
        copies.write_student_copies(LESSONS[:1], LESSONS[0].parent)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match="a-file is a file, not a folder"):
        copies.write_student_copies(LESSONS[:1], tmp_path / "a-file")
    (tmp_path / "01_x.ipynb").write_text("hi")
    with pytest.raises(ValueError, match="01_x.ipynb cannot be read as a notebook"):
        copies.write_student_copies([tmp_path / "01_x.ipynb"], tmp_path / "student")


def test_a_student_copy_remembers_each_exercise_as_handed_out():
    lesson = read(LESSONS[1])
    copy = copies.student_copy(lesson)
    for index in copies.exercise_cells(copy):
        cell = copy.cells[index]
        assert cell.metadata["exercise"]["handed_out"] == copies.fingerprint(cell.source)
    assert "handed_out" not in str(lesson.metadata) + str([c.metadata for c in lesson.cells])


# Grading an executed notebook, answer by answer

HANDED_OUT = {"09.1": grading.Exercise("09.1", "Title", copies.fingerprint("start\ncheck()")),
              "09.2": grading.Exercise("09.2", "Second", copies.fingerprint("placeholder"))}


def check_output(passed, message="msg", done=True):
    text = ("✓ " if passed else "✗ ") + message
    return new_output("execute_result", data={"text/plain": text, CHECK_MIME:
                                              {"passed": passed, "done": done, "message": message}})


def exercise(source, *outputs, exercise_id="09.1"):
    cell = new_code_cell(source, outputs=list(outputs), execution_count=1)
    cell.metadata = {"tags": ["exercise"], "exercise": {"id": exercise_id, "title": "Title"}}
    return cell


def code(source, *outputs):
    return new_code_cell(source, outputs=list(outputs), execution_count=1)


ERROR = new_output("error", ename="NameError", evalue="name 'x' is not defined", traceback=[])


@pytest.mark.parametrize(
    "cells, result, detail",
    [
        ([exercise("answer = 3\ncheck()", check_output(True, "right"))], "passed", "right"),
        ([exercise("answer = 4\ncheck()", check_output(False, "too big"))], "failed", "too big"),
        ([exercise("answer = None\ncheck()", check_output(False, "Not done yet", done=False))], "not done",
         "Not done yet"),
        ([exercise("start\ncheck()", check_output(False, "a bug"))], "not done", "a bug"),  # left as handed out
        ([exercise("answer = x\ncheck()", ERROR)], "failed", "raised NameError: name 'x' is not defined"),
        ([exercise("start\ncheck()", ERROR)], "not done", "raised NameError"),
        ([exercise("answer = 4"), code("check()", check_output(True, "right"))], "passed", "right"),
        ([exercise("start\ncheck()", check_output(False, "a bug")), new_markdown_cell("notes"),
          code("fixed\ncheck()", check_output(True, "right"))], "passed", "right"),
        ([exercise("start\ncheck()", check_output(False, "a bug")),  # a wrong answer below, the cell left alone
          code("other\ncheck()", check_output(False, "still a bug"))], "failed", "still a bug"),
        ([exercise("answer = 3\ncheck()", check_output(True, "right")), code("scratch", ERROR)], "passed", "right"),
        ([exercise("answer = 4")], "failed", "no self-check result: keep the check call as the exercise cell's"),
        ([exercise("print(check())")], "failed", "no self-check result"),
        ([exercise("start\ncheck()", check_output(False, "a bug")),  # a copy of the exercise cell, answered
          exercise("fixed\ncheck()", check_output(True, "right"))], "passed", "right"),
    ],
    ids=["right", "wrong", "placeholder", "unchanged", "raised", "unchanged-raised", "own-cell", "fixed-below",
         "wrong-below", "scratch-error-after-pass", "check-deleted", "printed", "copied-cell"],
)
def test_each_kind_of_answer_is_graded(cells, result, detail):
    notebook = new_notebook(cells=[code("import torch"), *cells])
    [outcome] = grading.grade(notebook, "alice.ipynb", {"09.1": HANDED_OUT["09.1"]})
    assert (outcome.exercise, outcome.result) == ("09.1", result) and outcome.detail.startswith(detail)


def test_an_error_before_the_exercises_is_a_crash_and_they_are_still_graded():
    cells = [code("import seresnet_lib.missing", new_output(
        "error", ename="ModuleNotFoundError", evalue="No module named 'seresnet_lib.missing'", traceback=[])),
        exercise("start\ncheck()", ERROR, exercise_id="09.1"),
        exercise("answer = 3\ncheck()", check_output(True), exercise_id="09.2")]
    outcomes = grading.grade(new_notebook(cells=cells), "bob.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in outcomes] == [("", "crashed"), ("09.1", "not done"), ("09.2", "passed")]
    assert outcomes[0].detail == ("cell 1 (import seresnet_lib.missing): "
                                  "ModuleNotFoundError: No module named 'seresnet_lib.missing'")


def test_an_exercise_deleted_or_untagged_is_missing_not_forgotten():
    untagged = code("answer = 3")  # the cell of 09.2, which lost its tag
    outcomes = grading.grade(new_notebook(cells=[exercise("start\ncheck()", check_output(False, "bug")), untagged]),
                             "09_x.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in outcomes] == [("09.1", "not done"), ("09.2", "failed")]
    assert outcomes[1].detail == "missing: its cell, or the cell's 'exercise' tag, was deleted"
    only_file_name = grading.grade(new_notebook(cells=[code("x = 1")]), "student/09_x.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in only_file_name] == [("09.1", "failed"), ("09.2", "failed")]


def test_a_pasted_copy_of_an_exercise_counts_for_its_own_exercise():
    cells = [exercise("start\ncheck()", check_output(False, "as handed out")),
             exercise("placeholder", check_output(False, "Not done yet", done=False), exercise_id="09.2"),
             exercise("answer\ncheck()", check_output(True, "right"))]  # 09.1 again, answered at the end
    outcomes = grading.grade(new_notebook(cells=cells), "a.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in outcomes] == [("09.1", "passed"), ("09.2", "not done")]
    scratch_above = [exercise("draft\ncheck()", check_output(False, "wrong try"), exercise_id="09.2"),
                     exercise("start\ncheck()", check_output(False, "as handed out")),
                     exercise("answer\ncheck()", check_output(True, "right"), exercise_id="09.2")]
    outcomes = grading.grade(new_notebook(cells=scratch_above), "a.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in outcomes] == [("09.2", "passed"), ("09.1", "not done")]


def test_odd_metadata_or_data_is_graded_not_fatal():
    no_meta = exercise("answer\ncheck()", check_output(True))
    no_meta.metadata["exercise"] = None
    text_payload = code("check()", new_output("display_data", data={"text/plain": "x", CHECK_MIME: "passed"}))
    outcomes = grading.grade(new_notebook(cells=[no_meta, text_payload]), "a.ipynb", HANDED_OUT)
    assert [(o.exercise, o.result) for o in outcomes] == [("cell 1", "passed")]
    [lost] = grading.grade(new_notebook(cells=[code("answer = 1")]), "alice/01_stem.ipynb", {})
    assert lost.result == "failed" and lost.detail.startswith("no exercise cells")


def test_after_a_timeout_only_what_ran_before_it_counts():
    cells = [exercise("answer = 3\ncheck()", check_output(True)),
             exercise("while True: pass", new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[]),
                      exercise_id="09.2"),
             code("later", check_output(True))]
    stop = grading.Stop(1, "it ran longer than 5 s (--timeout)")
    outcomes = grading.grade(new_notebook(cells=cells), "c.ipynb", HANDED_OUT, stop)
    assert [(o.exercise, o.result, o.detail) for o in outcomes] == [
        ("", "crashed", "cell 2 (while True: pass): it ran longer than 5 s (--timeout)"),
        ("09.1", "passed", "msg"),
        ("09.2", "failed", "not run to its end: the notebook stopped in cell 2")]


def test_an_unreadable_notebook_is_reported_and_not_run(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    [outcome] = grading.check_notebooks([broken], [], tmp_path / "checked")
    assert outcome.result == "crashed" and outcome.detail.startswith("cannot read it as a notebook")


def test_executed_copies_keep_their_paths_and_stay_out_of_the_students_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = [Path("class1/alice/01_stem.ipynb"), Path("class2/alice/01_stem.ipynb")]
    targets = grading.executed_copy_paths(paths, Path("checked"))
    assert [t.relative_to(tmp_path) for t in targets] == [Path("checked/class1/alice/01_stem.ipynb"),
                                                          Path("checked/class2/alice/01_stem.ipynb")]
    with pytest.raises(ValueError, match="would put executed copies among the notebooks being checked"):
        grading.executed_copy_paths([Path("alice/01_stem.ipynb")], Path("."))


def test_table_csv_and_gradebook_have_a_line_per_exercise_and_per_student(tmp_path):
    outcomes = [grading.Grade("a/01_stem.ipynb", "01.1", "Output size", "passed", "right", "checked/a.ipynb", "a"),
                grading.Grade("a/01_stem.ipynb", "01.2", "A stem", "not done", "Not done yet", "checked/a.ipynb", "a"),
                grading.Grade("b/01_stem.ipynb", "", "", "crashed", "cell 3 (x): NameError: x", "", "b")]
    lines = grading.grades_table(outcomes).splitlines()
    assert lines[0].split() == ["notebook", "exercise", "result", "detail"]
    assert lines[1].split()[:5] == ["a/01_stem.ipynb", "01.1", "Output", "size", "✓"]
    assert "(whole notebook)" in lines[3] and "✗ crashed" in lines[3]
    assert "+ passed" in grading.grades_table(outcomes, encoding="latin-1")  # where ✓ cannot be printed
    gradebook.write_grades_csv(outcomes, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["student", "notebook", "exercise", "title", "result", "detail", "executed", "digest"]
    assert rows[2] == ["a", "a/01_stem.ipynb", "01.2", "A stem", "not done", "Not done yet", "checked/a.ipynb", ""]
    assert gradebook.read_grades_csv(tmp_path / "grades.csv") == outcomes
    assert grading.grades_summary(outcomes) == "1 of 2 exercises passed, 0 failed, 1 not done; 1 notebook(s) crashed"
    # b's notebook crashed before any exercise ran: its lesson's exercises count 0; lesson 02 was not handed in
    assert gradebook.gradebook(outcomes, {"01": ["01.1", "01.2"], "02": ["02.1"]}) == (
        ["student", "01.1", "01.2", "02.1", "total", "out_of"], [["a", 1, 0, "", 1, 2], ["b", 0, 0, "", 0, 2]])
    (tmp_path / "old.csv").write_text("notebook,exercise,title,result,detail,executed\n"
                                      "class/bob/01_stem.ipynb,01.1,Output size,passed,right,\n")
    assert [(g.student, g.key) for g in gradebook.read_grades_csv(tmp_path / "old.csv")] == [
        ("bob", ("bob", "01_stem.ipynb"))]  # a CSV from before students were a column
    assert [gradebook.student_of(Path(p)) for p in ["class/alice/05_train_cifar10.ipynb", "class/carol.ipynb"]] == [
        "alice", "carol"]


# The command line, on small notebooks (test_rerun.py grades the lessons' own copies)

def small_notebook(*cells) -> NotebookNode:
    for cell in cells:
        cell.outputs, cell.execution_count = [], None
    return new_notebook(cells=list(cells), metadata=read(LESSONS[0]).metadata)


# Hostile work beside honest work: what a submission can reach

def passes(message="done") -> NotebookNode:
    """An exercise cell that shows a passed self-check, as the real ones do, without importing torch."""
    return exercise(f"from IPython.display import display\n"
                    f"display({{'text/plain': 'a check', {CHECK_MIME!r}: {{'passed': True, 'done': True, "
                    f"'message': {message!r}}}}}, raw=True)")


def world_readable_folder() -> Path:
    """A folder anyone may read, as a classroom's submissions and datasets are (pytest's are private)."""
    folder = Path(tempfile.mkdtemp(prefix="seresnet-test-"))
    folder.chmod(0o755)
    return folder


def checksums(*folders: Path) -> dict[str, str]:
    """Each file's SHA-256 under ``folders``, leaving out the environment and what runs write."""
    sums = {}
    for folder in folders:
        for parent, subfolders, files in os.walk(folder):
            subfolders[:] = [name for name in subfolders if name not in {".venv", ".git", "runs", "checked",
                                                                         "__pycache__", ".pytest_cache"}]
            for name in files:
                path = Path(parent) / name
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "link"
    return sums


@pytest.fixture
def kernels_as_nobody():
    """Grading as root, whose kernels run as nobody: the folders on the way to this Python are opened
    to others for the test (a classroom container has them open), and closed again after."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("kernels run as another user only when the grader runs as root")
    closed = [folder for folder in {*Path(sys.executable).resolve().parents, *ROOT.parents}
              if not folder.stat().st_mode & stat.S_IXOTH]
    for folder in closed:
        folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
    yield
    for folder in closed:
        folder.chmod(folder.stat().st_mode & ~stat.S_IXOTH)


def test_hostile_notebooks_change_nothing_outside_their_scratch_folders_and_honest_ones_are_graded_right(
        kernels_as_nobody, tmp_path, monkeypatch, capfd):
    """As root, with 2 jobs: a notebook that deletes every notebook and dataset file it can find, one that
    kills the grader, one that prints 100 MB and then without end, one that writes into the project, the class and the
    executed copies, and one whose kernel dies leaving processes behind, graded beside two honest ones.
    Every file of the class, the project and the datasets is unchanged; the honest notebooks get their
    grades; the table is in the order given; nothing the kernels started is left running. Everything is made
    in a temporary folder of its own, so that what the deleter finds around its scratch folder is the test's
    (the system's would hold other programs' folders, some of which anyone may delete from)."""
    around, system = world_readable_folder(), tempfile.tempdir
    monkeypatch.setattr(tempfile, "tempdir", str(around))
    classroom, project = world_readable_folder(), world_readable_folder()
    try:
        (project / "data" / "cifar-10-batches-py").mkdir(parents=True)
        (project / "data" / "cifar-10-batches-py" / "data_batch_1").write_text("images")
        (project / "data" / "README.md").write_text("the datasets")
        for folder in [project / "data", project / "data" / "cifar-10-batches-py"]:
            folder.chmod(0o755)
        monkeypatch.setattr(sandbox, "project_workdir", lambda: project)
        alice = classroom / "alice.ipynb"
        forged = exercise("check_stem_output_size((40, 40, 64), input_size=160)", check_output(True, "saved before"),
                          exercise_id="01.1")
        forged.metadata["tags"].append("skip-execution")  # still runs, and what it showed when saved is cleared
        deleter = code(f"import glob, os\nprint(open('data/cifar-10-batches-py/data_batch_1').read())\n"
                       f"for path in glob.glob('data/*/*') + glob.glob('../../*/*') + glob.glob('../*') + "
                       f"glob.glob('**', recursive=True) + [{str(alice)!r}, {str(project / 'data' / 'README.md')!r}]:\n"
                       f"    try:\n        os.remove(path)\n        print('deleted', path)\n"
                       f"    except OSError as error:\n        print('refused', path, error.strerror)")
        writer = code("import os\nfor path in [" + ", ".join(repr(str(path)) for path in [
            ROOT / "notebooks" / "pwned.ipynb", classroom / "pwned.ipynb", project / "data" / "pwned",
            tmp_path / "checked" / "pwned.ipynb", "../pwned"]) + "]:\n"
            "    try:\n        open(path, 'w').write('pwned')\n        print('wrote', path)\n"
            "    except OSError as error:\n        print('refused', path, error.strerror)")
        notebooks = {
            "alice": small_notebook(new_code_cell("from seresnet_lib.classroom.checks import check_stem_output_size"),
                                    forged, exercise("check_stem_output_size((64, 40, 40), input_size=160)",
                                                     exercise_id="01.2")),
            "bob": small_notebook(new_code_cell("import missing_module"),  # his first cell fails
                                  exercise("start\ncheck()", exercise_id="09.1")),  # and this one is as handed out
            "deleter": small_notebook(deleter, passes()),
            "killer": small_notebook(code("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"), passes()),
            "printer": small_notebook(code("for _ in range(100):\n    print('x' * 1_000_000)"),
                                      code("while True:\n    print('x' * 100)"), passes()),
            "writer": small_notebook(writer, passes()),
            "zombie": small_notebook(code("import os, subprocess\nfor apart in [{'process_group': 0}, "
                                          "{'start_new_session': True}]:\n"
                                          "    print(subprocess.Popen(['sleep', '600'], **apart).pid)"),
                                     code("os._exit(1)"), passes()),
        }
        for name, notebook in notebooks.items():
            nbformat.write(notebook, classroom / f"{name}.ipynb")
            (classroom / f"{name}.ipynb").chmod(0o644)
        before = checksums(classroom, project, ROOT)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(grading, "lesson_exercises", lambda lessons: {"09.1": HANDED_OUT["09.1"]})
        assert main(["check", str(classroom), "--jobs", "2", "--max-output", "1", "--out-dir", "checked"]) == 1
        assert checksums(classroom, project, ROOT) == before
    finally:
        shutil.rmtree(classroom), shutil.rmtree(project)
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "zmq" not in err
    table = [[v.strip() for v in line.split("  ") if v.strip()] for line in out.splitlines()
             if line.startswith(str(classroom))]
    rows = [(Path(row[0]).stem, *row[1:3]) for row in table]
    assert rows == [
        ("alice", "01.1 Title", "✗ failed"), ("alice", "01.2 Title", "✓ passed"),
        ("bob", "(whole notebook)", "✗ crashed"), ("bob", "09.1 Title", "· not done"),
        ("deleter", "09.1 Title", "✓ passed"),
        ("killer", "(whole notebook)", "✗ crashed"), ("killer", "09.1 Title", "✓ passed"),
        ("printer", "09.1 Title", "✓ passed"),
        ("writer", "09.1 Title", "✓ passed"),
        ("zombie", "(whole notebook)", "✗ crashed"), ("zombie", "09.1 Title", "✗ failed"),
    ]
    assert table[0][3].startswith("The order is (channels, height, width)")
    assert table[2][3] == "cell 1 (import missing_module): ModuleNotFoundError: No module named 'missing_module'"
    assert table[5][3].endswith("PermissionError: [Errno 1] Operation not permitted")
    cut = re.fullmatch(r"done \[output of cell 1 cut \(([\d,]+) characters over --max-output\); "
                       r"output of cell 2 cut \(([\d,]+) characters over --max-output\)\]", table[7][3])
    assert 10_000_000 < int(cut[1].replace(",", "")) <= 99_000_100  # stopped after ten times the limit, or done
    assert int(cut[2].replace(",", "")) > 10_000_000  # the endless printer was stopped, long before --timeout
    executed = tmp_path / "checked" / classroom.name
    printed = read(executed / "printer.ipynb")
    assert (executed / "printer.ipynb").stat().st_size < 2_300_000  # two cells of 1,000,000 characters, as JSON
    for cell, characters in zip(printed.cells, cut.groups()):
        assert cell.outputs[-1].text.startswith(f"[grading: {characters} more characters of output were left out; "
                                                f"the cell was stopped; a cell may keep 1,000,000")
    deleted = read(executed / "deleter.ipynb").cells[0].outputs[0].text
    assert deleted.startswith("images\n")  # the datasets can be read
    assert "refused " + str(alice) + " Permission denied" in deleted
    assert any(line.startswith("refused ../../seresnet-test-") for line in deleted.splitlines())
    assert all(not line.split()[1].startswith(("..", "/")) for line in deleted.splitlines()
               if line.startswith("deleted"))  # what it could delete was its own copy, in its own folder
    wrote = read(executed / "writer.ipynb").cells[0].outputs[0].text.splitlines()
    assert len(wrote) == 5 and all(line.startswith("refused") and line.endswith("denied") for line in wrote)
    assert all(cell.execution_count for cell in read(executed / "alice.ipynb").cells)
    assert table[9][3] == "cell 2 (os._exit(1)): the kernel died (out of memory, or the code ended its process)"
    for left_behind in read(executed / "zombie.ipynb").cells[0].outputs[0].text.split():  # in another group,
        stat_line = Path(f"/proc/{left_behind}/stat")                                   # in another session
        assert not stat_line.exists() or stat_line.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # gone, a zombie
    assert not list(Path(tempfile.gettempdir()).glob(f"seresnet-check-{os.getpid()}-*"))  # scratch folders gone
    assert "5 of 8 exercises passed, 2 failed, 1 not done; 3 notebook(s) crashed." in out
    monkeypatch.setattr(tempfile, "tempdir", system)  # before pytest's own temporary files
    around.rmdir()  # nothing else is left in it


def test_the_rows_of_a_grader_that_died_survive_and_resume_grades_only_the_rest(kernels_as_nobody, tmp_path,
                                                                                  monkeypatch, capsys):
    """With --user root (kernels as the grader's own account) a notebook can kill the grader: the rows
    written before it are kept, and --resume (kernels as nobody) grades only the notebooks not graded.
    A later call for one notebook replaces its rows and keeps the others'."""
    for name, cells in [("1_first", [passes("first")]), ("2_killer", [code("import os\nos.kill(os.getppid(), 9)"),
                                                                      passes()]),
                        ("3_last", [passes("last")])]:
        nbformat.write(small_notebook(*cells), tmp_path / f"{name}.ipynb")
    monkeypatch.chdir(tmp_path)
    grader = subprocess.Popen([sys.executable, "-m", "seresnet_lib", "check", ".", "--user", "root"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert grader.wait(timeout=120) == -signal.SIGKILL
    assert list(Path(tempfile.gettempdir()).glob(f"seresnet-check-{grader.pid}-*"))  # it could not clean up
    rows = list(csv.reader(open(tmp_path / "checked" / "grades.csv", newline="")))
    assert [row[1] for row in rows[1:]] == ["1_first.ipynb"]
    first = (tmp_path / "checked" / "1_first.ipynb").stat().st_mtime_ns
    assert main(["check", ".", "--resume"]) == 1
    out = capsys.readouterr().out
    assert "1_first.ipynb: graded before, kept (--resume)" in out and "checking 1_first.ipynb" not in out
    assert (tmp_path / "checked" / "1_first.ipynb").stat().st_mtime_ns == first
    assert not list(Path(tempfile.gettempdir()).glob(f"seresnet-check-{grader.pid}-*"))  # the next one did
    rows = list(csv.reader(open(tmp_path / "checked" / "grades.csv", newline="")))
    assert [(row[1], row[4]) for row in rows[1:]] == [("1_first.ipynb", "passed"), ("2_killer.ipynb", "crashed"),
                                                      ("2_killer.ipynb", "passed"), ("3_last.ipynb", "passed")]
    assert rows[2][5] == "cell 1 (import os): PermissionError: [Errno 1] Operation not permitted"
    nbformat.write(small_notebook(passes("last, handed in again")), tmp_path / "3_last.ipynb")
    assert main(["check", "3_last.ipynb"]) == 0  # a later call replaces its own rows and keeps the others
    rows = list(csv.reader(open(tmp_path / "checked" / "grades.csv", newline="")))
    assert [(row[1], row[5]) for row in rows[1:]] == [
        ("1_first.ipynb", "first"), ("2_killer.ipynb", rows[2][5]), ("2_killer.ipynb", "done"),
        ("3_last.ipynb", "last, handed in again")]


def fake_lesson_07(folder: Path) -> Path:
    """A lesson 07 in miniature: parameters ``run``, ``out_dir`` and ``images``; with ``run=None`` it
    "trains" a run into ``out_dir`` (a complete metrics.json and a checkpoint); its exercise passes when
    it was given a run it can read but not change, 500 images and the project's datasets."""
    parameters = new_code_cell('run = None\nout_dir = "runs/07_inside_se"\nimages = 50_000')
    parameters.metadata["tags"] = ["parameters"]
    trains = code("import json, os\n"
                  "if run is None:\n"
                  "    os.makedirs(os.path.join(out_dir, 'run-001'))\n"
                  "    open(os.path.join(out_dir, 'run-001', 'checkpoint.pt'), 'w').write('weights')\n"
                  "    json.dump({'status': 'complete'}, open(os.path.join(out_dir, 'run-001', 'metrics.json'), 'w'))")
    answer = exercise("answer = None\nfrom IPython.display import display\n"
                      "try:\n    open(os.path.join(run, 'run-001', 'checkpoint.pt'), 'a').close(); wrote = True\n"
                      "except (OSError, TypeError):\n    wrote = False\n"
                      "shared = os.path.isdir(os.path.join(os.environ['SERESNET_WORKDIR'], 'data', "
                      "'cifar-10-batches-py'))\n"
                      f"display({{'text/plain': 'a check', {CHECK_MIME!r}: {{'passed': bool(run) and not wrote and "
                      f"images == 500 and shared and answer == 7, 'done': answer is not None, 'message': "
                      f"f'answer={{answer}} run={{os.path.basename(str(run))}} wrote={{wrote}} images={{images}} '"
                      f"f'{{\"<script>alert(1)</script>\" if answer == 6 else \"\"}}'}}}}, raw=True)",
                      exercise_id="07.1")
    lesson = folder / "07_inside_se.ipynb"
    nbformat.write(small_notebook(parameters, trains, answer), lesson)
    return lesson


def test_a_class_graded_in_three_calls_adds_up_with_one_shared_run_and_per_lesson_parameters(
        kernels_as_nobody, tmp_path, monkeypatch, capsys):
    """Alice, then Bob, then the whole class with --only-changed (so only Carol runs): one grades.csv
    with every student's rows, gradebook.csv with a row and a total per student, a feedback page each.
    The first call trains the --shared-run once (lesson 07 as handed out), read-only after; every lesson
    07 loads it; -p 07:NAME reaches lesson 07 only, and a parameter no notebook has is skipped with a note."""
    classroom, shared = world_readable_folder(), world_readable_folder()
    try:
        (shared / "project" / "data" / "cifar-10-batches-py").mkdir(parents=True)
        monkeypatch.setattr(sandbox, "project_workdir", lambda: shared / "project")
        lesson, lesson_05 = fake_lesson_07(tmp_path), tmp_path / "05_train_cifar10.ipynb"
        train_size = new_code_cell("train_size = 1000")
        train_size.metadata["tags"] = ["parameters"]
        nbformat.write(small_notebook(train_size), lesson_05)  # graded by no one here: its parameters count
        monkeypatch.setattr(cli, "lessons", lambda: [lesson_05, lesson])
        for student, answer in [("alice", "7"), ("bob", "6"), ("carol", "None")]:
            submission = copies.student_copy(nbformat.read(lesson, as_version=4))
            submission.cells[-1].source = submission.cells[-1].source.replace("answer = None", f"answer = {answer}")
            (classroom / student).mkdir()
            nbformat.write(submission, classroom / student / "07_inside_se.ipynb")
        monkeypatch.chdir(classroom)
        run_dir, csv_path = shared / "class-run", tmp_path / "marks" / "grades.csv"
        options = ["--shared-run", str(run_dir), "--csv", str(csv_path), "--out-dir", str(tmp_path / "checked"),
                   "-p", "07:images", "500", "-p", "05:train_size", "1", "-p", "train_size", "3"]
        assert main(["check", "alice", *options]) == 0
        first = capsys.readouterr().out
        assert "running lesson 07 as handed out into" in first and "lesson 06" not in first  # no lesson 06 here
        assert "note: 07_inside_se.ipynb: -p train_size skipped: the notebook has no such parameter" in first
        assert "07.1 Title  ✓ passed  answer=7 run=07_inside_se wrote=False images=500" in first
        shared_run = run_dir / "07_inside_se"
        assert (shared_run / "run-001" / "checkpoint.pt").is_file()
        assert not any(path.stat().st_mode & 0o222 for path in [shared_run, *shared_run.rglob("*")])  # read-only
        assert main(["check", "bob", *options]) == 1
        assert "as handed out" not in capsys.readouterr().out  # the run is trained once
        with pytest.raises(SystemExit):  # the shared run was made with other -p values than these
            main(["check", "bob", *["5" if option == "500" else option for option in options]])
        assert "lesson 07's shared work there was made with -p {'images': 500}" in capsys.readouterr().err
        (classroom / "sec2" / "alice").mkdir(parents=True)
        shutil.copy(classroom / "alice" / "07_inside_se.ipynb", classroom / "sec2" / "alice")
        assert main(["check", "alice", "sec2/alice", *options]) == 2  # two alices would merge
        assert "would both be student 'alice'" in capsys.readouterr().err
        shutil.rmtree(classroom / "sec2")
        assert main(["check", "alice", "bob", "carol", "--only-changed", *options]) == 1
        third = capsys.readouterr().out
        assert third.count("unchanged since it was graded, kept (--only-changed)") == 2
        assert third.count("checking ") == 1 and "checking carol/07_inside_se.ipynb" in third
        rows = list(csv.DictReader(open(csv_path, newline="")))
        assert [(row["student"], row["exercise"], row["result"]) for row in rows] == [
            ("alice", "07.1", "passed"), ("bob", "07.1", "failed"), ("carol", "07.1", "not done")]
        assert list(csv.reader(open(csv_path.with_name("gradebook.csv"), newline=""))) == [
            ["student", "07.1", "total", "out_of"], ["alice", "1", "1", "1"], ["bob", "0", "0", "1"],
            ["carol", "0", "0", "1"]]
        pages = {page.stem: page.read_text() for page in (tmp_path / "checked" / "feedback").glob("*.html")}
        assert sorted(pages) == ["alice", "bob", "carol"]
        assert "1 of 1 exercises passed" in pages["alice"] and "answer=7 run=07_inside_se" in pages["alice"]
        assert "✗ failed" in pages["bob"] and "<script>alert" not in pages["bob"]
        head = pages["bob"][pages["bob"].index("<head>"):]  # whatever a notebook holds, no script runs
        assert head.index("Content-Security-Policy") < head.index("<script") and "default-src 'none'" in head
    finally:
        for folder in (classroom, shared):
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755)
            shutil.rmtree(folder)


def test_a_feedback_page_shows_a_students_meta_refresh_and_forms_as_text_and_names_never_collide(tmp_path):
    executed = tmp_path / "01_stem.ipynb"
    form = new_output("display_data", data={"text/html": "<FORM action='https://x'><input></form>", "text/plain": "f"})
    nbformat.write(new_notebook(cells=[new_markdown_cell('<meta http-equiv="refresh" content="0;url=https://x">'),
                                       exercise("x", form, exercise_id="01.1")]), executed)
    grade = grading.Grade("alice/01_stem.ipynb", "01.1", "Output size", "passed", "<b>right</b>", str(executed),
                          "alice")
    page = feedback.write_feedback("alice", [grade], tmp_path / "feedback").read_text()
    assert "&lt;meta http-equiv" in page and "&lt;FORM" in page and '<meta http-equiv="refresh"' not in page
    assert "&lt;b&gt;right" in page and "form-action 'none'" in page  # a message is text, never markup
    assert len({feedback.feedback_path(name, tmp_path) for name in ["Jo Ann", "Jo_Ann", "jo_ann", "Jo_ann"]}) == 4


def test_a_scratch_folder_starts_with_writable_copies_of_the_folders_it_preloads(tmp_path):
    shared = tmp_path / "06_experiments"
    (shared / "model=resnet50-seed=0").mkdir(parents=True)
    (shared / "model=resnet50-seed=0" / "sweep.json").write_text("{}")
    options.make_read_only(shared)
    with sandbox.Scratch(tmp_path / "06_experiments.ipynb", None, {"runs/06_experiments": shared}) as scratch:
        copy = scratch.folder / "runs" / "06_experiments" / "model=resnet50-seed=0" / "sweep.json"
        assert copy.read_text() == "{}"
        copy.write_text("changed")  # the kernel's own copy
        (copy.parent.parent / "results.csv").write_text("a sweep writes here")
    assert (shared / "model=resnet50-seed=0" / "sweep.json").read_text() == "{}"
    for path in [shared, *shared.rglob("*")]:
        path.chmod(0o755)


def test_parameters_are_given_per_lesson_and_skipped_where_a_notebook_lacks_them():
    parameters = new_code_cell("train_size = 1000\nepochs: int = 4\na, (b, c) = 1, (2, 3)")
    parameters.metadata["tags"] = ["parameters"]
    notebook = small_notebook(parameters)
    given = [Parameter.parse("05:train_size", "256"), Parameter.parse("train_size", "512"),
             Parameter.parse("lesson05_dir", "runs/x"), Parameter.parse("06:epochs", "1"),
             Parameter.parse("c", "[1, 2]")]
    assert options.parameters_cell_names(notebook) == {"train_size", "epochs", "a", "b", "c"}
    assert options.parameters_for(notebook, "05", given) == (
        {"train_size": 256, "c": [1, 2]}, ["-p lesson05_dir skipped: the notebook has no such parameter in its "
                                           "parameters cell"])
    assert options.parameters_for(notebook, "06", given)[0] == {"train_size": 512, "epochs": 1, "c": [1, 2]}
    assert options.parameters_for(small_notebook(code("x = 1")), "05", given[:1]) == (
        {}, ["-p 05:train_size skipped: the notebook has no parameters cell"])
    for name, message in [("5:train_size", "a lesson is given as two digits"), ("05:", "is not a parameter name"),
                          ("train-size", "is not a parameter name")]:
        with pytest.raises(ValueError, match=message):
            Parameter.parse(name, "1")


def test_check_refuses_bad_arguments_before_running_anything(tmp_path, capsys):
    not_grades = LESSONS[0].parent / "results" / "reference_sweep.csv"  # a CSV whose rows would be kept
    for argv, message in [(["check", str(tmp_path / "missing.ipynb")], "no such notebook"),
                          (["check", str(tmp_path)], "no notebooks in"),
                          (["check", str(LESSONS[0]), "--timeout", "0"], "--timeout must be at least 1, got 0"),
                          (["check", str(LESSONS[0]), "--csv", str(tmp_path)], "is a folder; give a file name"),
                          (["check", str(LESSONS[0]), "--out-dir", str(ROOT)],
                           "would put executed copies among the notebooks being checked"),
                          (["check", str(LESSONS[0]), "--csv", str(LESSONS[0])], "would overwrite a notebook"),
                          (["check", str(LESSONS[0]), "--csv", str(not_grades)], "is not a grades table (columns"),
                          (["check", str(LESSONS[0]), "--csv", str(LESSONS[0] / "grades.csv")], "is a file, not a"),
                          (["check", str(LESSONS[0]), "--out-dir", str(LESSONS[0])], "is a file; give a folder"),
                          (["check", str(LESSONS[0]), "-p", "09:epochs", "1"], "there is no lesson 09"),
                          (["check", str(LESSONS[0]), "-p", "05:epoch", "1"], "lesson 05's parameters are "),
                          (["check", str(LESSONS[0]), "-p", "lesson05_dir", "x"], "no lesson has a parameter")]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_student_command_reports_a_changed_copy_without_a_usage_line(tmp_path, capsys):
    assert main(["student", str(LESSONS[0]), "--out-dir", str(tmp_path)]) == 0
    (tmp_path / LESSONS[0].name).write_text("{}")
    assert main(["student", str(LESSONS[0]), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "differs from a fresh copy" in err and "usage:" not in err


# make lab

def make_lab(tmp_path, uid: str, *variables: str) -> subprocess.CompletedProcess:
    """`make lab` with ``id -u`` answering ``uid``."""
    fake_id = tmp_path / "id"
    fake_id.write_text(f"#!/bin/sh\necho {uid}\n")
    fake_id.chmod(0o755)
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", "lab", *variables], cwd=ROOT,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)


def test_make_lab_passes_allow_root_as_root_and_says_so(tmp_path):
    run = make_lab(tmp_path, "0", "JUPYTER=echo")  # a dry run: the command line make would start
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["Running as root (as in a container): passing --allow-root to JupyterLab.",
                                       "echo lab --notebook-dir=notebooks --allow-root",
                                       "lab --notebook-dir=notebooks --allow-root"]


def test_make_lab_does_not_pass_allow_root_to_other_users(tmp_path):
    run = make_lab(tmp_path, "1000", "JUPYTER=echo")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["echo lab --notebook-dir=notebooks", "lab --notebook-dir=notebooks"]



def test_ctrl_c_stops_the_notebook_being_graded_and_leaves_it_and_the_rest_to_resume(tmp_path, capfd):
    """The second notebook's kernel presses Ctrl-C on the grader (kernels as the grader's own account): it and
    the third are reported as not graded and get no row in the CSV; what it started is ended."""
    stopper = code(f"import os, signal, subprocess, time\nchild = subprocess.Popen(['sleep', '600'])\n"
                   f"open({str(tmp_path / 'child')!r}, 'w').write(str(child.pid))\n"
                   f"os.kill(os.getppid(), signal.SIGINT)\ntime.sleep(60)")
    for name, cells in [("1_first", [passes()]), ("2_stopper", [stopper, passes()]), ("3_last", [passes()])]:
        nbformat.write(small_notebook(*cells), tmp_path / f"{name}.ipynb")
    # Ctrl-C as in a terminal: a test run started in the background (`pytest &`) ignores SIGINT from birth
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        grades = grading.check_notebooks(sorted(tmp_path.glob("*.ipynb")), [], tmp_path / "checked",
                                         gradebook=tmp_path / "grades.csv", progress=lambda line: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [(Path(g.notebook).name, g.result, g.detail) for g in grades] == [
        ("1_first.ipynb", "passed", "done"),
        ("2_stopper.ipynb", "crashed", "stopped (Ctrl-C or SIGTERM) before it was graded; --resume grades it"),
        ("3_last.ipynb", "crashed", "stopped (Ctrl-C or SIGTERM) before it was graded; --resume grades it")]
    with open(tmp_path / "grades.csv", newline="") as file:
        assert [Path(row[1]).name for row in list(csv.reader(file))[1:]] == ["1_first.ipynb"]
    child = Path(f"/proc/{(tmp_path / 'child').read_text()}/stat")
    assert not child.exists() or child.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # gone, or a zombie
    assert "Traceback" not in capfd.readouterr().err
