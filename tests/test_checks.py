"""The exercise self-checks accept right answers and name typical mistakes."""

import statistics
from collections import OrderedDict

import pytest
import torch
from torch import nn

from seresnet_lib import Bottleneck, ResNet, ResNetConfig, SqueezeExcitation, Stem, count_multiply_adds, hook_count
from seresnet_lib.classroom import checks


class HandBlock(nn.Module):
    """A bottleneck written the way the lesson's skeleton asks, with switchable mistakes."""

    def __init__(self, in_channels, width, stride=1, se=None, mistake=None):
        super().__init__()
        out = 4 * width
        s1, s3 = {"stride_on_3x3": (1, stride), "stride_on_both": (stride, stride)}.get(mistake, (stride, 1))
        bias = mistake == "bias"
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=s1, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=0 if mistake == "no_padding" else 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(out)
        needs_projection = stride != 1 or in_channels != out
        if mistake == "shortcut_without_bn":
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False))
        elif (needs_projection and mistake != "no_projection") or mistake == "extra_projection":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        else:
            self.shortcut = nn.Identity()
        if se:
            self.se = SqueezeExcitation(out, se)
        self.mistake = mistake

    def forward(self, x):
        se = getattr(self, "se", nn.Identity())
        mistake = self.mistake
        out = self.bn1(self.conv1(x))
        out = out if mistake == "no_relu1" else torch.relu(out)
        out = self.bn2(self.conv2(out))
        out = out if mistake == "no_relu2" else torch.relu(out)
        out = self.conv3(out)
        out = self.bn3(se(out)) if mistake == "se_before_bn3" else self.bn3(out)
        if mistake in ("relu_after_bn3", "relu_moved"):
            out = torch.relu(out)
        if mistake not in ("se_after_add", "se_after_relu", "se_before_bn3", "se_on_shortcut", "se_unused"):
            out = se(out)
        shortcut = self.shortcut(x)
        out = out + (se(shortcut) if mistake == "se_on_shortcut" else shortcut)
        if mistake == "se_after_add":
            out = se(out)
        out = out if mistake in ("no_final_relu", "relu_moved") else torch.relu(out)
        return se(out) if mistake == "se_after_relu" else out


class HandSE(nn.Module):
    def __init__(self, channels, reduction, mistake=None):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.mistake = mistake

    def forward(self, x):
        pooled = x.amax((2, 3), keepdim=True) if self.mistake == "max_pool" else x.mean((2, 3), keepdim=True)
        hidden = self.fc1(pooled)
        hidden = hidden if self.mistake == "no_middle_relu" else torch.relu(hidden)
        weights = self.fc2(hidden)
        weights = {"no_sigmoid": weights, "relu_gate": torch.relu(weights)}.get(self.mistake, torch.sigmoid(weights))
        if self.mistake == "weights_only":
            return weights
        return x + weights if self.mistake == "added" else x * weights


def test_result_reads_as_a_tick_or_a_cross():
    assert repr(checks.CheckResult(True, "fine")) == "✓ fine"
    assert repr(checks.CheckResult(False, "wrong")) == "✗ wrong"
    assert not checks.CheckResult(False, "wrong")


@pytest.mark.parametrize("check", [checks.check_cifar_stem, lambda m: checks.check_bottleneck(m, 256, 64),
                                   lambda m: checks.check_se_module(m, 64, 4), checks.check_resnet101,
                                   lambda a: checks.check_stem_output_size(a, 224),
                                   lambda a: checks.check_se_parameter_count(a, 256, 16),
                                   lambda a: checks.check_stage4_shape(a, 224),
                                   lambda a: checks.check_steps_per_epoch(a, 50_000, 128),
                                   lambda a: checks.check_learning_rate(a, 12)])
def test_unfinished_exercise_says_so(check):
    result = check(None)
    assert not result and "replace None" in result.message and not result.done


def test_a_notebook_shows_the_text_and_records_the_result_as_data():
    bundle = checks.CheckResult(False, "wrong")._repr_mimebundle_()
    assert bundle == {"text/plain": "✗ wrong",
                      checks.CHECK_MIME: {"passed": False, "done": True, "message": "wrong"}}


def test_counting_only_the_weights_is_told_without_the_answer():
    result = checks.check_se_parameter_count(2 * 2048 * 128, channels=2048, reduction=16)
    assert not result and "counted the weights only" in result.message
    assert not any(number in result.message for number in ("128", "2048", "2,048", "526"))


