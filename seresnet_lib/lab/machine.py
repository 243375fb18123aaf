"""What a measurement ran on, for the records that keep it (the benchmark's, the reference run's)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine() -> str:
    """The CPU (every measurement here runs on it), its cores, PyTorch's version, kernels and threads."""
    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cpu = torch.backends.cpu.get_cpu_capability()
    return f"{name} ({os.cpu_count()} cores), torch {torch.__version__} ({cpu}, {torch.get_num_threads()} threads)"
