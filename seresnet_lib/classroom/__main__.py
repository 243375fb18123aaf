"""``python -m seresnet_lib.classroom COMMAND``: the classroom wing's commands of ``seresnet``."""

from ..cli import main

raise SystemExit(main(wing="classroom"))