RIGHT_NUMBERS = [  # each numeric self-check, and a right answer that is a whole number
    (lambda a: checks.check_se_parameter_count(a, 2048, 16), 526_464),
    (lambda a: checks.check_se_cost(a, 8), 30_603_912 - 25_557_032),
    (lambda a: checks.check_steps_per_epoch(a, 50_000, 128), 391),
    (lambda a: checks.check_learning_rate(a, 1, lr=1), 1),
    (lambda a: checks.check_difference_spread(a, [0, 4], [1, 1]), 2),
]


@pytest.mark.parametrize("check, right", RIGHT_NUMBERS, ids=["03.1", "06.1", "05.1", "05.2", "06.2"])
def test_numeric_answers_are_taken_as_ints_integral_floats_or_one_number_tensors(check, right):
    for answer in (right, float(right), torch.tensor(right), torch.tensor(float(right))):
        assert check(answer), f"{answer!r}: {check(answer).message}"
    for answer in (True, str(right), torch.tensor([right, right])):
        result = check(answer)
        assert not result and "Give the answer as a" in result.message and "number" in result.message


def test_a_float_count_gets_its_diagnosis_not_a_refusal():
    result = checks.check_se_cost(5_029_888.0, reduction=8)  # the weights only, as / gives it
    assert not result and "You counted the weights only" in result.message


@pytest.mark.parametrize("shape", [(64, 56.0, 56.0), (64, torch.tensor(56), 56)])
def test_sizes_are_taken_as_ints_or_integral_floats(shape):
    assert checks.check_stem_output_size(shape, 224)


# Lesson 01

@pytest.mark.parametrize(
    "answer, passed, message",
    [
        ((64, 56, 56), True, "224 -> 112 (7x7 conv"),
        ((64, 112, 112), False, "the size after the 7x7 conv"),
        ((64, 54, 54), False, "You left out both paddings"),
        ((3, 56, 56), False, "64 output channels"),
        ((64, 50, 50), False, "Apply out = floor"),
        ((56, 56, 64), False, "The order is (channels, height, width)"),
        ((64, "56", "56"), False, "Give each size as a plain Python number"),
        ((64, 55, 55), False, "You left out the conv's padding, the max-pool's padding or the + 1 of the formula"),
        ("64x56x56", False, "Give the answer as a tuple"),
    ],
)
def test_stem_output_size(answer, passed, message):
    result = checks.check_stem_output_size(answer, 224)
    assert bool(result) is passed and message in result.message


@pytest.mark.parametrize("answer", [(64, 56.0, 56.0), (64, 56, 56)])
def test_whole_floats_count_as_sizes(answer):
    assert checks.check_stem_output_size(answer, 224)


def test_fractional_sizes_are_refused():
    result = checks.check_stem_output_size((64, 55.5, 55.5), 224)
    assert not result and "whole numbers" in result.message


def test_stem_output_size_for_another_input():
    assert checks.check_stem_output_size((64, 40, 40), 160)
    assert not checks.check_stem_output_size((64, 56, 56), 160)
    channels_last = checks.check_stem_output_size((40, 40, 64), 160)  # lesson 01, exercise 1
    assert not channels_last and "The order is (channels, height, width)" in channels_last.message


def cifar_stem(kernel=3, stride=1, bias=False, pool=False, relu=True):
    layers = dict(conv=nn.Conv2d(3, 64, kernel, stride, kernel // 2, bias=bias), bn=nn.BatchNorm2d(64))
    if relu:
        layers["relu"] = nn.ReLU()
    if pool:
        layers["pool"] = nn.MaxPool2d(3, 2, 1)
    return nn.Sequential(OrderedDict(layers))


@pytest.mark.parametrize(
    "stem, passed, message",
    [
        (Stem("cifar"), True, "1,856 parameters"),
        (cifar_stem(), True, "no max-pool"),
        (cifar_stem(pool=True), False, "no max-pool"),
        (cifar_stem(stride=2), False, "stride 1"),
        (Stem("imagenet"), False, "turns 3 x 32 x 32 into 64 x 8 x 8"),
        (cifar_stem(bias=True), False, "bias=False"),
        (cifar_stem(relu=False), False, "ReLU after BN is missing"),
        (nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 64, 3, 1, 1, bias=False), relu=nn.ReLU(),
                                   bn=nn.BatchNorm2d(64))), False, "ReLU comes before BN"),
        (nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 64, 3, 1, 1, bias=False), bn=nn.BatchNorm2d(64),
                                   relu=nn.ReLU(), pool=nn.MaxPool2d(3, 1, 1))), False, "There is a max-pool"),
        (Stem, False, "pass an instance of it: Stem()"),
    ],
)
def test_cifar_stem(stem, passed, message):
    result = checks.check_cifar_stem(stem)
    assert bool(result) is passed and message in result.message


