"""Each reader's runs stay with their notebooks: relative paths start from the working folder, never
from where the package is installed, and a run prunes only the checkpoints of its own user's runs.

Two working folders outside the checkout share this environment (the package installed editable
from the checkout) and each runs lesson 05; meanwhile a third runs `seresnet train` with the package
installed from its sources into a folder of its own, as a wheel installs it. The three run at once,
in one fixture, so that the kernels' and interpreters' start-up overlap.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from nbclient import NotebookClient
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from seresnet_lib import paths
from seresnet_lib.cli import main
from seresnet_lib.training import cli as training_cli
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.folders import Maker, checkpoints_kept_for_their_maker, keep_newest_checkpoints, this_user
from seresnet_lib.training.run import Run

ROOT = Path(__file__).resolve().parents[1]
LESSON_05 = ROOT / "notebooks" / "05_train_cifar10.ipynb"
# As small as lesson 05 runs: one step of one epoch, on the CPU.
TINY = dict(train_size=8, test_size=8, batch_size=8, epochs=1, device="cpu")
STRANGER = Maker("someone-else", socket.gethostname())  # another user, on this host


def without_workdir(**extra: str) -> dict[str, str]:
    """This process's environment without SERESNET_WORKDIR (which the suite sets): a reader's."""
    environment = {name: value for name, value in os.environ.items() if name != "SERESNET_WORKDIR"}
    return {**environment, "OMP_NUM_THREADS": "1", **extra}  # three runs at once share the cores


def fake_run(out_dir: Path, number: int, maker: Maker | None) -> Path:
    """A run folder as fit() leaves it, without training: metrics.json naming ``maker`` (None: a run made
    before metrics.json recorded who made it) and a small checkpoint."""
    run_dir = out_dir / f"run-{number:03d}"
    run_dir.mkdir(parents=True)
    metrics = {"status": "complete", "parameters": TrainConfig().as_dict(), "epochs": [],
               **(maker.record() if maker else {})}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    torch.save({"weights": torch.zeros(250)}, run_dir / "checkpoint.pt")
    return run_dir


def with_checkpoint(out_dir: Path) -> list[str]:
    return [run.name for run in sorted(out_dir.iterdir()) if (run / "checkpoint.pt").is_file()]


# Where relative paths start

def test_relative_paths_start_from_the_working_folder_or_the_checkout_it_is_in(tmp_path, monkeypatch):
    monkeypatch.delenv("SERESNET_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)  # outside any checkout, with the package installed from the checkout
    assert paths.workdir() == tmp_path and paths.resolve("runs/a") == tmp_path / "runs" / "a"
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "seresnet_lib"\n')  # spelt as packaging allows
    monkeypatch.chdir(clone / "notebooks")  # a lesson's kernel: its runs and data are the clone's
    assert paths.workdir() == clone and paths.checkout_of(Path.cwd()) == clone
    assert paths._notebooks() == clone / "notebooks"  # the clone's lessons, not the installed checkout's
    assert paths.display(clone / "runs" / "a") == "runs/a"
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "another-project"\n')
    monkeypatch.chdir(other / "sub")  # another project's checkout is no checkout of this one
    assert paths.checkout_of(Path.cwd()) is None and paths.workdir() == other / "sub"
    monkeypatch.setenv("SERESNET_WORKDIR", str(tmp_path / "chosen"))
    assert paths.resolve("data") == tmp_path / "chosen" / "data"


# Whose runs a run prunes

def test_keep_checkpoints_prunes_only_this_users_runs_on_this_host(tmp_path):
    here = Maker.here()
    fake_run(tmp_path, 1, STRANGER)
    fake_run(tmp_path, 2, Maker(here.owner, "another-host"))  # a network home: the other host may train it
    fake_run(tmp_path, 3, None)  # made before metrics.json said who made it
    fake_run(tmp_path, 4, here)
    newest = fake_run(tmp_path, 5, here)
    note = checkpoints_kept_for_their_maker(newest, keep=1)
    assert f"run-001 (made by someone-else on {here.host})" in note
    assert f"run-002 (made by {here.owner} on another-host)" in note
    assert "run-003 (who made it is not recorded)" in note and "run-004" not in note
    assert f"it prunes only the runs {this_user()} made on {here.host}" in note
    assert keep_newest_checkpoints(newest, keep=1).startswith("deleted the checkpoint(s) of run-004 ")
    assert with_checkpoint(tmp_path) == ["run-001", "run-002", "run-003", "run-005"]
    assert keep_newest_checkpoints(newest, keep=1) is None  # nothing of ours is left to prune


def test_a_folder_shared_by_a_class_is_named_in_short(tmp_path):
    for number in range(1, 7):
        fake_run(tmp_path, number, Maker(f"student{number}", STRANGER.host))
    note = checkpoints_kept_for_their_maker(fake_run(tmp_path, 7, Maker.here()), keep=1)
    assert "run-001 (made by student1 on" in note and "run-003 (made by student3 on" in note
    assert "run-004" not in note and ", 3 more alone: it prunes only" in note


def test_a_resumed_run_keeps_its_maker_and_an_unrecorded_one_is_adopted(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path))
    assert Run(fake_run(tmp_path, 1, STRANGER), config, resuming=True).maker == STRANGER
    assert Run(fake_run(tmp_path, 2, None), config, resuming=True).maker == Maker.here()
    assert Run(tmp_path / "run-003", config, resuming=False).maker == Maker.here()


def test_prune_by_hand_says_whose_runs_it_leaves_and_deletes_them_only_with_any_owner(tmp_path, capsys):
    fake_run(tmp_path, 1, STRANGER)
    fake_run(tmp_path, 2, None)
    fake_run(tmp_path, 3, Maker.here())
    assert main(["runs", "list", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert f"\n{'':<10}made by someone-else on {STRANGER.host}\n" in listed and listed.count("made by") == 1
    assert main(["runs", "prune", str(tmp_path), "--keep", "0", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"left alone: run-001 (made by someone-else on {STRANGER.host}); another user's or host's runs are " \
           f"pruned only with --any-owner, and do not count among the newest" in out
    assert "run-002/checkpoint.pt" in out and "(who made it is not recorded)" in out  # as before: by hand, it goes
    assert with_checkpoint(tmp_path) == ["run-001"]
    assert main(["runs", "prune", str(tmp_path), "--keep", "0", "--any-owner", "--yes"]) == 0
    assert f"(made by someone-else on {STRANGER.host})" in capsys.readouterr().out
    assert with_checkpoint(tmp_path) == []


def test_prune_by_hand_says_which_checkpoints_it_may_not_delete(tmp_path, monkeypatch, capsys):
    fake_run(tmp_path, 1, Maker.here())

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(training_cli, "delete_unless_training", refused)  # as in another user's folder
    assert main(["runs", "prune", str(tmp_path), "--keep", "0", "--yes"]) == 1
    out = capsys.readouterr().out
    assert f"could not delete {tmp_path / 'run-001' / 'checkpoint.pt'}: Permission denied (its run is another " \
           f"user's, or its folder is read-only)" in out and "deleted 0 checkpoints" in out


# Two readers, and an installed wheel, at once

def install_without_the_checkout(target: Path, scratch: Path) -> None:
    """pip-install the package into ``target`` (not editable), built from a copy of its sources so that the
    build writes nothing in the checkout."""
    sources = scratch / "sources"
    shutil.copytree(ROOT / "seresnet_lib", sources / "seresnet_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, sources / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "--target", str(target), str(sources)],
                   check=True, capture_output=True, timeout=300)


def files_in(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``, with its size and modification time."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*")}


def train_with_the_installed_package(site: Path, folder: Path, out_dir: str, scratch: Path, found: dict) -> None:
    """Install into ``site``, then `seresnet train` in ``folder`` with it: where the package was imported from,
    what ``site`` held before and after, and the command's output go into ``found``."""
    install_without_the_checkout(site, scratch)
    found["before"] = files_in(site)
    command = ("import sys, seresnet_lib.cli as cli; print(cli.__file__, flush=True); "
               "sys.exit(cli.main(sys.argv[1:]))")
    parameters = {**TINY, "out_dir": out_dir, "keep_checkpoints": 0}  # its metrics.json alone says where it went
    arguments = [part for name, value in parameters.items() for part in ("-p", name, str(value))]
    found["run"] = subprocess.run([sys.executable, "-c", command, "train", *arguments],
                                  cwd=folder, env=without_workdir(PYTHONPATH=str(site)), capture_output=True,
                                  text=True, timeout=300)
    found["after"] = files_in(site)


