"""Sweeps on a real local Ray cluster (``ray.init(num_cpus=2)``, shut down after the test even when it fails).

Lesson 05's runs at a tiny size, each a Ray task on one CPU thread: they give exactly the rows of the inline
runner on one thread; a Ray worker killed in the middle of a run is replaced and the run retried from the
start; a setting that fails is recorded while the others complete; a second call skips the complete runs.
The nodes write into a folder of their own (``node_dir``), as nodes that do not share the driver's disk
would, so the records and metrics the driver collects are the ones the tasks returned.
"""

import importlib.util
import json
import os
import shutil
import signal
import tempfile
import threading
import time

import pytest
import ray
import torch
from test_experiments import alive

from seresnet_lib.cli import main
from seresnet_lib.lab import cluster, collect, sweep
from seresnet_lib.paths import LESSON_05

TINY = dict(train_size=16, test_size=8, epochs=1, batch_size=8, device="cpu", keep_checkpoints=0)
GRID = [{"model": ["resnet50", "seresnet50"]}]
FAILING = {"dataset": ["cifar10"], "download": [False]}  # not in the tests' data/, and no download
VICTIM = "model=seresnet50-seed=0"


@pytest.fixture
def local_ray():
    """A local Ray cluster of 2 CPUs, shut down after the test whatever happens, with the environment variables and
    SIGTERM handler ``ray.init`` changes put back."""
    environment, handler = dict(os.environ), signal.getsignal(signal.SIGTERM)
    # Ray's session folders, which anyone may write to, in a private folder (short: they hold sockets), not left
    # in the system's temporary folder for later programs to find
    os.environ["RAY_TMPDIR"] = sessions = tempfile.mkdtemp(prefix="ray-")
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(environment)
        signal.signal(signal.SIGTERM, handler)
        shutil.rmtree(sessions, ignore_errors=True)


def train_inline(out_dir, outcomes: list) -> None:
    """The inline runner's runs of GRID into ``out_dir``, on one thread, as a task asking for one CPU trains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcomes.extend(sweep(LESSON_05, GRID, out_dir, TINY, runner="inline", progress=lambda line: None))
    finally:
        torch.set_num_threads(threads)


def kill_when_training(run_dir, killed: list, stop: threading.Event, then) -> None:
    """SIGKILL the process that holds ``run_dir`` once its run has started training (metrics.json written),
    then call ``then()``."""
    while not stop.is_set():
        try:
            if (run_dir / "run-001" / "metrics.json").exists():
                pid = int((run_dir / "lock").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                then()
                return
        except (FileNotFoundError, ValueError, IndexError):  # between files, or the lock being written
            pass
        time.sleep(0.005)


def numbers(rows) -> list[tuple]:
    """Each complete run's model, seed and every number but its seconds."""
    return [(row.varied["model"], row.seed, row.final_test_acc, row.best_test_acc, row.model_parameters, row.curve)
            for row in rows if row.status == "complete"]