# Lesson 02

@pytest.mark.parametrize(
    "in_channels, width, stride",
    [(256, 64, 1), (64, 64, 1), (256, 128, 2)],
    ids=["identity", "conv-block-no-stride", "conv-block-stride-2"],
)
def test_right_blocks_pass(in_channels, width, stride):
    assert checks.check_bottleneck(HandBlock(in_channels, width, stride), in_channels, width, stride)
    assert checks.check_bottleneck(Bottleneck(in_channels, width, stride), in_channels, width, stride)


@pytest.mark.parametrize(
    "mistake, args, message",
    [
        ("relu_after_bn3", (256, 64, 1), "ReLU after the last BN"),
        ("no_final_relu", (256, 128, 2), "ReLU after the addition is missing"),
        ("stride_on_3x3", (256, 128, 2), "stride is in the wrong place"),
        ("no_projection", (256, 128, 2), "project x with a 1x1 conv"),
        ("extra_projection", (256, 64, 1), "has a projection shortcut"),
        ("bias", (256, 64, 1), "bias=False"),
        ("no_relu1", (256, 64, 1), "ReLU after bn1 is missing"),
        ("no_relu2", (256, 128, 2), "ReLU after bn2 is missing"),
        ("no_padding", (256, 64, 1), "check that the 3x3 conv has padding=1"),
        ("relu_moved", (256, 64, 1), "The ReLU after the addition is gone, but the one after the last BN"),
        ("shortcut_without_bn", (512, 256, 2), "projection shortcut has no batch normalization"),
        ("stride_on_both", (256, 128, 2), "Both conv1 and conv2 have a stride"),
    ],
)
def test_block_mistakes_are_named(mistake, args, message):
    result = checks.check_bottleneck(HandBlock(*args, mistake=mistake), *args)
    assert not result and message in result.message, result.message


def test_v1_5_block_is_checked_with_the_stride_on_the_3x3():
    args = (256, 128, 2)
    assert checks.check_bottleneck(HandBlock(*args, mistake="stride_on_3x3"), *args, stride_at="3x3")
    result = checks.check_bottleneck(HandBlock(*args), *args, stride_at="3x3")
    assert not result and "in \"v1.5\" it sits on the 3x3 conv" in result.message


def test_block_with_wrong_output_width():
    result = checks.check_bottleneck(Bottleneck(256, 32), 256, 64)
    assert not result and "expands to 4 x 64 channels" in result.message


def test_block_with_other_layer_names_is_asked_to_rename():
    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(256, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256),
            )

        def forward(self, x):
            return torch.relu(self.body(x) + x)

    result = checks.check_bottleneck(Renamed(), 256, 64)
    assert not result and "name the layers as in the skeleton (conv1, bn1," in result.message
    assert result.message.endswith("yours are named: body.")


@pytest.mark.parametrize("stride_at", ["1x1", "3x3"])
def test_se_conv_blocks_pass(stride_at):
    block = HandBlock(256, 128, stride=2, se=16, mistake="stride_on_3x3" if stride_at == "3x3" else None)
    assert checks.check_bottleneck(block, 256, 128, stride=2, reduction=16, stride_at=stride_at)


def test_check_leaves_the_students_module_in_its_mode():
    block = HandBlock(256, 64).train()
    checks.check_bottleneck(block, 256, 64)
    assert block.training and block.bn1.training


def test_module_returning_a_tuple_is_told_so():
    class TwoOutputs(nn.Module):
        def forward(self, x):
            return x, x

    result = checks.check_bottleneck(TwoOutputs(), 256, 64)
    assert not result and "must return one tensor, yours returns a tuple" in result.message