async def run_lesson_05(folder: Path, out_dir: str):
    """Lesson 05 with tiny parameters, its kernel started in ``folder`` with a reader's environment."""
    notebook = parameterize_notebook(load_notebook_node(str(LESSON_05)), {**TINY, "out_dir": out_dir})
    client = NotebookClient(notebook, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(folder)}})
    await client.async_execute(env=without_workdir())
    return notebook


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Readers A and B run lesson 05 in their own folders, in this environment; C runs `seresnet train` with
    the package installed into a folder of its own. Their out_dir's name is new, so nothing else has it."""
    base = tmp_path_factory.mktemp("readers")
    assert paths.checkout_of(base) is None, f"the temporary folders ({base}) must lie outside any checkout"
    folders = SimpleNamespace(a=base / "a", b=base / "b", c=base / "c", site=base / "site-packages")
    for folder in (folders.a, folders.b, folders.c):
        folder.mkdir()
    out_dir = f"runs/readers-{uuid.uuid4().hex[:8]}"
    fake_run(folders.a / out_dir, 1, STRANGER)  # another user's run in A's out_dir: a shared folder
    installed: dict = {}
    wheel = threading.Thread(target=train_with_the_installed_package,
                             args=(folders.site, folders.c, out_dir, base, installed))
    wheel.start()

    async def both():
        return await asyncio.gather(run_lesson_05(folders.a, out_dir), run_lesson_05(folders.b, out_dir))

    try:
        lessons = asyncio.run(both())
    finally:
        wheel.join()
    return SimpleNamespace(**vars(folders), out_dir=out_dir, lessons=lessons, installed=installed)


