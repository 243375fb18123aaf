"""The model library against the published architecture: shapes, sizes, costs, errors."""

import math

import pytest
import torch

from seresnet_lib import (
    Bottleneck,
    ResNetConfig,
    SqueezeExcitation,
    Stem,
    count_multiply_adds,
    count_parameters,
    make_stage,
    resnet50,
    seresnet50,
    stage_shapes,
)


@pytest.fixture(scope="module")
def se50():
    torch.manual_seed(0)
    return seresnet50()


def test_stage_shapes_at_224(se50):
    assert stage_shapes(se50, (3, 224, 224)) == {
        "stem": (64, 56, 56),
        "stage1": (256, 56, 56),
        "stage2": (512, 28, 28),
        "stage3": (1024, 14, 14),
        "stage4": (2048, 7, 7),
        "pool": (2048, 1, 1),
        "fc": (1000,),
    }


def test_imagenet_stem_leaves_a_32x32_image_at_1x1():
    shapes = stage_shapes(seresnet50(10), (3, 32, 32))
    assert shapes["stem"] == (64, 8, 8)
    assert shapes["stage4"] == (2048, 1, 1)
    assert shapes["fc"] == (10,)


def test_cifar_stem_keeps_4x4_at_stage4():
    shapes = stage_shapes(seresnet50(10, stem="cifar"), (3, 32, 32))
    assert shapes["stem"] == (64, 32, 32)
    assert shapes["stage4"] == (2048, 4, 4)


def test_stem_halves_twice():
    stem = Stem("imagenet").eval()
    x = torch.randn(2, 3, 224, 224)
    after_conv = stem.relu(stem.bn(stem.conv(x)))
    assert after_conv.shape == (2, 64, 112, 112)
    assert stem(x).shape == (2, 64, 56, 56)


def test_logits_shape(se50):
    se50.eval()
    assert se50(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: resnet50(1000), 25_557_032),
        (lambda: seresnet50(1000), 28_088_024),
        (lambda: seresnet50(10), 26_059_514),
    ],
    ids=["resnet50-1000", "seresnet50-1000", "seresnet50-10"],
)
def test_parameter_counts_match_published(build, expected):
    assert count_parameters(build()) == expected


def test_parameter_count_does_not_depend_on_stride_placement():
    assert count_parameters(seresnet50(stride_at="3x3")) == 28_088_024


@pytest.mark.parametrize("reduction, paper_millions", [(2, 45.7), (4, 35.7), (8, 30.7), (16, 28.1), (32, 26.9)])
def test_reduction_ratio_against_senet_paper_table(reduction, paper_millions):
    count = count_parameters(seresnet50(reduction=reduction))
    # The SENet paper's table agrees with our counts rounded up to 0.1M
    # (r=4: 35,635,688 -> 35.7M; r=32: 26,830,080 -> 26.9M).
    assert 0 <= paper_millions * 1e6 - count < 0.1e6
    assert math.ceil(count / 1e5) / 10 == paper_millions


def test_multiply_adds_match_the_paper(se50):
    se_macs = count_multiply_adds(se50)
    plain_macs = count_multiply_adds(resnet50())
    assert 3.86e9 <= se_macs <= 3.87e9  # SENet paper: 3.87 "GFLOPs"
    assert 3.85e9 <= plain_macs <= 3.865e9  # SENet paper: 3.86
    # Each SE block adds 2 C^2 / r multiply-adds: (3*256^2 + 4*512^2 + 6*1024^2 + 3*2048^2) * 2 / 16.
    assert se_macs - plain_macs == 2_514_944


def test_stride_on_3x3_costs_more():
    v1 = count_multiply_adds(resnet50(stride_at="1x1"))
    v15 = count_multiply_adds(resnet50(stride_at="3x3"))
    assert v15 - v1 > 0.2e9  # about 4.09 G against 3.86 G


def test_stride_sits_on_first_1x1_by_default():
    block = Bottleneck(256, 128, stride=2)
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    block = Bottleneck(256, 128, stride=2, stride_at="3x3")
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


def test_conv_block_projects_and_identity_block_does_not():
    conv_block = Bottleneck(64, 64)  # 64 -> 256 channels: shape changes
    identity_block = Bottleneck(256, 64)
    assert isinstance(conv_block.shortcut, torch.nn.Sequential)
    assert isinstance(identity_block.shortcut, torch.nn.Identity)
    x = torch.randn(1, 256, 8, 8)
    identity_block.eval()
    # With the residual branch silenced, an identity block passes ReLU(x) through.
    torch.nn.init.zeros_(identity_block.bn3.weight)
    assert torch.equal(identity_block(x), torch.relu(x))


def test_se_sits_after_last_bn_before_addition():
    block = Bottleneck(256, 64, reduction=16).eval()
    seen = {}
    block.bn3.register_forward_hook(lambda m, i, out: seen.__setitem__("bn3", out.clone()))
    block.se.register_forward_hook(lambda m, i, out: seen.__setitem__("se_in", i[0].clone()))
    x = torch.randn(2, 256, 8, 8)
    out = block(x)
    assert torch.equal(seen["bn3"], seen["se_in"])
    expected = torch.relu(block.se(seen["bn3"]) + x)
    torch.testing.assert_close(out, expected)


