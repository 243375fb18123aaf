"""Every lesson survives what readers do in JupyterLab: running it, then running its cells again.

Each lesson's student copy (`make student`: no solutions, no outputs) runs top to bottom in one
kernel, with its exercises unanswered, and grades as all "not done"; with the worked solutions
run in the exercise cells it grades as all passed. Then its parameters cell (papermill's injected
cell with it) and the config cell, or in a lesson without parameters its first code cell, run
again with every cell after them, in the same kernel. Each re-run cell must succeed and print
what it printed the first time: the same machine and the same seeds give the same digits, so
even the outputs that nbval leaves uncompared (they differ between machines) are compared here.
Only cells that measure time or run a sweep are left out. Lesson 05 runs with tiny parameters;
lesson 06's sweep writes where nbval's run of it finds its runs complete. Two lessons are checked at a
time, each kernel on one thread: lesson 05, then lesson 07 (which looks inside the run 05 made), beside
lessons 01-04; lesson 06's sweep trains alone, after them.
"""

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from test_notebooks import solutions

from seresnet_lib.classroom import copies, grading
from seresnet_lib.classroom.checks import CHECK_MIME
from seresnet_lib.classroom.series import lessons
from seresnet_lib.kernel import LocalKernelManager
from seresnet_lib.lab import grid
from seresnet_lib.lab.reference import load_reference, record_reference
from seresnet_lib.model.excitations import PAPER_BLOCKS, class_spread
from seresnet_lib.paths import workdir
from seresnet_lib.training import evaluate, load_trained, run_data, train_or_load, train_run
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.folders import run_folders

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY_TRAINING = dict(train_size=64, test_size=32, epochs=2, batch_size=32, lr_step=1, out_dir="runs/rerun",
                     device="cpu")  # on a GPU, cuDNN may differ in the last digits from run to run
PARAMETERS = {"05_train_cifar10.ipynb": TINY_TRAINING,
              "07_inside_se.ipynb": {"run": TINY_TRAINING["out_dir"]}}  # the newest run lesson 05 made here
# Cells run out of order after the re-run, (cell that starts with, cell that starts with): each
# must still print what it printed the first time. Lesson 01 once compared a rebuilt stem in
# training mode with the library's in evaluation mode.
OUT_OF_ORDER = {"01_stem.ipynb": [("class HandStem", "library_stem = Stem")]}
ORDER = lessons(NOTEBOOKS)
# Checked two at a time, a lane each: lesson 07 looks inside the tiny run lesson 05 makes, so it follows 05;
# the two lanes take about as long
LANES = [[path for path in ORDER if path.name[:2] in lane] for lane in (("05", "07"), ("04", "03", "02", "01"))]


def text_of(cell) -> str:
    """A code cell's printed and displayed text, with run folder names and times masked."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    text = re.sub(r"deleted the checkpoint\(s\) of .*\n", "", "".join(parts))  # said only when re-run
    return re.sub(r"time +\d+(\.\d+)?s", "time Ts", re.sub(r"run-\d{3,}", "run-NNN", text))


def measures_time(cell) -> bool:
    """Cells that time something, and sweeps (a run is "complete" the first time, "skipped" the next)."""
    return "perf_counter" in cell.source or "sweep(" in cell.source


def first_rerun_cell(notebook) -> int:
    """The parameters cell, or the first code cell of a lesson without one."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            return index
    return next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")


def starting_with(notebook, prefix: str) -> int:
    [index] = [i for i, cell in enumerate(notebook.cells)
               if cell.cell_type == "code" and cell.source.startswith(prefix)]
    return index


