"""Sweeps over a notebook: every run in its own folder, complete runs skipped, failures recorded,
results collected with mean ± std; malformed grids refused before any run.

The sweeps run a small stand-in for lesson 05 whose kernel starts without torch: it writes a
lesson-05-style ``run-001/metrics.json`` whose accuracy is a known function of its parameters.
Lesson 06 sweeps lesson 05 itself.
"""

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from seresnet_lib.cli import main
from seresnet_lib.lab import Row, collect, grid, load_results, results, summarize, sweep
from seresnet_lib.lab.trial import run_trial
from seresnet_lib.paths import RESULTS
from seresnet_lib.training.config import load_preset

STAND_IN = '''\
import json, os, time
from pathlib import Path
Path(out_dir).mkdir(parents=True, exist_ok=True)
(Path(out_dir) / "kernel.pid").write_text(f"{os.getpid()} {os.getppid()}")
if fail:
    raise ValueError(f"width={width} is not allowed")
if seed == kill_worker_at_seed:
    os.kill(os.getppid(), 9)  # the process that started this kernel: a sweep's worker
    time.sleep(10)
while wait_while and os.path.exists(wait_while):
    time.sleep(0.05)
run = Path(out_dir) / "run-001"
run.mkdir(parents=True)
accuracy = width / 100 + seed / 1000
(run / "metrics.json").write_text(json.dumps({
    "status": "complete", "parameters": {"width": width, "seed": seed},
    "epochs": [{"epoch": 1, "test_acc": accuracy / 2}, {"epoch": 2, "test_acc": accuracy}],
    "best_test_acc": accuracy, "model_parameters": 1000 * width, "pid": os.getpid(),
    "visible_gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}))
'''


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> Path:
    parameters = new_code_cell("width = 8\nfail = False\nlabel = 'a'\nkill_worker_at_seed = -1\n"
                               "wait_while = ''\nseed = 0\nout_dir = 'runs/stand-in'")
    parameters.metadata["tags"] = ["parameters"]
    path = tmp_path_factory.mktemp("notebook") / "stand_in.ipynb"
    nbformat.write(new_notebook(cells=[parameters, new_code_cell(STAND_IN)],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), path)
    return path


def test_a_sweep_runs_each_setting_and_seed_in_its_own_folder_records_failures_and_skips_complete_runs(notebook,
                                                                                                       tmp_path):
    """A failing combination is recorded and the others finish; a second sweep skips the complete runs,
    tries the failed one again, and reruns one whose results are gone."""
    lines = []
    grid = [{"width": [8]}, {"width": [99], "fail": [True]}, {"width": [16]}]
    outcomes = sweep(notebook, grid, tmp_path, seeds=[0], progress=lines.append)
    assert [(o.run.name, o.status) for o in outcomes] == [("width=8-seed=0", "complete"),
                                                          ("width=99-fail=True-seed=0", "failed"),
                                                          ("width=16-seed=0", "complete")]
    for name in ("width=8-seed=0", "width=16-seed=0"):
        assert {p.name for p in (tmp_path / name).iterdir()} >= {"stand_in.ipynb", "sweep.json", "run-001"}
    assert lines[0].startswith("[1/3] width=8-seed=0: complete, test acc 8.00% in ")
    assert outcomes[1].error == "ValueError: width=99 is not allowed"
    record = json.loads((tmp_path / outcomes[1].run.name / "sweep.json").read_text())
    assert record["status"] == "failed" and record["error"] == "ValueError: width=99 is not allowed"
    (tmp_path / "width=16-seed=0" / "run-001" / "metrics.json").unlink()  # a run whose results are gone
    again = []
    outcomes = sweep(notebook, grid, tmp_path, seeds=[0], progress=again.append)
    assert [o.status for o in outcomes] == ["skipped", "failed", "complete"]  # a failed run is tried again
    assert again[0] == "[1/3] width=8-seed=0: complete before, skipped"
    assert (tmp_path / "width=16-seed=0" / "run-001" / "metrics.json").exists()