@pytest.mark.parametrize(
    "mistake, message",
    [
        ("se_after_add", "SE is applied after the addition"),
        ("se_after_relu", "SE is applied to the block's output, after the addition and the ReLU"),
        ("se_before_bn3", "SE sits between conv3 and bn3"),
        ("se_on_shortcut", "SE is applied to the shortcut"),
        ("se_unused", "defines its SE module but forward() never applies it"),
        ("relu_after_bn3", "There is a ReLU after the last BN"),
    ],
)
def test_se_block_mistakes_are_named(mistake, message):
    assert checks.check_bottleneck(HandBlock(256, 64, se=16), 256, 64, reduction=16)
    result = checks.check_bottleneck(HandBlock(256, 64, se=16, mistake=mistake), 256, 64, reduction=16)
    assert not result and message in result.message, result.message


class AddsTheInput(HandBlock):
    """A Conv Block whose forward() adds x where the projection belongs."""

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + x)


def test_a_conv_block_that_adds_x_instead_of_its_projection_is_told_so():
    result = checks.check_bottleneck(AddsTheInput(256, 128, 2), 256, 128, 2)
    assert not result and "forward() never calls self.shortcut: add self.shortcut(x), not x itself" in result.message
    wrong_stride = HandBlock(256, 128, 2, mistake="stride_on_3x3")
    wrong_stride.conv2.stride = (1, 1)  # calls its shortcut; the main path keeps the size
    result = checks.check_bottleneck(wrong_stride, 256, 128, 2)
    assert not result and "never calls" not in result.message and "different shapes" in result.message


def test_an_se_block_without_se_is_told_what_is_missing():
    result = checks.check_bottleneck(HandBlock(256, 64), 256, 64, reduction=16)
    assert not result and "Your block has no SE module: add self.se = SqueezeExcitation(256, reduction=16)" \
        in result.message


def test_se_module_under_another_name_is_asked_to_rename_not_to_drop_its_biases():
    block = HandBlock(256, 64, se=16)
    block.squeeze = block.se
    del block.se
    block.forward = lambda x: torch.relu(block.squeeze(block.bn3(block.conv3(torch.relu(block.bn2(block.conv2(
        torch.relu(block.bn1(block.conv1(x))))))))) + x)
    result = checks.check_bottleneck(block, 256, 64, reduction=16)
    assert not result and "bias" not in result.message
    assert "name the layers as in the skeleton (conv1, bn1, conv2, bn2, conv3, bn3, shortcut, se)" in result.message
    assert result.message.endswith("yours are named: conv1, bn1, conv2, bn2, conv3, bn3, squeeze.")


def test_measuring_a_wrong_block_says_which_module_failed_in_one_line():
    block = HandBlock(512, 256, 2, mistake="stride_on_3x3")
    block.conv2.stride = (1, 1)  # the main path keeps 28 x 28, the shortcut halves it
    with pytest.raises(RuntimeError) as error:
        count_multiply_adds(block, (512, 28, 28))
    assert str(error.value).startswith("HandBlock fails on a 1 x 512 x 28 x 28 input: RuntimeError: The size of")
    assert error.value.__cause__ is None and error.value.__suppress_context__
    result = checks.check_bottleneck(block, 512, 256, stride=2, stride_at="3x3")
    assert not result and "different shapes" in result.message


# Lesson 03

@pytest.mark.parametrize(
    "answer, passed, message",
    [
        (8_464, True, "2 * 256 * 16 weights"),
        (8_192, False, "also have a bias"),
        (4_096, False, "one of the two layers"),
        (1_000, False, "Not quite"),
        (8_464.0, True, "8,464 is right"),
        (8_464.5, False, "Give the answer as a whole number, got 8464.5"),
        (3 * 8_464, False, "That is the SE modules of a whole stage: stage 1's 3 blocks, each with its own"),
        (2 * 8_464, False, "That is the SE modules of 2 blocks, each with its own module. The exercise asks for one"),
    ],
)
def test_se_parameter_count(answer, passed, message):
    result = checks.check_se_parameter_count(answer, 256, 16)
    assert bool(result) is passed and message in result.message


def test_se_parameter_count_of_stage_4():
    result = checks.check_se_parameter_count(3 * 526_464, channels=2048, reduction=16)  # lesson 03, exercise 1
    assert not result and "a whole stage: stage 4's 3 blocks" in result.message