@pytest.fixture(scope="module")
def lanes_checked(request) -> dict[str, BaseException | None]:
    """The lessons of LANES this session tests, checked two at a time, a lane in each thread and each lesson in a
    kernel of one thread (two kernels of several threads each on a machine's few cores wait on each other), so
    that two lessons at once share the machine's cores. Each lesson's failure, or None."""
    selected = {item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_lesson_cells_can_be_run_again"}
    failures = {}

    def check_lane(lane: list[Path]) -> None:
        for path in lane:
            try:
                check_lesson(path, threads=1)
                failures[path.name] = None
            except BaseException as failure:  # reported by the lesson's own test
                failures[path.name] = failure

    with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
        list(pool.map(check_lane, [[path for path in lane if path in selected] for lane in LANES]))
    return failures


@pytest.mark.parametrize("path", ORDER, ids=lambda p: p.name)
def test_lesson_cells_can_be_run_again(path, request):
    if any(path in lane for lane in LANES):
        failure = request.getfixturevalue("lanes_checked")[path.name]
        if failure is not None:
            raise failure
    else:
        check_lesson(path)


def check_lesson(path: Path, threads: int | None = None) -> None:
    """The checks of the module's docstring, for one lesson; ``threads``: its kernel's (default: all), and this
    process's where it trains what lesson 05 trained (the same threads give the same digits)."""
    notebook = load_notebook_node(str(path))  # as papermill reads it
    if path.name in PARAMETERS:
        notebook = parameterize_notebook(notebook, PARAMETERS[path.name])
    notebook = copies.student_copy(notebook)
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    client = NotebookClient(notebook, kernel_name="python3", timeout=600, kernel_manager_class=LocalKernelManager,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    environment = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    with client.setup_kernel(env=environment):
        for index in code:
            client.execute_cell(notebook.cells[index], index)
        first_run = {index: text_of(notebook.cells[index]) for index in code}
        for index in [i for i in code if i >= first_rerun_cell(notebook)]:
            cell = notebook.cells[index]
            client.execute_cell(cell, index)
            if not measures_time(cell):
                assert text_of(cell) == first_run[index], f"cell {index} printed something else when re-run:\n" \
                                                          f"{cell.source[:200]}"
        for prefixes in OUT_OF_ORDER.get(path.name, []):
            for index in [starting_with(notebook, prefix) for prefix in prefixes]:
                client.execute_cell(notebook.cells[index], index)
                assert text_of(notebook.cells[index]) == first_run[index], notebook.cells[index].source[:200]
        if path.name == "05_train_cifar10.ipynb":
            change_parameters_and_rerun(client, notebook)
        if path.name == "07_inside_se.ipynb":
            a_hook_that_raises_comes_off(client, notebook)
        grade_unanswered_then_solved(client, notebook, path)
    if path.name == "05_train_cifar10.ipynb":
        runs = sorted((workdir() / TINY_TRAINING["out_dir"]).iterdir())
        assert [run.name for run in runs] == ["run-001", "run-002"]  # the re-run started a new run
        assert [(run / "checkpoint.pt").exists() for run in runs] == [False, True]  # keep_checkpoints = 1
        first, second = (json.loads((run / "metrics.json").read_text()) for run in runs)
        assert [row["epoch"] for row in first["epochs"]] == [1, 2]
        assert {k: first["parameters"][k] for k in TINY_TRAINING} == TINY_TRAINING
        drop_seconds = [{k: v for k, v in row.items() if k != "seconds"} for row in first["epochs"]]
        assert drop_seconds == [{k: v for k, v in row.items() if k != "seconds"} for row in second["epochs"]]
        own_threads = torch.get_num_threads()
        torch.set_num_threads(threads or own_threads)
        try:
            trains_what_the_lesson_trains(path, runs[1], drop_seconds)
        finally:
            torch.set_num_threads(own_threads)


def trains_what_the_lesson_trains(lesson: Path, run_dir: Path, epochs: list[dict]):
    """train_run (sweeps' inline runs) gives the lesson's numbers; load_trained gives back its model, and
    train_or_load (lesson 07) finds it rather than train again; reference.record measures it as lesson 07 does."""
    lesson_run = TrainConfig(**{**grid.notebook_parameters(lesson), **TINY_TRAINING})
    config = TrainConfig(**{**lesson_run.as_dict(), "keep_checkpoints": 0,
                            "out_dir": TINY_TRAINING["out_dir"] + "-inline"})
    history = train_run(config)
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs] == epochs
    model, loaded, found = load_trained(TINY_TRAINING["out_dir"])
    assert found == run_dir and loaded.train_size == TINY_TRAINING["train_size"] and not model.training
    _, accuracy = evaluate(model, run_data(loaded).test_loader)
    assert accuracy == epochs[-1]["test_acc"]
    with pytest.raises(FileNotFoundError, match=r"run='run-009': .*run-009 does not exist"):
        load_trained(TINY_TRAINING["out_dir"], "run-009")
    _, _, again = train_or_load(lesson_run)  # a complete run of these parameters is there: nothing is trained
    assert again == run_dir and run_folders(run_dir.parent) == [run_dir.parent / "run-001", run_dir]
    newer = run_dir.parent / "run-009"  # a newer complete run, of another learning rate
    newer.mkdir()
    os.link(run_dir / "checkpoint.pt", newer / "checkpoint.pt")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (newer / "metrics.json").write_text(json.dumps({**metrics, "parameters": {**metrics["parameters"], "lr": 0.5}}))
    assert train_or_load(lesson_run)[2] == run_dir  # not the newer run: it was trained otherwise
    shutil.rmtree(newer)
    with pytest.raises(ValueError, match="keep_checkpoints=0 writes no checkpoint"):
        train_or_load(config)
    assert load_trained(run_dir)[2] == run_dir  # a run's own folder names that run
    halfway = workdir() / "halfway" / "run-001"
    halfway.mkdir(parents=True)
    (halfway / "metrics.json").write_text(json.dumps({"status": "running", "epochs": []}))
    with pytest.raises(ValueError, match="is not a complete run of fit.. .its metrics.json says running"):
        record_reference(halfway, workdir() / "reference")
    recorded = record_reference(run_dir, workdir() / "reference", step_rate=[100.0], made_with="test")
    assert recorded.accuracy == accuracy and [row["stage"] for row in recorded.switch_off] == [1, 2, 3, 4]
    assert {name: tuple(means.shape) for name, means in recorded.class_means.items()} == {
        "stage1.3": (10, 256), "stage2.4": (10, 512), "stage3.6": (10, 1024), "stage4.1": (10, 2048),
        "stage4.2": (10, 2048), "stage4.3": (10, 2048)}
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in recorded.epochs] == epochs
    assert recorded.summary["recorded"]["step_rate"] == [100.0] and recorded.summary["test_images"] == 32
    spreads = recorded.summary
    assert spreads["class_spread"]["stage1.3"] == pytest.approx(class_spread(recorded.class_means["stage1.3"]))
    assert set(spreads["untrained_class_spread"]) == set(spreads["shuffled_class_spread"]) == set(PAPER_BLOCKS)
    assert load_reference(workdir() / "reference").summary == recorded.summary
    assert {"owner", "host"} <= set(metrics) and not {"owner", "host"} & set(recorded.metrics)  # no names committed


