"""``seresnet``: the library's one command line; each wing brings its commands.

    seresnet train PRESET.yaml -p epochs 1     lesson 05's run, without the notebook
    seresnet runs list runs/05_train_cifar10   a folder's runs; prune their checkpoints
    seresnet sweep GRID.yaml --jobs 2          a lesson once per parameters and seed
    seresnet benchmark                         the training step against timm's, fit's options
    seresnet reference record RUN_DIR          measure a run as lesson 07 does
    seresnet run | record                      execute every lesson (into runs/, or in place)
    seresnet student | check                   hand the lessons out; grade students' copies
    seresnet summary                           SE-ResNet-50 layer by layer

``python -m seresnet_lib.training`` (``.lab``, ``.classroom``, ``.model``) takes that wing's commands.
"""

from __future__ import annotations

import importlib
import sys

# Each command, the wing whose cli.py defines it (a function of that name), and what it does. The
# wing's module is imported only when its command runs: `seresnet summary` loads no Jupyter.
COMMANDS = {
    "train": ("training", "train as lesson 05 does, from a preset (torchrun: several processes)"),
    "runs": ("training", "list the runs of a folder, or prune their checkpoints"),
    "sweep": ("lab", "run a lesson once per combination of a grid file's parameters and seed"),
    "benchmark": ("lab", "the training step against timm's, fit's options, evaluation, the loaders"),
    "reference": ("lab", "record a trained run's SE measurements as the reference results"),
    "run": ("classroom", "execute every lesson into runs/ (the committed notebooks stay as they are)"),
    "record": ("classroom", "execute every lesson in place, so that its saved outputs are this run's"),
    "student": ("classroom", "write student copies of the lessons: no solutions, no outputs"),
    "check": ("classroom", "run students' notebooks and grade each exercise by its self-check"),
    "summary": ("model", "SE-ResNet-50 layer by layer at 224 x 224: shapes, parameters, multiply-adds"),
}
# The packages a command may need beyond the core install, and the extra that brings each.
EXTRAS = {"papermill": "series", "nbformat": "series", "nbclient": "series", "nbconvert": "series",
          "jupyter_client": "series", "traitlets": "series", "ipykernel": "series", "timm": "bench", "ray": "cluster"}


def main(argv: list[str] | None = None, wing: str | None = None) -> int:
    """Run the command ``argv`` names (``sys.argv[1:]`` by default): 0 on success.

    ``wing``: take only that wing's commands, as ``python -m seresnet_lib.<wing>`` does.
    """
    argv = sys.argv[1:] if argv is None else argv
    prog = f"python -m seresnet_lib.{wing}" if wing else "seresnet"
    commands = {name: about for name, about in COMMANDS.items() if wing in (None, about[0])}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        width = max(map(len, commands))
        lines = [f"  {name:<{width}}  {about}" for name, (_, about) in commands.items()]
        usage = f"usage: {prog} COMMAND [ARGUMENTS]   ({prog} COMMAND --help for its own)\n\ncommands:\n"
        helping = bool(argv) and argv[0] in ("-h", "--help")
        print(usage + "\n".join(lines), file=sys.stdout if helping else sys.stderr)
        if argv and not helping:
            print(f"\n{prog}: error: unknown command {argv[0]!r}", file=sys.stderr)
        return 0 if helping else 2
    name = argv[0]
    try:
        command = getattr(importlib.import_module(f"seresnet_lib.{commands[name][0]}.cli"), name)
        return command(argv[1:], f"{prog} {name}")
    except ModuleNotFoundError as missing:
        extra = EXTRAS.get((missing.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"{prog} {name}: error: it needs {missing.name}, which the {extra} extra installs: "
              f"pip install 'seresnet-lib[{extra}]'", file=sys.stderr)
        return 2
