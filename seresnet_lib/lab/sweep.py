"""Sweeps: run a lesson once per combination of a grid's parameters and seed.

    seresnet sweep notebooks/params/sweep_ablations.yaml
    seresnet sweep notebooks/params/sweep_ablations.yaml --seeds 0 1 2 3 4 --jobs 2

Every run executes the notebook through papermill into its own folder,
``out_dir/<parameters>-seed=<seed>/``, holding the executed notebook, ``sweep.json``
(parameters, status, error, seconds) and the lesson's own run (``run-001/metrics.json``).
A run whose status is complete is skipped, so calling a sweep again resumes it.

With several GPUs, each job's process gets GPUs of its own (``gpus_per_run``, one by default),
through ``CUDA_VISIBLE_DEVICES`` set before it uses CUDA; ``sweep.json`` records them and the device
the run trained on. Without a GPU the jobs share the CPU's threads.

Lesson 05's runs can also train inline (``runner="inline"``): through ``train_run``, in
this process (or each job's), the same data, model and ``fit`` as the executed lesson, without
a kernel start, imports and figures per run, which is most of a short run's time on a CPU.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from multiprocessing.connection import wait as connection_wait
from pathlib import Path

import torch

from ..parameters import parameters_of
from ..paths import display, resolve, workdir
from ..processes import die_with_parent
from ..training import RunInUse, TrainConfig, atomic_write, check_writable_folder, hold, run_folders, train_run
from .grid import SET_BY_SWEEP, Trial, check_grid, notebook_parameters, trains_with_config, trial_parameters
from .results import RECORD, final_accuracy, read_record, trial_metrics

RUNNERS = ("papermill", "inline")
_POLL_SECONDS = 1.0  # how often a sweep looks whether a run another sweep holds is free


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


def sweep(notebook: str | Path, grid: dict | list[dict], out_dir: str | Path, base_params: dict | None = None,
          seeds: Iterable[int] = (0,), jobs: int = 1, runner: str = "papermill", progress=print,
          gpus_per_run: int = 1) -> list[TrialOutcome]:
    """Run ``notebook`` once per combination of ``grid`` and seed; the outcome of each run, in grid order.

    ``base_params`` are shared by every run. Runs already complete in ``out_dir`` are skipped;
    a run that fails or diverges is recorded (its error in ``sweep.json``) and the others go on.
    ``jobs`` runs that many at once, each in its own process with its share of the CPU threads; a
    process that dies fails only the run it held, and the processes die with this one (Linux). With
    GPUs visible, each process gets ``gpus_per_run`` of them, none shared (``gpu_groups``). A run
    that another sweep is training is waited for after the others, and skipped if it completed.
    ``runner``: "papermill" executes the notebook per run; "inline" trains lesson 05's runs in this
    process (``train_run``, the numbers of the executed lesson) without a notebook per run.
    ``progress`` is called with one line per finished run. The grid is checked before any run starts.
    """
    notebook, out_dir, base_params = Path(notebook).resolve(), resolve(out_dir), dict(base_params or {})
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {display(notebook)} to sweep over")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    groups = gpu_groups(visible_gpus(), jobs, gpus_per_run)  # before any run: too few GPUs is an error
    if runner not in RUNNERS:
        raise ValueError(f"runner={runner!r} is not allowed; choose one of {', '.join(map(repr, RUNNERS))}")
    if runner == "inline" and not trains_with_config(parameters_of(notebook)):
        raise ValueError(f"runner='inline' trains lesson 05's runs; {notebook.name}'s parameters are not "
                         f"lesson 05's: use runner='papermill'")
    runs = check_grid(grid, base_params, list(seeds), notebook)
    defaults = {k: v for k, v in notebook_parameters(notebook).items() if k not in SET_BY_SWEEP}
    base_params = {**defaults, **base_params}  # each run records every parameter it ran with
    check_writable_folder(out_dir, "the sweep's folder")
    outcomes: dict[int, TrialOutcome] = {}
    todo = []
    for index, run in enumerate(runs):
        run_dir = out_dir / run.name
        if _complete_before(run_dir, trial_parameters(run, base_params)):
            outcomes[index] = TrialOutcome(run, "skipped", read_record(run_dir)["seconds"],
                                           metrics=trial_metrics(run_dir))
            progress(outcomes[index].line(index + 1, len(runs)))
        else:
            todo.append(index)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tasks = {i: (notebook, out_dir / runs[i].name, runs[i], base_params, threads, runner) for i in todo}

    def say(index: int, line: str) -> None:
        progress(f"[{index + 1}/{len(runs)}] {line}")

    for index, outcome in _run_tasks(tasks, groups, say):
        if outcome.status == "failed" and not read_record(out_dir / outcome.run.name):  # its worker died
            _write_record(out_dir / outcome.run.name, outcome, trial_parameters(outcome.run, base_params), notebook,
                          runner, outcome.gpus)
        outcomes[index] = outcome
        progress(outcome.line(index + 1, len(runs)))
    return [outcomes[i] for i in range(len(runs))]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (0 .. n-1 when it is not set);
    [] without CUDA, whatever the variable says."""
    count = torch.cuda.device_count()  # counts the GPUs CUDA_VISIBLE_DEVICES lets through, up to a bad entry
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [str(i) for i in range(count)] if named is None else [e.strip() for e in named.split(",")][:count]


