"""Sweeps: run a lesson once per combination of a grid's parameters and seed.

    seresnet sweep notebooks/params/sweep_ablations.yaml
    seresnet sweep notebooks/params/sweep_ablations.yaml --seeds 0 1 2 3 4 --jobs 2
    seresnet sweep notebooks/params/sweep_ablations.yaml --runner ray --address auto

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
``runner="ray"`` makes each run a task of a Ray cluster, on this machine or many (``cluster``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait as connection_wait
from pathlib import Path

import torch

from ..parameters import parameters_of
from ..paths import display, resolve
from ..processes import die_with_parent
from ..training import check_writable_folder
from .cluster import check_ray, run_on_ray
from .grid import SET_BY_SWEEP, check_grid, notebook_parameters, trains_with_config, trial_parameters
from .results import read_record, trial_metrics
from .trial import TrialOutcome, complete_before, run_trial, write_record

RUNNERS = ("papermill", "inline", "ray")


def sweep(notebook: str | Path, grid: dict | list[dict], out_dir: str | Path, base_params: dict | None = None,
          seeds: Iterable[int] = (0,), jobs: int = 1, runner: str = "papermill", progress=print,
          gpus_per_run: int = 1, cpus_per_run: int = 1, address: str | None = None,
          node_dir: str | Path | None = None) -> list[TrialOutcome]:
    """Run ``notebook`` once per combination of ``grid`` and seed; the outcome of each run, in grid order.

    ``base_params`` are shared by every run. Runs already complete in ``out_dir`` are skipped;
    a run that fails or diverges is recorded (its error in ``sweep.json``) and the others go on.
    ``jobs`` runs that many at once, each in its own process with its share of the CPU threads; a
    process that dies fails only the run it held, and the processes die with this one (Linux). With
    GPUs visible, each process gets ``gpus_per_run`` of them, none shared (``gpu_groups``). A run
    that another sweep is training is waited for after the others, and skipped if it completed.
    ``runner``: "papermill" executes the notebook per run; "inline" trains lesson 05's runs in this
    process (``train_run``, the numbers of the executed lesson) without a notebook per run; "ray" makes
    each run a Ray task asking for ``cpus_per_run`` CPUs (its threads) and, where the cluster has GPUs,
    ``gpus_per_run`` GPUs, on the cluster at ``address`` or a local one, writing into ``node_dir`` on its
    node (default: ``out_dir``); the records and metrics come back into ``out_dir`` (``cluster``).
    ``progress`` is called with one line per finished run. The grid is checked before any run starts.
    """
    notebook, out_dir, base_params = Path(notebook).resolve(), resolve(out_dir), dict(base_params or {})
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {display(notebook)} to sweep over")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if runner not in RUNNERS:
        raise ValueError(f"runner={runner!r} is not allowed; choose one of {', '.join(map(repr, RUNNERS))}")
    _check_runner_options(runner, jobs, cpus_per_run, address, node_dir)
    # before any run: too few GPUs is an error (a Ray cluster's are counted once it is joined)
    groups = gpu_groups([] if runner == "ray" else visible_gpus(), jobs, gpus_per_run)
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
        if complete_before(run_dir, trial_parameters(run, base_params)):
            outcomes[index] = TrialOutcome(run, "skipped", read_record(run_dir)["seconds"],
                                           metrics=trial_metrics(run_dir))
            progress(outcomes[index].line(index + 1, len(runs)))
        else:
            todo.append(index)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def say(index: int, line: str) -> None:
        progress(f"[{index + 1}/{len(runs)}] {line}")

    if runner == "ray":
        node_dir = out_dir if node_dir is None else resolve(node_dir)
        tasks = {i: (notebook, node_dir / runs[i].name, runs[i], base_params, cpus_per_run, runner) for i in todo}
        finished = run_on_ray(tasks, {i: out_dir / runs[i].name for i in todo}, address, cpus_per_run, gpus_per_run)
    else:
        tasks = {i: (notebook, out_dir / runs[i].name, runs[i], base_params, threads, runner) for i in todo}
        finished = _run_tasks(tasks, groups, say)
    for index, outcome in finished:
        if outcome.status == "failed" and not read_record(out_dir / outcome.run.name):  # its worker died
            write_record(out_dir / outcome.run.name, outcome, trial_parameters(outcome.run, base_params), notebook,
                         runner, outcome.gpus, ran_here=False)
        outcomes[index] = outcome
        progress(outcome.line(index + 1, len(runs)))
    return [outcomes[i] for i in range(len(runs))]


def _check_runner_options(runner: str, jobs: int, cpus_per_run: int, address: str | None,
                          node_dir: str | Path | None) -> None:
    """Refuse options the runner does not take, and Ray's runner without Ray, before any run."""
    if runner != "ray":
        given = [name for name, value in (("address", address), ("node_dir", node_dir)) if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for runner='ray', "
                             f"not runner={runner!r}")
        return
    if jobs != 1:
        raise ValueError(f"jobs={jobs} is for one machine's processes; with runner='ray', Ray runs as many at once "
                         f"as the cluster's CPUs and GPUs hold: set cpus_per_run (and gpus_per_run) instead")
    if isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, int) or cpus_per_run < 1:
        raise ValueError(f"cpus_per_run must be a whole number >= 1, got {cpus_per_run!r}")
    check_ray()


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
    run_here = (lambda *task, wait: run_trial(*task, wait=wait, gpus=groups[0])) if jobs == 1 else None
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
        connection.send(run_trial(*arguments, wait=wait, gpus=gpus))


