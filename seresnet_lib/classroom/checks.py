"""Self-checks for the lessons' exercises.

Each ``check_*`` returns a ``CheckResult``: shown in a notebook it reads
"✓ ..." or "✗ ..." with what is wrong, and it is truthy only when the answer is right.
Module checks copy the student's weights into the library's version of the part and
compare outputs; when they differ, they try the usual mistakes to name the one made.
A notebook also records the result in machine-readable form (``CHECK_MIME``), which
``seresnet check`` reads to grade a student's copy.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import math
import numbers
import re
import statistics
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..model.excitations import recording
from ..model.layers import Bottleneck, SqueezeExcitation, Stem
from ..model.measure import count_parameters, evaluation_mode, output_shapes, stage_shapes
from ..model.models import ResNet, ResNetConfig

CHECK_MIME = "application/vnd.seresnet.check+json"  # JupyterLab shows the text/plain beside it


@dataclass(frozen=True)
class CheckResult:
    """``passed``: the answer is right. ``done``: False while the exercise still holds its placeholder."""

    passed: bool
    message: str
    done: bool = True

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("✓ " if self.passed else "✗ ") + self.message

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """How a notebook displays the result: the text, and the same as data for grading."""
        return {"text/plain": repr(self),
                CHECK_MIME: {"passed": self.passed, "done": self.done, "message": self.message}}


def _fail(message: str) -> CheckResult:
    return CheckResult(False, message)


def _not_done(what: str) -> CheckResult:
    return CheckResult(False, f"Not done yet: replace None with {what}.", done=False)


def _number(answer) -> int | float | None:
    """``answer`` as a plain number: an int or a float, also from a one-number tensor or NumPy scalar
    (``.item()``); None for anything else, True and False included."""
    if getattr(answer, "shape", None) == () and callable(getattr(answer, "item", None)):
        answer = answer.item()  # torch.tensor(0.0096), numpy.float64(0.0096)
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        return None
    return int(answer) if isinstance(answer, numbers.Integral) else float(answer)


def _whole_number(answer) -> int | None:
    """A count given as ``5029888`` or ``5029888.0`` (what / gives) as an int; None for anything else."""
    if (number := _number(answer)) is None:
        return None
    if isinstance(number, int):
        return number
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _not_a_module(obj, what: str) -> CheckResult | None:
    if obj is None:
        return _not_done(f"your {what}")
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return _fail(f"You passed the class {obj.__name__} itself; pass an instance of it: {obj.__name__}().")
    if not isinstance(obj, nn.Module):
        return _fail(f"Expected your {what} as an nn.Module, got {type(obj).__name__}.")
    return None


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor | CheckResult:
    """The module's eval-mode output, or a failed check saying what went wrong."""
    try:
        with evaluation_mode(module), torch.no_grad():
            out = module(x)
    except Exception as error:  # the student's code may raise anything
        return _fail(f"Your module raised {type(error).__name__}: {error}")
    if not isinstance(out, torch.Tensor):
        return _fail(f"forward() must return one tensor, yours returns a {type(out).__name__}.")
    return out


