"""The lab's commands: ``seresnet sweep``, ``seresnet benchmark`` and ``seresnet reference``
(also ``python -m seresnet_lib.lab sweep|benchmark|reference``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..parameters import parse_value
from ..paths import display, resolve
from .benchmark import PARTS, check_parts, run
from .grid import base_parameters, load_grid_file, notebook_for
from .reference import REFERENCE, record_reference
from .results import RESULTS_CSV, SUMMARY_CSV, collect, results_table, summarize
from .sweep import RUNNERS, sweep as run_sweep

_BENCHMARK_ABOUT = ("Side by side, in one run: the training step against timm's (and fit's speed options), "
                   "evaluation, an epoch of fit against the article's loop, the loaders.")


def sweep(argv: list[str], prog: str) -> int:
    """Run a grid file's sweep (or only collect its results), then print the table of results."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a lesson once per combination of a grid file's parameters and seed (through papermill), "
                    "skipping runs already complete, then print the results averaged over seeds and write "
                    "results.csv and summary.csv in the sweep's folder.",
        epilog="example: seresnet sweep notebooks/params/sweep_ablations.yaml --seeds 0 1 2")
    parser.add_argument("grid_file", help="YAML with grid: (a mapping of parameter -> values, or a list of them), "
                                          "and optionally preset:, base:, seeds:, out_dir:, notebook:")
    parser.add_argument("--seeds", type=int, nargs="+", help="the seeds each setting runs with (default: the file's, "
                                                             "else 0)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (default 1); with "
                                                           "GPUs, each process gets GPUs of its own")
    parser.add_argument("--gpus-per-run", type=int, default=1, metavar="K",
                        help="GPUs each job's process gets, none shared (default 1; needs jobs x K visible GPUs); "
                             "with --runner ray, the GPUs each task asks for on a cluster with GPUs")
    parser.add_argument("--out-dir", help="the sweep's folder (default: the file's out_dir, else runs/sweeps/<file>)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a base parameter for every run (-p epochs 3 -p dataset cifar10)")
    parser.add_argument("--runner", choices=RUNNERS, default="papermill",
                        help="papermill: execute the notebook per run (default); inline: train lesson 05's runs in "
                             "this process, without a notebook per run; ray: each run a task of a Ray cluster")
    ray = parser.add_argument_group("with --runner ray (pip install 'seresnet-lib[cluster]')")
    ray.add_argument("--address", help="the Ray cluster to join, as `ray start` printed it (auto: the one started on "
                                       "this machine; local: a new one here; default: RAY_ADDRESS's, else this "
                                       "machine's, else a new one)")
    ray.add_argument("--cpus-per-run", type=int, default=1, metavar="N",
                     help="CPUs each task asks for, and its threads (default 1)")
    ray.add_argument("--node-dir", help="where each node writes its runs (default: the sweep's folder, the same "
                                        "path on every node); records and metrics come back to the sweep's folder")
    parser.add_argument("--collect", action="store_true", help="only collect and print the results of the runs so far")
    args = parser.parse_args(argv)
    try:
        spec = load_grid_file(args.grid_file)
        out_dir = args.out_dir or spec.get("out_dir") or f"runs/sweeps/{Path(args.grid_file).stem}"
        if not args.collect:
            base = {**base_parameters(spec, args.grid_file),
                    **{name: parse_value(value) for name, value in args.parameter}}
            notebook = notebook_for(spec.get("notebook"), Path(args.grid_file))
            seeds = args.seeds or spec.get("seeds") or [0]
            outcomes = run_sweep(notebook, spec["grid"], out_dir, base, seeds, args.jobs, args.runner,
                                 progress=lambda line: print(line, flush=True), gpus_per_run=args.gpus_per_run,
                                 cpus_per_run=args.cpus_per_run, address=args.address, node_dir=args.node_dir)
        rows = collect(out_dir)
    except (ValueError, OSError) as error:  # a grid or grid file refused before any run, a folder not writable
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{results_table(summarize(rows))}\n\nresults: {display(resolve(out_dir) / RESULTS_CSV)}, "
          f"{display(resolve(out_dir) / SUMMARY_CSV)}")
    if not args.collect and any(o.status not in ("complete", "skipped") for o in outcomes):
        failed = [o for o in outcomes if o.status not in ("complete", "skipped")]
        print(f"{len(failed)} run(s) did not complete: {', '.join(o.run.name for o in failed)}", file=sys.stderr)
        return 1
    return 0


def benchmark(argv: list[str], prog: str) -> int:
    """The side-by-side measurements of ``benchmark.run``, printed (and written as JSON if asked)."""
    parser = argparse.ArgumentParser(prog=prog, description=_BENCHMARK_ABOUT,
                                     epilog="parts: step (training step, ours vs timm, and fit's options), eval, "
                                            "fit (an epoch of fit vs the article's loop), loader")
    parser.add_argument("parts", nargs="*", default=list(PARTS), metavar="PART",
                        help=f"which comparisons ({', '.join(PARTS)}; default: all)")
    parser.add_argument("--images", type=int, default=10_000, help="images per epoch for fit and loader (10,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="rounds in turns after warm-up (median; 5)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader worker processes (the article's 4)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed call (2)")
    parser.add_argument("--fit-rounds", type=int, default=2,
                        help="epochs of each side in the fit comparison, in the order ABBA... (2)")
    parser.add_argument("--no-compile", dest="with_compile", action="store_false",
                        help="skip torch.compile (it takes a minute or more before its first step)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    for name, least in (("images", 2), ("batch_size", 2), ("repeats", 1), ("steps", 1), ("fit_rounds", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}")
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    try:
        check_parts(args.parts)
    except ValueError as error:
        parser.error(str(error))
    results = run(args.parts, args.images, args.batch_size, args.repeats, args.workers, args.with_compile, args.steps,
                  args.fit_rounds)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


def reference(argv: list[str], prog: str) -> int:
    """``record``: measure a complete run as lesson 07 does, into the reference results' folder."""
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Record what a trained run's SE modules do, as lesson 07 measures "
                                                 f"it, into {display(REFERENCE)}/ (the reference run's results).")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("record", help="measure a complete run of lesson 05 and write its results")
    command.add_argument("run_dir", help="the run's folder (run-NNN, with its checkpoint)")
    command.add_argument("--out", default=str(REFERENCE), help=f"where to write (default {display(REFERENCE)})")
    command.add_argument("--step-rate", type=float, nargs="+", metavar="R",
                         help="R from shared/tools/step-rate before (and after) the run")
    command.add_argument("--made-with", help="the command that trained the run")
    args = parser.parse_args(argv)
    try:
        reference = record_reference(args.run_dir, args.out, args.step_rate, args.made_with)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"recorded {reference.label} into {display(args.out)}: test accuracy {reference.accuracy:.2%}")
    return 0
