"""Run by test_distributed.py under torchrun: train a small SE-ResNet on offline data, in each process.

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py RUNS_JSON

RUNS_JSON is a list of TrainConfig parameters, one run each, trained one after the other in the
same process group. After each run every process saves its model's state as rank-<r>.pt in the
run's folder, so that the test can compare the processes' weights.
"""

import json
import sys

import torch

from seresnet_lib import distributed
from seresnet_lib.config import TrainConfig
from seresnet_lib.models import ResNet, ResNetConfig
from seresnet_lib.seeding import seed_everything
from seresnet_lib.train import fit, run_data

SMALL = ResNetConfig(blocks=(1, 1, 1, 1), widths=(8, 8, 8, 8), num_classes=10, reduction=4, stem="cifar")


def small_model(config: TrainConfig) -> ResNet:
    """SE-ResNet with one bottleneck of width 8 per stage: the same parts, seconds to train."""
    seed_everything(config.seed)
    return ResNet(SMALL).to(memory_format=torch.channels_last)


def train(parameters: dict) -> None:
    config = TrainConfig(**parameters)
    data = run_data(config)
    model = small_model(config)
    history = fit(model, data.train_loader, data.test_loader, config, progress="lines")
    torch.save(model.state_dict(), history.run_dir / f"rank-{distributed.rank()}.pt")


if __name__ == "__main__":
    distributed.setup("cpu")
    try:
        for run in json.loads(sys.argv[1]):
            train(run)
    finally:
        distributed.teardown()
