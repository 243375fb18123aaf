"""Recording excitations and switching SE off leave the model as it was (test_rerun loads a trained run)."""

import copy

import pytest
import torch
from torch import nn

from seresnet_lib import resnet50, seresnet50
from seresnet_lib.model.excitations import (class_means, class_spread, excitations, hook_count, recording, se_modules,
                                            switched_off)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return seresnet50(num_classes=10).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_se_modules_are_named_by_stage_and_block(model):
    names = list(se_modules(model))
    assert len(names) == 16 and names[:4] == ["stage1.1", "stage1.2", "stage1.3", "stage2.1"] and names[-1] == "stage4.3"
    with pytest.raises(ValueError, match="the model has no SE modules"):
        se_modules(resnet50(num_classes=10))


@torch.no_grad()
def test_recording_leaves_the_outputs_unchanged_and_removes_its_hooks(model, images):
    before = model(images)
    with recording(model) as recorded:
        during = model(images)
    assert torch.equal(before, during) and hook_count(model) == 0
    assert torch.equal(model(images), before)
    assert {name: [tuple(t.shape) for t in batches] for name, batches in recorded.items()}["stage4.3"] == [(6, 2048)]
    with pytest.raises(RuntimeError, match="inside"), recording(model, ["stage1.1"]):
        raise RuntimeError("an error inside the block")
    assert hook_count(model) == 0
    with pytest.raises(ValueError, match="no SE module 'stage5.1'; the model has: stage1.1, stage1.2"):
        with recording(model, ["stage5.1"]):
            pass


@torch.no_grad()
def test_the_recorded_excitations_are_the_modules_channel_weights(model, images):
    inputs = []
    handle = model.stage2[1].se.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    loader = [(images[:4], torch.tensor([0, 1, 1, 2])), (images[4:], torch.tensor([2, 0]))]
    try:
        recorded, labels = excitations(model, loader, ["stage2.2"])
    finally:
        handle.remove()
    expected = torch.cat([model.stage2[1].se.channel_weights(x).flatten(1) for x in inputs])
    assert torch.equal(recorded["stage2.2"], expected) and labels.tolist() == [0, 1, 1, 2, 2, 0]


def test_class_means_and_spread():
    excitation = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0], [0.5, 0.0]])
    means = class_means(excitation, torch.tensor([0, 0, 1, 1]), classes=3)
    assert means.tolist() == [[0.5, 1.0], [0.5, 0.0], [0.0, 0.0]]
    assert class_spread(torch.ones(4, 8)) == 0.0
    assert class_spread(means[:2]) == pytest.approx((0 + 2**0.5 / 2) / 2)


@torch.no_grad()
def test_switching_a_stage_off_is_scale_1_and_is_undone(model, images):
    before = model(images)
    plain = copy.deepcopy(model)
    for block in plain.stage4:
        block.se = nn.Identity()
    with switched_off(model, [4]) as names:
        off = model(images)
    assert names == ["stage4.1", "stage4.2", "stage4.3"] and hook_count(model) == 0
    assert torch.allclose(off, plain(images), atol=1e-6) and not torch.allclose(off, before, atol=1e-4)
    assert torch.equal(model(images), before)
    with pytest.raises(ValueError, match=r"stages must be among 1, 2, 3, 4, got \[5\]"):
        with switched_off(model, [5]):
            pass


@torch.no_grad()
def test_fixed_weights_replace_the_excitations_for_every_image(model, images):
    recorded, _ = excitations(model, [(images, torch.zeros(6, dtype=torch.long))], ["stage4.1", "stage4.2", "stage4.3"])
    means = {name: weights.mean(dim=0) for name, weights in recorded.items()}
    with switched_off(model, [4], fixed=means), recording(model, ["stage4.2"]) as seen:
        model(images)
    assert torch.allclose(seen["stage4.2"][0], means["stage4.2"].expand(6, -1)) and hook_count(model) == 0
    with pytest.raises(ValueError, match="fixed has no weights for stage4.3"):
        with switched_off(model, [4], fixed={"stage4.1": means["stage4.1"], "stage4.2": means["stage4.2"]}):
            pass


def test_switching_off_a_stage_without_se_is_refused():
    model = seresnet50(num_classes=10, se_stages=(4,))
    with pytest.raises(ValueError, match=r"stage\(s\) 1, 2 of this model have no SE modules to switch off"):
        with switched_off(model, [1, 2, 4]):
            pass
    assert hook_count(model) == 0
