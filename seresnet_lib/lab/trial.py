"""One run of a sweep, wherever it runs: in the sweep's process, a job's process or a Ray task.

``run_trial`` trains the run into its folder (executing the notebook through papermill, or lesson 05's
run inline), holding the folder while it does, and records its outcome there in ``sweep.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..parameters import parameters_of
from ..paths import workdir
from ..training import RunInUse, TrainConfig, atomic_write, hold, run_folders, train_run
from .grid import Trial, notebook_parameters, trains_with_config, trial_parameters
from .results import RECORD, final_accuracy, read_record, trial_metrics

_POLL_SECONDS = 1.0  # how often a run waits for the sweep that holds it


@dataclass
class TrialOutcome:
    """What became of one run: ``status`` complete, diverged, stopped or failed (``error`` says why),
    or skipped (complete before this sweep started)."""

    run: Trial
    status: str
    seconds: float = 0.0
    error: str | None = None
    metrics: dict | None = field(default=None, repr=False)
    gpus: str | None = None  # the CUDA_VISIBLE_DEVICES of the process it ran in

    def line(self, index: int, total: int) -> str:
        where = f"[{index}/{total}] {self.run.name}:"
        if self.status == "skipped":
            return f"{where} complete before, skipped"
        accuracy = final_accuracy(self.metrics)
        result = f", test acc {accuracy:.2%}" if accuracy is not None else ""
        why = f" ({self.error})" if self.error else ""
        return f"{where} {self.status}{result} in {self.seconds:.1f}s{why}"


def run_trial(notebook: Path, run_dir: Path, run: Trial, base_params: dict, threads: int | None = None,
              runner: str = "papermill", wait: bool = False, gpus: str | None = None) -> TrialOutcome:
    """Execute ``notebook`` for ``run`` into ``run_dir`` and record its outcome in ``sweep.json``.

    The lesson writes its own run inside ``run_dir`` (``run-001/``); a stopped or failed run is
    started again from the beginning. ``threads``: the CPU threads its kernel may use. ``runner``
    (recorded): papermill executes the notebook; inline, and ray for lesson 05, train its run in this
    process (``_trains_inline``). A run that another sweep holds is "busy"; with ``wait``, it is waited
    for. A run found complete once held (another sweep completed it) is skipped. ``gpus``: this
    process's CUDA_VISIBLE_DEVICES, recorded.
    """
    parameters = trial_parameters(run, base_params)
    run_dir.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            with hold(run_dir):
                if complete_before(run_dir, parameters):  # another sweep completed it since this one looked
                    return TrialOutcome(run, "skipped", read_record(run_dir)["seconds"],
                                        metrics=trial_metrics(run_dir))
                return _train_trial(notebook, run_dir, run, parameters, threads, runner, gpus)
        except RunInUse as busy:
            if not wait:
                return TrialOutcome(run, "busy", 0.0, f"{busy}")
            time.sleep(_POLL_SECONDS)


def complete_before(run_dir: Path, parameters: dict) -> bool:
    """Whether ``run_dir`` holds a complete run of ``parameters``: its record and its metrics say so."""
    record = read_record(run_dir)
    return bool(record and record["status"] == "complete" and record["parameters"] == parameters
                and (trial_metrics(run_dir) or {}).get("status") == "complete")


def _train_trial(notebook: Path, run_dir: Path, run: Trial, parameters: dict, threads: int | None,
                 runner: str, gpus: str | None = None) -> TrialOutcome:
    """``run_trial``'s work, with the run's folder held."""
    start = time.perf_counter()
    (run_dir / RECORD).unlink(missing_ok=True)  # the record of an earlier attempt goes first
    for stale in run_folders(run_dir):  # then what that attempt trained
        shutil.rmtree(stale, ignore_errors=True)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)  # inherited by the kernel papermill starts
        torch.set_num_threads(threads)  # and used by an inline run
    run_notebook = _train_inline if _trains_inline(runner, notebook) else _execute_notebook
    error = run_notebook(notebook, run_dir, {**parameters, "out_dir": str(run_dir)})
    metrics = trial_metrics(run_dir)
    status = (metrics or {}).get("status") or "failed"
    if status in ("complete", "running") and error:
        status = "failed"  # the lesson failed after training
    elif status == "running":
        status = "stopped"
    outcome = TrialOutcome(run, status, round(time.perf_counter() - start, 1), error, metrics, gpus)
    write_record(run_dir, outcome, parameters, notebook, runner, gpus)
    return outcome


def _trains_inline(runner: str, notebook: Path) -> bool:
    """Whether a run trains lesson 05's run in its own process (``train_run``) rather than execute the
    notebook: with the inline runner, and in Ray's tasks when the notebook's parameters are lesson 05's."""
    return runner == "inline" or (runner == "ray" and trains_with_config(parameters_of(notebook)))


