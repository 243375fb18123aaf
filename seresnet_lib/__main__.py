"""``python -m seresnet_lib``: the ``seresnet`` command line."""

from .cli import main

raise SystemExit(main())