def test_jobs_run_at_once_in_separate_processes_a_dead_worker_fails_only_its_run(notebook, tmp_path, monkeypatch):
    """The first run's kernel kills the worker running it: that run fails, the pool gets a new worker
    and every other run completes; collect reads every run. Four GPUs (as the sweep finds them) and two
    per run: each worker's kernels see a pair of their own, the new worker the pair the dead one had."""
    monkeypatch.setattr(sys.modules["seresnet_lib.lab.sweep"], "visible_gpus", lambda: ["0", "1", "2", "3"])
    grid = [{"width": [99], "kill_worker_at_seed": [0]}, {"width": [8, 16], "label": ["a"]}]
    outcomes = sweep(notebook, grid, tmp_path, seeds=[0, 1], jobs=2, base_params={"fail": False},
                     progress=lambda line: None, gpus_per_run=2)
    assert [o.status for o in outcomes] == ["failed"] + ["complete"] * 5
    assert outcomes[0].error == "its worker process died (killed by signal 9)"
    dead = json.loads((tmp_path / outcomes[0].run.name / "sweep.json").read_text())
    assert dead["status"] == "failed" and dead["gpus"] in ("0,1", "2,3")
    folders = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("width=") and "label" in p.name)
    assert folders == [f"width={w}-label=a-seed={s}" for w in (16, 8) for s in (0, 1)]
    metrics = [json.loads((tmp_path / f / "run-001" / "metrics.json").read_text()) for f in folders]
    kernels = {m["pid"] for m in metrics}
    assert len(kernels) == 4 and os.getpid() not in kernels
    records = [json.loads((tmp_path / f / "sweep.json").read_text()) for f in folders]
    assert [r["gpus"] for r in records] == [m["visible_gpus"] for m in metrics]  # what each kernel was given
    assert {r["gpus"] for r in records} == {"0,1", "2,3"} and "CUDA_VISIBLE_DEVICES" not in os.environ
    for folder in tmp_path.glob("width=99-*"):
        shutil.rmtree(folder)
    rows = collect(tmp_path)
    assert [(r.varied, r.seed, r.final_test_acc) for r in rows] == [
        ({"width": 8}, 0, 0.08), ({"width": 8}, 1, 0.081),
        ({"width": 16}, 0, 0.16), ({"width": 16}, 1, 0.161)]  # label is the same in all
    assert rows[2].as_dict() == {"width": "16", "seed": 0, "final_test_acc": 0.16, "best_test_acc": 0.16,
                                 "model_parameters": 16000, "seconds": rows[2].seconds, "status": "complete",
                                 "test_acc_by_epoch": "0.08 0.16"}
    assert rows[2].curve == [0.08, 0.16]
    with open(tmp_path / "results.csv") as file:
        assert len(list(csv.DictReader(file))) == 4
    loaded = load_results(tmp_path / "results.csv")  # what a committed results.csv gives back
    assert loaded == rows and [r.curve for r in loaded] == [r.curve for r in rows]
    summary = summarize(rows)
    assert [(line["width"], line["n"]) for line in summary] == [("8", 2), ("16", 2)]
    assert summary[0]["mean"] == pytest.approx(statistics.fmean([0.08, 0.081]))
    assert summary[0]["std"] == pytest.approx(statistics.stdev([0.08, 0.081]))
    with open(tmp_path / "summary.csv") as file:
        assert [line["width"] for line in csv.DictReader(file)] == ["8", "16"]


def test_each_job_gets_gpus_of_its_own_and_too_few_are_refused_before_any_run(monkeypatch, tmp_path, capsys):
    sweep_module = sys.modules["seresnet_lib.lab.sweep"]
    monkeypatch.setattr(sweep_module.torch.cuda, "device_count", lambda: 3)  # as CUDA counts them
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert sweep_module.visible_gpus() == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5, 6,7,9")  # CUDA lets three through
    assert sweep_module.visible_gpus() == ["5", "6", "7"]
    assert sweep_module.gpu_groups(["5", "6", "7"], 3, 1) == ["5", "6", "7"]
    assert sweep_module.gpu_groups(["0", "1", "2", "3"], 2, 2) == ["0,1", "2,3"]
    assert sweep_module.gpu_groups([], 2, 1) == [None, None]  # the CPU: the jobs share its threads
    with pytest.raises(ValueError, match=r"3 job\(s\) x 2 GPU\(s\) per run need 6 GPUs, and 3 are visible "
                                         r"\(5,6,7\); use --jobs 1 or fewer GPUs per run"):
        sweep_module.gpu_groups(["5", "6", "7"], 3, 2)
    with pytest.raises(ValueError, match="gpus_per_run must be a whole number >= 1, got 0"):
        sweep_module.gpu_groups(["0"], 1, 0)
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("grid:\n  width: [8, 16]\n")
    assert main(["sweep", str(grid_file), "--jobs", "2", "--gpus-per-run", "2", "--out-dir", str(tmp_path / "out"),
                 "--runner", "inline"]) == 2
    assert "2 job(s) x 2 GPU(s) per run need 4 GPUs, and 3 are visible" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any run


