"""Sweeps on a Ray cluster: each run is a Ray task, placed by the CPUs and GPUs it asks for.

    seresnet sweep notebooks/params/sweep_ablations.yaml --runner ray                  # a local cluster
    seresnet sweep notebooks/params/sweep_ablations.yaml --runner ray --address auto   # `ray start`'s cluster

A task trains its run in its node's copy of the run's folder (``node_dir``: the sweep's folder, at the
same path, unless told otherwise) and returns the outcome with the folder's files, checkpoints left out.
The driver (this process) writes those files into the sweep's folder, so the records, ``collect`` and the
skipping of complete runs work even when the nodes do not share its disk; checkpoints, and resuming a
run half done, need a ``node_dir`` every node sees. A task whose worker dies (killed, out of memory, its
node lost) is retried, up to 3 times (``_RETRIES``); a run that fails is recorded, and the others go on.
Lesson 05's runs train in the task's process, as the inline runner trains them; any other notebook is
executed through papermill.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..training import atomic_write, run_folders
from ..training.folders import CHECKPOINT, LOCK
from .grid import trial_parameters
from .trial import TrialOutcome, first_line, run_trial, write_record

_RETRIES = 3  # how many times a run whose worker died starts again (Ray's max_retries)
_NOTEBOOK_COPIES = ".notebooks"  # in a node's sweep folder: the swept notebook, where the node lacks it


def check_ray() -> None:
    """Raise ModuleNotFoundError, saying what to install, unless Ray is installed (the cluster extra)."""
    if importlib.util.find_spec("ray") is None:
        raise ModuleNotFoundError("runner='ray' needs ray, which the cluster extra installs: "
                                  "pip install 'seresnet-lib[cluster]'", name="ray")


def run_on_ray(tasks: dict[int, tuple], driver_dirs: dict[int, Path], address: str | None, cpus_per_run: int,
               gpus_per_run: int) -> Iterator[tuple[int, TrialOutcome]]:
    """Each task's outcome as it finishes, each run a Ray task; its files written into ``driver_dirs[index]``.

    ``tasks[index]`` holds ``run_trial``'s arguments (notebook, the run's folder on the nodes, trial, base
    parameters, threads, runner). This process joins Ray as ``ray.init(address)`` does (None: the cluster of
    RAY_ADDRESS or of ``ray start`` here, else a new one for the sweep), unless it is connected already. A task asks for
    ``cpus_per_run`` CPUs and, on a cluster with GPUs, ``gpus_per_run`` GPUs; one no node could hold is refused
    before any run. Stopping the sweep (Ctrl-C) cancels the tasks not finished.
    """
    import ray  # the cluster extra, only for this runner

    with _connected(ray, address):
        gpus = _gpus_per_task(ray.nodes(), cpus_per_run, gpus_per_run)
        remote = ray.remote(_run_task).options(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=_RETRIES)
        notebooks = {}  # each notebook's bytes, once in Ray's object store for all its tasks
        pending = {}
        for index, task in tasks.items():
            if task[0] not in notebooks:
                notebooks[task[0]] = ray.put(task[0].read_bytes())
            pending[remote.remote(notebooks[task[0]], *task)] = index
        try:
            while pending:
                [done], _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done)
                yield index, _outcome(ray, done, tasks[index], driver_dirs[index])
        finally:
            for task in pending:
                ray.cancel(task, force=True)


@contextmanager
def _connected(ray, address: str | None) -> Iterator[None]:
    """This process connected to Ray for the block: to the cluster at ``address``, or to one started here, and
    disconnected after, with the environment variables and SIGTERM handler ``ray.init`` sets put back (a
    kernel's later processes would inherit them). A process already connected stays so, as it was."""
    if ray.is_initialized():
        yield
        return
    environment = dict(os.environ)
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(environment)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


def _gpus_per_task(nodes: list[dict], cpus_per_run: int, gpus_per_run: int) -> int:
    """The GPUs each task asks for: ``gpus_per_run`` on a cluster with GPUs, else 0. ValueError if no live
    node has the CPUs or GPUs one task asks for (Ray would wait for such a node forever)."""
    resources = [node["Resources"] for node in nodes if node.get("Alive")]
    most_cpus = max((r.get("CPU", 0) for r in resources), default=0)
    most_gpus = max((r.get("GPU", 0) for r in resources), default=0)
    if cpus_per_run > most_cpus:
        raise ValueError(f"cpus_per_run={cpus_per_run}: no node of the Ray cluster has that many CPUs "
                         f"(the most is {most_cpus:g})")
    if most_gpus and gpus_per_run > most_gpus:
        raise ValueError(f"gpus_per_run={gpus_per_run}: no node of the Ray cluster has that many GPUs "
                         f"(the most is {most_gpus:g})")
    return gpus_per_run if most_gpus else 0


def _run_task(notebook_bytes: bytes, notebook: Path, run_dir: Path, *arguments) -> tuple[TrialOutcome, dict]:
    """A Ray task (on any node): ``run_trial`` into this node's ``run_dir``, waiting if another sweep holds
    it; its outcome and the run folder's files but checkpoints, {relative path: bytes}."""
    notebook = _notebook_here(notebook, notebook_bytes, run_dir.parent / _NOTEBOOK_COPIES)
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES") or None  # Ray's choice for this task
    outcome = run_trial(notebook, run_dir, *arguments, wait=True, gpus=gpus)
    files = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and path.suffix != Path(CHECKPOINT).suffix and path.name != LOCK \
                and not path.name.endswith(".tmp"):
            files[path.relative_to(run_dir).as_posix()] = path.read_bytes()
    return outcome, files


def _notebook_here(path: Path, content: bytes, copies: Path) -> Path:
    """The swept notebook on this node: ``path`` when it holds the driver's notebook, else a copy in ``copies``
    (the copy's folder is then where papermill runs it)."""
    if path.is_file() and path.read_bytes() == content:
        return path
    copy = copies / path.name
    copies.mkdir(parents=True, exist_ok=True)
    if not copy.is_file() or copy.read_bytes() != content:
        atomic_write(copy, lambda file: file.write(content))
    return copy


def _outcome(ray, done, task: tuple, driver_dir: Path) -> TrialOutcome:
    """What a finished task returned, its files written into ``driver_dir``; a task that raised or whose
    worker died past its retries is a failed run, recorded there."""
    notebook, _, run, base_params, _, runner = task
    try:
        outcome, files = ray.get(done)
    except ray.exceptions.RayError as error:
        if isinstance(error, ray.exceptions.WorkerCrashedError):
            why = f"its Ray worker died, {_RETRIES + 1} times"
        else:
            cause = getattr(error, "cause", None) or error
            why = f"{type(cause).__name__}: {first_line(str(cause))}"
        outcome = TrialOutcome(run, "failed", 0.0, why)
        driver_dir.mkdir(parents=True, exist_ok=True)
        write_record(driver_dir, outcome, trial_parameters(run, base_params), notebook, runner, None,
                     ran_here=False)
        return outcome
    _store(driver_dir, files, task[1])
    return outcome


def _store(driver_dir: Path, files: dict[str, bytes], node_dir: Path) -> None:
    """Write a run's returned files into ``driver_dir``, each only if it differs (a disk the node shares holds
    them already); run folders the node no longer has go, unless the node wrote into this very folder."""
    for name, content in files.items():
        target = driver_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != content:
            atomic_write(target, lambda file, content=content: file.write(content))
    if driver_dir != node_dir:
        returned = {name.split("/", 1)[0] for name in files}
        for stale in run_folders(driver_dir):
            if stale.name not in returned:
                shutil.rmtree(stale)
