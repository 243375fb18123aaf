"""The training wing's commands: ``seresnet train`` and ``seresnet runs`` (also
``python -m seresnet_lib.training train|runs``, and under torchrun
``torchrun --nproc_per_node=4 -m seresnet_lib.training train PRESET.yaml``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..parameters import parse_value
from ..paths import display
from . import distributed
from .config import TrainConfig, load_preset
from .distributed import say
from .folders import (HEADER, DiskFull, delete_unless_training, describe_run, is_ours, made_by, prunable, run_folders,
                      size_text, spared, stale_temporary_files)
from .recipes import train_run


def train(argv: list[str], prog: str) -> int:
    """Lesson 05's run without the notebook, with a preset's parameters and ``-p`` overrides.

    Under ``torchrun --nproc_per_node=N`` every process runs this, and they train together (DDP).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train as lesson 05 does (data, loaders, seeded model, fit), with a preset's parameters. "
                    "Under torchrun, in several processes with DistributedDataParallel.",
        epilog="examples: seresnet train notebooks/params/article_recipe.yaml -p epochs 1\n"
               "          torchrun --nproc_per_node=4 -m seresnet_lib.training train "
               "notebooks/params/cifar10_strong.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", nargs="?", help="a YAML file of parameters (notebooks/params/); the rest keep "
                                                  "their defaults")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter (-p epochs 3 -p sync_bn true); wins over the preset")
    args = parser.parse_args(argv)
    try:
        preset = load_preset(args.preset) if args.preset else {}
        parameters = {**preset, **{name: parse_value(value) for name, value in args.parameter}}
        unknown = sorted(set(parameters) - set(TrainConfig().as_dict()))
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}; the parameters are: "
                             f"{', '.join(TrainConfig().as_dict())}")
        config = TrainConfig(**parameters)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        history = train_run(config)
        best = history.best
        say(f"{display(history.run_dir)}: best test accuracy {best['test_acc']:.2%} (epoch {best['epoch']})"
            if best else f"{display(history.run_dir)}: no epoch trained")
    except KeyboardInterrupt as stop:
        say(f"stopped ({stop.args[0] if stop.args else 'Ctrl-C'}); -p resume True goes on from its last checkpoint")
        return 130
    except DiskFull as full:
        print(f"error: {full}", file=sys.stderr)
        return 1
    finally:
        distributed.teardown()
    return 0


def runs(argv: list[str], prog: str) -> int:
    """``list`` the runs of a folder, or ``prune`` their checkpoints."""
    parser = argparse.ArgumentParser(prog=prog, description="See the runs of a folder, and prune their checkpoints.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per run: status, epochs, best accuracy, size")
    listing.add_argument("out_dir", type=Path)
    pruning = commands.add_parser("prune", help="delete checkpoints, and the temporary files that writes killed "
                                               "midway left; metrics.json and notebooks stay. Only the runs made "
                                               "by this user on this host, or not saying who made them, unless "
                                               "--any-owner")
    pruning.add_argument("out_dir", type=Path)
    pruning.add_argument("--keep", type=int, metavar="N", help="keep the checkpoints of the N newest runs")
    pruning.add_argument("--older-than", type=float, metavar="DAYS",
                         help="delete only checkpoints older than this (with --keep: both must agree)")
    pruning.add_argument("--any-owner", action="store_true",
                         help="also the runs made by another user or on another host (left alone without it)")
    pruning.add_argument("--yes", action="store_true", help="do not ask before deleting")
    args = parser.parse_args(argv)
    out_dir = args.out_dir.expanduser().absolute()  # from where the command runs, as any shell command
    if not out_dir.is_dir():
        parser.error(f"no such folder: {args.out_dir}")
    if args.command == "list":
        print(HEADER)
        for run in run_folders(out_dir):
            print(describe_run(run).line())
        return 0
    if args.keep is None and args.older_than is None:
        parser.error("say which checkpoints to delete: --keep N and/or --older-than DAYS")
    if args.keep is not None and args.keep < 0:
        parser.error(f"--keep must be 0 or more, got {args.keep}")
    if args.older_than is not None and not args.older_than > 0:
        parser.error(f"--older-than must be a number of days > 0, got {args.older_than}")
    checkpoints = prunable(out_dir, args.keep, args.older_than, others=args.any_owner)
    stale = [path for run in run_folders(out_dir) if args.any_owner or is_ours(run)
             for path in stale_temporary_files(run)]
    left = [] if args.any_owner else spared(out_dir)
    if left:
        runs = ", ".join(f"{run.name} ({why})" for run, why in left)
        print(f"left alone: {runs}; another user's or host's runs are pruned only with --any-owner"
              f"{'' if args.keep is None else ', and do not count among the newest'}")
    if not checkpoints and not stale:
        print("no checkpoints to delete")
        return 0
    for path in checkpoints:
        why = made_by(path.parent)
        print(f"  {path}  {size_text(path.stat().st_size)}{f'  ({why})' if why else ''}")
    for path in stale:
        print(f"  {path}  {size_text(path.stat().st_size)}  (left by a write that was killed midway)")
    total = sum(path.stat().st_size for path in checkpoints + stale)
    question = f"delete these {_files(len(checkpoints), len(stale))} ({size_text(total)})? [y/N] "
    if not args.yes and input(question).strip().lower() not in ("y", "yes"):
        print("nothing deleted")
        return 1
    freed = [_delete(path) for path in checkpoints]
    swept = [_delete(path) for path in stale]  # under the run's lock: no write began meanwhile
    deleted = _files(sum(1 for size in freed if size), sum(1 for size in swept if size))
    print(f"deleted {deleted}, freed {size_text(sum(size or 0 for size in freed + swept))}")
    return 0 if None not in freed + swept else 1


def _delete(path: Path) -> int | None:
    """``delete_unless_training(path)``, or None, said, if this user may not delete it (another's run)."""
    try:
        return delete_unless_training(path)
    except PermissionError as error:
        print(f"  could not delete {path}: {error.strerror or error} (its run is another user's, or its "
              f"folder is read-only)")
        return None


def _files(checkpoints: int, stale: int) -> str:
    """"2 checkpoints", "2 checkpoints and 1 stale temporary file(s)", "1 stale temporary file(s)"."""
    parts = [f"{checkpoints} checkpoints"] if checkpoints or not stale else []
    return " and ".join(parts + ([f"{stale} stale temporary file(s)"] if stale else []))
