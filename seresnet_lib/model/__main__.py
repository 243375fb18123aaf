"""``python -m seresnet_lib.model COMMAND``: the model wing's commands of ``seresnet``."""

from ..cli import main

raise SystemExit(main(wing="model"))
