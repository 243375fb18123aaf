"""fit under torchrun: two CPU processes (gloo) train a small SE-ResNet as one.

Two torchrun launches of ``distributed_worker.py``. The first checks batch norm over the two
processes and errors raised in rank 0 alone, then trains three runs: one with SyncBatchNorm, one
without, and a third that is killed after its first checkpoint. The second launch resumes it.
A single-process run in this process is the reference for the loss curve.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distributed_worker import BATCH_NORM_SHARES, batch_norm_inputs, small_model

from seresnet_lib.training import evaluate, fit, run_data
from seresnet_lib.training.config import TrainConfig

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds torchrun's workers in /proc (Linux)")
WORKER = Path(__file__).with_name("distributed_worker.py")
# 96 training images in batches of 16 (8 per process); 37 test images, which two processes
# cannot split evenly: each must count its own 18 or 19 exactly once.
BASE = dict(train_size=96, test_size=37, batch_size=16, epochs=3, lr=0.02, normalize=True, device="cpu", keep_checkpoints=1)
# Training amplifies float differences: with lr 0.02 this run in one process with 1 thread and with
# 2 differs by 3e-3 in its test loss after 2 epochs; with lr 0.001 by 1e-6. The SyncBatchNorm run
# is compared with a single process at lr 0.001, where batch norm over each process's 8 images
# alone (sync_bn=False) already differs by 8e-3 in the first epoch. Its batches of 15 give the
# processes 7 and 8 images: uneven shares, whose losses weigh 14/15 and 16/15.
SYNCED = {**BASE, "batch_size": 15, "epochs": 2, "lr": 0.001, "sync_bn": True}


def torchrun(tasks: list) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
               json.dumps(tasks)]
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (torchrun's workers run in sessions of their own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def metrics(out_dir: Path) -> dict:
    return json.loads((out_dir / "run-001" / "metrics.json").read_text())


def weights(out_dir: Path, rank: int) -> dict:
    return torch.load(out_dir / "run-001" / f"rank-{rank}.pt", weights_only=True)


def curve(epochs: list[dict]) -> list[tuple[float, ...]]:
    return [(row["train_loss"], row["train_acc"], row["test_loss"], row["test_acc"]) for row in epochs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The checks, two uninterrupted 2-process runs (with and without SyncBatchNorm), then a third run
    killed after its first epoch, all in one launch; and a second launch that resumes the killed run."""
    root = tmp_path_factory.mktemp("distributed")
    synced, plain, resumed, lone = root / "synced", root / "plain", root / "resumed", root / "lone"
    long = {**BASE, "epochs": 8}  # an epoch is a tenth of a second: time to kill the run before its end
    one_test_image = {**BASE, "epochs": 1, "test_size": 1, "out_dir": str(lone)}  # one process has none
    launch = torchrun([["checks", str(root)], {**SYNCED, "out_dir": str(synced)}, one_test_image,
                       {**long, "out_dir": str(plain)}, {**long, "out_dir": str(resumed)}])
    metrics_file = resumed / "run-001" / "metrics.json"
    deadline = time.monotonic() + 300
    while launch.poll() is None and time.monotonic() < deadline:
        if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("epochs"):
            for pid in [*children(launch.pid), launch.pid]:  # both workers and torchrun, as a crash would
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    launch.communicate(timeout=60)
    interrupted = metrics(resumed)
    finish(torchrun([{**long, "out_dir": str(resumed), "resume": True}]))
    return dict(synced=synced, plain=plain, resumed=resumed, interrupted=interrupted, lone=lone, root=root)


@pytest.mark.parametrize("run", ["synced", "plain"])
def test_both_processes_end_with_identical_weights(trained, run):
    """DDP averages the gradients; batch norm's statistics are synchronized, or rank 0's are copied."""
    rank0, rank1 = weights(trained[run], 0), weights(trained[run], 1)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)