def write_record(run_dir: Path, outcome: TrialOutcome, parameters: dict, notebook: Path, runner: str,
                 gpus: str | None, ran_here: bool = True) -> None:
    """``sweep.json``: the run's parameters and outcome; ``gpus`` its process's CUDA_VISIBLE_DEVICES (None on
    the CPU), ``device`` what the lesson trained on, as its metrics.json says, and the ``host`` and ``pid``
    of the process it ran in (None when the sweep records a run whose process died: ``ran_here`` False)."""
    record = dict(parameters=parameters, seed=outcome.run.seed, varied=outcome.run.varied, status=outcome.status,
                  error=outcome.error, seconds=outcome.seconds, notebook=notebook.name, runner=runner, gpus=gpus,
                  device=(outcome.metrics or {}).get("device"), host=socket.gethostname() if ran_here else None,
                  pid=os.getpid() if ran_here else None)
    atomic_write(run_dir / RECORD, lambda file: file.write(json.dumps(record, indent=2).encode()))


def _execute_notebook(notebook: Path, run_dir: Path, parameters: dict) -> str | None:
    """Execute ``notebook`` with ``parameters`` into ``run_dir``; its error as "Name: message", or None.

    Parameters its cell leaves out (lesson 05's advanced ones) are passed only when they differ
    from their defaults: papermill warns about each name it does not find in the cell.
    """
    import papermill  # the series extra: a reader running the lessons needs none of Jupyter's machinery
    from papermill.exceptions import PapermillExecutionError

    from ..kernel import LocalKernelManager

    cell = parameters_of(notebook)
    defaults = json.loads(json.dumps(TrainConfig().as_dict())) if trains_with_config(cell) else {}  # as JSON
    passed = {k: v for k, v in parameters.items() if k in cell or v != defaults.get(k)}
    os.environ["SERESNET_WORKDIR"] = str(workdir())  # the kernel's relative paths (data_dir) start where ours do
    try:
        papermill.execute_notebook(notebook, run_dir / notebook.name, kernel_name="python3", cwd=notebook.parent,
                                   parameters=passed, progress_bar=False, kernel_manager_class=LocalKernelManager)
    except PapermillExecutionError as failure:
        return f"{failure.ename}: {first_line(failure.evalue)}"
    except Exception as failure:  # the kernel died, the notebook could not be read or written, ...
        return f"{type(failure).__name__}: {first_line(str(failure))}"
    return None


def _train_inline(notebook: Path, run_dir: Path, parameters: dict) -> str | None:
    """Train lesson 05's run with ``parameters`` in this process, its printout in ``run_dir/log.txt``."""
    with open(run_dir / "log.txt", "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            train_run(TrainConfig(**{**notebook_parameters(notebook), **parameters}))
        except Exception as failure:
            print(f"{type(failure).__name__}: {failure}")
            return f"{type(failure).__name__}: {first_line(str(failure))}"
    return None


def first_line(text: str) -> str:
    """An error message's first line ("" for none)."""
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
