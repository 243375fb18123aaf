"""Run by test_distributed.py under torchrun: what each of the processes does.

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py TASKS_JSON

TASKS_JSON is a list, done in order in the same process group. A mapping of TrainConfig
parameters trains a small SE-ResNet on offline data with ``fit``; after it every process saves
its model's state as rank-<r>.pt in the run's folder, and the files each process wrote through
``atomic_write`` are listed in writes-<r>.json there. ``["checks", FOLDER]`` runs the checks
of the distributed helpers below and saves each process's results in FOLDER.
"""

import json
import sys
from pathlib import Path

import torch

from seresnet_lib.model.models import ResNet, ResNetConfig
from seresnet_lib.seeding import seed_everything
from seresnet_lib.training import distributed, fit, run as run_module, run_data
from seresnet_lib.training.config import TrainConfig

SMALL = ResNetConfig(blocks=(1, 1, 1, 1), widths=(8, 8, 8, 8), num_classes=10, reduction=4, stem="cifar")
BATCH_NORM_SHARES = (7, 8)  # a batch of 15 images, shared unevenly


def small_model(config: TrainConfig) -> ResNet:
    """SE-ResNet with one bottleneck of width 8 per stage: the same parts, seconds to train."""
    seed_everything(config.seed)
    return ResNet(SMALL).to(memory_format=torch.channels_last)


def batch_norm_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch (15 x 4 x 5 x 5, far from zero mean) and the output gradient it is checked with."""
    generator = torch.Generator().manual_seed(0)
    images = 3 + 2 * torch.randn(sum(BATCH_NORM_SHARES), 4, 5, 5, generator=generator)
    return images, torch.randn(images.shape, generator=generator)


def train(parameters: dict) -> None:
    config = TrainConfig(**parameters)
    writes = []
    atomic_write = run_module.atomic_write

    def recorded(path, write):
        writes.append(Path(path).name)
        atomic_write(path, write)

    run_module.atomic_write = recorded
    try:
        data = run_data(config)
        model = small_model(config)
        history = fit(model, data.train_loader, data.test_loader, config, progress="lines")
    finally:
        run_module.atomic_write = atomic_write
    rank = distributed.rank()
    torch.save(model.state_dict(), history.run_dir / f"rank-{rank}.pt")
    (history.run_dir / f"writes-{rank}.json").write_text(json.dumps(writes))


def checks(folder: str) -> None:
    """Batch norm over both processes on uneven shares, and on bfloat16 input; an error in rank 0 alone,
    raised in both."""
    rank = distributed.rank()
    images, gradient = batch_norm_inputs()
    start = sum(BATCH_NORM_SHARES[:rank])
    share = slice(start, start + BATCH_NORM_SHARES[rank])
    layer = distributed.ProcessGroupBatchNorm2d(4, momentum=None)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
        layer.bias.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    x = images[share].clone().requires_grad_()
    (layer(x) * gradient[share]).sum().backward()
    output = {"input_grad": x.grad, "weight_grad": distributed.sum_over_processes(layer.weight.grad),
              "bias_grad": distributed.sum_over_processes(layer.bias.grad), "running_mean": layer.running_mean,
              "running_var": layer.running_var}

    half = distributed.ProcessGroupBatchNorm2d(4)  # as bfloat16 autocast feeds it: bf16 in, bf16 out
    output["bf16"] = [str(half(images[share].bfloat16()).dtype), str(half.running_mean.dtype)]

    def fail():
        raise ValueError("raised by rank 0 alone")

    try:
        distributed.from_main(fail)
        output["error"] = None
    except ValueError as error:
        output["error"] = str(error)
    torch.save(output, Path(folder) / f"checks-{rank}.pt")


if __name__ == "__main__":
    distributed.setup("cpu")
    try:
        for task in json.loads(sys.argv[1]):
            if isinstance(task, list) and task[0] == "checks":
                checks(task[1])
            else:
                train(task)
    finally:
        distributed.teardown()
