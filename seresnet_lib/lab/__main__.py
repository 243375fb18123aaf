"""``python -m seresnet_lib.lab COMMAND``: the lab wing's commands of ``seresnet``."""

from ..cli import main

raise SystemExit(main(wing="lab"))