@pytest.mark.parametrize("se", [lambda: SqueezeExcitation(256, 4), lambda: HandSE(256, 4)], ids=["library", "hand"])
def test_an_se_block_built_with_another_reduction_is_told_which(se):
    block = HandBlock(256, 64, se=16)
    block.se = se()
    result = checks.check_bottleneck(block, 256, 64, reduction=16)  # lesson 03, exercise 3
    assert not result and "Your SE module squeezes 256 channels to 64: it was built with reduction 4, and this " \
                          "block's is 16 (to 16): SqueezeExcitation(256, reduction=16)." == result.message


@pytest.mark.parametrize(
    "mistake, message",
    [
        ("max_pool", "global AVERAGE pooling"),
        ("no_sigmoid", "sigmoid at the end is missing"),
        ("relu_gate", "last activation is a ReLU"),
        ("no_middle_relu", "ReLU between the two 1x1 convs is missing"),
        ("added", "SE multiplies"),
        ("weights_only", "returns the channel weights only"),
    ],
)
def test_se_module_mistakes_are_named(mistake, message):
    torch.manual_seed(0)
    result = checks.check_se_module(HandSE(64, 4, mistake), 64, 4)
    assert not result and message in result.message, result.message


def test_se_written_with_linear_layers_is_asked_for_1x1_convs():
    class LinearSE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 64)

        def forward(self, x):
            weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
            return x * weights[:, :, None, None]

    result = checks.check_se_module(LinearSE(), 64, 4)
    assert not result and "fc1.weight has shape (16, 64) but should have (16, 64, 1, 1)" in result.message
    assert "1x1 nn.Conv2d" in result.message


def test_right_se_modules_pass():
    assert checks.check_se_module(HandSE(64, 4), 64, 4)
    assert checks.check_se_module(SqueezeExcitation(64, 4), 64, 4)
    result = checks.check_se_module(SqueezeExcitation(64, 8), 64, 4)
    assert not result and "Expected 2,128 parameters" in result.message


# Lesson 04

@pytest.mark.parametrize(
    "answer, input_size, stem, passed, message",
    [
        ((2048, 7, 7), 224, "imagenet", True, "224 -> 56 -> 56 -> 28 -> 14 -> 7"),
        ((2048, 1, 1), 32, "imagenet", True, "is right"),
        ((2048, 4, 4), 32, "cifar", True, "32 -> 32 -> 32 -> 16 -> 8 -> 4"),
        ((2048, 2, 2), 32, "imagenet", False, "factor of two"),
        ((512, 7, 7), 224, "imagenet", False, "2048 channels"),
        ((2048, 3, 3), 96, "imagenet", True, "is right"),
        ((2048, 4, 4), 100, "imagenet", True, "100 -> 25 -> 25 -> 13 -> 7 -> 4"),
        ((2048, 3, 3), 100, "imagenet", False, "You rounded down where a halving meets an odd size"),
        ((4, 4, 2048), 100, "imagenet", False, "The order is (channels, height, width)"),
        ((2048, 5, 5), 100, "imagenet", False, "Not quite"),
        ((2048, 1, 5), 32, "imagenet", False, "A square image stays square"),
    ],
)
def test_stage4_shape(answer, input_size, stem, passed, message):
    result = checks.check_stage4_shape(answer, input_size, stem)
    assert bool(result) is passed and message in result.message, result.message


def test_resnet101():
    import torchvision

    right = ResNet(ResNetConfig(blocks=(3, 4, 23, 3)))
    assert checks.check_resnet101(right)
    # The count the check expects is torchvision's ResNet-101's.
    assert "44,549,160" in checks.check_resnet101(right).message
    assert sum(p.numel() for p in torchvision.models.resnet101().parameters()) == 44_549_160


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda: ResNet(ResNetConfig()), "That is ResNet-50"),
        (lambda: ResNet(ResNetConfig(blocks=(3, 4, 23, 3), reduction=16)), "has SE modules"),
        (lambda: ResNet(ResNetConfig(blocks=(3, 8, 36, 3))), "(3, 8, 36, 3) blocks"),
        (lambda: __import__("torchvision").models.resnet101(), "Build it with the library"),
    ],
    ids=["resnet50", "se", "resnet152", "torchvision"],
)
def test_resnet101_mistakes(model, message):
    result = checks.check_resnet101(model())
    assert not result and message in result.message