def test_with_sync_batch_norm_two_processes_train_like_one(trained):
    """The same global batch of 16, its statistics over both processes: the single-process curve."""
    config = TrainConfig(**{**SYNCED, "sync_bn": False}, out_dir=str(trained["root"] / "single"))
    data = run_data(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = fit(small_model(config), data.train_loader, data.test_loader, config, progress="lines")
    finally:
        torch.set_num_threads(threads)
    two = [(row["train_loss"], row["test_loss"]) for row in metrics(trained["synced"])["epochs"]]
    one = [(row["train_loss"], row["test_loss"]) for row in single.epochs]
    torch.testing.assert_close(two, one, rtol=1e-4, atol=0)


def test_the_reduced_test_metrics_count_every_test_image_once(trained):
    """37 test images split 18 / 19: the loss over both shards is that of the whole set in one process."""
    config = TrainConfig(**BASE, out_dir=str(trained["root"] / "unused"))
    model = small_model(config)
    model.load_state_dict(weights(trained["plain"], 0))
    test_loss, test_acc = evaluate(model, run_data(config).test_loader)
    last = metrics(trained["plain"])["epochs"][-1]
    assert last["test_acc"] == test_acc
    assert last["test_loss"] == pytest.approx(test_loss, rel=1e-5)


def test_a_process_with_no_test_image_still_evaluates_with_the_others(trained):
    """One test image for two processes: one share is empty, and the epoch's numbers are the other's."""
    config = TrainConfig(**{**BASE, "epochs": 1, "test_size": 1}, out_dir=str(trained["root"] / "unused"))
    model = small_model(config)
    model.load_state_dict(weights(trained["lone"], 0))
    test_loss, test_acc = evaluate(model, run_data(config).test_loader)
    [epoch] = metrics(trained["lone"])["epochs"]
    assert epoch["test_acc"] == test_acc and epoch["test_loss"] == pytest.approx(test_loss, rel=1e-5)


def test_a_killed_and_resumed_run_ends_like_an_uninterrupted_one(trained):
    interrupted = trained["interrupted"]
    assert interrupted["status"] == "running" and 1 <= len(interrupted["epochs"]) < 8  # killed mid-run
    resumed, plain = metrics(trained["resumed"]), metrics(trained["plain"])
    assert resumed["status"] == "complete"
    assert curve(resumed["epochs"]) == curve(plain["epochs"])  # exactly
    for rank in (0, 1):
        ours, uninterrupted = weights(trained["resumed"], rank), weights(trained["plain"], rank)
        assert all(torch.equal(ours[name], uninterrupted[name]) for name in ours)


def test_only_rank_0_writes_files(trained):
    run_dir = trained["plain"] / "run-001"
    writes = [json.loads((run_dir / f"writes-{rank}.json").read_text()) for rank in (0, 1)]
    assert writes[1] == []
    assert writes[0].count("checkpoint.pt") == 8 and writes[0].count("metrics.json") == 9  # and one at the start
    assert metrics(trained["plain"])["processes"] == 2
    assert [path.name for path in trained["plain"].iterdir()] == ["run-001"]


def test_batch_norm_over_processes_on_uneven_shares_is_batch_norm_over_the_whole_batch(trained):
    """Shares of 7 and 8 images, far from zero mean: the gradients and the running statistics (a plain
    mean with momentum=None) of one BatchNorm2d over all 15."""
    images, gradient = batch_norm_inputs()
    layer = torch.nn.BatchNorm2d(4, momentum=None)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
        layer.bias.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    x = images.clone().requires_grad_()
    (layer(x) * gradient).sum().backward()
    ranks = [torch.load(trained["root"] / f"checks-{rank}.pt", weights_only=True) for rank in (0, 1)]
    torch.testing.assert_close(torch.cat([ranks[0]["input_grad"], ranks[1]["input_grad"]]), x.grad)
    assert [len(r["input_grad"]) for r in ranks] == list(BATCH_NORM_SHARES)
    for rank in ranks:
        torch.testing.assert_close(rank["weight_grad"], layer.weight.grad)
        torch.testing.assert_close(rank["bias_grad"], layer.bias.grad)
        torch.testing.assert_close(rank["running_mean"], layer.running_mean)
        torch.testing.assert_close(rank["running_var"], layer.running_var)
        assert rank["bf16"] == ["torch.bfloat16", "torch.float32"]  # statistics kept in float32 under autocast


def test_an_error_in_rank_0_alone_is_raised_in_every_process(trained):
    """Otherwise the other processes would wait for rank 0 in a collective until a timeout."""
    for rank in (0, 1):
        assert torch.load(trained["root"] / f"checks-{rank}.pt", weights_only=True)["error"] == \
            "raised by rank 0 alone"