def grade_unanswered_then_solved(client, notebook, lesson: Path):
    """As handed out, every exercise grades as not done, and its check says so (a "find the bug" check names no
    bug yet); with its worked solution run, as passed."""
    exercises = grading.lesson_exercises([lesson])
    positions = copies.exercise_cells(notebook)
    unanswered = grading.grade(notebook, lesson.name, exercises)
    assert {o.result for o in unanswered} == {grading.NOT_DONE}
    assert [o.detail for o in unanswered if not o.detail.startswith("Not done yet: ")] == []
    for index, code in zip(positions, solutions(lesson), strict=True):
        notebook.cells[index].source = code
        client.execute_cell(notebook.cells[index], index)
    outcomes = grading.grade(notebook, lesson.name, exercises)
    assert [(o.exercise, o.result) for o in outcomes] == [(notebook.cells[i].metadata["exercise"]["id"],
                                                          grading.PASSED) for i in positions]


def a_hook_that_raises_comes_off(client, notebook):
    """Lesson 07: a hook of exercise 07.1 that raises comes off with the error (the cell's finally), so the cell
    fixed and run again passes; a hook left behind once kept raising until the kernel restarted."""
    [handed_out] = [notebook.cells[i].source for i in copies.exercise_cells(notebook)
                    if notebook.cells[i].metadata["exercise"]["id"] == "07.1"]
    blank = "    ...  # your code: store the excitations, flattened to N x C, in stored"
    assert blank in handed_out
    slip = handed_out.replace(blank, "    raise ValueError('a slip in the hook')")
    assert run_cell(client, notebook, slip) == "ValueError: a slip in the hook"
    assert run_cell(client, notebook, "assert hook_count(model) == 0, hook_count(model)") == ""
    fixed = new_code_cell(handed_out.replace(blank, "    stored.append(output.flatten(1))")
                          .replace("answer = None ", "answer = stored[0] "))
    notebook.cells.append(fixed)
    try:
        client.execute_cell(fixed, len(notebook.cells) - 1)
    finally:
        notebook.cells.pop()
    [check] = [output.data[CHECK_MIME] for output in fixed.outputs if CHECK_MIME in output.get("data", {})]
    assert check["passed"] and check["message"].startswith("Right: (8, 2048) weights"), check["message"]