# Lesson 05

@pytest.mark.parametrize(
    "answer, images, batch_size, passed, message",
    [
        (391, 50_000, 128, True, "390 full batches of 128; the last batch has 80 images"),
        (500, 50_000, 100, True, "500 full batches of 100."),
        (390, 50_000, 128, False, "The 80 images left after 390 full batches make one more"),
        (50_000 / 128, 50_000, 128, False, "Steps are whole"),
        ("391", 50_000, 128, False, "Give the answer as a number"),
        (391.0, 50_000, 128, True, "391 is right"),
        (True, 50_000, 128, False, "Give the answer as a number"),
        (501, 50_000, 100, False, "Not quite"),
    ],
)
def test_steps_per_epoch(answer, images, batch_size, passed, message):
    result = checks.check_steps_per_epoch(answer, images, batch_size)
    assert bool(result) is passed and message in result.message


@pytest.mark.parametrize(
    "answer, epoch, passed, message",
    [
        (1e-4, 12, True, "after 2 decays by 0.1"),
        (0.01, 5, True, "after 0 decays"),
        (0.001, 6, True, "after 1 decay by 0.1"),
        (0.01, 12, False, "is the starting rate; by epoch 12 it has been multiplied by 0.1 twice"),
        (0.001, 12, False, "One decay too few"),
        (1e-5, 12, False, "One decay too many"),
        (0.01 * 0.1 ** (12 / 5), 12, False, "Decays are whole"),
        (0.5, 12, False, "Not quite"),
        ("1e-4", 12, False, "Give the answer as a number"),
    ],
)
def test_learning_rate(answer, epoch, passed, message):
    result = checks.check_learning_rate(answer, epoch, lr=0.01, step=5, gamma=0.1)
    assert bool(result) is passed and message in result.message


SE_BLOCKS = ((256, 3), (512, 4), (1024, 6), (2048, 3))  # output channels and blocks of each stage