def gpu_groups(gpus: list[str], jobs: int, per_run: int) -> list[str | None]:
    """What ``CUDA_VISIBLE_DEVICES`` is for each of ``jobs`` processes: ``per_run`` of ``gpus`` each, none
    shared; None for each (the CPU) when there are no GPUs."""
    if isinstance(per_run, bool) or not isinstance(per_run, int) or per_run < 1:
        raise ValueError(f"gpus_per_run must be a whole number >= 1, got {per_run!r}")
    if not gpus:
        return [None] * jobs
    if jobs * per_run > len(gpus):
        raise ValueError(f"{jobs} job(s) x {per_run} GPU(s) per run need {jobs * per_run} GPUs, and "
                         f"{len(gpus)} are visible ({','.join(gpus)}); use --jobs {max(1, len(gpus) // per_run)}"
                         + (" or fewer GPUs per run" if per_run > 1 else ""))
    return [",".join(gpus[i * per_run:(i + 1) * per_run]) for i in range(jobs)]


def _run_tasks(tasks: dict[int, tuple], groups: list[str | None], say) -> Iterator[tuple[int, TrialOutcome]]:
    """Each task's outcome as it finishes, one per group of GPUs (``gpu_groups``) at a time; a run that
    another sweep is training is put last and waited for (``say`` tells which)."""
    queue = deque((index, False) for index in tasks)
    jobs = len(groups)
    run_here = (lambda *task, wait: _run_trial(*task, wait=wait, gpus=groups[0])) if jobs == 1 else None
    workers = [] if run_here else [_Worker(group) for group in groups[:len(queue)]]
    try:
        while queue or any(worker.index is not None for worker in workers):
            if run_here:
                index, wait = queue.popleft()
                finished = [(index, wait, run_here(*tasks[index], wait=wait))]
            else:
                for worker in workers:
                    if worker.index is None and queue:
                        worker.start(*queue.popleft(), tasks)
                finished = _Worker.finished(workers)
            for index, waited, outcome in finished:
                if outcome.status == "busy" and not waited:
                    say(index, f"{outcome.run.name}: another sweep is training it; waiting for it after the others")
                    queue.append((index, True))
                else:
                    yield index, outcome
            workers = [worker for worker in workers if worker.alive() or worker.index is not None]
            free = [group for group in groups if group not in {worker.gpus for worker in workers} or group is None]
            workers += [_Worker(group) for group in free[:min(jobs - len(workers), len(queue))] if not run_here]
    finally:
        for worker in workers:
            worker.stop()


class _Worker:
    """A process that runs one sweep task at a time, and dies with the sweep."""

    def __init__(self, gpus: str | None = None):
        context = multiprocessing.get_context("spawn")  # a fork of a process whose OpenMP threads ran can hang
        self.connection, theirs = context.Pipe()
        self.gpus = gpus  # its CUDA_VISIBLE_DEVICES, or None on the CPU
        self.process = context.Process(target=_serve, args=(theirs, gpus), daemon=True)
        self.process.start()
        theirs.close()
        self.index: int | None = None
        self.wait, self.run = False, None

    def start(self, index: int, wait: bool, tasks: dict[int, tuple]) -> None:
        self.index, self.wait, self.run = index, wait, tasks[index][2]
        self.connection.send((tasks[index], wait))

    def alive(self) -> bool:
        return self.process.is_alive()

    @staticmethod
    def finished(workers: list[_Worker]) -> list[tuple[int, bool, TrialOutcome]]:
        """Wait until a working worker answers or dies; what each of those did. A worker that died
        (killed, out of memory) is a failed run, not a failed sweep."""
        working = [worker for worker in workers if worker.index is not None]
        connection_wait([handle for w in working for handle in (w.connection, w.process.sentinel)])
        finished = []
        for worker in working:
            try:
                outcome = worker.connection.recv() if worker.connection.poll() else None
            except (EOFError, OSError):
                outcome = None
            if outcome is None and worker.alive():
                continue
            if outcome is None:
                worker.process.join()
                code = worker.process.exitcode
                why = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                outcome = TrialOutcome(worker.run, "failed", 0.0, f"its worker process died ({why})",
                                       gpus=worker.gpus)
            finished.append((worker.index, worker.wait, outcome))
            worker.index = None
        return finished

    def stop(self) -> None:
        self.connection.close()  # an idle worker then returns
        self.process.join(timeout=5 if self.index is None else 0)
        if self.alive():
            self.process.kill()
            self.process.join()