# The integration strategies and ablations of Hu et al., TPAMI: counts computed from the architecture
# (SE adds 2·C·C/r weights and C/r + C biases per block), ImageNet, 1000 classes.

def on_meta(build):
    with torch.device("meta"):  # shapes only: no memory, no initialization
        return build()


@pytest.mark.parametrize("reduction, expected", [(2, 45_699_240), (4, 35_635_688), (8, 30_603_912), (16, 28_088_024),
                                                 (32, 26_830_080), (64, 26_201_108)])
def test_parameters_for_each_reduction_ratio(reduction, expected):
    assert count_parameters(on_meta(lambda: seresnet50(reduction=reduction))) == expected


@pytest.mark.parametrize("stage, expected", [(1, 25_582_424), (2, 25_690_280), (3, 26_349_992), (4, 27_136_424)])
def test_parameters_with_se_in_one_stage_only(stage, expected):
    assert count_parameters(on_meta(lambda: seresnet50(se_stages=(stage,)))) == expected
    with_se = {name for name, module in on_meta(lambda: seresnet50(se_stages=(stage,))).named_modules()
               if isinstance(module, SqueezeExcitation)}
    assert {name.split(".")[0] for name in with_se} == {f"stage{stage}"}


@pytest.mark.parametrize("position", ["standard", "pre", "post", "identity"])
def test_every_se_position_costs_what_the_paper_says(position):
    macs = count_multiply_adds(on_meta(lambda: seresnet50(se_position=position)))
    assert round(macs / 1e9, 2) in (3.86, 3.87)  # as the paper prints them
    expected = 28_088_024 if position != "pre" else 28_088_024 - sum(  # SE on the input of each Conv Block
        2 * (c * c // 16 - i * i // 16) + (c // 16 - i // 16) + (c - i)
        for i, c in [(64, 256), (256, 512), (512, 1024), (1024, 2048)])
    assert count_parameters(on_meta(lambda: seresnet50(se_position=position))) == expected


@pytest.mark.parametrize("position", ["standard", "pre", "post", "identity"])
@pytest.mark.parametrize("in_channels, width, stride", [(256, 64, 1), (256, 128, 2)], ids=["identity", "conv"])
def test_each_se_position_computes_what_the_papers_figure_draws(position, in_channels, width, stride):
    block = Bottleneck(in_channels, width, stride, reduction=4, se_position=position).eval()
    x = torch.randn(2, in_channels, 8, 8)

    def branch(t):
        t = torch.relu(block.bn1(block.conv1(t)))
        return block.bn3(block.conv3(torch.relu(block.bn2(block.conv2(t)))))

    se = block.se
    with torch.no_grad():
        shortcut = block.shortcut(x)
    expected = {"standard": lambda: torch.relu(se(branch(x)) + shortcut),
                "pre": lambda: torch.relu(branch(se(x)) + shortcut),
                "post": lambda: se(torch.relu(branch(x) + shortcut)),
                "identity": lambda: torch.relu(branch(x) + se(shortcut))}[position]
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected())
    assert block.se.fc1.in_channels == (in_channels if position == "pre" else 4 * width)


