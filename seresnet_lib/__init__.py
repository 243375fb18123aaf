"""SE-ResNet-50 from scratch: the library the notebook lessons import.

It has four wings by audience: ``model`` (what lessons 01-04 and 07 teach), ``training``
(lesson 05 and anyone who trains), ``lab`` (sweeps, results, benchmark) and ``classroom``
(self-checks, student copies, grading, running the series), and the ``figures`` they share.
Here: the model's names, and the few helpers every wing shares.
"""

import torch

from .model import *  # noqa: F403 (the model API: its __all__)
from .model import __all__ as _model_names
from .paths import display, resolve
from .seeding import seed_everything
from .validate import check_choice, check_int

# Denormal floats make CPU arithmetic many times slower, and the gradients of a young
# SE-ResNet produce them (a training epoch measured 0.6 s with this, 44 s without).
# PyTorch's worker threads copy the setting when they start, so it is made on import.
torch.set_flush_denormal(True)

__all__ = [*_model_names, "check_choice", "check_int", "display", "resolve", "seed_everything"]
