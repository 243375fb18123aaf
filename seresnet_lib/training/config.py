"""One validated object that holds every knob of a training run.

The training lesson's papermill ``parameters`` cell feeds it; everything after reads it.
Bad values fail here, before any data is loaded or model built, with a message that
names the parameter and what is allowed.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import yaml
from yaml import MarkedYAMLError
from yaml.reader import ReaderError

from ..model.models import DEFAULT_REDUCTION, ResNetConfig
from ..parameters import PlainYamlLoader, YamlRefused, is_cell_history, names_set_by_parameter_cells
from ..validate import check_bool, check_choice, check_int, check_number, check_str
from .data import DATASETS

_MODELS = ("seresnet50", "resnet50")
_SCHEDULES = ("step", "cosine")
_DEVICES = ("auto", "cpu", "cuda")
_PRECISIONS = ("auto", "fp32", "bf16")
# For longer runs: lesson 05's parameters cell leaves them out; papermill (-p) and presets set them.
FOR_LONGER_RUNS = ("precision", "torch_compile", "sync_bn", "keep_checkpoints")
_NETWORK = ResNetConfig()  # the network's own defaults, for the fields that choose it


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are the original article's recipe except for the dataset (offline) and sizes.

    ``model``, ``stem``, ``reduction``, ``se_stages``, ``se_position`` and ``zero_init_residual``
    choose the network: ``network()`` gives it as the model's ``ResNetConfig``, which checks
    them and gives their defaults. ``FOR_LONGER_RUNS`` (``precision``, ``torch_compile``,
    ``sync_bn``, ``keep_checkpoints``) are left out of lesson 05's parameters cell.
    """

    dataset: str = "synthetic"
    model: str = "seresnet50"
    stem: str = _NETWORK.stem
    reduction: int = DEFAULT_REDUCTION
    se_stages: tuple[int, ...] = _NETWORK.se_stages  # the stages whose blocks get SE
    se_position: str = _NETWORK.se_position  # where SE sits in a block: "standard", "pre", "post" or "identity"
    zero_init_residual: bool = _NETWORK.zero_init_residual
    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    schedule: str = "step"
    lr_step: int = 5
    lr_gamma: float = 0.1
    augment: bool = False
    normalize: bool = False
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True  # the faster layout on CPUs and GPUs alike (seresnet benchmark)
    precision: str = "auto"  # "bf16": bfloat16 autocast; "fp32"; "auto": bf16 on a GPU that has it, else fp32
    torch_compile: bool = False  # torch.compile the model (minutes of compiling first, then faster steps)
    sync_bn: bool = False  # with several processes (torchrun): batch statistics over all of them
    out_dir: str = "runs/05_train_cifar10"
    resume: bool | str = False  # True: the newest run with a checkpoint; "run-001" or a path: that run
    keep_checkpoints: int | None = 1  # runs in out_dir whose checkpoint is kept, this one included; None: all;
    # 0: none is written, and the other runs' are deleted too (sweeps of short runs, each in its own out_dir).
    # Only the runs this user made on this host count: another user's or host's, and runs made before
    # metrics.json recorded who made them, keep their checkpoints (`seresnet runs prune` deletes them by hand)
    data_dir: str = "data"
    download: bool = True

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("model", self.model, _MODELS)
        check_choice("schedule", self.schedule, _SCHEDULES)
        check_choice("device", self.device, _DEVICES)
        check_choice("precision", self.precision, _PRECISIONS)
        check_int("reduction", self.reduction, 1)
        if isinstance(self.se_stages, list):  # as YAML and JSON give it
            object.__setattr__(self, "se_stages", tuple(self.se_stages))
        self.network(num_classes=10)  # checks stem, reduction, se_stages, se_position, zero_init_residual
        check_int("epochs", self.epochs)
        if isinstance(self.batch_size, int) and self.batch_size == 1:
            raise ValueError("batch_size must be >= 2: batch norm cannot train on a single image")
        check_int("batch_size", self.batch_size, 2)
        check_int("lr_step", self.lr_step)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_number("lr", self.lr, "> 0", lambda v: v > 0 and math.isfinite(v))
        check_number("momentum", self.momentum, "in [0, 1)", lambda v: 0 <= v < 1)
        check_number("weight_decay", self.weight_decay, ">= 0", lambda v: 0 <= v < math.inf)
        check_number("lr_gamma", self.lr_gamma, "in (0, 1]", lambda v: 0 < v <= 1)
        for name in ("nesterov", "augment", "normalize", "channels_last", "download",
                     "torch_compile", "sync_bn"):
            check_bool(name, getattr(self, name))
        if isinstance(self.resume, os.PathLike):
            object.__setattr__(self, "resume", os.fspath(self.resume))
        if not isinstance(self.resume, bool) and not (isinstance(self.resume, str) and self.resume):
            raise ValueError(f"resume must be True, False, or the run to continue (\"run-001\" or a path), "
                             f"got {self.resume!r} ({type(self.resume).__name__})")
        if isinstance(self.resume, str) and self.resume.lower() in ("true", "false"):
            raise ValueError(f"resume={self.resume!r} is text, not True or False: write it without quotes "
                             f"(with papermill, -p rather than -r)")
        keep = self.keep_checkpoints
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
            raise ValueError(f"keep_checkpoints must be an integer >= 0 (this run's own checkpoint counts; 0 writes "
                             f"none), or None to keep every run's; got {keep!r}")
        for name in ("out_dir", "data_dir"):
            check_str(name, getattr(self, name))
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0; set momentum (e.g. 0.9) or nesterov=False")
        if self.train_size is not None:
            check_int("train_size", self.train_size)
            if self.train_size < self.batch_size:
                raise ValueError(f"train_size={self.train_size} is smaller than batch_size={self.batch_size}; "
                                 f"allowed: train_size >= batch_size, or None for the whole training set")
        if self.test_size is not None:
            check_int("test_size", self.test_size)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but no CUDA GPU is available here; use device='auto' or 'cpu'")

    def network(self, num_classes: int) -> ResNetConfig:
        """The network this run trains, with ``num_classes`` outputs (ResNet-50 has no SE: no reduction)."""
        return ResNetConfig(num_classes=num_classes, reduction=self.reduction if self.model == "seresnet50" else None,
                            stem=self.stem, zero_init_residual=self.zero_init_residual, se_stages=self.se_stages,
                            se_position=self.se_position)

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype to autocast to (None: plain fp32), ``precision`` resolved on this device.

        "auto" is bfloat16 on a GPU that computes in it natively (compute capability 8.0 and up:
        A100, H100, RTX 30xx and later), fp32 on older GPUs (where it is emulated, and slower) and on CPUs.
        """
        if self.precision == "bf16":
            return torch.bfloat16
        if self.precision == "auto" and self.torch_device.type == "cuda" and \
                torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        return None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_namespace(cls, namespace: dict) -> TrainConfig:
        """The config from a notebook's global variables (``globals()``) after its parameters cell.

        papermill only warns about a parameter the notebook does not have, so a misspelt
        name (``epoch`` for ``epochs``) would silently train with the default: it is refused
        here instead. In a notebook the names checked are those assigned by the latest run of
        the ``parameters`` cell and by papermill's injected ``# Parameters`` cell, read from
        IPython's record of the cells run, so the lesson's own variables never count and its
        cells can be re-run in any order. Outside IPython, every global holding a plain value
        that is not a parameter is refused.
        """
        names = [f.name for f in fields(cls)]
        if "In" in namespace:
            if not is_cell_history(namespace["In"]):
                raise ValueError("In is IPython's list of the cells run so far, not a parameter; "
                                 f"the parameters are: {', '.join(names)}")
            candidates = names_set_by_parameter_cells(namespace["In"], set(names)) & namespace.keys()
        else:
            plain = (bool, int, float, str, list, tuple, dict, type(None))
            candidates = {name for name, value in namespace.items()
                          if isinstance(value, plain) and not name.startswith("_")}
        unknown = sorted(candidates - set(names))
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}; the parameters are: {', '.join(names)}")
        return cls(**{name: namespace[name] for name in names if name in namespace})

    def unused(self) -> dict[str, str]:
        """Parameters that the options chosen ignore, each with the option that makes it so.

        They are accepted (a notebook's parameters cell sets them all) and marked in ``describe``.
        """
        ignored = {}
        if self.schedule == "cosine":
            ignored.update(lr_step="schedule='cosine'", lr_gamma="schedule='cosine'")
        if self.model == "resnet50":
            ignored.update(reduction="model='resnet50'", se_stages="model='resnet50'", se_position="model='resnet50'")
        if self.dataset == "synthetic":
            ignored.update(data_dir="dataset='synthetic'", download="dataset='synthetic'")
        return ignored

    def describe(self) -> str:
        """One ``name = value`` line per parameter; those the chosen options ignore say so."""
        values, unused = self.as_dict(), self.unused()
        width = max(map(len, values))
        return "\n".join(f"{name:>{width}} = {value!r}" + (f"  (unused with {unused[name]})" if name in unused else "")
                         for name, value in values.items())


_YAML_BYTES = 64 * 1024  # far above any preset or grid file (the largest here is under 2 KB)
def read_yaml(path: str | Path, what: str) -> dict:
    """The mapping a YAML file (a preset, a grid file: ``what``) holds; FileNotFoundError or ValueError
    naming the file (and the line) if it is missing, not a file, over 64 KiB, not text, not YAML as the
    project writes it (no anchors or aliases: ``PlainYamlLoader``) or not a mapping."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a folder; a pipe or a device could block or never end
            raise ValueError(f"the {what} {path} is {'a folder' if path.is_dir() else 'not a regular file'}, "
                             f"not a YAML file")
        with open(path, "rb") as file:
            data = file.read(_YAML_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read the {what} {path}: {error.strerror or error}") from None
    if len(data) > _YAML_BYTES:
        raise ValueError(f"the {what} {path} is over {_YAML_BYTES // 1024} KiB; a {what} is a few lines of YAML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"the {what} {path} is not text (UTF-8): byte {data[error.start]:#04x} at position "
                         f"{error.start}") from None
    try:
        loader = PlainYamlLoader(text)
    except ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise ValueError(f"{path}, line {line}: not valid YAML: character #x{error.character:04x} is not allowed "
                         f"(a control character)") from None
    try:
        content = loader.get_single_data()
    except MarkedYAMLError as error:
        raise ValueError(_yaml_problem(path, error)) from None
    except (yaml.YAMLError, ValueError) as error:  # ValueError: a date 2024-13-01, a number of 5,000 digits
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    finally:
        loader.dispose()
    if content is None:
        raise ValueError(f"the {what} {path} is empty: it must hold a mapping of name: value")
    if not isinstance(content, dict):
        raise ValueError(f"the {what} {path} must hold a mapping of name: value, got {type(content).__name__}")
    return content


def _yaml_problem(path: Path, error: MarkedYAMLError) -> str:
    """What is wrong with a YAML file, with its line, without quoting it (a line may be thousands of characters)."""
    mark = error.problem_mark or error.context_mark
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else f"{path}"
    problem = f"{error.problem} ({error.context})" if error.context else f"{error.problem}"
    problem = problem if len(problem) <= 120 else problem[:119] + "…"
    return f"{where}: {problem}" if isinstance(error, YamlRefused) else f"{where}: not valid YAML: {problem}"


def load_preset(path: str | Path) -> dict:
    """The parameters a preset file (YAML, ``notebooks/params/``) sets: a mapping of name -> value.

    The names are not checked here: ``TrainConfig`` refuses unknown ones, a sweep its own."""
    return read_yaml(path, "preset file")