def test_se_weights_are_per_channel_and_in_unit_interval():
    se = SqueezeExcitation(64, reduction=16)
    x = torch.randn(3, 64, 5, 5)
    weights = se.channel_weights(x)
    assert weights.shape == (3, 64, 1, 1)
    assert (weights > 0).all() and (weights < 1).all()
    torch.testing.assert_close(se(x), x * weights)
    assert se.fc1.out_channels == 4


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: seresnet50(reduction=0), "reduction must be >= 1, got 0"),
        (lambda: seresnet50(reduction=-4), "reduction must be >= 1, got -4"),
        (lambda: seresnet50(reduction=2.5), "reduction must be an integer, got 2.5 (float)"),
        (lambda: seresnet50(reduction="16"), "reduction must be an integer, got '16' (str)"),
        (lambda: seresnet50(reduction=512), "reduction=512 is larger than the 256 channels"),
        (lambda: SqueezeExcitation(64, reduction=128), "allowed: 1 <= reduction <= 64"),
        (lambda: seresnet50(num_classes=0), "num_classes must be >= 1, got 0"),
        (lambda: resnet50(num_classes=-1), "num_classes must be >= 1, got -1"),
        (lambda: seresnet50(stem="tiny"), "stem='tiny' is not allowed; choose one of 'imagenet', 'cifar'"),
        (lambda: resnet50(stride_at="2x2"), "stride_at='2x2' is not allowed; choose one of '1x1', '3x3'"),
        (lambda: ResNetConfig(blocks=(3, 4, 6)), "blocks must give 4 stages"),
        (lambda: seresnet50(se_position="after"), "se_position='after' is not allowed; choose one of 'standard', "
                                                  "'pre', 'post', 'identity'"),
        (lambda: seresnet50(se_stages=(0, 4)), "se_stages must name one or more of the stages 1, 2, 3, 4"),
        (lambda: seresnet50(se_stages=()), "se_stages must name one or more of the stages 1, 2, 3, 4, each once, "
                                           "e.g. (4,); got ()"),
        (lambda: seresnet50(se_stages=(4, 4)), "each once"),
        (lambda: seresnet50(reduction=128, se_position="pre"), "reduction=128 is larger than the 64 channels of "
                                                               "the narrowest SE module"),
        (lambda: ResNetConfig(blocks=3), "blocks must give 4 stages, e.g. (3, 4, 6, 3), got 3"),
        (lambda: ResNetConfig(blocks=(3, 4, 0, 3)), "blocks[2] must be >= 1, got 0"),
        (lambda: ResNetConfig(widths=(64, 128, 256, 51.2)), "widths[3] must be an integer, got 51.2"),
        (lambda: Bottleneck(256, 64, stride=0), "stride must be >= 1, got 0"),
        (lambda: Bottleneck(256, 0), "width must be >= 1, got 0"),
        (lambda: Stem(in_channels=0), "in_channels must be >= 1, got 0"),
        (lambda: make_stage(64, 64, blocks=0, stride=1), "blocks must be >= 1, got 0"),
        (lambda: stage_shapes(resnet50(), 224), "input_size must be a sequence of positive ints"),
        (lambda: count_multiply_adds(resnet50(), (3, 0, 224)), "input_size must be a sequence of positive ints"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


@pytest.mark.parametrize(
    "shape, hint",
    [((3, 32, 32), "x.unsqueeze(0)"), ((2, 1, 32, 32), "x.expand(-1, 3, -1, -1)"), ((2, 4, 32, 32), "N x 3 x H x W")],
)
def test_bad_input_shape_gets_a_message_not_a_conv_error(shape, hint):
    model = resnet50(10, stem="cifar")
    with pytest.raises(ValueError, match="expected a batch of RGB images of shape N x 3 x H x W") as error:
        model(torch.randn(*shape))
    assert hint in str(error.value)
    assert " x ".join(map(str, shape)) in str(error.value)


def test_a_non_tensor_input_gets_a_message():
    with pytest.raises(ValueError, match="expected a torch.Tensor of shape N x 3 x H x W, got ndarray"):
        resnet50(10)(torch.randn(1, 3, 32, 32).numpy())


def test_config_turns_lists_into_tuples():
    config = ResNetConfig(blocks=[3, 4, 6, 3], widths=[64, 128, 256, 512])
    assert config.blocks == (3, 4, 6, 3) and config.widths == (64, 128, 256, 512)
    hash(config)


def test_measuring_gives_every_module_its_own_mode_back():
    model = seresnet50(10, stem="cifar").train()
    model.stem.bn.eval()  # a frozen BN, as in fine-tuning
    stage_shapes(model, (3, 32, 32))
    count_multiply_adds(model, (3, 32, 32))
    assert model.training and model.stage1[0].bn1.training
    assert not model.stem.bn.training


def test_train_mode_updates_batchnorm_and_backpropagates():
    torch.manual_seed(0)
    model = seresnet50(10, stem="cifar").train()
    before = model.stem.bn.running_mean.clone()
    loss = model(torch.randn(4, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    assert not torch.equal(before, model.stem.bn.running_mean)
    assert all(p.grad is not None for p in model.parameters())


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = seresnet50(10, stem="cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_batch_of_one_in_eval_mode(se50):
    se50.eval()
    assert se50(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_same_seed_same_weights():
    torch.manual_seed(7)
    a = seresnet50(10)
    torch.manual_seed(7)
    b = seresnet50(10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_zero_init_residual_starts_every_block_as_the_identity():
    torch.manual_seed(0)
    model = seresnet50(10, zero_init_residual=True).train()
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 and all((block.bn3.weight == 0).all() for block in blocks)
    assert count_parameters(model) == 26_059_514  # the same architecture, other initial weights
    x = torch.rand(4, 256, 8, 8)  # a block's input comes out of a ReLU: >= 0
    assert torch.equal(model.stage1[1](x), x)  # ReLU(x + 0) = x, in training mode too
    conv_block = model.stage2[0]  # its projection shortcut still transforms x
    assert conv_block(x).shape == (4, 512, 4, 4)
    default = seresnet50(10)
    assert all(m.bn3.weight.eq(1).all() for m in default.modules() if isinstance(m, Bottleneck))


def test_zero_init_residual_must_be_a_bool():
    with pytest.raises(ValueError, match="zero_init_residual must be True or False, got 1 \\(int\\)"):
        ResNetConfig(zero_init_residual=1)


@pytest.mark.parametrize("build, input_size", [
    (lambda: seresnet50(), (3, 224, 224)),
    (lambda: Bottleneck(256, 128, stride=2, reduction=16, stride_at="3x3"), (256, 27, 27)),
], ids=["seresnet50", "se-conv-block-v1.5-odd-size"])
def test_multiply_adds_agree_with_torchs_flop_counter(build, input_size):
    from torch.utils.flop_counter import FlopCounterMode

    model = build()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, *input_size))
    assert count_multiply_adds(model, input_size) == counter.get_total_flops() // 2
