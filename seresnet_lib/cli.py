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

WINGS = {"training": "train runs", "lab": "sweep benchmark reference", "classroom": "run record student check",
         "model": "summary"}


def main(argv: list[str] | None = None, wing: str | None = None) -> int:
    """Run the command ``argv`` names (``sys.argv[1:]`` by default): 0 on success."""
    argv = sys.argv[1:] if argv is None else argv
    prog = f"python -m seresnet_lib.{wing}" if wing else "seresnet"
    commands = {}
    for name in [wing] if wing else WINGS:
        commands.update(importlib.import_module(f"seresnet_lib.{name}.cli").COMMANDS)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        width = max(map(len, commands))
        lines = [f"  {name:<{width}}  {about}" for name, (_, about) in commands.items()]
        usage = f"usage: {prog} COMMAND [ARGUMENTS]   ({prog} COMMAND --help for its own)\n\ncommands:\n"
        helping = bool(argv) and argv[0] in ("-h", "--help")
        print(usage + "\n".join(lines), file=sys.stdout if helping else sys.stderr)
        if argv and not helping:
            print(f"\n{prog}: error: unknown command {argv[0]!r}", file=sys.stderr)
        return 0 if helping else 2
    command, _ = commands[argv[0]]
    return command(argv[1:], f"{prog} {argv[0]}")