def test_two_readers_sharing_an_environment_each_keep_their_own_runs(three_runs):
    for folder in (three_runs.a, three_runs.b):
        runs = folder / three_runs.out_dir
        ours = sorted(runs.iterdir())[-1]
        assert with_checkpoint(runs) == (["run-001", "run-002"] if folder == three_runs.a else ["run-001"])
        metrics = json.loads((ours / "metrics.json").read_text())
        assert (metrics["owner"], metrics["host"]) == (this_user(), socket.gethostname())
    for where in (ROOT, ROOT / "notebooks"):  # nothing in the checkout the package is installed from
        assert not (where / three_runs.out_dir).exists()
    printed = "".join(output.get("text", "") for cell in three_runs.lessons[0].cells
                      for output in cell.get("outputs", []))
    assert "new run in " + three_runs.out_dir + "/run-002" in printed  # shown relative to A's folder
    assert f"leaves the checkpoints of run-001 (made by someone-else on {STRANGER.host}) alone" in printed


def test_an_installed_package_writes_nothing_where_it_is_installed_nor_in_the_checkout(three_runs):
    run = three_runs.installed["run"]
    assert run.returncode == 0, run.stderr
    imported_from = Path(run.stdout.splitlines()[0])
    assert imported_from.is_relative_to(three_runs.site) and paths.checkout_of(imported_from) is None
    assert f"new run in {three_runs.out_dir}/run-001" in run.stdout
    assert (three_runs.c / three_runs.out_dir / "run-001" / "metrics.json").is_file()
    assert three_runs.installed["after"] == three_runs.installed["before"]
    assert not (ROOT / three_runs.out_dir).exists() and not (ROOT / "notebooks" / three_runs.out_dir).exists()
