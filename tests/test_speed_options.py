"""fit's speed options run on the CPU too, and change results only within float tolerance.

On a GPU ``precision="auto"`` means bfloat16 autocast; here each option is asked for by name.
The model is test_train's one-block-per-stage SE-ResNet: the same code as SE-ResNet-50.
"""

import copy

import pytest
import torch
from test_train import TINY, loaders, run, small_model
from torch import nn

from seresnet_lib.training import evaluate, make_optimizer, train_one_epoch
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.distributed import ProcessGroupBatchNorm2d, synchronize_batch_norm
from seresnet_lib.training.steps import stepping_model

# bfloat16 keeps 8 bits of mantissa (float32: 24). From the same weights the loss comes out within
# 1% of fp32's; each step's rounding then changes the next weights a little, and on one machine the
# third step's loss differed by 0.6% (lr 0.002; a toy model at lr 0.02 drifts 5% in three steps).
BF16_LOSS_TOLERANCE = 0.01
BF16_THREE_STEPS_TOLERANCE = 0.03


def losses_per_step(model, batches, config, autocast_dtype) -> list[float]:
    optimizer, _ = make_optimizer(model, config)
    return [train_one_epoch(model, [batch], optimizer, autocast_dtype)[0] for batch in batches]


def test_bf16_autocast_trains_on_the_cpu_within_a_stated_tolerance_of_fp32():
    config = TrainConfig(**{**TINY, "lr": 0.002})
    model = small_model(config)
    batches = list(loaders(config)[0])[:3]
    fp32 = losses_per_step(copy.deepcopy(model), batches, config, None)
    bf16 = losses_per_step(copy.deepcopy(model), batches, config, torch.bfloat16)
    assert bf16[0] == pytest.approx(fp32[0], rel=BF16_LOSS_TOLERANCE)
    torch.testing.assert_close(bf16, fp32, rtol=BF16_THREE_STEPS_TOLERANCE, atol=0)
    assert bf16 != fp32  # the autocast really ran in bfloat16


def test_fit_with_bf16_writes_finite_metrics_and_evaluates_in_bf16(tmp_path):
    history, model = run(tmp_path, epochs=1, precision="bf16")
    row = history.epochs[0]
    assert all(torch.isfinite(torch.tensor(row[k])) for k in ("train_loss", "test_loss"))
    test_loader = loaders(TrainConfig(**TINY))[1]
    assert evaluate(model, test_loader, torch.bfloat16) == (row["test_loss"], row["test_acc"])
    assert evaluate(model, test_loader)[0] == pytest.approx(row["test_loss"], rel=BF16_LOSS_TOLERANCE)


@pytest.mark.parametrize("device, native_bf16, precision, expected", [
    ("cpu", False, "auto", None), ("cpu", False, "fp32", None), ("cpu", False, "bf16", torch.bfloat16),
    ("cuda", True, "auto", torch.bfloat16), ("cuda", True, "fp32", None), ("cuda", False, "auto", None)])
def test_precision_auto_is_bf16_on_a_gpu_that_has_it_and_fp32_elsewhere(monkeypatch, device, native_bf16, precision,
                                                                       expected):
    """A GPU before compute capability 8.0 (a T4, a V100) only emulates bfloat16: fp32 is faster there."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: device == "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native_bf16)
    assert TrainConfig(device=device, precision=precision).autocast_dtype == expected


def test_a_precision_other_than_the_three_is_refused_by_name():
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def test_fused_sgd_takes_the_steps_of_plain_sgd():
    config = TrainConfig(**TINY)
    model = small_model(config)
    batches = list(loaders(config)[0])[:3]
    fused_model, plain_model = copy.deepcopy(model), copy.deepcopy(model)
    fused, _ = make_optimizer(fused_model, config)
    assert fused.defaults["fused"]
    plain = torch.optim.SGD(plain_model.parameters(), lr=config.lr, momentum=config.momentum,
                            weight_decay=config.weight_decay, nesterov=config.nesterov)
    for batch in batches:
        train_one_epoch(fused_model, [batch], fused)
        train_one_epoch(plain_model, [batch], plain)
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_torch_compile_changes_no_result_on_the_cpu(monkeypatch):
    """One training step of the compiled model against the same step in eager mode.

    Compiled with the aot_eager backend: TorchDynamo traces the model and AOTAutograd derives its
    backward pass, as with the default inductor backend, whose C++ kernels take half a minute to
    build on 2 cores before the first step (`make benchmark` measures that step).
    """
    compiled_models = []
    real_compile = torch.compile

    def compile_with_aot_eager(model, **options):
        compiled_models.append(model)
        return real_compile(model, backend="aot_eager", **options)

    monkeypatch.setattr(torch, "compile", compile_with_aot_eager)
    config = TrainConfig(**TINY)
    model = small_model(config)
    images, labels = next(iter(loaders(config)[0]))
    eager, compiled = copy.deepcopy(model), copy.deepcopy(model)
    steps = {}
    for name, replica in (("eager", eager), ("compiled", compiled)):
        optimizer, _ = make_optimizer(replica, config)
        runner = stepping_model(replica, TrainConfig(**TINY, torch_compile=name == "compiled"))
        steps[name] = train_one_epoch(runner, [(images, labels)], optimizer)
    assert compiled_models == [compiled]
    torch.testing.assert_close(steps["compiled"], steps["eager"], rtol=1e-4, atol=0)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_in_one_process_sync_bn_leaves_batch_norm_as_it_is():
    """Without torchrun there is no other process: the converted layer is plain batch norm."""
    model = small_model(TrainConfig(**TINY))
    reference = copy.deepcopy(model)
    parameters = {id(p) for p in model.parameters()}
    synchronize_batch_norm(model)
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert any(isinstance(m, ProcessGroupBatchNorm2d) for m in model.modules())
    assert {id(p) for p in model.parameters()} == parameters  # an optimizer made before still works
    assert model.state_dict().keys() == reference.state_dict().keys()
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(model.train()(images), reference.train()(images))