def test_a_ray_sweep_gives_the_inline_rows_retries_a_killed_worker_records_a_failure_and_skips_complete_runs(
        local_ray, tmp_path):
    driver, nodes = tmp_path / "driver", tmp_path / "nodes"
    inline = []  # the runs to compare with, trained while Ray starts a worker for the killed one and runs it again
    reference = threading.Thread(target=train_inline, args=(tmp_path / "inline", inline))
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_when_training, args=(nodes / VICTIM, killed, stop, reference.start))
    killer.start()
    try:
        outcomes = sweep(LESSON_05, GRID + [FAILING], driver, {**TINY, "keep_checkpoints": 1}, runner="ray",
                         node_dir=nodes, progress=lambda line: None)
    finally:
        stop.set()
        killer.join()
        if reference.ident is not None:
            reference.join()
    assert [(o.run.name, o.status) for o in outcomes] == [("model=resnet50-seed=0", "complete"), (VICTIM, "complete"),
                                                          ("dataset=cifar10-download=False-seed=0", "failed")]
    assert outcomes[2].error.startswith("DatasetUnavailable: CIFAR-10 is not in ")
    assert len(killed) == 1, "the run ended before its worker could be killed"
    assert not alive(killed[0])
    records = {o.run.name: json.loads((driver / o.run.name / "sweep.json").read_text()) for o in outcomes}
    assert records[VICTIM]["pid"] != killed[0] and records[VICTIM]["runner"] == "ray"  # another worker ran it again
    assert records[VICTIM]["status"] == "complete" and records[VICTIM]["gpus"] is None
    assert records["dataset=cifar10-download=False-seed=0"]["error"] == outcomes[2].error

    assert [o.status for o in inline] == ["complete", "complete"]
    rows = collect(driver)  # what the tasks returned, written by the driver
    assert numbers(rows) == numbers(collect(tmp_path / "inline"))
    for name in ("model=resnet50-seed=0", VICTIM):
        assert {p.relative_to(driver / name).as_posix() for p in (driver / name).rglob("*") if p.is_file()} == {
            "sweep.json", "log.txt", "run-001/metrics.json"}  # no checkpoint, no lock
        assert (nodes / name / "run-001" / "checkpoint.pt").is_file()  # it stays on the node
        assert (nodes / name / "sweep.json").read_bytes() == (driver / name / "sweep.json").read_bytes()

    again = []
    outcomes = sweep(LESSON_05, GRID + [FAILING], driver, {**TINY, "keep_checkpoints": 1}, runner="ray",
                     node_dir=nodes, progress=again.append)
    assert [o.status for o in outcomes] == ["skipped", "skipped", "failed"]  # a failed run is tried again
    assert again[:2] == ["[1/3] model=resnet50-seed=0: complete before, skipped",
                         f"[2/3] {VICTIM}: complete before, skipped"]
    assert json.loads((driver / VICTIM / "sweep.json").read_text()) == records[VICTIM]


def test_ray_options_a_cluster_cannot_hold_and_a_missing_ray_are_refused_before_any_run(tmp_path, monkeypatch,
                                                                                          capsys):
    out = tmp_path / "sweep"
    with pytest.raises(ValueError, match="jobs=2 is for one machine's processes; with runner='ray', Ray runs"):
        sweep(LESSON_05, GRID, out, TINY, jobs=2, runner="ray")
    with pytest.raises(ValueError, match="cpus_per_run must be a whole number >= 1, got 0"):
        sweep(LESSON_05, GRID, out, TINY, runner="ray", cpus_per_run=0)
    with pytest.raises(ValueError, match="address and node_dir are for runner='ray', not runner='inline'"):
        sweep(LESSON_05, GRID, out, TINY, runner="inline", address="auto", node_dir=tmp_path)
    nodes = [{"Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0}}, {"Alive": True, "Resources": {"CPU": 4.0}},
             {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]  # a node that died counts for nothing
    assert cluster._gpus_per_task(nodes, 8, 2) == 2
    assert cluster._gpus_per_task(nodes[1:], 4, 1) == 0  # no GPU in the cluster: the tasks train on CPUs
    with pytest.raises(ValueError, match=r"gpus_per_run=4: no node of the Ray cluster has that many GPUs "
                                         r"\(the most is 2\)"):
        cluster._gpus_per_task(nodes, 1, 4)
    with pytest.raises(ValueError, match=r"cpus_per_run=16: .* has that many CPUs \(the most is 8\)"):
        cluster._gpus_per_task(nodes, 16, 1)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "ray" else find_spec(name))
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("grid:\n  model: [resnet50]\n")
    assert main(["sweep", str(grid_file), "--runner", "ray", "--out-dir", str(out)]) == 2
    assert "it needs ray, which the cluster extra installs: pip install 'seresnet-lib[cluster]'" in \
        capsys.readouterr().err
    assert not out.exists()