def _serve(connection, gpus: str | None) -> None:
    """A worker's life: run the tasks it is sent until the sweep ends, on ``gpus`` (or the CPU)."""
    die_with_parent()
    if gpus is not None:  # before anything here uses CUDA; papermill's kernels inherit it
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    while True:
        try:
            arguments, wait = connection.recv()
        except EOFError:  # the sweep is over
            return
        connection.send(_run_trial(*arguments, wait=wait, gpus=gpus))


def _run_trial(notebook: Path, run_dir: Path, run: Trial, base_params: dict, threads: int | None = None,
               runner: str = "papermill", wait: bool = False, gpus: str | None = None) -> TrialOutcome:
    """Execute ``notebook`` for ``run`` into ``run_dir`` and record its outcome in ``sweep.json``.

    The lesson writes its own run inside ``run_dir`` (``run-001/``); a stopped or failed run is
    started again from the beginning. ``threads``: the CPU threads its kernel may use. A run that
    another sweep holds is "busy"; with ``wait``, it is waited for. A run found complete once held
    (another sweep completed it) is skipped. ``gpus``: this process's CUDA_VISIBLE_DEVICES, recorded.
    """
    parameters = trial_parameters(run, base_params)
    run_dir.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            with hold(run_dir):
                if _complete_before(run_dir, parameters):  # another sweep completed it since this one looked
                    return TrialOutcome(run, "skipped", read_record(run_dir)["seconds"],
                                        metrics=trial_metrics(run_dir))
                return _train_trial(notebook, run_dir, run, parameters, threads, runner, gpus)
        except RunInUse as busy:
            if not wait:
                return TrialOutcome(run, "busy", 0.0, f"{busy}")
            time.sleep(_POLL_SECONDS)


def _complete_before(run_dir: Path, parameters: dict) -> bool:
    """Whether ``run_dir`` holds a complete run of ``parameters``: its record and its metrics say so."""
    record = read_record(run_dir)
    return bool(record and record["status"] == "complete" and record["parameters"] == parameters
                and (trial_metrics(run_dir) or {}).get("status") == "complete")


def _train_trial(notebook: Path, run_dir: Path, run: Trial, parameters: dict, threads: int | None,
                 runner: str, gpus: str | None = None) -> TrialOutcome:
    """``_run_trial``'s work, with the run's folder held."""
    start = time.perf_counter()
    (run_dir / RECORD).unlink(missing_ok=True)  # the record of an earlier attempt goes first
    for stale in run_folders(run_dir):  # then what that attempt trained
        shutil.rmtree(stale, ignore_errors=True)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)  # inherited by the kernel papermill starts
        torch.set_num_threads(threads)  # and used by an inline run
    run_notebook = _train_inline if runner == "inline" else _execute_notebook
    error = run_notebook(notebook, run_dir, {**parameters, "out_dir": str(run_dir)})
    metrics = trial_metrics(run_dir)
    status = (metrics or {}).get("status") or "failed"
    if status in ("complete", "running") and error:
        status = "failed"  # the lesson failed after training
    elif status == "running":
        status = "stopped"
    outcome = TrialOutcome(run, status, round(time.perf_counter() - start, 1), error, metrics, gpus)
    _write_record(run_dir, outcome, parameters, notebook, runner, gpus)
    return outcome


def _write_record(run_dir: Path, outcome: TrialOutcome, parameters: dict, notebook: Path, runner: str,
                  gpus: str | None) -> None:
    """``sweep.json``: the run's parameters and outcome; ``gpus`` its process's CUDA_VISIBLE_DEVICES (None on
    the CPU) and ``device`` what the lesson trained on, as its metrics.json says."""
    record = dict(parameters=parameters, seed=outcome.run.seed, varied=outcome.run.varied, status=outcome.status,
                  error=outcome.error, seconds=outcome.seconds, notebook=notebook.name, runner=runner, gpus=gpus,
                  device=(outcome.metrics or {}).get("device"))
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
        return f"{failure.ename}: {_first_line(failure.evalue)}"
    except Exception as failure:  # the kernel died, the notebook could not be read or written, ...
        return f"{type(failure).__name__}: {_first_line(str(failure))}"
    return None


def _train_inline(notebook: Path, run_dir: Path, parameters: dict) -> str | None:
    """Train lesson 05's run with ``parameters`` in this process, its printout in ``run_dir/log.txt``."""
    with open(run_dir / "log.txt", "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            train_run(TrainConfig(**{**notebook_parameters(notebook), **parameters}))
        except Exception as failure:
            print(f"{type(failure).__name__}: {failure}")
            return f"{type(failure).__name__}: {_first_line(str(failure))}"
    return None


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
