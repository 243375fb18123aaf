"""The model wing's command: ``seresnet summary``, SE-ResNet-50 layer by layer at 224 x 224."""

from __future__ import annotations

import argparse

from .measure import count_multiply_adds, count_parameters
from .models import seresnet50


def summary(argv: list[str], prog: str) -> int:
    """Print torchinfo's table of SE-ResNet-50 (1000 classes), its parameters and multiply-adds."""
    argparse.ArgumentParser(prog=prog, description=summary.__doc__).parse_args(argv)
    from torchinfo import summary as table

    model = seresnet50(num_classes=1000)
    print(table(model, input_size=(1, 3, 224, 224), depth=2, col_names=("output_size", "num_params"),
                row_settings=("var_names",), verbose=0))
    print(f"SE-ResNet-50: {count_parameters(model):,} parameters, "
          f"{count_multiply_adds(model) / 1e9:.2f} G multiply-adds per 224 x 224 image")
    return 0
