"""Executing lessons with papermill: into runs/, or in place to record outputs."""

import nbformat
import pytest

from seresnet_lib.classroom import series
from seresnet_lib.cli import main


@pytest.fixture
def tiny_lesson(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell("import os\nprint(6 * 7, os.path.basename(os.getcwd()))")]
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = folder / "01_tiny.ipynb"
    nbformat.write(notebook, path)
    return path


def test_lessons_are_found_in_order(tmp_path):
    for name in ["02_b.ipynb", "01_a.ipynb", "notes.ipynb", "10_c.ipynb", ".01_a.recording.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in series.lessons(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]


def test_seresnet_run_writes_executed_copies_leaves_the_lesson_alone_and_says_only_that(tiny_lesson, tmp_path,
                                                                                      monkeypatch, capfd):
    before = tiny_lesson.read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(tiny_lesson), "--out-dir", "runs"]) == 0
    out, err = capfd.readouterr()  # the kernel's own output too: it writes to this process's stdout and stderr
    assert err == ""  # no kernel warnings (it runs over IPC, not unencrypted TCP)
    assert out.split("\n") == ["executed notebooks/01_tiny.ipynb -> runs/01_tiny.ipynb", "",
                               "1 executed notebooks are in runs/: open them with `make lab` or jupyter lab.", ""]
    [cell] = nbformat.read(tmp_path / "runs" / "01_tiny.ipynb", as_version=4).cells
    assert cell.outputs[0].text == "42 notebooks\n"  # ran inside the lesson's own folder
    assert tiny_lesson.read_text() == before


def test_record_executes_in_place_without_run_metadata(tiny_lesson):
    series.record_lessons([tiny_lesson])
    notebook = nbformat.read(tiny_lesson, as_version=4)
    assert notebook.cells[0].execution_count == 1
    assert notebook.cells[0].outputs[0].text.startswith("42")
    assert "papermill" not in notebook.metadata
    assert "papermill" not in notebook.cells[0].metadata


def test_a_failing_lesson_is_not_overwritten(tiny_lesson):
    notebook = nbformat.read(tiny_lesson, as_version=4)
    notebook.cells[0].source = "raise RuntimeError('broken lesson')"
    nbformat.write(notebook, tiny_lesson)
    before = tiny_lesson.read_text()
    with pytest.raises(Exception, match="broken lesson"):
        series.record_lessons([tiny_lesson])
    assert tiny_lesson.read_text() == before
    assert list(tiny_lesson.parent.iterdir()) == [tiny_lesson]


def test_a_kernel_that_does_not_exit_when_asked_is_ended_soon(tiny_lesson):
    """ipykernel now and then hangs in its shutdown; here an exit handler keeps the kernel 2 s more. It is sent
    SIGTERM after half of SHUTDOWN_SECONDS, not after jupyter_client's 2.5 s, so the handler never ends."""
    ended = tiny_lesson.parent / "exit-handler-ended"
    notebook = nbformat.read(tiny_lesson, as_version=4)
    notebook.cells[0].source = ("import atexit, pathlib, time\n"
                                f"atexit.register(lambda: (time.sleep(2), pathlib.Path({str(ended)!r}).touch()))")
    nbformat.write(notebook, tiny_lesson)
    series.record_lessons([tiny_lesson])
    assert not ended.exists()


def test_no_lessons_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lesson notebooks"):
        series.lessons(tmp_path)


def test_cli_rejects_a_missing_notebook(capsys):
    with pytest.raises(SystemExit):
        main(["run", "notebooks/99_missing.ipynb"])
    assert "no such notebook: notebooks/99_missing.ipynb" in capsys.readouterr().err
