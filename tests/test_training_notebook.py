"""Lesson 05 through papermill: what only a papermill run can show.

Every bad value is a unit test of TrainConfig (test_config.py); here a misspelt name, which only
papermill can pass, shows that the notebook stops in its config cell, before any data or model work
(and that an error in a cell makes papermill fail). test_rerun.py changes parameters in a live kernel:
an out_dir that is a file, a learning rate that makes the run diverge, CIFAR-10 offline. A whole tiny run, re-run cell
by cell, is in test_rerun.py; the budget of the default parameters is in test_budget.py.
"""

import ast
import inspect
from pathlib import Path

import nbformat
import papermill
import pytest

from seresnet_lib.parameters import top_level_assignments
from seresnet_lib.training import train_one_epoch
from seresnet_lib.training.config import FOR_LONGER_RUNS, TrainConfig

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_train_cifar10.ipynb"
CELLS = nbformat.read(NOTEBOOK, as_version=4).cells


def execute(tmp_path, **parameters):
    output = tmp_path / "executed.ipynb"
    papermill.execute_notebook(NOTEBOOK, output, parameters=parameters, cwd=NOTEBOOK.parent,
                               kernel_name="python3", progress_bar=False)
    return output


def test_parameters_cell_is_tagged_for_papermill_and_sets_every_parameter_the_lesson_teaches():
    tagged = [i for i, cell in enumerate(CELLS) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "TrainConfig.from_namespace(globals())" in CELLS[tagged[0] + 2].source  # validated next
    assigned = [target.id for node in ast.parse(CELLS[tagged[0]].source).body for target in node.targets]
    assert assigned == [name for name in TrainConfig().as_dict() if name not in FOR_LONGER_RUNS]


def test_no_other_cell_assigns_a_parameter_name():
    """A cell that assigns a parameter counts as a parameters cell when the config is made."""
    parameters = set(TrainConfig().as_dict())
    for cell in CELLS:
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            assert not top_level_assignments(cell.source) & parameters, cell.source[:80]


def test_the_lesson_shows_the_librarys_training_loop_verbatim():
    [cell] = [cell for cell in CELLS if cell.source.startswith("def train_one_epoch(")]
    assert cell.source == inspect.getsource(train_one_epoch).strip()
    source = cell.source
    for step in ("model(images)", "cross_entropy", "zero_grad", "backward()", "step()", "tally.add"):
        assert step in source


def test_a_misspelt_or_hidden_parameter_stops_the_notebook_in_its_config_cell(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute(tmp_path, out_dir=str(tmp_path / "runs"), epoch=3, _lr=0.1)
    assert error.value.ename == "ValueError"
    assert "unknown parameter(s): _lr, epoch; the parameters are: dataset" in error.value.evalue
    assert "TrainConfig" in error.value.source  # stopped in the config cell, before any data or model work
    assert not (tmp_path / "runs").exists()
