"""``python -m seresnet_lib.training COMMAND``: the training wing's commands of ``seresnet``."""

from ..cli import main

raise SystemExit(main(wing="training"))