def run_cell(client, notebook, source: str) -> str:
    """Run ``source`` as a new cell (as a reader would type it); its error as "Name: message", or ""."""
    cell = new_code_cell(source)
    notebook.cells.append(cell)  # nbclient stores the executed cell at its index
    try:
        client.execute_cell(cell, len(notebook.cells) - 1)
    except CellExecutionError as error:
        return f"{error.ename}: {error.evalue}"
    finally:
        notebook.cells.pop()
    return ""


def change_parameters_and_rerun(client, notebook):
    """After the lesson, a reader edits parameters and runs the cells again: an out_dir that is a file stops
    the config cell; a learning rate far too high stops training with TrainingDiverged (under papermill, a
    failed run); CIFAR-10 without a network stops the data cell, with data_dir in the message."""
    config_cell = notebook.cells[starting_with(notebook, "config = TrainConfig.from_namespace")].source
    data_cell = notebook.cells[starting_with(notebook, "train_set, test_set = load_dataset(")].source
    a_file = workdir() / "not-a-folder"
    a_file.write_text("")
    assert run_cell(client, notebook, f"out_dir = {str(a_file)!r}") == ""
    error = run_cell(client, notebook, config_cell)
    assert error.startswith("ValueError: out_dir") and "is a file, not a folder" in error
    assert run_cell(client, notebook, f"out_dir = {TINY_TRAINING['out_dir']!r}") == ""
    training_cell = notebook.cells[starting_with(notebook, "trained = copy.deepcopy(network)")].source
    assert run_cell(client, notebook, "lr = 1e6") == ""  # far too high
    assert run_cell(client, notebook, config_cell) == ""
    error = run_cell(client, notebook, training_cell)  # an error, so papermill would exit non-zero
    assert error.startswith("TrainingDiverged: training diverged in epoch 1") and "lr=1e+06" in error
    diverged = sorted((workdir() / TINY_TRAINING["out_dir"]).iterdir())[-1]
    metrics = json.loads((diverged / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 1
    shutil.rmtree(diverged)
    missing = workdir() / "no-cifar"
    assert run_cell(client, notebook, f"dataset, data_dir, download, lr = 'cifar10', {str(missing)!r}, False, 0.01") == ""
    assert run_cell(client, notebook, config_cell) == ""
    error = run_cell(client, notebook, data_cell)  # data_dir and download reach the dataset
    assert error.startswith(f"DatasetUnavailable: CIFAR-10 is not in {missing}/ and download=False")