@pytest.mark.parametrize(
    "answer, reduction, stages, passed, message",
    [
        (28_088_024 - 25_557_032, 16, (1, 2, 3, 4), True, "3 x SE(256) + 4 x SE(512) + 6 x SE(1024) + 3 x SE(2048)"),
        (30_603_912 - 25_557_032, 8, (1, 2, 3, 4), True, "is right"),
        (27_136_424 - 25_557_032, 16, (4,), True, "3 x SE(2048)."),
        (sum(b * 2 * c * c // 16 for c, b in SE_BLOCKS), 16, (1, 2, 3, 4), False, "weights only"),
        (sum(2 * c * c // 16 + c // 16 + c for c, _ in SE_BLOCKS), 16, (1, 2, 3, 4), False, "one SE module per stage"),
        (sum(b * (2 * (c // 4) ** 2 // 16 + c // 64 + c // 4) for c, b in SE_BLOCKS), 16, (1, 2, 3, 4), False,
         "256, 512, 1024 and 2048 channels"),
        (2.5e6 + 0.5, 16, (1, 2, 3, 4), False, "whole number"),
        (float(28_088_024 - 25_557_032), 16, (1, 2, 3, 4), True, "2,530,992 is right"),  # what / gives
        (True, 16, (1, 2, 3, 4), False, "whole number"),
        (1, 16, (1, 2, 3, 4), False, "Not quite: add up, over the 16 blocks"),
        (28_088_024 - 25_557_032, 8, (1, 2, 3, 4), False,  # lesson 06, exercise 1
         "That is SE's cost at r = 16; this exercise asks for r = 8: each module squeezes its C channels to C/8."),
        (35_635_688 - 25_557_032, 16, (1, 2, 3, 4), False, "That is SE's cost at r = 4; this exercise asks for r = 16"),
    ],
)
def test_se_cost(answer, reduction, stages, passed, message):
    result = checks.check_se_cost(answer, reduction, stages)
    assert bool(result) is passed and message in result.message


A, B = [0.40, 0.42, 0.45], [0.44, 0.47, 0.43, 0.46]
VAR_A, VAR_B = statistics.variance(A), statistics.variance(B)


@pytest.mark.parametrize(
    "answer, passed, message",
    [
        ((VAR_A / 3 + VAR_B / 4) ** 0.5, True, "is right: the difference of the means, +0.0267, is not larger than "
                                               "two standard errors"),
        ((statistics.pvariance(A) / 3 + statistics.pvariance(B) / 4) ** 0.5, False, "population variance"),
        (VAR_A / 3 + VAR_B / 4, False, "its square root"),
        (VAR_A**0.5 + VAR_B**0.5, False, "Standard deviations do not add"),
        ((VAR_A + VAR_B) ** 0.5, False, "divide each variance by its number of runs"),
        (0.5, False, "Not quite"),
        (None, False, "Not done yet"),
    ],
)
def test_difference_spread(answer, passed, message):
    result = checks.check_difference_spread(answer, A, B)
    assert bool(result) is passed and message in result.message


def test_difference_spread_accepts_the_rounded_figure_compare_prints_and_needs_two_runs():
    a, b = [0.476, 0.45, 0.458, 0.472, 0.494], [0.45, 0.428, 0.444, 0.464, 0.452]
    assert checks.check_difference_spread(0.0096, a, b)
    in_points = checks.check_difference_spread(0.962, a, b)  # lesson 06, exercise 2
    assert not in_points and in_points.message.startswith("That is in points, a hundred times the fraction")
    assert "at least two runs" in checks.check_difference_spread(0.01, [0.5], b).message


@pytest.fixture(scope="module")
def se_model():
    """A small SE-ResNet with lesson 07's layout (3 blocks in stage 4, SE everywhere), and 3 images."""
    torch.manual_seed(0)
    config = ResNetConfig(blocks=(1, 1, 1, 3), widths=(8, 16, 32, 64), num_classes=10, reduction=4)
    return ResNet(config).eval(), torch.rand(3, 3, 32, 32)


def output_of(model, images, module):
    stored = []
    handle = module.register_forward_hook(lambda m, inputs, output: stored.append(output))
    with torch.no_grad():
        model(images)
    handle.remove()
    return stored[0]


@pytest.mark.parametrize(
    "pick, passed, message",
    [
        (lambda m: m.stage4[2].se.gate, True, "Right: (3, 256) weights"),
        (lambda m: m.stage4[2].se.gate, False, "flatten the 1 x 1 map away"),
        (lambda m: m.stage4[2].se, False, "That is the SE module's output"),
        (lambda m: m.stage4[1].se.gate, False, "Those are the weights of stage4.2, another block"),
    ],
)
def test_recorded_excitations(se_model, pick, passed, message):
    model, images = se_model
    answer = output_of(model, images, pick(model))
    if passed or "another" in message:
        answer = answer.flatten(1)
    result = checks.check_recorded_excitations(answer, model, images, stage=4, block=3)
    assert bool(result) is passed and message in result.message


def test_recorded_gate_inputs_and_se_inputs_are_named(se_model):
    model, images = se_model
    se = model.stage4[2].se
    gate_input = seen_by(model, images, se.gate).flatten(1)
    result = checks.check_recorded_excitations(gate_input, model, images)
    assert not result and "Those are the gate's inputs, the logits before the sigmoid" in result.message
    assert "evaluation mode" not in result.message
    result = checks.check_recorded_excitations(seen_by(model, images, se).flatten(1), model, images)
    assert not result and "That is what the SE module receives" in result.message


def seen_by(model, images, module):
    """What ``module`` receives in one forward pass (its first input), as a pre-hook sees it."""
    stored = []
    handle = module.register_forward_pre_hook(lambda m, inputs: stored.append(inputs[0]))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return stored[0]


def logits_with(model, images, stage=4, blocks=None, value=torch.ones_like, module="gate"):
    """The logits with hooks on the SE ``module`` ("gate" or "se") of ``blocks`` of ``stage`` (all) that return
    ``value(output)``."""
    chosen = list(getattr(model, f"stage{stage}"))
    chosen = chosen if blocks is None else [chosen[i] for i in blocks]
    hooked = [block.se.gate if module == "gate" else block.se for block in chosen]
    handles = [m.register_forward_hook(lambda m, inputs, out: value(out)) for m in hooked]
    try:
        with torch.no_grad():
            return model(images)
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize(
    "blocks, value, module, passed, message",
    [
        (None, torch.ones_like, "gate", True, "Right: with stage 4's SE at scale 1"),
        (None, lambda out: None, "gate", False, "These are the model's usual logits"),
        (None, torch.zeros_like, "gate", False, "With zeros, stage 4's SE modules scale every channel by 0"),
        ([2], torch.ones_like, "gate", False, "switched off in model.stage4[2] only, 1 of stage 4's 3 blocks"),
        ([0, 1], torch.ones_like, "gate", False, "in model.stage4[0] and model.stage4[1] only, 2 of stage 4's"),
        (None, torch.ones_like, "se", False, "each SE module's whole output replaced by ones"),
        (None, lambda out: 0.5 * out, "gate", False, "Not quite: hook the gate of every block"),
    ],
    ids=["ones", "none", "zeros", "one-block", "two-blocks", "se-module", "halved"],
)
def test_se_switched_off(se_model, blocks, value, module, passed, message):
    model, images = se_model
    result = checks.check_se_switched_off(logits_with(model, images, 4, blocks, value, module), model, images)
    assert bool(result) is passed and message in result.message, result.message
    assert "Note" not in result.message


def test_se_switched_off_in_another_stage(se_model):
    model, images = se_model
    result = checks.check_se_switched_off(logits_with(model, images, stage=3), model, images)
    assert not result and "stage 3's SE switched off, not stage 4's" in result.message


class Hooks:
    """Hooks registered on modules for a test, removed when the ``with`` block ends."""

    def __init__(self, modules, hook=lambda module, inputs, output: None):
        self.handles = [module.register_forward_hook(hook) for module in modules]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_a_hook_left_by_exercise_1_fails_exercise_1_only(se_model):
    model, images = se_model
    excitations = output_of(model, images, model.stage4[2].se.gate).flatten(1)
    switched_off = logits_with(model, images)

    def broken(module, inputs, output):
        raise RuntimeError("a student's hook that raises")

    with Hooks([model.stage4[2].se.gate], broken):
        result = checks.check_recorded_excitations(excitations, model, images)
        assert not result and result.message.startswith(
            "1 hook is still registered on model.stage4[2].se.gate, where this exercise hooks")
        assert "call remove() on their handles" in result.message
        result = checks.check_se_switched_off(switched_off, model, images)  # the hook that raises is set aside
        assert result and result.message.startswith("Right: with stage 4's SE at scale 1")
        assert "Note: hooks are still registered on the model, 1 on model.stage4[2].se.gate, where exercise " \
               "07.1 hooks." in result.message
        assert hook_count(model) == 1  # the check gave it back
    assert hook_count(model) == 0  # and its handle still removes it


def test_hooks_left_by_exercise_2_fail_exercise_2_only(se_model):
    model, images = se_model
    excitations = output_of(model, images, model.stage4[2].se.gate).flatten(1)
    switched_off = logits_with(model, images)
    with Hooks([block.se.gate for block in model.stage4], lambda module, inputs, output: torch.ones_like(output)):
        result = checks.check_se_switched_off(switched_off, model, images)
        assert not result and result.message.startswith(
            "3 hooks are still registered on the gates of model.stage4's blocks, as this exercise registers them")
        result = checks.check_recorded_excitations(excitations, model, images)
        assert result and "Note: hooks are still registered on the model, 3 on the gates of model.stage4's " \
                          "blocks, as exercise 07.2 registers them" in result.message
        ones = output_of(model, images, model.stage4[2].se.gate).flatten(1)  # recorded with those hooks on
        result = checks.check_recorded_excitations(ones, model, images)
        assert not result and result.message.startswith("Your weights are all 1: a hook that returns ones ran")


def test_both_exercises_hooks_and_others_are_told_apart(se_model):
    model, images = se_model
    excitations = output_of(model, images, model.stage4[2].se.gate).flatten(1)
    gates = [block.se.gate for block in model.stage4]
    with Hooks(gates), Hooks([model.stage4[2].se.gate]), Hooks([model.stage1[0].se, model.fc]):
        result = checks.check_recorded_excitations(excitations, model, images)
        assert not result and result.message.startswith("1 hook is still registered on model.stage4[2].se.gate")
        result = checks.check_se_switched_off(logits_with(model, images), model, images)
        assert not result and result.message.startswith("3 hooks are still registered on the gates")
    with Hooks([model.stage1[0].se, model.fc]):
        result = checks.check_recorded_excitations(excitations, model, images)
        assert result and "the model, 1 on model.stage1[0].se; 1 on model.fc. Every forward pass runs them; this " \
                          "check set them aside." in result.message
