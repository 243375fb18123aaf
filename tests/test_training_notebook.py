"""Lesson 05 through papermill: a tiny run writes metrics.json; bad parameters stop at the config cell."""

import json
from pathlib import Path

import nbformat
import papermill
import pytest
import torch
from test_config import BAD_PARAMETERS

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_train_cifar10.ipynb"
TINY = dict(train_size=64, test_size=48, epochs=2, batch_size=32, lr_step=1)


def execute(tmp_path, **parameters):
    output = tmp_path / "executed.ipynb"
    papermill.execute_notebook(NOTEBOOK, output, parameters=parameters, cwd=NOTEBOOK.parent,
                               kernel_name="python3", progress_bar=False)
    return output


def test_parameters_cell_is_tagged_for_papermill():
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "TrainConfig.from_namespace(globals())" in cells[tagged[0] + 2].source  # validated next


def test_tiny_run_writes_metrics(tmp_path):
    out_dir = tmp_path / "runs"
    executed = execute(tmp_path, out_dir=str(out_dir), **TINY)
    metrics = json.loads((out_dir / "run-001" / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2]
    assert {k: metrics["parameters"][k] for k in TINY} == TINY
    assert metrics["parameters"]["dataset"] == "synthetic"
    assert 0 <= metrics["best_test_acc"] <= 1
    text = executed.read_text()
    assert "epoch   2/2" in text and "at least twice chance" in text


def test_data_dir_and_download_reach_the_dataset(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute(tmp_path, dataset="cifar10", data_dir=str(tmp_path / "no-cifar"), download=False, **TINY)
    assert error.value.ename == "DatasetUnavailable"
    assert f"CIFAR-10 is not in {tmp_path / 'no-cifar'}/ and download=False" in error.value.evalue


CASES = BAD_PARAMETERS + [(dict(epoch=3), "unknown parameter(s): epoch; the parameters are: dataset")] + (
    [] if torch.cuda.is_available() else [(dict(device="cuda"), "device='cuda' but no CUDA GPU is available here")])


@pytest.mark.parametrize("parameters, message", CASES, ids=[m.split(" ")[0] for _, m in CASES])
def test_bad_parameter_stops_the_notebook_with_its_name(tmp_path, parameters, message):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute(tmp_path, out_dir=str(tmp_path / "runs"), **parameters)
    assert error.value.ename == "ValueError"
    assert message in error.value.evalue
    assert "TrainConfig" in error.value.source  # stopped in the config cell, before any data or model work
    assert not (tmp_path / "runs").exists()