def randomize_batchnorm(module: nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics and affine terms, as a trained network has.

    With its defaults (mean 0, variance 1, scale 1, shift 0) an eval-mode BN is the
    identity, which would hide mistakes around it.
    """
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
            bn.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            bn.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            bn.bias.data.copy_(0.2 * torch.randn(n, generator=generator))


def _with_random_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of the student's module with randomized BN (the original is left as it is)."""
    module = copy.deepcopy(module)
    randomize_batchnorm(module)
    return module


def _load_same_weights(reference: nn.Module, student: nn.Module, names: str) -> CheckResult | None:
    """Copy the student's weights into ``reference``; a failed check if names or shapes differ."""
    theirs, ours = student.state_dict(), reference.state_dict()
    if set(theirs) != set(ours):
        layers = ", ".join(dict.fromkeys(key.split(".")[0] for key in theirs))
        return _fail(f"Shapes and parameter count are right, but name the layers as in the skeleton "
                     f"({names}) so they can be compared; yours are named: {layers}.")
    for key, value in ours.items():
        if theirs[key].shape != value.shape:
            return _fail(f"{key} has shape {tuple(theirs[key].shape)} but should have {tuple(value.shape)}"
                         + (": write it as a 1x1 nn.Conv2d." if value.ndim == 4 and theirs[key].ndim == 2 else "."))
    reference.load_state_dict(theirs)
    return None


def _is_se(module: nn.Module) -> bool:
    return isinstance(module, SqueezeExcitation) or all(
        isinstance(getattr(module, name, None), nn.Conv2d) for name in ("fc1", "fc2"))


def _forward_source(module: nn.Module) -> str:
    """The source of the module's forward(), or "" if it cannot be read (then nothing is inferred from it)."""
    try:
        return inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return ""


# The classes of the "find the bug" exercises (02.1 and 03.2) as the lessons hand them out. While a
# class's methods read as here, its check says only that the exercise is not done: the student runs
# the cell and reads its output first, and the check names the bug once the code has changed.
# tests/test_notebooks.py fails if a lesson's cell and these drift apart.
HANDED_OUT_BUGS = (
    """\
class BuggyIdentityBlock(nn.Module):
    def __init__(self, channels=256, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = torch.relu(self.bn3(self.conv3(out)))
        return torch.relu(out + self.shortcut(x))
""",
    """\
class BuggySE(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)

    def forward(self, x):
        z = x.amax(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
""",
)


def _code_lines(source: str) -> list[str]:
    """The non-blank lines of ``source``, without trailing blanks: what a comparison of code looks at."""
    return [line.rstrip() for line in source.splitlines() if line.strip()]


def _methods_source(module: nn.Module) -> str:
    """The source of the methods the module's class defines, in order; "" if any cannot be read.

    A class defined in a notebook cell has no readable source of its own, but its methods do
    (IPython keeps each cell's code where ``inspect`` finds it).
    """
    methods = [value for value in vars(type(module)).values() if inspect.isfunction(value)]
    try:
        return "\n".join(inspect.getsource(method) for method in methods)
    except (OSError, TypeError):
        return ""


def _handed_out_bug(module: nn.Module) -> CheckResult | None:
    """Not done, without a word about the bug, if ``module`` is a "find the bug" class left as handed out."""
    methods = _code_lines(_methods_source(module))
    if methods and any(methods == _code_lines(source)[1:] for source in HANDED_OUT_BUGS):
        return CheckResult(False, "Not done yet: run the cell, read what it prints, and find the bug.", done=False)
    return None


def _conv_with_bias(module: nn.Module) -> str | None:
    """The name of a convolution with a bias, if any: the BN after it makes a bias redundant.

    SE modules are skipped, whatever they are called: their 1x1 convs have no BN after them
    and keep their biases.
    """
    se_modules = [name + "." for name, child in module.named_modules() if name and _is_se(child)]
    for name, conv in module.named_modules():
        if isinstance(conv, nn.Conv2d) and conv.bias is not None and not name.startswith(tuple(se_modules)):
            return name
    return None


def _diagnose(
    got: torch.Tensor, expected: torch.Tensor, mistakes: dict[str, Callable[[], torch.Tensor]], passed: str
) -> CheckResult:
    """Right, or the name of the first typical mistake that reproduces ``got``."""
    if torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
        return CheckResult(True, passed)
    with torch.no_grad():
        for mistake, variant in mistakes.items():
            if torch.allclose(got, variant(), atol=1e-5, rtol=1e-4):
                return _fail(mistake)
    gap = (got - expected).abs().max().item()
    return _fail(f"The outputs differ from the library's with your weights (largest difference {gap:.3g}). "
                 f"Compare your forward() with the diagram, step by step.")


def _as_shape(answer, length: int) -> tuple[int, ...] | CheckResult:
    """``answer`` as a tuple of ``length`` ints, or a failed check saying what is wrong with it."""
    if answer is None:
        return _not_done("(channels, height, width)")
    if not isinstance(answer, (tuple, list)) or len(answer) != length:
        return _fail(f"Give the answer as a tuple (channels, height, width), got {answer!r}.")
    if any(_number(v) is None for v in answer):
        return _fail(f"Give each size as a plain Python number (an int such as 40): got {answer!r}.")
    sizes = tuple(_whole_number(v) for v in answer)
    if None in sizes:
        return _fail(f"Sizes are whole numbers; use // (floor division), not /. Got {answer!r}.")
    return sizes


def _channels_not_first(answer: tuple[int, ...], expected: tuple[int, ...]) -> CheckResult | None:
    """A failed check if ``answer`` puts the channels anywhere but first."""
    if answer[0] != expected[0] and sorted(answer) == sorted(expected):
        return _fail(f"The order is (channels, height, width): PyTorch puts the channels first, and yours "
                     f"has {expected[0]} channels in another place.")
    return None


# Lesson 01: the stem

def check_stem_output_size(answer, input_size: int) -> CheckResult:
    """``answer``: the (C, H, W) the ImageNet stem gives for a 3 x input_size x input_size image."""
    answer = _as_shape(answer, 3)
    if isinstance(answer, CheckResult):
        return answer
    shapes = output_shapes(Stem("imagenet"), (3, input_size, input_size), ["conv"])
    after_conv, expected = shapes["conv"], shapes[""]
    if answer == expected:
        return CheckResult(True, f"{answer} is right: {input_size} -> {after_conv[1]} (7x7 conv, stride 2, "
                                 f"padding 3) -> {expected[1]} (3x3 max-pool, stride 2, padding 1).")
    if (order := _channels_not_first(answer, expected)) is not None:
        return order
    if answer[0] != 64:
        return _fail(f"The stem has 64 output channels (the conv has 64 filters), not {answer[0]}.")
    if answer == after_conv:
        return _fail(f"{answer} is the size after the 7x7 conv; the max-pool halves it once more.")
    def stem_size(conv_padding: int = 3, pool_padding: int = 1, plus_one: int = 1) -> int:
        after_conv = (input_size + 2 * conv_padding - 7) // 2 + plus_one
        return (after_conv + 2 * pool_padding - 3) // 2 + plus_one

    slips = [what for size, what in ((stem_size(0, 0), "both paddings"), (stem_size(0), "the conv's padding"),
                                     (stem_size(pool_padding=0), "the max-pool's padding"),
                                     (stem_size(plus_one=0), "the + 1 of the formula"))
             if answer[1:] == (size, size)]
    if slips:
        either = ", ".join(slips[:-1]) + " or " + slips[-1] if len(slips) > 1 else slips[0]
        return _fail(f"You left out {either}: each layer gives floor((in + 2 * padding - kernel) / "
                     f"stride) + 1, and the conv pads by 3, the max-pool by 1.")
    return _fail("Not quite. Apply out = floor((in + 2 * padding - kernel) / stride) + 1 twice: "
                 "conv (kernel 7, stride 2, padding 3), then max-pool (kernel 3, stride 2, padding 1).")


def check_cifar_stem(stem) -> CheckResult:
    """``stem``: a module with layers ``conv``, ``bn`` (and a ReLU) for 32 x 32 images."""
    if (problem := _not_a_module(stem, "CIFAR stem")) is not None:
        return problem
    x = torch.randn(2, 3, 32, 32)
    out = _run(stem, x)
    if isinstance(out, CheckResult):
        return out
    if tuple(out.shape[1:]) != (64, 32, 32):
        shape = " x ".join(map(str, out.shape[1:]))
        hint = "it should keep 32 x 32: a 3x3 conv with stride 1 and padding 1, and no max-pool"
        return _fail(f"Your stem turns 3 x 32 x 32 into {shape}; {hint}, with 64 filters.")
    if _conv_with_bias(stem) is not None:
        return _fail("Your conv has a bias. The BN right after it adds its own shift, so use bias=False.")
    reference = Stem("cifar")
    expected, got = count_parameters(reference), count_parameters(stem)
    if got != expected:
        return _fail(f"Expected {expected:,} parameters (3*3*3*64 conv weights + 64+64 for BN), got {got:,}.")
    student = _with_random_batchnorm(stem)
    if (problem := _load_same_weights(reference, student, "conv, bn")) is not None:
        return problem
    r = reference.eval()
    with torch.no_grad():
        got, expected = _run(student, x), r(x)
        conv = r.conv(x)
    pool = nn.MaxPool2d(3, stride=1, padding=1)
    mistakes = {
        "The ReLU comes before BN; the order is conv, BN, ReLU.": lambda: r.bn(torch.relu(conv)),
        "BN is defined but not applied: conv, BN, ReLU.": lambda: torch.relu(conv),
        "The ReLU after BN is missing.": lambda: r.bn(conv),
        "There is a max-pool; the CIFAR stem has none.": lambda: pool(torch.relu(r.bn(conv))),
    }
    return _diagnose(got, expected, mistakes,
                     "Right: 3 x 32 x 32 -> 64 x 32 x 32 with 1,856 parameters, and no max-pool.")


# ResNet-50's four stages: the output channels of their blocks, and how many blocks each has
_STAGES = ((256, 3), (512, 4), (1024, 6), (2048, 3))


def _other_reduction(se, channels: int, reduction: int) -> float | None:
    """The reduction ratio an SE module (``fc1``: channels -> channels / r) was built with, if not ``reduction``."""
    fc1 = getattr(se, "fc1", None)
    if not isinstance(fc1, nn.Conv2d) or fc1.in_channels != channels or fc1.out_channels == channels // reduction:
        return None
    return getattr(se, "reduction", None) or channels / fc1.out_channels


# Lesson 02: the bottleneck blocks

_BLOCK_NAMES = "conv1, bn1, conv2, bn2, conv3, bn3, shortcut"


def check_bottleneck(
    block, in_channels: int, width: int, stride: int = 1, reduction: int | None = None, stride_at: str = "1x1"
) -> CheckResult:
    """``block``: a bottleneck as in the lesson's skeleton (layer names as in ``_BLOCK_NAMES``).

    ``stride_at`` says where the stride should sit: "1x1" (original design) or "3x3" (v1.5).
    """
    if (problem := _not_a_module(block, "block")) is not None:
        return problem
    if (untouched := _handed_out_bug(block)) is not None:
        return untouched
    size = 16
    x = torch.randn(2, in_channels, size, size)
    expected_shape = (width * 4, -(-size // stride), -(-size // stride))
    strided = [name for name in ("conv1", "conv2")
               if isinstance(conv := getattr(block, name, None), nn.Conv2d) and conv.stride != (1, 1)]
    if stride > 1 and len(strided) == 2:
        return _fail(f"Both {strided[0]} and {strided[1]} have a stride, so the block shrinks the size twice; only "
                     f"one conv of the main path carries the stride.")
    shortcut = getattr(block, "shortcut", None)
    projects = isinstance(shortcut, nn.Module) and count_parameters(shortcut) > 0
    shortcut_calls = []
    if projects:
        hook = shortcut.register_forward_hook(lambda *_: shortcut_calls.append(True))
    try:
        out = _run(block, x)
    finally:
        if projects:
            hook.remove()
    if isinstance(out, CheckResult):
        if "must match" not in out.message:
            return out
        if (stride > 1 or in_channels != 4 * width) and not projects:
            return _fail(out.message + " -- the shortcut must match the main path's shape: when the channels or "
                         "the size change, project x with a 1x1 conv (with the block's stride) and BN.")
        if projects and not shortcut_calls and "shortcut" not in _forward_source(block):
            return _fail(out.message + " -- forward() never calls self.shortcut: add self.shortcut(x), "
                         "not x itself.")
        return _fail(out.message + " -- the main path and the shortcut give different shapes: check that the "
                     "3x3 conv has padding=1 and that both paths use the block's stride.")
    if tuple(out.shape[1:]) != expected_shape:
        got = " x ".join(map(str, out.shape[1:]))
        want = " x ".join(map(str, expected_shape))
        return _fail(f"Your block gives {got} for a {in_channels} x {size} x {size} input; expected {want} "
                     f"(the last 1x1 conv expands to 4 x {width} channels, and stride {stride} divides the size).")
    if (name := _conv_with_bias(block)) is not None:
        return _fail(f"Your conv {name} has a bias; every conv here is followed by BN, so use bias=False.")

    reference = Bottleneck(in_channels, width, stride, reduction=reduction, stride_at=stride_at)
    expected, got = count_parameters(reference), count_parameters(block)
    if got != expected:
        projection = 4 * width * in_channels + 2 * 4 * width
        if isinstance(reference.shortcut, nn.Identity) and got == expected + projection:
            return _fail("Your Identity Block has a projection shortcut: input and output shapes match, so "
                         "the shortcut is x itself.")
        if reduction and got == expected - count_parameters(SqueezeExcitation(4 * width, reduction)):
            return _fail(f"Your block has no SE module: add self.se = SqueezeExcitation({4 * width}, "
                         f"reduction={reduction}) and apply it.")
        if reduction and (built := _other_reduction(getattr(block, "se", None), 4 * width, reduction)):
            if got - count_parameters(block.se) == expected - count_parameters(reference.se):
                return _fail(f"Your SE module squeezes {4 * width} channels to {block.se.fc1.out_channels}: it was "
                             f"built with reduction {built:g}, and this block's is {reduction} (to "
                             f"{4 * width // reduction}): SqueezeExcitation({4 * width}, reduction={reduction}).")
        shortcut = getattr(block, "shortcut", None)
        if (got == expected - 2 * 4 * width and isinstance(shortcut, nn.Module)
                and not any(isinstance(m, nn.BatchNorm2d) for m in shortcut.modules())):
            return _fail("Your projection shortcut has no batch normalization. Like every conv in the block, "
                         "its 1x1 conv is followed by one.")
        return _fail(f"Expected {expected:,} parameters, got {got:,}.")
    if stride > 1 and stride_at == "1x1" and strided == ["conv2"]:
        return _fail("The stride is in the wrong place: on your 3x3 conv (torchvision's \"v1.5\"). The original "
                     "design, followed here, puts it on the first 1x1 conv.")
    if stride > 1 and stride_at == "3x3" and strided == ["conv1"]:
        return _fail("The stride is on your first 1x1 conv (the original design); in \"v1.5\" it sits on the 3x3 conv.")

    student = _with_random_batchnorm(block)
    names = _BLOCK_NAMES + (", se" if reduction else "")
    if (problem := _load_same_weights(reference, student, names)) is not None:
        return problem
    r = reference.eval()
    got = _run(student, x)
    with torch.no_grad():
        expected = r(x)
        shortcut = r.shortcut(x)

    def branch(relu1=torch.relu, relu2=torch.relu):
        return r.bn3(r.conv3(relu2(r.bn2(r.conv2(relu1(r.bn1(r.conv1(x))))))))

    def skip(t):
        return t

    main = branch()
    mistakes = {
        "There is a ReLU after the last BN. The residual branch must be able to add negative values: "
        "apply ReLU only after the addition.": lambda: torch.relu(r.se(torch.relu(main)) + shortcut),
        "The ReLU after the addition is gone, but the one after the last BN is still there. Which of the two "
        "stops the residual branch from adding negative values?":
            lambda: r.se(torch.relu(main)) + shortcut,
        "The ReLU after the addition is missing.": lambda: r.se(main) + shortcut,
        "The ReLU after bn1 is missing.": lambda: torch.relu(r.se(branch(relu1=skip)) + shortcut),
        "The ReLU after bn2 is missing.": lambda: torch.relu(r.se(branch(relu2=skip)) + shortcut),
    }
    if reduction:
        expanded = r.conv3(torch.relu(r.bn2(r.conv2(torch.relu(r.bn1(r.conv1(x)))))))
        mistakes.update({
            "Your block defines its SE module but forward() never applies it.": lambda: torch.relu(main + shortcut),
            "SE is applied after the addition; it belongs on the residual branch, before it.":
                lambda: torch.relu(r.se(main + shortcut)),
            "SE is applied to the block's output, after the addition and the ReLU; it belongs on the residual "
            "branch, before the addition.": lambda: r.se(torch.relu(main + shortcut)),
            "SE is applied to the shortcut; it recalibrates the residual branch's channels, and the shortcut "
            "stays as it is.": lambda: torch.relu(main + r.se(shortcut)),
            "SE sits between conv3 and bn3; it comes after the branch's last BN.":
                lambda: torch.relu(r.bn3(r.se(expanded)) + shortcut),
        })
    kind = "Conv Block" if stride > 1 or in_channels != 4 * width else "Identity Block"
    return _diagnose(got, expected, mistakes, f"Your {kind} matches the library's with the same weights.")


# Lesson 03: squeeze-and-excitation

def check_se_parameter_count(answer, channels: int, reduction: int) -> CheckResult:
    """``answer``: the parameters of one SE module on ``channels`` channels with ratio ``reduction``."""
    if answer is None:
        return _not_done("a number")
    if (answer := _whole_number(given := answer)) is None:
        return _fail(f"Give the answer as a whole number, got {given!r}.")
    expected = count_parameters(SqueezeExcitation(channels, reduction))
    hidden = channels // reduction
    if answer == expected:
        return CheckResult(True, f"{answer:,} is right: 2 * {channels} * {hidden} weights "
                                 f"+ {hidden} + {channels} biases.")
    if answer == 2 * channels * hidden:
        return _fail("You counted the weights only: both 1x1 convs also have a bias, one value per output channel.")
    if answer in (channels * hidden, channels * hidden + hidden, channels * hidden + channels):
        return _fail("That is one of the two layers; count both: C -> C/r and C/r -> C.")
    if answer > expected and answer % expected == 0:
        modules = answer // expected
        stage = next((number for number, (width, blocks) in enumerate(_STAGES, start=1)
                      if width == channels and blocks == modules), None)
        whole = f"a whole stage: stage {stage}'s {modules} blocks" if stage else f"{modules} blocks"
        return _fail(f"That is the SE modules of {whole}, each with its own module. The exercise asks for one "
                     f"module, of one block.")
    return _fail(f"Not quite: the module has two 1x1 convs, {channels} -> {hidden} and {hidden} -> {channels}, "
                 f"each with weights and a bias.")


def check_se_module(module, channels: int, reduction: int) -> CheckResult:
    """``module``: an SE module with ``fc1`` and ``fc2`` 1x1 convs, as in the lesson's skeleton."""
    if (problem := _not_a_module(module, "SE module")) is not None:
        return problem
    if (untouched := _handed_out_bug(module)) is not None:
        return untouched
    x = torch.randn(2, channels, 7, 7)
    out = _run(module, x)
    if isinstance(out, CheckResult):
        return out
    if tuple(out.shape) == (2, channels, 1, 1):
        return _fail("Your module returns the channel weights only; return the input scaled by them: x * weights.")
    if out.shape != x.shape:
        return _fail(f"SE keeps the shape of its input ({channels} x 7 x 7); yours gives "
                     f"{' x '.join(map(str, out.shape[1:]))}.")
    reference = SqueezeExcitation(channels, reduction)
    expected, got = count_parameters(reference), count_parameters(module)
    if got != expected:
        return _fail(f"Expected {expected:,} parameters (fc1: {channels} -> {channels // reduction}, fc2: back, "
                     f"both with bias), got {got:,}.")
    if (problem := _load_same_weights(reference, module, "fc1, fc2")) is not None:
        return problem
    r = reference.eval()
    with torch.no_grad():
        expected = r(x)

    def excite(pooled, last=torch.sigmoid, middle=torch.relu):
        return last(r.fc2(middle(r.fc1(pooled))))

    average, maximum = x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    mistakes = {
        "The squeeze uses max-pooling; SE squeezes with global AVERAGE pooling.": lambda: x * excite(maximum),
        "The sigmoid at the end is missing: the channel weights must lie between 0 and 1.":
            lambda: x * excite(average, last=lambda t: t),
        "The last activation is a ReLU; SE ends with a sigmoid.": lambda: x * excite(average, last=torch.relu),
        "The ReLU between the two 1x1 convs is missing.": lambda: x * excite(average, middle=lambda t: t),
        "The weights are added to the input; SE multiplies: x * weights.": lambda: x + excite(average),
    }
    return _diagnose(out, expected, mistakes, "Your SE module matches the library's with the same weights.")


# Lesson 04: the whole network

def check_stage4_shape(answer, input_size: int, stem: str = "imagenet") -> CheckResult:
    """``answer``: the (C, H, W) after stage4 for a 3 x input_size x input_size image and ``stem``."""
    answer = _as_shape(answer, 3)
    if isinstance(answer, CheckResult):
        return answer
    shapes = stage_shapes(ResNet(ResNetConfig(stem=stem)), (3, input_size, input_size))
    expected = shapes["stage4"]
    if answer == expected:
        walk = " -> ".join(str(shapes[k][1]) for k in ("stem", "stage1", "stage2", "stage3", "stage4"))
        return CheckResult(True, f"{answer} is right: {input_size} -> {walk}.")
    if (order := _channels_not_first(answer, expected)) is not None:
        return order
    if answer[0] != 2048:
        return _fail(f"stage4 ends with 4 x 512 = 2048 channels, not {answer[0]}.")
    if answer[1] != answer[2]:
        return _fail("A square image stays square: height and width are the same at every stage.")
    rounded_down = _halved_rounding_down(shapes["stage1"][1], halvings=3)
    if rounded_down != expected[1] and answer[1:] == (rounded_down, rounded_down):
        return _fail("You rounded down where a halving meets an odd size. A 1x1 conv with stride 2 and no padding "
                     "keeps every other position starting from the first, so odd sizes round up: n -> (n + 1) / 2.")
    if answer[1] in (2 * expected[1], (expected[1] + 1) // 2):
        return _fail("Off by a factor of two: count the halvings again. The ImageNet stem halves twice "
                     "(conv and max-pool), the CIFAR stem not at all, and stages 2, 3 and 4 once each.")
    return _fail("Not quite: follow the size through the stem and the three stages that halve it, rounding "
                 "as the convolution formula does.")


def _halved_rounding_down(size: int, halvings: int) -> int:
    for _ in range(halvings):
        size //= 2
    return size


def check_resnet101(model) -> CheckResult:
    """``model``: ResNet-101 for 1000 classes, built with the library's ResNet and ResNetConfig."""
    if (problem := _not_a_module(model, "ResNet-101")) is not None:
        return problem
    config = getattr(model, "config", None)
    if not isinstance(config, ResNetConfig):
        return _fail("Build it with the library: ResNet(ResNetConfig(...)).")
    if config.reduction is not None:
        return _fail(f"Your model has SE modules (reduction={config.reduction}); ResNet-101 here is without SE.")
    if config.blocks == ResNetConfig().blocks:
        return _fail("That is ResNet-50 (3, 4, 6, 3). ResNet-101 has 23 blocks in stage 3.")
    if config.blocks != (3, 4, 23, 3):
        return _fail(f"Your stages have {config.blocks} blocks; ResNet-101 has (3, 4, 23, 3).")
    with torch.device("meta"):  # shapes only: no memory, no initialization
        expected = count_parameters(ResNet(ResNetConfig(blocks=(3, 4, 23, 3))))
    got = count_parameters(model)
    if got != expected:
        return _fail(f"Expected {expected:,} parameters for 1000 classes with the default stem and widths, "
                     f"got {got:,}.")
    return CheckResult(True, f"Right: ResNet-101 has {got:,} parameters, with 23 blocks in stage 3.")


# Lesson 05: training

def check_steps_per_epoch(answer, images: int, batch_size: int) -> CheckResult:
    """``answer``: optimizer steps in one epoch over ``images`` images in batches of ``batch_size``."""
    if answer is None:
        return _not_done("a number")
    if (number := _number(given := answer)) is None:
        return _fail(f"Give the answer as a number, got {given!r}.")
    answer = number if (whole := _whole_number(number)) is None else whole  # 391.0 as 391
    full, rest = divmod(images, batch_size)
    expected = full + (rest > 0)
    if answer == expected:
        last = f"; the last batch has {rest} images" if rest else ""
        return CheckResult(True, f"{answer} is right: {full} full batches of {batch_size}{last}.")
    if rest and answer == full:
        return _fail(f"The {rest} images left after {full} full batches make one more, smaller batch.")
    if answer == images / batch_size:
        return _fail("Steps are whole: count the full batches and the smaller last one.")
    return _fail(f"Not quite: how many batches of {batch_size} does it take to show all {images:,} images once?")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def check_learning_rate(answer, epoch: int, lr: float = 0.01, step: int = 5, gamma: float = 0.1) -> CheckResult:
    """``answer``: the learning rate in ``epoch`` (counted from 1) under StepLR(step, gamma) from ``lr``."""
    if answer is None:
        return _not_done("a number")
    if (answer := _number(given := answer)) is None:
        return _fail(f"Give the answer as a number, got {given!r}.")
    decays = (epoch - 1) // step
    expected = lr * gamma**decays
    if math.isclose(answer, expected, rel_tol=1e-6):
        return CheckResult(True, f"{answer:g} is right: epoch {epoch} comes after {_count(decays, 'decay')} "
                                 f"by {gamma:g}.")
    if decays and math.isclose(answer, lr, rel_tol=1e-6):
        return _fail(f"{lr:g} is the starting rate; by epoch {epoch} it has been multiplied by {gamma:g} "
                     f"{_times(decays)}.")
    for wrong, word in ((decays - 1, "too few"), (decays + 1, "too many")):
        if wrong >= 0 and math.isclose(answer, lr * gamma**wrong, rel_tol=1e-6):
            return _fail(f"One decay {word}. Epochs 1-{step} use {lr:g}; the rate is multiplied by {gamma:g} "
                         f"after every {step} epochs.")
    if any(math.isclose(answer, lr * gamma ** (e / step), rel_tol=1e-6) for e in (epoch - 1, epoch)):
        return _fail(f"Decays are whole: the rate changes only once every {step} epochs, so count full steps.")
    return _fail(f"Not quite: the rate starts at {lr:g} and is multiplied by {gamma:g} after every {step} epochs.")


@functools.cache
def _resnet50_parameters(reduction: int | None, se_stages: tuple[int, ...]) -> int:
    """The parameters of ResNet-50 for 1000 classes, with SE at ``reduction`` in ``se_stages``."""
    with torch.device("meta"):  # counting needs no weights
        return count_parameters(ResNet(ResNetConfig(reduction=reduction, se_stages=se_stages)))


def check_se_cost(answer, reduction: int, stages: tuple[int, ...] = (1, 2, 3, 4)) -> CheckResult:
    """``answer``: the parameters SE adds to ResNet-50 (1000 classes) at ``reduction``, in ``stages``."""
    if answer is None:
        return _not_done("a whole number")
    if (answer := _whole_number(given := answer)) is None:
        return _fail(f"Give the answer as a whole number, got {given!r}.")
    expected = _resnet50_parameters(reduction, tuple(stages)) - _resnet50_parameters(None, (1, 2, 3, 4))
    where = [(channels, blocks) for stage, (channels, blocks) in enumerate(_STAGES, start=1) if stage in stages]
    if answer == expected:
        return CheckResult(True, f"{answer:,} is right: " + " + ".join(f"{blocks} x SE({channels})"
                                                                       for channels, blocks in where) + ".")
    for other in (2, 4, 8, 16, 32, 64):
        cost = sum(blocks * (2 * channels * (channels // other) + channels // other + channels)
                   for channels, blocks in where)
        if other != reduction and answer == cost:
            return _fail(f"That is SE's cost at r = {other}; this exercise asks for r = {reduction}: each module "
                         f"squeezes its C channels to C/{reduction}.")
    if answer == sum(blocks * 2 * channels * (channels // reduction) for channels, blocks in where):
        return _fail("You counted the weights only: each of the two 1x1 convs of an SE module has a bias too "
                     "(C/r and C values).")
    if answer == sum(2 * channels * (channels // reduction) + channels // reduction + channels
                     for channels, _ in where):
        return _fail("That is one SE module per stage; every block of a stage has its own (3, 4, 6 and 3 blocks).")
    if answer == sum(blocks * (2 * (channels // 4) ** 2 // reduction + (channels // 4) // reduction + channels // 4)
                     for channels, blocks in where):
        return _fail("SE acts on a block's output, after the last 1x1 conv has expanded it 4x: 256, 512, 1024 "
                     "and 2048 channels, not 64-512.")
    return _fail(f"Not quite: add up, over the {sum(b for _, b in where)} blocks with SE, the module's "
                 f"2 * C * C/r weights and C/r + C biases (C: the block's output channels).")


def check_difference_spread(answer, a: list[float], b: list[float]) -> CheckResult:
    """``answer``: the standard error of mean(b) - mean(a), each list the results of one setting's seeds."""
    if answer is None:
        return _not_done("a number")
    if (answer := _number(given := answer)) is None:
        return _fail(f"Give the answer as a number, got {given!r}.")
    if min(len(a), len(b)) < 2:
        return _fail("Each setting needs at least two runs: one run has no spread to measure.")

    def error(variance) -> float:
        return math.sqrt(variance(a) / len(a) + variance(b) / len(b))

    expected = error(statistics.variance)
    if math.isclose(answer, expected, rel_tol=1e-2):  # within 1%: 0.0096 (compare()'s "0.96 points") is right
        difference = statistics.fmean(b) - statistics.fmean(a)
        verdict = "larger" if abs(difference) > 2 * expected else "not larger"
        return CheckResult(True, f"{answer:.3g} is right: the difference of the means, {difference:+.3g}, is "
                                 f"{verdict} than two standard errors ({2 * expected:.3g}).")
    if math.isclose(answer, 100 * expected, rel_tol=1e-2):
        return _fail("That is in points, a hundred times the fraction: the accuracies are fractions (0.476, not "
                     "47.6), so give the standard error as a fraction too.")
    if math.isclose(answer, error(statistics.pvariance), rel_tol=1e-2):
        return _fail("That uses the population variance (divided by n); a few seeds are a sample of all the seeds "
                     "you could have run, so divide by n - 1 (statistics.variance, or stdev squared).")
    if math.isclose(answer, expected**2, rel_tol=1e-2):
        return _fail("That is the variance of the difference; the standard error is its square root.")
    if math.isclose(answer, statistics.stdev(a) + statistics.stdev(b), rel_tol=1e-2):
        return _fail("Standard deviations do not add; variances do. And each mean's variance is the runs' "
                     "variance divided by the number of runs.")
    if math.isclose(answer, math.sqrt(statistics.variance(a) + statistics.variance(b)), rel_tol=1e-2):
        return _fail("That is the spread of one run against another; a mean of n runs varies less: divide each "
                     "variance by its number of runs.")
    return _fail("Not quite: the standard error of a difference of two means is sqrt(s_a^2 / n_a + s_b^2 / n_b), "
                 "with s the sample standard deviation of each setting's runs.")


# Lesson 07: inside SE. Its exercise 07.1 hooks the gate of one block (stage 4's last), 07.2 the gate of
# every block of stage 4. A hook one of them leaves behind runs in every later forward pass, so the
# checks compute what they compare with under none of the students' hooks, fail an exercise only for
# hooks it left itself, and note the others.

_RECORDING, _SWITCHING = "07.1", "07.2"
_RECORDED_BLOCK, _SWITCHED_STAGE = (4, 3), 4  # where the lesson's exercises hook: (stage, block), stage
_REMOVE = ("To take off those already there, call remove() on their handles; a hook whose handle is lost "
           "goes only with the model: run the cell that loads it again.")


def _in_code(name: str) -> str:
    """A module's name as a reader reaches it: "stage4.2.se.gate" -> "model.stage4[2].se.gate"."""
    return "model." + re.sub(r"\.(\d+)", r"[\1]", name)


def _se_of(model: nn.Module, stage: int) -> list[SqueezeExcitation]:
    """The SE modules of ``stage``, block by block."""
    return [block.se for block in getattr(model, f"stage{stage}", [])
            if isinstance(getattr(block, "se", None), SqueezeExcitation)]


@contextmanager
def _hooks_set_aside(model: nn.Module) -> Iterator[None]:
    """While the block runs, no forward hook or pre-hook registered on the model runs; afterwards they are all
    back, and their handles still remove them. What a check computes must not depend on a student's leftovers."""
    saved = []
    for module in model.modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks"):
            if hooks := getattr(module, kind):
                saved.append((module, kind, hooks))
                setattr(module, kind, OrderedDict())
    try:
        yield
    finally:
        for module, kind, hooks in saved:
            setattr(module, kind, hooks)


def _logits_with(model: nn.Module, images: torch.Tensor,
                 replace: dict[nn.Module, Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    """The model's logits (as floats, on the CPU) with each module of ``replace`` giving what its function makes
    of the module's output, and no hook of anyone else's running."""
    with _hooks_set_aside(model):
        handles = [module.register_forward_hook(lambda _module, _inputs, output, make=make: make(output))
                   for module, make in replace.items()]
        try:
            with torch.no_grad():
                return model(images).float().cpu()
        finally:
            for handle in handles:
                handle.remove()


@dataclass(frozen=True)
class _LeftHooks:
    """The hooks still registered on a model, by the exercise of lesson 07 that registers hooks there."""

    recorded: tuple[int, int]  # (stage, block) whose gate 07.1 hooks
    switched: int  # the stage whose every gate 07.2 hooks
    recording: int  # hooks on that gate (or its SE module), beyond the sets below
    switching: int  # hooks on every gate of that stage: one per gate and set
    elsewhere: dict[str, int]  # module name -> hooks that cannot be told apart

    @classmethod
    def on(cls, model: nn.Module, recorded: tuple[int, int], switched: int) -> _LeftHooks:
        hooked = {name: len(module._forward_hooks) + len(module._forward_pre_hooks)
                  for name, module in model.named_modules()}
        gates = [f"stage{switched}.{i}.se.gate" for i, block in enumerate(getattr(model, f"stage{switched}", []))
                 if isinstance(getattr(block, "se", None), SqueezeExcitation)]
        sets = min((hooked.get(gate, 0) for gate in gates), default=0)
        for gate in gates:
            hooked[gate] -= sets
        stage, block = recorded
        recording = sum(hooked.pop(f"stage{stage}.{block - 1}.se{part}", 0) for part in (".gate", ""))
        return cls(recorded, switched, recording, sets * len(gates),
                   {name: count for name, count in hooked.items() if count})

    def own(self, exercise: str) -> CheckResult | None:
        """A failed check if ``exercise`` (07.1 or 07.2) left hooks behind."""
        if exercise == _RECORDING and self.recording:
            return _fail(f"{self._how_many(self.recording)} on {self._recorded_gate()}, where this exercise hooks: "
                         f"every forward pass runs {'it' if self.recording == 1 else 'them'} from now on. Register "
                         f"your hook just before the cell's try, whose finally removes it even after an error. "
                         f"{_REMOVE}")
        if exercise == _SWITCHING and self.switching:
            return _fail(f"{self._how_many(self.switching)} on the gates of model.stage{self.switched}'s blocks, "
                         f"as this exercise registers them: stage {self.switched}'s SE stays switched off in every "
                         f"forward pass from now on. Register them inside the cell's try and append each handle to "
                         f"handles; its finally removes them even after an error. {_REMOVE}")
        return None

    def note(self, exercise: str) -> str:
        """A sentence on the hooks ``exercise`` did not leave; "" if there are none."""
        where = []
        if self.recording and exercise != _RECORDING:
            where.append(f"{self.recording} on {self._recorded_gate()}, where exercise {_RECORDING} hooks")
        if self.switching and exercise != _SWITCHING:
            where.append(f"{self.switching} on the gates of model.stage{self.switched}'s blocks, as exercise "
                         f"{_SWITCHING} registers them")
        where += [f"{count} on {_in_code(name)}" for name, count in self.elsewhere.items()]
        if not where:
            return ""
        return (f"Note: hooks are still registered on the model, {'; '.join(where)}. Every forward pass runs "
                f"them; this check set them aside. {_REMOVE}")

    def _recorded_gate(self) -> str:
        stage, block = self.recorded
        return f"model.stage{stage}[{block - 1}].se.gate"

    @staticmethod
    def _how_many(count: int) -> str:
        return f"{_count(count, 'hook')} {'is' if count == 1 else 'are'} still registered"


def _noted(result: CheckResult, note: str) -> CheckResult:
    """``result`` with ``note`` after its message: the verdict stays the exercise's own."""
    return CheckResult(result.passed, f"{result.message} {note}", result.done) if note else result


def check_recorded_excitations(answer, model: nn.Module, images: torch.Tensor, stage: int = 4,
                               block: int = 3) -> CheckResult:
    """``answer``: the excitations (N x C) of the SE module of ``block`` in ``stage`` for ``images``."""
    if answer is None:
        return _not_done("the N x C excitations")
    left = _LeftHooks.on(model, (stage, block), _SWITCHED_STAGE)
    if (own := left.own(_RECORDING)) is not None:
        return own
    return _noted(_recorded_excitations(answer, model, images, stage, block, left), left.note(_RECORDING))


def _recorded_excitations(answer, model: nn.Module, images: torch.Tensor, stage: int, block: int,
                          left: _LeftHooks) -> CheckResult:
    """The verdict on 07.1's answer, against excitations recorded with the students' hooks set aside."""
    if isinstance(answer, tuple) and answer and isinstance(answer[0], torch.Tensor):
        return _fail("That is a tuple, as a hook receives the module's inputs: store the gate's output (the hook's "
                     "third argument), flattened to N x C.")
    if not isinstance(answer, torch.Tensor):
        return _fail(f"Give the answer as a tensor, got {type(answer).__name__}.")
    target, gate = f"stage{stage}.{block}", f"model.stage{stage}[{block - 1}].se.gate"
    model.eval()
    se = getattr(model, f"stage{stage}")[block - 1].se
    seen = {}
    with _hooks_set_aside(model):
        handles = [se.register_forward_pre_hook(lambda module, inputs: seen.update(se_input=inputs[0])),
                   se.register_forward_hook(lambda module, inputs, output: seen.update(se_output=output)),
                   se.gate.register_forward_pre_hook(lambda module, inputs: seen.update(gate_input=inputs[0]))]
        try:
            with torch.no_grad(), recording(model) as recorded:
                model(images)
        finally:
            for handle in handles:
                handle.remove()
    expected = recorded[target][0]
    values = answer.detach().float().cpu()
    same = values.numel() == expected.numel() and torch.allclose(values.reshape(expected.shape), expected, atol=1e-5)
    if same and values.shape == expected.shape:
        return CheckResult(True, f"Right: {tuple(values.shape)} weights in (0, 1), the model untouched; their "
                                 f"mean is {expected.mean().item():.3f}.")
    if same:
        return _fail(f"Right values, shape {tuple(values.shape)}: flatten the 1 x 1 map away (.flatten(1)) to get "
                     f"N x C = {tuple(expected.shape)}.")
    flat = values.reshape(values.shape[0], -1) if values.dim() > 1 else values
    mistakes = {
        "se_output": "That is the SE module's output, each channel already multiplied by its weight: hook the "
                     "module's gate (the sigmoid) to get the weights themselves.",
        "gate_input": "Those are the gate's inputs, the logits before the sigmoid (not between 0 and 1): a forward "
                      "hook is called as hook(module, inputs, output), and the excitations are its output.",
        "se_input": "That is what the SE module receives, the block's feature maps before SE scales them: hook "
                    f"{gate} and store its output.",
    }
    for name, message in mistakes.items():
        tensor = seen[name].flatten(1).float().cpu()
        if flat.shape == tensor.shape and torch.allclose(flat, tensor, atol=1e-5):
            return _fail(message)
    for name, weights in recorded.items():
        if name != target and flat.shape == weights[0].shape and torch.allclose(flat, weights[0], atol=1e-5):
            return _fail(f"Those are the weights of {name}, another block: hook {gate} (blocks count from 0 in "
                         f"code).")
    if flat.shape != expected.shape:
        return _fail(f"Expected N x C = {tuple(expected.shape)}, got {tuple(values.shape)}.")
    if left.switching and bool((flat == 1).all()):
        return _fail("Your weights are all 1: a hook that returns ones ran on the gate before yours, and yours "
                     "stored what it returned.")
    return _fail(f"Not quite: store the output of {gate} (the hook's third argument), flattened to N x C, from one "
                 f"forward pass over the images, with the model in evaluation mode.")


def check_se_switched_off(answer, model: nn.Module, images: torch.Tensor, stage: int = 4) -> CheckResult:
    """``answer``: the logits (N x classes) for ``images`` with the SE modules of ``stage`` scaling by 1."""
    if answer is None:
        return _not_done(f"the logits with stage {stage}'s SE switched off")
    left = _LeftHooks.on(model, _RECORDED_BLOCK, stage)
    if (own := left.own(_SWITCHING)) is not None:
        return own
    return _noted(_switched_off(answer, model, images, stage), left.note(_SWITCHING))


def _switched_off(answer, model: nn.Module, images: torch.Tensor, stage: int) -> CheckResult:
    """The verdict on 07.2's answer, against logits computed with the students' hooks set aside."""
    if not isinstance(answer, torch.Tensor):
        return _fail(f"Give the answer as a tensor, got {type(answer).__name__}.")
    model.eval()
    answer = answer.detach().float().cpu()
    modules = _se_of(model, stage)
    gates = [se.gate for se in modules]
    if not gates:
        raise ValueError(f"stage {stage} of this model has no SE modules to switch off")
    expected = _logits_with(model, images, dict.fromkeys(gates, torch.ones_like))
    usual = _logits_with(model, images, {})
    if answer.shape != expected.shape:
        return _fail(f"Expected the logits, N x classes = {tuple(expected.shape)}, got {tuple(answer.shape)}.")
    if torch.allclose(answer, expected, atol=1e-4):
        return CheckResult(True, f"Right: with stage {stage}'s SE at scale 1 the logits change by up to "
                                 f"{(expected - usual).abs().max():.3g}.")
    if torch.allclose(answer, usual, atol=1e-5):
        return _fail("These are the model's usual logits: the hook must return the new output "
                     "(torch.ones_like(output)); a hook that returns None changes nothing.")
    every = f"hook the gate of every block: for block in model.stage{stage}"
    mistakes = {
        f"With zeros, stage {stage}'s SE modules scale every channel by 0, which removes their blocks' residual "
        f"branches; switched off, SE scales by 1: return torch.ones_like(output).":
            lambda: _logits_with(model, images, dict.fromkeys(gates, torch.zeros_like)),
        "Those are the logits with each SE module's whole output replaced by ones, which replaces its block's "
        "residual branch: hook block.se.gate, whose output is the channel weights.":
            lambda: _logits_with(model, images, dict.fromkeys(modules, torch.ones_like)),
    }
    for some in range(1, len(gates)):
        for chosen in itertools.combinations(range(len(gates)), some):
            blocks = " and ".join(f"model.stage{stage}[{i}]" for i in chosen)
            mistakes[f"Those are the logits with SE switched off in {blocks} only, {some} of stage {stage}'s "
                     f"{len(gates)} blocks: {every}."] = (
                lambda chosen=chosen: _logits_with(model, images, {gates[i]: torch.ones_like for i in chosen}))
    for other in sorted({1, 2, 3, 4} - {stage}):
        if others := [se.gate for se in _se_of(model, other)]:
            mistakes[f"Those are the logits with stage {other}'s SE switched off, not stage {stage}'s."] = (
                lambda others=others: _logits_with(model, images, dict.fromkeys(others, torch.ones_like)))
    for message, logits in mistakes.items():
        if torch.allclose(answer, logits(), atol=1e-4):
            return _fail(message)
    return _fail(f"Not quite: {every}, with a hook that returns torch.ones_like(output); run the model under "
                 f"torch.no_grad(), then remove the hooks.")