def row(width, seed, accuracy, status="complete"):
    return Row({"width": width}, seed, accuracy, accuracy, 1000 * width, 1.0, status)


def process_state(pid: int) -> list[str]:
    """A process's state, parent, group, session... from /proc; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    return process_state(pid)[:1] not in ([], ["Z"])


def parent_of(pid: int) -> int | None:
    return int(process_state(pid)[1]) if alive(pid) else None


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dying with the parent is Linux's PR_SET_PDEATHSIG")
def test_a_second_sweep_waits_for_runs_another_is_training_and_a_killed_sweep_leaves_no_process(notebook, tmp_path):
    """Sweep A (another process, 2 jobs) completes width=8 and is training width=16 when sweep B starts
    on the same folder: B skips the first, says it waits for the second, and after A is killed
    (SIGKILL) trains it itself. A's workers, their kernels and its resource tracker all end with it."""
    hold = tmp_path / "hold"
    hold.touch()
    settings = [{"width": [8]}, {"width": [16], "wait_while": [str(hold)]}]
    grid_file = tmp_path / "grid.yaml"
    spec = {"notebook": str(notebook), "grid": settings, "out_dir": str(tmp_path / "sweep")}
    grid_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    first = subprocess.Popen([sys.executable, "-m", "seresnet_lib", "sweep", str(grid_file), "--jobs", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        folder = tmp_path / "sweep" / grid.Trial({"width": 16, "wait_while": str(hold)}, 0).name
        wait_until(lambda: (folder / "kernel.pid").exists()
                   and results.read_record(tmp_path / "sweep" / "width=8-seed=0") is not None)
        children = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if parent_of(pid) == first.pid]
        kernel, worker = map(int, (folder / "kernel.pid").read_text().split())
        assert worker in children and len(children) == 3  # two workers and the resource tracker

        def on_line(line):
            lines.append(line)
            if "another sweep is training it" in line:
                first.kill()
                wait_until(lambda: not any(alive(pid) for pid in [kernel, *children]), seconds=10)  # all with it
                hold.unlink()  # only then: A's kernel must not go on writing beside B's

        lines = []
        outcomes = sweep(notebook, settings, tmp_path / "sweep", seeds=[0], progress=on_line)
    finally:
        first.kill()
        first.wait()
    assert [o.status for o in outcomes] == ["skipped", "complete"], outcomes[1].error
    assert lines[:2] == ["[1/2] width=8-seed=0: complete before, skipped",
                         f"[2/2] {folder.name}: another sweep is training it; waiting for it after the others"]
    assert int((folder / "kernel.pid").read_text().split()[1]) == os.getpid()  # trained by B, in this process
    assert not any(alive(pid) for pid in [kernel, *children])  # the workers, their kernels, the resource tracker


def test_summarize_leaves_runs_that_did_not_complete_out_of_the_mean_and_counts_them():
    summary = summarize([row(8, 0, 0.5), row(8, 1, 0.7), row(8, 2, None, "failed"), row(16, 0, 0.9)])
    assert summary[0] == {"width": "8", "n": 2, "mean": pytest.approx(0.6), "std": pytest.approx(0.141421356),
                          "model_parameters": 8000, "not_complete": 1}
    assert summary[1]["std"] is None  # one run has no spread
    text = results.results_table(summary)
    assert "60.00% ± 14.14%" in text and "2 (1 not complete)" in text and "8,000" in text


@pytest.mark.parametrize(
    "grid, base, seeds, message",
    [
        ({"widht": [8]}, {}, [0], "'widht' is not a parameter of stand_in.ipynb; its parameters are: width, fail"),
        ({"width": []}, {}, [0], "grid: width must be a non-empty list of values to try, got []"),
        ({"width": 8}, {}, [0], "grid: width must be a non-empty list of values to try, got 8"),
        ({"width": [8, "16"]}, {}, [0], "grid: width='16' is a str, but width takes a int (its default is 8)"),
        ({"width": [8]}, {"fail": "no"}, [0], "base parameter: fail='no' is a str, but fail takes a bool"),
        ({"seed": [1, 2]}, {}, [0], "seed is set by the sweep for each run"),
        ([], {}, [0], "grid must be a mapping of parameter -> list of values, or a non-empty list"),
        ({"width": [8]}, {}, [], "seeds must be a non-empty list of whole numbers >= 0, got []"),
        ({"width": [8]}, {}, [1, 1], "seeds must not repeat"),
    ],
)
def test_a_malformed_grid_is_refused_before_any_run_naming_the_key(notebook, tmp_path, grid, base, seeds, message):
    with pytest.raises(ValueError) as error:
        sweep(notebook, grid, tmp_path / "sweep", base, seeds=seeds)
    assert message in str(error.value)
    assert not (tmp_path / "sweep").exists()


def test_lesson_05_runs_are_checked_in_full_before_any_starts(tmp_path):
    with pytest.raises(ValueError, match=r"grid: the run model=resnet50-reduction=0-seed=0 is not valid: "
                                         r"reduction must be >= 1, got 0"):
        grid.check_grid({"model": ["resnet50"], "reduction": [16, 0]}, {}, [0], grid.LESSON_05)
    with pytest.raises(ValueError, match=r"base parameter: lr='1e-3' is a str, but lr takes a float .*write 1.0e-3"):
        grid.check_grid({"reduction": [4]}, {"lr": "1e-3"}, [0], grid.LESSON_05)


def test_the_command_line_runs_a_grid_file_and_rejects_a_malformed_one_first(notebook, tmp_path, capsys):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"notebook: {notebook}\nseeds: [0, 1]\nbase: {{fail: false}}\ngrid:\n  width: [8]\n")
    assert main(["sweep", str(grid_file), "--out-dir", str(tmp_path / "sweep"), "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] width=8-seed=3: complete, test acc 8.30%" in out  # --seeds over the file's
    assert "8.30%" in out.split("\n\n")[1] and "results.csv" in out
    grid_file.write_text(f"notebook: {notebook}\ngrid:\n  width: [8, 16]\n  height: [1]\n")
    assert main(["sweep", str(grid_file), "--out-dir", str(tmp_path / "other")]) == 2
    assert "error: 'height' is not a parameter of stand_in.ipynb" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "results.csv" in capsys.readouterr().out


PARAMS = grid.LESSON_05.parent / "params"


@pytest.mark.parametrize("path", sorted(PARAMS.glob("sweep_*.yaml")), ids=lambda p: p.name)
def test_each_grid_file_is_a_valid_sweep(path):
    spec = grid.load_grid_file(path)
    base = grid.base_parameters(spec, path)
    runs = grid.check_grid(spec["grid"], base, spec["seeds"], grid.LESSON_05)
    assert len(runs) >= 2 * len(spec["seeds"]) and spec["out_dir"].startswith("runs/")


def test_a_grid_files_preset_gives_every_run_its_parameters_and_base_wins(tmp_path):
    (tmp_path / "long.yaml").write_text("epochs: 9\nlr: 0.05\nseed: 3\nout_dir: runs/long\nresume: false\n")
    (tmp_path / "grid.yaml").write_text("preset: long.yaml\nbase: {lr: 0.02}\ngrid: {model: [resnet50]}\n")
    spec = grid.load_grid_file(tmp_path / "grid.yaml")
    assert grid.base_parameters(spec, tmp_path / "grid.yaml") == {"epochs": 9, "lr": 0.02}  # the sweep's own
    (tmp_path / "grid.yaml").write_text("preset: missing.yaml\ngrid: {model: [resnet50]}\n")
    with pytest.raises(FileNotFoundError, match="no preset file .*missing.yaml"):
        grid.base_parameters(grid.load_grid_file(tmp_path / "grid.yaml"), tmp_path / "grid.yaml")
    (tmp_path / "grid.yaml").write_text("preset: [long.yaml]\ngrid: {model: [resnet50]}\n")
    with pytest.raises(ValueError, match=r"preset must name one preset file, e.g. reference.yaml, got \['long.yaml'\]"):
        grid.load_grid_file(tmp_path / "grid.yaml")
    (tmp_path / "list.yaml").write_text("- epochs\n")
    with pytest.raises(ValueError, match="the preset file .*list.yaml must hold a mapping of name: value, got list"):
        load_preset(tmp_path / "list.yaml")


def test_a_results_csv_from_before_learning_curves_loads_without_them():
    rows = load_results(RESULTS / "ablations_synthetic.csv")  # lesson 06's, committed before
    assert len(rows) == 25 and all(row.curve == [] and row.status == "complete" for row in rows)


def test_lesson_06s_preset_sets_every_parameter_of_the_lesson():
    lesson = grid.LESSON_05.parent / "06_experiments.ipynb"
    preset = yaml.safe_load((PARAMS / "06_cifar10.yaml").read_text())
    assert set(preset) == set(grid.notebook_parameters(lesson))
    base = {k: preset[k] for k in ("dataset", "train_size", "test_size", "epochs", "batch_size", "lr", "lr_step")}
    grid.check_grid([{"model": ["resnet50"]}], base, preset["seeds"], grid.LESSON_05)
    assert preset["dataset"] == "cifar10" and preset["train_size"] is None and preset["epochs"] == 12
    assert preset["zero_init_residual"] is False  # the article's start, where SE learns (lesson 07)


def test_a_grid_file_with_an_unknown_key_is_refused(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("grid: {reduction: [4]}\nseed: [0]\n")
    with pytest.raises(ValueError, match="unknown key.s. seed; allowed: notebook, grid, base, seeds, out_dir, preset"):
        grid.load_grid_file(path)


def test_runs_that_would_train_alike_run_once():
    runs = grid.check_grid({"model": ["resnet50", "seresnet50"], "reduction": [4, 16]}, {}, [0],
                                  grid.LESSON_05)
    assert [run.name for run in runs] == ["model=resnet50-reduction=4-seed=0", "model=seresnet50-reduction=4-seed=0",
                                          "model=seresnet50-reduction=16-seed=0"]  # ResNet-50 has no reduction


def test_compare_refuses_a_setting_that_matches_several():
    rows = [Row({"model": "seresnet50", "reduction": r}, s, 0.5 + s / 100, 0.5, 1, 1.0, "complete")
            for r in (4, 16) for s in (0, 1)] + [Row({"model": "resnet50", "reduction": None}, s, 0.4 + s / 50, 0.4, 1,
                                                     1.0, "complete") for s in (0, 1)]
    with pytest.raises(ValueError, match="matches 2 settings .*name more parameters"):
        results.compare(rows, {"model": "resnet50"}, {"model": "seresnet50"})
    comparison = results.compare(rows, {"model": "resnet50"}, {"reduction": 4})
    assert comparison.difference == pytest.approx(0.095) and comparison.runs == (2, 2)


def test_a_sweep_into_a_read_only_file_system_is_refused_before_any_run(notebook, tmp_path, capsys):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"a read-only file system needs mount (root): {mounted.stderr.decode().strip()}")
    try:
        grid_file = tmp_path / "grid.yaml"
        grid_file.write_text(f"notebook: {notebook}\ngrid:\n  width: [8]\n")
        assert main(["sweep", str(grid_file), "--out-dir", str(read_only)]) == 2
    finally:
        subprocess.run(["umount", str(read_only)], check=True)
    assert capsys.readouterr().err == (f"error: cannot write in the sweep's folder {read_only} (Read-only file "
                                       f"system); choose a folder you can write to\n")


def test_a_run_another_sweep_completed_after_this_one_looked_is_not_trained_again(notebook, tmp_path):
    """Two sweeps that start together both find a run to do; the one that gets it second finds it
    complete once it holds it, and skips it instead of training it again."""
    [first] = sweep(notebook, {"width": [8]}, tmp_path, seeds=[0], progress=lambda line: None)
    trained_by = (tmp_path / first.run.name / "kernel.pid").read_text()
    base = {k: v for k, v in grid.notebook_parameters(notebook).items() if k not in grid.SET_BY_SWEEP}
    again = run_trial(notebook, tmp_path / first.run.name, first.run, base)  # as the second sweep would
    assert again.status == "skipped" and (tmp_path / first.run.name / "kernel.pid").read_text() == trained_by
